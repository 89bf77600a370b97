"""The ``trl`` backend: transformers + PEFT LoRA (or full fine-tuning), optional bitsandbytes 4-bit,
TRL's GRPOTrainer with grpo-core's batching patches, vLLM colocate or server when installed on a GPU,
else HF generate. The one backend that runs on CPU."""

from __future__ import annotations

import importlib.util
from typing import Any, ContextManager

from grpo_core.config.settings import RunConfig
from grpo_core.errors import ConfigError
from grpo_core.runtime.hardware import cuda_available
from grpo_core.train.backends.base import Backend, Echo, LoadedPolicy, engine_fraction, target_modules
from grpo_core.train.preflight import VllmSetup
from grpo_core.train.trl_glue import make_trainer_class
from grpo_core.train.vllm_engine import extra_engine_kwargs
from grpo_core.train.vllm_sync import install_fast_sync


def trl_uses_vllm(cfg: RunConfig, cuda: bool) -> bool:
    """Whether the trl backend generates with vLLM: as set, or (unset) when on a GPU with vLLM installed."""
    if cfg.use_vllm is not None:
        return bool(cfg.use_vllm)
    return cuda and importlib.util.find_spec("vllm") is not None


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
        if not cuda:
            # tiny CPU models: recomputing activations costs more than it saves
            overrides.update(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False)
        else:
            # on a GPU, TRL's default: activations are recomputed in the backward pass (a 3B model at the
            # reference settings would otherwise hold ~16 GiB more; measured in docs/benchmarks.md)
            overrides.update(bf16=kwargs["dtype"] == torch.bfloat16, fp16=kwargs["dtype"] == torch.float16, gradient_checkpointing=True)
        if trl_uses_vllm(cfg, cuda):
            if not cuda:
                raise ConfigError("use_vllm needs a CUDA GPU; drop use_vllm (or --set use_vllm=false) on CPU: HF generate is used.")
            overrides.update(use_vllm=True, vllm_mode=cfg.vllm_mode)
            fraction = engine_fraction(cfg, in_process=cfg.vllm_mode == "colocate")
            if fraction is not None:  # server mode: the server's own --gpu-memory-utilization applies
                overrides["vllm_gpu_memory_utilization"] = fraction
        return LoadedPolicy(self.name, model, tok, peft_config, GRPOTrainer, overrides, "cuda" if cuda else "cpu")

    def trainer_class(self, cfg: RunConfig, policy: LoadedPolicy, *, first_round_lengths: list[int] | None, echo: Echo) -> type:
        return make_trainer_class(policy.trainer_base, trim_padding=cfg.trim_padding, group_steps=cfg.group_steps,
                                  first_round_lengths=first_round_lengths, echo=echo)

    def building_trainer(self, cfg: RunConfig, echo: Echo) -> ContextManager[None]:
        return extra_engine_kwargs(cfg.vllm_engine_kwargs, echo=echo)

    def trainer_built(self, trainer: Any, cfg: RunConfig, echo: Echo) -> None:
        if not getattr(trainer, "use_vllm", False):
            return
        why_not = install_fast_sync(trainer) if cfg.fast_vllm_sync else "fast_vllm_sync is off"
        echo("vLLM weight sync: " + ("grpo-core's (changed LoRA layers only, merged out of place, one load call)" if why_not is None else f"TRL's ({why_not})"))
