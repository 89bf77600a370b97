"""Where each loaded plugin came from: a distribution, a single file, or grpo-core itself."""

from __future__ import annotations

from grpo_core._version import __version__
from grpo_core.plugins.registry import Provenance

_dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
_files: dict[str, str] = {}  # plugin name -> absolute path of a plugin file


def record_distribution(plugin_name: str, dist: tuple[str, str]) -> None:
    _dists[plugin_name] = dist


def distribution_of(plugin_name: str) -> tuple[str, str] | None:
    return _dists.get(plugin_name)


def record_file(plugin_name: str, path: str) -> None:
    _files[plugin_name] = path


def file_of(plugin_name: str) -> str | None:
    return _files.get(plugin_name)


def provenance_of(plugin_name: str) -> Provenance:
    if plugin_name in _dists:
        d, v = _dists[plugin_name]
        return Provenance(plugin_name, d, v)
    if plugin_name in _files:
        return Provenance(plugin_name, None, None, origin=_files[plugin_name])
    if plugin_name.startswith("grpo_core."):
        return Provenance("builtin", "grpo-core", __version__)
    return Provenance(plugin_name, None, None)


def forget() -> None:
    _dists.clear()
    _files.clear()
