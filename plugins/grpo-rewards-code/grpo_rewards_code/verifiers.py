"""The ``python_tests`` verifier: does the reply's code pass the row's tests?

``check(gold=tests, response=reply)`` runs the last fenced Python block of the
reply in the sandbox against the tests (see :mod:`.testspec` for their form)
and returns a :class:`~grpo_core.Verdict`: ``matched`` when every test
passes, ``different`` with the failed tests and why (an assertion, the
exception type, a timeout, a memory limit, a forbidden action) in ``reason``,
``no_answer`` without a code block, ``gold_unparseable`` for broken tests and
``timed_out`` when the batch ran out of time before this reply's turn.

The base class's worker pool is not used: the sandbox already runs each
program in its own process group under hard limits, many at once.
"""

from __future__ import annotations

from typing import Any, Sequence

from grpo_core import Verdict, Verifier
from grpo_core.kit import MODES, completion_text

from .codeblocks import last_python_block
from .grading import Grade, grade
from .sandbox import Limits
from .testspec import BrokenTests, parse_tests


def verdict_of(g: Grade, limits: Limits) -> Verdict:
    if g.broken:
        return Verdict.gold_unparseable(f"the tests are broken: {g.broken}", pred=g.code)
    gold = g.spec.to_json()
    if g.code is None or not g.code.strip():
        return Verdict.no_answer("no fenced Python code block", gold=gold)
    if g.skipped:
        return Verdict.timed_out(limits.timeout, pred=g.code, gold=gold)
    n = len(g.spec.tests)
    passed = g.execution.passed
    if passed == n:
        return Verdict.matched(f"all {n} tests passed", pred=g.code, gold=gold)
    fails = g.failures()
    return Verdict.different(f"{n - passed} of {n} tests failed; " + "; ".join(fails)[:1500], pred=g.code, gold=gold)


class PythonTestsVerifier(Verifier):
    """Python code from the reply's last fenced block, run in a sandbox against the row's tests."""

    name = "python_tests"
    description = "runs the reply's last ```python block against the row's tests in a sandbox; says which failed and why"
    timeout = 5.0
    version = "1"

    def __init__(self, limits: Limits | None = None, budget: float | None = None) -> None:
        super().__init__(timeout=(limits or Limits()).timeout)
        self.limits = limits or Limits()
        self.budget = budget

    def extract(self, text: Any) -> str | None:
        return last_python_block(completion_text(text))

    def check_batch(self, golds: Sequence[Any], responses: Sequence[Any], *, mode: str = "flexible") -> list[Verdict]:
        """Run each response's code against its tests. The code is the last fenced block in both modes
        (``mode`` is checked, and is the same for code: a fenced block is this format's only slot)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if len(golds) != len(responses):
            raise ValueError(f"check_batch got {len(golds)} golds and {len(responses)} responses")
        return [verdict_of(g, self.limits) for g in grade(responses, golds, self.limits, budget=self.budget)]

    def verify_batch(self, pairs: Sequence[tuple[Any, Any]]) -> list[Verdict]:
        """``pred`` is code (already extracted), ``gold`` the tests."""
        grades = grade([p for _, p in pairs], [g for g, _ in pairs], self.limits, budget=self.budget, extract=False)
        return [verdict_of(g, self.limits) for g in grades]

    def parse_gold(self, gold: str) -> bool:
        try:
            parse_tests(gold)
        except BrokenTests:
            return False
        return True
