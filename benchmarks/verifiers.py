"""Benchmark: grpo-rewards-math verifiers vs Math-Verify, side by side in one run.

Inputs (built deterministically from the bundled data):

* GSM8K: the 1319 test golds, each with one model-style XML completion whose
  answer is written the way models write it (``$1,234.00``, ``\\boxed{1234}``,
  ``1234 dollars``, ``The answer is 1234``, ...), one in four of them wrong;
* MATH-500: the 500 golds, each with one completion in LaTeX written
  differently from the gold (``\\dfrac``, ``\\left/\\right``, ``$…$``, spaces,
  ``\\boxed{}``), one in four of them wrong.

Measured for each input set:

* ours: ``Verifier.check_batch`` in batches of 64 (throughput), and single
  ``Verifier.check`` calls (p50/p99 latency), each on a fresh verifier so the
  verdict cache starts empty; the worker pool is started before timing;
* Math-Verify: ``parse(gold)``, ``parse(completion)``, ``verify(gold, pred)``
  per item, as its README shows (default settings);
* the ``correctness`` reward on batches of 64 completions (median, p99 ms);
* agreement between the two on each item, with the disagreements listed.

Accuracy, on the labelled set ``benchmarks/data/verifier_cases.jsonl`` (built
by ``benchmarks/data/build_verifier_cases.py``; every case cites its source):

* ours: ``check(gold=, response=)`` (flexible mode) of the case's verifier for
  a whole response, ``verify(gold=, pred=)`` for an answer already extracted;
  the ``mcq`` verifier gets the row's ``choices``;
* Math-Verify, as its README recommends: ``parse("$" + gold + "$")`` and
  ``parse(response)`` with ``[LatexExtractionConfig(), ExprExtractionConfig()]``
  (``[StringExtractionConfig()]`` for multiple choice), then ``verify``;
* per category: accuracy, false positives (said equal, labelled unequal),
  false negatives, and the slowest call; every miss is listed in the JSON.

Run:  .venv/bin/python benchmarks/verifiers.py [--limit N] [--only accuracy|speed] [--out benchmarks/results/verifiers.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GSM8K_STYLES = [
    "{a}", "${a}", "\\${a}.00", "\\boxed{{{a}}}", "{a} dollars", "The answer is {a}.", "**{a}**", "$\\boxed{{{a}}}$",
    "{a}.00", "{a} units",
]
XML = "<reasoning>\nLet me work it out step by step. First compute the parts, then add them.\n</reasoning>\n<answer>\n{}\n</answer>"


def _thousands(a: str) -> str:
    try:
        n = int(a)
    except ValueError:
        return a
    return f"{n:,}"


def gsm8k_inputs(limit: int | None):
    from grpo_rewards_math.datasets import DATA, gsm8k_gold

    from grpo_core.kit.datasets import read_jsonl

    golds = [gsm8k_gold(r["answer"]) for r in read_jsonl(DATA / "gsm8k" / "test.jsonl")][:limit]
    comps = []
    for i, g in enumerate(golds):
        a = g
        if i % 4 == 3:  # a wrong answer
            try:
                a = str(int(g) + 1 + i % 7)
            except ValueError:
                a = g + "1"
        if i % 3 == 1:
            a = _thousands(a)
        comps.append(XML.format(GSM8K_STYLES[i % len(GSM8K_STYLES)].format(a=a)))
    return golds, comps


def _restyle_latex(g: str, i: int) -> str:
    s = g
    if i % 5 == 0:
        s = s.replace("\\frac", "\\dfrac")
    if i % 5 == 1 and "(" in s and "\\left" not in s:
        s = s.replace("(", "\\left(").replace(")", "\\right)")
    if i % 5 == 2:
        s = s.replace(",", ", ").replace("+", " + ")
    if i % 5 == 3:
        s = s.replace("\\left", "").replace("\\right", "").replace(" ", "")
    return s


def math_inputs(limit: int | None):
    from grpo_rewards_math.datasets import DATA

    from grpo_core.kit.datasets import read_jsonl

    golds = [r["answer"] for r in read_jsonl(DATA / "math500" / "test.jsonl")][:limit]
    comps = []
    for i, g in enumerate(golds):
        a = _restyle_latex(g, i)
        if i % 4 == 3:  # a wrong answer
            a = a + "+1" if not any(c in a for c in ",=[]()\\{}") else "7"
        wrap = ["$\\boxed{{{}}}$", "\\boxed{{{}}}", "${}$"][i % 3]
        comps.append(XML.format(wrap.format(a)))
    return golds, comps


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return 0.0
    k = min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))
    return xs[k]


def latency_ms(lat: list[float]) -> dict:
    """p50, p99 and mean of per-item latencies (seconds), in milliseconds."""
    return {"p50_ms": 1000 * pct(lat, 50), "p99_ms": 1000 * pct(lat, 99), "mean_ms": 1000 * statistics.fmean(lat)}


def _clear_caches():
    """Empty the in-process normalisation caches so every pass starts cold."""
    from grpo_rewards_math import normalize as N

    N.parse_number.cache_clear()
    N.normalize_math.cache_clear()


def bench_ours(verifier_cls, golds, comps, batch=64, **kw):
    from grpo_core.runtime.deadline import get_pool

    get_pool().map(len, [("warm",)] * 2, timeout=120)  # start the workers outside the timing
    v = verifier_cls(**kw)
    # warm the worker's imports (sympy / Math-Verify) once, outside the timing
    v.verify_batch([("x^2", "x \\cdot x"), ("\\frac{1}{2}", "y=1")])
    v = verifier_cls(**kw)
    _clear_caches()
    t0 = time.perf_counter()
    verdicts = []
    for i in range(0, len(golds), batch):
        verdicts += v.check_batch(golds[i : i + batch], comps[i : i + batch])
    total = time.perf_counter() - t0
    single = verifier_cls(**kw)
    _clear_caches()
    lat = []
    for g, c in zip(golds, comps):
        t = time.perf_counter()
        single.check(gold=g, response=c)
        lat.append(time.perf_counter() - t)
    return verdicts, {
        "items": len(golds),
        "batch_seconds": total,
        "throughput_per_s": len(golds) / total,
        **latency_ms(lat),
        "statuses": {s: sum(1 for x in verdicts if x.status.value == s) for s in sorted({x.status.value for x in verdicts})},
    }


def bench_math_verify(golds, comps, gold_wrap):
    from math_verify import parse, verify

    parse("$1$"), verify(parse("$1$"), parse("$1$"))  # import/first-call cost outside timing
    lat, out = [], []
    for g, c in zip(golds, comps):
        t = time.perf_counter()
        gp = parse(gold_wrap.format(g))
        pp = parse(c)
        ok = bool(verify(gp, pp))
        lat.append(time.perf_counter() - t)
        out.append(ok)
    total = sum(lat)
    return out, {
        "items": len(golds),
        "total_seconds": total,
        "throughput_per_s": len(golds) / total,
        **latency_ms(lat),
        "matched": sum(out),
    }


def bench_reward(golds, comps, verifier_name, batch=64):
    import grpo_core
    from grpo_rewards_math.rewards import correctness

    v = grpo_core.get_verifier(verifier_name)
    v._cache.clear()
    _clear_caches()
    times = []
    for i in range(0, len(golds) - batch + 1, batch):
        t = time.perf_counter()
        correctness(comps[i : i + batch], answer=golds[i : i + batch], verifier=verifier_name)
        times.append(time.perf_counter() - t)
    return {"batches": len(times), "batch_size": batch, "median_ms": 1000 * statistics.median(times),
            "p99_ms": 1000 * pct(times, 99), "max_ms": 1000 * max(times)}


CASES = ROOT / "benchmarks" / "data" / "verifier_cases.jsonl"


def _ours_verdict(verifiers, case):
    v = verifiers[case["verifier"]]
    if case["kind"] == "answer":
        return v.verify(gold=case["gold"], pred=case["response"])
    if case.get("choices") is not None:
        return v.check(gold=case["gold"], response=case["response"], choices=case["choices"])
    return v.check(gold=case["gold"], response=case["response"])


def _math_verify_equal(case) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify

    gold = case["gold"]
    if case["verifier"] == "mcq":
        from grpo_rewards_math.choices import gold_letter

        gold = gold_letter(gold, case.get("choices")) or gold
        config = [StringExtractionConfig()]
        gold_parsed = parse(gold, extraction_config=config)
    else:
        config = [LatexExtractionConfig(), ExprExtractionConfig()]
        gold_parsed = parse(f"${gold}$", extraction_config=config)
    try:
        return bool(verify(gold_parsed, parse(case["response"], extraction_config=config)))
    except Exception:  # noqa: BLE001 - a library failure is "not equal"
        return False


def _tally(rows):
    n = len(rows)
    right = sum(r["said"] == r["equal"] for r in rows)
    return {"cases": n, "correct": right, "accuracy": right / n if n else 0.0,
            "false_positives": sum(r["said"] and not r["equal"] for r in rows),
            "false_negatives": sum(r["equal"] and not r["said"] for r in rows),
            "max_call_s": max((r["seconds"] for r in rows), default=0.0)}


def accuracy(limit: int | None) -> dict:
    """Ours and Math-Verify on the labelled cases, per category (see the module doc)."""
    from grpo_rewards_math.choices import McqVerifier
    from grpo_rewards_math.verifiers import AimeVerifier, Gsm8kVerifier, MathVerifier

    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()][:limit]
    verifiers = {"gsm8k": Gsm8kVerifier(), "math": MathVerifier(), "aime": AimeVerifier(), "mcq": McqVerifier()}
    verifiers["math"].verify_batch([("x^2", "x \\cdot x")])  # start the worker pool outside the timing
    _math_verify_equal({"verifier": "math", "gold": "1", "response": "$1$"})
    ours, theirs = [], []
    for case in cases:
        t = time.perf_counter()
        v = _ours_verdict(verifiers, case)
        ours.append({"id": case["id"], "category": case["category"], "equal": case["equal"], "said": v.equal,
                     "seconds": time.perf_counter() - t, "status": v.status.value, "pred": v.pred,
                     "extracted_by": v.extracted_by})
        t = time.perf_counter()
        said = _math_verify_equal(case)
        theirs.append({"id": case["id"], "category": case["category"], "equal": case["equal"], "said": said,
                       "seconds": time.perf_counter() - t})
    table = {}
    for cat in [*dict.fromkeys(c["category"] for c in cases), "all"]:
        pick = (lambda r: True) if cat == "all" else (lambda r, c=cat: r["category"] == c)
        table[cat] = {"ours": _tally([r for r in ours if pick(r)]), "math_verify": _tally([r for r in theirs if pick(r)])}
    print(f"\n{'category':16} {'cases':>5} {'unequal':>7} | {'ours':>6} {'FP':>3} {'FN':>3} {'max s':>6} | "
          f"{'Math-Verify':>11} {'FP':>3} {'FN':>3} {'max s':>6}")
    for cat, row in table.items():
        o, m = row["ours"], row["math_verify"]
        unequal = sum(1 for c in cases if (cat == "all" or c["category"] == cat) and not c["equal"])
        print(f"{cat:16} {o['cases']:5d} {unequal:7d} | {o['accuracy']:6.1%} {o['false_positives']:3d} "
              f"{o['false_negatives']:3d} {o['max_call_s']:6.2f} | {m['accuracy']:11.1%} {m['false_positives']:3d} "
              f"{m['false_negatives']:3d} {m['max_call_s']:6.2f}", flush=True)
    return {"cases_file": str(CASES.relative_to(ROOT)), "table": table,
            "ours_misses": [r for r in ours if r["said"] != r["equal"]],
            "math_verify_misses": [r["id"] for r in theirs if r["said"] != r["equal"]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="items per input set (default: all)")
    ap.add_argument("--only", choices=("accuracy", "speed"), default=None, help="run one half (default: both)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "verifiers.json"))
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)
    try:
        import torch  # noqa: F401  (not needed; keep thread use low if present)

        torch.set_num_threads(1)
    except Exception:
        pass
    from grpo_rewards_math.verifiers import Gsm8kVerifier, MathVerifier

    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": {},
    }
    for mod in ("math_verify", "sympy", "grpo_core", "grpo_rewards_math"):
        try:
            from importlib.metadata import version

            results["versions"][mod] = version(mod.replace("_", "-"))
        except Exception:
            pass

    results["date"] = time.strftime("%Y-%m-%d")
    speed_sets = (
        ("gsm8k", gsm8k_inputs, Gsm8kVerifier, "{}", "gsm8k"),
        ("math500", math_inputs, MathVerifier, "${}$", "math"),
    )
    for label, inputs, cls, gold_wrap, vname in speed_sets if args.only != "accuracy" else ():
        golds, comps = inputs(args.limit)
        ours_v, ours = bench_ours(cls, golds, comps)
        mv_v, mv = bench_math_verify(golds, comps, gold_wrap)
        reward = bench_reward(golds, comps, vname)
        disagree = [
            {"gold": g, "answer": v.pred, "ours": v.status.value, "math_verify": m}
            for g, v, m in zip(golds, ours_v, mv_v)
            if v.equal != m
        ]
        results[label] = {
            "ours": ours,
            "math_verify": mv,
            "throughput_ratio": ours["throughput_per_s"] / mv["throughput_per_s"],
            "p50_ratio": mv["p50_ms"] / max(ours["p50_ms"], 1e-9),
            "reward_batch_64": reward,
            "agreement": 1 - len(disagree) / len(golds),
            "disagreements": disagree,
        }
        print(
            f"{label:8} ours {ours['throughput_per_s']:9.1f}/s p50 {ours['p50_ms']:7.2f} ms p99 {ours['p99_ms']:8.2f} ms | "
            f"math-verify {mv['throughput_per_s']:8.1f}/s p50 {mv['p50_ms']:7.2f} ms p99 {mv['p99_ms']:8.2f} ms | "
            f"x{results[label]['throughput_ratio']:.1f} | reward(64) median {reward['median_ms']:.1f} ms p99 {reward['p99_ms']:.1f} ms | "
            f"agree {results[label]['agreement']:.3f} ({len(disagree)} differ)",
            flush=True,
        )
    if args.only != "speed":
        results["accuracy"] = accuracy(args.limit)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
