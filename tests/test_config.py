"""Where settings come from, and what an explicit null means."""

from __future__ import annotations

from grpo_core.config import build_config


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
