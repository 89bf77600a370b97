"""Plugin discovery and the registries built from it.

Three sources, in a fixed order:

1. installed distributions with an entry point in the ``grpo_core`` group,
   all of them, or only those named in ``GRPO_CORE_LOAD_PLUGINS=a,b``
   (an empty value loads none);
2. plugins registered in-process with ``pm.register(obj, name=...)``
   (tests, notebooks, ``--plugins path/to/file.py``);
3. the built-ins in :data:`DEFAULT_PLUGINS`, which use the same hooks.

Nothing here imports torch, transformers or trl.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import GrpoCoreError, RegistrationError
from .registry import Entry, Provenance, Registry, RewardSpec, make_entry, make_reward_spec

ENTRY_POINT_GROUP = "grpo_core"
LOAD_ENV = "GRPO_CORE_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "grpo_core.builtin.format_rewards",
    "grpo_core.builtin.arithmetic",
)

pm = pluggy.PluginManager("grpo_core")
pm.add_hookspecs(hookspecs)

_loaded = False
_load_lock = threading.RLock()
load_errors: dict[str, str] = {}  # plugin or distribution -> error text


def _core_version() -> str:
    from . import __version__

    return __version__


def load_plugins() -> None:
    """Load plugins once per process (safe to call often)."""
    global _loaded
    with _load_lock:
        if _loaded:
            return
        _loaded = True
        only = os.environ.get(LOAD_ENV)
        if only is None:
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                _register_entry_point(ep)
        else:
            wanted = [n.strip() for n in only.split(",") if n.strip()]
            installed = {d: eps for d, eps in _entry_point_distributions().items()}
            for dist_name in wanted:
                key = _norm(dist_name)
                if key not in installed:
                    load_errors[dist_name] = (
                        f"{LOAD_ENV} names {dist_name!r}, which is not an installed grpo-core plugin distribution. "
                        f"Installed: {', '.join(sorted(installed)) or '(none)'}."
                    )
                    continue
                for ep in installed[key]:
                    _register_entry_point(ep)
        for modname in DEFAULT_PLUGINS:
            if pm.get_plugin(modname) is None:
                pm.register(importlib.import_module(modname), name=modname)
        pm.check_pending()


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _entry_point_distributions() -> dict[str, list]:
    out: dict[str, list] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            out.setdefault(_norm(dist.metadata["Name"]), []).append(ep)
    return out


def _register_entry_point(ep) -> None:
    if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
        load_errors[ep.name] = f"could not import {ep.value!r}: {type(exc).__name__}: {exc}"
        print(f"grpo-core: warning: plugin {ep.name!r} failed to load ({load_errors[ep.name]})", file=sys.stderr)
        return
    dist = getattr(ep, "dist", None)
    pm.register(plugin, name=ep.name)
    if dist is not None:
        _dists[ep.name] = (dist.metadata["Name"], dist.version)


_dists: dict[str, tuple[str, str]] = {}


def provenance_of(plugin_name: str) -> Provenance:
    if plugin_name in _dists:
        d, v = _dists[plugin_name]
        return Provenance(plugin_name, d, v)
    if plugin_name.startswith("grpo_core."):
        return Provenance("builtin", "grpo-core", _core_version())
    return Provenance(plugin_name, None, None)


@dataclass
class Registries:
    rewards: Registry[RewardSpec] = field(default_factory=lambda: Registry("reward"))
    verifiers: Registry[Entry] = field(default_factory=lambda: Registry("verifier"))
    datasets: Registry[Entry] = field(default_factory=lambda: Registry("dataset"))
    errors: dict[str, str] = field(default_factory=dict)
    registered_by: dict[str, dict[str, list[str]]] = field(default_factory=dict)


_cache: tuple[int, Registries] | None = None


def _plugins_signature() -> int:
    return hash(tuple(sorted((name, id(p)) for name, p in pm.list_name_plugin())))


def registries() -> Registries:
    """Collect what every loaded plugin registers (re-collected when plugins change)."""
    global _cache
    load_plugins()
    sig = _plugins_signature()
    if _cache is not None and _cache[0] == sig:
        return _cache[1]
    regs = Registries()
    regs.errors.update(load_errors)
    _collect(regs, "register_rewards", regs.rewards, lambda prov: (lambda func, name=None, **meta: make_reward_spec(func, name, prov, meta)))
    _collect(
        regs,
        "register_verifiers",
        regs.verifiers,
        lambda prov: (lambda v, name=None: make_entry("verifier", v, name, prov, ("extract", "verify", "check"))),
    )
    _collect(
        regs,
        "register_datasets",
        regs.datasets,
        lambda prov: (lambda a, name=None: make_entry("dataset", a, name, prov, ("load",))),
    )
    _cache = (sig, regs)
    return regs


def _collect(regs: Registries, hook_name: str, registry: Registry, make) -> None:
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        prov = provenance_of(plugin_name)
        builder = make(prov)

        def register(*args, **kwargs):
            item = registry.add(builder(*args, **kwargs))
            regs.registered_by.setdefault(prov.plugin, {}).setdefault(registry.kind + "s", []).append(item.name)
            return item

        try:
            impl.function(**{a: register for a in impl.argnames})
        except GrpoCoreError as exc:
            regs.errors[f"{prov.plugin}:{hook_name}"] = str(exc)
            print(f"grpo-core: warning: {exc}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001
            regs.errors[f"{prov.plugin}:{hook_name}"] = f"{type(exc).__name__}: {exc}"
            print(f"grpo-core: warning: plugin {prov.plugin!r} failed in {hook_name}: {exc}", file=sys.stderr)


def plugin_summaries(include_builtins: bool = False) -> list[dict[str, Any]]:
    """One dict per loaded plugin: name, distribution, version, hooks, what it registered."""
    regs = registries()
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        prov = provenance_of(name)
        if prov.plugin == "builtin" and not include_builtins:
            continue
        out.append(
            {
                "name": prov.plugin if prov.plugin != "builtin" else name,
                "distribution": prov.distribution,
                "version": prov.version,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
                "registered": regs.registered_by.get(prov.plugin if prov.plugin != "builtin" else "builtin", {}),
            }
        )
    return out


def reset_for_tests() -> None:
    """Forget loaded plugins so the next call re-reads entry points and the env."""
    global _loaded, _cache
    with _load_lock:
        for name, plugin in list(pm.list_name_plugin()):
            pm.unregister(plugin=plugin, name=name)
        _loaded = False
        _cache = None
        load_errors.clear()
        _dists.clear()


__all__ = ["pm", "load_plugins", "registries", "plugin_summaries", "RegistrationError"]
