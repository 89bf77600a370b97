from __future__ import annotations

import json

import pytest

from grpo_core import VerdictStatus
from grpo_rewards_code.sandbox import Limits, isolation
from grpo_rewards_code.verifiers import PythonTestsVerifier

TESTS = json.dumps({"setup": "import math", "tests": [
    "assert area(1) == math.pi",
    "assert area(0) == 0",
    "area(-1)",
]})


def check(code: str, tests: str = TESTS):
    return PythonTestsVerifier().check(gold=tests, response=f"```python\n{code}\n```")


def test_all_pass_is_matched():
    v = check("import math\ndef area(r):\n    return math.pi * r * r")
    assert v.equal and v.status is VerdictStatus.MATCHED and "all 3 tests passed" in v.reason


def test_reason_names_each_failed_test_and_why():
    v = check("def area(r):\n    if r < 0:\n        raise ValueError('negative')\n    return 3 * r * r")
    assert v.status is VerdictStatus.DIFFERENT
    assert "2 of 3 tests failed" in v.reason
    assert "test 0 (assert area(1) == math.pi): assertion failed" in v.reason
    assert "test 2 (area(-1)): raised: ValueError: negative" in v.reason


def test_timeout_memory_and_forbidden_are_named():
    v = PythonTestsVerifier(Limits(timeout=1.0, cpu=1, memory_mb=128))
    slow = v.check(gold='["assert f()"]', response="```python\ndef f():\n    while True:\n        pass\n```")
    assert "test 0 (assert f()):" in slow.reason and ("timed out" in slow.reason or "CPU-time limit" in slow.reason)
    mem = v.check(gold='["assert f()"]', response="```python\ndef f():\n    return bytearray(10**9)\n```")
    assert "memory limit" in mem.reason
    net = v.check(gold='["assert f()"]', response="```python\nimport socket\ndef f():\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n```")
    if isolation() != "rlimits":  # with rlimits only, the network is reachable (docs/plugins/code.md)
        assert "test 0 (assert f()): forbidden action: OSError: [Errno 101] Network is unreachable" in net.reason


def test_no_code_and_broken_tests():
    v = PythonTestsVerifier()
    assert v.check(gold='["assert True"]', response="I would write a function.").status is VerdictStatus.NO_ANSWER
    assert v.check(gold="[]", response="```python\nx = 1\n```").status is VerdictStatus.GOLD_UNPARSEABLE
    assert not v.parse_gold("{oops") and v.parse_gold('["assert True"]')


def test_verify_takes_code_directly():
    v = PythonTestsVerifier()
    assert v.verify(gold='["assert f() == 1"]', pred="def f():\n    return 1").equal
    assert not v.verify(gold='["assert f() == 1"]', pred="def f():\n    return 2").equal


def test_a_program_error_is_reported_once():
    v = check("def area(r):\n    return 1\nraise RuntimeError('at import')")
    assert "the program itself: raised: RuntimeError: at import" in v.reason


def test_both_modes_read_the_code_block_and_an_unknown_mode_is_refused():
    v = PythonTestsVerifier()
    reply = "```python\ndef f(x):\n    return x + 1\n```"
    tests = {"tests": ["assert f(1) == 2"]}
    assert v.check(gold=tests, response=reply, mode="strict").equal
    assert v.check(gold=tests, response=reply, mode="flexible").equal
    with pytest.raises(ValueError, match="flexible, strict"):
        v.check(gold=tests, response=reply, mode="loose")
