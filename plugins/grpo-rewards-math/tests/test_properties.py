"""Property tests: no input makes a verifier raise, hang or exceed its time limit."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_core import Verdict, VerdictStatus
from grpo_rewards_math import normalize as N
from grpo_rewards_math.verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier

TIMEOUT = 1.5
SLACK = 3.0  # worker start-up and pool overhead on a busy 2-core machine
VERIFIERS = [Gsm8kVerifier(timeout=TIMEOUT), AimeVerifier(timeout=TIMEOUT), MathVerifier(timeout=TIMEOUT)]

LATEX_ATOMS = ["\\frac{", "}{", "}", "{", "\\sqrt{", "^", "_", "\\pi", "\\left(", "\\right)", "(", ")", "[", "]", ",", "=", "-",
               "9", "99", "0", ".", "x", "\\infty", "\\cup", "\\%", "$", "\\boxed{", "\\text{", "!", "**", "e", "i", " ", "\\\\"]
latex_soup = st.lists(st.sampled_from(LATEX_ATOMS), max_size=40).map("".join)
numbers = st.one_of(st.integers(-10**30, 10**30).map(str), st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
                    st.fractions(max_denominator=1000).map(str))


def power_tower(depth: int, base: str) -> str:
    s = base
    for _ in range(depth):
        s = f"{base}^{{{s}}}"
    return s


towers = st.builds(power_tower, st.integers(1, 6), st.sampled_from(["9", "10", "99", "2", "x"]))
code_towers = st.builds(lambda d, b: "**".join([b] * d), st.integers(2, 6), st.sampled_from(["9", "5", "10"]))
nested = st.builds(lambda d, w: w[0] * d + "1" + w[1] * d, st.integers(1, 300),
                   st.sampled_from([("\\frac{", "}{2}"), ("\\sqrt{", "}"), ("{", "}"), ("(", ")"), ("\\left(", "\\right)")]))
garbage = st.text(max_size=200)
answers = st.one_of(garbage, latex_soup, numbers, towers, code_towers, nested)

_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _check(v, gold, pred):
    t0 = time.monotonic()
    out = v.verify(gold=gold, pred=pred)
    took = time.monotonic() - t0
    assert isinstance(out, Verdict)
    assert out.status in VerdictStatus
    assert out.status is not VerdictStatus.ERROR, out
    assert took < v.timeout + SLACK, (gold, pred, took)
    return out


@_settings
@given(gold=answers, pred=answers)
def test_any_pair_returns_a_verdict_in_time(gold, pred):
    for v in VERIFIERS:
        _check(v, gold, pred)


@_settings
@given(pred=answers)
def test_self_or_gold_never_raises_on_real_golds(pred):
    for v, gold in zip(VERIFIERS, ["1,234", "073", "\\left( 3, \\frac{\\pi}{2} \\right)"]):
        out = _check(v, gold, pred)
        assert out.status is not VerdictStatus.GOLD_UNPARSEABLE


@settings(max_examples=60, deadline=None, database=None)
@given(s=st.one_of(garbage, latex_soup, nested, towers))
def test_inline_normalisation_is_fast_and_total(s):
    """quick_compare's helpers run on the trainer thread: they must be fast on anything."""
    t0 = time.monotonic()
    N.normalize_math(s)
    N.parse_number(s, unit_words=True)
    N.screen(s)
    for v in VERIFIERS:
        try:
            v.quick_compare("12", s[:1000])
        except Exception as exc:  # pragma: no cover - the assertion says what broke
            raise AssertionError(f"quick_compare raised on {s!r}: {exc!r}")
    assert time.monotonic() - t0 < 0.5


@settings(max_examples=60, deadline=None, database=None)
@given(v=st.fractions(max_denominator=10**6))
def test_numbers_equal_themselves_in_every_form(v):
    """A value written as a fraction, a LaTeX fraction or (when finite) a decimal matches itself."""
    gold = f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator)
    forms = [gold, f"\\frac{{{v.numerator}}}{{{v.denominator}}}" if v >= 0 else f"-\\frac{{{-v.numerator}}}{{{v.denominator}}}"]
    for f in forms:
        assert GSM8K_QUICK.quick_compare(gold, f).equal, (gold, f)
        assert MATH_QUICK.quick_compare(gold, f).equal, (gold, f)
    other = v + 1
    assert not GSM8K_QUICK.quick_compare(gold, f"{other.numerator}/{other.denominator}").equal


GSM8K_QUICK = Gsm8kVerifier()
MATH_QUICK = MathVerifier()


def test_adversarial_examples():
    v = MathVerifier(timeout=TIMEOUT)
    for gold, pred in [
        ("5", "9^9^9^9"), ("5", "9**9**9**9"), ("5", "5^(5^(5^(5^5)))"), ("5", "10^{10^{10^{10}}}"),
        ("5", "\\log(\\log(\\log(\\log(\\log(\\log(10^{10^{10}}))))))"), ("5", "(" * 500 + ")" * 500),
        ("5", "\\frac{" * 200 + "1" + "}{2}" * 200), ("5", "1" * 999), ("5", "99999999!"), ("2", "x" * 1500),
    ]:
        out = _check(v, gold, pred)
        assert not out.equal
