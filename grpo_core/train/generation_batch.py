"""The generation batch both backends share: dynamic sampling fills it, the mismatch is read from it, its rounds are logged.

TRL's ``_generate_and_score_completions`` (and Unsloth's patched copy of it) builds each training
batch. :func:`with_generation_hooks` puts :class:`GenerationHooks` first in a trainer's bases, so the
same two additions work whatever class a backend builds:

* with ``dynamic_sampling=`` (a :class:`~grpo_core.train.dynamic_sampling.DynamicSampling`, handed to
  the constructor), groups whose rewards all tie are replaced from further prompts;
* every training batch's sampler/trainer mismatch is logged (:func:`grpo_core.train.is_correction.record`);
* with ``rollout_log=`` (a :class:`~grpo_core.train.rollout_log.RolloutLog`), each generation round's
  completions, rewards and advantages are appended to ``rollouts.jsonl``.
"""

from __future__ import annotations

from typing import Any

from grpo_core.train import is_correction
from grpo_core.train.dynamic_sampling import DynamicSampling
from grpo_core.train.rollout_log import RolloutLog


class GenerationHooks:
    """Put first in a trainer's bases: ``with_generation_hooks(cls)`` does."""

    def __init__(self, *args: Any, dynamic_sampling: DynamicSampling | None = None, rollout_log: RolloutLog | None = None,
                 **kwargs: Any) -> None:
        self.dynamic_sampling = dynamic_sampling
        self.rollout_log = rollout_log
        super().__init__(*args, **kwargs)

    def _calculate_rewards(self, *args, **kwargs):
        rewards = super()._calculate_rewards(*args, **kwargs)
        if self.dynamic_sampling is not None:
            self.dynamic_sampling.last_rewards = rewards  # which groups tie, read before the advantages
        return rewards

    def _generate_and_score_completions(self, inputs):
        parent = super()._generate_and_score_completions
        if not self.model.training:
            return parent(inputs)
        rounds = 0

        def scored(round_inputs):
            nonlocal rounds
            batch = parent(round_inputs)
            if self.rollout_log is not None:  # every process holds the same number of rows in a round
                self.rollout_log.append(self, len(round_inputs) * self.accelerator.num_processes, rounds)
            rounds += 1
            return batch

        batch = self.dynamic_sampling.fill(self, inputs, scored) if self.dynamic_sampling is not None else scored(inputs)
        is_correction.record(self, batch)
        return batch


def with_generation_hooks(trainer_class: type) -> type:
    """``trainer_class`` taking ``dynamic_sampling=`` in its constructor and logging the mismatch."""
    name = trainer_class.__name__
    return type(name if name.startswith("GrpoCore") else f"GrpoCore{name}", (GenerationHooks, trainer_class),
                {"__module__": trainer_class.__module__})
