"""How fast grpo-rewards-code runs programs, against a naive ``subprocess.run``.

Workloads: ``trivial`` (a one-line function, one test) and ``mbpp`` (the first
N MBPP test problems: the reference solution against its three or more tests).
Methods, interleaved in one process on the same programs:

* ``naive_serial``: ``subprocess.run([python, "-c", program + tests])``, one at a
  time: no isolation, no limits, the trainer's environment;
* ``naive_pool``: the same from a thread pool as wide as the sandbox's;
* ``sandbox_serial`` / ``sandbox_pool[LAYER]``: :func:`grpo_rewards_code.sandbox.execute_many`
  with one worker / its default (twice the cores), per isolation layer that works here.

Then the reward stage at 64 completions per step: ``code_tests`` through the
RewardEngine on 64 MBPP replies (the reference solutions), and its share of a
measured GRPO step of 64 completions (Qwen2.5-0.5B, 8 prompts x 8 x 512, trl +
vLLM on an H200: benchmarks/results/grpo_step-qwen2.5-0.5b-8x8x512-h200.json).

    .venv/bin/python benchmarks/code_sandbox.py [--n 64] [--reps 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEP_RESULTS = HERE / "results" / "grpo_step-qwen2.5-0.5b-8x8x512-h200.json"


def workloads(n: int) -> dict[str, list[tuple[str, list[str]]]]:
    from grpo_rewards_code.codeblocks import last_python_block
    from grpo_rewards_code.datasets import MbppAdapter
    from grpo_rewards_code.testspec import parse_tests

    rows = list(MbppAdapter().rows("test"))[:n]
    mbpp = [(last_python_block(r["solution"]), parse_tests(r["answer"]).snippets()) for r in rows]
    trivial = [("def f(x):\n    return x + 1", ["assert f(1) == 2"])] * n
    return {"trivial": trivial, "mbpp": mbpp}


def naive_one(job: tuple[str, list[str]]) -> bool:
    program, tests = job
    try:
        out = subprocess.run([sys.executable, "-c", program + "\n" + "\n".join(tests)], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0


def methods(layers: list[str], workers: int):
    from grpo_rewards_code import sandbox

    def naive_serial(jobs):
        return sum(naive_one(j) for j in jobs)

    def naive_pool(jobs):
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return sum(ex.map(naive_one, jobs))

    def sandboxed(layer: str, width: int):
        def run(jobs):
            sandbox._chosen = layer
            runs = sandbox.execute_many(jobs, workers=width)
            return sum(ex is not None and ex.program_ok and ex.passed == len(ex.tests) for ex in runs)

        return run

    out = {"naive_serial": naive_serial, "naive_pool": naive_pool, f"sandbox_serial[{layers[0]}]": sandboxed(layers[0], 1)}
    for layer in layers:
        out[f"sandbox_pool[{layer}]"] = sandboxed(layer, workers)
    return out


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far: what the programs and
    their launchers cost, whatever else the machine is doing."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def throughput(n: int, reps: int, layers: list[str]) -> list[dict]:
    from grpo_rewards_code.sandbox import default_workers

    workers = default_workers()
    rows = []
    for wname, jobs in workloads(n).items():
        timings: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        passed: dict[str, int] = {}
        for _ in range(reps):  # interleaved: a busy moment hits every method alike
            for mname, fn in methods(layers, workers).items():
                c0, t0 = _children_cpu(), time.perf_counter()
                passed[mname] = fn(jobs)
                timings.setdefault(mname, []).append(time.perf_counter() - t0)
                cpu.setdefault(mname, []).append(_children_cpu() - c0)
        for mname, ts in timings.items():
            med = statistics.median(ts)
            rows.append({"workload": wname, "method": mname, "n": len(jobs), "median_s": med, "execs_per_s": len(jobs) / med,
                         "cpu_ms_per_exec": 1000 * statistics.median(cpu[mname]) / len(jobs),
                         "passed": passed[mname], "workers": 1 if "serial" in mname else workers})
    base = {r["workload"]: r["execs_per_s"] for r in rows if r["method"] == "naive_serial"}
    for r in rows:
        r["vs_naive_serial"] = r["execs_per_s"] / base[r["workload"]]
    return rows


def reward_stage(layer: str, reps: int) -> dict:
    from grpo_core.rewards.engine import RewardEngine
    from grpo_rewards_code import sandbox
    from grpo_rewards_code.datasets import MbppAdapter

    sandbox._chosen = layer
    rows = list(MbppAdapter().rows("test"))[:64]
    engine = RewardEngine.from_selection("code_tests,code_format")
    comps = [[{"role": "assistant", "content": r["solution"]}] for r in rows]
    times, means = [], []
    for _ in range(reps):
        res = engine.score(comps, answer=[r["answer"] for r in rows])
        times.append(res.seconds)
        vals = [v for v in res.values["code_tests"] if v is not None]
        means.append(sum(vals) / len(vals))
    engine.close()
    reward_s = statistics.median(times)
    out = {"layer": layer, "completions": 64, "reward_s": reward_s, "code_tests_mean": statistics.mean(means)}
    if STEP_RESULTS.exists():
        step = next(r for r in json.loads(STEP_RESULTS.read_text())["results"] if not r.get("failed"))
        gpu_step = step["mean_step_s"] - step["reward_s"]  # the step without its own (trivial) rewards
        out.update(reference_step=f"{STEP_RESULTS.name}: {step['path']}", reference_step_s_without_rewards=gpu_step,
                   share_of_step=reward_s / (gpu_step + reward_s))
    return out


def main() -> None:
    from grpo_rewards_code import sandbox

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="programs per workload")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--layers", default="", help="comma-separated isolation layers (default: every one that works here)")
    ap.add_argument("--out", default=str(HERE / "results" / "code_sandbox.json"))
    a = ap.parse_args()
    layers = [x for x in a.layers.split(",") if x] or [x for x in sandbox.ISOLATIONS if sandbox._probe(x) is None]
    load_before = os.getloadavg()
    rows = throughput(a.n, a.reps, layers)
    stage = reward_stage(layers[0], a.reps)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core CPU, no GPU ({platform.machine()}, {platform.python_version()})",
        "euid": os.geteuid(),
        "layers": layers,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "throughput": rows,
        "reward_stage": stage,
    }
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| workload | method | executions/s | × naive serial | CPU ms per execution | passed |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workload']} | {r['method']} | {r['execs_per_s']:.1f} | {r['vs_naive_serial']:.2f} | "
              f"{r['cpu_ms_per_exec']:.1f} | {r['passed']}/{r['n']} |")
    print(json.dumps(stage, indent=2))


if __name__ == "__main__":
    main()
