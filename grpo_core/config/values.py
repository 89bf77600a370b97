"""What a setting's value may be, and the one check every source of settings goes through.

A :class:`Rule` says which kinds of value a setting takes (``int``, ``float``, ``str``,
``bool``, ``list``, ``dict``, ``null``, or ``any``), its range, and its choices. The kinds
come from the setting's type annotation (:func:`kinds_of`), the range and choices from its
definition. :meth:`Rule.check` returns the value as the setting holds it (``"5e-6"`` from a
YAML file becomes ``5e-06``; a whole float becomes an int) or raises one
:class:`~grpo_core.errors.ConfigError` that names the setting, where its value came from, and
what it may be.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from grpo_core.errors import ConfigError

KINDS = ("bool", "int", "float", "str", "list", "dict", "null", "any")
_PLAIN = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict", type(None): "null"}
_WORDS = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "a string",
          "list": "a list", "dict": "a mapping", "null": "null (none)"}


def kinds_of(tp: Any) -> tuple[tuple[str, ...], tuple | None]:
    """The kinds of value an annotation admits, and its choices where it is an enumeration."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        choices = None
        for arg in typing.get_args(tp):
            k, c = kinds_of(arg)
            kinds += [x for x in k if x not in kinds]
            choices = c if c is not None else choices
        return tuple(kinds), choices
    if origin is typing.Literal:
        return tuple(sorted({_PLAIN.get(type(a), "any") for a in typing.get_args(tp)})), None
    if origin in (list, tuple):
        return ("list",), None
    if origin is dict:
        return ("dict",), None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ("str",), tuple(m.value for m in tp)
    if tp in _PLAIN:
        return (_PLAIN[tp],), None
    return ("any",), None


@dataclass(frozen=True)
class Rule:
    """The values one setting accepts."""

    kinds: tuple[str, ...]
    minimum: float | None = None  #: numbers: at least this
    above: float | None = None  #: numbers: more than this
    maximum: float | None = None  #: numbers: at most this
    below: float | None = None  #: numbers: less than this
    choices: tuple | None = None  #: strings: one of these
    special: tuple = ()  #: values allowed outside the range (e.g. -1)
    note: str = ""  #: what a special value means, for the message
    convert: Callable[[Any], Any] | None = None  #: a setting's own check (raises ConfigError), run after the kind check
    words: str = ""  #: what it may be, in words, where the kinds alone would mislead (a bool accepted only as false)

    def describe(self) -> str:
        """What the setting may be, in words: ``a whole number >= 1, or null (none)``."""
        if self.words:
            return self.words
        parts = []
        for kind in self.kinds:
            if kind == "int" and "float" in self.kinds:
                continue  # "a number" covers whole numbers
            if kind == "str" and self.choices:
                parts.append("one of " + ", ".join(str(c) for c in self.choices))
            elif kind in ("int", "float"):
                parts.append(_WORDS[kind] + self._range_words())
            elif kind not in ("null", "any"):
                parts.append(_WORDS[kind])
        if self.special:
            parts.append(" or ".join(repr(s) for s in self.special) + (f" ({self.note})" if self.note else ""))
        if "null" in self.kinds:
            parts.append(_WORDS["null"])
        return ", or ".join(parts) if parts else "any value"

    def _range_words(self) -> str:
        bounds = []
        for op, value in ((">=", self.minimum), (">", self.above), ("<=", self.maximum), ("<", self.below)):
            if value is not None:
                bounds.append(f"{op} {value:g}")
        return (" " + " and ".join(bounds)) if bounds else ""

    def check(self, name: str, value: Any, where: str, *, text: bool = False) -> Any:
        """``value`` as the setting holds it; ``text``: a command-line string, read as the kinds allow."""
        if text and isinstance(value, str):
            value = self._from_text(value)
        out = self._kind(name, value, where)
        if self.convert is not None:
            try:
                out = self.convert(out)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        return out

    def _fail(self, name: str, value: Any, where: str) -> ConfigError:
        return ConfigError(f"{where}: {name} must be {self.describe()}; got {value!r}.")

    def _from_text(self, raw: str) -> Any:
        for kind, parse in (("int", int), ("float", float)):
            if kind in self.kinds:
                try:
                    return parse(raw)
                except ValueError:
                    pass
        return raw

    def _kind(self, name: str, value: Any, where: str) -> Any:
        kinds = self.kinds
        if "any" in kinds:
            return value
        if value is None:
            if "null" in kinds:
                return None
            raise self._fail(name, value, where)
        if isinstance(value, bool):
            if "bool" in kinds:
                return value
            raise self._fail(name, value, where)
        if isinstance(value, str) and "str" not in kinds:
            value = self._from_text(value)  # YAML reads 5e-6 (no dot) as a string
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._number(name, value, where)
        if isinstance(value, str) and "str" in kinds:
            if self.choices and value not in self.choices:
                raise self._fail(name, value, where)
            return value
        if isinstance(value, (list, tuple)) and "list" in kinds:
            return list(value)
        if isinstance(value, dict) and "dict" in kinds:
            return value
        raise self._fail(name, value, where)

    def _number(self, name: str, value: int | float, where: str) -> int | float:
        if isinstance(value, float) and not math.isfinite(value):
            raise self._fail(name, value, where)
        if "int" in self.kinds and "float" not in self.kinds:
            if isinstance(value, float):
                if not value.is_integer():
                    raise self._fail(name, value, where)
                value = int(value)
        elif "float" not in self.kinds:
            raise self._fail(name, value, where)
        if value in self.special:
            return value
        if ((self.minimum is not None and value < self.minimum) or (self.above is not None and value <= self.above)
                or (self.maximum is not None and value > self.maximum) or (self.below is not None and value >= self.below)):
            raise self._fail(name, value, where)
        return value
