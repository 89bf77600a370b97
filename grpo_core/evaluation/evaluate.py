"""``grpo-core eval``: evaluate a model or a trained run with the same verifier that rewarded it.

Loads the data and the model(s) into an engine (:mod:`~grpo_core.evaluation.engines`), scores the
completions (:mod:`~grpo_core.evaluation.metrics`), writes the per-problem JSONL and a summary, and
prints the table (and, with ``--compare-base``, base and adapter side by side).
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from grpo_core.errors import ConfigError
from grpo_core.evaluation.engines import HFEngine, VLLMEngine, choose_engine
from grpo_core.evaluation.metrics import EvalResult, default_ks, score_completions
from grpo_core.kit.datasets import check_dataset_options, parse_dataset_spec
from grpo_core.plugins.lookup import get_dataset, get_verifier
from grpo_core.run_folder import resolve_trained, tokenizer_source
from grpo_core.runtime.gguf_model import converted_if_gguf
from grpo_core.runtime.hardware import resolve_model


@dataclass
class EvalRequest:
    dataset: str
    model: str | None = None
    adapter: str | None = None
    verifier: str | None = None
    samples: int = 1
    temperature: float | None = None
    limit: int | None = None
    out: str | None = None
    compare_base: bool = False
    max_new_tokens: int = 512
    engine: str = "auto"
    seed: int = 0
    chat_template: str | None = None
    system_prompt: str | None = None
    ks: Sequence[int] | None = None
    gpu_memory_utilization: float = 0.85
    dataset_options: dict[str, Any] = field(default_factory=dict)


def run_eval(req: EvalRequest, *, echo: Callable[[str], None] = print, engine_obj=None) -> dict:
    """Load the data and the model(s), generate, score with the verifier, write the JSONL; return the summary.

    ``engine_obj`` lets tests (and callers that already hold a model) pass a ready engine.
    """
    if req.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {req.samples}.")
    temperature = req.temperature if req.temperature is not None else (0.0 if req.samples == 1 else 1.0)
    if req.samples > 1 and temperature == 0:
        raise ConfigError("--samples > 1 with --temperature 0 gives K identical greedy samples; pass --temperature > 0 (e.g. 1.0).")
    trained = resolve_trained(req.adapter, base=converted_if_gguf(req.model, echo)) if req.adapter else None
    if trained is None and not req.model:
        raise ConfigError("pass --model (a hub id or folder), --adapter (a run or adapter folder), or both.")
    if req.compare_base and trained is None:
        raise ConfigError("--compare-base needs --adapter: it compares the base model with the trained one.")
    base = trained.base if trained else req.model
    if trained is None:
        base = resolve_model(req.model, echo, check_hub=engine_obj is None)  # an injected engine loads nothing

    name, split = parse_dataset_spec(req.dataset)
    adapter = get_dataset(name)
    split = split or getattr(adapter, "default_eval_split", None) or ("test" if "test" in adapter.splits else adapter.splits[0])
    system_prompt = req.system_prompt if req.system_prompt is not None else (trained.system_prompt if trained else None)
    options = req.dataset_options or _run_dataset_options(trained, name)
    if options and not req.dataset_options:
        echo("dataset options from the run: " + ", ".join(f"{k}={v}" for k, v in options.items()) + " (--dataset-option overrides)")
    check_dataset_options(adapter, options)
    ds = adapter.load(split, system_prompt=system_prompt, limit=req.limit, verbose=False, **options)
    if len(ds) == 0:
        raise ConfigError(f"dataset {name}:{split} loaded no rows.")
    verifier_name = req.verifier or adapter.verifier
    verifier = get_verifier(verifier_name)
    rows = [dict(r) for r in ds]
    ks = list(req.ks) if req.ks else default_ks(req.samples)

    if engine_obj is None:
        kind, why = choose_engine(req.engine)
        echo(f"engine: {kind} ({why})")
        adapter_dir = str(trained.adapter_dir) if trained else None
        tok = tokenizer_source(trained, base)
        full = bool(trained and not trained.is_lora)
        if kind == "vllm":
            engine_obj = VLLMEngine(base, adapter_dir, tokenizer_path=tok, chat_template=req.chat_template,
                                    lora_rank=trained.lora_rank if trained else None, full_model=full, seed=req.seed,
                                    gpu_memory_utilization=req.gpu_memory_utilization)
        else:
            engine_obj = HFEngine(base, adapter_dir, tokenizer_path=tok, chat_template=req.chat_template, full_model=full)
    echo(f"evaluating {name}:{split}: {len(rows)} problems x {req.samples} sample(s), temperature {temperature:g}, "
         f"verifier {verifier_name!r}, seed {req.seed}")

    stages = (["base"] if req.compare_base else []) + (["adapter"] if trained else ["base"])
    results: dict[str, EvalResult] = {}
    for stage in stages:
        comps = engine_obj.generate([r["prompt"] for r in rows], use_adapter=stage == "adapter", samples=req.samples,
                                    temperature=temperature, max_new_tokens=req.max_new_tokens, seed=req.seed, desc=stage)
        results[stage] = score_completions(rows, comps, verifier, ks=ks)

    out_path = Path(req.out) if req.out else unused_default_path(Path(f"eval-{name}-{split}.jsonl"), echo)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        for stage, res in results.items():
            for row, p in zip(rows, res.problems):
                f.write(json.dumps(problem_record(stage, row, p), ensure_ascii=False) + "\n")
    summary = {
        "dataset": f"{name}:{split}",
        "verifier": verifier_name,
        "engine": engine_obj.name,
        "base_model": base,
        "adapter": str(trained.adapter_dir) if trained else None,
        "samples": req.samples,
        "temperature": temperature,
        "seed": req.seed,
        "max_new_tokens": req.max_new_tokens,
        "out": str(out_path),
        "results": {stage: res.metrics for stage, res in results.items()},
    }
    if "base" in results and "adapter" in results:
        summary["delta"] = {k: results["adapter"].metrics[k] - results["base"].metrics[k]
                            for k in results["adapter"].metrics if _is_rate(k, results["adapter"].metrics[k])}
    summary_path = out_path.with_name(out_path.stem + ".summary.json")
    summary_path.write_text(json.dumps(summary, indent=2))
    echo(format_summary(summary))
    if "base" in results and "adapter" in results:
        echo(side_by_side(rows, results["base"], results["adapter"]))
    echo(f"per-problem results: {out_path} (summary: {summary_path})")
    return summary


def problem_record(stage: str, row: dict, p: dict) -> dict:
    """One JSONL line: the same keys whichever engine generated the completions."""
    rec = {
        "model": stage,
        "id": p["id"],
        "prompt": row["prompt"],
        "answer": p["answer"],
        "completions": p["completions"],
        "extracted": p["extracted"],
        "verdicts": p["verdicts"],
        "format": p["format"],
        "correct": p["correct"],
        "flexible": p["flexible"],
        "correct_flexible": p["correct_flexible"],
    }
    if "majority" in p:
        rec["majority"] = p["majority"]
    return rec


def _is_rate(key: str, value: Any) -> bool:
    return isinstance(value, float) and (key.endswith("_rate") or key.startswith(("accuracy", "pass@", "maj@")))


_ROWS = [("accuracy_strict", "accuracy, strict"), ("accuracy_flexible", "accuracy, flexible"), ("format_rate", "format reward rate"),
         ("no_answer_rate", "no answer (strict)"), ("wrong_rate", "wrong (strict)")]


def format_summary(summary: dict) -> str:
    res = summary["results"]
    stages = list(res)
    keys = list(_ROWS)
    first = res[stages[0]]
    keys += [(k, k) for k in first if k.startswith(("pass@", "maj@")) and k != "pass@1"]
    head = f"{'':<22}" + "".join(f"{s:>12}" for s in stages) + (f"{'delta':>12}" if len(stages) == 2 else "")
    lines = [f"{summary['dataset']} ({first['problems']} problems, {summary['samples']} sample(s) each, engine {summary['engine']})", head]
    for k, label in keys:
        vals = [res[s].get(k) for s in stages]
        line = f"{label:<22}" + "".join(f"{v:>12.1%}" if isinstance(v, float) else f"{'-':>12}" for v in vals)
        if len(stages) == 2 and all(isinstance(v, float) for v in vals):
            line += f"{vals[1] - vals[0]:>+12.1%}"
        lines.append(line)
    return "\n".join(lines)


def side_by_side(rows: list[dict], base: EvalResult, adapted: EvalResult, n: int = 3, width: int = 50) -> str:
    """The first ``n`` problems, base and adapter completions in two columns (as the reference notebooks show before/after)."""
    out = []
    for row, b, a in list(zip(rows, base.problems, adapted.problems))[:n]:
        out.append(f"\n--- {row['id']} (gold {row['answer']}) " + "-" * max(0, 2 * width - len(str(row['id'])) - 16))
        cols = []
        for label, p in (("base", b), ("adapter", a)):
            v = p["verdicts"][0]
            text = f"[{label}: {v['status']}, answer {p['extracted'][0]!r}]\n" + p["completions"][0].strip()
            wrapped = []
            for para in text.splitlines() or [""]:
                wrapped += textwrap.wrap(para, width) or [""]
            cols.append(wrapped[:14] + (["..."] if len(wrapped) > 14 else []))
        for i in range(max(len(c) for c in cols)):
            left = cols[0][i] if i < len(cols[0]) else ""
            right = cols[1][i] if i < len(cols[1]) else ""
            out.append(f"{left:<{width}} | {right}")
    return "\n".join(out)


def unused_default_path(path: Path, echo: Callable[[str], None]) -> Path:
    """The default output file, or the first free numbered one (``eval-x-test-2.jsonl``) when it is taken:
    an earlier evaluation's results are never overwritten unless ``--out`` names the file."""
    candidate, n = path, 1
    while candidate.exists() or candidate.with_name(candidate.stem + ".summary.json").exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    if candidate != path:
        echo(f"{path} exists (an earlier evaluation); writing {candidate} instead. Name the file with --out to replace it.")
    return candidate


def _run_dataset_options(trained, name: str) -> dict[str, Any]:
    """The options a run gave the dataset it trained on, when ``name`` is that dataset: a file's column names
    (``question=q``) hold for its held-out file too. The file itself (``path``) is the training file, not inherited."""
    if trained is None:
        return {}
    config = trained.run.get("config") or {}
    trained_on = parse_dataset_spec(config["dataset"])[0] if config.get("dataset") else None
    if trained_on != name:
        return {}
    return {k: v for k, v in (config.get("dataset_options") or {}).items() if k != "path"}
