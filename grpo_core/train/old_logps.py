"""Skip the old-policy log-prob pass when the policy has not moved since generation.

With vLLM, TRL 1.14 always runs a no-grad forward pass over every generated round to get the
"old" per-token log-probs, because it needs them for vLLM's importance-sampling correction
(``exp(old - sampling)``, truncated or masked), even when the round is trained in a single
optimizer step. In that case (``gradient_accumulation_steps`` a multiple of
``steps_per_generation × num_iterations``: TRL's own test for "aligned" rounds) the weights the
loss sees are the weights that pass would see, so its log-probs are the training pass's own,
detached — which is what TRL already uses as the old log-probs without vLLM.

:class:`SkipOldLogpsPass` (the ``skip_old_logps_pass`` setting, trl backend) therefore:

* answers TRL's old-log-prob call in ``_generate_and_score_completions`` with a placeholder
  instead of a forward pass (the first log-prob call of an aligned training round; a reference
  model's call, when ``beta`` is set, still runs), drops the placeholder from the batch and the
  metrics it fed;
* in the loss, takes the training pass's log-probs, computes the importance-sampling ratio from
  them exactly as TRL computes it from the old log-probs (:func:`importance_sampling_ratio`),
  puts it in the batch before TRL's loss reads it, and logs the sampling metrics TRL would.

The loss and its gradients are TRL's up to float rounding: with the separate pass, the ratio
``exp(logp - old)`` is 1 up to the rounding between two forward passes; here it is exactly 1.
"""

from __future__ import annotations

import math
from typing import Any

#: the metrics TRL computes from the old log-probs while scoring a round; recomputed in the loss
SAMPLING_METRICS = (
    "sampling/sampling_logp_difference/mean",
    "sampling/sampling_logp_difference/max",
    "sampling/importance_sampling_ratio/min",
    "sampling/importance_sampling_ratio/mean",
    "sampling/importance_sampling_ratio/max",
)
MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def importance_sampling_ratio(old_logps, sampling_logps, mask, mode: str, clip_min: float | None, clip_max: float | None):
    """vLLM's importance-sampling ratio as TRL 1.14's ``_generate_and_score_completions`` computes it:
    per token (B, T) or per sequence (B, 1), truncated to [clip_min, clip_max] or masked to 0 outside it."""
    import torch  # deferred: heavy (torch)

    if mode not in MODES:
        raise ValueError(f"unknown vllm_importance_sampling_mode {mode!r}; valid: {', '.join(MODES)}")
    diff = torch.nan_to_num((old_logps - sampling_logps) * mask, nan=0.0)
    if mode.startswith("sequence"):
        diff = diff.sum(dim=-1, keepdim=True)
    ratio = torch.exp(diff)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=clip_min, max=clip_max)
    low = clip_min if clip_min is not None else -math.inf
    high = clip_max if clip_max is not None else math.inf
    return ratio.masked_fill((ratio < low) | (ratio > high), 0.0)


def sampling_metrics(old_logps, sampling_logps, mask, ratio, sequence_level: bool) -> dict[str, float]:
    """TRL's ``sampling/*`` metrics for one batch (one process: no gather)."""
    import torch  # deferred: heavy (torch)

    delta = torch.abs(old_logps - sampling_logps)
    valid = mask.bool()
    delta = delta[valid & ~torch.isnan(delta)]
    flat = ratio.flatten() if sequence_level else ratio[valid]
    zero = torch.tensor(0.0, device=old_logps.device)

    def pick(t, f):
        return f(t) if t.numel() else zero

    return {
        SAMPLING_METRICS[0]: pick(delta, torch.mean).item(),
        SAMPLING_METRICS[1]: pick(delta, torch.max).item(),
        SAMPLING_METRICS[2]: pick(flat, torch.min).item(),
        SAMPLING_METRICS[3]: pick(flat, torch.mean).item(),
        SAMPLING_METRICS[4]: pick(flat, torch.max).item(),
    }


class SkipOldLogpsPass:
    """Mixin for TRL's GRPOTrainer (put it before the trainer class); see the module docstring."""

    _grpo_core_placeholder_pending = False  # the next log-prob call is TRL's old-log-prob pass: skip it
    _grpo_core_loss_batch: dict | None = None  # the batch whose loss is being computed, when its ratio is deferred
    grpo_core_skipped_passes = 0

    def _grpo_core_round_aligned(self) -> bool:
        args = self.args
        every = args.steps_per_generation * self.num_iterations
        return (self.model.training and bool(getattr(self, "use_vllm", False)) and self.vllm_importance_sampling_correction
                and args.gradient_accumulation_steps % every == 0 and self.loss_type != "vespo" and self.rollout_func is None)

    def _generate_and_score_completions(self, inputs):
        if not self._grpo_core_round_aligned():
            return super()._generate_and_score_completions(inputs)
        mode = "train"
        before = {k: len(self._metrics[mode].get(k, ())) for k in SAMPLING_METRICS}
        self._grpo_core_placeholder_pending = True
        try:
            out = super()._generate_and_score_completions(inputs)
        finally:
            skipped = not self._grpo_core_placeholder_pending
            self._grpo_core_placeholder_pending = False
        if not skipped or "tool_mask" in out or out.get("sampling_per_token_logps") is None:
            raise RuntimeError("skip_old_logps_pass: TRL scored this round in a way this lever does not recognise "
                               "(no old-log-prob call, tool masks, or no sampling log-probs); set skip_old_logps_pass=false")
        for key in SAMPLING_METRICS:  # computed from the placeholder: meaningless; the loss logs the real ones
            del self._metrics[mode][key][before[key]:]
        out.pop("old_per_token_logps", None)
        out["importance_sampling_ratio"] = out["sampling_per_token_logps"].new_full(out["sampling_per_token_logps"].shape, math.nan)
        self.grpo_core_skipped_passes += 1
        return out

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs):
        import torch  # deferred: heavy (torch)

        if self._grpo_core_placeholder_pending and not torch.is_grad_enabled():
            self._grpo_core_placeholder_pending = False
            placeholder = torch.zeros(input_ids.size(0), logits_to_keep, device=input_ids.device)
            return placeholder, None, None
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, *args, **kwargs)
        batch = self._grpo_core_loss_batch
        if batch is not None and torch.is_grad_enabled():
            self._grpo_core_loss_batch = None
            old = logps.detach()
            mask, sampling = batch["completion_mask"], batch["sampling_per_token_logps"]
            mode = self.vllm_importance_sampling_mode
            ratio = importance_sampling_ratio(old, sampling, mask, mode, self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max)
            batch["importance_sampling_ratio"] = ratio
            for key, value in sampling_metrics(old, sampling, mask, ratio, mode.startswith("sequence")).items():
                self._metrics["train"][key].append(value)
        return logps, entropies, aux

    def _compute_loss(self, model, inputs: dict[str, Any]):
        deferred = "old_per_token_logps" not in inputs and "sampling_per_token_logps" in inputs and self._grpo_core_round_aligned()
        if not deferred:
            return super()._compute_loss(model, inputs)
        self._grpo_core_loss_batch = inputs
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._grpo_core_loss_batch = None
