"""The gsm8k, aime and math verifiers on whole responses: the ordered policy, strict and flexible."""

from __future__ import annotations

import pytest

from grpo_core import VerdictStatus
from grpo_rewards_math.verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier

GSM8K = Gsm8kVerifier()
AIME = AimeVerifier()
MATH = MathVerifier(timeout=10)
V = {"gsm8k": GSM8K, "aime": AIME, "math": MATH}


def test_hashes_answer_is_right_when_flexible_and_a_format_failure_when_strict():
    """What `grpo-core eval` reports for a model that answers `#### 18` (strict and flexible accuracy)."""
    response = "Janet sells 16 - 3 - 4 = 9 eggs a day at $2 each, so 9 * 2 = 18.\n#### 18"
    flexible = GSM8K.check(gold="18", response=response, mode="flexible")
    assert flexible.status is VerdictStatus.MATCHED and flexible.extracted_by == "gsm8k_hashes"
    strict = GSM8K.check(gold="18", response=response, mode="strict")
    assert strict.status is VerdictStatus.NO_ANSWER and not strict.answered


@pytest.mark.parametrize("verifier,gold,response,rule", [
    ("gsm8k", "228", "12 * 19 = 228\n#### 228", "gsm8k_hashes"),
    ("gsm8k", "10", "0.2 x 50 = 10.\nThe answer is: 10.00", "final_phrase"),
    ("gsm8k", "-50", "20 - 70 = -50\n\n**Answer:** $-50$", "final_phrase"),
    ("gsm8k", "13535", "Adding gives 13535.\nAnswer: 13535", "final_phrase"),
    ("gsm8k", "18", "She earns 9 * 2 = 18 dollars per day.", "last_number"),
    ("gsm8k", "1500000", "So the answer is $1.5 million.", "final_phrase"),
    ("gsm8k", "6", "所以一共 2 + 4 = 6 个。答案是 6。", "final_phrase"),
    ("gsm8k", "12", "Donc 4 × 3 = 12. La réponse est 12.", "final_phrase"),
    ("gsm8k", "42", "6 · 7 = 42.\nОтвет: 42", "final_phrase"),
    ("gsm8k", "7", "10 - 3 = 7. अतः उत्तर है 7", "final_phrase"),
    ("math", "350", "Final Answer: The final answer is $350$. I hope it is correct.", "final_phrase"),
    ("math", "-2, 1", "the integers are $\\boxed{-2}$ and $\\boxed{1}$.", "boxed"),
    ("math", "[5, \\infty)", "Solving gives $2x \\geq 10$.\nTherefore $x \\geq 5$ is the solution.", "last_math"),
    ("math", "x \\geq 5", "Therefore $x \\geq 5$ is the solution.", "last_math"),
    ("math", "9", "Answer \\( 9 \\)", "final_phrase"),
    ("math", "9", "Answer $$ 9 $$", "final_phrase"),
    ("math", "8", "We have $5 + 3 = 8$.", "last_math"),
    ("math", "(6,31,-1)", "we find $(p,q,r) = (6, 31, -1)$.", "last_math"),
    ("math", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
     "the product is: $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$", "last_math"),
    ("aime", "73", "So $m + n = 073$.\n\nThe answer is 073.", "final_phrase"),
    ("aime", "204", "Counting all cases gives 204.\n\n#### 204", "gsm8k_hashes"),
])
def test_flexible_finds_the_answer_a_grader_finds(verifier, gold, response, rule):
    v = V[verifier].check(gold=gold, response=response)
    assert v.equal, (v.status, v.pred, v.reason)
    assert v.extracted_by == rule
    assert V[verifier].check(gold=gold, response=response, mode="strict").equal is (rule in ("boxed", "answer_tag"))


@pytest.mark.parametrize("verifier,gold,response", [
    ("gsm8k", "228", "12 * 18 = 216\n#### 216"),
    ("gsm8k", "18", "She earns 18 dollars per day, and 18 * 7 = 126 per week."),
    ("gsm8k", "1.5", "The answer is 1.5 million."),
    ("gsm8k", "50", "\n**Answer:** $-50$"),
    ("gsm8k", "7", "<answer>\n</answer>\nThe answer is 7."),  # an empty slot decides: no answer
    ("math", "-2, 1", "the integers are $\\boxed{-2}$ and $\\boxed{2}$."),
    ("math", "[5, \\infty)", "Therefore $x > 5$ is the solution."),
    ("math", "9", "We have $5 + 3 = 8$."),
    ("math", "\\frac{1}{3}", "Dividing, we get approximately 0.33, so the answer is 0.33."),
    ("math", "2, 3", "First I got \\boxed{2}. Checking again, it is \\boxed{3}."),
    ("aime", "73", "The answer is 037."),
])
def test_flexible_never_accepts_a_wrong_answer(verifier, gold, response):
    v = V[verifier].check(gold=gold, response=response)
    assert not v.equal, (v.status, v.pred, v.reason)


def test_the_answer_slot_decides_over_prose():
    assert GSM8K.check(gold="5", response="<answer>5</answer>\nThe answer is 6.").extracted_by == "answer_tag"
    assert not GSM8K.check(gold="6", response="<answer>5</answer>\nThe answer is 6.").equal
