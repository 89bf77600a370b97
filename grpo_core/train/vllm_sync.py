"""Pushing a LoRA policy's weights into a colocated vLLM engine, cheaply.

TRL's colocate sync (``VLLMGeneration.sync_weights``) merges every adapter
into the training weights in place, walks all parameters, calls vLLM's
``load_weights`` once per parameter, then unmerges. grpo-core's sync:

* computes ``W + scale * B @ A`` out of place (in float32, then the model's
  dtype), so the training weights are never modified and cannot drift by
  repeated bf16 merge/unmerge rounding;
* sends only the weights that can change: the LoRA-wrapped layers and any
  trainable non-LoRA parameter. vLLM loaded the same frozen base weights at
  start-up, and nothing else moves;
* hands vLLM one lazy stream of tensors in a single ``load_weights`` call, so
  vLLM's per-call set-up (building its parameter table) happens once.

It applies to the single-process or data-parallel colocate case with plain
(16/32-bit) base layers. FSDP, DeepSpeed, quantised base layers, sleep mode
and server mode keep TRL's own sync; :func:`install_fast_sync` says which
and why.
"""

from __future__ import annotations

from typing import Any, Iterator


def _lora_layers(model) -> Iterator[tuple[str, Any]]:
    from peft.tuners.lora import LoraLayer  # deferred: heavy (peft)

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


def _vllm_name(peft_name: str) -> str:
    return peft_name.removeprefix("base_model.model.").replace(".base_layer", "")


def changing_weights(model) -> Iterator[tuple[str, Any]]:
    """(vLLM name, tensor) for every weight the trainer can have changed, LoRA merged in."""
    import torch  # deferred: heavy (torch)

    with torch.no_grad():
        lora_prefixes = []
        for name, layer in _lora_layers(model):
            lora_prefixes.append(name + ".")
            base = layer.get_base_layer()
            weight = base.weight.float()
            for adapter in layer.active_adapters:
                if adapter in layer.lora_A:
                    weight = weight + layer.get_delta_weight(adapter).float()
            yield _vllm_name(name) + ".weight", weight.to(base.weight.dtype)
            if getattr(base, "bias", None) is not None and base.bias.requires_grad:
                yield _vllm_name(name) + ".bias", base.bias
        for name, param in model.named_parameters():
            if not param.requires_grad or "lora_" in name or any(name.startswith(p) for p in lora_prefixes):
                continue
            name = name.replace("modules_to_save.default.", "")
            if "original_module" in name:
                continue
            yield _vllm_name(name), param.data


def why_not_fast(trainer) -> str | None:
    """None when grpo-core's sync applies to this trainer, else the reason it does not."""
    gen = getattr(trainer, "vllm_generation", None)
    if not getattr(trainer, "use_vllm", False) or gen is None:
        return "vLLM is not used"
    if getattr(gen, "mode", None) != "colocate":
        return "vLLM server mode"
    if getattr(gen, "enable_sleep_mode", False):
        return "vLLM sleep mode"
    dist = getattr(gen, "_dist", None)
    if dist is not None and (getattr(dist, "is_fsdp", False) or getattr(dist, "is_deepspeed", False)):
        return "sharded training (FSDP/DeepSpeed)"
    model = trainer.accelerator.unwrap_model(trainer.model) if hasattr(trainer, "accelerator") else trainer.model
    layers = list(_lora_layers(model))
    if not layers:
        return "not a LoRA model"
    import torch  # deferred: heavy (torch)

    for _, layer in layers:
        base = layer.get_base_layer()
        if type(base) is not torch.nn.Linear:
            return f"base layers of type {type(base).__name__} (quantised)"
        if layer.merged:
            return "adapters are merged"
    if getattr(gen, "llm", None) is None:
        return "no vLLM engine in this process"
    return None


def vllm_model(gen):
    """The model inside a colocated vLLM engine (the same object TRL loads weights into)."""
    return gen.llm.llm_engine.model_executor.driver_worker.model_runner.model


def install_fast_sync(trainer) -> str | None:
    """Replace the trainer's vLLM weight sync with :func:`changing_weights`. Returns the reason when it cannot."""
    reason = why_not_fast(trainer)
    if reason:
        return reason
    gen = trainer.vllm_generation
    model = trainer.accelerator.unwrap_model(trainer.model)

    def sync_weights():
        vllm_model(gen).load_weights(changing_weights(model))
        gen.llm.reset_prefix_cache()

    gen.sync_weights = sync_weights
    return None
