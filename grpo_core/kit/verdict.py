"""The answer a verifier gives: equal or not, and why.

Every verifier call returns a :class:`Verdict`, never raises. ``status`` says
which of a small fixed set of outcomes happened, so that "the model gave no
answer" is never confused with "the model answered wrong", and neither with
"the gold answer itself could not be read".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class VerdictStatus(str, Enum):
    """Why a verdict came out the way it did."""

    MATCHED = "matched"  #: prediction equals gold
    DIFFERENT = "different"  #: both parsed, they differ
    NO_ANSWER = "no_answer"  #: nothing could be extracted from the response
    PRED_UNPARSEABLE = "pred_unparseable"  #: an answer was found but is not readable
    GOLD_UNPARSEABLE = "gold_unparseable"  #: the gold answer itself is unreadable
    TIMED_OUT = "timed_out"  #: the comparison ran past its hard time limit
    ERROR = "error"  #: the verifier failed; ``reason`` holds the exception text


@dataclass(frozen=True)
class Verdict:
    """The result of comparing one prediction with one gold answer.

    ``equal`` is True only for :attr:`VerdictStatus.MATCHED`. ``pred`` is the
    extracted answer (``None`` when nothing was found), ``reason`` a short
    human-readable explanation. ``extracted_by`` names the rule of
    :mod:`grpo_core.kit.answers` that found ``pred`` in the response
    (``"answer_tag"``, ``"boxed"``, ``"final_phrase"``, ``"gsm8k_hashes"``,
    ``"last_math"``, ``"last_number"``, or a verifier's own), so a reward can be
    audited; it is None when the prediction was given directly (``verify``).
    """

    equal: bool
    status: VerdictStatus
    reason: str = ""
    pred: str | None = None
    gold: str | None = None
    extracted_by: str | None = None

    def __bool__(self) -> bool:  # `if verdict:` reads as "if it matched"
        return self.equal

    @property
    def gold_ok(self) -> bool:
        """False when the gold answer could not be used (reward: None)."""
        return self.status is not VerdictStatus.GOLD_UNPARSEABLE

    @property
    def answered(self) -> bool:
        """True when the response contained an answer at all."""
        return self.status is not VerdictStatus.NO_ANSWER

    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    # Short constructors, so verifiers read as prose.
    @classmethod
    def matched(cls, reason: str = "equal", *, pred=None, gold=None) -> "Verdict":
        return cls(True, VerdictStatus.MATCHED, reason, pred, gold)

    @classmethod
    def different(cls, reason: str = "not equal", *, pred=None, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.DIFFERENT, reason, pred, gold)

    @classmethod
    def no_answer(cls, reason: str = "no answer found", *, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.NO_ANSWER, reason, None, gold)

    @classmethod
    def pred_unparseable(cls, reason: str, *, pred=None, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.PRED_UNPARSEABLE, reason, pred, gold)

    @classmethod
    def gold_unparseable(cls, reason: str, *, pred=None, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.GOLD_UNPARSEABLE, reason, pred, gold)

    @classmethod
    def timed_out(cls, seconds: float, *, pred=None, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.TIMED_OUT, f"timed out after {seconds:g}s", pred, gold)

    @classmethod
    def error(cls, exc: BaseException, *, pred=None, gold=None) -> "Verdict":
        return cls(False, VerdictStatus.ERROR, f"{type(exc).__name__}: {exc}"[:300], pred, gold)
