"""A row's tests: what ``answer`` holds for code datasets, and how to read it.

The canonical form is a JSON object (a string in the ``answer`` column)::

    {"setup": "import math", "tests": ["assert f(1) == 2", "assert f(2) == 3"]}

``setup`` (optional) runs after the program, before the tests; each test is a
snippet run in the program's namespace, and passes when it raises nothing.
Also accepted: a JSON list of snippets, a Python list, or plain text with one
``assert`` per line. A spec that is empty, not JSON, or whose snippets do not
compile is *broken*: rewards give None for it (no signal), never 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_TESTS = 200


class BrokenTests(ValueError):
    """The row's tests cannot be run; the message says why."""


@dataclass(frozen=True)
class TestSpec:
    tests: tuple[str, ...]
    setup: str = ""

    def to_json(self) -> str:
        return json.dumps({"setup": self.setup, "tests": list(self.tests)} if self.setup else {"tests": list(self.tests)})

    def snippets(self) -> list[str]:
        """What the sandbox runs after the program: the setup folded into the first test."""
        if not self.setup:
            return list(self.tests)
        return [self.setup + "\n" + self.tests[0], *self.tests[1:]]


def parse_tests(gold: Any) -> TestSpec:
    """Read a row's tests (see the module docstring); raises :class:`BrokenTests`."""
    if isinstance(gold, TestSpec):
        return gold
    if isinstance(gold, str):
        text = gold.strip()
        if not text:
            raise BrokenTests("the tests are empty")
        if text[0] in "[{":
            try:
                gold = json.loads(text)
            except ValueError as exc:
                raise BrokenTests(f"the tests look like JSON but do not parse ({exc})") from None
        else:
            gold = [ln for ln in text.splitlines() if ln.strip()]
    setup = ""
    if isinstance(gold, dict):
        setup = gold.get("setup") or ""
        gold = gold.get("tests")
    if not isinstance(gold, (list, tuple)) or not gold or not all(isinstance(t, str) and t.strip() for t in gold):
        raise BrokenTests("the tests must be a non-empty list of code snippets")
    if not isinstance(setup, str):
        raise BrokenTests("the tests' setup must be code (a string)")
    if len(gold) > MAX_TESTS:
        raise BrokenTests(f"more than {MAX_TESTS} tests")
    for i, snippet in enumerate([setup, *gold]):
        try:
            compile(snippet, f"test_{i}", "exec")
        except (SyntaxError, ValueError) as exc:
            raise BrokenTests(f"{'the setup' if i == 0 else f'test {i - 1}'} does not compile: {exc}") from None
    return TestSpec(tuple(gold), setup)
