"""The reward selection, typed: ``--plugins name[:weight],...`` with each reward's options.

:meth:`RewardSelection.parse` reads the text once (syntax only); a run carries the result
(``RunConfig.reward_selection``). :func:`grpo_core.rewards.selection.resolve` then finds each
reward in the registry and checks its options against the ones it declares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from grpo_core.errors import SelectionError


@dataclass(frozen=True)
class RewardChoice:
    name: str  #: as the user wrote it (bare or plugin/name)
    weight: float | None  #: None: use the reward's default_weight


@dataclass(frozen=True)
class RewardSelection:
    """The chosen rewards in order, and the options set for them (reward name -> option -> value)."""

    choices: tuple[RewardChoice, ...]
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, text: str | list[str], options: Mapping[str, Mapping[str, Any]] | None = None) -> "RewardSelection":
        return cls(tuple(parse_selection(text)), dict(options or {}))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.choices]

    def __iter__(self):
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)


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


def parse_option_pairs(pairs: list[str] | tuple[str, ...], flag: str, *, nested: bool) -> dict[str, Any]:
    """``--reward-option REWARD.NAME=VALUE`` (``nested``) or ``--dataset-option KEY=VALUE`` pairs -> a mapping.

    Values stay the strings given: a reward option is read as its declared default's type when the
    selection is resolved; a dataset adapter reads its own options.
    """
    out: dict[str, Any] = {}
    shape = "REWARD.NAME=VALUE" if nested else "KEY=VALUE"
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        owner, dot, name = key.rpartition(".")
        if not sep or not key or (nested and not (dot and owner and name)):
            raise SelectionError(f"{flag} expects {shape}, got {pair!r}.")
        if nested:
            out.setdefault(owner, {})[name] = value
        else:
            out[key] = value
    return out
