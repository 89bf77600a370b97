"""The run report: reward curves (PNG) and the before/after evaluation (markdown)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grpo_core.evaluation.plan import EvalPlan


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

    series = [("reward", "total (weighted)")] + [(f"rewards/{n}/mean", n) for n in names]
    series = [(k, label) for k, label in series if any(k in h for h in history)]
    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.0 * len(series)), sharex=True, squeeze=False)
    for ax, (key, label) in zip(axes[:, 0], series):
        pts = [(h["step"], h[key]) for h in history if key in h]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, lw=1, alpha=0.5)
        if len(ys) >= 5:  # moving average, window 5
            w = 5
            avg = [sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1]) for i in range(len(ys))]
            ax.plot(xs, avg, lw=2)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle("rewards per step (raw, and moving average)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(out_dir: Path, info: dict, history: list[dict], evals: EvalPlan | None) -> Path:
    out_dir = Path(out_dir)
    names = [r["name"] for r in info.get("rewards", [])]
    png = plot_rewards(history, names, out_dir / "rewards.png")
    lines = ["# grpo-core run report", "", f"- model: `{info.get('model')}` ({info.get('backend')} backend)"]
    lines.append(f"- dataset: `{info.get('dataset', {}).get('spec')}`, steps: {info.get('global_step')}, status: {info.get('status')}")
    rewards = ", ".join(f"{r['name']}×{r['weight']:g}" for r in info.get("rewards", []))
    lines.append(f"- rewards: {rewards}")
    if history:
        k = max(1, len(history) // 10)
        first, last = history[:k], history[-k:]
        mean = lambda rows, key: sum(r.get(key, 0.0) for r in rows) / len(rows)  # noqa: E731
        lines += ["", "## Reward, first vs last 10% of steps", "", "| reward | first 10% | last 10% |", "|---|---|---|"]
        for key, label in [("reward", "total")] + [(f"rewards/{n}/mean", n) for n in names]:
            lines.append(f"| {label} | {mean(first, key):.3f} | {mean(last, key):.3f} |")
    if png:
        lines += ["", f"![rewards]({png.name})"]
    if evals and evals.results:
        lines += ["", f"## Held-out evaluation ({evals.spec}, greedy)", "", "| | accuracy | format rate | no answer |", "|---|---|---|---|"]
        for stage, res in evals.results.items():
            m = res.metrics
            lines.append(f"| {stage} | {m['accuracy']:.1%} | {m['format_rate']:.1%} | {m['no_answer_rate']:.1%} |")
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
