"""The kit's old import paths, kept for one release with a DeprecationWarning: one mechanism for all.

``grpo_core.verdict``, ``grpo_core.extract`` and ``grpo_core.datasets`` are no files: importing one
(``import grpo_core.verdict``, ``from grpo_core.extract import ...``) goes through :class:`AliasFinder`,
which makes a module holding the kit module's public names and warns; ``grpo_core.datasets`` as an
attribute goes through :func:`attribute` (``grpo_core.__getattr__``). Removing an alias is one line of
:data:`ALIASES`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

from grpo_core.kit import datasets, extraction, verdict  # the modules the old paths stand for

#: old module name -> the kit module that replaced it
ALIASES: dict[str, types.ModuleType] = {
    "grpo_core.verdict": verdict,
    "grpo_core.extract": extraction,
    "grpo_core.datasets": datasets,
}


class AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads the deprecated module names (last on ``sys.meta_path``: real modules come first)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # the default: a fresh module

    def exec_module(self, module: types.ModuleType) -> None:
        kit_module = ALIASES[module.__name__]
        names = getattr(kit_module, "__all__", None) or [n for n in vars(kit_module) if not n.startswith("_")]
        module.__dict__.update({n: getattr(kit_module, n) for n in names})
        module.__doc__ = f"Deprecated: use :mod:`{kit_module.__name__}` (or ``grpo_core.kit``). This alias goes in the next release."
        # stacklevel 2: the frame that imports (the import machinery's own frames are skipped)
        warnings.warn(_message(module.__name__), DeprecationWarning, stacklevel=2)


def install() -> None:
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(AliasFinder())


def attribute(name: str):
    """``grpo_core.<name>`` for a deprecated alias (imported, with its warning); AttributeError otherwise."""
    full = f"grpo_core.{name}"
    if full not in ALIASES:
        raise AttributeError(f"module 'grpo_core' has no attribute {name!r}")
    with warnings.catch_warnings():  # the import's own warning would point into importlib: one that points at the caller
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(full)
    warnings.warn(_message(full), DeprecationWarning, stacklevel=3)  # attribute <- grpo_core.__getattr__ <- the caller
    return module


def _message(name: str) -> str:
    return f"{name} is deprecated and will be removed in the next release; import from grpo_core.kit instead."
