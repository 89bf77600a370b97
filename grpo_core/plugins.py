"""Plugin discovery and the registries built from it.

Three sources, in a fixed order:

1. installed distributions with an entry point in the ``grpo_core`` group,
   all of them, or only those named in ``GRPO_CORE_LOAD_PLUGINS=a,b``
   (an empty value loads none);
2. plugin files named in ``GRPO_CORE_PLUGIN_FILES=a.py:b.py`` (or passed to
   :func:`load_plugin_file`, e.g. by ``grpo-core score --plugin-file``), and
   plugins registered in-process with ``pm.register(obj, name=...)`` (tests,
   notebooks);
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
FILES_ENV = "GRPO_CORE_PLUGIN_FILES"
DEFAULT_PLUGINS = (
    "grpo_core.builtin.format_rewards",
    "grpo_core.builtin.arithmetic",
)

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
            installed = _entry_point_distributions()
            for dist_name in wanted:
                key = _norm(dist_name)
                if key not in installed:
                    load_errors[dist_name] = (
                        f"{LOAD_ENV} names {dist_name!r}, which is not an installed grpo-core plugin distribution. "
                        f"Installed: {', '.join(sorted(installed)) or '(none)'}."
                    )
                    print(f"grpo-core: warning: {load_errors[dist_name]}", file=sys.stderr)
                    continue
                for ep in installed[key]:
                    _register_entry_point(ep)
        for path in [p for p in os.environ.get(FILES_ENV, "").split(os.pathsep) if p.strip()]:
            try:
                load_plugin_file(path)
            except GrpoCoreError as exc:
                load_errors[path] = str(exc)
                print(f"grpo-core: warning: {FILES_ENV}: {exc}", file=sys.stderr)
        for modname in DEFAULT_PLUGINS:
            if pm.get_plugin(modname) is None:
                pm.register(importlib.import_module(modname), name=modname)


_warned: set[str] = set()


def _pending_errors() -> dict[str, str]:
    """Hook implementations that match no hook (pluggy's check_pending, reported instead of raised)."""
    out: dict[str, str] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        for hc in pm.get_hookcallers(plugin) or []:
            mine = [i for i in hc.get_hookimpls() if i.plugin is plugin]
            if hc.spec is None and not all(i.optionalhook for i in mine):
                msg = f"plugin {name!r} implements {hc.name!r}, which is not a grpo-core hook (a typo?); it is ignored."
                out[f"{name}:{hc.name}"] = msg
                if msg not in _warned:
                    _warned.add(msg)
                    print(f"grpo-core: warning: {msg}", file=sys.stderr)
    return out


def _norm(name: str) -> str:
    """PEP 503 normalisation: ``Grpo_Core.Demo`` and ``grpo-core-demo`` are one name."""
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _entry_point_distributions() -> dict[str, list]:
    out: dict[str, list] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            out.setdefault(_norm(dist.metadata["Name"]), []).append(ep)
    return out


def _dist_of(ep) -> tuple[str, str] | None:
    dist = getattr(ep, "dist", None)
    return (dist.metadata["Name"], dist.version) if dist is not None else None


def _load_error(name: str, msg: str) -> None:
    load_errors[name] = msg
    print(f"grpo-core: warning: plugin {name!r}: {msg}", file=sys.stderr)


def _register_entry_point(ep) -> None:
    if pm.is_blocked(ep.name):
        return
    dist = _dist_of(ep)
    if pm.get_plugin(ep.name) is not None:
        if ep.name in _dists and dist is not None and _dists[ep.name] != dist:
            # Two distributions chose one entry-point name: never drop one silently.
            other = _dists[ep.name]
            _load_error(
                f"{dist[0]}:{ep.name}",
                f"{dist[0]} {dist[1]} declares the grpo_core entry point {ep.name!r}, which {other[0]} {other[1]} "
                "already uses; it was not loaded. Uninstall one of them, or rename the entry point.",
            )
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the CLI
        _load_error(ep.name, f"could not import {ep.value!r}: {type(exc).__name__}: {exc}")
        return
    try:
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # noqa: BLE001 - e.g. a hookimpl whose arguments match no hook
        _load_error(ep.name, f"could not be registered: {type(exc).__name__}: {exc}")
        return
    if dist is not None:
        _dists[ep.name] = dist


_dists: dict[str, tuple[str, str]] = {}
_files: dict[str, str] = {}  # plugin name -> absolute path of a plugin file


def load_plugin_file(path) -> str:
    """Import a single ``.py`` file and register it as a plugin named after its stem.

    This is how a reward is used without packaging it: the file holds reward
    functions and a ``@hookimpl def register_rewards(register)``. The file's
    folder is appended to ``sys.path`` and the module is imported under its
    stem, so its functions pickle by reference and ``cpu_bound`` rewards work
    in worker processes too. Loading the same file twice is a no-op; a second
    file with the same stem, or a stem that names another importable module,
    is refused (rename the file). Returns the plugin name.
    """
    import importlib.util
    from pathlib import Path

    p = Path(path).expanduser().resolve()
    if p.suffix != ".py" or not p.is_file():
        raise GrpoCoreError(f"plugin file {str(path)!r} is not an existing .py file.")
    name = p.stem
    if not name.isidentifier():
        raise GrpoCoreError(f"plugin file {p.name!r}: its stem must be a Python identifier; rename it (e.g. {name.replace('-', '_')}.py).")
    with _load_lock:
        if _files.get(name) == str(p) and pm.get_plugin(name) is not None:
            return name
        if pm.get_plugin(name) is not None or name in _files:
            other = _files.get(name) or f"the plugin {name!r} ({provenance_of(name).describe()})"
            raise GrpoCoreError(f"plugin file {str(p)!r}: the name {name!r} is already taken by {other}; rename the file.")
        folder = str(p.parent)
        added = folder not in sys.path
        if added:
            sys.path.append(folder)
        importlib.invalidate_caches()
        found = importlib.util.find_spec(name) if name not in sys.modules else None
        existing = sys.modules.get(name)
        origin = getattr(found, "origin", None) if found else getattr(existing, "__file__", None)
        if origin is None or Path(origin).resolve() != p:
            if added:
                sys.path.remove(folder)
            raise GrpoCoreError(
                f"plugin file {str(p)!r}: the module name {name!r} already belongs to {origin or 'another module'}; "
                "rename the file so that its stem is unique."
            )
        try:
            module = existing or importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - report with the path
            sys.modules.pop(name, None)
            raise GrpoCoreError(f"plugin file {str(p)!r} failed to import: {type(exc).__name__}: {exc}") from exc
        try:
            pm.register(module, name=name)
        except Exception as exc:  # noqa: BLE001 - e.g. a hookimpl whose arguments match no hook
            raise GrpoCoreError(f"plugin file {str(p)!r} could not be registered: {type(exc).__name__}: {exc}") from None
        _files[name] = str(p)
        if added:
            _restart_workers()
    return name


def _restart_workers() -> None:
    """Workers inherit ``sys.path`` when they start; restart running ones so they see a new folder."""
    from . import deadline

    pool = deadline._pool
    if pool is not None and deadline._pool_pid == os.getpid():
        pool.close()  # the next map starts fresh workers


def provenance_of(plugin_name: str) -> Provenance:
    if plugin_name in _dists:
        d, v = _dists[plugin_name]
        return Provenance(plugin_name, d, v)
    if plugin_name in _files:
        return Provenance(plugin_name, None, None, origin=_files[plugin_name])
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
    return pm.generation


def registries() -> Registries:
    """Collect what every loaded plugin registers (re-collected when plugins change)."""
    global _cache
    load_plugins()
    with _load_lock:  # one collection at a time (the engine and verifiers may call from threads)
        sig = _plugins_signature()
        if _cache is not None and _cache[0] == sig:
            return _cache[1]
        return _collect_all(sig)


def _collect_all(sig: int) -> "Registries":
    global _cache
    regs = Registries()
    regs.errors.update(load_errors)
    regs.errors.update(_pending_errors())
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

        key = f"{plugin_name}:{hook_name}"

        def report(msg: str, key=key) -> None:
            regs.errors[key] = f"{regs.errors[key]}\n{msg}" if key in regs.errors else msg
            print(f"grpo-core: warning: {msg}", file=sys.stderr)

        def register(*args, _plugin_name=plugin_name, _builder=builder, _report=report, **kwargs):
            # A bad registration is reported and skipped; the plugin's other
            # registrations still count (the first of a duplicated name is kept).
            try:
                item = registry.add(_builder(*args, **kwargs))
            except GrpoCoreError as exc:
                _report(str(exc))
                return None
            regs.registered_by.setdefault(_plugin_name, {}).setdefault(registry.kind + "s", []).append(item.name)
            return item

        try:
            impl.function(**{a: register for a in impl.argnames})
        except Exception as exc:  # noqa: BLE001
            report(f"plugin {prov.plugin!r} failed in {hook_name}: {type(exc).__name__}: {exc}")


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
                "registered": regs.registered_by.get(name, {}),
            }
        )
    return out


def reset_for_tests() -> None:
    """Forget loaded plugins so the next call re-reads entry points and the env."""
    global _loaded, _cache
    with _load_lock:
        for name, plugin in list(pm.list_name_plugin()):
            if plugin is None:
                pm.unblock(name)
            else:
                pm.unregister(plugin=plugin, name=name)
        _loaded = False
        _cache = None
        load_errors.clear()
        _dists.clear()
        _files.clear()
        _warned.clear()


__all__ = ["pm", "load_plugins", "load_plugin_file", "registries", "plugin_summaries", "RegistrationError"]
