"""Dynamic sampling (DAPO): a batch trains only on groups whose rewards differ.

A group whose completions all get the same reward has zero advantage: it costs a forward
and backward pass and teaches nothing (and dilutes the loss's token average). DAPO
(Yu et al. 2025, section 3.2) drops such groups and generates more, from further prompts,
until the batch is full again. Here that happens at the one method both backends share,
the trainer's ``_generate_and_score_completions`` (TRL's, and Unsloth's patched copy of it):

1. the round TRL asked for is generated and scored as usual;
2. groups whose weighted rewards all tie are dropped;
3. up to ``max_rounds`` extra rounds generate further prompts (drawn at random from the
   training set) until the dropped groups are replaced; each extra round asks for the
   missing groups divided by the share of groups that have kept so far (at most a full round);
4. the kept groups are padded to one width and concatenated into a batch of the original size.
   When the cap is reached first, tied groups fill the remaining places with their completion
   mask zeroed: they keep the batch's shape but never reach the loss.

Metrics (per logging step, averaged as TRL's are; counted over every process): ``dynamic_sampling/dropped_groups``,
``dynamic_sampling/refilled_groups``, ``dynamic_sampling/unfilled_groups``,
``dynamic_sampling/extra_rounds`` and ``dynamic_sampling/extra_completions``. TRL's own reward
metrics cover every generated round, dropped groups included.

Several processes (``accelerate launch``, ``torchrun``): each generation round is scored on every
process and TRL gathers the rewards, so every process sees which groups of every process tie and
makes the same decision: the same number of extra rounds (each a collective round: a process that ran
one more than another would wait for ever), the same prompts drawn, each process generating its own
share and keeping its own groups whole until it holds as many as it started with.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from grpo_core.errors import ConfigError

TIE_TOLERANCE = 1e-6
#: batch entries that are left-padded (the prompt side); every other 2-D tensor is right-padded
LEFT_PADDED = ("prompt_ids", "prompt_mask")
#: multimodal entries: their rows do not line up with the completions' (images per prompt), so they are refused
MULTIMODAL = {"pixel_values", "image_grid_thw", "pixel_attention_mask", "image_sizes", "spatial_shapes", "num_images", "num_tiles",
              "token_type_ids", "mm_token_type_ids", "image_position_ids"}


def tied_groups(rewards_per_func, weights, group: int) -> list[bool]:
    """Per consecutive group of ``group`` rows: do the weighted rewards all tie? (NaN: unscorable, ignored.)"""
    import torch  # deferred: heavy (torch); the runner imports this module before the model loads

    totals = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    totals[torch.isnan(rewards_per_func).all(dim=1)] = float("nan")
    out = []
    for g in totals.view(-1, group):
        seen = g[~torch.isnan(g)]
        out.append(bool(seen.numel() < 2 or (seen.max() - seen.min()).item() <= TIE_TOLERANCE))
    return out


def tied_from_advantages(advantages, group: int) -> list[bool]:
    """The same question read from the advantages (a tied group's are all 0 under group normalisation)."""
    return [bool(g.abs().max().item() <= TIE_TOLERANCE) for g in advantages.view(-1, group)]


def select_rows(batch: dict, rows: list[int]) -> dict:
    """The batch restricted to ``rows`` (per-row tensors indexed; ``num_items_in_batch`` dropped)."""
    import torch  # deferred: heavy (torch); the runner imports this module before the model loads

    n = batch["completion_ids"].shape[0]
    idx = torch.tensor(rows, dtype=torch.long, device=batch["completion_ids"].device)
    out = {}
    for k, v in batch.items():
        if k == "num_items_in_batch":
            continue
        out[k] = v.index_select(0, idx) if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n else v
    return out


def concat_batches(parts: list[dict], pad_token_id: int) -> dict:
    """Row-wise concatenation, each 2-D entry padded to the widest part (prompts on the left)."""
    import torch  # deferred: heavy (torch); the runner imports this module before the model loads
    import torch.nn.functional as F  # deferred: heavy (torch)

    out: dict[str, Any] = {}
    for k in parts[0]:
        vals = [p[k] for p in parts]
        if not isinstance(vals[0], torch.Tensor) or vals[0].dim() == 0:
            # a batch-wide value (a patched trainer's extra): one value, or the batch cannot be merged
            if any(not _same(v, vals[0]) for v in vals[1:]):
                raise ConfigError(f"dynamic_sampling cannot merge generation rounds whose {k!r} differ ({vals[0]!r} vs others); turn dynamic_sampling off.")
            out[k] = vals[0]
            continue
        if vals[0].dim() == 2:
            width = max(v.shape[1] for v in vals)
            fill = pad_token_id if k in ("prompt_ids", "completion_ids") else 0
            left = k in LEFT_PADDED
            vals = [F.pad(v, (width - v.shape[1], 0) if left else (0, width - v.shape[1]), value=fill) for v in vals]
        out[k] = torch.cat(vals, dim=0)
    return out


def _same(a, b) -> bool:
    import torch  # deferred: heavy (torch); the runner imports this module before the model loads

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool((a == b).all())
    return a == b


def loss_tokens(batch: dict):
    mask = batch["completion_mask"]
    if batch.get("tool_mask") is not None:
        mask = mask * batch["tool_mask"]
    return mask.sum()


class DynamicSampling:
    """Fills a generation batch with groups that carry signal (see the module docstring)."""

    def __init__(self, max_rounds: int, seed: int = 0) -> None:
        self.max_rounds = max_rounds
        self.seed = seed
        self._generator = None
        self.last_rewards = None  # set by the trainer's _calculate_rewards wrapper, per round

    def draw(self, dataset, groups: int, group: int) -> list[dict]:
        """``groups`` further prompts from the training set, each repeated ``group`` times."""
        import torch  # deferred: heavy (torch); the runner imports this module before the model loads

        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed + 7919)
        picks = torch.randint(len(dataset), (groups,), generator=self._generator).tolist()
        return [dict(dataset[i]) for i in picks for _ in range(group)]

    def _tied(self, trainer, batch: dict, group: int) -> list[bool]:
        """Which groups of the round tie, every process's groups in process order (the same list on every process)."""
        rows = batch["completion_ids"].shape[0] * trainer.accelerator.num_processes
        rewards, self.last_rewards = self.last_rewards, None
        if rewards is not None and rewards.shape[0] == rows:  # TRL's rewards, already gathered from every process
            return tied_groups(rewards, trainer.reward_weights, group)
        advantages = batch["advantages"]
        if trainer.accelerator.num_processes > 1:
            advantages = trainer.accelerator.gather(advantages)
        return tied_from_advantages(advantages, group)

    def fill(self, trainer, inputs: list, generate: Callable[[list], dict]) -> dict:
        """The round for ``inputs``, its tied groups replaced (see the module docstring).

        With several processes every process makes the same decisions, from the gathered rewards: it knows
        which of every process's groups tie, so all of them run the same number of extra rounds, each
        drawing the same prompts and generating its own share, and each keeps its own groups whole."""
        import torch  # deferred: heavy (torch); the runner imports this module before the model loads

        group = trainer.num_generations
        processes, me = trainer.accelerator.num_processes, trainer.accelerator.process_index
        batch = generate(inputs)
        multimodal = sorted(set(batch) & MULTIMODAL)
        if multimodal:
            raise ConfigError(f"dynamic_sampling supports text-only batches; this one holds {multimodal}. Turn dynamic_sampling off.")
        rows = batch["completion_ids"].shape[0]
        if rows % group:
            raise ConfigError(f"dynamic_sampling keeps prompt groups whole on each process, and each holds {rows} completions per "
                              f"round, not a multiple of num_generations {group}; make per_device_train_batch_size x "
                              "steps_per_generation a multiple of num_generations, or turn dynamic_sampling off.")
        wanted = rows // group  # groups per process
        tied = self._tied(trainer, batch, group)
        mine = tied[me * wanted:(me + 1) * wanted]
        kept = [(batch, [i for i, t in enumerate(mine) if not t])]
        spare = (batch, [i for i, t in enumerate(mine) if t])
        have = [wanted - sum(tied[p * wanted:(p + 1) * wanted]) for p in range(processes)]
        first, seen, dropped, rounds, extra = sum(have), len(tied), sum(tied), 0, 0
        while min(have) < wanted and rounds < self.max_rounds:
            rounds += 1
            rate = max(sum(have) / seen, 1.0 / wanted)
            ask = min(wanted, math.ceil((wanted - min(have)) / rate))  # groups per process
            drawn = self.draw(trainer.train_dataset, ask * processes, group)  # the same on every process
            more = generate(drawn[me * ask * group:(me + 1) * ask * group])
            extra += ask * group * processes
            t = self._tied(trainer, more, group)
            for p in range(processes):
                good = [i for i, x in enumerate(t[p * ask:(p + 1) * ask]) if not x][: wanted - have[p]]
                if p == me:
                    kept.append((more, good))
                have[p] += len(good)
            seen, dropped = seen + len(t), dropped + sum(t)
        unfilled = wanted - have[me]
        parts = []
        for b, groups in kept:
            if groups:
                parts.append(select_rows(b, [g * group + j for g in groups for j in range(group)]))
        if unfilled:
            b, groups = spare
            filler = select_rows(b, [g * group + j for g in groups[:unfilled] for j in range(group)])
            filler["completion_mask"] = torch.zeros_like(filler["completion_mask"])  # shape only: never in the loss
            filler["advantages"] = torch.zeros_like(filler["advantages"])
            parts.append(filler)
        out = concat_batches(parts, trainer.processing_class.pad_token_id if hasattr(trainer.processing_class, "pad_token_id")
                             else trainer.processing_class.tokenizer.pad_token_id)
        # TRL's count is every process's loss tokens (its loss divides by it and by the process count)
        tokens = loss_tokens(out)
        out["num_items_in_batch"] = trainer.accelerator.gather(tokens).sum() if processes > 1 else tokens
        m = trainer._metrics["train"]
        m["dynamic_sampling/dropped_groups"].append(float(dropped))
        m["dynamic_sampling/refilled_groups"].append(float(sum(have) - first))
        m["dynamic_sampling/unfilled_groups"].append(float(wanted * processes - sum(have)))
        m["dynamic_sampling/extra_rounds"].append(float(rounds))
        m["dynamic_sampling/extra_completions"].append(float(extra))
        return out
