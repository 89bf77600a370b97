"""Plugin discovery: entry points, plugin files and the built-ins, loaded once per process.

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
import re
from importlib import metadata

from grpo_core.errors import GrpoCoreError
from grpo_core.plugins.files import FILES_ENV, load_plugin_file
from grpo_core.plugins.manager import load_lock, pm, warn
from grpo_core.plugins.provenance import distribution_of, record_distribution

ENTRY_POINT_GROUP = "grpo_core"
LOAD_ENV = "GRPO_CORE_LOAD_PLUGINS"
DEFAULT_PLUGINS = (
    "grpo_core.default_plugins.format_rewards",
    "grpo_core.default_plugins.arithmetic",
    "grpo_core.default_plugins.files",
)

_loaded = False
load_errors: dict[str, str] = {}  # plugin or distribution -> error text


def load_plugins() -> None:
    """Load plugins once per process (safe to call often)."""
    global _loaded
    with load_lock:
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
                    warn(load_errors[dist_name])
                    continue
                for ep in installed[key]:
                    _register_entry_point(ep)
        for path in [p for p in os.environ.get(FILES_ENV, "").split(os.pathsep) if p.strip()]:
            try:
                load_plugin_file(path)
            except GrpoCoreError as exc:
                load_errors[path] = str(exc)
                warn(f"{FILES_ENV}: {exc}")
        for modname in DEFAULT_PLUGINS:
            if pm.get_plugin(modname) is None:
                pm.register(importlib.import_module(modname), name=modname)


def _norm(name: str) -> str:
    """PEP 503 normalisation: ``Grpo_Core.Demo`` and ``grpo-core-demo`` are one name."""
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
    warn(f"plugin {name!r}: {msg}")


def _register_entry_point(ep) -> None:
    if pm.is_blocked(ep.name):
        return
    dist = _dist_of(ep)
    if pm.get_plugin(ep.name) is not None:
        other = distribution_of(ep.name)
        if other is not None and dist is not None and other != dist:
            # Two distributions chose one entry-point name: never drop one silently.
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
        record_distribution(ep.name, dist)


def forget() -> None:
    """Forget that plugins were loaded, so the next :func:`load_plugins` re-reads entry points and the env."""
    global _loaded
    _loaded = False
    load_errors.clear()
