"""Parse and validate ``--plugins name[:weight],...`` reward selections."""

from __future__ import annotations

import math
from dataclasses import dataclass

from grpo_core.errors import AmbiguousNameError, SelectionError, UnknownNameError
from grpo_core.plugins import registries


@dataclass(frozen=True)
class RewardChoice:
    name: str  #: as the user wrote it (bare or plugin/name)
    weight: float | None  #: None: use the reward's default_weight


def parse_selection(text: str | list[str]) -> list[RewardChoice]:
    """``"xml:0.5,correctness:2"`` -> choices. Syntax only; names are checked by :func:`resolve`."""
    items = text if isinstance(text, list) else [text]
    parts = [p.strip() for chunk in items for p in str(chunk).split(",")]
    if not any(parts):
        raise SelectionError("no rewards selected; pass --plugins NAME[:WEIGHT],... (see `grpo-core rewards`).")
    out, seen = [], set()
    for p in parts:
        if not p:
            raise SelectionError(f"empty entry in reward list {','.join(parts)!r}; remove the extra comma.")
        name, sep, w = p.rpartition(":") if ":" in p else (p, "", "")
        name = name.strip()
        weight = None
        if sep:
            try:
                weight = float(w)
            except ValueError:
                raise SelectionError(f"weight {w!r} for reward {name!r} is not a number; write NAME:WEIGHT, e.g. {name}:0.5.") from None
            if not math.isfinite(weight):
                raise SelectionError(f"weight for reward {name!r} must be finite, got {w!r}.")
        if not name:
            raise SelectionError(f"entry {p!r} has no reward name; write NAME[:WEIGHT].")
        if name in seen:
            raise SelectionError(f"reward {name!r} is listed twice; list each reward once and set its weight with NAME:WEIGHT.")
        seen.add(name)
        out.append(RewardChoice(name, weight))
    return out


def resolve(choices: list[RewardChoice], registry=None):
    """Map choices to ``(RewardSpec, weight)`` pairs; every problem is reported at once."""
    if registry is None:
        registry = registries().rewards
    resolved, problems, seen = [], [], {}
    for c in choices:
        try:
            spec = registry.get(c.name)
        except (UnknownNameError, AmbiguousNameError) as exc:
            problems.append(str(exc))
            continue
        if spec.qualified_name in seen:
            problems.append(f"reward {c.name!r} is the same as {seen[spec.qualified_name]!r}; list it once.")
            continue
        seen[spec.qualified_name] = c.name
        resolved.append((spec, spec.default_weight if c.weight is None else c.weight))
    if problems:
        raise SelectionError("\n".join(problems))
    return resolved
