"""Exceptions with messages that name the problem and the fix."""

from __future__ import annotations

import difflib
from typing import Iterable


class GrpoCoreError(Exception):
    """Base class. The CLI prints these without a traceback and exits 2."""

    exit_code = 2


#: the kinds of names that plugins register (an unknown one may mean a plugin is not installed)
PLUGIN_KINDS = ("reward", "verifier", "dataset")
#: kinds with a listing command (`grpo-core rewards`, ..., `grpo-core presets`)
LISTED_KINDS = (*PLUGIN_KINDS, "preset")


class UnknownNameError(GrpoCoreError, KeyError):
    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        available = sorted(set(available))
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        msg = f"unknown {kind} {name!r}."
        if close:
            msg += f" Did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" Available {kind}s: {', '.join(available) if available else '(none installed)'}."
        if kind in PLUGIN_KINDS:
            msg += " If a plugin provides it, `pip install` that plugin (or check GRPO_CORE_LOAD_PLUGINS)."
        if kind in LISTED_KINDS:
            msg += f" Run `grpo-core {kind}s` to list them{' with their plugins' if kind in PLUGIN_KINDS else ''}."
        super().__init__(msg)
        self.kind, self.name, self.available, self.close = kind, name, available, close

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class AmbiguousNameError(GrpoCoreError, KeyError):
    def __init__(self, kind: str, name: str, qualified: Iterable[str]) -> None:
        qualified = sorted(qualified)
        super().__init__(
            f"{kind} name {name!r} is registered by more than one plugin: {', '.join(qualified)}. "
            f"Use the qualified name (plugin/name), e.g. {qualified[0]!r}, or uninstall one of the plugins."
        )

    def __str__(self) -> str:
        return self.args[0]


class RegistrationError(GrpoCoreError):
    """A plugin called ``register`` with something unusable."""


class SelectionError(GrpoCoreError):
    """A ``--plugins name[:weight],...`` list is malformed."""


class ConfigError(GrpoCoreError):
    """A run configuration is invalid."""


class PreflightError(GrpoCoreError):
    """A pre-flight check failed before any model was loaded."""


class VllmServerError(GrpoCoreError):
    """The vLLM server a run generates with (``vllm_mode: server``) cannot be reached or stopped answering."""

    exit_code = 1
