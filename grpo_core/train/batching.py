"""How a generation round is cut into optimizer steps, and how much padding each forward pass carries.

When one generation round feeds several optimizer steps (``steps_per_generation > 1``), TRL pads
the whole round to its longest prompt, then shuffles completions across the steps, so every
forward pass carries the round's widest padding. Two changes, both on by default on the trl
backend:

* :func:`trimmed_logps` — each chunk that goes through the model is cut to its own widest prompt
  (left padding only: completions keep their layout, ``logits_to_keep`` is unchanged). With
  rotary positions a uniform shift of every position leaves attention unchanged, so the log-probs
  are the same up to float rounding (a test checks it). ``trim_padding``.
* :func:`group_permutation` — the round is shuffled by whole prompt groups, so each step trains on
  complete groups of ``num_generations`` completions, as it does when generating every step (one
  prompt × 8 per step at the reference settings), and each chunk has one prompt's width.
  ``group_steps``.
"""

from __future__ import annotations

from typing import Any, Callable


def leading_padding(attention_mask) -> int:
    """Number of leading columns that are padding in every row."""
    import torch

    used = attention_mask.bool().any(dim=0)
    if not bool(used.any()):
        return 0
    return int(torch.argmax(used.to(torch.int8)))


def trimmed_logps(call: Callable, input_ids, attention_mask, logits_to_keep: int, batch_size: int | None, **kwargs) -> tuple[Any, Any, None]:
    """Run ``call`` (TRL's log-prob function) chunk by chunk, each chunk without its shared left padding.

    Returns (log-probs, entropies or None, None) concatenated over the chunks, as TRL's function does
    for text models without an auxiliary loss.
    """
    import torch

    step = batch_size or input_ids.size(0)
    logps, entropies = [], []
    for start in range(0, input_ids.size(0), step):
        ids, mask = input_ids[start : start + step], attention_mask[start : start + step]
        lead = min(leading_padding(mask), ids.size(1) - logits_to_keep)  # never cut into the completion
        lp, ent, _ = call(ids[:, lead:], mask[:, lead:], logits_to_keep, batch_size=step, **kwargs)
        logps.append(lp)
        entropies.append(ent)
    ent = torch.cat(entropies, dim=0) if entropies[0] is not None else None
    return torch.cat(logps, dim=0), ent, None


def group_permutation(batch_size: int, group: int):
    """A random order of whole groups of ``group`` consecutive rows (None when they do not tile the batch)."""
    import torch

    if group <= 1 or batch_size % group:
        return None
    order = torch.randperm(batch_size // group)
    return (order[:, None] * group + torch.arange(group)[None, :]).reshape(-1)


def permute_sequence_dict(seq_dict: dict, permutation) -> dict:
    """Apply one row order to every tensor and list in ``seq_dict`` (0-d tensors and None stay)."""
    import torch

    def permute(v):
        if v is None or (isinstance(v, torch.Tensor) and v.ndim == 0):
            return v
        if isinstance(v, torch.Tensor):
            return v[permutation]
        return [v[i] for i in permutation.tolist()]

    return {k: permute(v) for k, v in seq_dict.items()}


def grouped_shuffle(group: int, fallback: Callable) -> Callable:
    """A drop-in for TRL's ``shuffle_sequence_dict`` that keeps prompt groups whole."""

    def shuffle(seq_dict: dict) -> dict:
        first = next(v for v in seq_dict.values() if v is not None)
        perm = group_permutation(len(first), group)
        return fallback(seq_dict) if perm is None else permute_sequence_dict(seq_dict, perm)

    return shuffle
