"""The ``gsm8k``, ``aime`` and ``math`` verifiers.

Each subclasses :class:`grpo_core.Verifier`, so ``verify``/``check`` are
keyword-only, never raise, are cached, and run ``compare`` under a hard
deadline in the core's killable worker pool. ``quick_compare`` here is pure
string/number work on length-capped input (see :mod:`.normalize`), so it is
bounded by construction; GSM8K and AIME answers are decided there without
sympy. Only symbolic comparisons reach the workers.

Where the answer is in a response is the core's one ordered policy
(:mod:`grpo_core.kit.answers`): ``check(gold=, response=)`` finds it the way
a grader does (``<answer>`` slot, ``\\boxed{}``, a final-answer phrase,
``#### N``, the final sentence's math, the last number) and
``check(..., mode="strict")`` reads only the format's slot. Every verdict names
the rule that found the answer (``extracted_by``). The ``mcq`` verifier lives
in :mod:`.choices`.
"""

from __future__ import annotations

from fractions import Fraction

from grpo_core import Verdict, Verifier

from . import normalize as N


class _SymbolicVerifier(Verifier):
    """A verifier whose ``compare`` uses sympy: workers import it while unpickling.

    The core starts a task's clock once the worker has unpickled it, so the
    seconds spent importing sympy and Math-Verify in a fresh worker are not
    charged to the first comparison's deadline (a cold import under load can
    take longer than the deadline itself, and a killed worker would pay it again).
    """

    def __setstate__(self, state):
        self.__dict__.update(state)
        from grpo_core.kit import in_worker

        if in_worker():
            from .symbolic import warm

            warm()


def _num_verdict(g: Fraction, p: Fraction, gold: str, pred: str) -> Verdict:
    if N.numbers_match(gold, pred, g, p):
        return Verdict.matched(f"{N.format_number(p)} == {N.format_number(g)}", pred=pred, gold=gold)
    return Verdict.different(f"{N.format_number(p)} != {N.format_number(g)}", pred=pred, gold=gold)


class Gsm8kVerifier(_SymbolicVerifier):
    """Numeric answers as GSM8K writes them ($1,234.00, 50%, −3, 18 dollars, \\boxed{18})."""

    name = "gsm8k"
    description = "GSM8K numbers: separators, currency/units, percent, million, .00, unicode minus; finds #### N and 'The answer is'"
    timeout = 3.0
    version = "2"

    def quick_compare(self, gold: str, pred: str) -> Verdict | None:
        g = N.parse_number(gold, unit_words=True)
        if g is None:
            if len(gold) > N.MAX_QUICK_CHARS or not any(c.isdigit() for c in gold):
                return Verdict.gold_unparseable(f"gold {gold[:60]!r} is not a number", pred=pred, gold=gold)
            return None  # an expression gold: let the symbolic path read it
        p = N.parse_number(pred, unit_words=True)
        if p is not None:
            return _num_verdict(g, p, gold, pred)
        cleaned = N.clean_number_text(pred[: N.MAX_QUICK_CHARS], unit_words=True)
        a = N.eval_arithmetic(cleaned)
        if a is not None:
            return _num_verdict(g, a, gold, pred)
        if not any(c.isdigit() for c in cleaned) and "\\frac" not in cleaned and "\\pi" not in cleaned:
            return Verdict.pred_unparseable(f"answer {pred[:60]!r} has no number", pred=pred, gold=gold)
        return None  # e.g. "3 \times 4" or "2^{5}": evaluate symbolically

    def compare(self, gold: str, pred: str) -> Verdict:
        from .symbolic import compare_math

        return compare_math(gold, pred)


class AimeVerifier(Verifier):
    """AIME answers: an integer from 0 to 999 (leading zeros allowed)."""

    name = "aime"
    description = "AIME: an integer 0..999, leading zeros allowed; finds the answer in prose too"
    timeout = 2.0
    version = "2"

    def quick_compare(self, gold: str, pred: str) -> Verdict:
        g = N.parse_number(gold)
        if g is None or g.denominator != 1 or not 0 <= g <= 999:
            return Verdict.gold_unparseable(f"gold {gold[:60]!r} is not an integer from 0 to 999", pred=pred, gold=gold)
        p = N.parse_number(pred, unit_words=True)
        if p is None:
            return Verdict.pred_unparseable(f"answer {pred[:60]!r} is not a number", pred=pred, gold=gold)
        if p.denominator != 1:
            return Verdict.different(f"{N.format_number(p)} is not an integer", pred=pred, gold=gold)
        if not 0 <= p <= 999:
            return Verdict.different(f"{p} is outside 0..999", pred=pred, gold=gold)
        return _num_verdict(g, p, gold, pred)

    def compare(self, gold: str, pred: str) -> Verdict:  # quick_compare always decides
        return self.quick_compare(gold, pred)


class MathVerifier(_SymbolicVerifier):
    """LaTeX and plain-expression answers compared symbolically (Math-Verify + sympy, hardened)."""

    name = "math"
    description = "MATH-style LaTeX/expressions: fractions, roots, pi, intervals, tuples/sets, equations (Math-Verify, hardened)"
    timeout = 5.0
    version = "2"

    def quick_compare(self, gold: str, pred: str) -> Verdict | None:
        if len(gold) > N.MAX_QUICK_CHARS or len(pred) > N.MAX_QUICK_CHARS:
            return None
        g, p = N.normalize_math(gold), N.normalize_math(pred)
        if not g:
            return Verdict.gold_unparseable("gold is empty after normalisation", pred=pred, gold=gold)
        if not p:
            return Verdict.pred_unparseable("answer is empty after normalisation", pred=pred, gold=gold)
        if N.compact(g) == N.compact(p) and N.has_percent(gold) == N.has_percent(pred):
            return Verdict.matched("same answer after normalisation", pred=pred, gold=gold)
        # multiple-choice letters
        if len(g) == 1 and g in "ABCDE":
            if len(p) == 1 and p.isalpha():
                return Verdict.matched("same choice", pred=pred, gold=gold) if p.upper() == g else Verdict.different(
                    f"choice {p} != {g}", pred=pred, gold=gold)
        # numbers written in a base: 101_2
        gb, pb = N.base_number(g), N.base_number(p)
        if gb is not None:
            if pb is not None:
                same = int(pb[0], pb[1]) == int(gb[0], gb[1])
            else:
                same = p.replace(" ", "").upper() == gb[0]
            reason = f"base-{gb[1]} digits" + (" match" if same else " differ")
            return Verdict.matched(reason, pred=pred, gold=gold) if same else Verdict.different(reason, pred=pred, gold=gold)
        if "=" in g and "=" in p:
            return None  # two equations/assignments: x = 5 is not y = 5; compare symbolically
        gn = N.parse_number(g)
        if pb is not None and gn is not None and gn.denominator == 1:
            return _num_verdict(gn, Fraction(int(pb[0], pb[1])), gold, pred)
        pn = N.parse_number(p)
        if gn is not None and pn is not None:
            return _num_verdict(gn, pn, gold, pred)
        # small exact arithmetic (9+1, 2^{10}/4, \frac{3}{4}\cdot 2) on both sides
        ga = gn if gn is not None else N.eval_arithmetic(g)
        if ga is not None:
            pa = pn if pn is not None else N.eval_arithmetic(p)
            if pa is not None:
                return _num_verdict(ga, pa, gold, pred)
        if N.is_text_answer(g) and N.is_text_answer(p):
            if g.lower() == p.lower():
                return Verdict.matched("same words", pred=pred, gold=gold)
            return Verdict.different("different words", pred=pred, gold=gold)
        if not N.braces_balanced(p) and N.braces_balanced(g):
            return Verdict.pred_unparseable("unbalanced braces in the answer", pred=pred, gold=gold)
        if pn is not None and g.count("=") == 1 and not N.is_assignment(g):
            return Verdict.different("gold is an equation; the answer is a number", pred=pred, gold=gold)
        if pn is not None and N.is_collection_shaped(g):
            return Verdict.different("one answer is a single value, the other a collection", pred=pred, gold=gold)
        if pn is not None and N.normalize_math(g) in "ABCDEFGHIJ" and len(N.normalize_math(g)) == 1:
            return Verdict.different("a number does not name a choice", pred=pred, gold=gold)
        gv, pv = N.value_at_a_point(g), N.value_at_a_point(p)
        if gv is not None and pv is not None and gv != pv:
            return Verdict.different("different values at a rational point", pred=pred, gold=gold)
        return None

    def compare(self, gold: str, pred: str) -> Verdict:
        from .symbolic import compare_math

        return compare_math(gold, pred)
