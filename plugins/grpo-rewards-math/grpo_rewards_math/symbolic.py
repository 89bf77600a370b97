"""Symbolic comparison with Math-Verify and sympy, with its known failures fixed.

This module is imported only inside ``compare`` (in the core's killable worker
processes), never at plugin import time. Math-Verify's own signal-based
timeouts are switched off (``parsing_timeout=None``, ``timeout_seconds=None``):
the core's worker pool enforces the hard deadline, from any thread.

What is changed around Math-Verify (see ``tests/test_math_verifier.py``):

* inputs are normalised first (:func:`grpo_rewards_math.normalize.normalize_math`):
  markdown, ``\\text{}`` wrappers, units, percent, ``\\left/\\right``,
  ``\\dfrac``, plain code syntax such as ``pi/2`` or ``exp(16)``;
* inputs that would make sympy build huge numbers are refused before parsing
  (:func:`grpo_rewards_math.normalize.screen`);
* only the first parse of each side is compared, never "any of the candidates"
  (Math-Verify's ``verify`` returns True if *any* gold/pred pair matches);
* decimals are made exact before parsing, so ``3.14159`` is not ``\\pi`` and
  ``10^{-7}`` is not ``0`` (Math-Verify rounds floats to 6 places);
* an equation is never compared by one side only: ``y = 2x + 1`` needs an
  equation back, and ``2x + 3 = 5`` is not the value ``5``; only an assignment
  of a constant (``x = 5``) may be answered with the value;
* intervals and inequalities compare both ways (``(-\\infty, 3]`` and ``x \\le 3``);
* unbalanced or truncated LaTeX is "unparseable", never a prefix match.
"""

from __future__ import annotations

import logging

from grpo_core.kit import Verdict

from . import normalize as N

_PARSE_CFG = None


def _quiet() -> None:
    global _PARSE_CFG
    if _PARSE_CFG is not None:
        return
    for name in ("math_verify", "math_verify.grader", "math_verify.parser", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import math_verify.grader as g
    import math_verify.parser as p
    from math_verify import LatexExtractionConfig

    # we disable the library's signal timeouts on purpose; silence its one-time warning
    g.TIMEOUT_WARNING_SHOWN = True
    p.TIMEOUT_WARNING_SHOWN = True
    _PARSE_CFG = [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]


_WARM = False


def warm() -> None:
    """Import sympy/Math-Verify and run one parse, so no deadline pays for it.

    Called when a verifier is unpickled in a worker, which happens before the
    worker's clock for the task starts.
    """
    global _WARM
    if not _WARM:
        _WARM = True
        parse_expr("\\frac{1}{2}+x")


def parse_expr(s: str):
    """The sympy object for a normalised answer string, or None when it does not parse."""
    _quiet()
    from math_verify import parse

    if not s or not N.braces_balanced(s):
        return None
    exact = N.decimals_to_fractions(s)
    out = parse("\\boxed{" + exact + "}", extraction_config=_PARSE_CFG, fallback_mode="no_fallback",
                extraction_mode="first_match", parsing_timeout=None)
    for item in out:
        if not isinstance(item, str):
            return item
    return None


def _is_relation(x) -> bool:
    from sympy.core.relational import Relational

    return isinstance(x, Relational)


def _is_const_assignment(x) -> bool:
    from sympy import Eq, Symbol

    return isinstance(x, Eq) and isinstance(x.lhs, Symbol) and not getattr(x.rhs, "free_symbols", {1})


def _has_float(x) -> bool:
    from sympy import Float

    try:
        return any(isinstance(a, Float) for a in x.atoms(Float))
    except Exception:  # noqa: BLE001
        return False


def _numeric_differ(ge, pe) -> str | None:
    """A reason when two constant expressions clearly differ in value, else None."""
    from sympy import Expr, FiniteSet, Interval, MatrixBase, Rational, Set, Tuple, Union

    try:
        # a scalar value can never equal an interval, a union, a vector or a multi-element set/tuple
        shapes = []
        for x in (ge, pe):
            if isinstance(x, (Interval, Union)) or isinstance(x, MatrixBase):
                shapes.append("collection")
            elif isinstance(x, (FiniteSet, Tuple)):
                shapes.append("collection" if len(x.args) > 1 else "single")
            elif isinstance(x, Set):
                shapes.append("other")
            elif isinstance(x, Expr) and not _is_relation(x) and not x.free_symbols:
                shapes.append("scalar")
            else:
                shapes.append("other")
        if sorted(shapes) == ["collection", "scalar"]:
            return "one answer is a single value, the other a collection"
        if not (isinstance(ge, Expr) and isinstance(pe, Expr)) or _is_relation(ge) or _is_relation(pe):
            return None
        syms = sorted(ge.free_symbols | pe.free_symbols, key=str)
        if syms:
            # differ at one rational point: different as functions (equal ones go on to simplify)
            point = {s: Rational(7 + 4 * k, 13 + 2 * k) for k, s in enumerate(syms)}
            ge, pe = ge.subs(point), pe.subs(point)
        gv = ge.evalf(30)
        d = abs((ge - pe).evalf(30))
        scale = abs(gv)
        if not (d.is_Number and scale.is_Number and d.is_finite and scale.is_finite):
            return None
        if d > 1e-20 * max(1, scale):
            return "numerically different"
    except Exception:  # noqa: BLE001 - fall through to the full comparison
        return None
    return None


def compare_math(gold: str, pred: str) -> Verdict:
    """Full comparison of two raw answers (strings), for ``MathVerifier.compare``."""
    g, p = N.normalize_math(gold), N.normalize_math(pred)
    why = N.screen(g)
    if why:
        return Verdict.gold_unparseable(f"gold not compared: {why}", pred=pred, gold=gold)
    if N.compact(g) == N.compact(p) and N.has_percent(gold) == N.has_percent(pred):
        return Verdict.matched("same answer after normalisation", pred=pred, gold=gold)
    why = N.screen(p)
    if why:
        return Verdict.pred_unparseable(f"answer not compared: {why}", pred=pred, gold=gold)
    if N.is_text_answer(g):
        if g.lower() == p.lower():
            return Verdict.matched("same words", pred=pred, gold=gold)
        if N.is_text_answer(p):
            return Verdict.different("different words", pred=pred, gold=gold)
    ge = parse_expr(g)
    if ge is None:
        return Verdict.gold_unparseable(f"gold {gold[:60]!r} does not parse as math", pred=pred, gold=gold)
    if not N.braces_balanced(p):
        return Verdict.pred_unparseable("unbalanced braces in the answer", pred=pred, gold=gold)
    pe = parse_expr(p)
    if pe is None:
        return Verdict.pred_unparseable(f"answer {pred[:60]!r} does not parse as math", pred=pred, gold=gold)

    from sympy import Set

    # equations are never compared by one side only
    if _is_relation(ge) and not _is_relation(pe) and not isinstance(pe, Set):
        if not _is_const_assignment(ge):
            return Verdict.different("gold is an equation or inequality; the answer is not", pred=pred, gold=gold)
    if _is_relation(pe) and not _is_relation(ge) and not isinstance(ge, Set):
        if not _is_const_assignment(pe):
            return Verdict.different("the answer is an equation; gold is a value", pred=pred, gold=gold)

    # Two constants that differ numerically are different: skip Math-Verify's
    # simplify() of their difference (the slow path for wrong answers).
    quick = _numeric_differ(ge, pe)
    if quick:
        return Verdict.different(quick, pred=pred, gold=gold)

    from math_verify import verify

    try:
        ok = verify(ge, pe, float_rounding=12, numeric_precision=15, strict=True,
                    allow_set_relation_comp=True, timeout_seconds=None)
    except Exception as exc:  # noqa: BLE001 - a verifier never raises
        return Verdict.error(exc, pred=pred, gold=gold)
    if ok:
        return Verdict.matched("symbolically equal", pred=pred, gold=gold)
    return Verdict.different("not equal", pred=pred, gold=gold)
