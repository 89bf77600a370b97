"""GRPO step time on the GPU: grpo-core's default path against the raw paths it wraps.

Each path runs in its own process (so one path's CUDA state, vLLM engine or
Unsloth patches never touch another), all paths in one invocation:

    python benchmarks/grpo_step.py --shape qwen2.5-0.5b --paths grpo_core,grpo_core_trl,trl_hf,trl_vllm,unsloth_vllm

* ``grpo_core``    grpo-core's default GPU path, through its own API (backend auto)
                   with every reference reward (xml, soft/strict format, int, correctness);
* ``grpo_core_trl`` the same through grpo-core's trl backend with vLLM colocate;
* ``trl_hf``       raw TRL + PEFT, HF generate;
* ``trl_vllm``     raw TRL + PEFT, vLLM colocate;
* ``unsloth_vllm`` raw Unsloth + vLLM fast_inference, written as the reference notebook does it.

Reference settings: random-weight model with the real Qwen2.5 shapes (grpo_core.testing.modelgen) and,
by default, a BPE tokenizer trained on GSM8K text so prompts are as long in tokens as under
Qwen2.5's own (``--tokenizer bytes``: one token per byte, as the H200 runs of 2026-11-21 before 18:36 measured),
LoRA r=64 on the seven projections, 8 generations, 200 completion tokens, adamw_8bit,
1 prompt per step (``--prompts 8 --max-tokens 512`` for the throughput setting).
A path may carry settings for that path alone, ``name[key=value;key=value]``: GRPOConfig
fields for every path, grpo-core settings too for the grpo_core paths, e.g.
``trl_vllm[steps_per_generation=4]`` or ``grpo_core_trl[fast_vllm_sync=false]`` (a path's own settings
override the reference ones, e.g. ``trl_vllm[optim=adamw_torch_fused]``). The invocation ends with one
line per row: how many times faster it ran than raw ``trl_vllm`` at the same ``steps_per_generation``.

Per path it records the mean wall time per optimizer step over whole generation rounds after
the first (``mean_step_s``: everything, optimizer and logging included), TRL's own median
``step_time`` of steps 2..N (``median_step_s``), where the time goes (generation, weight sync,
old-policy log-probs, rewards, training: grpo_core.train.phases, exact with ``--profile``),
completion tokens per second, the reward stage's share of the step, and peak GPU memory with
vLLM's memory fraction set to the smallest of ``--fractions`` that runs. JSON goes to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from grpo_core.runtime.hardware import cuda_available  # noqa: E402
VLLM_PATHS = {"trl_vllm", "unsloth_vllm", "grpo_core", "grpo_core_trl"}
PATH_SPEC = re.compile(r"\s*(\w+)(?:\[([^\]]*)\])?\s*(?:,|$)")


def parse_paths(spec: str) -> list[tuple[str, dict]]:
    """``a,b[k=v;k2=v2]`` -> [("a", {}), ("b", {"k": v, "k2": v2})] (values parsed as YAML scalars)."""
    import yaml

    out, pos = [], 0
    while pos < len(spec):
        m = PATH_SPEC.match(spec, pos)
        if not m or m.end() == pos:
            raise SystemExit(f"cannot read --paths at {spec[pos:]!r}; write name or name[key=value;key=value], comma-separated")
        settings = {}
        for pair in filter(None, (m.group(2) or "").split(";")):
            key, _, value = pair.partition("=")
            settings[key.strip()] = yaml.safe_load(value)
        out.append((m.group(1), settings))
        pos = m.end()
    return out


def rotations(paths: list, repeat: int):
    """(pass, path, settings) for ``repeat`` passes over ``paths``, pass k starting at path k."""
    for rep in range(max(1, repeat)):
        k = rep % len(paths)
        for path, settings in paths[k:] + paths[:k]:
            yield rep, path, settings


def label(path: str, settings: dict) -> str:
    return path + ("[" + ";".join(f"{k}={v}" for k, v in settings.items()) + "]" if settings else "")
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# --- the reference notebook's rewards, written inline as a raw user would ----------
def _text(c):
    return c[0]["content"] if isinstance(c, list) else c


def _extract(t):
    return t.split("<answer>")[-1].split("</answer>")[0].strip()


def correctness_reward_func(prompts, completions, answer, **kw):
    return [2.0 if _extract(_text(c)) == a else 0.0 for c, a in zip(completions, answer)]


def int_reward_func(completions, **kw):
    return [0.5 if _extract(_text(c)).isdigit() else 0.0 for c in completions]


def strict_format_reward_func(completions, **kw):
    p = r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n$"
    return [0.5 if re.match(p, _text(c)) else 0.0 for c in completions]


def soft_format_reward_func(completions, **kw):
    p = r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>"
    return [0.5 if re.match(p, _text(c)) else 0.0 for c in completions]


def xmlcount_reward_func(completions, **kw):
    out = []
    for c in completions:
        t, s = _text(c), 0.0
        s += 0.125 if t.count("<reasoning>\n") == 1 else 0
        s += 0.125 if t.count("\n</reasoning>\n") == 1 else 0
        if t.count("\n<answer>\n") == 1:
            s += 0.125 - len(t.split("\n</answer>\n")[-1]) * 0.001
        if t.count("\n</answer>") == 1:
            s += 0.125 - (len(t.split("\n</answer>")[-1]) - 1) * 0.001
        out.append(s)
    return out


PROMPTS = 64  # GSM8K training prompts every path trains on

RAW_REWARDS = [xmlcount_reward_func, soft_format_reward_func, strict_format_reward_func, int_reward_func, correctness_reward_func]


def _dataset(n):
    from grpo_core import get_dataset

    return get_dataset("gsm8k").load("train", limit=n, verbose=False)


def weight_bytes(shape: str, four_bit: bool) -> int:
    """The weights vLLM must hold: a fraction below them cannot start, for any path (saves a model load per try)."""
    from grpo_core.train.memory_plan import Shapes
    from grpo_core.testing.modelgen import SHAPES

    return Shapes.from_config(SHAPES[shape]).weight_bytes(four_bit)


def gpu_total_bytes() -> int:
    from grpo_core.train.memory_plan import gpu_total_bytes as total

    return total() if cuda_available() else 2**62  # no GPU: nothing to skip


def model_dir_name(shape: str, tokenizer: str) -> str:
    return shape if tokenizer == "bytes" else f"{shape}-{tokenizer}"


def tokenizer_corpus(kind: str):
    """The text the benchmark model's BPE is trained on (None: one token per byte)."""
    if kind == "bytes":
        return None
    from grpo_core import get_dataset

    rows = get_dataset("gsm8k").load("train", verbose=False)
    return ["\n".join(m["content"] for m in r["prompt"]) + "\n" + (r.get("solution") or "") for r in rows]


def measure_prompts(model: str) -> dict:
    """Token counts of the benchmark's prompts, as every path renders them (pre-flight's count)."""
    from transformers import AutoTokenizer

    from grpo_core.train.preflight import length_stats, prompt_lengths

    return length_stats(prompt_lengths(AutoTokenizer.from_pretrained(model), _dataset(PROMPTS)["prompt"]))


def _grpo_args(a, out, **extra):
    """The reference GRPOConfig; ``extra`` (a path's own settings) overrides any of it, e.g. ``optim``."""
    from trl import GRPOConfig

    reference = dict(
        output_dir=out, learning_rate=5e-6, adam_beta1=0.9, adam_beta2=0.99, weight_decay=0.1, warmup_steps=0.1,
        lr_scheduler_type="cosine", optim=a.optim, logging_steps=1, per_device_train_batch_size=8 * a.prompts,
        gradient_accumulation_steps=1, num_generations=8, max_completion_length=a.max_tokens, max_steps=a.steps,
        save_strategy="no", max_grad_norm=0.1, report_to="none", disable_tqdm=True, seed=3407,
        **({"bf16": True} if cuda_available() else {"use_cpu": True}),
    )
    return GRPOConfig(**{**reference, **extra})



def worker(a) -> dict:
    """Run one path in this process and return its measurements."""
    import torch

    from grpo_core.train.phases import PhaseClock
    from grpo_core.train.step_trace import StepTracer

    settings = json.loads(a.settings)
    out = f"/tmp/bench-{a.worker}"
    t_setup = time.perf_counter()
    spg = int(settings.get("steps_per_generation") or 1)
    if a.worker.startswith("grpo_core"):
        from grpo_core.config.settings import build_config
        from grpo_core.train import run

        flags = {
            "model": a.model, "output_dir": out, "max_steps": a.steps, "eval_limit": 0, "report": False, "limit": PROMPTS,
            "load_in_4bit": a.four_bit, "gpu_memory_utilization": a.fraction, "max_completion_length": a.max_tokens,
            "per_device_train_batch_size": 8 * a.prompts, "save_strategy": "no", "optim": a.optim, "profile": a.profile,
            "trace_step": a.trace_step,
        }
        if a.worker == "grpo_core_trl":
            flags.update(backend="trl", use_vllm=True, vllm_mode="colocate")
        # the raw paths keep every prompt; so must grpo-core's (the preset drops prompts over 256 tokens)
        sets = ["max_prompt_length=null"] + [f"{k}={json.dumps(v)}" for k, v in settings.items()]
        cfg = build_config(preset="seed-qwen2.5-3b", flags=flags, sets=sets)
        info = run(cfg, echo=lambda s: print(s, file=sys.stderr))
        if info["dataset"]["rows"] != PROMPTS:
            raise SystemExit(f"grpo_core trained on {info['dataset']['rows']} prompts, the raw paths on {PROMPTS}: not comparable")
        history = json.loads((Path(out) / "log_history.json").read_text())
        backend = info["backend"]
        prompt_rows = info["dataset"]["rows"]
        phases = [{k[5:]: v for k, v in h.items() if k.startswith("time/")} for h in history if "time/step_s" in h]
    else:
        ds = _dataset(PROMPTS)
        clock = PhaseClock(sync_cuda=a.profile).install()
        callbacks = [clock] + ([StepTracer(a.trace_step, out, echo=lambda s: print(s, file=sys.stderr))] if a.trace_step else [])
        if a.worker == "unsloth_vllm":
            from unsloth import FastLanguageModel

            from trl import GRPOTrainer

            model, tok = FastLanguageModel.from_pretrained(
                model_name=a.model, max_seq_length=1024, load_in_4bit=a.four_bit, fast_inference=True,
                max_lora_rank=64, gpu_memory_utilization=a.fraction,
            )
            model = FastLanguageModel.get_peft_model(
                model, r=64, target_modules=SEVEN, lora_alpha=64, use_gradient_checkpointing="unsloth", random_state=3407
            )
            trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=RAW_REWARDS, args=_grpo_args(a, out, use_vllm=True, **settings),
                                  train_dataset=ds, callbacks=callbacks)
        else:
            from peft import LoraConfig
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from trl import GRPOTrainer

            tok = AutoTokenizer.from_pretrained(a.model)
            model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16 if cuda_available() else torch.float32)  # as grpo-core loads it
            extra = {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": a.fraction} if a.worker == "trl_vllm" else {}
            trainer = GRPOTrainer(
                model=model, processing_class=tok, reward_funcs=RAW_REWARDS, args=_grpo_args(a, out, **extra, **settings), train_dataset=ds,
                peft_config=LoraConfig(r=64, lora_alpha=64, target_modules=SEVEN, task_type="CAUSAL_LM"), callbacks=callbacks,
            )
        trainer.train()
        history = trainer.state.log_history
        backend = a.worker
        phases = clock.steps
        prompt_rows = len(ds)
    steps = [h for h in history if "step_time" in h]
    times = [h["step_time"] for h in steps][1:]  # steps 2..N
    # whole generation rounds after the first (the first also holds compilation and warm-up)
    rounds = (len(phases) - spg) // spg
    window = phases[spg : spg + rounds * spg]
    mean_phases = {k: statistics.fmean(r[k] for r in window) for k in window[0]}
    lengths = [h["completions/mean_length"] for h in steps if "completions/mean_length" in h]  # steps that generated
    comp_tokens = statistics.median(lengths[1:] or lengths) * 8 * a.prompts
    reward_s = mean_phases["rewards_s"]  # the trainer's _calculate_rewards (TRL's and Unsloth's both time it), per step
    free, total = torch.cuda.mem_get_info() if cuda_available() else (0, 0)
    mean_step = mean_phases["step_s"]
    return {
        "path": a.worker,
        "settings": settings,
        "backend": backend,
        "prompt_rows": prompt_rows,
        "mean_step_s": mean_step,
        "measured_steps": len(window),
        "phases_s": mean_phases,
        "median_step_s": statistics.median(times),
        "step_times_s": times,
        "wall_step_times_s": [r["step_s"] for r in phases],
        "completion_tokens_per_s": comp_tokens / mean_step,
        "reward_share": reward_s / mean_step,
        "reward_s": reward_s,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda_available() else None,
        "device_used_gib_at_end": (total - free) / 2**30,
        "vllm_fraction": a.fraction if a.worker in VLLM_PATHS else None,
        "profiled": a.profile,
        "setup_plus_run_s": time.perf_counter() - t_setup,
        "gpu": torch.cuda.get_device_name() if cuda_available() else "cpu",
        "trace": _read_trace(out, a.trace_step),
    }


def _read_trace(out: str, step: int | None) -> dict | None:
    p = Path(out) / f"trace-step-{step}.json"
    return json.loads(p.read_text()) if step and p.is_file() else None


def _pass(r: dict) -> str:
    """' #k' for a result from pass k > 1 of a ``--repeat`` invocation."""
    return f" #{r['repeat'] + 1}" if r.get("repeat") else ""


def row_name(r: dict) -> str:
    """A result's path label, with its pass number when the invocation ran several (``--repeat``)."""
    return label(r["path"], r.get("settings") or {}) + _pass(r)


#: shorter setting names for the chart's axis
CHART_KEYS = {"steps_per_generation": "spg", "fast_vllm_sync": "sync", "trim_padding": "trim", "group_steps": "groups", "scoring_batch_size": "rows"}


#: grpo-core's trl-path levers; a row with all of them off does raw TRL's GPU work
LEVERS = ("fast_vllm_sync", "trim_padding", "group_steps")


def chart_name(r: dict) -> str:
    """A short axis label: known settings abbreviated, a reward list shown as its size."""
    parts, settings = [], dict(r.get("settings") or {})
    if all(settings.get(k) is False for k in LEVERS):
        parts.append("levers off")
        settings = {k: v for k, v in settings.items() if k not in LEVERS}
    for k, v in settings.items():
        if k == "plugins":
            parts.append(f"{len(str(v).split(','))} rewards")
        else:
            parts.append(f"{CHART_KEYS.get(k, k)}={'off' if v is False else v}")
    return r["path"] + (f"[{', '.join(parts)}]" if parts else "") + _pass(r)


def _step_s(r: dict) -> float:
    """The headline: mean wall time per step when recorded, TRL's median step_time for older results."""
    return r.get("mean_step_s") or r["median_step_s"]


def _gib(value) -> str:
    return "-" if value is None else f"{value:.1f}"  # CPU runs have no GPU memory


def bar_note(r: dict) -> str:
    """The text beside a bar: step time, peak memory and vLLM fraction, or why the path did not run."""
    frac = f" @ {r['vllm_fraction']}" if r.get("vllm_fraction") else ""
    if r.get("failed"):
        return f"did not start{frac}".replace("@", "at fraction")
    mem = f", {r['peak_allocated_gib']:.1f} GiB" if r.get("peak_allocated_gib") is not None else ""
    return f"{_step_s(r):.2f} s{mem}{frac}"


def _tried_elsewhere(r: dict, results: list[dict]) -> bool:
    """A failed try of a path that later ran at a larger fraction in the same invocation (the search's misses)."""
    return any(not o.get("failed") and o["path"] == r["path"] and o.get("settings") == r.get("settings") and o.get("repeat") == r.get("repeat")
               for o in results)


def report(files: list[str], png: Path = HERE.parent / "docs" / "grpo_step.png") -> None:
    """A markdown table and a bar chart of step times from result files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(Path(f).read_text()) for f in files]
    print("| model | setting | path | s/step (mean wall) | TRL median step_time | generate / sync / old logps / train s | "
          "completion tok/s | reward share | peak GiB allocated | vLLM fraction | GPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    sizes = [max(1, len(r["results"])) for r in runs]
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 0.9 * len(runs) + 0.32 * sum(sizes)), squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": sizes})
    for ax, run, f in zip(axes[:, 0], runs, files):
        for r in run["results"]:
            if r.get("failed"):
                continue
            ph = r.get("phases_s")
            split = " / ".join(f"{ph[k]:.3f}" for k in ("generate_s", "sync_s", "old_logps_s", "train_s")) if ph else "-"
            mean = f"{r['mean_step_s']:.3f}" if r.get("mean_step_s") else "-"
            print(f"| {run['shape']} | {run['setting']} | {row_name(r)} | {mean} | {r['median_step_s']:.3f} | {split} | "
                  f"{r['completion_tokens_per_s']:.0f} | {r['reward_share']:.2%} | {_gib(r['peak_allocated_gib'])} | {r['vllm_fraction'] or '-'} | {r['gpu']} |")
        shown = [r for r in run["results"] if not r.get("failed") or not _tried_elsewhere(r, run["results"])]
        ax.barh([chart_name(r) for r in shown], [0 if r.get("failed") else _step_s(r) for r in shown],
                color=["C0" if r["path"].startswith("grpo_core") else "C7" for r in shown])
        for i, r in enumerate(shown):
            ax.text(0 if r.get("failed") else _step_s(r), i, " " + bar_note(r), va="center", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        tokens = run.get("prompt_tokens")
        prompts = f", prompts ~{tokens['mean']:.0f} tokens ({run['tokenizer']})" if tokens else ""
        ax.set_title(f"{Path(f).stem.removeprefix('grpo_step-')}: one invocation{prompts}", fontsize=9)
    top = max((_step_s(r) for run in runs for r in run["results"] if not r.get("failed")), default=1.0)
    axes[-1, 0].set_xlim(0, top * 1.45)
    axes[-1, 0].set_xlabel("s/step (lower is better); beside each bar: peak GiB allocated @ vLLM fraction")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    print(f"\nchart: {png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="qwen2.5-0.5b")
    ap.add_argument("--paths", default="grpo_core,grpo_core_trl,trl_hf,trl_vllm,unsloth_vllm", help="name or name[key=value;...], comma-separated")
    ap.add_argument("--steps", type=int, default=6, help="steps per path (at least 3 generation rounds with steps_per_generation)")
    ap.add_argument("--prompts", type=int, default=1, help="prompts per step (8 generations each)")
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--four-bit", action="store_true")
    ap.add_argument("--profile", action="store_true", help="synchronise the GPU at phase edges for exact phase times")
    ap.add_argument("--trace-step", type=int, default=None, help="profile this step of every path (torch profiler): GPU-busy share, "
                    "kernel launches, the costliest operations go in the JSON as 'trace'. The profiler slows that step: "
                    "an invocation with a trace is for the trace, not for step times")
    ap.add_argument("--optim", default="adamw_8bit", help="optimizer (adamw_torch to try the script on a CPU)")
    ap.add_argument("--repeat", type=int, default=1, help="run the path list this many times, each pass starting one path later, "
                    "so drift during an invocation shows up as a spread instead of favouring the paths run late")
    ap.add_argument("--fractions", default="0.1,0.2,0.35", help="vLLM memory fractions to try, smallest first")
    ap.add_argument("--tokenizer", choices=("gsm8k-bpe", "bytes"), default="gsm8k-bpe",
                    help="the random model's tokenizer: a BPE trained on GSM8K's training text, digits one by one (prompts about as long "
                         "as under Qwen2.5's own tokenizer; the default since the H200 run of 2026-11-21 16:28), or one token per byte (the H200 runs of 2026-11-21 before 18:36: prompts 3-4x longer)")
    ap.add_argument("--model-dir", default="/tmp/bench-models")
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", nargs="+", metavar="JSON", help="only draw the chart and print the table of earlier results")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--fraction", type=float, default=0.3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        report(a.report)
        return
    if a.worker:
        res = worker(a)
        print("RESULT " + json.dumps(res), flush=True)
        return
    paths = parse_paths(a.paths)
    from grpo_core.testing.modelgen import build_random_model

    model = str(build_random_model(Path(a.model_dir) / model_dir_name(a.shape, a.tokenizer), a.shape, corpus=tokenizer_corpus(a.tokenizer)))
    prompt_tokens = measure_prompts(model)
    weights, gpu_total = weight_bytes(a.shape, a.four_bit), gpu_total_bytes()
    if cuda_available():
        import torch

        torch.cuda.empty_cache()  # the model was built on the GPU here: leave its memory to the paths
    print(f"model {model}: tokenizer {a.tokenizer}, prompt tokens min {prompt_tokens['min']} mean {prompt_tokens['mean']} max {prompt_tokens['max']}", flush=True)
    setting = f"{a.prompts}x8x{a.max_tokens}" + ("-4bit" if a.four_bit else "")
    out = Path(a.out or HERE / "results" / f"grpo_step-{a.shape}-{setting}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    for rep, path, settings in rotations(paths, a.repeat):
        name = label(path, settings) + (f" #{rep + 1}" if a.repeat > 1 else "")
        spg = int(settings.get("steps_per_generation") or 1)
        steps = max(a.steps, 3 * spg)
        fractions = [float(f) for f in a.fractions.split(",")] if path in VLLM_PATHS else [0.0]
        for frac in fractions:
            if frac and frac * gpu_total < weights:
                print(f"{name:40s} frac {frac:<5} skipped: {frac * gpu_total / 2**30:.1f} GiB cannot hold the weights ({weights / 2**30:.1f} GiB)", flush=True)
                results.append({"path": path, "settings": settings, "vllm_fraction": frac, "failed": True, "repeat": rep,
                                "stderr_tail": "not run: the fraction cannot hold the weights (grpo_core.train.memory_plan)"})
                continue
            cmd = [sys.executable, __file__, "--worker", path, "--settings", json.dumps(settings), "--model", model, "--fraction", str(frac),
                   "--steps", str(steps), "--prompts", str(a.prompts), "--max-tokens", str(a.max_tokens), "--optim", a.optim]
            cmd += ["--trace-step", str(a.trace_step)] if a.trace_step else []
            cmd += (["--four-bit"] if a.four_bit else []) + (["--profile"] if a.profile else [])
            t0 = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line:
                r = json.loads(line[7:])
                r["wall_s"] = round(time.time() - t0, 1)
                r["repeat"] = rep
                results.append(r)
                ph = r["phases_s"]
                print(f"{name:40s} frac {frac:<5} {r['mean_step_s']:.3f} s/step (TRL median {r['median_step_s']:.3f})  "
                      f"gen {ph['generate_s']:.3f} sync {ph['sync_s']:.3f} old-logps {ph['old_logps_s']:.3f} train {ph['train_s']:.3f}  "
                      f"{r['completion_tokens_per_s']:.0f} tok/s  reward {r['reward_share']:.1%}  peak {r['peak_allocated_gib'] or 0:.1f} GiB  "
                      f"({r['wall_s']} s)", flush=True)
                break
            tail = (proc.stderr or "")[-1500:]
            print(f"{name:40s} frac {frac:<5} FAILED (exit {proc.returncode}); last stderr:\n{tail}", flush=True)
            results.append({"path": path, "settings": settings, "vllm_fraction": frac, "failed": True, "stderr_tail": tail, "repeat": rep})
        # written after every path: a call cut short keeps what it measured
        out.write_text(json.dumps({"shape": a.shape, "setting": setting, "steps": a.steps, "profiled": a.profile, "tokenizer": a.tokenizer,
                                   "prompt_tokens": prompt_tokens, "trace_step": a.trace_step, "results": results}, indent=2))
    for line in speedups(results):
        print(line)
    print(f"wrote {out}")


def _spg(r: dict) -> int:
    return int((r.get("settings") or {}).get("steps_per_generation") or 1)


def speedups(results: list[dict], anchor: str = "trl_vllm") -> list[str]:
    """One line per measured row: its s/step and how many times faster it is than the raw ``anchor`` path
    at the same ``steps_per_generation`` in the same pass (the anchor row with no other settings)."""
    ok = [r for r in results if not r.get("failed")]
    lines = []
    for r in ok:
        base = next((b for b in ok if b["path"] == anchor and _spg(b) == _spg(r) and b.get("repeat") == r.get("repeat")
                     and set(b.get("settings") or {}) <= {"steps_per_generation"}), None)
        ratio = f"{_step_s(base) / _step_s(r):.2f}x raw {anchor} at spg {_spg(r)}" if base else f"no raw {anchor} row at spg {_spg(r)}"
        train = (r.get("phases_s") or {}).get("train_s")
        lines.append(f"{row_name(r):90s} {_step_s(r):.3f} s/step  train {train if train is None else round(train, 3)}  {ratio}")
    return lines


if __name__ == "__main__":
    main()
