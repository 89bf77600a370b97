"""The base class for answer verifiers.

A verifier answers one question: does this prediction match this gold answer?
Subclasses implement :meth:`Verifier.compare` (and optionally
:meth:`Verifier.quick_compare`); the base class provides what every verifier
must guarantee:

* ``verify`` and ``check`` are keyword-only, so gold and prediction cannot be
  swapped by accident;
* every call returns a :class:`~grpo_core.kit.Verdict`, never raises;
* ``compare`` runs under a hard time limit in a killable worker process
  (no ``signal.alarm``, so it works off the main thread too);
* verdicts are cached;
* ``check`` finds the answer in a whole response by the one ordered policy
  of :mod:`grpo_core.kit.answers` (``mode="flexible"``, the default) or reads
  only the format's slot (``mode="strict"``: the last ``<answer>`` block, else
  the last ``\\boxed{}``), and every verdict says which rule found the answer
  (``Verdict.extracted_by``);
* ``verify_batch`` / ``check_batch`` spread the slow comparisons over processes.

``quick_compare`` runs inline, in the caller's process, with no time limit:
it must be bounded by construction (string and number normalisation on
length-capped input; never ``Fraction("1e999999999")`` or ``10**n`` on the
input's numbers). It returns a Verdict when it can decide, or ``None`` to hand
the pair to ``compare`` in a worker under ``timeout``. The conformance kit
(``grpo_core.testing.check_verifier``) fails a ``quick_compare`` that hangs
on adversarial answers.

Inside a worker process (a ``cpu_bound`` reward calling a verifier), ``compare``
keeps its own hard limit: :mod:`grpo_core.runtime.deadline` forks a child for it and
kills the child at ``timeout``. The engine sends the registered verifiers with
each task (:class:`ShippedVerifiers`, built by the reward engine), so ``grpo_core.get_verifier`` in a
worker finds one without loading every plugin.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Sequence

from grpo_core.kit.answers import Found, check_mode, find_answer
from grpo_core.kit.extraction import MAX_ANSWER_CHARS, completion_text
from grpo_core.kit.verdict import Verdict
from grpo_core.runtime.deadline import in_worker, map_with_deadline


class Verifier:
    """The base of answer verifiers: override ``quick_compare`` (cheap, in-process) and ``compare`` (slow, in a worker under ``timeout``)."""

    #: registry name; ``register(verifier)`` uses it when no name is given
    name: str = ""
    #: one-line description shown by ``grpo-core verifiers``
    description: str = ""
    #: hard time limit (seconds) for one ``compare`` call
    timeout: float = 5.0
    #: ``extract()`` reads prose too ("the answer is ...", ``####``, last number), not only the slot
    fallback: bool = False
    #: bump when verdicts change, so caches keyed on it stay honest
    version: str = "1"
    cache_size: int = 65536

    def __init__(self, *, timeout: float | None = None, fallback: bool | None = None) -> None:
        if timeout is not None:
            self.timeout = timeout
        if fallback is not None:
            self.fallback = fallback
        self._cache: OrderedDict = OrderedDict()

    # --- to override -------------------------------------------------
    def find(self, text: str, *, mode: str = "flexible") -> Found | None:
        """The answer in a response and the rule that found it (see :mod:`grpo_core.kit.answers`)."""
        return find_answer(text, mode=mode)

    def extract(self, text: Any) -> str | None:
        """The answer in a response, or None: the format's slot, or by the whole policy with ``fallback``."""
        found = self.find(completion_text(text), mode="flexible" if self.fallback else "strict")
        return _capped(found.answer) if found else None

    def quick_compare(self, gold: str, pred: str) -> Verdict | None:
        """Decide cheaply inline, or return None to defer to :meth:`compare`."""
        return None

    def compare(self, gold: str, pred: str) -> Verdict:
        """The full comparison; runs in a worker under ``timeout``."""
        raise NotImplementedError(f"{type(self).__name__} must implement compare(gold, pred)")

    def parse_gold(self, gold: str) -> bool:
        """True when ``gold`` is usable; used by pre-flight and dataset checks."""
        v = self.verify(gold=gold, pred=gold)
        return v.gold_ok and v.equal

    # --- the contract ------------------------------------------------
    def verify(self, *, gold: Any, pred: Any) -> Verdict:
        """Compare an extracted prediction with the gold answer."""
        return self.verify_batch([(gold, pred)])[0]

    def check(self, *, gold: Any, response: Any, mode: str = "flexible") -> Verdict:
        """Find the answer in a full response, then verify it.

        ``mode="flexible"`` finds the answer a careful grader finds (the whole
        ordered policy); ``mode="strict"`` reads only the format's slot. The
        verdict's ``extracted_by`` names the rule that found the answer.
        """
        return self.check_batch([gold], [response], mode=mode)[0]

    def check_batch(self, golds: Sequence[Any], responses: Sequence[Any], *, mode: str = "flexible") -> list[Verdict]:
        check_mode(mode)
        if len(golds) != len(responses):
            raise ValueError(f"check_batch got {len(golds)} golds and {len(responses)} responses")
        found = [self.answer_in(r, gold=g, mode=mode) for g, r in zip(golds, responses)]
        return self.verdicts_for(golds, found)

    def answer_in(self, response: Any, *, gold: Any = None, mode: str = "flexible") -> tuple[str | None, str | None]:
        """``(answer, rule)`` found in a response for this gold; ``(None, None)`` when there is none.

        A subclass with its own ``extract()`` keeps it (in both modes); its
        answers name no rule.
        """
        try:
            if type(self).extract is not Verifier.extract:
                return self.extract(response), None
            found = self.find(completion_text(response), mode=mode)
        except Exception:  # noqa: BLE001 - a broken extractor is "no answer"
            return None, None
        answer = _capped(found.answer_for(gold)) if found else None
        return (answer, found.rule) if answer is not None else (None, None)

    def verdicts_for(self, golds: Sequence[Any], found: Sequence[tuple[str | None, str | None]]) -> list[Verdict]:
        """Verify each found answer against its gold; each verdict names the rule that found it."""
        verdicts = self.verify_batch([(g, pred) for g, (pred, _) in zip(golds, found)])
        return [replace(v, extracted_by=rule) if rule and v.pred is not None else v for v, (_, rule) in zip(verdicts, found)]

    def verify_batch(self, pairs: Sequence[tuple[Any, Any]]) -> list[Verdict]:
        out: list[Verdict | None] = [None] * len(pairs)
        slow: dict[tuple[str, str], list[int]] = {}
        for i, (gold, pred) in enumerate(pairs):
            gold_s = None if gold is None else str(gold).strip()
            if not gold_s:
                out[i] = Verdict.gold_unparseable("gold answer is empty", pred=pred)
                continue
            if pred is None or not str(pred).strip():
                out[i] = Verdict.no_answer(gold=gold_s)
                continue
            pred_s = str(pred).strip()
            if len(pred_s) > MAX_ANSWER_CHARS:
                out[i] = Verdict.pred_unparseable(f"answer longer than {MAX_ANSWER_CHARS} characters", pred=pred_s[:80], gold=gold_s)
                continue
            key = (gold_s, pred_s)
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                out[i] = hit
                continue
            try:
                quick = self.quick_compare(gold_s, pred_s)
            except Exception as exc:  # noqa: BLE001
                quick = Verdict.error(exc, pred=pred_s, gold=gold_s)
            if quick is not None:
                out[i] = self._remember(key, quick)
            else:
                slow.setdefault(key, []).append(i)
        if slow:
            keys = list(slow)
            outcomes = map_with_deadline(_compare_in_worker, [(self, g, p) for g, p in keys], timeout=self.timeout)
            for (g, p), oc in zip(keys, outcomes):
                if oc.ok and isinstance(oc.value, Verdict):
                    v = oc.value
                elif oc.timed_out:
                    v = Verdict.timed_out(self.timeout, pred=p, gold=g)
                else:
                    v = Verdict.error(RuntimeError(oc.error or f"compare returned {oc.value!r}"), pred=p, gold=g)
                if not oc.timed_out:
                    self._remember((g, p), v)
                for i in slow[(g, p)]:
                    out[i] = v
        return out  # type: ignore[return-value]

    def _remember(self, key, verdict: Verdict) -> Verdict:
        self._cache[key] = verdict
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return verdict

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # never ship the cache to workers
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} timeout={self.timeout}s>"


def _capped(answer: str) -> str | None:
    answer = answer.strip()
    return answer if answer and len(answer) <= MAX_ANSWER_CHARS else None


def _compare_in_worker(verifier: Verifier, gold: str, pred: str) -> Verdict:
    try:
        v = verifier.compare(gold, pred)
    except Exception as exc:  # noqa: BLE001
        return Verdict.error(exc, pred=pred, gold=gold)
    if not isinstance(v, Verdict):
        return Verdict.error(TypeError(f"compare returned {type(v).__name__}, expected Verdict"), pred=pred, gold=gold)
    return v


# --- verifiers sent to worker processes ---------------------------------------------------------------

_installed: dict[str, tuple[bytes, Any]] = {}  # in a worker: name -> (its pickle, the verifier)


class ShippedVerifiers:
    """The registered verifiers, pickled once in the parent (by the reward engine) and sent with each worker task.

    Unpickling it in a worker (before the task's clock starts) installs them,
    so ``grpo_core.get_verifier(name)`` there returns the parent's verifier
    without loading every plugin. A verifier whose pickle is unchanged keeps
    its object, and so its cache, from one task to the next."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def __getstate__(self):
        return self.blobs

    def __setstate__(self, blobs) -> None:
        self.blobs = blobs
        if in_worker():
            for name, blob in blobs.items():
                if _installed.get(name, (None,))[0] != blob:
                    _installed[name] = (blob, pickle.loads(blob))


def shipped_verifier(name: str) -> Any | None:
    """In a worker: the verifier the parent sent as ``name``, or None."""
    hit = _installed.get(name)
    return None if hit is None else hit[1]
