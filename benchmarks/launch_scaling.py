"""Throughput on 1 GPU against 2 through `grpo-core launch`, in one invocation, at the 3B throughput setting.

    python benchmarks/launch_scaling.py --layout a --out results/launch_scaling_a.json   # 2 ranks, colocated vLLM
    python benchmarks/launch_scaling.py --layout b --out results/launch_scaling_b.json   # 1 rank + the vLLM server

The model is a random-weight Qwen2.5-3B-shaped model (grpo_core.testing.modelgen), so nothing is downloaded;
each optimizer step takes 8 prompts x 8 completions of up to 512 tokens (64 completions: per rank 64 / ranks,
so both sides train on the same global batch), the rewards are the reference's, and the first `--warmup`
steps are left out of the mean. Writes one JSON object: each side's mean step time, completions per second,
and the speed-up of 2 GPUs over 1 (the goal is 1.7 or more). Needs 2 GPUs (nvidia-h200-x2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMPLETIONS = 64  # 8 prompts x 8 generations per optimizer step
SETTINGS = ["--backend", "trl", "--dataset", "gsm8k:train", "--plugins", "xml,soft_format,strict_format,int,correctness",
            "--num-generations", "8", "--max-completion-length", "512", "--eval-limit", "0", "--probe", "0",
            "--set", "max_prompt_length=null"]


def step_times(run_dir: Path, warmup: int) -> list[float]:
    logs = json.loads((run_dir / "log_history.json").read_text())
    times = [row["time/step_s"] for row in logs if "time/step_s" in row]
    return times[warmup:]


def side(name: str, argv: list[str], run_dir: Path, warmup: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    times = step_times(run_dir, warmup)
    mean = statistics.mean(times)
    return {"name": name, "command": argv, "steps_measured": len(times), "mean_step_s": round(mean, 4),
            "completions_per_s": round(COMPLETIONS / mean, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=["a", "b"], default="a")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--shape", default="qwen2.5-3b")
    ap.add_argument("--gpu-memory-utilization", default="0.3")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    from grpo_core.testing.modelgen import build_random_model

    work = Path(tempfile.mkdtemp(prefix="launch_scaling_"))
    model = str(build_random_model(work / "model", a.shape))
    run = [*SETTINGS, "--model", model, "--max-steps", str(a.steps), "--limit", str(8 * a.steps),
           "--gpu-memory-utilization", a.gpu_memory_utilization]
    one = side("1 GPU", [sys.executable, "-m", "grpo_core", "run", *run, "--per-device-train-batch-size", str(COMPLETIONS),
                         "--set", "use_vllm=true", "--output-dir", str(work / "one")], work / "one", a.warmup)
    if a.layout == "a":
        two_args = ["--gpus", "2", "--", *run, "--per-device-train-batch-size", str(COMPLETIONS // 2)]
    else:
        two_args = ["--gpus", "2", "--vllm-gpus", "1", "--", *run, "--per-device-train-batch-size", str(COMPLETIONS)]
    two = side(f"2 GPUs, layout ({a.layout})", [sys.executable, "-m", "grpo_core", "launch", *two_args, "--output-dir", str(work / "two")],
               work / "two", a.warmup)
    result = {"layout": a.layout, "shape": a.shape, "completions_per_step": COMPLETIONS, "max_completion_length": 512,
              "one_gpu": one, "two_gpus": two, "speedup": round(two["completions_per_s"] / one["completions_per_s"], 3), "goal": 1.7}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
