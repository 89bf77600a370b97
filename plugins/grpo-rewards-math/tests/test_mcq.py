"""The mcq verifier: letters in every form, the option's own text with a choices column."""

from __future__ import annotations

import pytest

from grpo_core import VerdictStatus
from grpo_rewards_math.choices import McqVerifier, choice_letter, gold_letter, option_letter
from grpo_rewards_math.rewards import correctness, correctness_flexible

MCQ = McqVerifier()


@pytest.mark.parametrize("text,letter", [
    ("C", "C"), ("(C)", "C"), ("(c)", "C"), ("C.", "C"), ("C)", "C"), ("C:", "C"), ("\\text{(C)}", "C"),
    ("\\textbf{C}", "C"), ("**C**", "C"), ("Option C", "C"), ("option (C)", "C"), ("choice C", "C"),
    ("(C) 42", "C"), ("C. 42", "C"), ("J", "J"), ("[B]", "B"), ("$\\text{(E)}$", "E"),
])
def test_letter_forms(text, letter):
    assert choice_letter(text) == letter


@pytest.mark.parametrize("text", ["a", "i", "Cats", "A car", "the answer", "42", "", "CD", "(CD)", "Optional"])
def test_not_letters(text):
    assert choice_letter(text) is None


@pytest.mark.parametrize("response,gold,equal,rule", [
    ("so the answer is (C)", "C", True, "final_phrase"),
    ("so the answer is (B)", "C", False, "final_phrase"),
    ("The answer is $\\boxed{\\text{(C)}}$.", "C", True, "boxed"),
    ("The answer is D.", "(D)", True, "final_phrase"),
    ("Only option B satisfies both conditions.", "B", True, "last_choice"),
    ("Checking every choice, (E) is the only one that works.", "E", True, "last_choice"),
    ("Checking every choice, (D) is the only one that works.", "E", False, "last_choice"),
    ("<answer>\nC\n</answer>", "C", True, "answer_tag"),
    ("There are ten options; the answer is G.", "G", True, "final_phrase"),
])
def test_mcq_check(response, gold, equal, rule):
    v = MCQ.check(gold=gold, response=response)
    assert v.equal is equal and v.extracted_by == rule


def test_strict_reads_only_the_slot():
    assert MCQ.check(gold="C", response="so the answer is (C)", mode="strict").status is VerdictStatus.NO_ANSWER
    assert MCQ.check(gold="C", response="<answer>(C)</answer>", mode="strict").equal


def test_a_mention_outside_the_final_sentence_is_not_the_answer():
    v = MCQ.check(gold="A", response="Option A looks tempting.\nBut the numbers do not add up, so none fits.")
    assert not v.equal


def test_option_text_with_choices():
    choices = ["3", "5", "7", "9"]
    assert MCQ.check(gold="B", response="The roots multiply to 5, so the answer is 5.", choices=choices).equal
    assert not MCQ.check(gold="B", response="The answer is 7.", choices=choices).equal
    assert MCQ.check(gold="1", response="The answer is Paris.", choices=["London", "Paris", "Rome"]).equal  # 0-based index
    assert MCQ.check(gold="Paris", response="The answer is (B).", choices=["London", "Paris", "Rome"]).equal
    # without choices an option's text is no letter
    assert MCQ.check(gold="B", response="The answer is 5.").status is VerdictStatus.PRED_UNPARSEABLE


def test_option_text_must_name_one_option():
    assert option_letter("5", ["5", "5.0", "7"]) is None  # two options read 5
    assert option_letter("6", ["5", "7"]) is None
    assert option_letter("five", {"A": "four", "B": "five"}) == "B"
    assert gold_letter("2", ["x", "y", "z"]) == "C" and gold_letter("9", ["x"]) is None


def test_gold_that_is_not_a_choice():
    assert MCQ.check(gold="42", response="The answer is B.").status is VerdictStatus.GOLD_UNPARSEABLE


def test_rewards_pass_the_choices_column():
    completions = ["The answer is 5.", "The answer is 7."]
    choices = [["3", "5", "7"], ["3", "5", "7"]]
    assert correctness_flexible(completions, answer=["B", "B"], verifier="mcq", choices=choices) == [2.0, 0.0]
    assert correctness(completions, answer=["B", "B"], verifier="mcq", choices=choices) == [0.0, 0.0]  # no slot
