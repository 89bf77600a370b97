"""Table tests for the three verifiers, one table per pitfall family.

Each row is (gold, pred, expected status). "M" = matched, "D" = different,
"U" = pred_unparseable, "G" = gold_unparseable, "N" = no_answer.
"""

from __future__ import annotations

import pytest

from grpo_core import VerdictStatus
from grpo_rewards_math.verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier

S = {
    "M": VerdictStatus.MATCHED,
    "D": VerdictStatus.DIFFERENT,
    "U": VerdictStatus.PRED_UNPARSEABLE,
    "G": VerdictStatus.GOLD_UNPARSEABLE,
    "N": VerdictStatus.NO_ANSWER,
}

GSM8K = Gsm8kVerifier()
AIME = AimeVerifier()
MATH = MathVerifier(timeout=10)


def _ids(table):
    return [f"{g!r}~{p!r}" for g, p, _ in table]


GSM8K_TABLE = {
    "separators": [("1234", "1,234", "M"), ("1234567", "1,234,567", "M"), ("1000", "1 000", "M"), ("1234", "12,34", "D"), ("1234", "1,235", "D")],
    "currency_units": [("18", "$18", "M"), ("18", "\\$18", "M"), ("18", "18 dollars", "M"), ("5", "5 apples", "M"), ("7", "\\text{7 hours}", "M"), ("18", "€18", "M"), ("18", "$19", "D")],
    "percent": [("50", "50%", "M"), ("50", "50\\%", "M"), ("50", "50 percent", "M"), ("50", "0.5", "D")],
    "trailing_zeros": [("18", "18.00", "M"), ("18", "18.0", "M"), ("18", "18.01", "D"), ("2.5", "2.50", "M"), ("18", "18.", "M")],
    "negatives": [("-5", "-5", "M"), ("-5", "\u22125", "M"), ("-5", "5", "D"), ("5", "-5", "D"), ("-5", "$-5", "M")],
    "wrappers": [("18", "\\boxed{18}", "M"), ("18", "The answer is 18.", "M"), ("18", "#### 18", "M"), ("18", "**18**", "M"), ("18", "$18$", "M"), ("18", "x = 18", "M"), ("18", "\\boxed{\\text{18}}", "M")],
    "fractions": [("0.5", "1/2", "M"), ("2.5", "2 1/2", "M"), ("2.5", "\\frac{5}{2}", "M"), ("0.5", "\\dfrac12", "M"), ("0.3", "1/3", "D")],
    "not_numbers": [("18", "eighteen", "U"), ("18", "I don't know", "U"), ("18", "", "N"), ("", "18", "G"), ("abc", "18", "G")],
    "expressions": [("12", "3 \\times 4", "M"), ("12", "3 \\times 5", "D")],
}


@pytest.mark.parametrize("gold,pred,want", [r for t in GSM8K_TABLE.values() for r in t], ids=_ids([r for t in GSM8K_TABLE.values() for r in t]))
def test_gsm8k_table(gold, pred, want):
    v = GSM8K.verify(gold=gold, pred=pred)
    assert v.status is S[want], v


AIME_TABLE = [
    ("25", "025", "M"), ("25", "25", "M"), ("0", "000", "M"), ("204", "\\boxed{204}", "M"), ("25", "26", "D"),
    ("25", "1025", "D"), ("25", "-25", "D"), ("25", "25.5", "D"), ("25", "25.0", "M"), ("25", "abc", "U"),
    ("1000", "1000", "G"), ("2.5", "2.5", "G"), ("073", "73", "M"),
]


@pytest.mark.parametrize("gold,pred,want", AIME_TABLE, ids=_ids(AIME_TABLE))
def test_aime_table(gold, pred, want):
    assert AIME.verify(gold=gold, pred=pred).status is S[want]


MATH_TABLE = {
    "latex_without_dollars": [("\\frac{1}{2}", "\\frac12", "M"), ("\\sqrt{2}/2", "\\frac{1}{\\sqrt2}", "M"), ("\\frac{1}{2}", "$\\frac{1}{2}$", "M")],
    "equations_both_sides": [
        ("y=2x+1", "2x+1", "D"), ("y = 2x+1", "2x - y + 1 = 0", "M"), ("5", "2x+3=5", "D"), ("x=2", "2", "M"),
        ("3", "x=3", "M"), ("x=5", "y=5", "D"), ("y = -2x", "y=-2x", "M"), ("y = 2x + 3", "y = 2x + 4", "D"),
    ],
    "tiny_values_and_floats": [("10^{-10}", "0", "D"), ("0.0000001", "0", "D"), ("\\pi", "3.14159265", "D"), ("\\frac13", "0.333", "D"), ("\\frac{1}{2}", "0.5", "M"), ("1.5\\times10^{-7}", "1.6\\times10^{-7}", "D")],
    "multi_part_needs_every_part": [
        ("1,-2", "-2, 1", "M"), ("1,-2", "1", "D"), ("1,-2", "-2", "D"), ("3, 5, 7", "3,5", "D"), ("3, 5, 7", "7,5,3", "M"),
        ("(6,31,-1)", "(6,31,-1)", "M"), ("(6,31,-1)", "(6,31)", "D"), ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5", "M"),
        ("\\{1\\pm\\sqrt{5},-2\\}", "1+\\sqrt5", "D"),
    ],
    "intervals": [("[1,3)", "[1,3]", "D"), ("(3,4]", "(3, 4]", "M"), ("(-\\infty, 3]", "x \\le 3", "M"), ("x \\in [-2,7]", "[-2,7]", "M"), ("(0,9) \\cup (9,36)", "(0,36)\\setminus\\{9\\}", "M"), ("(2,\\infty)", "[2,\\infty)", "D")],
    "tuples": [("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", "M"), ("(-2,1)", "(1,-2)", "D"), ("\\left( \\frac{3}{2}, -13 \\right)", "(1.5,-13)", "M")],
    "wrappers_markdown_text": [("5", "**5**", "M"), ("\\text{Evelyn}", "Evelyn", "M"), ("\\text{Evelyn}", "\\text{Navin}", "D"), ("5", "\\textbf{5}", "M"), ("5", "`5`", "M"), ("\\text{east}", "East", "M")],
    "percent_units_degrees": [("50\\%", "50", "M"), ("50\\%", "0.5", "M"), ("50\\%", "0.05", "D"), ("50\\%", "5", "D"), ("10", "10\\text{ cm}", "M"), ("90^\\circ", "90", "M"), ("864 \\mbox{ inches}^2", "864", "M"), ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", "M"), ("5.4 \\text{ cents}", "5.4", "M")],
    "left_right_dfrac": [("\\dfrac{3}{4}", "\\frac34", "M"), ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(3/5, 8/3]", "M"), ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[\\pi^2/8, 5\\pi^2/4]", "M")],
    "mixed_numbers": [("2\\frac{1}{2}", "\\frac52", "M"), ("2\\frac{1}{2}", "2.5", "M"), ("2\\frac{1}{2}", "2 1/2", "M"), ("2\\frac{1}{2}", "1", "D")],
    "thousands": [("10,\\!080", "10080", "M"), ("11,\\! 111,\\! 111,\\! 100", "11111111100", "M"), ("\\$32,\\!348", "32,348", "M"), ("58,500", "58500", "M")],
    "base_subscripts": [("101_2", "5", "D"), ("101_2", "101", "M"), ("101_2", "101_{2}", "M"), ("4210_{5}", "4210_5", "M"), ("52_8", "42", "D"), ("5", "101_2", "M")],
    "minus_signs": [("-5", "\u22125", "M"), ("-5", "5", "D"), ("-\\frac{1}{2}", "\\frac{-1}{2}", "M"), ("6 - 5i", "-5i+6", "M"), ("6-5i", "6+5i", "D")],
    "plain_code_syntax": [("\\frac{\\pi}{2}", "pi/2", "M"), ("e^{16}", "exp(16)", "M"), ("2\\sqrt{3}", "2*sqrt(3)", "M"), ("x^2+2x", "x**2 + 2*x", "M")],
    "matrices": [
        ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", "M"),
        ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix}0.2\\\\-3.6\\end{pmatrix}", "M"),
        ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix}1/5\\\\18/5\\end{pmatrix}", "D"),
    ],
    "symbolic": [("x^2+2x", "x(x+2)", "M"), ("x^2+2x", "x(x+3)", "D"), ("(a+5)(b+2)", "ab+2a+5b+10", "M"), ("\\sqrt{8}", "2\\sqrt{2}", "M")],
    "invalid_latex_prefix": [("\\frac{1}{2}", "\\frac{1}{2", "U"), ("\\frac{1}{2}", "\\frac{1}{", "U")],
    "multiple_choice": [("\\text{(C)}", "C", "M"), ("\\text{(C)}", "(C)", "M"), ("\\text{(C)}", "B", "D")],
    "huge": [("9^{9^{9^9}}", "5", "G"), ("5", "9^{9^{9^9}}", "U"), ("5", "2^{100000}/2^{99999}", "U"), ("5", "1" * 500, "U"), ("5", "100000!", "U"), ("5", "5^(5^(5^(5^5)))", "U")],
}


@pytest.mark.parametrize(
    "gold,pred,want", [r for t in MATH_TABLE.values() for r in t], ids=_ids([r for t in MATH_TABLE.values() for r in t])
)
def test_math_table(gold, pred, want, math_table_verdicts):
    v = math_table_verdicts[(gold, pred)]
    assert v.status is S[want], v
    assert MATH.verify(gold=gold, pred=pred) == v  # cached, same verdict


@pytest.fixture(scope="module")
def math_table_verdicts():
    """The whole table in one batch (spread over the worker pool), then per-row asserts."""
    rows = [(g, p) for t in MATH_TABLE.values() for g, p, _ in t]
    return dict(zip(rows, MATH.verify_batch(rows)))


def test_math_single_calls_match_batch(math_table_verdicts):
    fresh = MathVerifier(timeout=10)
    for g, p, _ in [r for t in MATH_TABLE.values() for r in t][::9]:
        assert fresh.verify(gold=g, pred=p).status is math_table_verdicts[(g, p)].status


def test_keyword_only_and_check():
    with pytest.raises(TypeError):
        MATH.verify("1", "1")  # type: ignore[misc]
    v = MATH.check(gold="\\frac{1}{2}", response="<reasoning>half</reasoning>\n<answer>\n0.5\n</answer>")
    assert v.equal and v.pred == "0.5"
    assert MATH.check(gold="2", response="I think it is 2", mode="strict").status is VerdictStatus.NO_ANSWER
    assert MATH.check(gold="2", response="I think it is 2").extracted_by == "last_number"
    # a \boxed{} inside the answer block wins; last \boxed{} otherwise
    assert MATH.check(gold="3", response="\\boxed{2} no wait \\boxed{3}").equal
    assert GSM8K.check(gold="18", response=[{"role": "assistant", "content": "<answer>$18.00</answer>"}]).equal


def test_prose_answers_are_flexible_only():
    text = "so she makes 18 dollars. The answer is 18"
    assert GSM8K.check(gold="18", response=text, mode="strict").status is VerdictStatus.NO_ANSWER
    assert GSM8K.check(gold="18", response=text).extracted_by == "final_phrase"
    assert GSM8K.extract(text) is None  # extract() is the slot only ...
    assert Gsm8kVerifier(fallback=True).extract("work...\n#### 18") == "18"  # ... unless fallback


def test_verdicts_carry_reason_and_pred():
    v = GSM8K.verify(gold="18", pred="$19")
    assert v.status is VerdictStatus.DIFFERENT and v.reason and v.pred == "$19" and v.gold == "18"


def test_timeout_gives_timed_out_verdict(monkeypatch):
    """compare runs in a killable worker: a hang becomes TIMED_OUT, not a stuck trainer."""
    v = _SlowMath(timeout=0.5).verify(gold="x^2", pred="x \\cdot x + 0")
    assert v.status is VerdictStatus.TIMED_OUT


class _SlowMath(MathVerifier):
    def compare(self, gold, pred):
        import time

        time.sleep(30)
        return super().compare(gold, pred)
