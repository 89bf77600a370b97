"""``code_tests`` and ``code_format``.

TRL contract: ``reward(completions, answer=[...], **kwargs) -> list[float | None]``;
completions may be strings or chat message lists. ``answer`` holds each row's
tests (:mod:`.testspec`). Options (declared at registration, passed as keyword
arguments by the core) are the keyword parameters below, with the same defaults.

``None`` means "no signal" (the row's tests are broken, or the batch's time
budget ran out before this completion's turn), never "wrong".
"""

from __future__ import annotations

from typing import Any, Sequence

from grpo_core.kit import completion_text

from .codeblocks import format_score
from .grading import grade
from .sandbox import Limits

#: what ``code_tests`` takes as options (name -> default); see plugin.py
CODE_TESTS_OPTIONS = {"all_or_nothing": False, "timeout": 5.0, "memory_mb": 512, "budget": 60.0}


def code_tests(
    completions: Sequence[Any],
    answer: Sequence[Any] | None = None,
    all_or_nothing: bool = False,
    timeout: float = 5.0,
    memory_mb: int = 512,
    budget: float = 60.0,
    **kwargs: Any,
) -> list[float | None]:
    """The share of the row's tests the reply's last ```python block passes (1.0 or 0.0 with all_or_nothing)."""
    golds = list(answer) if answer is not None else [None] * len(completions)
    limits = Limits(timeout=float(timeout), cpu=max(1, int(round(float(timeout)))), memory_mb=int(memory_mb))
    out: list[float | None] = []
    for g in grade(list(completions), golds, limits, budget=float(budget)):
        frac = g.fraction
        out.append(None if frac is None else (float(frac == 1.0) if all_or_nothing else frac))
    return out


def code_format(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 for exactly one closed ```python block that parses, 0.5 for a block with problems, 0.0 for none."""
    return [format_score(completion_text(c)) for c in completions]
