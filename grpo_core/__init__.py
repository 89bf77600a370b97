"""grpo-core: GRPO training for LLM reasoners, with rewards, verifiers and
datasets contributed by plugins.

The public API is small and imports nothing heavy::

    from grpo_core import hookimpl, get_rewards, get_reward, get_verifier, get_dataset
"""

from __future__ import annotations

__version__ = "0.1.0"

from .hookspecs import hookimpl
from .verdict import Verdict, VerdictStatus
from .verifier import Verifier


def get_rewards() -> dict:
    """Every registered reward, by name (qualified names where two plugins collide)."""
    from .plugins import registries

    regs = registries()
    return {n: regs.rewards.get(n) for n in regs.rewards.names()}


def get_reward(name: str):
    """The :class:`~grpo_core.registry.RewardSpec` registered as ``name`` (or ``plugin/name``)."""
    from .plugins import registries

    return registries().rewards.get(name)


def get_verifier(name: str):
    """The verifier object registered as ``name``."""
    from .plugins import registries

    return registries().verifiers.get(name).obj


def get_verifiers() -> dict:
    from .plugins import registries

    regs = registries()
    return {n: regs.verifiers.get(n) for n in regs.verifiers.names()}


def get_dataset(name: str):
    """The dataset adapter registered as ``name``."""
    from .plugins import registries

    return registries().datasets.get(name).obj


def get_datasets() -> dict:
    from .plugins import registries

    regs = registries()
    return {n: regs.datasets.get(n) for n in regs.datasets.names()}


def get_plugins(all: bool = False) -> list[dict]:
    """Loaded plugins with their distribution, version, hooks and registrations."""
    from .plugins import plugin_summaries

    return plugin_summaries(include_builtins=all)


__all__ = [
    "__version__",
    "hookimpl",
    "Verdict",
    "VerdictStatus",
    "Verifier",
    "get_rewards",
    "get_reward",
    "get_verifier",
    "get_verifiers",
    "get_dataset",
    "get_datasets",
    "get_plugins",
]
