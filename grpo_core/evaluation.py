"""Evaluate a policy with the same verifier that rewarded it.

Generation here is HF ``generate`` (CPU or GPU); metrics are engine-neutral:
pass@1 accuracy, unbiased pass@k, maj@k, format rate, and "no answer found"
counted apart from "wrong".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .builtin.format_rewards import soft_format
from .verdict import VerdictStatus


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
    verdicts = verifier.check_batch(golds, responses) if responses else []
    fmt = soft_format(responses) if responses else []
    per: list[dict] = [
        {"id": r.get("id"), "answer": r["answer"], "completions": [], "extracted": [], "verdicts": [], "format": []} for r in rows
    ]
    for i, v, f, s in zip(owners, verdicts, fmt, responses):
        per[i]["completions"].append(s)
        per[i]["extracted"].append(v.pred)
        per[i]["verdicts"].append({"equal": v.equal, "status": v.status.value, "reason": v.reason})
        per[i]["format"].append(f > 0)
    n_samples = max((len(c) for c in completions), default=0)
    total = sum(len(p["verdicts"]) for p in per) or 1
    correct = sum(v["equal"] for p in per for v in p["verdicts"])
    no_answer = sum(v["status"] == VerdictStatus.NO_ANSWER.value for p in per for v in p["verdicts"])
    metrics: dict[str, Any] = {
        "problems": len(rows),
        "samples_per_problem": n_samples,
        "accuracy": correct / total,
        "format_rate": sum(f for p in per for f in p["format"]) / total,
        "no_answer_rate": no_answer / total,
        "wrong_rate": (total - correct - no_answer) / total,
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


def generate(
    model,
    tokenizer,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    num_samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """Sample ``num_samples`` completions per prompt with HF generate (greedy at temperature 0)."""
    import torch

    from .preflight import render_prompt

    texts = [render_prompt(tokenizer, p) for p in prompts]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    out: list[list[str]] = [[] for _ in texts]
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        jobs = [(i, s) for i in range(len(texts)) for s in range(num_samples)]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            enc = tokenizer([texts[i] for i, _ in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen_kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                ids = model.generate(**enc, **gen_kwargs)
            new = ids[:, enc["input_ids"].shape[1] :]
            for (i, _), seq in zip(chunk, new):
                out[i].append(tokenizer.decode(seq, skip_special_tokens=True))
            if progress:
                progress(min(start + batch_size, len(jobs)), len(jobs))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def evaluate_model(model, tokenizer, dataset, verifier, *, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 16, ks=(1,), progress=None) -> EvalResult:
    rows = [dict(r) for r in dataset]
    comps = generate(
        model, tokenizer, [r["prompt"] for r in rows], max_new_tokens=max_new_tokens, temperature=temperature,
        num_samples=samples, seed=seed, batch_size=batch_size, progress=progress,
    )
    return score_completions(rows, comps, verifier, ks=ks)


