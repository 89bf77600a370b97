"""Single-file plugins: a ``.py`` file registered as a plugin without packaging it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from grpo_core.errors import GrpoCoreError
from grpo_core.plugins.manager import load_lock, pm
from grpo_core.plugins.provenance import file_of, provenance_of, record_file
from grpo_core.runtime.deadline import restart_workers

FILES_ENV = "GRPO_CORE_PLUGIN_FILES"


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
    p = Path(path).expanduser().resolve()
    if p.suffix != ".py" or not p.is_file():
        raise GrpoCoreError(f"plugin file {str(path)!r} is not an existing .py file.")
    name = p.stem
    if not name.isidentifier():
        raise GrpoCoreError(f"plugin file {p.name!r}: its stem must be a Python identifier; rename it (e.g. {name.replace('-', '_')}.py).")
    with load_lock:
        if file_of(name) == str(p) and pm.get_plugin(name) is not None:
            return name
        if pm.get_plugin(name) is not None or file_of(name) is not None:
            other = file_of(name) or f"the plugin {name!r} ({provenance_of(name).describe()})"
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
        record_file(name, str(p))
        if added:
            restart_workers()
    return name
