"""Deprecated: use :mod:`grpo_core.kit.datasets` (or ``grpo_core.kit``). This alias goes in the next release."""

import warnings

from grpo_core.kit.datasets import *  # noqa: F401,F403

warnings.warn(
    "grpo_core.datasets is deprecated and will be removed in the next release; import from grpo_core.kit instead.",
    DeprecationWarning,
    stacklevel=2,
)
