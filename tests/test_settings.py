"""Every setting is defined once, checked before anything loads, and layered on one base.

Each bad value is refused by `grpo-core run --dry-run` with exit 2 and one line naming the setting
and what it may be, before any model, tokenizer or dataset loads.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_core.cli import cli, register_commands
from grpo_core.config.settings import RunConfig, build_config
from grpo_core.config.trl_fields import TRL_SETTINGS, grpo_defaults, grpo_field_names
from grpo_core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def invoke(plugin_state):
    register_commands()
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), prog_name="grpo-core")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "max_steps=ten"], "--set: max_steps must be a whole number >= 1, or -1 (train num_train_epochs epochs instead); got 'ten'."),
        (["--set", "learning_rate=abc"], "--set: learning_rate must be a number > 0; got 'abc'."),
        (["--lr", "nan"], "learning_rate must be a number > 0; got nan."),
        (["--lr", "-1"], "learning_rate must be a number > 0; got -1.0."),
        (["--set", "beta=-1"], "--set: beta must be a number >= 0; got -1."),
        (["--threads", "0"], "threads must be a whole number >= 1, or null (none); got 0."),
        (["--max-completion-length", "0"], "max_completion_length must be a whole number >= 1, or null (none); got 0."),
        (["--eval-limit", "-3"], "eval_limit must be a whole number >= 0, or null (none); got -3."),
        (["--max-steps", "-5"], "max_steps must be a whole number >= 1, or -1 (train num_train_epochs epochs instead); got -5."),
        (["--max-steps", "0"], "max_steps must be a whole number >= 1"),
        (["--limit", "0"], "limit must be a whole number >= 1, or null (none); got 0."),
        (["--set", "lora.rank=8"], "--set: unknown lora setting 'rank'; valid: r, alpha, dropout, target_modules."),
        (["--save-steps", "0"], "save_steps must be a number > 0; got 0."),
        (["--save-total-limit", "0"], "save_total_limit must be a whole number >= 1, or null (none); got 0."),
        (["--set", "optim=adamw_9bit"], "--set: optim must be one of adamw_torch,"),
        (["--set", "use_cpu=maybe"], "--set: use_cpu must be true or false; got 'maybe'."),
        (["--set", "overlong_prompts=cut"], "--set: overlong_prompts must be one of drop, truncate, error; got 'cut'."),
    ],
)
def test_a_bad_value_is_refused_before_anything_loads(invoke, args, message):
    res = invoke("run", *args, "--dry-run")
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert "Traceback" not in res.output and [ln for ln in res.stderr.splitlines() if ln.startswith("Error: ")] == [res.stderr.strip().splitlines()[-1]]


def test_a_bad_value_in_a_config_file_names_the_file(invoke, tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("max_steps: ten\n")
    res = invoke("run", "--config", str(yml), "--dry-run")
    assert res.exit_code == 2
    assert f"config file '{yml}': max_steps must be a whole number >= 1" in res.stderr and "got 'ten'" in res.stderr


def test_values_are_read_as_their_setting_holds_them(tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("learning_rate: 5e-6\nplugins: [xml, soft_format]\nmax_steps: 10.0\n")  # YAML reads 5e-6 as a string
    cfg = build_config(config_file=str(yml))
    assert cfg.grpo["learning_rate"] == 5e-6 and cfg.grpo["max_steps"] == 10 and cfg.plugins == "xml,soft_format"
    with pytest.raises(ConfigError, match="max_steps must be a whole number >= 1, or -1 .*got 2.5"):
        build_config(sets=["max_steps=2.5"])


def test_a_config_built_in_python_is_checked_by_validate():
    cfg = RunConfig(limit=0)
    with pytest.raises(ConfigError, match="settings: limit must be a whole number >= 1, or null"):
        cfg.validate()
    cfg = RunConfig(grpo={"max_steps": -5})
    with pytest.raises(ConfigError, match="settings: max_steps must be"):
        cfg.validate()
    assert RunConfig(grpo={"max_steps": -1}).validate().grpo == {"max_steps": -1}  # TRL's "use num_train_epochs"


def test_a_config_file_is_layered_on_the_default_preset(tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("max_steps: 3\n")
    cfg = build_config(config_file=str(yml), default_preset="tiny-cpu")
    tiny = build_config(preset="tiny-cpu")
    assert cfg.grpo["max_steps"] == 3 and cfg.preset == "tiny-cpu"
    assert (cfg.dataset, cfg.limit, cfg.eval_dataset, cfg.eval_limit) == (tiny.dataset, tiny.limit, tiny.eval_dataset, tiny.eval_limit) == (
        "arithmetic:train", 5000, "arithmetic:test", 500)
    assert {k: v for k, v in cfg.grpo.items() if k != "max_steps"} == {k: v for k, v in tiny.grpo.items() if k != "max_steps"}
    # a model from any source means no default preset, as with --model
    yml.write_text("model: some/model\nmax_steps: 3\n")
    assert build_config(config_file=str(yml), default_preset="tiny-cpu").preset is None
    assert build_config(sets=["model=x/y"], default_preset="tiny-cpu").preset is None
    # the file's own preset, and --preset over it
    yml.write_text("preset: seed-qwen2.5-3b\nmax_steps: 3\n")
    assert build_config(config_file=str(yml), default_preset="tiny-cpu").preset == "seed-qwen2.5-3b"
    assert build_config(preset="fast-qwen2.5-3b", config_file=str(yml), default_preset="tiny-cpu").preset == "fast-qwen2.5-3b"
    with pytest.raises(ConfigError, match="the preset is chosen with --preset"):
        build_config(sets=["preset=tiny-cpu"])


def test_the_run_names_its_preset_and_checkpoint_interval(invoke, tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("max_steps: 3\n")
    # a refused --plugins entry stops the run after the settings are built and checked: nothing loads
    res = invoke("run", "--config", str(yml), "--plugins", "nope", "--dry-run")
    assert res.exit_code == 2 and "unknown reward 'nope'" in res.stderr
    from grpo_core.cli.run import settings_line

    cfg = build_config(config_file=str(yml), default_preset="tiny-cpu")
    assert settings_line(cfg) == ("settings: preset tiny-cpu (the default without --model); checkpoints every 50 steps, "
                                  "the last 2 kept (--save-steps, --save-total-limit)")
    cfg = build_config(flags={"model": "m", "save_steps": 10, "save_total_limit": None}, sets=["save_total_limit=null"])
    assert settings_line(cfg) == "settings: no preset; checkpoints every 10 steps, all kept (--save-steps, --save-total-limit)"


def test_checkpoint_flags_set_the_grpo_fields_and_their_defaults_are_documented():
    from grpo_core.train.run_phases import default_grpo_kwargs

    cfg = build_config(flags={"model": "m", "save_steps": 5, "save_total_limit": 3})
    assert cfg.grpo["save_steps"] == 5 and cfg.grpo["save_total_limit"] == 3
    assert {k: default_grpo_kwargs(RunConfig())[k] for k in ("save_steps", "save_total_limit")} == {"save_steps": 50, "save_total_limit": 2}
    assert grpo_defaults()["save_steps"] == TRL_SETTINGS["save_steps"].default == 50
    text = (ROOT / "docs" / "config.md").read_text()
    assert "| `save_steps` | `--save-steps` | `50` | `500` |" in text
    assert "| `save_total_limit` | `--save-total-limit` | `2` | `None` |" in text


def test_every_flag_comes_from_a_definition(invoke):
    from grpo_core.cli.options import flag_specs

    specs = {s.key: s for s in flag_specs()}
    flagged = {f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("flags")}
    assert flagged | {"lora.r"} | {k for k, s in TRL_SETTINGS.items() if s.flags} == set(specs)
    params = {p.name: p for p in cli.commands["run"].params}
    for key, spec in specs.items():
        assert params[spec.dest].opts[0] == spec.flags[0].split("/")[0] and params[spec.dest].help.startswith(spec.help)
    # the flags of today's CLI keep their names
    names = {o for p in cli.commands["run"].params for o in p.opts}
    assert {"--model", "--dataset", "--eval-dataset", "--plugins", "--output-dir", "--backend", "--max-steps", "--learning-rate", "--lr",
            "--num-generations", "--max-completion-length", "--per-device-train-batch-size", "--lora-r", "--load-in-4bit",
            "--fast-inference", "--gpu-memory-utilization", "--chat-template", "--sft-warmup-steps", "--limit", "--eval-limit",
            "--on-reward-error", "--threads", "--profile", "--seed", "--plugin-file", "--set", "--resume", "--dry-run", "--preset",
            "--config", "--save-steps", "--save-total-limit", "--reward-option", "--dataset-option"} <= names


def test_settings_carry_the_backends_they_apply_to():
    backends = {f.name: f.metadata["backends"] for f in dataclasses.fields(RunConfig)}
    assert backends["trim_padding"] == ("trl",) and backends["fast_inference"] == ("unsloth",) and backends["seed"] == ("trl", "unsloth")


def test_the_grpo_field_list_matches_the_installed_trl():
    """grpo_fields.json is what scripts/gen_grpo_fields.py writes from the installed trl (so it cannot drift)."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_grpo_fields.py"), "--check"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert {"beta", "num_generations", "steps_per_generation", "max_steps"} <= grpo_field_names()


def test_checking_settings_never_imports_trl():
    body = (
        "import sys\n"
        "from grpo_core.config.settings import build_config\n"
        "cfg = build_config(sets=['beta=0.04', 'steps_per_generation=2'], default_preset='tiny-cpu').validate()\n"
        "from grpo_core.cli.main import main\n"
        "main(['run', '--help'])\n"
        "print('@@', sorted(m for m in ('trl', 'transformers', 'torch') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=120)
    assert "@@ []" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
