"""Deprecated: use :mod:`grpo_core.kit.extraction` (or ``grpo_core.kit``). This alias goes in the next release."""

import warnings

from grpo_core.kit.extraction import *  # noqa: F401,F403

warnings.warn(
    "grpo_core.extract is deprecated and will be removed in the next release; import from grpo_core.kit instead.",
    DeprecationWarning,
    stacklevel=2,
)
