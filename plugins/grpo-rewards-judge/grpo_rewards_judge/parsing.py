"""Read a score or a preference out of a judge's reply.

The judge is asked for JSON (and constrained to it where the server allows),
but small models and unconstrained servers still answer in prose. The parsers
accept, in order: a JSON object anywhere in the reply, then the usual prose
forms (``Score: 7``, ``7/10``, ``[[A]]``, ``Winner: B``). Every failure
comes back with a short reason, which the metrics count; nothing raises.
All scans are linear and capped at :data:`MAX_REPLY_CHARS`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from grpo_core.kit import matching_brace

MAX_REPLY_CHARS = 4000
SCORE_KEYS = ("score", "rating", "grade")
WINNER_KEYS = ("winner", "verdict", "better", "choice")
WINNERS = ("A", "B", "tie")

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_KEYWORD_SCORE = re.compile(rf"\b(?:score|rating|grade)\b\W{{0,6}}({_NUMBER})", re.I)
_OUT_OF = re.compile(rf"({_NUMBER})\s*(?:/|out of)\s*{_NUMBER}", re.I)
_BARE = re.compile(rf"^\W*({_NUMBER})\W*$")
_WINNER_TEXT = re.compile(r"\[\[\s*(A|B|tie)\s*\]\]|\b(?:winner|verdict|better)\b\W{0,6}(A|B|tie)\b", re.I)


def _json_objects(text: str):
    """Every top-level ``{...}`` in ``text`` that parses as a JSON object, first to last."""
    i = text.find("{")
    while i >= 0:
        j = matching_brace(text, i)
        if j < 0:
            return
        try:
            obj = json.loads(text[i : j + 1])
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            yield obj
        i = text.find("{", j + 1)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(_NUMBER, value.strip()):
        return float(value.strip())
    return None


def parse_score(reply: str | None, lo: float, hi: float) -> tuple[float | None, str | None]:
    """``(score, None)`` for a score in ``[lo, hi]``, else ``(None, reason)``.

    >>> parse_score('{"score": 4}', 1, 5)
    (4.0, None)
    >>> parse_score('The reasoning is sound. Score: 8/10', 1, 10)
    (8.0, None)
    >>> parse_score('{"score": 11}', 1, 10)
    (None, 'score 11 outside 1..10')
    >>> parse_score('I cannot grade this.', 1, 10)
    (None, 'no score in the reply')
    """
    if not reply or not reply.strip():
        return None, "empty reply"
    text = reply[:MAX_REPLY_CHARS]
    found: float | None = None
    for obj in _json_objects(text):
        for key in SCORE_KEYS:
            if key in obj:
                found = _number(obj[key])
                if found is None:
                    return None, f"{key} is not a number: {str(obj[key])[:40]!r}"
                break
        if found is not None:
            break
    if found is None:
        for pattern in (_KEYWORD_SCORE, _OUT_OF, _BARE):
            m = pattern.search(text)
            if m:
                found = float(m.group(1))
                break
    if found is None:
        return None, "no score in the reply"
    if not lo <= found <= hi:
        return None, f"score {found:g} outside {lo:g}..{hi:g}"
    return found, None


def parse_winner(reply: str | None) -> tuple[str | None, str | None]:
    """``("A" | "B" | "tie", None)``, else ``(None, reason)``.

    >>> parse_winner('{"winner": "B"}')
    ('B', None)
    >>> parse_winner('Both are fine. [[tie]]')
    ('tie', None)
    >>> parse_winner('no idea')
    (None, 'no winner in the reply')
    """
    if not reply or not reply.strip():
        return None, "empty reply"
    text = reply[:MAX_REPLY_CHARS]
    for obj in _json_objects(text):
        for key in WINNER_KEYS:
            if key in obj:
                value = str(obj[key]).strip()
                for w in WINNERS:
                    if value.lower() == w.lower():
                        return w, None
                return None, f"{key} is not A, B or tie: {value[:40]!r}"
    m = _WINNER_TEXT.search(text)
    if m:
        value = (m.group(1) or m.group(2)).lower()
        return ("tie" if value == "tie" else value.upper()), None
    return None, "no winner in the reply"
