"""Resolve a reward selection: each chosen name to its registered reward, with its options bound.

The selection itself (``--plugins name[:weight],...`` and ``reward_options``) is parsed once into a
:class:`~grpo_core.config.reward_selection.RewardSelection`; :func:`resolve` finds each reward, checks
the options set for it against the ones it declares (``register(func, options={name: default})``),
reads each value as its default's type, and binds them to the function (``functools.partial``), so the
engine calls ``func(completions, prompts=..., **columns, **options)``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from grpo_core.config.reward_selection import RewardChoice, RewardSelection, parse_selection
from grpo_core.errors import AmbiguousNameError, SelectionError, UnknownNameError
from grpo_core.plugins import registries
from grpo_core.plugins.registry import RewardSpec

__all__ = ["RewardChoice", "RewardSelection", "SelectedReward", "coerce_option", "options_text", "parse_selection", "resolve"]

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class SelectedReward:
    """One chosen reward: its spec (options bound into ``spec.func``; ``spec.options`` the values in force),
    its weight, and its name as selected (bare or qualified: the metric key)."""

    spec: RewardSpec
    weight: float
    name: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.spec.options)


def options_text(options: Mapping[str, Any]) -> str:
    """A reward's options for a summary line: ``"; model='x', timeout=30.0"``, or ``""`` when it has none."""
    return "; " + ", ".join(f"{k}={v!r}" for k, v in options.items()) if options else ""


def resolve(selection: RewardSelection | list[RewardChoice], registry=None) -> list[SelectedReward]:
    """The selected rewards, in order; every problem (names, options) is reported at once.

    A selection is resolved once per registry: a second call with the same registry returns the same list.
    """
    if not isinstance(selection, RewardSelection):
        selection = RewardSelection(tuple(selection))
    if registry is None:
        registry = registries().rewards
    cached = selection.__dict__.get("_resolved")
    if cached is not None and cached[0] is registry:
        return cached[1]
    resolved, problems, seen = [], [], {}
    unused = dict(selection.options)
    for c in selection.choices:
        try:
            spec = registry.get(c.name)
        except (UnknownNameError, AmbiguousNameError) as exc:
            problems.append(str(exc))
            continue
        if spec.qualified_name in seen:
            problems.append(f"reward {c.name!r} is the same as {seen[spec.qualified_name]!r}; list it once.")
            continue
        seen[spec.qualified_name] = c.name
        given: dict[str, Any] = {}
        for key in dict.fromkeys((c.name, spec.name, spec.qualified_name)):
            given.update(unused.pop(key, None) or {})
        try:
            spec = bind_options(spec, given)
        except SelectionError as exc:
            problems.append(str(exc))
            continue
        resolved.append(SelectedReward(spec, spec.default_weight if c.weight is None else c.weight, c.name))
    for name in unused:
        problems.append(f"reward_options names reward {name!r}, which is not selected; selected: {', '.join(selection.names)}.")
    if problems:
        raise SelectionError("\n".join(problems))
    object.__setattr__(selection, "_resolved", (registry, resolved))
    return resolved


def bind_options(spec: RewardSpec, given: Mapping[str, Any]) -> RewardSpec:
    """``spec`` with ``given`` options checked, read as their defaults' types, and bound into its function."""
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        declared = ", ".join(f"{k} (default {v!r})" for k, v in spec.options.items()) or "none"
        raise SelectionError(f"reward {spec.name!r} ({spec.provenance.describe()}) has no option {', '.join(map(repr, unknown))}; "
                             f"its options: {declared}.")
    if not spec.options:
        return spec
    values = {k: coerce_option(spec.name, k, given[k], default) if k in given else default for k, default in spec.options.items()}
    return dataclasses.replace(spec, func=functools.partial(spec.func, **values), options=values)


def coerce_option(reward: str, name: str, value: Any, default: Any) -> Any:
    """``value`` read as ``default``'s type (command-line strings included); a mismatch is a SelectionError."""
    kind = type(default)
    try:
        if default is None:
            return value
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
        elif isinstance(default, int):
            if isinstance(value, str):
                return int(value)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif isinstance(default, float):
            if isinstance(value, str):
                return float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif isinstance(default, str):
            if isinstance(value, str):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
        elif isinstance(default, list):
            parsed = yaml.safe_load(value) if isinstance(value, str) else value
            if isinstance(parsed, list):
                return parsed
    except (ValueError, yaml.YAMLError):
        pass
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list, e.g. [a, b]"}
    raise SelectionError(f"reward {reward!r} option {name!r} must be {words.get(kind, kind.__name__)} "
                         f"(its default is {default!r}); got {value!r}.")
