"""Look up what plugins registered, by name: the functions ``grpo_core`` re-exports at its top level."""

from __future__ import annotations

from pathlib import Path

from grpo_core.errors import ConfigError, UnknownNameError
from grpo_core.kit import datasets as kit_datasets
from grpo_core.kit.verifier import shipped_verifier
from grpo_core.plugins.registries import plugin_summaries, registries
from grpo_core.runtime.deadline import in_worker


def get_rewards() -> dict:
    """Every registered reward, by name (qualified names where two plugins collide)."""
    regs = registries()
    return {n: regs.rewards.get(n) for n in regs.rewards.names()}


def get_reward(name: str):
    """The :class:`~grpo_core.plugins.registry.RewardSpec` registered as ``name`` (or ``plugin/name``)."""
    return registries().rewards.get(name)


def get_verifier(name: str):
    """The verifier object registered as ``name``.

    In a worker process, the verifier the parent sent with the task (see
    :class:`~grpo_core.kit.verifier.ShippedVerifiers`): no plugin is loaded to find it."""
    if in_worker():
        found = shipped_verifier(name)
        if found is not None:
            return found
    return registries().verifiers.get(name).obj


def get_verifiers() -> dict:
    """Every registered verifier entry, by name."""
    regs = registries()
    return {n: regs.verifiers.get(n) for n in regs.verifiers.names()}


#: file endings that say a --dataset name is really a file
DATA_FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".parquet", ".csv")


def get_dataset(name: str):
    """The dataset adapter registered as ``name``; a name that is a file gets how to load a file."""
    try:
        return registries().datasets.get(name).obj
    except UnknownNameError as exc:
        if name.lower().endswith(DATA_FILE_SUFFIXES) or "/" in name or Path(name).exists():
            kind = "parquet" if name.lower().endswith(".parquet") else "hf" if Path(name).is_dir() else "jsonl"
            raise ConfigError(f"{name!r} is not a dataset name but looks like a file; load a file with "
                              f"--dataset {kind}:{name} (jsonl:, parquet:, or hf: for a datasets folder).") from None
        raise exc


def get_datasets() -> dict:
    """Every registered dataset adapter entry, by name."""
    regs = registries()
    return {n: regs.datasets.get(n) for n in regs.datasets.names()}


def get_plugins(all: bool = False) -> list[dict]:
    """Loaded plugins with their distribution, version, hooks and registrations."""
    return plugin_summaries(include_builtins=all)


# The kit's DatasetAdapter checks gold answers with its verifier, which it names;
# the kit sits below the plugins, so the plugins hand it the lookup by name.
kit_datasets.use_verifier_lookup(get_verifier)
