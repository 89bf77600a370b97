"""The run's own metrics in the trainer's log: a mixin for whatever GRPO trainer class a backend builds.

Sources (the reward engine's wrappers, the step clock) are handed to the trainer's constructor as
``metric_sources``; each logged training step gets what each source's ``pop_metrics()`` returns.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol


class MetricSource(Protocol):
    def pop_metrics(self) -> dict[str, float]: ...


class LogsRunMetrics:
    """Put first in a trainer's bases: ``with_run_metrics(cls)`` does."""

    def __init__(self, *args: Any, metric_sources: Iterable[MetricSource] = (), **kwargs: Any) -> None:
        self.metric_sources = tuple(metric_sources)
        super().__init__(*args, **kwargs)

    def log(self, logs, *args, **kwargs):
        if "loss" in logs:  # a training step's record, not an evaluation's or the closing summary
            for source in self.metric_sources:
                logs.update(source.pop_metrics())
        return super().log(logs, *args, **kwargs)


def with_run_metrics(trainer_class: type) -> type:
    """``trainer_class`` taking ``metric_sources=`` in its constructor, named ``GrpoCore<TRL's class>``."""
    name = trainer_class.__name__
    return type(name if name.startswith("GrpoCore") else f"GrpoCore{name}", (LogsRunMetrics, trainer_class), {"__module__": trainer_class.__module__})
