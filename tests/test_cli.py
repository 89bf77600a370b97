"""The grpo-core command line: listings, --plugins validation, exit codes, --version."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import grpo_core
from grpo_core import hookimpl
from grpo_core.cli import cli, register_commands
from conftest import run_cli


@pytest.fixture
def invoke(plugin_state):
    register_commands()
    runner = CliRunner()

    def go(*args):
        return runner.invoke(cli, list(args), prog_name="grpo-core")

    return go


def r_one(completions, **kwargs):
    return [1.0] * len(completions)


def _plugin(name, **meta):
    class P:
        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(r_one, name=name, **meta)

    return P


def test_version_console_script_and_module():
    exe = Path(sys.executable).with_name("grpo-core")
    import subprocess

    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == f"grpo-core, version {grpo_core.__version__}"
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("plugins", "rewards", "verifiers", "datasets", "run"):
        assert f"  {cmd}" in res.stdout
    assert run_cli("--version").stdout.strip() == f"grpo-core, version {grpo_core.__version__}"


def test_rewards_table_and_json(invoke):
    res = invoke("rewards")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["name", "default_weight", "options", "source", "description"]
    assert [ln.split()[0] for ln in lines[1:]] == ["arithmetic_correctness", "exact_format", "soft_format", "strict_format", "xml"]
    assert f"grpo-core {grpo_core.__version__}" in lines[1]
    rows = json.loads(invoke("rewards", "--json").stdout)
    assert {r["name"] for r in rows} == {"xml", "soft_format", "strict_format", "exact_format", "arithmetic_correctness"}
    assert all(r["distribution"] == "grpo-core" for r in rows)


def test_verifiers_and_datasets_listings(invoke):
    assert "arithmetic" in invoke("verifiers").output
    rows = json.loads(invoke("datasets", "--json").stdout)
    assert rows[0]["name"] == "arithmetic" and rows[0]["verifier"] == "arithmetic"


def test_plugins_json_shape(invoke, grpo_register):
    assert json.loads(invoke("plugins").stdout) == {"plugins": [], "errors": {}, "collisions": {}}
    grpo_register(_plugin("mine"), name="inproc")
    out = json.loads(invoke("plugins").stdout)
    assert out == {
        "plugins": [
            {"name": "inproc", "distribution": None, "version": None, "hooks": ["register_rewards"], "registered": {"rewards": ["mine"]}}
        ],
        "errors": {},
        "collisions": {},
    }
    assert json.loads(invoke("plugins", "--hook", "register_datasets").stdout)["plugins"] == []
    allp = json.loads(invoke("plugins", "--all").stdout)["plugins"]
    assert {p["name"] for p in allp} == {"inproc", "grpo_core.default_plugins.format_rewards", "grpo_core.default_plugins.arithmetic",
                                         "grpo_core.default_plugins.files"}


def test_collisions_warned_by_listings(invoke, grpo_register):
    grpo_register(_plugin("clash"), name="one")
    grpo_register(_plugin("clash"), name="two")
    res = invoke("rewards")
    assert res.exit_code == 0
    assert "one/clash" in res.stdout and "two/clash" in res.stdout
    assert "warning: reward 'clash' is registered by several plugins (one/clash, two/clash)" in res.stderr
    res = invoke("rewards", "--json")
    assert "warning: reward 'clash'" in res.stderr
    json.loads(res.stdout)  # stdout stays valid JSON
    out = json.loads(invoke("plugins").stdout)
    assert out["collisions"] == {"clash": ["one/clash", "two/clash"]}
    # selecting the bare name is refused (before anything is loaded); the qualified one resolves
    res = invoke("run", "--plugins", "clash", "--dry-run")
    assert res.exit_code == 2 and "registered by more than one plugin: one/clash, two/clash" in res.stderr
    from grpo_core.rewards.selection import parse_selection, resolve

    (chosen,) = resolve(parse_selection("two/clash:3"))
    assert chosen.spec.provenance.plugin == "two" and chosen.weight == 3.0


def test_plugin_errors_shown_by_plugins(invoke, grpo_register):
    grpo_register(_plugin("bad", timeout=-1), name="badmeta")
    out = json.loads(invoke("plugins").stdout)
    assert "timeout must be a positive" in out["errors"]["badmeta:register_rewards"]
    assert [p["name"] for p in out["plugins"]] == ["badmeta"]  # the same shape, with or without errors


def test_selection_resolves_names_and_weights(plugin_state):
    from grpo_core.rewards.selection import RewardChoice, parse_selection, resolve

    choices = parse_selection("xml:0.5, soft_format:2 ,strict_format:-1,exact_format:1e-3,builtin/xml:0")
    assert choices[:2] == [RewardChoice("xml", 0.5), RewardChoice("soft_format", 2.0)]
    assert [c.weight for c in choices] == [0.5, 2.0, -1.0, 0.001, 0.0]
    assert parse_selection(["xml", "soft_format:3"]) == [RewardChoice("xml", None), RewardChoice("soft_format", 3.0)]
    resolved = resolve(parse_selection("xml:0.5,soft_format"))
    assert [(r.spec.name, r.weight) for r in resolved] == [("xml", 0.5), ("soft_format", 1.0)]  # default_weight when omitted


@pytest.mark.parametrize(
    "selection, message",
    [
        ("xmll", "unknown reward 'xmll'. Did you mean 'xml'? Available rewards: arithmetic_correctness, exact_format, soft_format, strict_format, xml."),
        ("xml,correctnes", "unknown reward 'correctnes'"),
        ("xml,xml", "reward 'xml' is listed twice"),
        ("xml:1,xml:2", "reward 'xml' is listed twice"),
        ("xml,builtin/xml", "reward 'builtin/xml' is the same as 'xml'; list it once."),
        ("xml:nan", "weight for reward 'xml' must be finite, got 'nan'"),
        ("xml:inf", "weight for reward 'xml' must be finite, got 'inf'"),
        ("xml:-inf", "must be finite"),
        ("xml:1e999", "must be finite"),
        ("xml:abc", "weight 'abc' for reward 'xml' is not a number"),
        ("xml:", "weight '' for reward 'xml' is not a number"),
        ("xml,,soft_format", "empty entry in reward list"),
        ("xml,", "empty entry in reward list"),
        (",", "no rewards selected"),
        (":0.5", "has no reward name"),
        ("", "no rewards selected"),
        ("  ", "no rewards selected"),
    ],
)
def test_run_bad_selection_exits_2_with_one_clear_line(invoke, selection, message):
    res = invoke("run", "--plugins", selection, "--dry-run")
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert res.stderr.startswith("Error: ")
    assert "Traceback" not in res.output


def test_run_gpu_memory_utilization_takes_a_fraction_or_auto(invoke):
    res = invoke("run", "--gpu-memory-utilization", "half", "--dry-run")
    assert res.exit_code == 2 and "in (0, 1], e.g. 0.5, or 'auto'" in res.stderr and "'half'" in res.stderr
    res = invoke("run", "--gpu-memory-utilization", "1.5", "--dry-run")
    assert res.exit_code == 2 and "got 1.5" in res.stderr
    from grpo_core.cli.options import SettingType

    fraction = SettingType("gpu_memory_utilization")
    assert fraction.convert("auto", None, None) == "auto" and fraction.convert("0.3", None, None) == 0.3


def test_run_reports_every_unknown_name_at_once(invoke):
    res = invoke("run", "--plugins", "nope1,xml,nope2", "--dry-run")
    assert res.exit_code == 2
    assert "'nope1'" in res.stderr and "'nope2'" in res.stderr


def test_exit_code_through_real_entry_point():
    res = run_cli("run", "--plugins", "xml:nan", "--dry-run", env={"GRPO_CORE_LOAD_PLUGINS": ""})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["Error: weight for reward 'xml' must be finite, got 'nan'."]
    res = run_cli("no-such-command")
    assert res.returncode == 2 and "No such command" in res.stderr


def test_main_returns_exit_status(plugin_state, capsys):
    from grpo_core.cli import main

    assert main(["run", "--plugins", "xml:abc", "--dry-run"]) == 2
    assert main(["rewards"]) == 0
    assert main(["--version"]) == 0
    assert main(["no-such-command"]) == 2


def test_plugin_commands_cannot_replace_core_commands(invoke, grpo_register):
    import click

    class Hijack:
        @staticmethod
        @hookimpl
        def register_commands(cli):
            @cli.command(name="rewards")
            def fake():
                click.echo("hijacked")

            @cli.command(name="extra-cmd")
            def extra():
                click.echo("extra ok")

    class Crashes:
        @staticmethod
        @hookimpl
        def register_commands(cli):
            raise RuntimeError("broken plugin")

    grpo_register(Hijack, name="hijack")
    grpo_register(Crashes, name="crashes")
    try:
        register_commands()
        runner = CliRunner()
        assert "hijacked" not in runner.invoke(cli, ["rewards"]).output
        assert runner.invoke(cli, ["extra-cmd"]).output.strip() == "extra ok"
    finally:
        cli.commands.pop("extra-cmd", None)
