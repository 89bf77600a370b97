"""The example configs stay valid: every key is a grpo-core setting or a GRPOConfig field."""

from pathlib import Path

import pytest

from grpo_core.config.settings import build_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("*/run.yaml")), ids=lambda p: p.parent.name)
def test_example_config_is_valid(config):
    cfg = build_config(config_file=str(config)).validate(check_grpo_fields=True)
    assert cfg.model and cfg.dataset.split(":")[0] in ("gsm8k", "mbpp")


def test_reference_example_matches_the_preset():
    cfg = build_config(config_file=str(EXAMPLES / "qwen2.5-3b-gsm8k" / "run.yaml"))
    preset = build_config(preset="seed-qwen2.5-3b")
    assert cfg.grpo == preset.grpo  # the YAML spells out exactly the preset's TRL settings
    assert cfg.lora == preset.lora and cfg.plugins == preset.plugins and cfg.load_in_4bit


def test_llama_example_uses_the_variant_settings():
    cfg = build_config(config_file=str(EXAMPLES / "llama3.2-3b-gsm8k" / "run.yaml"))
    assert cfg.chat_template == "llama-3.1" and cfg.sft_warmup_steps > 0 and not cfg.load_in_4bit
    assert cfg.plugins == "exact_format,graded_correctness" and cfg.grpo["max_completion_length"] == 1536


def test_coder_example_trains_on_code_rewards():
    from grpo_core.rewards.selection import parse_selection, resolve

    cfg = build_config(config_file=str(EXAMPLES / "qwen2.5-coder-1.5b-mbpp" / "run.yaml"))
    assert cfg.dataset == "mbpp:train" and cfg.eval_dataset == "humaneval:test"
    resolved = resolve(parse_selection(cfg.plugins))  # the plugin's rewards are installed
    assert [r.spec.name for r in resolved] == ["code_tests", "code_format"]
    assert cfg.grpo["per_device_train_batch_size"] % cfg.grpo["num_generations"] == 0
