"""Training: backends, the TRL glue and the run orchestration.

Everything here imports torch/trl lazily; :func:`run` is the entry point.
"""

from grpo_core.train.runner import run  # noqa: F401
