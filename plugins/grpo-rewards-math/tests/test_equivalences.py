"""Each written equivalence policy, with the negative cases beside it that it must never accept.

Rows are (verifier, gold, pred, equal). The negatives are the wrong answers a
policy could let through if it were written loosely: zero false positives is
the first rule.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_rewards_math import normalize as N
from grpo_rewards_math.verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier

V = {"gsm8k": Gsm8kVerifier(), "math": MathVerifier(timeout=10), "aime": AimeVerifier()}

POLICIES = {
    "percent": [
        ("math", "0.1", "10\\%", True), ("math", "10\\%", "0.1", True), ("gsm8k", "10", "10%", True),
        ("math", "0.25", "25 percent", True), ("gsm8k", "12.5", "12.5%", True),
        ("math", "0.1", "0.1\\%", False), ("gsm8k", "10", "1000%", False), ("math", "10", "0.1", False),
        ("math", "0.5", "50", False), ("math", "1", "100\\%", False), ("math", "10\\%", "0.1\\%", False),
        ("math", "0.1", "1\\%", False),
    ],
    "word_multipliers": [
        ("gsm8k", "1500000", "1.5 million", True), ("gsm8k", "2000", "2 thousand", True),
        ("gsm8k", "3000000000", "$3 billion", True), ("math", "1.5\\text{ million}", "1500000", True),
        ("gsm8k", "1.5", "1.5 million", False), ("gsm8k", "1500", "1.5 million", False),
        ("gsm8k", "3000000000", "3 million", False), ("math", "1.5", "1.5\\text{ million}", False),
    ],
    "named_tuples": [
        ("math", "(6,31,-1)", "(p,q,r) = (6, 31, -1)", True), ("math", "(1,2)", "(a, b) = (1, 2)", True),
        ("math", "(6,31,-1)", "(p,q,r) = (6, -1, 31)", False), ("math", "(1,2)", "(a,b,c) = (1, 2, 3)", False),
        ("math", "(1,2)", "(a,b) = (2, 1)", False),
    ],
    "shorthand_tex": [
        ("math", "\\frac{\\pi}{2}", "\\frac\\pi2", True), ("math", "\\sqrt{2}", "\\sqrt2", True),
        ("math", "\\frac{1}{2}", "\\frac12", True), ("math", "\\frac{3}{x}", "\\frac3x", True),
        ("math", "2\\sqrt{3}", "2\\sqrt3", True),
        ("math", "\\frac{1}{12}", "\\frac12", False), ("math", "\\sqrt{23}", "\\sqrt23", False),
        ("math", "\\frac{\\pi}{2}", "\\frac2\\pi", False),
    ],
    "units_and_currency": [
        ("gsm8k", "1000.99", "1,000.99€", True), ("gsm8k", "1000.99", "$1,000.99", True),
        ("math", "25", "25 m²", True), ("math", "12", "12cm", True), ("math", "3", "3kg", True),
        ("gsm8k", "1000.99", "1,000.90€", False), ("math", "25", "25x", False), ("math", "5", "5y", False),
        ("math", "25", "26 m²", False),
    ],
    "relations": [
        ("math", "x \\geq 5", "x >= 5", True), ("math", "x \\ge 5", "x \\geqslant 5", True),
        ("math", "x > 5", "x \\gt 5", True), ("math", "x \\leq -2", "x <= -2", True), ("math", "x < 1", "x \\lt 1", True),
        ("math", "x \\geq 5", "x > 5", False), ("math", "x \\geq 5", "x \\leq 5", False), ("math", "x > 5", "x < 5", False),
    ],
    "decimals_of_fractions": [
        ("math", "\\frac{1}{7}", "0.142857", True), ("math", "\\frac{2}{3}", "0.666667", True),
        ("math", "\\frac{2}{3}", "0.666666", True), ("math", "\\frac{1}{3}", "0.3333333333", True),
        ("math", "0.142857", "\\frac{1}{7}", True), ("math", "-\\frac{1}{3}", "-0.333333", True),
        ("math", "\\frac{1}{3}", "0.333", False), ("math", "\\frac{1}{3}", "0.33", False),
        ("math", "\\frac{2}{3}", "0.666668", False), ("math", "\\frac{1}{4}", "0.2500001", False),
        ("math", "\\frac{1}{997}", "0.001003", False), ("math", "\\frac{1}{3}", "0.333334", False),
        ("math", "\\frac{1}{3}", "-0.333333", False),
    ],
    "aime_leading_zeros": [
        ("aime", "7", "007", True), ("aime", "73", "073", True), ("aime", "7", "070", False), ("aime", "73", "0073", True),
    ],
}


@pytest.fixture(scope="module")
def policy_verdicts():
    out = {}
    for name, v in V.items():
        rows = [(g, p) for t in POLICIES.values() for vn, g, p, _ in t if vn == name]
        for (g, p), verdict in zip(rows, v.verify_batch(rows)):
            out[(name, g, p)] = verdict
    return out


@pytest.mark.parametrize("policy", list(POLICIES))
def test_policy_and_its_negatives(policy, policy_verdicts):
    wrong = []
    for name, g, p, equal in POLICIES[policy]:
        v = policy_verdicts[(name, g, p)]
        if v.equal != equal:
            wrong.append(f"{name}: {g!r} vs {p!r} -> {v.status.value} ({v.reason}); expected {'equal' if equal else 'unequal'}")
    assert not wrong, "\n".join(wrong)


def test_every_policy_has_negatives():
    for policy, rows in POLICIES.items():
        assert any(not eq for *_, eq in rows), policy


# --- property tests: the number policies never accept a different quantity -------------------

fractions = st.fractions(min_value=-1000, max_value=1000, max_denominator=200)


@settings(max_examples=300, deadline=None, database=None)
@given(fractions, fractions)
def test_numbers_match_only_equal_values_without_percent(g, p):
    gs, ps = N.format_number(g), N.format_number(p)
    assert N.numbers_match(gs, ps, g, p) == (g == p)


@settings(max_examples=300, deadline=None, database=None)
@given(fractions, st.integers(1, 12))
def test_a_decimal_is_its_fraction_only_when_it_is_the_rounded_or_cut_value(frac, places):
    unit = Fraction(1, 10**places)
    for dec in (Fraction(round(frac / unit)) * unit, Fraction(int(frac / unit)) * unit):
        off = dec + unit  # one unit in the last place away: never the fraction
        assert not N.decimal_of_fraction(off, places, frac) or off in (
            Fraction(round(frac / unit)) * unit, Fraction(int(frac / unit)) * unit)
        if N.decimal_of_fraction(dec, places, frac):
            assert places >= N.MIN_FRACTION_PLACES and abs(dec - frac) < unit


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(0, 10**9), st.sampled_from(["thousand", "million", "billion"]))
def test_a_multiplier_word_always_scales(n, word):
    scale = {"thousand": 10**3, "million": 10**6, "billion": 10**9}[word]
    assert N.parse_number(f"{n} {word}", unit_words=True) == n * scale
    if n:
        assert N.parse_number(f"{n} {word}", unit_words=True) != n


# --- inline "different" decisions (no sympy): they may only ever say different -----------------

@pytest.mark.parametrize("gold,pred,equal", [
    ("2k", "2k+1", False), ("6r^2-4r-24", "6r^2-4r-23", False), ("x^2+2x+1", "(x+1)^2", True),
    ("\\frac{3}{x}", "3/x", True), ("(3,4]", "7", False), ("(-\\infty, 2) \\cup (3, \\infty)", "7", False),
    ("x \\in [-2,7]", "7", False), ("\\text{(C)}", "7", False), ("5x - 7y + 11z + 4 = 0", "7", False),
    ("x = 7", "7", True), ("1 = \\zzz = x = 0", "0", True), ("\\begin{pmatrix} -7 \\\\ 16 \\end{pmatrix}", "7", False),
    ("1+2i", "2i+1", True), ("e^0", "1", True),  # e and i are constants, never variables at a point
])
def test_inline_decisions_agree_with_the_symbolic_comparison(gold, pred, equal):
    assert V["math"].verify(gold=gold, pred=pred).equal is equal


def test_a_point_value_refuses_what_it_cannot_read():
    for s in ("2i", "e", "xy", "\\sin x", "x!", "a_1", "cm", "1, 2", "x = 1"):
        assert N.value_at_a_point(s) is None, s
    assert N.value_at_a_point("2k") == 2 * N.value_at_a_point("k")
