"""Correction for the sampler/trainer mismatch: truncated importance sampling, on both backends.

vLLM samples with its own kernels (and, colocated, with weights synced in bf16), so the
probability it gave a sampled token differs from the trainer's. TRL corrects the policy
gradient by ``min(pi_train / pi_vllm, C)`` per token (``vllm_importance_sampling_correction``,
mode ``token_truncate``: truncated IS, as in "Your Efficient RL Framework Secretly Brings You
Off-Policy RL Training"). grpo-core turns it on by default through ``mismatch_correction``.

Unsloth's GRPO config (``UnslothGRPOConfig``, which replaces TRL's when Unsloth is imported)
defaults ``vllm_importance_sampling_correction`` to False. grpo-core therefore always passes the
setting explicitly, and the Unsloth backend (:mod:`grpo_core.train.backends.unsloth`) calls
:func:`restore_on_trainer` on the built trainer, setting it back where the patched trainer still switched it off.

The mismatch is logged on both backends by :func:`mismatch_metrics`, from the generation batch
the trainer built (``sampling_per_token_logps`` from vLLM, ``old_per_token_logps`` from the
trainer): ``mismatch/logp_diff_mean`` (mean |log p_train - log p_vllm| per completion token),
``mismatch/logp_diff_max`` and, when the correction is on, ``mismatch/is_weight_mean`` and
``mismatch/is_weight_clipped`` (share of tokens whose weight hit the clip). Without vLLM (HF
generate, CPU) the sampler is the trainer: there is nothing to correct and nothing is logged.
"""

from __future__ import annotations

from typing import Any

from grpo_core.config.settings import RunConfig

GRPO_KEYS = ("vllm_importance_sampling_correction", "vllm_importance_sampling_mode", "vllm_importance_sampling_clip_max")


def correction_kwargs(cfg: RunConfig) -> dict[str, Any]:
    """The GRPOConfig fields for ``cfg.mismatch_correction`` (TRL's own fields, when set, win)."""
    if cfg.mismatch_correction in ("off", False):  # YAML reads a bare `off` as false
        wanted: dict[str, Any] = {"vllm_importance_sampling_correction": False}
    else:
        wanted = {"vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": cfg.mismatch_correction,
                  "vllm_importance_sampling_clip_max": cfg.mismatch_clip}
    return {k: v for k, v in wanted.items() if k not in cfg.grpo}


def restore_on_trainer(trainer, args) -> bool:
    """Make the built trainer apply what ``args`` asked for (a patched trainer may have switched the
    correction off); True when something had to be set back."""
    wanted = bool(getattr(args, "vllm_importance_sampling_correction", False))
    restored = False
    if getattr(trainer, "vllm_importance_sampling_correction", wanted) != wanted:
        trainer.vllm_importance_sampling_correction = wanted
        restored = True
    for key in ("vllm_importance_sampling_mode", "vllm_importance_sampling_clip_max"):
        value = getattr(args, key, None)
        if value is not None and hasattr(trainer, key) and getattr(trainer, key) != value:
            setattr(trainer, key, value)
            restored = True
    return restored


def describe(trainer, args) -> str:
    """A line saying what correction the built trainer applies."""
    if not getattr(trainer, "use_vllm", False):
        return "mismatch correction: inert (generation is the trainer's own HF generate: no sampler/trainer mismatch)"
    if not getattr(trainer, "vllm_importance_sampling_correction", False):
        return "mismatch correction: off (mismatch_correction=off); the mismatch is still logged"
    mode = getattr(args, "vllm_importance_sampling_mode", "?")
    clip = getattr(args, "vllm_importance_sampling_clip_max", None)
    return f"mismatch correction: {mode}, weights clipped at {clip}"


def mismatch_metrics(batch: dict, clip: float | None = None) -> dict[str, float]:
    """Mean/max |log p_train - log p_sampler| over completion tokens, and the IS weights' mean and clipped share."""
    sampling = batch.get("sampling_per_token_logps")
    old = batch.get("old_per_token_logps")
    mask = batch.get("completion_mask")
    if sampling is None or old is None or mask is None:
        return {}
    keep = mask.bool()
    delta = (old - sampling).abs()[keep]
    delta = delta[~delta.isnan()]
    out: dict[str, float] = {}
    if delta.numel():
        out["mismatch/logp_diff_mean"] = delta.mean().item()
        out["mismatch/logp_diff_max"] = delta.max().item()
    ratio = batch.get("importance_sampling_ratio")
    if ratio is not None:
        flat = ratio.flatten() if ratio.shape[-1] == 1 else ratio[keep]
        if flat.numel():
            out["mismatch/is_weight_mean"] = flat.mean().item()
            if clip is not None:
                out["mismatch/is_weight_clipped"] = (flat >= clip - 1e-6).float().mean().item()
    return out


def record(trainer, batch: dict) -> None:
    """Append the batch's mismatch metrics to the trainer's metric lists (averaged per logging step, as TRL's are)."""
    for k, v in mismatch_metrics(batch, getattr(trainer, "vllm_importance_sampling_clip_max", None)).items():
        trainer._metrics["train"][k].append(v)
