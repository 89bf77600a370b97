"""The two training backends behind one interface.

* ``unsloth``: ``FastLanguageModel.from_pretrained`` (4-bit or 16-bit,
  ``fast_inference`` = vLLM in the same process, FP8 where supported), adapters
  through ``get_peft_model`` with Unsloth gradient checkpointing, then TRL's
  GRPOTrainer as Unsloth patches it. Unsloth is imported before trl.
* ``trl``: transformers + PEFT LoRA, optional bitsandbytes 4-bit, vLLM
  colocate/server when available, else HF generate. Runs on CPU.

``auto`` picks unsloth when a CUDA GPU and Unsloth are present, else trl.
Unsloth and vLLM are only ever imported inside these functions.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from typing import Any

from grpo_core.config.settings import AUTO_FRACTION, RunConfig
from grpo_core.errors import ConfigError
from grpo_core.runtime.hardware import cuda_available, import_unsloth_first


@dataclass
class LoadedPolicy:
    backend: str
    model: Any
    tokenizer: Any
    peft_config: Any  # a peft.LoraConfig for TRL to apply, or None when already applied
    trainer_base: type
    grpo_overrides: dict = field(default_factory=dict)
    device: str = "cpu"


def choose_backend(cfg: RunConfig) -> tuple[str, str]:
    """The backend to use and why, without importing Unsloth."""
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if cfg.backend == "unsloth":
        if not cuda_available():
            raise ConfigError("backend 'unsloth' needs a CUDA GPU and none is visible; use --backend trl (runs on CPU).")
        if not has_unsloth:
            raise ConfigError("backend 'unsloth' is not installed; `pip install 'grpo-core[gpu]'` on a CUDA machine, or use --backend trl.")
        return "unsloth", "backend set to unsloth (--backend, preset or config)"
    if cfg.backend == "trl":
        return "trl", "backend set to trl (--backend, preset or config)"
    if cfg.full_finetune:
        return "trl", "full fine-tuning runs on the trl backend"
    if not cuda_available():
        return "trl", "no CUDA GPU visible (trl + PEFT on CPU)"
    if not has_unsloth:
        return "trl", "CUDA GPU found but Unsloth is not installed"
    return "unsloth", "CUDA GPU and Unsloth found"


def trl_uses_vllm(cfg: RunConfig, cuda: bool) -> bool:
    """Whether the trl backend generates with vLLM: as set, or (unset) when on a GPU with vLLM installed."""
    if cfg.use_vllm is not None:
        return bool(cfg.use_vllm)
    return cuda and importlib.util.find_spec("vllm") is not None


def colocated_vllm(cfg: RunConfig, backend: str) -> bool:
    """Whether this process will start a vLLM engine on its own GPU (Unsloth fast_inference, trl colocate)."""
    if not cuda_available():
        return False
    if backend == "unsloth":
        return bool(cfg.fast_inference)
    return trl_uses_vllm(cfg, True) and cfg.vllm_mode == "colocate"


def engine_fraction(cfg: RunConfig, in_process: bool) -> float | None:
    """``cfg.gpu_memory_utilization`` for a vLLM engine. ``auto`` is resolved by pre-flight wherever an
    engine shares this process's GPU; left unresolved it is None: no engine here reads it."""
    if cfg.gpu_memory_utilization != AUTO_FRACTION:
        return cfg.gpu_memory_utilization
    if in_process:
        raise ConfigError("gpu_memory_utilization 'auto' is sized by pre-flight before the model loads (as `grpo-core run` does); "
                          "loading a model without it, pass a number, e.g. 0.5.")
    return None


def _target_modules(model, wanted: list[str]) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    present = [m for m in wanted if m in names]
    missing = [m for m in wanted if m not in names]
    if not present:
        raise ConfigError(f"none of the LoRA target modules {wanted} exist in this model; its linear layers include {sorted(names)[:20]}.")
    if missing:
        print(f"grpo-core: note: LoRA targets {missing} are not in this model and are skipped.", file=sys.stderr)
    return present


def load_trl(cfg: RunConfig, model_path: str) -> LoadedPolicy:
    import torch  # deferred: heavy (torch)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy (transformers)
    from trl import GRPOTrainer  # deferred: heavy (trl)

    cuda = torch.cuda.is_available()
    tok = AutoTokenizer.from_pretrained(model_path)
    kwargs: dict[str, Any] = {}
    if cuda:
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        kwargs["dtype"] = torch.float32
    if cfg.load_in_4bit:
        if not cuda:
            raise ConfigError("load_in_4bit needs a CUDA GPU (bitsandbytes); drop --load-in-4bit on CPU.")
        from transformers import BitsAndBytesConfig  # deferred: heavy (transformers)

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"], bnb_4bit_use_double_quant=True
        )
    model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    peft_config = None
    if not cfg.full_finetune:
        from peft import LoraConfig  # deferred: heavy (peft)

        peft_config = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha or cfg.lora.r,
            lora_dropout=cfg.lora.dropout,
            target_modules=_target_modules(model, cfg.lora.target_modules),
            task_type="CAUSAL_LM",
        )
    overrides: dict[str, Any] = {}
    if not cuda:
        # tiny CPU models: recomputing activations costs more than it saves
        overrides.update(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False)
    else:
        # on a GPU, TRL's default: activations are recomputed in the backward pass (a 3B model at the
        # reference settings would otherwise hold ~16 GiB more; measured in docs/benchmarks.md)
        overrides.update(bf16=kwargs["dtype"] == torch.bfloat16, fp16=kwargs["dtype"] == torch.float16, gradient_checkpointing=True)
    use_vllm = trl_uses_vllm(cfg, cuda)
    if use_vllm:
        if not cuda:
            raise ConfigError("use_vllm needs a CUDA GPU; drop --use-vllm on CPU (HF generate is used).")
        overrides.update(use_vllm=True, vllm_mode=cfg.vllm_mode)
        fraction = engine_fraction(cfg, in_process=cfg.vllm_mode == "colocate")
        if fraction is not None:  # server mode: the server's own --gpu-memory-utilization applies
            overrides["vllm_gpu_memory_utilization"] = fraction
    return LoadedPolicy("trl", model, tok, peft_config, GRPOTrainer, overrides, "cuda" if cuda else "cpu")


def load_unsloth(cfg: RunConfig, model_path: str) -> LoadedPolicy:
    import_unsloth_first()
    from unsloth import FastLanguageModel  # noqa: E402  (after the import-order check)

    kwargs: dict[str, Any] = dict(
        model_name=model_path,
        max_seq_length=cfg.max_seq_length,
        load_in_4bit=cfg.load_in_4bit,
        fast_inference=cfg.fast_inference,
        max_lora_rank=cfg.lora.r,
        random_state=cfg.seed,
    )
    fraction = engine_fraction(cfg, in_process=cfg.fast_inference)
    if fraction is not None:  # without fast_inference there is no engine to size
        kwargs["gpu_memory_utilization"] = fraction
    if cfg.load_in_fp8:
        kwargs["load_in_fp8"] = True
    model, tok = FastLanguageModel.from_pretrained(**kwargs)
    model = FastLanguageModel.get_peft_model(
        model,
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha or cfg.lora.r,
        lora_dropout=cfg.lora.dropout,
        target_modules=_target_modules(model, cfg.lora.target_modules),
        use_gradient_checkpointing="unsloth",
        random_state=cfg.seed,
    )
    import torch  # deferred: heavy (torch)
    from trl import GRPOTrainer  # deferred: heavy (trl)

    bf16 = torch.cuda.is_bf16_supported()
    # Unsloth's own (offloaded) gradient checkpointing is on the model already; TRL must not add its own
    overrides = {"use_vllm": bool(cfg.fast_inference), "bf16": bf16, "fp16": not bf16, "gradient_checkpointing": False}
    return LoadedPolicy("unsloth", model, tok, None, GRPOTrainer, overrides, "cuda")


def load_policy(cfg: RunConfig, backend: str, model_path: str) -> LoadedPolicy:
    return load_unsloth(cfg, model_path) if backend == "unsloth" else load_trl(cfg, model_path)
