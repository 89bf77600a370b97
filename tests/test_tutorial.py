"""The code of docs/plugins/tutorial.md, run as tests.

Every block between ``# -- start NAME --`` and ``# -- end NAME --`` appears
verbatim in the tutorial (tests/test_docs.py checks that), so the tutorial's
code is always code that passes. In the tutorial the reward module and its
tests are two files of an installed package; here they share this file, and
the fixture below registers this module the way the package's entry point
would.
"""

# -- start reward --
import re
from typing import Any

from grpo_core.kit import completion_text, extract_answer

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def numeric_answer(completions: list[Any], **kwargs: Any) -> list[float | None]:
    """0.5 when the <answer> block holds a plain number, 0.0 otherwise.

    >>> numeric_answer(["<answer>1,234</answer>", "<answer>about 12</answer>"])
    [0.5, 0.0]
    """
    scores: list[float | None] = []
    for completion in completions:
        found = extract_answer(completion_text(completion))
        is_number = found is not None and NUMBER.fullmatch(found.replace(",", "")) is not None
        scores.append(0.5 if is_number else 0.0)
    return scores
# -- end reward --


# -- start close --
def _number(text: str | None) -> float | None:
    if text is None or not NUMBER.fullmatch(text.replace(",", "")):
        return None
    return float(text.replace(",", ""))


def close_enough(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float | None]:
    """1.0 within 1% of the gold number, 0.0 otherwise; None when the gold is not a number.

    >>> close_enough(["<answer>99.5</answer>", "<answer>90</answer>", "<answer>3</answer>"],
    ...              answer=["100", "100", "three"])
    [1.0, 0.0, None]
    """
    scores: list[float | None] = []
    for completion, gold in zip(completions, answer):
        target = _number(gold)
        if target is None:
            scores.append(None)  # no opinion: this reward is left out of the sample's total
            continue
        guess = _number(extract_answer(completion_text(completion)))
        ok = guess is not None and abs(guess - target) <= 0.01 * max(1.0, abs(target))
        scores.append(1.0 if ok else 0.0)
    return scores
# -- end close --


# -- start register --
from grpo_core import hookimpl


@hookimpl
def register_rewards(register):
    register(numeric_answer, default_weight=0.5)
    register(close_enough, requires=("answer",), timeout=5.0)
# -- end register --


import sys  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def installed(grpo_register):
    """Stands in for `pip install -e .`: register this module as the plugin."""
    grpo_register(sys.modules[__name__], name="numeric")


# -- start tests --
import pytest

from grpo_core import get_rewards
from grpo_core.testing import check_reward


def test_plugin_is_installed():
    assert {"numeric_answer", "close_enough"} <= set(get_rewards())


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("<reasoning>\n6 * 7\n</reasoning>\n<answer>\n42\n</answer>", 0.5),  # a number
        ("<answer>1,234.5</answer>", 0.5),  # separators and decimals
        ("<answer>forty-two</answer>", 0.0),  # words
        ("The answer is 42.", 0.0),  # no answer block
        ([{"role": "assistant", "content": "<answer>-3</answer>"}], 0.5),  # chat messages
    ],
)
def test_numeric_answer(completion, expected):
    assert numeric_answer([completion]) == [expected]


def test_close_enough_has_no_opinion_without_a_numeric_gold():
    assert close_enough(["<answer>7</answer>"] * 2, answer=["7", "seven"]) == [1.0, None]


def test_conformance():
    check_reward("numeric_answer")
    check_reward("close_enough", answer="42")
# -- end tests --


def test_docstring_examples():
    import doctest

    assert doctest.testmod(sys.modules[__name__]).failed == 0


def test_score_command_on_the_tutorial_rewards():
    # -- start score --
    from grpo_core.rewards.scoring import score, summarize

    report = score("numeric_answer,close_enough", dataset="arithmetic:test", gold_format=True, limit=10)
    table = summarize(report)
    assert table["close_enough"]["perfect"]["mean"] == 1.0
    assert table["close_enough"]["wrong_answer"]["mean"] == 0.0
    assert table["numeric_answer"]["no_tags"]["mean"] == 0.0
    # -- end score --
