"""Dataset adapters: ``humaneval``, ``mbpp`` (the sanitized split) and ``tiny_functions``.

Offline, from the files bundled in ``grpo_rewards_code/data/`` (licences next
to them; see ``data/README.md``), or ``path=`` a local file in the original
layout (HumanEval's JSON Lines, MBPP's ``sanitized-mbpp.json`` or JSON Lines).

Every row has ``question`` (the task and the reply format), ``answer`` (the
tests, as JSON: :mod:`.testspec`), ``id``, ``source``, ``entry_point`` and
``solution``, the reference reply (the gold code in a ```python block).
When a split loads, every gold solution runs against its own tests in the
sandbox; rows whose gold fails are dropped and reported, as the math adapters
do with gold answers that do not verify.
"""

from __future__ import annotations

import ast
import json
import random
import textwrap
from pathlib import Path
from typing import Any, Iterable

from grpo_core.kit import DatasetAdapter, read_jsonl
from grpo_core import ConfigError

from .grading import grade
from .sandbox import Limits
from .testspec import TestSpec
from .variants import CODE_VARIANTS

DATA = Path(__file__).parent / "data"

CODE_SYSTEM_PROMPT = (
    "You are a careful Python programmer. Think briefly, then reply with the complete solution "
    "in a single ```python code block. Define every function the task asks for; do not read input "
    "or print anything unless asked."
)

#: gold solutions get more time than replies do: a slow but correct reference (MBPP 123 needs seconds
#: of CPU) is not a broken row, even on a busy machine
GOLD_LIMITS = Limits(timeout=60.0, cpu=30)

#: MBPP's sanitized split by task id, as google-research-datasets/mbpp splits it
MBPP_SPLITS = {"test": (11, 510), "train": (601, 974), "validation": (511, 600), "prompt": (1, 10)}


def fenced(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


def humaneval_tests(test_source: str, entry_point: str) -> TestSpec:
    """HumanEval's ``check(candidate)`` split into one test per assertion.

    The module-level code of the test (``METADATA``, helpers) and
    ``candidate = entry_point`` become the setup; each statement of
    ``check``'s body is a test, with the statements before an ``assert``
    (assignments, loops) carried along with it.
    """
    tree = ast.parse(test_source)
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    if check is None:
        return TestSpec((f"{test_source}\ncheck({entry_point})",))
    setup_parts = [ast.get_source_segment(test_source, n) for n in tree.body if n is not check]
    setup = "\n".join([p for p in setup_parts if p] + [f"candidate = {entry_point}"])
    tests, pending = [], []
    for stmt in check.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        seg = textwrap.dedent(_segment(test_source, stmt))
        pending.append(seg)
        if _has_assert(stmt):
            tests.append("\n".join(pending))
            pending = []
    if pending:
        if tests:
            tests[-1] += "\n" + "\n".join(pending)
        else:
            tests.append("\n".join(pending))
    return TestSpec(tuple(tests), setup)


def _segment(source: str, node: ast.AST) -> str:
    lines = source.splitlines()
    return "\n".join(lines[node.lineno - 1 : node.end_lineno])


def _has_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


class CodeAdapter(DatasetAdapter):
    """Shared by the code datasets: the reply format, and the gold check that runs code."""

    verifier = "python_tests"
    system_prompt = CODE_SYSTEM_PROMPT
    gold_variants = CODE_VARIANTS

    def _check_gold(self, records: list[dict]) -> tuple[list[dict], list[dict]]:
        grades = grade([r["solution"] for r in records], [r["answer"] for r in records], GOLD_LIMITS)
        good, bad = [], []
        for r, g in zip(records, grades):
            (good if g.fraction == 1.0 else bad).append(r)
        return good, bad


def _read(path: str | Path) -> list[dict]:
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"dataset path {p} does not exist.")
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        return list(read_jsonl(p))
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ConfigError(f"{p}: expected a JSON list of problems.")
    return data


def _source_options(name: str, options: dict[str, Any]) -> str | None:
    unknown = sorted(set(options) - {"path"})
    if unknown:
        raise ConfigError(f"{name}: unknown options {unknown}; the valid option is path= (a local file in the original layout).")
    return options.get("path")


class HumanEvalAdapter(CodeAdapter):
    name = "humaneval"
    description = "HumanEval (OpenAI, 164 Python functions with tests); bundled"
    splits = ("test",)
    default_eval_split = "test"

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        path = _source_options(self.name, options)
        raw = _read(path) if path else read_jsonl(DATA / "humaneval" / "HumanEval.jsonl.gz")
        source = f"{path}:{split}" if path else "humaneval/test"
        for r in raw:
            spec = humaneval_tests(r["test"], r["entry_point"])
            yield {
                "question": "Complete this Python function:\n\n" + fenced(r["prompt"]),
                "answer": spec.to_json(),
                "id": r["task_id"],
                "source": source,
                "entry_point": r["entry_point"],
                "solution": fenced(r["prompt"] + r["canonical_solution"]),
            }


class MbppAdapter(CodeAdapter):
    name = "mbpp"
    description = "MBPP sanitized (Google, 427 Python problems with 3+ asserts each): test 257, train 120, validation 43, prompt 7; bundled"
    splits = ("test", "train", "validation", "prompt")
    default_eval_split = "test"

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        path = _source_options(self.name, options)
        raw = _read(path) if path else read_jsonl(DATA / "mbpp" / "sanitized.jsonl.gz")
        lo, hi = MBPP_SPLITS[split]
        for r in raw:
            if not lo <= int(r["task_id"]) <= hi:
                continue
            tests = list(r["test_list"])
            entry = _called_name(tests[0]) if tests else ""
            spec = TestSpec(tuple(tests), "\n".join(r.get("test_imports") or []))
            example = f"\nYour code should pass this test:\n{tests[0]}" if tests else ""
            yield {
                "question": r["prompt"].strip() + example,
                "answer": spec.to_json(),
                "id": f"mbpp-{r['task_id']}",
                "source": f"{path}:{split}" if path else f"mbpp/{split}",
                "entry_point": entry,
                "solution": fenced(r["code"]),
            }


def _called_name(test: str) -> str:
    """The function an MBPP assertion calls first (``assert f(1) == 2`` -> ``f``)."""
    try:
        tree = ast.parse(test)
    except SyntaxError:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id
    return ""


class TinyFunctionsAdapter(CodeAdapter):
    """Generated one-line functions (``f(x) = 3 * x + 2``) with three tests each: a smoke-test task."""

    name = "tiny_functions"
    description = "generated one-line Python functions with 3 tests each (train 200 / test 50, fixed seeds); for smoke tests"
    splits = ("train", "test")
    default_eval_split = "test"
    SIZES = {"train": 200, "test": 50}
    SEEDS = {"train": 0, "test": 1}

    def rows(self, split: str, **options: Any) -> Iterable[dict]:
        if options:
            raise ConfigError(f"{self.name}: takes no options (got {sorted(options)}); it is generated.")
        rng = random.Random(self.SEEDS[split])
        for i in range(self.SIZES[split]):
            a, b = rng.randint(2, 9), rng.randint(-9, 9)
            body = f"{a} * x + {b}" if b >= 0 else f"{a} * x - {-b}"
            tests = tuple(f"assert f({x}) == {a * x + b}" for x in (0, 1, rng.randint(-20, 20)))
            yield {
                "question": f"Write a Python function f(x) that returns {body}.",
                "answer": TestSpec(tests).to_json(),
                "id": f"tiny_functions-{split}-{i}",
                "source": f"tiny_functions/{split}",
                "entry_point": "f",
                "solution": fenced(f"def f(x):\n    return {body}"),
            }
