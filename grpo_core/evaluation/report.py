"""The run report: reward curves (PNG) and the before/after evaluation (markdown)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from grpo_core.evaluation.plan import GAINS, STAGE_LABELS, EvalPlan, stage_gain
from grpo_core.rewards.engine import describe_failures


def plot_rewards(history: list[dict], names: list[str], path: Path) -> Path | None:
    if not history:
        return None
    try:
        import matplotlib  # deferred: heavy (matplotlib), only for the plot
    except ImportError:
        print("grpo-core: matplotlib is not installed; the report has no reward plot", file=sys.stderr)
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: heavy (matplotlib), only for the plot

    series = [("reward", "total (weighted)", None)] + [(f"rewards/{n}/mean", n, n) for n in names]
    series = [(k, label, n) for k, label, n in series if any(k in h for h in history) or (n and failure_steps(history, n))]
    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.0 * len(series)), sharex=True, squeeze=False)
    for ax, (key, label, name) in zip(axes[:, 0], series):
        pts = [(h["step"], h[key]) for h in history if key in h and _finite(h[key])]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, lw=1, alpha=0.5)
            if len(ys) >= 5:  # moving average, window 5
                w = 5
                avg = [sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1]) for i in range(len(ys))]
                ax.plot(xs, avg, lw=2)
        else:
            ax.text(0.5, 0.5, "no values: the reward failed on every sample", transform=ax.transAxes, ha="center", color="red", fontsize=8)
        bad = failure_steps(history, name) if name else []
        if bad:  # a red tick under each step where the reward raised, returned bad values or timed out
            ax.scatter(bad, [0.02] * len(bad), marker="x", color="red", transform=ax.get_xaxis_transform(), zorder=3,
                       label="errors or timeouts")
            ax.legend(fontsize=7, loc="upper left")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("rewards per step (raw, and moving average)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def failure_steps(history: list[dict], name: str) -> list[int]:
    """Logged steps at which reward ``name`` had errors or timeouts (the plot marks them)."""
    return [h["step"] for h in history if h.get(f"rewards/{name}/errors", 0) or h.get(f"rewards/{name}/timeouts", 0)]


def _mean_cell(rows: list[dict], key: str) -> str:
    """The mean of the finite values, or 'n/a' (never a plain 0.000 for a reward that gave no value)."""
    vals = [r[key] for r in rows if _finite(r.get(key))]
    return f"{sum(vals) / len(vals):.3f}" if vals else "n/a"


def reward_failure_lines(info: dict) -> list[str]:
    """The report's section on each reward's errors, timeouts and Nones (from run.json's reward_totals)."""
    totals = info.get("reward_totals") or {}
    if not totals:
        return []
    lines = ["", "## Reward errors, timeouts and Nones", "",
             "| reward | samples | raised | wrong length or type | NaN or non-number | timed out | disabled | None (all causes) | last error |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, st in totals.items():
        n = st.get("samples", 0)
        pct = lambda k: f"{st.get(k, 0)} ({st.get(k, 0) / n:.0%})" if n else str(st.get(k, 0))  # noqa: E731
        last = (st.get("last_error") or "").replace("|", "\\|").replace("\n", " ")[:120]
        lines.append(f"| {name} | {n} | {pct('raised')} | {pct('bad_length')} | {pct('bad_values')} | {pct('timeouts')} | "
                     f"{pct('disabled')} | {pct('nones')} | {last} |")
    failing = [name for name, st in totals.items() if st.get("samples") and _failed(st) >= st["samples"]]
    if failing:
        lines += ["", f"**{', '.join(failing)} failed on every sample**: {'its' if len(failing) == 1 else 'their'} curve carries no "
                  "signal. Reproduce with `grpo-core score --plugins NAME --dataset ...`."]
    return lines


def _failed(st: dict) -> int:
    return st.get("errors", 0) + st.get("timeouts", 0) + st.get("disabled", 0)


def write_report(out_dir: Path, info: dict, history: list[dict], evals: EvalPlan | None) -> Path:
    out_dir = Path(out_dir)
    names = [r["name"] for r in info.get("rewards", [])]
    png = plot_rewards(history, names, out_dir / "rewards.png")
    lines = ["# grpo-core run report", "", f"- model: `{info.get('model')}` ({info.get('backend')} backend)"]
    lines.append(f"- dataset: `{info.get('dataset', {}).get('spec')}`, steps: {info.get('global_step')}, status: {info.get('status')}")
    rewards = ", ".join(f"{r['name']}×{r['weight']:g}" for r in info.get("rewards", []))
    lines.append(f"- rewards: {rewards}")
    totals = info.get("reward_totals") or {}
    if history:
        k = max(1, len(history) // 10)
        first, last = history[:k], history[-k:]
        lines += ["", "## Reward, first vs last 10% of steps", "", "| reward | first 10% | last 10% |", "|---|---|---|"]
        for key, label in [("reward", "total")] + [(f"rewards/{n}/mean", n) for n in names]:
            st = totals.get(label) or {}
            if st.get("samples") and _failed(st):
                label += f" ⚠ failed on {_failed(st) / st['samples']:.0%} of samples ({describe_failures(st)})"
            lines.append(f"| {label} | {_mean_cell(first, key)} | {_mean_cell(last, key)} |")
    lines += reward_failure_lines(info)
    if png:
        lines += ["", f"![rewards]({png.name})"]
    if info.get("diagnosis"):
        lines += ["", "## Diagnosis", ""] + [f"- step {d['step']}: {d['message']}" for d in info["diagnosis"]]
    if info.get("probe"):
        p = info["probe"]
        lines += ["", "## Rollout probe (before GRPO)", "",
                  f"{p['prompts']} prompts x {p['num_generations']} completions: {p['tied_share']:.0%} of groups tie (threshold {p['max_tied']:.0%}), "
                  f"{p['cut_share']:.0%} cut at {p['max_completion_length']} tokens; "
                  + ", ".join(f"{k} mean {v['mean']:.3f}" if v["mean"] is not None else f"{k} None" for k, v in p["rewards"].items())]
    if evals and evals.results:
        lines += ["", f"## Held-out evaluation ({evals.spec}, greedy)", "",
                  "| | accuracy (strict) | accuracy (flexible) | format rate | no answer |", "|---|---|---|---|---|"]
        for stage, res in evals.results.items():
            m = res.metrics
            lines.append(f"| {STAGE_LABELS.get(stage, stage)} | {m['accuracy_strict']:.1%} | {m['accuracy_flexible']:.1%} | "
                         f"{m['format_rate']:.1%} | {m['no_answer_rate']:.1%} |")
        for name, label in (("sft", "SFT warm-up"), ("grpo", "GRPO's own gain (after SFT -> after GRPO)"), ("total", "whole run")):
            g = stage_gain(evals.results, *GAINS[name])
            if g and "accuracy_flexible" in g:
                lines.append(f"\n{label}: {g['accuracy_flexible'] * 100:+.1f} points flexible, {g['accuracy_strict'] * 100:+.1f} points strict")
        if "before" in evals.results and "after" in evals.results:
            lines += ["", "### Examples", ""]
            for i in range(min(3, len(evals.results["before"].problems))):
                b, a = evals.results["before"].problems[i], evals.results["after"].problems[i]
                lines += [
                    f"**{b['id']}** (gold {b['answer']})", "",
                    f"- before ({b['verdicts'][0]['status']}):", "", "```", b["completions"][0].strip(), "```",
                    f"- after ({a['verdicts'][0]['status']}):", "", "```", a["completions"][0].strip(), "```", "",
                ]
            with open(out_dir / "eval.jsonl", "w") as f:
                for stage, res in evals.results.items():
                    for p in res.problems:
                        f.write(json.dumps({"stage": stage, **p}) + "\n")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
