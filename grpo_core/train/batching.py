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

And :class:`LongestFirstSampler` — the first generation round holds the dataset's longest prompts,
so a run that runs out of memory on long sequences does so at step 1. ``longest_first``.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable


def leading_padding(attention_mask) -> int:
    """Number of leading columns that are padding in every row."""
    import torch  # deferred: heavy (torch)

    used = attention_mask.bool().any(dim=0)
    if not bool(used.any()):
        return 0
    return int(torch.argmax(used.to(torch.int8)))


def trimmed_logps(call: Callable, input_ids, attention_mask, logits_to_keep: int, batch_size: int | None, **kwargs) -> tuple[Any, Any, None]:
    """Run ``call`` (TRL's log-prob function) chunk by chunk, each chunk without its shared left padding.

    Returns (log-probs, entropies or None, None) concatenated over the chunks, as TRL's function does
    for text models without an auxiliary loss.
    """
    import torch  # deferred: heavy (torch)

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
    import torch  # deferred: heavy (torch)

    if group <= 1 or batch_size % group:
        return None
    order = torch.randperm(batch_size // group)
    return (order[:, None] * group + torch.arange(group)[None, :]).reshape(-1)


def permute_sequence_dict(seq_dict: dict, permutation) -> dict:
    """Apply one row order to every tensor and list in ``seq_dict`` (0-d tensors and None stay)."""
    import torch  # deferred: heavy (torch)

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


def longest_first_swap(first_round: list[int], lengths: list[int]) -> dict[int, int]:
    """Dataset-index swaps that put the ``len(first_round)`` longest prompts in the first round.

    ``first_round`` holds the round's distinct prompt indices; ``lengths`` the prompt token counts,
    by dataset index. A longest prompt already in the round stays where it is; each other one
    trades places with a round member that is not among the longest. Returns a map that is its own
    inverse (indices it does not name stay themselves).
    """
    k = len(first_round)
    longest = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))[:k]
    top, members = set(longest), set(first_round)
    incoming = [i for i in longest if i not in members]
    outgoing = [i for i in first_round if i not in top]
    swap: dict[int, int] = {}
    for a, b in zip(incoming, outgoing):
        swap[a], swap[b] = b, a
    return swap


class LongestFirstSampler:
    """Wraps TRL's ``RepeatSampler`` so the first generation round holds the longest prompts.

    On the first ``__iter__`` only, the first round's distinct prompts (``batch_size`` of them,
    repeated ``mini_repeat_count`` × ``repeat_count`` times) trade dataset indices with the longest
    ones (:func:`longest_first_swap`); the swap is applied to that whole epoch, so every prompt
    appears as often as without it and the rest of the order is TRL's. Later epochs pass through.
    Every process builds the same sampler with the same seed, so all agree on the swap. Other
    attributes (``generator``, which accelerate synchronises) are the base sampler's.
    """

    def __init__(self, base, lengths: list[int], report: Callable[[str], None] | None = None) -> None:
        self.base = base
        self.lengths = list(lengths)
        self.report = report  # told once, when the first epoch starts, whether the swap was applied
        self._epochs = 0
        self.first_round: list[int] | None = None  # after the first epoch starts: the round's prompts

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str):
        if name == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def __iter__(self):
        self._epochs += 1
        it = iter(self.base)
        per_round = getattr(self.base, "batch_size", 0) * getattr(self.base, "mini_repeat_count", 0) * getattr(self.base, "repeat_count", 1)
        if self._epochs > 1:
            yield from it
            return
        if per_round <= 0 or len(self.lengths) != getattr(self.base, "num_samples", len(self.lengths)):
            self._tell(f"longest_first: not applied: the trainer's sampler ({type(self.base).__name__}) is not TRL's RepeatSampler "
                       f"over these {len(self.lengths)} prompts; TRL's order is used")
            yield from it
            return
        head = list(islice(it, per_round))
        drawn = list(dict.fromkeys(head))  # the round's distinct prompts, in TRL's order
        swap = longest_first_swap(drawn, self.lengths)
        self.first_round = [swap.get(i, i) for i in drawn]
        firsts = [self.lengths[i] for i in self.first_round]
        self._tell(f"longest_first: the first generation round holds the {len(firsts)} longest prompts ({min(firsts)}-{max(firsts)} tokens)")
        for i in head:
            yield swap.get(i, i)
        for i in it:
            yield swap.get(i, i)

    def _tell(self, line: str) -> None:
        if self.report is not None:
            self.report(line)
