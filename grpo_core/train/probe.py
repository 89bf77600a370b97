"""The rollout probe: before GRPO trains, can the rewards teach this model anything?

GRPO learns only from groups whose completions score differently: a group whose rewards all
tie has zero advantage everywhere. A model that never writes the format the rewards look for
(every reward 0 on every completion) gives nothing but tied groups, and a run on it spends
every step on zero signal. The probe samples ``prompts`` x ``num_generations`` completions
with the model GRPO starts from (at the training temperature and ``max_completion_length``),
scores them through the reward engine, and reports:

* each reward's mean and the share of None (unscorable) values;
* the share of groups whose weighted rewards all tie;
* the completion-length distribution and the share cut at ``max_completion_length``;
* three example completions.

:func:`stop_message` turns a tied share above the threshold into the reason to stop, naming
the fixes; ``--force`` trains anyway.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from grpo_core.rewards.engine import RewardEngine
from grpo_core.kit.chat_templates import render_prompt

#: stop when more than this share of the probe's groups tie (1.0: only when every group ties)
DEFAULT_MAX_TIED = 0.9
#: prompts sampled by default for models other than the bundled tiny reasoner
DEFAULT_PROMPTS = 8
TIE_TOLERANCE = 1e-6


@dataclass
class ProbeResult:
    prompts: int
    num_generations: int
    max_completion_length: int
    rewards: dict[str, dict[str, float | None]]  # name -> {"mean", "none_share"}
    tied_share: float
    lengths: dict[str, float]  # min, median, mean, p90, max (tokens)
    cut_share: float  # completions that hit max_completion_length without ending
    examples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        out = [f"rollout probe: {self.prompts} prompts x {self.num_generations} completions, up to {self.max_completion_length} tokens "
               f"({self.seconds:.0f}s)"]
        for name, r in self.rewards.items():
            mean = "None" if r["mean"] is None else f"{r['mean']:.3f}"
            out.append(f"  {name}: mean {mean}, None {r['none_share']:.0%}")
        out.append(f"  groups whose rewards all tie (no learning signal): {self.tied_share:.0%}")
        ln = self.lengths
        out.append(f"  completion tokens: min {ln['min']:.0f}, median {ln['median']:.0f}, p90 {ln['p90']:.0f}, max {ln['max']:.0f}; "
                   f"cut at max_completion_length: {self.cut_share:.0%}")
        for i, ex in enumerate(self.examples, 1):
            text = ex["completion"].strip().replace("\n", "\\n")
            out.append(f"  example {i} (reward {ex['reward']:.2f}): {text[:240]}{'...' if len(text) > 240 else ''}")
        return out


def tied_groups(totals: list[float], group: int) -> list[bool]:
    """For each consecutive group of ``group`` weighted rewards: do they all tie?"""
    return [max(g) - min(g) <= TIE_TOLERANCE for g in (totals[i : i + group] for i in range(0, len(totals), group))]


def weighted_totals(values: dict[str, list], weights: dict[str, float]) -> list[float]:
    """Each completion's weighted reward, a None counting as 0 (as TRL's nansum does)."""
    n = len(next(iter(values.values()))) if values else 0
    return [sum(weights[k] * (v[i] or 0.0) for k, v in values.items()) for i in range(n)]


def _percentile(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(round(q * (len(s) - 1))))])


def summarize(completions: list[str], token_counts: list[int], cut: list[bool], values: dict[str, list], weights: dict[str, float],
              *, num_generations: int, max_completion_length: int, seconds: float = 0.0) -> ProbeResult:
    """The probe's numbers from scored completions (``num_generations`` consecutive ones per prompt)."""
    totals = weighted_totals(values, weights)
    ties = tied_groups(totals, num_generations)
    rewards = {}
    for name, vals in values.items():
        seen = [v for v in vals if v is not None]
        rewards[name] = {"mean": sum(seen) / len(seen) if seen else None, "none_share": 1 - len(seen) / max(1, len(vals))}
    lengths = {"min": float(min(token_counts)), "median": float(statistics.median(token_counts)), "mean": round(statistics.mean(token_counts), 1),
               "p90": _percentile(token_counts, 0.9), "max": float(max(token_counts))}
    # three examples: the best, a middling and the worst completion, so a reader sees the spread
    order = sorted(range(len(totals)), key=lambda i: totals[i], reverse=True)
    picks = list(dict.fromkeys([order[0], order[len(order) // 2], order[-1]]))
    examples = [{"completion": completions[i], "reward": totals[i], "tokens": token_counts[i]} for i in picks]
    return ProbeResult(len(ties), num_generations, max_completion_length, rewards, sum(ties) / max(1, len(ties)), lengths,
                       sum(cut) / max(1, len(cut)), examples, round(seconds, 1))


def sample(model, tokenizer, prompts: list, *, num_generations: int, max_new_tokens: int, temperature: float, seed: int,
           batch_prompts: int = 4) -> tuple[list[str], list[int], list[bool]]:
    """``num_generations`` sampled completions per prompt (consecutive), their token counts, and whether each was cut."""
    import torch  # deferred: heavy (torch); the runner imports this module before the model loads

    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    eos = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
    eos.discard(None)
    device = next(model.parameters()).device
    texts = [render_prompt(tokenizer, p) for p in prompts]
    completions, counts, cut = [], [], []
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        for start in range(0, len(texts), batch_prompts):
            enc = tokenizer(texts[start : start + batch_prompts], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0, max_new_tokens=max_new_tokens,
                                     num_return_sequences=num_generations, pad_token_id=tokenizer.pad_token_id, eos_token_id=sorted(eos))
            for seq in out[:, enc["input_ids"].shape[1] :].tolist():
                end = next((i for i, t in enumerate(seq) if t in eos), None)
                kept = seq if end is None else seq[:end]
                completions.append(tokenizer.decode(kept, skip_special_tokens=True))
                counts.append(len(kept) + (end is not None))
                cut.append(end is None and len(seq) >= max_new_tokens)
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return completions, counts, cut


def run_probe(model, tokenizer, dataset, engine: RewardEngine, *, prompts: int, num_generations: int, max_completion_length: int,
              temperature: float = 1.0, seed: int = 0) -> ProbeResult:
    """Sample, score through the reward engine, summarize."""

    t0 = time.monotonic()
    rows = dataset.shuffle(seed=seed).select(range(min(prompts, len(dataset))))
    completions, counts, cut = sample(model, tokenizer, rows["prompt"], num_generations=num_generations, max_new_tokens=max_completion_length,
                                      temperature=temperature, seed=seed)
    columns = {c: [v for v in rows[c] for _ in range(num_generations)] for c in rows.column_names if c != "prompt"}
    repeated_prompts = [p for p in rows["prompt"] for _ in range(num_generations)]
    chat = isinstance(rows[0]["prompt"], list)
    scored = [[{"role": "assistant", "content": c}] for c in completions] if chat else completions
    result = engine.score(scored, prompts=repeated_prompts, **columns)
    engine.reset_stats()  # the probe's calls are not training metrics
    weights = {r.name: r.weight for r in engine.rewards}
    return summarize(completions, counts, cut, result.values, weights, num_generations=num_generations,
                     max_completion_length=max_completion_length, seconds=time.monotonic() - t0)


def stop_message(result: ProbeResult, max_tied: float, *, sft_done: bool) -> str | None:
    """Why training should not start (None: there is signal enough). Names the fixes."""
    if result.tied_share <= max_tied:
        return None
    zero = all(r["mean"] in (0.0, None) for r in result.rewards.values())
    what = "every reward is 0 or None on every completion" if zero else "the completions of a prompt all score the same"
    fixes = [
        ("warm up on the dataset's solutions first: --sft-warmup-steps 100 (the model learns the answer format)" if not sft_done
         else "a longer SFT warm-up (--sft-warmup-steps): after this one the model still does not produce what the rewards look for"),
        f"a longer --max-completion-length ({result.cut_share:.0%} of completions were cut at {result.max_completion_length} tokens)"
        if result.cut_share > 0.2 else "a longer --max-completion-length, if answers need more room",
        "flexible correctness: a reward that finds the answer in free text, not only in the <answer> slot "
        "(correctness_flexible, from grpo-rewards-math: --plugins ...,correctness_flexible)",
        "a system prompt this model follows (--system-prompt), e.g. one that shows the format with an example",
    ]
    return (f"the rollout probe found no learning signal: {result.tied_share:.0%} of {result.prompts} prompt groups tie "
            f"(threshold {max_tied:.0%}); {what}. GRPO would train on nothing. Try:\n"
            + "\n".join(f"  - {f}" for f in fixes)
            + "\nor pass --force to train anyway (--probe 0 skips the probe).")


def resolve_prompts(probe: int | None, bundled: bool) -> int:
    """``--probe`` as given, else on (``DEFAULT_PROMPTS``) for every model but the bundled tiny reasoner."""
    if probe is not None:
        return max(0, int(probe))
    return 0 if bundled else DEFAULT_PROMPTS


def echo_lines(result: ProbeResult, echo: Callable[[str], None]) -> None:
    for ln in result.lines():
        echo("  " + ln)
