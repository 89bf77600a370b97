"""Scoring completions with a verifier: pass@1 accuracy, strict and flexible, unbiased pass@k, maj@k,
format rate, and "no answer found" counted apart from "wrong".

As lm-evaluation-harness reports strict-match and flexible-extract on GSM8K, every completion is
checked twice: strict (the answer must be in the format's slot, ``<answer>...</answer>`` or
``\\boxed{}``: format and correctness together) and flexible (the answer a grader finds anywhere in the
reply: final-answer phrases, ``#### N``, the last number: correctness alone). ``accuracy``, pass@k and
maj@k are strict; the gap between ``accuracy_flexible`` and ``accuracy_strict`` is the share of right
answers written outside the slot. Engine-neutral: the same metrics and per-problem records
whichever engine (:mod:`~grpo_core.evaluation.engines`) generated the completions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from grpo_core.kit.extraction import completion_text
from grpo_core.kit.verdict import VerdictStatus
from grpo_core.kit.xmlformat import XmlReply


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def default_ks(n: int) -> list[int]:
    """1, the powers of two up to ``n``, and ``n`` itself."""
    ks, k = {1, n}, 2
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(x for x in ks if x >= 1)


def majority_answer(preds: Sequence[str | None]) -> str | None:
    counts = Counter(p for p in preds if p is not None)
    if not counts:
        return None
    best = max(counts.values())
    for p in preds:  # first-seen among the most common, deterministic
        if p is not None and counts[p] == best:
            return p
    return None


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    problems: list[dict] = field(default_factory=list)


def score_completions(rows: list[dict], completions: list[list[str]], verifier, ks: Sequence[int] = (1,)) -> EvalResult:
    """Metrics from already generated completions (one list of samples per row)."""
    golds, responses, owners = [], [], []
    for i, (row, samples) in enumerate(zip(rows, completions)):
        for s in samples:
            golds.append(row["answer"])
            responses.append(s)
            owners.append(i)
    # strict: the answer in the format's slot, as eval has always scored it; flexible: wherever a grader finds it
    verdicts = verifier.check_batch(golds, responses, mode="strict") if responses else []
    flexible = verifier.check_batch(golds, responses, mode="flexible") if responses else []
    fmt = [XmlReply.parse(completion_text(r)).follows_format() for r in responses]
    per: list[dict] = [
        {"id": r.get("id"), "answer": r["answer"], "completions": [], "extracted": [], "verdicts": [], "format": [], "flexible": []} for r in rows
    ]
    for i, v, fv, f, s in zip(owners, verdicts, flexible, fmt, responses):
        per[i]["completions"].append(s)
        per[i]["extracted"].append(v.pred)
        per[i]["verdicts"].append({"equal": v.equal, "status": v.status.value, "reason": v.reason})
        per[i]["flexible"].append({"equal": fv.equal, "extracted": fv.pred, "extracted_by": fv.extracted_by})
        per[i]["format"].append(f)
    n_samples = max((len(c) for c in completions), default=0)
    total = sum(len(p["verdicts"]) for p in per) or 1
    correct = sum(v["equal"] for p in per for v in p["verdicts"])
    correct_flexible = sum(v["equal"] for p in per for v in p["flexible"])
    no_answer = sum(v["status"] == VerdictStatus.NO_ANSWER.value for p in per for v in p["verdicts"])
    statuses = Counter(v["status"] for p in per for v in p["verdicts"])
    for p in per:
        p["correct"] = sum(v["equal"] for v in p["verdicts"])
        p["correct_flexible"] = sum(v["equal"] for v in p["flexible"])
    metrics: dict[str, Any] = {
        "problems": len(rows),
        "samples_per_problem": n_samples,
        "accuracy": correct / total,
        "accuracy_strict": correct / total,
        "accuracy_flexible": correct_flexible / total,
        "format_rate": sum(f for p in per for f in p["format"]) / total,
        "no_answer_rate": no_answer / total,
        "wrong_rate": (total - correct - no_answer) / total,
        "status_counts": dict(sorted(statuses.items())),
    }
    for k in ks:
        if k <= n_samples:
            metrics[f"pass@{k}"] = sum(pass_at_k(len(p["verdicts"]), sum(v["equal"] for v in p["verdicts"]), k) for p in per) / max(1, len(per))
    if n_samples > 1:
        maj_ok = 0
        for p, row in zip(per, rows):
            m = majority_answer(p["extracted"])
            p["majority"] = m
            if m is not None:
                maj_ok += verifier.verify(gold=row["answer"], pred=m).equal
        metrics[f"maj@{n_samples}"] = maj_ok / max(1, len(per))
    return EvalResult(metrics, per)

