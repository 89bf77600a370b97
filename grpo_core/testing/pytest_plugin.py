"""The conformance kit's pytest fixtures, loaded in every pytest session through the ``pytest11`` entry point ``grpo_core``.

Every test suite in an environment with grpo-core gets them with no import::

    def test_my_reward(grpo_register):
        grpo_register(my_plugin_module)
        check_reward("my_reward", answer="42")

pytest loads this module in every session, so it imports nothing heavy
(no torch, transformers, trl or datasets).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from grpo_core.plugins import pm
from grpo_core.testing.conformance import edge_completions


def throwaway_registrations() -> Iterator[Callable[..., str]]:
    """Yield ``register(plugin, name=None) -> name``; when resumed, unregister everything it registered.

    What the ``grpo_register`` fixture is made of: a suite that overrides the
    fixture (to add its own set-up) yields from this, so the isolation stays the same.
    """
    names: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        name = name or f"test-{getattr(plugin, '__name__', type(plugin).__name__)}-{len(names)}"
        pm.register(plugin, name=name)
        names.append(name)
        return name

    try:
        yield register
    finally:
        for n in reversed(names):
            if pm.get_plugin(n) is not None:
                pm.unregister(name=n)


@pytest.fixture
def grpo_register():
    """Register throwaway plugins for one test: ``grpo_register(plugin, name=None)``.

    ``plugin`` is a module, class or object with ``@hookimpl`` functions.
    Everything registered is unregistered when the test ends.
    """
    yield from throwaway_registrations()


@pytest.fixture
def grpo_edge_completions() -> dict[str, str]:
    """The edge-case completions :func:`~grpo_core.testing.check_reward` uses, by name."""
    return edge_completions()
