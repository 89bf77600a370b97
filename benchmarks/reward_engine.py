"""The reward engine's own overhead, measured against calling the same rewards directly.

Baseline: the reward functions called one after another, as TRL calls them.
Engine: the same functions through grpo-core's per-reward TRL wrappers
(grpo_core.train.trl_glue), which score every reward through the RewardEngine.
Both run interleaved in one process on the same batches; the report is the
ratio and the added milliseconds per batch.

    python benchmarks/reward_engine.py [--batch 64] [--reps 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def batch(n: int):
    from grpo_core.kit.prompts import format_xml

    comps, answers = [], []
    for i in range(n):
        gold = str(17 * i + 3)
        text = format_xml(f"Some working for problem {i}.", gold if i % 3 else gold + "1")
        if i % 5 == 0:
            text = text.replace("<answer>", "")  # some malformed replies
        comps.append([{"role": "assistant", "content": text}])
        answers.append(gold)
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(n)]
    return prompts, comps, answers


def measure(selection: str, n: int, reps: int) -> dict:
    from grpo_core.rewards.engine import RewardEngine
    from grpo_core.train.trl_glue import EngineRewardFuncs

    engine = RewardEngine.from_selection(selection)
    wrappers = EngineRewardFuncs(engine).funcs()
    direct = [r.spec.func for r in engine.rewards]
    prompts, comps, answers = batch(n)
    kwargs = {"answer": answers, "verifier": ["gsm8k"] * n}

    def run_direct():
        for f in direct:
            f(prompts=prompts, completions=comps, **kwargs)

    def run_engine():
        c = list(comps)  # a new batch object each time, as TRL makes
        for f in wrappers:
            f(prompts=prompts, completions=c, **kwargs)

    for _ in range(5):
        run_direct(), run_engine()
    td, te = [], []
    for _ in range(reps):
        t0 = time.perf_counter(); run_direct(); td.append(time.perf_counter() - t0)  # noqa: E702
        t0 = time.perf_counter(); run_engine(); te.append(time.perf_counter() - t0)  # noqa: E702
    engine.close()
    d, e = statistics.median(td), statistics.median(te)
    return {"selection": selection, "batch": n, "reps": reps, "direct_ms": d * 1e3, "engine_ms": e * 1e3,
            "ratio": e / d, "added_ms": (e - d) * 1e3, "cpu_bound": [r.name for r in engine.rewards if r.spec.cpu_bound]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    rows = [measure("xml,soft_format,strict_format", a.batch, a.reps)]
    try:
        rows.append(measure("xml,soft_format,strict_format,int,correctness", a.batch, max(20, a.reps // 4)))
    except Exception as exc:  # the math plugin may not be installed
        print(f"skipping the math rewards: {exc}")
    for r in rows:
        print(f"{r['selection']:45s} batch {r['batch']}: direct {r['direct_ms']:.2f} ms, engine {r['engine_ms']:.2f} ms "
              f"(x{r['ratio']:.2f}, +{r['added_ms']:.2f} ms){'  cpu_bound: ' + ','.join(r['cpu_bound']) if r['cpu_bound'] else ''}")
    out = HERE / "results" / "reward_engine.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
