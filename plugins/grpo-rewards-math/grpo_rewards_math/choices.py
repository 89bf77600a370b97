"""The ``mcq`` verifier: multiple-choice answers, by letter or by the option's text.

The answer is found by the core's ordered policy (:mod:`grpo_core.kit.answers`),
then read as a choice letter:

* a letter ``A``..``Z`` alone or with its marks: ``C``, ``(C)``, ``C.``,
  ``C)``, ``C:``, ``\\text{(C)}``, ``**C**``, ``Option C``, ``choice (C)``,
  ``(C) 42`` (the letter followed by its option's text);
* a lower-case letter only in parentheses (``(c)``), never a bare ``a``/``i``
  of prose;
* when the policy found no letter (in flexible mode), the last choice written
  in the response's final sentence (``... so (B) is correct.``,
  ``Option D fits.``): rule ``last_choice``;
* with the row's options (``check(..., choices=[...])``, the dataset's
  optional ``choices`` column), an answer that is exactly one option's text
  (``5`` for option ``B: 5``) is that option's letter; an answer equal to two
  options' texts, or to none, is not a letter.

The gold is a letter in the same forms, or, with choices, the option's text or
its 0-based index (as MMLU writes it). Only the standard library and the core
are imported here.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from grpo_core import Verdict, Verifier
from grpo_core.kit import completion_text
from grpo_core.kit import TAIL_CHARS, final_sentence

from . import normalize as N

_LETTER_RE = re.compile(
    r"^(?:(?:option|choice|answer)\s*:?\s*)?"
    r"(?:\(([A-Za-z])\)|\[([A-Z])\]|([A-Z])(?=$|[.):,]|\s+[^a-z\s]))",
    re.IGNORECASE | re.UNICODE,
)
_MENTION_RE = re.compile(r"\(([A-Z])\)|\b(?:option|choice)\s*\(?([A-Z])\)?(?![A-Za-z])", re.IGNORECASE)


def choice_letter(text: str) -> str | None:
    """The choice letter an answer names (``(C)``, ``Option C``, ``\\text{C.}``), or None."""
    s = N.strip_wrappers(str(text))
    m = _LETTER_RE.match(s)
    if not m:
        return None
    paren, bracket, bare = m.groups()
    if bare is not None and not bare.isupper() and not s[: m.start(3)].strip():
        return None  # a bare lower-case "a" is prose, not a choice
    return (paren or bracket or bare).upper()


def _options(choices: Any) -> dict[str, str]:
    """``{"A": text, ...}`` from a list of option texts (A first) or a letter mapping."""
    if isinstance(choices, dict):
        return {str(k).strip().upper(): str(v) for k, v in choices.items()}
    if isinstance(choices, (list, tuple)):
        return {chr(ord("A") + i): str(v) for i, v in enumerate(choices[:26])}
    return {}


def _same_text(a: str, b: str) -> bool:
    na, nb = N.compact(N.normalize_math(a)).casefold(), N.compact(N.normalize_math(b)).casefold()
    if na == nb:
        return True
    va, vb = N.parse_number(a, unit_words=True), N.parse_number(b, unit_words=True)
    return va is not None and va == vb


def option_letter(answer: str, choices: Any) -> str | None:
    """The letter of the one option whose text the answer is, or None."""
    hits = [k for k, text in _options(choices).items() if _same_text(answer, text)]
    return hits[0] if len(hits) == 1 else None


def gold_letter(gold: Any, choices: Any = None) -> str | None:
    """The gold as a letter: a letter form, or (with choices) an option's text or 0-based index."""
    if gold is None:
        return None
    letter = choice_letter(str(gold))
    if letter:
        return letter
    if choices is not None:
        g = str(gold).strip()
        opts = _options(choices)
        if g.isdigit() and int(g) < len(opts):
            return chr(ord("A") + int(g))
        return option_letter(g, choices)
    return None


class McqVerifier(Verifier):
    """Multiple choice: the same letter, or the option's own text when the row carries its choices."""

    name = "mcq"
    description = "multiple choice: A-Z, (C), \\text{(C)}, C., Option C, 'the answer is C'; option text with a choices column"
    timeout = 2.0
    version = "1"
    #: rewards pass the dataset's ``choices`` column to check_batch
    uses_choices = True

    def find(self, text, *, mode="flexible"):
        from grpo_core.kit import Found

        found = super().find(text, mode=mode)
        if found is not None and choice_letter(found.answer):
            return found
        if mode == "flexible" and (found is None or found.rule in ("last_math", "last_number")):
            mention = None
            for mention in _MENTION_RE.finditer(final_sentence(text[-TAIL_CHARS:])):
                pass
            if mention is not None:
                return Found((mention.group(1) or mention.group(2)).upper(), "last_choice")
        return found

    def check(self, *, gold: Any, response: Any, mode: str = "flexible", choices: Any = None) -> Verdict:
        """As :meth:`grpo_core.Verifier.check`; ``choices`` (the row's options) lets option texts count."""
        return self.check_batch([gold], [response], mode=mode, choices=None if choices is None else [choices])[0]

    def check_batch(self, golds: Sequence[Any], responses: Sequence[Any], *, mode: str = "flexible",
                    choices: Sequence[Any] | None = None) -> list[Verdict]:
        if choices is None:
            return super().check_batch(golds, responses, mode=mode)
        if not len(golds) == len(responses) == len(choices):
            raise ValueError(f"check_batch got {len(golds)} golds, {len(responses)} responses and {len(choices)} choices")
        letters, found = [], []
        for g, r, c in zip(golds, responses, choices):
            gl = gold_letter(g, c)
            letters.append(gl if gl else g)
            pred, rule = self.answer_in(completion_text(r), gold=g, mode=mode)
            if pred is not None and not choice_letter(pred):
                pred = option_letter(pred, c) or pred
            found.append((pred, rule))
        return self.verdicts_for(letters, found)

    def quick_compare(self, gold: str, pred: str) -> Verdict:
        g = choice_letter(gold)
        if g is None:
            return Verdict.gold_unparseable(f"gold {gold[:40]!r} is not a choice letter", pred=pred, gold=gold)
        p = choice_letter(pred)
        if p is None:
            return Verdict.pred_unparseable(f"answer {pred[:60]!r} names no choice", pred=pred, gold=gold)
        if p == g:
            return Verdict.matched(f"choice {p}", pred=pred, gold=gold)
        return Verdict.different(f"choice {p} != {g}", pred=pred, gold=gold)

    def compare(self, gold: str, pred: str) -> Verdict:  # quick_compare always decides
        return self.quick_compare(gold, pred)
