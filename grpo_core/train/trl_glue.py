"""Glue between the reward engine and TRL's GRPOTrainer.

TRL calls each reward function in turn. We hand it one thin wrapper per
chosen reward (so TRL's own ``rewards/<name>/mean|std`` logging and
``reward_weights`` work as usual); the first wrapper of a batch scores *all*
rewards at once through the :class:`~grpo_core.rewards.engine.RewardEngine`, which
runs them concurrently, and the others read the cached result.
"""

from __future__ import annotations

from typing import Any, Callable

from grpo_core.kit.extraction import completion_text
from grpo_core.rewards.engine import RewardEngine
from grpo_core.train import batching  # called through the module, so tests can substitute its functions
from grpo_core.train.old_logps import SkipOldLogpsPass


def degenerate(text: str) -> bool:
    """A cheap degeneracy test: one token repeated, or mostly non-text."""
    if len(text) < 32:
        return False
    words = text.split()
    if len(words) >= 8 and len(set(words)) / len(words) < 0.2:
        return True
    printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
    return printable / len(text) < 0.9


class EngineRewardFuncs:
    """Builds the per-reward callables TRL receives, backed by one engine."""

    def __init__(self, engine: RewardEngine) -> None:
        self.engine = engine
        self._key: Any = None
        self._result = None
        self.degenerate_frac: list[float] = []
        self.batches = 0

    def funcs(self) -> list:
        return [self._make(i, name) for i, name in enumerate(self.engine.names)]

    def _make(self, index: int, name: str):
        def reward(prompts=None, completions=None, **kwargs):
            key = (id(completions), len(completions))
            if index == 0 or key != self._key or self._result is None:
                self._key = key
                self._result = self.engine.score(completions, prompts=prompts, **kwargs)
                self.batches += 1
                texts = [completion_text(c) for c in completions]
                self.degenerate_frac.append(sum(map(degenerate, texts)) / max(1, len(texts)))
            return self._result.values[name]

        reward.__name__ = name  # TRL names its metrics after __name__
        reward.__qualname__ = name
        return reward

    def pop_metrics(self) -> dict[str, float]:
        m = self.engine.pop_metrics()
        if self.degenerate_frac:
            m["completions/degenerate_frac"] = sum(self.degenerate_frac) / len(self.degenerate_frac)
            self.degenerate_frac = []
        return m


def make_trainer_class(base, *, trim_padding: bool = False, group_steps: bool = False, first_round_lengths: list[int] | None = None,
                       skip_old_logps_pass: bool = False, echo: Callable[[str], None] | None = None):
    """A subclass of TRL's (or Unsloth's patched) GRPOTrainer (the run's metrics are logged by
    :mod:`grpo_core.train.trainer_metrics`). With ``trim_padding`` or ``group_steps`` (trl backend only; Unsloth's trainer is left
    exactly as Unsloth makes it) it also cuts each forward pass to its own longest prompt, or keeps
    prompt groups whole per step (:mod:`grpo_core.train.batching`). With ``first_round_lengths``
    (the training prompts' token counts, both backends) the first generation round holds the
    longest prompts (:class:`~grpo_core.train.batching.LongestFirstSampler`), which tells ``echo``
    whether it could apply the swap. With ``skip_old_logps_pass`` (trl backend) a round trained in one
    optimizer step takes its old log-probs from the training pass (:mod:`grpo_core.train.old_logps`)."""

    cls = base
    if trim_padding or group_steps:

        class GrpoCoreTrainer(cls):  # noqa: F811  (the same name in logs and reprs)
            def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
                parent = super()._get_per_token_logps_and_entropies
                text_only = all(v is None for k, v in kwargs.items() if k not in ("compute_entropy", "batch_size", "compute_aux_loss"))
                if not trim_padding or kwargs.get("compute_aux_loss") or len(args) != 3 or not text_only:
                    return parent(model, *args, **kwargs)
                input_ids, attention_mask, logits_to_keep = args
                batch_size = kwargs.pop("batch_size", None)
                kwargs.pop("compute_aux_loss", None)
                return batching.trimmed_logps(lambda ids, mask, keep, **kw: parent(model, ids, mask, keep, **kw),
                                     input_ids, attention_mask, logits_to_keep, batch_size, **kwargs)

            def _prepare_inputs(self, *args, **kwargs):
                if not (group_steps and self.model.training):
                    return super()._prepare_inputs(*args, **kwargs)
                import trl.trainer.grpo_trainer as grpo_module  # deferred: heavy (trl)

                original = getattr(grpo_module, "shuffle_sequence_dict", None)
                if original is None:  # a TRL that cuts rounds differently: leave it as it is
                    return super()._prepare_inputs(*args, **kwargs)
                grpo_module.shuffle_sequence_dict = batching.grouped_shuffle(self.num_generations, original)
                try:
                    return super()._prepare_inputs(*args, **kwargs)
                finally:
                    grpo_module.shuffle_sequence_dict = original

        cls = GrpoCoreTrainer
    if first_round_lengths is not None:

        class GrpoCoreTrainer(cls):  # noqa: F811
            def _get_train_sampler(self, *args, **kwargs):
                return batching.LongestFirstSampler(super()._get_train_sampler(*args, **kwargs), first_round_lengths, report=echo)

        cls = GrpoCoreTrainer
    if skip_old_logps_pass:

        class GrpoCoreTrainer(SkipOldLogpsPass, cls):  # noqa: F811
            pass

        cls = GrpoCoreTrainer
    if cls is not base:
        cls.__name__ = f"GrpoCore{base.__name__}"
    return cls
