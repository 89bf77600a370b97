"""The generation batch both backends share: dynamic sampling fills it, the mismatch is read from it.

TRL's ``_generate_and_score_completions`` (and Unsloth's patched copy of it) builds each training
batch. :func:`with_generation_hooks` puts :class:`GenerationHooks` first in a trainer's bases, so the
same two additions work whatever class a backend builds:

* with ``dynamic_sampling=`` (a :class:`~grpo_core.train.dynamic_sampling.DynamicSampling`, handed to
  the constructor), groups whose rewards all tie are replaced from further prompts;
* every training batch's sampler/trainer mismatch is logged (:func:`grpo_core.train.is_correction.record`).
"""

from __future__ import annotations

from typing import Any

from grpo_core.train import is_correction
from grpo_core.train.dynamic_sampling import DynamicSampling


class GenerationHooks:
    """Put first in a trainer's bases: ``with_generation_hooks(cls)`` does."""

    def __init__(self, *args: Any, dynamic_sampling: DynamicSampling | None = None, **kwargs: Any) -> None:
        self.dynamic_sampling = dynamic_sampling
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
        batch = self.dynamic_sampling.fill(self, inputs, parent) if self.dynamic_sampling is not None else parent(inputs)
        is_correction.record(self, batch)
        return batch


def with_generation_hooks(trainer_class: type) -> type:
    """``trainer_class`` taking ``dynamic_sampling=`` in its constructor and logging the mismatch."""
    name = trainer_class.__name__
    return type(name if name.startswith("GrpoCore") else f"GrpoCore{name}", (GenerationHooks, trainer_class),
                {"__module__": trainer_class.__module__})
