"""The hooks a grpo-core plugin can implement.

This module is the whole extension API. Each hook takes a ``register``
callback owned by the core, which records where every item came from and
refuses silent overwrites. See docs/plugins/hooks.md for one section per hook.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("grpo_core")
hookimpl = HookimplMarker("grpo_core")


@hookspec
def register_rewards(register):
    """Register reward functions.

    Call ``register(func, name=None, **metadata)`` once per reward. ``func``
    follows TRL's contract: ``func(completions, **kwargs) -> list[float | None]``
    with dataset columns (``answer``, ...) and ``prompts`` as keyword arguments.
    Metadata the core understands: ``description``, ``requires`` (dataset
    columns the reward needs), ``default_weight``, ``timeout`` (seconds) and
    ``cpu_bound`` (run in a worker process) and ``options`` (``{name: default}``:
    keyword options users set with ``--reward-option REWARD.NAME=VALUE`` or YAML
    ``reward_options:``; the core passes them to every call).
    """


@hookspec
def register_verifiers(register):
    """Register answer verifiers.

    Call ``register(verifier, name=None)``. A verifier has
    ``extract(text) -> str | None``, ``verify(*, gold, pred) -> Verdict`` and
    ``check(*, gold, response) -> Verdict``. Subclassing
    :class:`grpo_core.Verifier` provides ``check``, hard time limits, caching
    and a batch API.
    """


@hookspec
def register_datasets(register):
    """Register dataset adapters.

    Call ``register(adapter, name=None)``. An adapter has ``load(split, **options)``
    returning a ``datasets.Dataset`` with at least ``prompt`` (chat messages),
    ``answer`` (canonical gold string), ``id`` and ``source`` columns, and a
    ``verifier`` attribute naming the verifier that checks its answers.
    """


@hookspec
def register_commands(cli):
    """Add sub-commands to the ``grpo-core`` click group ``cli``."""
