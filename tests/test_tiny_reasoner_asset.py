"""The bundled tiny reasoner (grpo_core/assets/tiny-reasoner): size, tokenizer, config, a sane reply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ASSET = Path(__file__).resolve().parents[1] / "grpo_core" / "assets" / "tiny-reasoner"


def test_asset_is_small_and_complete():
    names = {p.name for p in ASSET.iterdir()}
    for f in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "build_info.json"):
        assert f in names, f
    total = sum(p.stat().st_size for p in ASSET.iterdir())
    assert total <= 5 * 1024 * 1024, total
    info = json.loads((ASSET / "build_info.json").read_text())
    assert info["task"] == "arithmetic" and 0.3 <= info["held_out"]["accuracy"] <= 0.75
    assert info["held_out"]["format_rate"] >= 0.95


def test_eos_is_im_end_everywhere():
    cfg = json.loads((ASSET / "config.json").read_text())
    gen = json.loads((ASSET / "generation_config.json").read_text())
    tok_cfg = json.loads((ASSET / "tokenizer_config.json").read_text())
    tok = json.loads((ASSET / "tokenizer.json").read_text())
    im_end = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<|im_end|>")
    assert cfg["eos_token_id"] == im_end and gen["eos_token_id"] == im_end
    assert tok_cfg["eos_token"] == "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ASSET))


def test_tokenizer_reload_and_tags(tokenizer):
    from grpo_core.default_plugins.arithmetic import problems
    from grpo_core.kit.prompts import chat_prompt

    p = problems("test")[3]
    text = tokenizer.apply_chat_template(chat_prompt(p["question"]), tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    ids = tokenizer(p["solution"] + "<|im_end|>")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == p["solution"]  # XML tags survive
    assert ids[-1] == tokenizer.eos_token_id
    for tag in ("<reasoning>", "</reasoning>", "<answer>", "</answer>"):
        assert len(tokenizer(tag)["input_ids"]) == 1
    digits = tokenizer(" 1234")["input_ids"]
    assert len(digits) == 5  # one space, then one token per digit


def test_greedy_reply_is_well_formed(tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from grpo_core.default_plugins.arithmetic import problems
    from grpo_core.default_plugins.format_rewards import strict_format
    from grpo_core.kit.prompts import chat_prompt

    model = AutoModelForCausalLM.from_pretrained(str(ASSET))
    assert sum(p.numel() for p in model.parameters()) < 1_500_000
    rows = problems("test")[:8]
    prompts = [tokenizer.apply_chat_template(chat_prompt(r["question"]), tokenize=False, add_generation_prompt=True) for r in rows]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=48, do_sample=False)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert sum(s > 0 for s in strict_format(texts)) >= 7, texts
