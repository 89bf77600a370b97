"""Sub-commands of ``grpo-core`` beyond the listings; each module adds one."""

from . import run  # noqa: F401
