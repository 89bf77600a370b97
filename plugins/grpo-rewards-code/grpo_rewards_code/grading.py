"""Run replies' code against rows' tests, many at once, and describe the outcome.

Shared by the ``code_tests`` reward, the ``python_tests`` verifier and the
dataset adapters' gold check, so they cannot disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from grpo_core.kit import completion_text

from .codeblocks import last_python_block
from .sandbox import Execution, Limits, execute_many
from .testspec import BrokenTests, TestSpec, parse_tests

#: how a failed test is described in a verdict
KIND_WORDS = {
    "assertion": "assertion failed",
    "exception": "raised",
    "memory": "memory limit",
    "timeout": "timed out",
    "cpu_limit": "CPU-time limit",
    "killed": "killed",
    "output_limit": "output limit",
    "file_limit": "file-size limit",
    "forbidden": "forbidden action",
    "crash": "crashed",
    "exit": "exited",
    "not_run": "not run",
}


@dataclass
class Grade:
    """One reply against one row: the tests (or why they are broken), the code, how the run went."""

    spec: TestSpec | None
    code: str | None
    execution: Execution | None = None
    broken: str = ""  #: why the row's tests cannot be run
    skipped: bool = False  #: not run: the batch's time budget ran out first

    @property
    def fraction(self) -> float | None:
        """Share of tests passed; None when the tests are broken or the run was skipped."""
        if self.broken or self.skipped or self.spec is None:
            return None
        if self.execution is None:
            return 0.0
        return self.execution.passed / len(self.spec.tests)

    def failures(self) -> list[str]:
        """One line per failed test: which one, and why."""
        if self.execution is None or self.spec is None:
            return []
        out = []
        if self.execution.program_error is not None:
            pe = self.execution.program_error
            out.append(f"the program itself: {KIND_WORDS.get(pe.kind, pe.kind)}: {pe.detail}")
        for i, t in enumerate(self.execution.tests):
            if t.ok or (t.kind == "not_run" and self.execution.program_error is not None):
                continue
            first_line = self.spec.tests[i].strip().splitlines()[0][:80]
            out.append(f"test {i} ({first_line}): {KIND_WORDS.get(t.kind, t.kind)}" + (f": {t.detail}" if t.detail else ""))
        return out


def grade(responses: Sequence[Any], golds: Sequence[Any], limits: Limits | None = None, *,
          budget: float | None = None, workers: int | None = None, extract: bool = True) -> list[Grade]:
    """Grade each response against its gold tests; runs at most ``budget`` seconds in all
    (runs that could not start in time are ``skipped``). ``extract=False``: responses are code."""
    if len(responses) != len(golds):
        raise ValueError(f"got {len(responses)} responses and {len(golds)} test specs")
    grades: list[Grade] = []
    for resp, gold in zip(responses, golds):
        try:
            spec = parse_tests(gold)
        except BrokenTests as exc:
            grades.append(Grade(None, None, broken=str(exc)))
            continue
        code = last_python_block(completion_text(resp)) if extract else (resp if isinstance(resp, str) else None)
        grades.append(Grade(spec, code))
    todo = [g for g in grades if g.spec is not None and g.code is not None and g.code.strip()]
    deadline = time.monotonic() + budget if budget else None
    runs = execute_many([(g.code, g.spec.snippets()) for g in todo], limits, workers=workers, deadline=deadline)
    for g, ex in zip(todo, runs):
        g.execution = ex
        g.skipped = ex is None
    return grades
