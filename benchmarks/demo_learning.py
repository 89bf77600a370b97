"""The learning bar of the embedded default: does GRPO improve the bundled tiny reasoner?

Runs the ``tiny-cpu`` preset (what ``grpo-core run`` does with no model) once
per seed through the real runner, offline on the CPU, and reports:

* held-out greedy accuracy before and after, per seed, with mean and spread;
* the mean total reward, and the format part of it, over the first and the
  last 10% of steps;
* wall time per run and per step.

Goal (issue 5): accuracy rises by >= 10 points on average over the seeds and
the format reward reaches >= 90% of its maximum (1.5) over the last 10% of steps.

    python benchmarks/demo_learning.py                    # seeds 0,1,2, the preset's 100 steps
    python benchmarks/demo_learning.py --seeds 0 --max-steps 20 --eval-limit 200
    python benchmarks/demo_learning.py --set steps_per_generation=4 --json benchmarks/results/demo_learning-spg4.json

Writes benchmarks/results/demo_learning.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FORMAT_REWARDS = ("xml", "soft_format", "strict_format")


def window_means(history: list[dict], frac: float = 0.1) -> dict:
    """Mean total and format reward over the first and last ``frac`` of logged steps."""
    rows = [h for h in history if "reward" in h]
    if not rows:
        return {}
    k = max(1, round(len(rows) * frac))

    def fmt(h):
        return sum(h.get(f"rewards/{n}/mean", 0.0) for n in FORMAT_REWARDS)

    def mean(xs):
        return sum(xs) / len(xs)

    return {
        "steps_logged": len(rows),
        "reward_first": mean([h["reward"] for h in rows[:k]]),
        "reward_last": mean([h["reward"] for h in rows[-k:]]),
        "format_first": mean([fmt(h) for h in rows[:k]]),
        "format_last": mean([fmt(h) for h in rows[-k:]]),
    }


def run_seed(seed: int, out_root: Path, max_steps: int | None, eval_limit: int | None, threads: int | None, sets: list[str] | None = None) -> dict:
    from grpo_core.config.settings import build_config
    from grpo_core.train.runner import run

    flags = {"seed": seed, "output_dir": str(out_root / f"seed{seed}"), "report": False}
    if eval_limit is not None:
        flags["eval_limit"] = eval_limit
    if threads is not None:
        flags["threads"] = threads
    if max_steps is not None:
        flags["max_steps"] = max_steps
    cfg = build_config(preset="tiny-cpu", flags=flags, sets=sets)
    t0 = time.monotonic()
    info = run(cfg, echo=lambda s: print(f"  [seed {seed}] {s}", flush=True))
    wall = time.monotonic() - t0
    history = json.loads((Path(cfg.output_dir) / "log_history.json").read_text())
    ev = info.get("evaluation", {})
    steps = info.get("global_step") or cfg.grpo.get("max_steps")
    train_rt = next((h["train_runtime"] for h in history if "train_runtime" in h), None)
    return {
        "seed": seed,
        "steps": steps,
        "before": ev.get("before", {}).get("accuracy"),
        "after": ev.get("after", {}).get("accuracy"),
        "delta": ev.get("accuracy_delta"),
        "format_rate_after": ev.get("after", {}).get("format_rate"),
        "wall_s": round(wall, 1),
        "train_runtime_s": train_rt,
        "s_per_step": round(train_rt / steps, 2) if train_rt and steps else None,
        **window_means(history),
    }


def summarize(runs: list[dict]) -> dict:
    def stats(key):
        xs = [r[key] for r in runs if r.get(key) is not None]
        if not xs:
            return None
        return {"mean": statistics.mean(xs), "min": min(xs), "max": max(xs), "stdev": statistics.stdev(xs) if len(xs) > 1 else 0.0}

    from grpo_core.config.tiny_recipe import MAX_FORMAT_REWARD

    s = {k: stats(k) for k in ("before", "after", "delta", "reward_first", "reward_last", "format_last", "wall_s", "s_per_step")}
    fl = s["format_last"]["mean"] if s["format_last"] else 0.0
    s["format_last_frac_of_max"] = fl / MAX_FORMAT_REWARD
    s["goal_delta_10pts"] = bool(s["delta"] and s["delta"]["mean"] >= 0.10)
    s["goal_format_90pct"] = s["format_last_frac_of_max"] >= 0.90
    return s


def markdown(runs: list[dict], summary: dict) -> str:
    lines = [
        "| seed | steps | held-out before | after | Δ (pts) | reward first 10% → last 10% | format last 10% | wall (s) | s/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['seed']} | {r['steps']} | {r['before']:.1%} | {r['after']:.1%} | {100 * r['delta']:+.1f} | "
            f"{r.get('reward_first', 0):.2f} → {r.get('reward_last', 0):.2f} | {r.get('format_last', 0):.3f} / 1.5 | {r['wall_s']:.0f} | {r['s_per_step']} |"
        )
    d = summary["delta"]
    lines.append("")
    lines.append(
        f"Mean Δ {100 * d['mean']:+.1f} points (min {100 * d['min']:+.1f}, max {100 * d['max']:+.1f}); "
        f"format reward over the last 10% of steps at {summary['format_last_frac_of_max']:.1%} of its maximum. "
        f"Goal (≥ +10 points mean, format ≥ 90%): {'met' if summary['goal_delta_10pts'] and summary['goal_format_90pct'] else 'NOT met'}."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-steps", type=int, default=None, help="override the preset's step budget")
    ap.add_argument("--eval-limit", type=int, default=None, help="held-out problems (default: the preset's 500)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--output-dir", default=None, help="where the runs go (default: a temporary folder)")
    ap.add_argument("--json", default=str(HERE / "results" / "demo_learning.json"))
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE", help="a setting on top of the preset, as in `grpo-core run --set`")
    args = ap.parse_args(argv)

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    tmp = None
    if args.output_dir:
        out_root = Path(args.output_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="demo_learning_")
        out_root = Path(tmp.name)
    runs = []
    for seed in seeds:
        print(f"seed {seed}: running the tiny-cpu preset", flush=True)
        runs.append(run_seed(seed, out_root, args.max_steps, args.eval_limit, args.threads, args.sets))
        r = runs[-1]
        print(f"seed {seed}: {r['before']:.1%} -> {r['after']:.1%} ({100 * r['delta']:+.1f} pts) in {r['wall_s']:.0f}s", flush=True)
    summary = summarize(runs)
    import platform

    import torch

    result = {
        "benchmark": "demo_learning",
        "preset": "tiny-cpu",
        "max_steps_override": args.max_steps,
        "eval_limit_override": args.eval_limit,
        "sets": args.sets,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "runs": runs,
        "summary": summary,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(markdown(runs, summary))
    print(f"\nwrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
