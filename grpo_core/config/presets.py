"""Named run presets: the reference workflows and the embedded CPU default."""

from __future__ import annotations

import copy
from typing import Any

from grpo_core.config.tiny_recipe import TINY_CPU_PRESET
from grpo_core.errors import UnknownNameError

#: The reference notebook's optimizer and schedule, shared by both seed presets.
REFERENCE_TRAINING = {
    "learning_rate": 5e-6,
    "adam_beta1": 0.9,
    "adam_beta2": 0.99,
    "weight_decay": 0.1,
    "warmup_steps": 0.1,  # transformers 5: a float below 1 is a ratio
    "lr_scheduler_type": "cosine",
    "optim": "adamw_8bit",
    "logging_steps": 1,
    "gradient_accumulation_steps": 1,
    "max_grad_norm": 0.1,
    "report_to": "none",
}

SEVEN_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# The Unsloth Qwen2.5-3B GRPO notebook, exactly. TRL >= 1.x counts
# per_device_train_batch_size in completions: 8 = 1 prompt x 8 generations,
# which is what the notebook's "batch 1, 8 generations" means.
SEED_QWEN = {
    "model": "Qwen/Qwen2.5-3B-Instruct",
    "dataset": "gsm8k:train",
    "eval_dataset": "gsm8k:test",
    "plugins": "xml,soft_format,strict_format,int,correctness",
    "load_in_4bit": True,
    "fast_inference": True,
    "gpu_memory_utilization": 0.5,
    "max_seq_length": 1024,
    "max_prompt_length": 256,
    "lora": {"r": 64, "alpha": 64, "target_modules": SEVEN_PROJECTIONS},
    "seed": 3407,
    "grpo": {
        **REFERENCE_TRAINING,
        "per_device_train_batch_size": 8,
        "num_generations": 8,
        "max_completion_length": 200,
        "max_steps": 250,
        "save_steps": 250,
    },
}

# The Llama-3.2-3B variant: 16-bit LoRA, llama-3.1 template, exact format
# (3.0) plus graded correctness (3.0 / 1.0 / -1.5), SFT warm-up, long replies.
SEED_LLAMA = {
    "model": "unsloth/Llama-3.2-3B-Instruct",
    "dataset": "gsm8k:train",
    "eval_dataset": "aime:2024",
    "plugins": "exact_format,graded_correctness",
    "chat_template": "llama-3.1",
    "load_in_4bit": False,
    "fast_inference": True,
    "gpu_memory_utilization": 0.6,
    "max_seq_length": 2048,
    "max_prompt_length": 512,
    "sft_warmup_steps": 60,
    "lora": {"r": 64, "alpha": 64, "target_modules": SEVEN_PROJECTIONS},
    "seed": 3407,
    "grpo": {
        **REFERENCE_TRAINING,
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "max_completion_length": 1536,
        "max_steps": 500,
        "save_steps": 100,
    },
}


# The same reference run, set up for speed on one GPU (docs/benchmarks.md, "GRPO step time"):
# 16-bit weights on the trl backend, vLLM colocate with grpo-core's weight sync, and generation
# for 8 optimizer steps at once (measured on an H200 at 3B with GSM8K-length prompts: 0.50-0.62 s per
# step, mean 0.55, against 1.24 for raw TRL colocate generating every step; 15.4 GiB peak at vLLM
# fraction 0.05, where the default Unsloth path needs 8.3 GiB at 1.41 s per step; the tiny CPU model
# learned the same with 1, 4 or 8). Every
# step still trains on 1 prompt x 8 completions (whole groups: ``group_steps``); steps 2-8 of a
# round use completions sampled by a policy up to 7 steps older, which GRPO's clipped ratio against
# the recorded old log-probs accounts for.
SPEED_QWEN = {
    **SEED_QWEN,
    "backend": "trl",
    "load_in_4bit": False,
    "use_vllm": True,
    "vllm_mode": "colocate",
    "fast_vllm_sync": True,
    "grpo": {**SEED_QWEN["grpo"], "steps_per_generation": 8},
}


def _tiny_cpu() -> dict[str, Any]:
    return TINY_CPU_PRESET


PRESETS = {
    "seed-qwen2.5-3b": lambda: SEED_QWEN,
    "seed-llama3.2-3b": lambda: SEED_LLAMA,
    "fast-qwen2.5-3b": lambda: SPEED_QWEN,
    "tiny-cpu": _tiny_cpu,
}
DEFAULT_PRESET = "tiny-cpu"  # what `grpo-core run` uses when no model is given


def get_preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise UnknownNameError("preset", name, PRESETS)
    return copy.deepcopy(PRESETS[name]())
