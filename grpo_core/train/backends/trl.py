"""The ``trl`` backend: transformers + PEFT LoRA (or full fine-tuning), optional bitsandbytes 4-bit,
TRL's GRPOTrainer with grpo-core's batching patches, vLLM colocate or server when installed on a GPU,
else HF generate. The one backend that runs on CPU."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, ContextManager

from grpo_core.config.settings import AUTO_FRACTION, RunConfig
from grpo_core.config.trl_fields import trl_default
from grpo_core.errors import ConfigError
from grpo_core.runtime.hardware import cuda_available
from grpo_core.train.backends.base import Backend, Echo, LoadedPolicy, engine_fraction, target_modules
from grpo_core.train.memory_plan import (
    GIB,
    TRAINER_MARGIN_FRACTION,
    TRAINER_MARGIN_GIB,
    Shapes,
    activation_bytes_per_token,
    gpu_total_bytes,
    keep_activations,
    read_config,
)
from grpo_core.train.preflight import VllmSetup
from grpo_core.train.trl_glue import make_trainer_class
from grpo_core.train.vllm_engine import extra_engine_kwargs
from grpo_core.train.vllm_server import configure_client, server_client, server_errors
from grpo_core.train.vllm_sync import install_fast_sync


def trl_uses_vllm(cfg: RunConfig, cuda: bool) -> bool:
    """Whether the trl backend generates with vLLM: as set, or (unset) when on a GPU with vLLM installed."""
    if cfg.use_vllm is not None:
        return bool(cfg.use_vllm)
    return cuda and _vllm_installed()


def _vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def colocate_is_the_faster_fit(cfg: RunConfig) -> tuple[bool, str]:
    """Whether ``backend: auto`` should take this backend with vLLM colocate over Unsloth on this GPU, and why.

    At 16-bit it is the faster of the two (H200, Qwen2.5-3B, 1 × 8 × 200: 1.34 s per step against
    Unsloth's 1.65, which generates through LoRA requests; docs/benchmarks.md), but it keeps a second
    copy of the weights beside vLLM's, so it is taken only when that copy, the activations (recomputed)
    and a margin fit beside vLLM's share. ``auto_prefers: memory`` keeps Unsloth's shared weights."""
    if cfg.auto_prefers == "memory":
        return False, "auto_prefers memory: Unsloth shares one copy of the weights with vLLM"
    if cfg.load_in_4bit or cfg.load_in_fp8 or not cfg.fast_inference:
        return False, "4-bit, FP8 or no fast_inference: Unsloth's path"
    if not _vllm_installed():
        return False, "vLLM is not installed for the trl backend"
    config = read_config(cfg.model) if cfg.model and Path(cfg.model).is_dir() else None
    if config is None:
        return False, "the model's config.json is not local, so the trl path's second weight copy cannot be sized"
    shapes, total = Shapes.from_config(config), gpu_total_bytes()
    weights = shapes.weight_bytes(False)
    vllm_share = weights + 2 * GIB if cfg.gpu_memory_utilization == AUTO_FRACTION else cfg.gpu_memory_utilization * total
    rows = int(cfg.grpo.get("per_device_train_batch_size", 8))
    # with recomputation one layer's activations are live at a time, plus every layer's input
    activations = rows * cfg.max_seq_length * (activation_bytes_per_token(shapes, cfg.lora.r) // max(1, shapes.layers) + 2 * shapes.hidden * shapes.layers)
    need = vllm_share + weights + activations + TRAINER_MARGIN_GIB * GIB + TRAINER_MARGIN_FRACTION * total
    if need > total:
        return False, (f"trl + vLLM colocate would need ≈ {need / GIB:.1f} GiB of this GPU's {total / GIB:.1f} GiB "
                       "(a second 16-bit weight copy beside vLLM's share): Unsloth shares one")
    return True, (f"CUDA GPU, Unsloth and vLLM found; trl + vLLM colocate is faster than Unsloth's LoRA-request generation at 16-bit "
                  f"and its second weight copy fits (≈ {need / GIB:.1f} of {total / GIB:.1f} GiB); --set auto_prefers=memory keeps Unsloth")


def recompute_activations(cfg: RunConfig, model_path: str) -> tuple[bool, str]:
    """Gradient checkpointing on a GPU (``recompute_activations``), and why."""
    if cfg.recompute_activations != "auto":
        return bool(cfg.recompute_activations), f"recompute_activations {str(cfg.recompute_activations).lower()}"
    config = read_config(model_path)
    if config is None:
        return True, "recompute_activations auto: the model's config.json is not local, so the activations cannot be sized"
    colocated = trl_uses_vllm(cfg, True) and cfg.vllm_mode == "colocate"
    fraction = cfg.gpu_memory_utilization if colocated and cfg.gpu_memory_utilization != AUTO_FRACTION else 0.0
    keep, why = keep_activations(
        Shapes.from_config(config), rows=int(cfg.grpo.get("per_device_train_batch_size", 8)), max_len=cfg.max_seq_length,
        completion_len=int(cfg.grpo.get("max_completion_length", 256)), lora_r=0 if cfg.full_finetune else cfg.lora.r,
        vllm_fraction=float(fraction), total_bytes=gpu_total_bytes(), load_in_4bit=cfg.load_in_4bit,
    )
    return not keep, f"recompute_activations auto: {why}"


class TrlBackend(Backend):
    name = "trl"
    auto_rank = 0  # the fallback: runs everywhere

    def unavailable(self, cfg: RunConfig) -> str | None:
        return None

    def auto_choice(self, cfg: RunConfig) -> tuple[bool, str | None]:
        return True, None

    def colocated_vllm(self, cfg: RunConfig) -> bool:
        return cuda_available() and trl_uses_vllm(cfg, True) and cfg.vllm_mode == "colocate"

    def vllm_setup(self, cfg: RunConfig, model_path: str, grpo_kwargs: dict) -> VllmSetup | None:
        setup = super().vllm_setup(cfg, model_path, grpo_kwargs)
        length = grpo_kwargs.get("vllm_max_model_length")
        if setup is not None:
            # TRL leaves vLLM's model length at the model config's (32k tokens for Qwen2.5), and vLLM will not
            # start without KV room for one such sequence (1.1 GiB at 3B): max_seq_length, as on the Unsloth
            # backend, raised by pre-flight to fit the longest prompt and completion; a length the user set stays.
            setup.max_model_len = length or cfg.max_seq_length
            setup.grow_to_fit = length is None
        return setup

    def after_preflight(self, grpo_kwargs: dict, facts: dict) -> None:
        if "vllm_memory" in facts:
            grpo_kwargs.setdefault("vllm_max_model_length", facts["vllm_memory"]["max_model_len"])

    def load_policy(self, cfg: RunConfig, model_path: str) -> LoadedPolicy:
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
                target_modules=target_modules(model, cfg.lora.target_modules),
                task_type="CAUSAL_LM",
            )
        overrides: dict[str, Any] = {}
        notes: list[str] = []
        if not cuda:
            # tiny CPU models: recomputing activations costs more than it saves
            overrides.update(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False)
            if cfg.grpo.get("fsdp") or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
                # accelerate 1.15 turns FSDP on only for GPU-type devices; on CPU it drops the plugin without a word
                notes.append("fsdp: ignored on CPU (accelerate shards only on GPU-type devices); this run is plain data parallel")
        else:
            # on a GPU, TRL's default: activations are recomputed in the backward pass (a 3B model at the
            # reference settings would otherwise hold ~16 GiB more; measured in docs/benchmarks.md), unless
            # recompute_activations is false, or auto and they fit
            recompute, why = recompute_activations(cfg, model_path)
            notes.append(f"activations: {'recomputed in the backward pass' if recompute else 'kept (no recomputation)'} ({why})")
            overrides.update(bf16=kwargs["dtype"] == torch.bfloat16, fp16=kwargs["dtype"] == torch.float16, gradient_checkpointing=recompute)
        if trl_uses_vllm(cfg, cuda):
            if not cuda:
                raise ConfigError("use_vllm needs a CUDA GPU; drop use_vllm (or --set use_vllm=false) on CPU: HF generate is used.")
            overrides.update(use_vllm=True, vllm_mode=cfg.vllm_mode)
            fraction = engine_fraction(cfg, in_process=cfg.vllm_mode == "colocate")
            if fraction is not None:  # server mode: the server's own --gpu-memory-utilization applies
                overrides["vllm_gpu_memory_utilization"] = fraction
        return LoadedPolicy(self.name, model, tok, peft_config, GRPOTrainer, overrides, "cuda" if cuda else "cpu", notes)

    def trainer_class(self, cfg: RunConfig, policy: LoadedPolicy, *, first_round_lengths: list[int] | None, echo: Echo) -> type:
        return make_trainer_class(policy.trainer_base, trim_padding=cfg.trim_padding, group_steps=cfg.group_steps,
                                  first_round_lengths=first_round_lengths, skip_old_logps_pass=cfg.skip_old_logps_pass, echo=echo)

    def building_trainer(self, cfg: RunConfig, echo: Echo) -> ContextManager[None]:
        if cfg.vllm_mode == "server":
            def value(name: str) -> Any:
                return cfg.grpo.get(name, trl_default(name))

            address = value("vllm_server_base_url") or f"http://{value('vllm_server_host')}:{value('vllm_server_port')}"
            return server_errors(address, value("vllm_server_timeout"))
        return extra_engine_kwargs(cfg.vllm_engine_kwargs, echo=echo)

    def trainer_built(self, trainer: Any, cfg: RunConfig, echo: Echo) -> None:
        if not getattr(trainer, "use_vllm", False):
            return
        client = server_client(trainer)
        if client is not None:
            echo(configure_client(client, retries=cfg.vllm_server_retries, timeout=cfg.vllm_server_request_timeout))
        why_not = install_fast_sync(trainer) if cfg.fast_vllm_sync else "fast_vllm_sync is off"
        echo("vLLM weight sync: " + ("grpo-core's (changed LoRA layers only, merged out of place, one load call)" if why_not is None else f"TRL's ({why_not})"))
