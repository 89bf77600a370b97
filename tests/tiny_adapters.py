"""A "strongly trained" LoRA run folder on a tiny model, offline, in about a second.

Training a ~100k-parameter model for a few GRPO steps moves the LoRA weights
only a little, so instead of training, the adapter is made directly: a PEFT
LoRA on every linear layer whose B matrices (zero at init, which makes LoRA a
no-op) are set to random values of a chosen scale. That gives an adapter that
measurably changes greedy outputs and logits, which is what the post-export
check and the eval tests need. The folder has the layout `grpo-core run`
writes: RUN/run.json (with model_path) and RUN/adapter/ (adapter, tokenizer,
README, run.json copy).
"""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapter_run(run_dir: Path, base: Path, *, scale: float = 0.5, rank: int = 4, seed: int = 1) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir = Path(run_dir)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGETS, task_type="CAUSAL_LM"))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    adapter = run_dir / "adapter"
    peft.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(base).save_pretrained(adapter)
    run = {
        "status": "finished",
        "model": str(base),
        "model_path": str(base),
        "backend": "trl",
        "config": {"model": str(base), "dataset": "toy:train", "lora": {"r": rank}, "system_prompt": None},
        "rewards": [{"name": "short_reward", "weight": 1.0, "distribution": None, "version": None, "plugin": "toy_plugin"}],
        "dataset": {"spec": "toy:train", "rows": 32, "content_hash": "0123456789abcdef"},
        "global_step": 4,
        "libraries": {"torch": torch.__version__},
        "git_revision": None,
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    (adapter / "run.json").write_text(json.dumps(run, indent=2))
    return run_dir


# --- pytest fixtures (import them into a test module: `from tiny_adapters import tiny_base, tiny_run`) ---

import pytest  # noqa: E402

_CACHE: dict = {}


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """The tiny Qwen2 (random weights, ChatML tokenizer), built once per session."""
    if "base" not in _CACHE:
        import torch

        torch.set_num_threads(1)
        from tiny_models import build_tiny_qwen2

        _CACHE["base"] = build_tiny_qwen2(tmp_path_factory.mktemp("tiny-base") / "model")
    return _CACHE["base"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_base) -> Path:
    """A run folder whose adapter strongly changes the tiny model's outputs (B weights ~ N(0, 0.5^2))."""
    if "run" not in _CACHE:
        _CACHE["run"] = make_adapter_run(tmp_path_factory.mktemp("tiny-run") / "run", tiny_base, scale=0.5)
    return _CACHE["run"]
