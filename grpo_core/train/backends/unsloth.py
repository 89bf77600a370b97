"""The ``unsloth`` backend: ``FastLanguageModel.from_pretrained`` (4-bit or 16-bit, ``fast_inference`` =
vLLM in the same process, FP8 where supported), adapters through ``get_peft_model`` with Unsloth's
gradient checkpointing, then TRL's GRPOTrainer as Unsloth patches it (left exactly as Unsloth makes it,
apart from grpo-core's logging and the longest-first sampler). Needs a CUDA GPU and Unsloth; Unsloth
is imported before trl, inside these methods only."""

from __future__ import annotations

import importlib.util
from typing import Any

from grpo_core.config.settings import RunConfig
from grpo_core.runtime.hardware import cuda_available, import_unsloth_first
from grpo_core.train import is_correction
from grpo_core.train.backends.base import Backend, Echo, LoadedPolicy, engine_fraction, target_modules
from grpo_core.train.backends.trl import colocate_is_the_faster_fit


class UnslothBackend(Backend):
    name = "unsloth"
    auto_rank = 10  # preferred wherever it can run

    def unavailable(self, cfg: RunConfig) -> str | None:
        if not cuda_available():
            return "backend 'unsloth' needs a CUDA GPU and none is visible; use --backend trl (runs on CPU)."
        if not _installed():
            return "backend 'unsloth' is not installed; `pip install 'grpo-core[gpu]'` on a CUDA machine, or use --backend trl."
        return None

    def auto_choice(self, cfg: RunConfig) -> tuple[bool, str | None]:
        if cfg.full_finetune:
            return False, "full fine-tuning runs on the trl backend"
        if not cuda_available():
            return False, "no CUDA GPU visible (trl + PEFT on CPU)"
        if not _installed():
            return False, "CUDA GPU found but Unsloth is not installed"
        trl_faster, why = colocate_is_the_faster_fit(cfg)
        if trl_faster:  # declined: trl, asked next, takes this as its reason
            return False, why
        return True, f"CUDA GPU and Unsloth found ({why})"

    def prepare_process(self) -> None:
        import_unsloth_first()

    def colocated_vllm(self, cfg: RunConfig) -> bool:
        return cuda_available() and bool(cfg.fast_inference)

    def load_policy(self, cfg: RunConfig, model_path: str) -> LoadedPolicy:
        import_unsloth_first()
        from unsloth import FastLanguageModel  # deferred: GPU-only (Unsloth), after the import-order check

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
            target_modules=target_modules(model, cfg.lora.target_modules),
            use_gradient_checkpointing="unsloth",
            random_state=cfg.seed,
        )
        import torch  # deferred: heavy (torch)
        from trl import GRPOTrainer  # deferred: heavy (trl), imported after Unsloth has patched it

        bf16 = torch.cuda.is_bf16_supported()
        # Unsloth's own (offloaded) gradient checkpointing is on the model already; TRL must not add its own
        overrides = {"use_vllm": bool(cfg.fast_inference), "bf16": bf16, "fp16": not bf16, "gradient_checkpointing": False}
        return LoadedPolicy(self.name, model, tok, None, GRPOTrainer, overrides, "cuda")

    def trainer_built(self, trainer: Any, cfg: RunConfig, echo: Echo) -> None:
        # UnslothGRPOConfig defaults vllm_importance_sampling_correction to False; the run asked for its own setting
        if is_correction.restore_on_trainer(trainer, trainer.args):
            echo("mismatch correction: restored on Unsloth's trainer (its config had switched it off)")


def _installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None
