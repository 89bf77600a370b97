"""Where settings come from, and what an explicit null means."""

from __future__ import annotations

import pytest

from grpo_core.config.settings import build_config
from grpo_core.errors import ConfigError


def test_an_explicit_null_unsets_a_preset_value(tmp_path):
    # the seed preset drops prompts over 256 tokens; a user must be able to say "no limit"
    assert build_config(preset="seed-qwen2.5-3b").max_prompt_length == 256
    assert build_config(preset="seed-qwen2.5-3b", sets=["max_prompt_length=null"]).max_prompt_length is None
    yml = tmp_path / "run.yaml"
    yml.write_text("preset: seed-qwen2.5-3b\nmax_prompt_length: null\nsteps_per_generation: null\n")
    cfg = build_config(config_file=str(yml))
    assert cfg.max_prompt_length is None and cfg.grpo["steps_per_generation"] is None


def test_a_flag_left_out_is_none_and_changes_nothing():
    # named CLI flags arrive as None when not given: they must not wipe the preset
    cfg = build_config(preset="seed-qwen2.5-3b", flags={"max_prompt_length": None, "max_steps": None, "model": "x/y"})
    assert cfg.max_prompt_length == 256 and cfg.grpo["max_steps"] == 250 and cfg.model == "x/y"


def test_gpu_memory_utilization_is_a_fraction_or_auto_from_every_source(tmp_path):
    assert build_config().gpu_memory_utilization == 0.5  # the default stays the reference notebook's
    assert build_config(sets=["gpu_memory_utilization=auto"]).validate(check_grpo_fields=False).gpu_memory_utilization == "auto"
    assert build_config(flags={"gpu_memory_utilization": "auto"}).validate(check_grpo_fields=False).gpu_memory_utilization == "auto"
    yml = tmp_path / "run.yaml"
    yml.write_text("preset: seed-qwen2.5-3b\ngpu_memory_utilization: auto\n")
    assert build_config(config_file=str(yml)).validate(check_grpo_fields=False).gpu_memory_utilization == "auto"
    assert build_config(sets=["gpu_memory_utilization=1"]).validate(check_grpo_fields=False).gpu_memory_utilization == 1


@pytest.mark.parametrize("value", ["half", "AUTO", "0", "1.5", "-0.1", "true"])
def test_any_other_gpu_memory_utilization_names_both_valid_forms(value):
    with pytest.raises(ConfigError) as err:  # refused as it is merged, naming where it came from
        build_config(sets=[f"gpu_memory_utilization={value}"])
    assert str(err.value).startswith("--set: gpu_memory_utilization must be a fraction")
    assert "in (0, 1], e.g. 0.5, or 'auto'" in str(err.value)
