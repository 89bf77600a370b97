"""Evaluate a policy with the same verifier that rewarded it.

Generation is HF ``generate`` (CPU or GPU) or vLLM (GPU, the adapter as a LoRA
request); metrics are engine-neutral: pass@1 accuracy, unbiased pass@k, maj@k,
format rate, and "no answer found" counted apart from "wrong". The per-problem
records are the same JSON whichever engine produced the completions.
"""

from __future__ import annotations

import importlib.util
import json
import textwrap
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from grpo_core.errors import ConfigError
from grpo_core.kit.chat_templates import apply_template, render_prompt
from grpo_core.kit.datasets import parse_dataset_spec
from grpo_core.kit.extraction import completion_text
from grpo_core.kit.verdict import VerdictStatus
from grpo_core.kit.xmlformat import XmlReply
from grpo_core.plugins.lookup import get_dataset, get_verifier
from grpo_core.run_folder import resolve_trained, tokenizer_source
from grpo_core.runtime.hardware import cuda_available, resolve_model


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def default_ks(n: int) -> list[int]:
    """1, the powers of two up to ``n``, and ``n`` itself."""
    ks, k = {1, n}, 2
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(x for x in ks if x >= 1)


def majority_answer(preds: Sequence[str | None]) -> str | None:
    counts = Counter(p for p in preds if p is not None)
    if not counts:
        return None
    best = max(counts.values())
    for p in preds:  # first-seen among the most common, deterministic
        if p is not None and counts[p] == best:
            return p
    return None


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    problems: list[dict] = field(default_factory=list)


def score_completions(rows: list[dict], completions: list[list[str]], verifier, ks: Sequence[int] = (1,)) -> EvalResult:
    """Metrics from already generated completions (one list of samples per row)."""
    golds, responses, owners = [], [], []
    for i, (row, samples) in enumerate(zip(rows, completions)):
        for s in samples:
            golds.append(row["answer"])
            responses.append(s)
            owners.append(i)
    # strict: the answer in the format's slot, as eval has always scored it
    verdicts = verifier.check_batch(golds, responses, mode="strict") if responses else []
    fmt = [XmlReply.parse(completion_text(r)).follows_format() for r in responses]
    per: list[dict] = [
        {"id": r.get("id"), "answer": r["answer"], "completions": [], "extracted": [], "verdicts": [], "format": []} for r in rows
    ]
    for i, v, f, s in zip(owners, verdicts, fmt, responses):
        per[i]["completions"].append(s)
        per[i]["extracted"].append(v.pred)
        per[i]["verdicts"].append({"equal": v.equal, "status": v.status.value, "reason": v.reason})
        per[i]["format"].append(f)
    n_samples = max((len(c) for c in completions), default=0)
    total = sum(len(p["verdicts"]) for p in per) or 1
    correct = sum(v["equal"] for p in per for v in p["verdicts"])
    no_answer = sum(v["status"] == VerdictStatus.NO_ANSWER.value for p in per for v in p["verdicts"])
    statuses = Counter(v["status"] for p in per for v in p["verdicts"])
    for p in per:
        p["correct"] = sum(v["equal"] for v in p["verdicts"])
    metrics: dict[str, Any] = {
        "problems": len(rows),
        "samples_per_problem": n_samples,
        "accuracy": correct / total,
        "format_rate": sum(f for p in per for f in p["format"]) / total,
        "no_answer_rate": no_answer / total,
        "wrong_rate": (total - correct - no_answer) / total,
        "status_counts": dict(sorted(statuses.items())),
    }
    for k in ks:
        if k <= n_samples:
            metrics[f"pass@{k}"] = sum(pass_at_k(len(p["verdicts"]), sum(v["equal"] for v in p["verdicts"]), k) for p in per) / max(1, len(per))
    if n_samples > 1:
        maj_ok = 0
        for p, row in zip(per, rows):
            m = majority_answer(p["extracted"])
            p["majority"] = m
            if m is not None:
                maj_ok += verifier.verify(gold=row["answer"], pred=m).equal
        metrics[f"maj@{n_samples}"] = maj_ok / max(1, len(per))
    return EvalResult(metrics, per)


def generate(
    model,
    tokenizer,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    num_samples: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[str]]:
    """Sample ``num_samples`` completions per prompt with HF generate (greedy at temperature 0)."""
    import torch  # deferred: heavy (torch)


    texts = [render_prompt(tokenizer, p) for p in prompts]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    out: list[list[str]] = [[] for _ in texts]
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    try:
        jobs = [(i, s) for i in range(len(texts)) for s in range(num_samples)]
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            enc = tokenizer([texts[i] for i, _ in chunk], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen_kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.no_grad():
                ids = model.generate(**enc, **gen_kwargs)
            new = ids[:, enc["input_ids"].shape[1] :]
            for (i, _), seq in zip(chunk, new):
                out[i].append(tokenizer.decode(seq, skip_special_tokens=True))
            if progress:
                progress(min(start + batch_size, len(jobs)), len(jobs))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return out


def evaluate_model(model, tokenizer, dataset, verifier, *, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, batch_size: int = 16, ks=(1,), progress=None) -> EvalResult:
    rows = [dict(r) for r in dataset]
    comps = generate(
        model, tokenizer, [r["prompt"] for r in rows], max_new_tokens=max_new_tokens, temperature=temperature,
        num_samples=samples, seed=seed, batch_size=batch_size, progress=progress,
    )
    return score_completions(rows, comps, verifier, ks=ks)




# --- engines: the same completions interface for HF generate and vLLM ---------------------------

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


class HFEngine:
    """HF ``generate`` on the base model, with the PEFT adapter toggled on or off in place."""

    name = "hf"

    def __init__(self, base: str, adapter_dir: str | None = None, *, tokenizer_path: str | None = None, chat_template: str | None = None, full_model: bool = False) -> None:
        import torch  # deferred: heavy (torch)
        from transformers import AutoModelForCausalLM, AutoTokenizer  # deferred: heavy (transformers)


        cuda = torch.cuda.is_available()
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or adapter_dir or base)
        apply_template(self.tokenizer, chat_template)
        self.base_model = None
        model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        self.has_adapter = adapter_dir is not None
        if adapter_dir is not None and full_model:
            # a full fine-tune: the "adapter" is a whole model; keep the base apart for --compare-base
            self.base_model = model.to("cuda" if cuda else "cpu")
            model = AutoModelForCausalLM.from_pretrained(adapter_dir, dtype=dtype)
        elif adapter_dir is not None:
            from peft import PeftModel  # deferred: heavy (peft)

            model = PeftModel.from_pretrained(model, adapter_dir)
        self.model = model.to("cuda" if cuda else "cpu")
        self.model.eval()

    def generate(self, prompts, *, use_adapter: bool = True, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, progress=None, desc: str = "") -> list[list[str]]:
        model, ctx = self.model, nullcontext()
        if self.has_adapter and not use_adapter:
            if self.base_model is not None:
                model = self.base_model
            else:
                ctx = self.model.disable_adapter()
        bar = _Bar(len(prompts) * samples, desc) if progress is None else None
        with ctx:
            out = generate(model, self.tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                           num_samples=samples, seed=seed, progress=progress or bar.update)
        if bar:
            bar.close()
        return out


class VLLMEngine:
    """vLLM on a GPU; the adapter is served as a LoRA request, the base is the same engine without it.

    vllm is imported here only, never on the CPU path.
    """

    name = "vllm"

    def __init__(self, base: str, adapter_dir: str | None = None, *, tokenizer_path: str | None = None, chat_template: str | None = None, lora_rank: int | None = None, full_model: bool = False, gpu_memory_utilization: float = 0.85, max_model_len: int | None = None, seed: int = 0) -> None:
        from transformers import AutoTokenizer  # deferred: heavy (transformers)
        from vllm import LLM  # deferred: GPU-only (vLLM)


        if full_model:
            raise ConfigError("--engine vllm evaluates LoRA adapters; for a full fine-tune pass the saved model folder as --model.")
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or adapter_dir or base)
        apply_template(self.tokenizer, chat_template)
        self.adapter_dir = adapter_dir
        kwargs: dict[str, Any] = dict(model=base, tokenizer=tokenizer_path or base, gpu_memory_utilization=gpu_memory_utilization, seed=seed)
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        if adapter_dir is not None:
            r = lora_rank or 8
            kwargs.update(enable_lora=True, max_lora_rank=next((x for x in VLLM_LORA_RANKS if x >= r), r), max_loras=1)
        self.llm = LLM(**kwargs)

    def generate(self, prompts, *, use_adapter: bool = True, samples: int = 1, temperature: float = 0.0, max_new_tokens: int = 256, seed: int = 0, progress=None, desc: str = "") -> list[list[str]]:
        from vllm import SamplingParams  # deferred: GPU-only (vLLM)


        lora = None
        if use_adapter and self.adapter_dir is not None:
            from vllm.lora.request import LoRARequest  # deferred: GPU-only (vLLM)

            lora = LoRARequest("grpo-core-adapter", 1, str(self.adapter_dir))
        params = SamplingParams(n=samples, temperature=temperature, max_tokens=max_new_tokens, seed=seed, skip_special_tokens=True)
        inputs = [{"prompt_token_ids": self.tokenizer(render_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"]} for p in prompts]
        outs = self.llm.generate(inputs, params, lora_request=lora, use_tqdm=True)
        return [[o.text for o in out.outputs] for out in outs]


class _Bar:
    """A tqdm progress bar on stderr, fed by ``generate``'s (done, total) callback."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = tqdm(total=total, desc=desc or "generating", unit="sample", leave=True)

    def update(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def choose_engine(engine: str) -> tuple[str, str]:
    """``auto`` -> vLLM when a CUDA GPU and vllm are present, else HF generate; with the reason."""

    if engine == "hf":
        return "hf", "requested with --engine hf"
    has_vllm = importlib.util.find_spec("vllm") is not None
    if engine == "vllm":
        if not cuda_available():
            raise ConfigError("--engine vllm needs a CUDA GPU and none is visible; use --engine hf (runs on CPU).")
        if not has_vllm:
            raise ConfigError("--engine vllm: vllm is not installed; `pip install 'grpo-core[gpu]'` on a CUDA machine, or use --engine hf.")
        return "vllm", "requested with --engine vllm"
    if not cuda_available():
        return "hf", "no CUDA GPU visible"
    if not has_vllm:
        return "hf", "CUDA GPU found but vllm is not installed"
    return "vllm", "CUDA GPU and vllm found"


# --- the eval command's logic ----------------------------------------------------------------

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


def run_eval(req: EvalRequest, *, echo: Callable[[str], None] = print, engine_obj=None) -> dict:
    """Load the data and the model(s), generate, score with the verifier, write the JSONL; return the summary.

    ``engine_obj`` lets tests (and callers that already hold a model) pass a ready engine.
    """
    if req.samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {req.samples}.")
    temperature = req.temperature if req.temperature is not None else (0.0 if req.samples == 1 else 1.0)
    if req.samples > 1 and temperature == 0:
        raise ConfigError("--samples > 1 with --temperature 0 gives K identical greedy samples; pass --temperature > 0 (e.g. 1.0).")
    trained = resolve_trained(req.adapter, base=req.model) if req.adapter else None
    if trained is None and not req.model:
        raise ConfigError("pass --model (a hub id or folder), --adapter (a run or adapter folder), or both.")
    if req.compare_base and trained is None:
        raise ConfigError("--compare-base needs --adapter: it compares the base model with the trained one.")
    base = trained.base if trained else req.model
    if trained is None:
        base = resolve_model(req.model)

    name, split = parse_dataset_spec(req.dataset)
    adapter = get_dataset(name)
    split = split or getattr(adapter, "default_eval_split", None) or ("test" if "test" in adapter.splits else adapter.splits[0])
    system_prompt = req.system_prompt if req.system_prompt is not None else (trained.system_prompt if trained else None)
    ds = adapter.load(split, system_prompt=system_prompt, limit=req.limit, verbose=False)
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

    out_path = Path(req.out) if req.out else Path(f"eval-{name}-{split}.jsonl")
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
    }
    if "majority" in p:
        rec["majority"] = p["majority"]
    return rec


def _is_rate(key: str, value: Any) -> bool:
    return isinstance(value, float) and (key.endswith("_rate") or key == "accuracy" or key.startswith(("pass@", "maj@")))


_ROWS = [("accuracy", "accuracy (pass@1)"), ("format_rate", "format reward rate"), ("no_answer_rate", "no answer found"), ("wrong_rate", "wrong")]


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
