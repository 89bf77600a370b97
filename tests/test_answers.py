"""The one ordered extraction policy (grpo_core.kit.answers) and how Verifier.check uses it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_core import Verdict, VerdictStatus, Verifier
from grpo_core.default_plugins.arithmetic import ArithmeticVerifier
from grpo_core.kit.answers import MODES, RULES, STRICT_RULES, Found, find_answer, is_collection, is_relation


def found(text, mode="flexible"):
    f = find_answer(text, mode=mode)
    return None if f is None else (f.answer, f.rule)


# --- each rule finds what a grader finds -------------------------------------------------

@pytest.mark.parametrize("text,answer,rule", [
    ("<reasoning>2+2</reasoning>\n<answer>\n4\n</answer>", "4", "answer_tag"),
    ("<answer>1</answer> then <answer>2</answer>", "2", "answer_tag"),
    ("<answer>so \\boxed{7}</answer>", "7", "answer_tag"),
    ("so the result is \\boxed{12}.", "12", "boxed"),
    ("\\boxed{2} no wait \\boxed{3}", "3", "boxed"),
    ("\\fbox{5}", "5", "boxed"),
    ("hence \\boxed 5.", "5", "boxed"),
    ("The answer is 4.", "4", "final_phrase"),
    ("The answer is: 10.00", "10.00", "final_phrase"),
    ("Final Answer: The final answer is $350$. I hope it is correct.", "350", "final_phrase"),
    ("**Answer:** $-50$", "-50", "final_phrase"),
    ("Answer: 13535", "13535", "final_phrase"),
    ("so the answer is (C)", "(C)", "final_phrase"),
    ("Answer \\( 9 \\)", "9", "final_phrase"),
    ("Answer $$ 9 $$", "9", "final_phrase"),
    ("The answer is therefore $x = 5$ here.", "x = 5", "final_phrase"),
    ("答案是 6。", "6", "final_phrase"),
    ("最终答案：42", "42", "final_phrase"),
    ("答えは 15 です。", "15", "final_phrase"),
    ("Final Answer: The largest $n$ is 34. I hope it is correct.", "34", "final_phrase"),
    ("Final Answer: Jane started growing it 3 hours ago.", "3", "final_phrase"),
    ("The answer is: -260", "-260", "final_phrase"),
    ("so it is $\\frac{2}{3}$.<|im_end|>", "\\frac{2}{3}", "last_math"),
    ("the probability is 2/3. <|im_start|>user", "2/3", "last_number"),
    ("Donc la réponse est 12.", "12", "final_phrase"),
    ("La respuesta es 30.", "30", "final_phrase"),
    ("A resposta é 9.", "9", "final_phrase"),
    ("Die Antwort ist 24.", "24", "final_phrase"),
    ("Ответ: 42", "42", "final_phrase"),
    ("अतः उत्तर है 7", "7", "final_phrase"),
    ("Janet makes 9 * 2 = 18 dollars.\n#### 18", "18", "gsm8k_hashes"),
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5", "last_math"),
    ("The product is: $\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$",
     "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "last_math"),
    ("Thus\n\\[ \\frac{3}{4} \\]", "\\frac{3}{4}", "last_math"),
    ("She has 5 + 3 = 8 apples left", "8", "last_number"),
    ("It costs $5 and $6 total", "6", "last_number"),  # dollar signs of money are not math
    ("The total is 1,234.5 dollars", "1,234.5", "last_number"),
])
def test_each_rule_finds_the_answer(text, answer, rule):
    assert found(text) == (answer, rule)


def test_the_rules_apply_in_their_order():
    assert found("The answer is 3. <answer>4</answer>") == ("4", "answer_tag")  # the slot beats everything
    assert found("#### 5\nThe answer is 6. \\boxed{7}") == ("7", "boxed")
    assert found("The answer is 6.\n#### 5") == ("6", "final_phrase")
    assert found("#### 5\nWe check: $5 = 5$.") == ("5", "gsm8k_hashes")
    assert found("We get $x = 3$. That is 3 apples.") == ("3", "last_number")  # the final sentence has no math


def test_an_empty_answer_slot_is_no_answer():
    assert find_answer("<answer>  </answer> The answer is 7.") is None
    assert find_answer("<answer></answer>\n#### 7") is None


def test_nothing_to_find():
    assert find_answer("") is None
    assert find_answer("I don't know.") is None
    assert find_answer("The answer is") is None


def test_strict_reads_only_the_format_slot():
    assert found("<answer>4</answer>", "strict") == ("4", "answer_tag")
    assert found("so \\boxed{4}", "strict") == ("4", "boxed")
    for text in ("#### 18", "The answer is 18.", "So $x = 18$.", "18"):
        assert find_answer(text, mode="strict") is None
    assert set(STRICT_RULES) < set(RULES)


def test_unknown_mode_names_the_valid_ones():
    with pytest.raises(ValueError, match="flexible, strict"):
        find_answer("4", mode="lenient")
    assert MODES == ("flexible", "strict")


# --- several boxes, chains, the gold's shape -----------------------------------------------

def test_boxes_of_one_sentence_are_one_collection_for_a_collection_gold():
    f = find_answer("the integers are $\\boxed{-2}$ and $\\boxed{1}$.")
    assert f.parts == ("-2", "1")
    assert f.answer_for("-2, 1") == "-2, 1"
    assert f.answer_for("1") == "1"  # a single gold reads the last box


def test_boxes_of_different_sentences_stay_apart():
    f = find_answer("First I got \\boxed{2}. Checking again, it is \\boxed{3}.")
    assert f.answer == "3" and f.parts == ()
    assert f.answer_for("2, 3") == "3"


def test_a_chain_found_in_prose_answers_a_value_gold_with_its_last_side():
    f = find_answer("So $5 + 3 = 8$.")
    assert f.rule == "last_math" and f.answer_for("8") == "8"
    assert f.answer_for("5 + 3 = 8") == "5 + 3 = 8"  # an equation gold keeps the equation
    assert find_answer("\\boxed{x = 8}").answer_for("8") == "x = 8"  # the slot is never cut


def test_gold_shapes():
    assert is_collection("-2, 1") and is_collection("(1,2)")
    assert not is_collection("1,234") and not is_collection("1,234,567")
    assert is_relation("x \\geq 5") and is_relation("y = 2x") and is_relation("x \\le 3")
    assert not is_relation("\\left(3, \\frac{\\pi}{2}\\right)")


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=300), st.sampled_from(MODES))
def test_find_answer_never_raises(text, mode):
    f = find_answer(text, mode=mode)
    assert f is None or (isinstance(f, Found) and f.answer and f.rule in RULES)


def test_huge_responses_are_read_in_one_pass():
    text = ("\\boxed{" * 20000) + "$" * 20000 + "The answer is " * 5000 + "7"
    assert find_answer(text) is not None


# --- Verifier.check: flexible by default, strict on request, extracted_by -------------------

ARITH = ArithmeticVerifier()


def test_check_is_flexible_and_names_the_rule():
    v = ARITH.check(gold="18", response="Janet makes 9 * 2 = 18 dollars.\n#### 18")
    assert v.equal and v.extracted_by == "gsm8k_hashes" and v.pred == "18"
    s = ARITH.check(gold="18", response="Janet makes 9 * 2 = 18 dollars.\n#### 18", mode="strict")
    assert s.status is VerdictStatus.NO_ANSWER and s.extracted_by is None


def test_check_batch_modes_and_errors():
    vs = ARITH.check_batch(["4", "4"], ["<answer>4</answer>", "The answer is 4."], mode="strict")
    assert [v.status for v in vs] == [VerdictStatus.MATCHED, VerdictStatus.NO_ANSWER]
    assert vs[0].extracted_by == "answer_tag"
    with pytest.raises(ValueError, match="flexible, strict"):
        ARITH.check(gold="4", response="4", mode="loose")


def test_verify_names_no_rule_and_to_dict_carries_extracted_by():
    assert ARITH.verify(gold="4", pred="4").extracted_by is None
    d = ARITH.check(gold="4", response="\\boxed{4}").to_dict()
    assert d["extracted_by"] == "boxed" and d["status"] == "matched"
    # positional construction and the short constructors are unchanged
    assert Verdict(True, VerdictStatus.MATCHED, "equal", "4", "4").extracted_by is None
    assert Verdict.matched(pred="4", gold="4").equal


def test_a_verifier_with_its_own_extract_keeps_it():
    class FirstLine(Verifier):
        name = "first_line"

        def extract(self, text):
            return str(text).splitlines()[0]

        def quick_compare(self, gold, pred):
            return Verdict.matched(pred=pred, gold=gold) if gold == pred else Verdict.different(pred=pred, gold=gold)

    v = FirstLine().check(gold="a", response="a\n\\boxed{b}")
    assert v.equal and v.extracted_by is None


def test_extract_is_the_slot_unless_fallback():
    assert ARITH.extract("The answer is 4.") is None
    assert ARITH.extract("<answer>4</answer>") == "4"
    assert ArithmeticVerifier(fallback=True).extract("The answer is 4.") == "4"


def test_a_final_phrase_after_the_last_box_states_the_final_answer():
    text = "so the interest is $\\boxed{255}$. In total $10,455. Final Answer: The final answer is $10,455$."
    assert found(text) == ("10,455", "final_phrase")
    assert found(text, "strict") == ("255", "boxed")
    assert found("The answer is $\\boxed{5}$.") == ("5", "boxed")  # the phrase before the box: the box
