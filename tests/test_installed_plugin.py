"""A separately pip-installed package that only follows the public contract.

Discovery goes through the ``grpo_core`` entry-point group, in a fresh
interpreter (``python -m grpo_core``) as a user would run it, and in-process.
"""

from __future__ import annotations

import json

import pytest
from conftest import DEMO_DIST, env_with, run_cli


def _plugins_json(out: str):
    data = json.loads(out)
    assert set(data) == {"plugins", "errors", "collisions"}  # one shape, whatever happened
    return data["plugins"]


def test_listed_by_plugins_with_distribution_version_hooks(demo_plugin_installed):
    res = run_cli("plugins", env=env_with(demo_plugin_installed))
    assert res.returncode == 0, res.stderr
    plugins = _plugins_json(res.stdout)
    (demo,) = [p for p in plugins if p["name"] == "demo"]
    assert demo["distribution"] == DEMO_DIST
    assert demo["version"] == "0.3.1"
    assert demo["hooks"] == ["register_commands", "register_datasets", "register_rewards", "register_verifiers"]
    assert demo["registered"] == {
        "rewards": ["demo_reward"],
        "verifiers": ["demo_verifier"],
        "datasets": ["demo_dataset"],
    }
    # built-ins are hidden by default, shown with --all
    assert all(p["distribution"] != "grpo-core" for p in plugins)
    res_all = run_cli("plugins", "--all", env=env_with(demo_plugin_installed))
    names = {p["name"] for p in _plugins_json(res_all.stdout)}
    assert {"demo", "grpo_core.default_plugins.format_rewards"} <= names


def test_rewards_verifiers_datasets_listings_show_source_version(demo_plugin_installed):
    env = env_with(demo_plugin_installed)
    res = run_cli("rewards", env=env)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("demo_reward ")]
    assert f"{DEMO_DIST} 0.3.1" in line and "0.7" in line and "mentions the gold answer" in line
    rows = json.loads(run_cli("rewards", "--json", env=env).stdout)
    (row,) = [r for r in rows if r["name"] == "demo_reward"]
    assert (row["distribution"], row["version"], row["plugin"]) == (DEMO_DIST, "0.3.1", "demo")
    assert row["requires"] == ["answer"] and row["default_weight"] == 0.7
    assert "demo_verifier" in run_cli("verifiers", env=env).stdout
    ds = json.loads(run_cli("datasets", "--json", env=env).stdout)
    (d,) = [r for r in ds if r["name"] == "demo_dataset"]
    assert d["verifier"] == "demo_verifier" and d["version"] == "0.3.1" and d["description"] == "Three colour questions (demo)."


def test_selectable_by_plugins_flag(demo_plugin_installed):
    res = run_cli("run", "--plugins", "demo_reward:0.5,xml", "--dry-run", env=env_with(demo_plugin_installed), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "demo_reward" in res.stdout + res.stderr
    # an unknown name next to it is still refused, so the flag really was checked against the registry
    res = run_cli("run", "--plugins", "demo_reward:0.5,demo_rewardz", "--dry-run", env=env_with(demo_plugin_installed))
    assert res.returncode == 2 and "unknown reward 'demo_rewardz'. Did you mean 'demo_reward'?" in res.stderr


def test_selection_resolves_to_the_installed_plugin(demo_plugin_installed, plugin_state):
    from grpo_core.rewards.selection import parse_selection, resolve

    plugin_state(None)
    demo, _xml = resolve(parse_selection("demo_reward:0.5,xml"))
    assert (demo.spec.name, demo.weight, demo.spec.provenance.describe()) == ("demo_reward", 0.5, f"{DEMO_DIST} 0.3.1")
    (demo,) = resolve(parse_selection("demo/demo_reward"))
    assert demo.weight == 0.7  # its default_weight


def test_not_installed_means_not_selectable():
    res = run_cli("run", "--plugins", "demo_reward:0.5", "--dry-run")
    assert res.returncode == 2
    assert "unknown reward 'demo_reward'" in res.stderr


def test_its_subcommand_works(demo_plugin_installed):
    res = run_cli("demo-hello", "you", env=env_with(demo_plugin_installed))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "hello you from grpo-core-demo-plugin"
    assert "demo-hello" in run_cli("--help", env=env_with(demo_plugin_installed)).stdout


@pytest.mark.parametrize("value", ["", " , "])
def test_load_plugins_empty_hides_it(demo_plugin_installed, value):
    env = env_with(demo_plugin_installed, GRPO_CORE_LOAD_PLUGINS=value)
    res = run_cli("rewards", env=env)
    assert res.returncode == 0, res.stderr
    assert "demo_reward" not in res.stdout
    assert "xml" in res.stdout  # the built-ins always load
    assert run_cli("demo-hello", env=env).returncode == 2  # no such command
    assert json.loads(run_cli("plugins", env=env).stdout) == {"plugins": [], "errors": {}, "collisions": {}}


@pytest.mark.parametrize("value", [DEMO_DIST, "GRPO_Core.Demo_Plugin", f" {DEMO_DIST} ,"])
def test_load_plugins_naming_it_shows_it(demo_plugin_installed, value):
    res = run_cli("rewards", env=env_with(demo_plugin_installed, GRPO_CORE_LOAD_PLUGINS=value))
    assert res.returncode == 0, res.stderr
    assert "demo_reward" in res.stdout and "warning" not in res.stderr


def test_load_plugins_unknown_name_is_reported(demo_plugin_installed):
    env = env_with(demo_plugin_installed, GRPO_CORE_LOAD_PLUGINS=f"{DEMO_DIST},no-such-plugin")
    res = run_cli("rewards", env=env)
    assert res.returncode == 0
    assert "demo_reward" in res.stdout
    assert "no-such-plugin" in res.stderr and "not an installed grpo-core plugin distribution" in res.stderr
    assert DEMO_DIST in res.stderr  # the message lists what is installed
    out = json.loads(run_cli("plugins", env=env).stdout)
    assert "no-such-plugin" in out["errors"]


def test_in_process_discovery_and_api(demo_plugin_installed, plugin_state):
    import grpo_core

    regs = plugin_state(None)
    spec = grpo_core.get_reward("demo_reward")
    assert (spec.provenance.distribution, spec.provenance.version) == (DEMO_DIST, "0.3.1")
    assert spec(["the answer is red", "no"], answer=["red", "red"]) == [1.0, 0.0]
    v = grpo_core.get_verifier("demo_verifier")
    assert isinstance(v, grpo_core.Verifier)
    assert v.check(gold="Red", response="<answer>red</answer>").equal
    assert not v.check(gold="Red", response="no answer here").equal
    assert grpo_core.get_dataset("demo_dataset").verifier == "demo_verifier"
    (demo,) = [p for p in grpo_core.get_plugins() if p["name"] == "demo"]
    assert demo["version"] == "0.3.1"
    assert "demo_reward" in grpo_core.get_rewards() and "demo_reward" in regs.rewards
    # GRPO_CORE_LOAD_PLUGINS is read when plugins are (re)loaded
    assert "demo_reward" not in plugin_state("").rewards
    assert "demo_reward" in plugin_state(DEMO_DIST).rewards
