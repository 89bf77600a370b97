from __future__ import annotations

import json

import pytest

from grpo_core import ConfigError
from grpo_rewards_code.datasets import GOLD_LIMITS, HumanEvalAdapter, MbppAdapter, TinyFunctionsAdapter, humaneval_tests
from grpo_rewards_code.grading import grade
from grpo_rewards_code.testspec import parse_tests


def test_humaneval_check_is_split_per_assertion():
    src = "\n\nMETADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n    x = 3\n    assert candidate(x) == 4\n    for i in range(2):\n        assert candidate(i) == i + 1\n"
    spec = humaneval_tests(src, "inc")
    assert spec.setup.endswith("candidate = inc") and "METADATA = {}" in spec.setup
    assert spec.tests == ("assert candidate(1) == 2", "x = 3\nassert candidate(x) == 4", "for i in range(2):\n    assert candidate(i) == i + 1")


def test_humaneval_loads_checked_rows():
    ds = HumanEvalAdapter().load("test", limit=8, verbose=False)
    assert len(ds) == 8
    row = ds[0]
    assert row["verifier"] == "python_tests" and row["id"] == "HumanEval/0"
    assert row["solution"].startswith("```python\n") and "def has_close_elements" in row["solution"]
    assert len(parse_tests(row["answer"]).tests) == 7
    assert "```python" in row["prompt"][-1]["content"]


def test_mbpp_splits_and_rows():
    rows = list(MbppAdapter().rows("test"))
    assert len(rows) == 257
    assert {len(list(MbppAdapter().rows(s))) for s in ("train", "validation", "prompt")} == {120, 43, 7}
    r = rows[0]
    assert r["id"].startswith("mbpp-") and r["entry_point"] and r["entry_point"] in r["question"]


def test_gold_check_drops_rows_whose_gold_fails(tmp_path, capsys):
    good = {"task_id": 11, "prompt": "Add one.", "code": "def inc(x):\n    return x + 1", "test_imports": [],
            "test_list": ["assert inc(1) == 2"]}
    bad = {**good, "task_id": 12, "code": "def inc(x):\n    return x"}
    path = tmp_path / "mbpp.json"
    path.write_text(json.dumps([good, bad]))
    ds = MbppAdapter().load("test", path=str(path))
    assert [r["id"] for r in ds] == ["mbpp-11"]
    assert "1 of 2 gold answers do not verify" in capsys.readouterr().err


def test_unknown_option_lists_the_valid_one():
    with pytest.raises(ConfigError, match="path="):
        list(MbppAdapter().rows("test", hub=True))


def test_bundled_gold_solutions_pass_their_tests():
    """Every bundled reference solution (a sample, to keep this fast) passes its own tests."""
    rows = list(HumanEvalAdapter().rows("test"))[::41] + list(MbppAdapter().rows("test"))[::64]
    grades = grade([r["solution"] for r in rows], [r["answer"] for r in rows], GOLD_LIMITS)
    assert [(r["id"], g.fraction) for r, g in zip(rows, grades) if g.fraction != 1.0] == []


def test_tiny_functions_are_generated_and_checked():
    ds = TinyFunctionsAdapter().load("test", verbose=False)
    assert len(ds) == 50 and ds[0]["id"] == "tiny_functions-test-0"
    assert list(TinyFunctionsAdapter().rows("train"))[:3] == list(TinyFunctionsAdapter().rows("train"))[:3]
    with pytest.raises(ConfigError, match="takes no options"):
        list(TinyFunctionsAdapter().rows("train", path="x"))
