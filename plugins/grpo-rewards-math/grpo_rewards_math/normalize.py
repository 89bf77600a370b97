"""Bounded string and number normalisation for answers (no sympy here).

Everything in this module works on length-capped strings with linear-time
scans and regexes that cannot backtrack catastrophically, so it is safe to run
inline on the trainer's thread (``Verifier.quick_compare``).

Policies (the same for every verifier of this plugin):

* **wrappers** are removed: ``$…$``, ``\\(…\\)``, ``\\[…\\]``, a whole-answer
  ``\\boxed{}``/``\\fbox{}``, ``\\text{}``/``\\textbf{}``/``\\mathrm{}``,
  markdown ``**…**``/``*…*``/backticks, a leading "The answer is",
  "Answer:", "Final answer:" or ``####``, and a trailing full stop;
* **\\left / \\right** and sizing commands are dropped; ``\\dfrac``/``\\tfrac``
  become ``\\frac``; LaTeX spacing (``\\!``, ``\\,``, ``~``) is dropped;
* **thousands separators** (``1,234``, ``1{,}234``, ``10,\\!080``,
  ``1 234``) are accepted only in strict groups of three digits; anything else
  with a comma is a list of parts;
* **percent**: ``p%`` equals ``p`` (GSM8K writes "50" for 50%), and equals
  the fraction ``p/100`` only when the other side is not a whole number
  (``10%`` equals ``0.1``; ``1000%`` is not ``10``; ``0.5`` without a sign is
  never ``50``) -- :func:`numbers_match`;
* **word multipliers**: ``1.5 million`` is 1500000 (thousand, million,
  billion, trillion); a bare ``1.5`` is never ``1.5 million``;
* **decimals of a fraction**: a decimal with at least six places equals a
  fraction it rounds or truncates, when those places single that fraction out
  (``0.142857`` equals ``1/7``; ``0.333`` and ``0.33`` are not ``1/3``) --
  :func:`numbers_match`;
* **shorthand TeX**: ``\\frac12``, ``\\frac\\pi2``, ``\\sqrt2`` read as
  ``\\frac{1}{2}``, ``\\frac{\\pi}{2}``, ``\\sqrt{2}``;
* **relations**: ``>=``, ``\\ge``, ``\\geqslant``, ``≥`` are ``\\geq`` (and the
  same for ``\\leq``); ``\\gt``/``\\lt`` are ``>``/``<``;
* **named tuples**: ``(p,q,r) = (6, 31, -1)`` is the tuple ``(6, 31, -1)``;
* **units and currency** are dropped: ``\\$``, ``€``, ``£``, ``\\text{ cm}^2``,
  glued ``1,000.99€``, ``12cm``, ``5 m²``,
  ``^\\circ``/``°``/"degrees" after a value (and, for GSM8K-style numbers,
  trailing unit words separated by a space: ``18 dollars``);
* **minus signs**: ``−`` (U+2212) and the other Unicode minus forms read as ``-``;
* **decimals are exact**: ``0.5`` equals ``1/2`` and ``2.50`` equals ``5/2``,
  but ``0.333`` does not equal ``1/3``;
* **mixed numbers**: ``2\\frac{1}{2}`` and ``2 1/2`` read as ``5/2``;
* **base subscripts**: ``101_2`` is the digit string ``101`` in base 2.
"""

from __future__ import annotations

from grpo_core.kit import matching_brace

import re
from fractions import Fraction
from functools import lru_cache

#: longest answer the inline path looks at (longer ones go to the worker)
MAX_QUICK_CHARS = 300
#: longest integer literal (digits) read inline
MAX_DIGITS = 80

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\ufe63": "-",  # small hyphen-minus
    "\uff0d": "-",  # fullwidth hyphen-minus
    "\u2010": "-",  # hyphen
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "\u00b0": "^\\circ",
    "\u221a": "\\sqrt",
    "\uff0c": ",",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u00bd": "1/2",
    "\u00bc": "1/4",
    "\u00be": "3/4",
}
_UNICODE_RE = re.compile("|".join(re.escape(k) for k in _UNICODE))

_LEAD_RE = re.compile(
    r"^(?:#{2,4}|(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?|final\s+answer\s*:?|therefore,?|thus,?|so,?)\s*",
    re.IGNORECASE,
)
_WRAP_CMD_RE = re.compile(r"^\\(?:boxed|fbox|text|textbf|textit|mathrm|mathbf|mbox|textrm|displaystyle)\s*\{")
_SIZING_RE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*")
_SPACING_RE = re.compile(r"(?<!\\)\\[!,;:> ]|\\(?:thinspace|negthinspace|medspace|thickspace)(?![a-zA-Z])")
_DEGREE_RE = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree(?![a-zA-Z])")
_PERCENT_RE = re.compile(r"\\%|%|\\text\{\s*percent\s*\}|(?<=\d)\s*percent\b", re.IGNORECASE)
# \text{ cm}^2 , \mbox{ inches}, \mathrm{kg} after a value: units
_UNIT_CMD_RE = re.compile(r"\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*[A-Za-z][A-Za-z .]*\}(?:\s*\^\s*(?:\{\s*\d\s*\}|\d))?")
_CONJ_RE = re.compile(r"\\(?:text|mbox|textrm)\s*\{\s*(?:and|or|,)\s*\}|\\q?quad(?![a-zA-Z])")
_WS_RE = re.compile(r"\s+")
_GEQ_RE = re.compile(r">=|\\(?:geqslant|geq|ge)(?![a-zA-Z])\s*")
_LEQ_RE = re.compile(r"<=|\\(?:leqslant|leq|le)(?![a-zA-Z])\s*")
_GT_LT_RE = re.compile(r"\\(gt|lt)(?![a-zA-Z])\s*")
# \frac12, \frac\pi2, \frac1{x}, \sqrt2: a one-token argument without braces
_TEX_TOKEN = r"(\\[a-zA-Z]+|[0-9a-zA-Z])"
_FRAC_SHORT_RE = re.compile(r"\\frac\s*" + _TEX_TOKEN + r"\s*" + _TEX_TOKEN)
_FRAC_HALF_SHORT_RE = re.compile(r"\\frac\s*" + _TEX_TOKEN + r"\s*(?=\{)")
_FRAC_FIRST_BRACED_RE = re.compile(r"(\\frac\s*\{[^{}]*\})\s*" + _TEX_TOKEN)
_SQRT_SHORT_RE = re.compile(r"\\sqrt\s*" + _TEX_TOKEN)
# (p, q, r) = (6, 31, -1): the names are dropped
_NAMED_TUPLE_RE = re.compile(r"^\(\s*[A-Za-z](?:\s*,\s*[A-Za-z])+\s*\)\s*=\s*(\(.*\))$")
# a unit glued to a value: 12cm, 3kg, 5 m² (a single-letter unit only with its power sign)
_GLUED_UNIT_RE = re.compile(r"(?<=\d)\s*(?:(?:cm|mm|km|kg|mg|ml|ft|in|mi)(?:\^\s*[23])?|[mg]\^\s*[23])$")
_MULTIPLIERS = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_MULTIPLIER_RE = re.compile(
    r"(?<=\d)\s*(?:\\(?:text|mbox|mathrm|textrm)\s*\{\s*(thousand|million|billion|trillion)\s*\}"
    r"|(thousand|million|billion|trillion)\b)", re.IGNORECASE)


def expand_multipliers(s: str) -> str:
    """``1.5 million`` / ``1.5\\text{ million}`` -> ``1.5\\times 10^{6}`` (before units are dropped)."""
    return _MULTIPLIER_RE.sub(lambda m: f"\\times 10^{{{_MULTIPLIERS[(m.group(1) or m.group(2)).lower()]}}}", s)
_CURRENCY_RE = re.compile(r"\\\$|\$|€|£|¥|₹|\bUSD\b|\\euro(?![a-zA-Z])|\\pounds(?![a-zA-Z])")


def _fix_unicode(s: str) -> str:
    return _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)


def braces_balanced(s: str) -> bool:
    depth = 0
    for c in s:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def strip_wrappers(s: str) -> str:
    """Remove outer wrappers (math delimiters, boxed, text, markdown, lead-ins)."""
    s = _fix_unicode(s).strip()
    for _ in range(12):  # each round removes at least one layer; answers are short
        before = s
        s = s.strip()
        s = _LEAD_RE.sub("", s, count=1)
        while s.endswith((".", ";")) and not s.endswith(("\\.", "\\;")):
            s = s[:-1].rstrip()
        for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("__", "__"), ("`", "`"), ("*", "*")):
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                inner = s[len(a) : len(s) - len(b)]
                if a == "$" and "$" in inner:
                    break
                s = inner
                break
        m = _WRAP_CMD_RE.match(s)
        if m:
            close = matching_brace(s, m.end() - 1)
            if close == len(s) - 1:
                s = s[m.end() : close]
        if s == before:
            break
    return s.strip()


# --- numbers ---------------------------------------------------------------

_INT = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?: \d{3})+|\d+)"
_NUM_RE = re.compile(rf"^([+-]?)\s*({_INT})?(?:\.(\d+))?$")
_FRAC_TEX_RE = re.compile(r"^([+-]?)\s*(?:(\d+)\s*)?\\frac\s*(?:\{\s*(-?\d+)\s*\}|(\d))\s*(?:\{\s*(-?\d+)\s*\}|(\d))$")
_FRAC_SLASH_RE = re.compile(r"^([+-]?)\s*(?:(\d+)\s+)?(\d+)\s*/\s*(\d+)$")
_SCI_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{?\s*([+-]?\d{1,3})\s*\}?$")
_E_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})$")
_ASSIGN_RE = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*(?:=|\\approx|≈)\s*")
_TRAIL_WORDS_RE = re.compile(r"(?<=[\d.}])\s+[A-Za-z][A-Za-z.\-]*(?:\s+[A-Za-z][A-Za-z.\-]*){0,3}(?:\s*\^\s*\d)?$")
_TEX_THOUSANDS_RE = re.compile(r"(?<=\d)\{,\}(?=\d{3})|(?<=\d),\\!\s*(?=\d{3})|(?<=\d),\s*\\,\s*(?=\d{3})")


def clean_number_text(s: str, *, unit_words: bool) -> str:
    s = expand_multipliers(strip_wrappers(s))
    s = _TEX_THOUSANDS_RE.sub(",", s)
    s = _SPACING_RE.sub("", s)
    s = _SIZING_RE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = _ASSIGN_RE.sub("", s, count=1)
    s = _DEGREE_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
    s = _CURRENCY_RE.sub("", s)
    s = _UNIT_CMD_RE.sub("", s)
    s = _GLUED_UNIT_RE.sub("", s.strip())
    s = s.strip()
    if unit_words:
        s = _TRAIL_WORDS_RE.sub("", s)
        # a lone degree word / currency word directly after the value
        s = re.sub(r"(?<=\d)\s*(?:dollars?|cents?|degrees?|percent)$", "", s, flags=re.IGNORECASE)
    s = strip_wrappers(s)
    s = s.strip()
    if s.startswith("(") and s.endswith(")") and "," not in s:
        s = s[1:-1].strip()
    return s


def _int(txt: str) -> int | None:
    digits = txt.replace(",", "").replace(" ", "")
    if not digits or len(digits) > MAX_DIGITS or not digits.isdigit():
        return None
    return int(digits)


_FAST_NUM_RE = re.compile(r"^\s*(-?)(\d{1,30})(?:\.(\d{1,30}))?\s*$")


@lru_cache(maxsize=8192)
def parse_number(s: str, *, unit_words: bool = False) -> Fraction | None:
    """The exact value of a plain numeric answer, or None.

    Accepts integers (with strict thousands separators), decimals, simple
    fractions (``3/4``, ``\\frac{3}{4}``), mixed numbers and ``a\\times10^{k}``.
    With ``unit_words`` a trailing word or two after the number is ignored
    ("18 dollars", "5 apples"), as GSM8K answers need.
    """
    if not s or len(s) > MAX_QUICK_CHARS:
        return None
    m = _FAST_NUM_RE.match(s)
    if m:  # the common case: a plain integer or decimal
        sign, ip, fp = m.groups()
        v = Fraction(int(ip + (fp or "")), 10 ** len(fp or ""))
        return -v if sign else v
    t = clean_number_text(s, unit_words=unit_words)
    if not t or len(t) > MAX_QUICK_CHARS:
        return None
    m = _NUM_RE.match(t)
    if m and (m.group(2) or m.group(3)):
        sign, ip, fp = m.groups()
        iv = _int(ip) if ip else 0
        if iv is None or (fp and len(fp) > MAX_DIGITS):
            return None
        v = Fraction(iv) + (Fraction(int(fp), 10 ** len(fp)) if fp else 0)
        return -v if sign == "-" else v
    m = _FRAC_TEX_RE.match(t) or None
    if m:
        sign, whole, n1, n2, d1, d2 = m.groups()
        num, den = int(n1 or n2), int(d1 or d2)
        if den == 0 or len(str(abs(num))) > MAX_DIGITS:
            return None
        v = Fraction(num, den)
        if whole:
            if v < 0:
                return None
            v = int(whole) + v
        return -v if sign == "-" else v
    m = _FRAC_SLASH_RE.match(t)
    if m:
        sign, whole, n, d = m.groups()
        if int(d) == 0 or len(n) > MAX_DIGITS or len(d) > MAX_DIGITS:
            return None
        v = Fraction(int(n), int(d)) + (int(whole) if whole else 0)
        return -v if sign == "-" else v
    m = _SCI_RE.match(t) or _E_RE.match(t)
    if m:
        mant = parse_number(m.group(1))
        if mant is None:
            return None
        return mant * Fraction(10) ** int(m.group(2))
    return None


def has_percent(s: str) -> bool:
    """True when the answer carries a percent sign or word (``50%``, ``50\\%``, ``50 percent``)."""
    return bool(_PERCENT_RE.search(s))


#: a decimal needs this many places before it may stand for a fraction it rounds
MIN_FRACTION_PLACES = 6
_PLACES_RE = re.compile(r"\d\.(\d+)")


def _places(s: str) -> int:
    m = None
    for m in _PLACES_RE.finditer(s):
        pass
    return len(m.group(1)) if m else 0


def _terminates(v: Fraction) -> bool:
    q = v.denominator
    for f in (2, 5):
        while q % f == 0:
            q //= f
    return q == 1


def decimal_of_fraction(dec: Fraction, places: int, frac: Fraction) -> bool:
    """True when ``dec``, written with ``places`` decimals, is ``frac`` rounded or cut to them.

    Only for long decimals (:data:`MIN_FRACTION_PLACES` or more) of a fraction
    that has no finite decimal, and only when the places single the fraction
    out: two fractions with denominators up to ``q`` differ by at least
    ``1/q^2``, so ``10^places > 2 q^2`` leaves one candidate.
    """
    if places < MIN_FRACTION_PLACES or places > MAX_DIGITS or _terminates(frac):
        return False
    q = frac.denominator
    if 10**places <= 2 * q * q:
        return False
    unit = Fraction(1, 10**places)
    scaled = frac / unit
    cut = Fraction(int(scaled)) * unit  # truncated toward zero
    rounded = Fraction(round(scaled)) * unit
    return dec in (cut, rounded)


def numbers_match(gold: str, pred: str, g: Fraction, p: Fraction) -> bool:
    """Whether two numeric answers are the same by the module's policies.

    Equal values match. A percentage ``v%`` against a number ``o`` without a
    sign matches when ``o == v`` and ``|v| >= 1`` (the sign was dropped, as
    GSM8K writes percentages), or when ``o == v/100`` and ``o`` is not a whole
    number (the fraction: ``10%`` and ``0.1``). A long decimal matches the
    fraction it stands for (:func:`decimal_of_fraction`).
    """
    if g == p:
        gp, pp = has_percent(gold), has_percent(pred)
        return gp == pp or abs(p) >= 1
    gp, pp = has_percent(gold), has_percent(pred)
    if gp != pp:
        v, o = (g, p) if gp else (p, g)
        if o.denominator != 1 and o == v / 100:
            return True
    return decimal_of_fraction(p, _places(pred), g) or decimal_of_fraction(g, _places(gold), p)


def is_integer_answer(s: str) -> bool:
    """True when ``s`` reads as an integer (``42``, ``-7``, ``1,000``, ``12.00``)."""
    v = parse_number(s, unit_words=True)
    return v is not None and v.denominator == 1


def format_number(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    return f"{v.numerator}/{v.denominator}"


# --- LaTeX / expression normalisation ---------------------------------------

_CODE_FUNCS = ("sqrt", "exp", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "arcsin", "arccos", "arctan")
_CODE_FUNC_RE = re.compile(r"(?<![\\A-Za-z])(" + "|".join(_CODE_FUNCS) + r")\s*\(")
_CODE_CONST_RE = re.compile(r"(?<![\\A-Za-z])(pi|infinity|inf|oo)(?![A-Za-z])")
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)_\{?\s*(\d{1,2})\s*\}?$")
_CHOICE_RE = re.compile(r"^\(?\s*([A-Ea-e])\s*\)?$")
_TEXT_ANSWER_RE = re.compile(r"^[A-Za-z]+(?:[ '\-][A-Za-z]+)*$")
_DECIMAL_RE = re.compile(r"(?<![\d.])(\d*)\.(\d+)(?![\d.])")
_TRAIL_DOT_ZERO = re.compile(r"(?<=\d)\.0+(?![\d])")


def _matching_paren(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def code_to_latex(s: str) -> str:
    """Plain code syntax (``pi/2``, ``sqrt(3)``, ``exp(16)``, ``x**2``) as LaTeX."""
    s = s.replace("**", "^")
    s = _CODE_CONST_RE.sub(lambda m: "\\pi " if m.group(1) == "pi" else "\\infty ", s)
    for _ in range(20):  # at most 20 function calls rewritten (length-capped input)
        m = _CODE_FUNC_RE.search(s)
        if not m:
            break
        open_i = m.end() - 1
        close_i = _matching_paren(s, open_i)
        if close_i < 0:
            break
        name, arg = m.group(1), s[open_i + 1 : close_i]
        if name == "sqrt":
            rep = "\\sqrt{" + arg + "}"
        elif name == "exp":
            rep = "e^{" + arg + "}"
        else:
            rep = "\\" + name + "{\\left(" + arg + "\\right)}"
        s = s[: m.start()] + rep + s[close_i + 1 :]
    return s


def expand_tex_shorthand(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac\\pi2`` -> ``\\frac{\\pi}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``."""
    if "\\frac" in s:
        s = _FRAC_SHORT_RE.sub(r"\\frac{\1}{\2}", s)
        s = _FRAC_HALF_SHORT_RE.sub(r"\\frac{\1}", s)
        s = _FRAC_FIRST_BRACED_RE.sub(r"\1{\2}", s)
    if "\\sqrt" in s:
        s = _SQRT_SHORT_RE.sub(r"\\sqrt{\1}", s)
    return s


def _top_level_commas(s: str) -> int:
    depth = n = 0
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            n += 1
    return n


def drop_tuple_names(s: str) -> str:
    """``(p,q,r) = (6, 31, -1)`` -> ``(6, 31, -1)`` when names and values are as many."""
    m = _NAMED_TUPLE_RE.match(s)
    if not m:
        return s
    names = s[: s.index("=")].count(",")
    values = m.group(1)
    return values if _top_level_commas(values[1:-1]) == names else s


@lru_cache(maxsize=8192)
def normalize_math(s: str) -> str:
    """A canonical LaTeX-ish string for a math answer (see the module policies)."""
    s = expand_multipliers(strip_wrappers(s))
    s = _TEX_THOUSANDS_RE.sub(",", s)
    s = _CONJ_RE.sub(",", s)
    s = _SIZING_RE.sub("", s)
    s = s.replace("\\left.", "").replace("\\right.", "")
    s = _SPACING_RE.sub(" ", s).replace("~", " ")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\displaystyle", "")
    s = _GEQ_RE.sub("\\\\geq ", s)
    s = _LEQ_RE.sub("\\\\leq ", s)
    s = _GT_LT_RE.sub(lambda m: ">" if m.group(1) == "gt" else "<", s)
    s = expand_tex_shorthand(s)
    s = _DEGREE_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
    s = _CURRENCY_RE.sub("", s)
    stripped = strip_wrappers(s)
    if not (_TEXT_ANSWER_RE.match(stripped) and stripped == s.strip()):
        # units after a value: drop; a whole-answer \text{...} was unwrapped already
        s2 = _UNIT_CMD_RE.sub("", s).strip()
        if s2:
            s = s2
    s = re.sub(r"(?<=\d)\s+(?:degrees?|units?|cm|m|km|inches|feet|ft|meters)(?:\s*\^\s*\d)?$", "", s)
    s = _GLUED_UNIT_RE.sub("", s).strip() or s
    s = code_to_latex(s)
    s = strip_wrappers(s)
    s = _WS_RE.sub(" ", s).strip()
    s = drop_tuple_names(s)
    m = _CHOICE_RE.match(s)
    if m:
        return m.group(1).upper()
    return s


def compact(s: str) -> str:
    """The string key used for "same text" comparison (spaces, ``{}`` noise removed)."""
    s = s.replace(" ", "")
    s = _TRAIL_DOT_ZERO.sub("", s)
    return s


def base_number(s: str) -> tuple[str, int] | None:
    """``101_2`` -> ``("101", 2)``; None for anything else."""
    m = _BASE_RE.match(s.replace(" ", ""))
    if not m:
        return None
    digits, base = m.group(1), int(m.group(2))
    if not 2 <= base <= 36 or len(digits) > MAX_DIGITS:
        return None
    try:
        int(digits, base)
    except ValueError:
        return None
    return digits.upper(), base


_COLLECTION_RE = re.compile(r"^[(\[].*,.*[)\]]$|\\cup|\\cap|\\begin\{[pbv]?matrix\}|\\in\s*[(\[]", re.DOTALL)


def is_assignment(s: str) -> bool:
    """``x = …`` / ``a_1 = …``: one symbol on the left (a value may answer it); ``2x + 3 = 5`` is not."""
    return bool(_ASSIGN_RE.match(s))


def is_collection_shaped(s: str) -> bool:
    """An interval, union, tuple, vector or matrix (``(3,4]``, ``A \\cup B``, ``x \\in [-2,7]``): never one number."""
    return bool(_COLLECTION_RE.search(s))


def is_text_answer(s: str) -> bool:
    """A word answer (``Evelyn``, ``even``, ``north east``), not a formula of symbols."""
    return bool(_TEXT_ANSWER_RE.match(s)) and any(len(w) >= 3 for w in re.split(r"[ '\-]", s))


def decimals_to_fractions(s: str) -> str:
    """Rewrite decimal literals as exact ``\\frac`` (decimals compare exactly)."""

    def rep(m: re.Match) -> str:
        ip, fp = m.group(1) or "0", m.group(2)
        if len(fp) > MAX_DIGITS:
            return m.group(0)
        return "{\\frac{" + str(int(ip + fp)) + "}{1" + "0" * len(fp) + "}}"

    return _DECIMAL_RE.sub(rep, s)


# --- screening before sympy -------------------------------------------------

MAX_LITERAL_DIGITS = 400
MAX_LOG10 = 5000.0  # a value with more than ~5000 digits is not built
_POW_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^|\*\*)\s*")
_FACT_RE = re.compile(r"(\d+)\s*!")


def _read_exponent(s: str, i: int) -> tuple[str, int]:
    """The exponent text starting at ``s[i]`` and the index after it."""
    if i < len(s) and s[i] == "{":
        j = matching_brace(s, i)
        if j < 0:
            return s[i + 1 :], len(s)
        return s[i + 1 : j], j + 1
    m = re.compile(r"-?\d+").match(s, i)
    if m:
        return m.group(0), m.end()
    return (s[i], i + 1) if i < len(s) else ("", i)


def _log10_power(s: str, depth: int = 0) -> float | None:
    """log10 of the largest literal power tower in ``s`` (None if none)."""
    import math

    if depth > 8:
        return float("inf")
    worst = None
    for m in _POW_RE.finditer(s):
        base = float(m.group(1))
        exp_txt, _ = _read_exponent(s, m.end())
        exp_txt = exp_txt.strip().lstrip("{").rstrip("}")
        inner = _log10_power(exp_txt, depth + 1)
        try:
            if inner is not None:
                exp_val_log = inner  # exponent is itself a power: its log10
                if exp_val_log > 15:
                    val = float("inf")
                else:
                    val = (10**exp_val_log) * math.log10(abs(base)) if abs(base) > 1 else 0.0
            else:
                e = float(exp_txt) if re.fullmatch(r"-?\d+(?:\.\d+)?", exp_txt) else None
                if e is None:
                    continue
                val = abs(e) * math.log10(abs(base)) if abs(base) > 1 else 0.0
        except (OverflowError, ValueError):
            val = float("inf")
        worst = val if worst is None else max(worst, val)
    return worst


def screen(s: str) -> str | None:
    """Why ``s`` is too big to hand to sympy, or None when it looks safe.

    Catches long integer literals, literal power towers (``9^{9^{9^9}}``,
    ``2^{100000}``) and big factorials: the inputs that make sympy build
    numbers with millions of digits in C code no signal can interrupt.
    """
    run = 0
    for c in s:
        run = run + 1 if c.isdigit() else 0
        if run > MAX_LITERAL_DIGITS:
            return f"a number literal longer than {MAX_LITERAL_DIGITS} digits"
    if s.count("^") + s.count("**") > 0:
        mag = _log10_power(s)
        if mag is not None and mag > MAX_LOG10:
            return "a power too large to evaluate (more than 5000 digits)"
        if _nested_power_depth(s) > 3:
            return "powers nested more than 3 deep"
    for m in _FACT_RE.finditer(s):
        if len(m.group(1)) > 4 or int(m.group(1)) > 2000:
            return "a factorial too large to evaluate"
    if s.count("{") > 200 or _brace_depth(s) > 40:
        return "LaTeX nested too deeply"
    return None


def _brace_depth(s: str) -> int:
    d = best = 0
    for c in s:
        if c in "{(":
            d += 1
            best = max(best, d)
        elif c in "})":
            d -= 1
    return best


def _nested_power_depth(s: str) -> int:
    """How deep ``^`` exponents nest (``a^{b^{c}}`` is 2; ``a^b^c`` counts as 2)."""
    best = 0
    stack: list[bool] = []  # per open brace: was it an exponent group?
    pow_depth = 0
    chain = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "^" or (c == "*" and i + 1 < n and s[i + 1] == "*"):
            if c == "*":
                i += 1
            j = i + 1
            while j < n and s[j] == " ":
                j += 1
            if j < n and s[j] == "{":
                stack.append(True)
                pow_depth += 1
                best = max(best, pow_depth)
                i = j + 1
                chain = 0
                continue
            chain += 1
            best = max(best, pow_depth + chain)
        elif c == "{":
            stack.append(False)
        elif c == "}":
            if stack and stack.pop():
                pow_depth -= 1
        elif not (c.isalnum() or c in ". "):
            chain = 0
        i += 1
    return best


# --- exact arithmetic on small expressions (inline, bounded) ----------------

_TOK_RE = re.compile(r"\s*(\d+(?:\.\d+)?|\\frac|\\cdot|\\times|\\div|[-+*/^(){}])")
MAX_EXP = 64


class _Arith:
    """Recursive-descent evaluator for ``+ - * / ^ ( ) \\frac{}{}`` over exact Fractions.

    Refuses (returns None) on anything else, on exponents beyond 64 and on
    results beyond :data:`MAX_DIGITS` digits, so it is bounded on capped input.
    """

    tok_re = _TOK_RE

    def __init__(self, s: str) -> None:
        self.toks: list[str] = []
        pos = 0
        s = s.strip()
        while pos < len(s):
            m = self.tok_re.match(s, pos)
            if not m or m.end() == pos:
                raise ValueError("token")
            self.toks.append(m.group(1))
            pos = m.end()
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want=None):
        t = self.peek()
        if t is None or (want is not None and t != want):
            raise ValueError("syntax")
        self.i += 1
        return t

    def expr(self) -> Fraction:
        v = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            v = v + self.term() if op == "+" else v - self.term()
        return v

    def term(self) -> Fraction:
        v = self.unary()
        while self.peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            op = self.take()
            r = self.unary()
            if op in ("/", "\\div"):
                if r == 0:
                    raise ValueError("division by zero")
                v = v / r
            else:
                v = v * r
        return v

    def unary(self) -> Fraction:
        if self.peek() in ("-", "+"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            e = self.unary() if self.peek() in ("-", "+") else self.atom()
            if e.denominator != 1 or abs(e) > MAX_EXP:
                raise ValueError("exponent")
            if base == 0 and e < 0:
                raise ValueError("division by zero")
            base = base ** int(e)
        if abs(base.numerator) > 10**MAX_DIGITS or base.denominator > 10**MAX_DIGITS:
            raise ValueError("too big")
        return base

    def atom(self) -> Fraction:
        t = self.take()
        if t == "(":
            v = self.expr()
            self.take(")")
            return v
        if t == "{":
            v = self.expr()
            self.take("}")
            return v
        if t == "\\frac":
            self.take("{")
            a = self.expr()
            self.take("}")
            self.take("{")
            b = self.expr()
            self.take("}")
            if b == 0:
                raise ValueError("division by zero")
            return a / b
        if t[0].isdigit():
            if "." in t:
                ip, fp = t.split(".")
                return Fraction(int(ip + fp), 10 ** len(fp))
            return Fraction(int(t))
        raise ValueError("syntax")



def _whole_expression(parser_class, s: str):
    """The value ``parser_class`` reads from all of ``s``, or None (nothing read, text left over, or no value)."""
    try:
        p = parser_class(s)
        if not p.toks:
            return None
        v = p.expr()
        return v if p.peek() is None else None
    except (ValueError, ZeroDivisionError, OverflowError):
        return None

def eval_arithmetic(s: str) -> Fraction | None:
    """The exact value of a small arithmetic expression (``3 \\times 4``, ``9+1``, ``2^{10}/4``), or None."""
    if not s or len(s) > MAX_QUICK_CHARS or "," in s:
        return None
    return _whole_expression(_Arith, s)


# --- one rational point: tells different expressions apart inline --------------

# letters are variables, except e and i (Euler's number and the imaginary unit are not free)
_POINT_TOK_RE = re.compile(r"\s*(\d+(?:\.\d+)?|\\frac|\\cdot|\\times|\\div|[-+*/^(){}]|[a-df-hj-zA-Z](?![a-zA-Z]))")
_STARTS_ATOM = ("(", "{", "\\frac")


class _PointArith(_Arith):
    """:class:`_Arith` with one-letter variables at fixed rationals and implicit products (``2k``, ``6r^2``)."""

    tok_re = _POINT_TOK_RE

    def term(self) -> Fraction:
        v = self.unary()
        while True:
            t = self.peek()
            if t in ("*", "/", "\\cdot", "\\times", "\\div"):
                self.take()
                r = self.unary()
                if t in ("/", "\\div"):
                    if r == 0:
                        raise ValueError("division by zero")
                    v = v / r
                else:
                    v = v * r
            elif t is not None and (t[0].isdigit() or t.isalpha() or t in _STARTS_ATOM):
                v = v * self.power()
            else:
                return v

    def atom(self) -> Fraction:
        t = self.peek()
        if t is not None and len(t) == 1 and t.isalpha():
            self.take()
            return Fraction(7 + 4 * (ord(t) % 29), 13 + 2 * (ord(t) % 31))
        return super().atom()


def value_at_a_point(s: str) -> Fraction | None:
    """The exact value of a polynomial or rational expression in one-letter variables at a fixed point, or None.

    Equal expressions have equal values at every point, so two answers with
    different values here are different; equal values prove nothing (the
    symbolic comparison decides those). Anything beyond ``+ - * / ^``,
    ``\\frac``, brackets and one-letter variables (``e`` and ``i`` excluded)
    is refused.
    """
    if not s or len(s) > MAX_QUICK_CHARS or "," in s or "=" in s:
        return None
    return _whole_expression(_PointArith, s)
