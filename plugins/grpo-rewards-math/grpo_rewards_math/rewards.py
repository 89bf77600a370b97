"""Correctness rewards built on the verifiers.

TRL contract: ``reward(completions, answer=[...], **kwargs) -> list[float | None]``.
Completions may be strings or chat message lists. Which verifier checks a row:

1. an explicit option ``verifier="math"`` (a string, e.g. through
   ``functools.partial`` or the reward's options);
2. else the dataset's ``verifier`` column (``DatasetAdapter.load`` adds it),
   passed by TRL as a list, one name per row;
3. else ``gsm8k``.

Where the answer is read (``mode``):

* ``correctness`` reads the format's slot only (``mode="strict"``: the last
  ``<answer>…</answer>``, else the last ``\\boxed{}``), so it rewards right
  answers given in the format the prompt asks for; ``mode`` is its registered
  option, so ``--reward-option correctness.mode=flexible`` reads as
  ``correctness_flexible`` does;
* ``correctness_flexible`` finds the answer a grader finds anywhere in the
  response (``mode="flexible"``: also "The answer is …", ``#### N``, the final
  sentence's math, the last number; see :mod:`grpo_core.kit.answers`), a
  learning signal for a model that does not follow the format yet.

A dataset's ``choices`` column (the options of a multiple-choice row) is passed
on to the ``mcq`` verifier.

``None`` means "no signal" (the gold answer is unusable, or the verifier ran
out of time or failed), never "wrong": the trainer leaves such samples out.
"""

from __future__ import annotations

from typing import Any, Sequence

from grpo_core.kit import completion_text
from grpo_core.kit import MODES, VerdictStatus

DEFAULT_VERIFIER = "gsm8k"
_ABSTAIN = (VerdictStatus.GOLD_UNPARSEABLE, VerdictStatus.TIMED_OUT, VerdictStatus.ERROR)


def _verifier_names(n: int, verifier: Any) -> list[str]:
    if isinstance(verifier, str) and verifier:
        return [verifier] * n
    if isinstance(verifier, (list, tuple)) and len(verifier) == n:
        return [v if isinstance(v, str) and v else DEFAULT_VERIFIER for v in verifier]
    return [DEFAULT_VERIFIER] * n


def _get(name: str):
    from grpo_core import get_verifier

    return get_verifier(name)


def verdicts(completions: Sequence[Any], answer: Sequence[Any], verifier: Any = None, *, mode: str = "strict",
             choices: Sequence[Any] | None = None):
    """One Verdict per completion, each checked by its row's verifier (batched per verifier)."""
    texts = [completion_text(c) for c in completions]
    golds = list(answer) if answer is not None else [None] * len(texts)
    if len(golds) != len(texts):
        raise ValueError(f"got {len(texts)} completions and {len(golds)} answers")
    names = _verifier_names(len(texts), verifier)
    out: list = [None] * len(texts)
    for name in dict.fromkeys(names):
        idx = [i for i, n in enumerate(names) if n == name]
        v = _get(name)
        extra = {}
        if choices is not None and len(choices) == len(texts) and getattr(v, "uses_choices", False):
            extra["choices"] = [choices[i] for i in idx]
        res = v.check_batch([golds[i] for i in idx], [texts[i] for i in idx], mode=mode, **extra)
        for i, r in zip(idx, res):
            out[i] = r
    return out


def correctness(completions, answer=None, verifier=None, mode="strict", choices=None, **kwargs) -> list[float | None]:
    """2.0 when the answer in the ``<answer>`` slot (or last ``\\boxed{}``) equals the gold, else 0.0 (None: gold unusable)."""
    if mode not in MODES:
        raise ValueError(f"correctness: unknown mode {mode!r}; choose one of: {', '.join(MODES)} (--reward-option correctness.mode=...).")
    return [None if v.status in _ABSTAIN else (2.0 if v.equal else 0.0)
            for v in verdicts(completions, answer, verifier, mode=mode, choices=choices)]


def correctness_flexible(completions, answer=None, verifier=None, choices=None, **kwargs) -> list[float | None]:
    """2.0 when the answer a grader finds anywhere in the response equals the gold, else 0.0 (None: gold unusable)."""
    return correctness(completions, answer=answer, verifier=verifier, mode="flexible", choices=choices)


def int_answer(completions, answer=None, verifier=None, **kwargs) -> list[float | None]:
    """0.5 when the extracted answer is an integer (None: gold unusable)."""
    from .normalize import is_integer_answer

    texts = [completion_text(c) for c in completions]
    names = _verifier_names(len(texts), verifier)
    golds = list(answer) if answer is not None else [None] * len(texts)
    out: list[float | None] = []
    for t, g, name in zip(texts, golds, names):
        v = _get(name)
        if g is None or not str(g).strip() or not v.parse_gold(str(g)):
            out.append(None)
            continue
        pred = v.extract(t)
        out.append(0.5 if pred is not None and is_integer_answer(pred) else 0.0)
    return out


def graded_correctness(completions, answer=None, verifier=None, **kwargs) -> list[float | None]:
    """3.0 exact, 1.0 within 10% of the gold, -1.5 wrong, 0.0 when no answer is found (Llama variant)."""
    from .normalize import parse_number

    out: list[float | None] = []
    for v in verdicts(completions, answer, verifier):
        if v.status in _ABSTAIN:
            out.append(None)
        elif v.equal:
            out.append(3.0)
        elif v.status is VerdictStatus.NO_ANSWER:
            out.append(0.0)
        else:
            g = parse_number(v.gold or "", unit_words=True)
            p = parse_number(v.pred or "", unit_words=True)
            close = g is not None and p is not None and g != 0 and abs(p - g) <= abs(g) / 10
            out.append(1.0 if close else -1.5)
    return out
