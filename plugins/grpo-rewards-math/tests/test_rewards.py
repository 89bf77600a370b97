from __future__ import annotations

import functools
import pickle

import pytest

import grpo_core
from grpo_rewards_math import rewards

XML = "<reasoning>\nwork\n</reasoning>\n<answer>\n{}\n</answer>"


def chat(text):
    return [{"role": "assistant", "content": text}]


def test_registered_with_metadata():
    for name in ("correctness", "correctness_flexible", "int", "graded_correctness"):
        spec = grpo_core.get_reward(name)
        assert spec.requires == ("answer",)
        assert spec.cpu_bound is True
        assert spec.provenance.distribution == "grpo-rewards-math"
        assert pickle.loads(pickle.dumps(spec.func)) is spec.func  # module-level, picklable


def test_correctness_strings_and_chat():
    comps = [XML.format("$1,234.00"), chat(XML.format("1233")), "no tags 1234", chat("<answer>\\boxed{1234}</answer>")]
    assert rewards.correctness(comps, answer=["1234"] * 4) == [2.0, 0.0, 0.0, 2.0]


def test_correctness_uses_verifier_column_and_option():
    comps = [XML.format("\\frac{1}{2}"), XML.format("025")]
    # per-row verifier column, as DatasetAdapter.load adds it
    assert rewards.correctness(comps, answer=["0.5", "25"], verifier=["math", "aime"]) == [2.0, 2.0]
    # an explicit option for every row
    f = functools.partial(rewards.correctness, verifier="math")
    assert f([XML.format("(1, 2]")], answer=["(1,2]"]) == [2.0]
    # default: gsm8k
    assert rewards.correctness([XML.format("x^2")], answer=["4"]) == [0.0]


def test_correctness_none_when_gold_unusable():
    out = rewards.correctness([XML.format("5"), XML.format("5")], answer=["", "not a number"], prompts=["p", "p"], extra=[1, 2])
    assert out == [None, None]


def test_int_reward():
    comps = [XML.format("42"), XML.format("-7"), XML.format("3.5"), XML.format("1,000"), "no answer", XML.format("12.00")]
    assert rewards.int_answer(comps, answer=["1"] * 6) == [0.5, 0.5, 0.0, 0.5, 0.0, 0.5]
    assert rewards.int_answer([XML.format("4")], answer=[""]) == [None]
    assert grpo_core.get_reward("int")([XML.format("4")], answer=["4"]) == [0.5]


def test_graded_correctness():
    comps = [XML.format("100"), XML.format("95"), XML.format("80"), "nothing here", XML.format("lots"), XML.format("110")]
    assert rewards.graded_correctness(comps, answer=["100"] * 6) == [3.0, 1.0, -1.5, 0.0, -1.5, 1.0]
    assert rewards.graded_correctness([XML.format("1")], answer=["abc"]) == [None]
    assert rewards.graded_correctness([XML.format("0.1")], answer=["0"]) == [-1.5]


def test_reward_through_registry_on_a_dataset_row():
    ds = grpo_core.get_dataset("aime").load("2024", limit=3, verbose=False)
    comps = [chat(XML.format(a)) for a in ds["answer"]]
    spec = grpo_core.get_reward("correctness")
    assert spec(comps, answer=ds["answer"], verifier=ds["verifier"], id=ds["id"]) == [2.0, 2.0, 2.0]


def test_correctness_reads_the_slot_and_says_so():
    comps = ["Janet makes 9 * 2 = 18 dollars.\n#### 18", XML.format("18"), "The answer is 18."]
    assert rewards.correctness(comps, answer=["18"] * 3) == [0.0, 2.0, 0.0]
    assert "<answer>" in grpo_core.get_reward("correctness").description


def test_correctness_flexible_rewards_answers_outside_the_format():
    comps = ["Janet makes 9 * 2 = 18 dollars.\n#### 18", XML.format("18"), "The answer is 18.", "The answer is 19."]
    assert rewards.correctness_flexible(comps, answer=["18"] * 4) == [2.0, 2.0, 2.0, 0.0]
    spec = grpo_core.get_reward("correctness_flexible")
    assert spec.requires == ("answer",) and "anywhere" in spec.description
    assert spec(comps[:1], answer=["18"]) == [2.0]
    # the same function with the mode as a keyword (how a reward option would set it)
    assert rewards.correctness(comps, answer=["18"] * 4, mode="flexible") == [2.0, 2.0, 2.0, 0.0]


def test_correctness_mode_is_a_reward_option_that_reaches_the_worker():
    from grpo_core.rewards.engine import RewardEngine, RewardError
    from grpo_core.rewards.selection import RewardSelection

    spec = grpo_core.get_reward("correctness")
    assert spec.options == {"mode": "strict"} and spec.cpu_bound  # scored in a worker process
    comps = ["Janet makes 9 * 2 = 18 dollars.\n#### 18", XML.format("18")]
    strict = RewardEngine.from_selection("correctness").score(comps, answer=["18"] * 2)
    assert strict.values["correctness"] == [0.0, 2.0]
    flexible = RewardEngine.from_selection(RewardSelection.parse("correctness", {"correctness": {"mode": "flexible"}}))
    assert flexible.rewards[0].spec.options == {"mode": "flexible"}
    assert flexible.score(comps, answer=["18"] * 2).values["correctness"] == [2.0, 2.0]
    typo = RewardEngine.from_selection(RewardSelection.parse("correctness", {"correctness": {"mode": "lenient"}}), on_error="raise")
    with pytest.raises(RewardError, match="unknown mode 'lenient'; choose one of: flexible, strict"):
        typo.score(comps, answer=["18"] * 2)
