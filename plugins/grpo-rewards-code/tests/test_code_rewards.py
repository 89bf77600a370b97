from __future__ import annotations

import functools
import json

import pytest

from grpo_core.rewards.engine import RewardEngine
from grpo_core.plugins.registry import Provenance, make_reward_spec
from grpo_rewards_code import rewards
from grpo_rewards_code.grading import grade
from grpo_rewards_code.sandbox import Limits
from grpo_rewards_code.testspec import BrokenTests, parse_tests

TESTS = json.dumps({"tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]})
RIGHT = "Here:\n```python\ndef add(a, b):\n    return a + b\n```"
HALF = "```python\ndef add(a, b):\n    return 3 if a == 1 else 0\n```"  # passes tests 0 and 1
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
SLEEPS = "```python\nimport time\ndef add(a, b):\n    time.sleep(1000)\n```"


def test_fraction_of_tests_passed():
    assert rewards.code_tests([RIGHT, HALF, WRONG, "no code"], answer=[TESTS] * 4) == [1.0, pytest.approx(2 / 3), 0.0, 0.0]


def test_all_or_nothing_option():
    assert rewards.code_tests([RIGHT, HALF], answer=[TESTS] * 2, all_or_nothing=True) == [1.0, 0.0]


def test_broken_tests_give_none_not_zero():
    broken = ["", "[]", "{not json", json.dumps({"tests": ["assert (("]}), json.dumps({"tests": [1, 2]})]
    assert rewards.code_tests([RIGHT] * len(broken), answer=broken) == [None] * len(broken)
    for b in broken:
        with pytest.raises(BrokenTests):
            parse_tests(b)


def test_chat_completions_and_plain_assert_lines():
    chat = [{"role": "assistant", "content": RIGHT}]
    assert rewards.code_tests([chat], answer=["assert add(1, 2) == 3\nassert add(0, 0) == 0"]) == [1.0]


def test_code_format():
    assert rewards.code_format([RIGHT, "```python\ndef add(:\n```", "nothing"]) == [1.0, 0.5, 0.0]


def test_a_spent_budget_gives_none_for_what_did_not_run():
    grades = grade([SLEEPS] * 3, [TESTS] * 3, Limits(timeout=1.0, cpu=1), budget=1.5, workers=1)
    assert [g.skipped for g in grades] == [False, False, True]
    assert grades[0].execution.ended == "timeout" and grades[0].fraction == 0.0
    assert grades[2].fraction is None
    assert rewards.code_tests([RIGHT, WRONG], answer=[TESTS] * 2, budget=0.01) == [None, None]


def _engine(**options):
    specs = [
        (make_reward_spec(functools.partial(rewards.code_tests, **options), "code_tests", Provenance("code", None, None),
                          {"requires": ("answer",), "timeout": 30.0}), 1.0),
        (make_reward_spec(rewards.code_format, "code_format", Provenance("code", None, None), {}), 0.5),
    ]
    return RewardEngine(specs)


def test_slow_programs_do_not_hold_the_engine_beyond_their_limit():
    """Sleepers are cut at their own limit and score 0; the others score normally; nothing is
    lost to the engine's own timeout."""
    engine = _engine(timeout=1.0)
    comps = [RIGHT, SLEEPS, HALF, SLEEPS, WRONG, SLEEPS, RIGHT, SLEEPS]
    res = engine.score(comps, answer=[TESTS] * len(comps))
    assert res.values["code_tests"] == [1.0, 0.0, pytest.approx(2 / 3), 0.0, 0.0, 0.0, 1.0, 0.0]
    assert res.values["code_format"] == [1.0] * len(comps)
    st = res.stats["code_tests"]
    assert st.timeouts == 0 and st.errors == 0
    engine.close()
