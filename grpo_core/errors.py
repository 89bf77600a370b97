"""Exceptions with messages that name the problem and the fix."""

from __future__ import annotations

import difflib
from typing import Iterable


class GrpoCoreError(Exception):
    """Base class. The CLI prints these without a traceback and exits 2."""

    exit_code = 2


# Names that the project's own plugin distributions provide: an unknown name
# from this list most likely means the plugin is not installed.
KNOWN_PROVIDERS = {
    ("reward", "correctness"): "grpo-rewards-math",
    ("reward", "int"): "grpo-rewards-math",
    ("reward", "graded_correctness"): "grpo-rewards-math",
    ("verifier", "gsm8k"): "grpo-rewards-math",
    ("verifier", "aime"): "grpo-rewards-math",
    ("verifier", "math"): "grpo-rewards-math",
    ("dataset", "gsm8k"): "grpo-rewards-math",
    ("dataset", "aime"): "grpo-rewards-math",
    ("dataset", "math500"): "grpo-rewards-math",
}


class UnknownNameError(GrpoCoreError, KeyError):
    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        available = sorted(set(available))
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        msg = f"unknown {kind} {name!r}."
        provider = KNOWN_PROVIDERS.get((kind, name))
        if provider:
            msg += f" It comes from the {provider} plugin: `pip install {provider}` (or check GRPO_CORE_LOAD_PLUGINS)."
        if close:
            msg += f" Did you mean {', '.join(repr(c) for c in close)}?"
        msg += f" Available {kind}s: {', '.join(available) if available else '(none installed)'}."
        msg += f" Run `grpo-core {kind}s` to list them with their plugins."
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
