"""The plugin manager every hook goes through, and the one loop that calls a hook's implementations.

Nothing here imports torch, transformers or trl.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

import pluggy

from grpo_core import hookspecs


class _PluginManager(pluggy.PluginManager):
    """Counts registrations, so the registries know when to re-collect.

    (A signature of names and ``id()``s is not enough: a plugin unregistered
    and garbage-collected can leave its id to the next one of the same name.)
    """

    generation = 0

    def register(self, plugin, name=None):
        out = super().register(plugin, name)
        type(self).generation += 1
        return out

    def unregister(self, plugin=None, name=None):
        out = super().unregister(plugin, name)
        type(self).generation += 1
        return out

    def set_blocked(self, name):
        super().set_blocked(name)
        type(self).generation += 1


pm = _PluginManager("grpo_core")
pm.add_hookspecs(hookspecs)

load_lock = threading.RLock()  # one load or collection at a time (the engine and verifiers may call from threads)


def plugin_name(plugin: Any) -> str:
    return pm.get_name(plugin) or repr(plugin)


def call_each_implementation(
    hook_name: str,
    argument_for: Callable[[str], Any],
    report: Callable[[str, str], None],
    after_each: Callable[[str], None] | None = None,
) -> None:
    """Call every implementation of ``hook_name``, each with the argument ``argument_for(plugin)`` gives it.

    The registries (``register_rewards``, ...) pass each plugin its own ``register``
    function; the CLI passes the click group to ``register_commands``. A plugin
    whose hook raises is reported through ``report(plugin, message)`` and skipped,
    so one broken plugin never breaks the others. ``after_each(plugin)`` runs after
    each implementation, failed or not (the CLI restores any core command it replaced).
    """
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        name = plugin_name(impl.plugin)
        argument = argument_for(name)
        try:
            impl.function(**{a: argument for a in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the rest
            report(name, f"plugin {name!r} failed in {hook_name}: {type(exc).__name__}: {exc}")
        if after_each is not None:
            after_each(name)


def warn(msg: str) -> None:
    print(f"grpo-core: warning: {msg}", file=sys.stderr)
