"""The GRPO training pass alone: TRL's loss, backward, gradient clipping, optimizer step, per lever.

No generation, no vLLM: a random-weight model of a real shape (grpo_core.testing.modelgen), LoRA r=64 on
the seven projections, one fixed micro-batch of ``--rows`` completions (``--prompt`` + ``--completion``
tokens, the reference round's sizes), and TRL 1.14's own ``compute_loss`` as the trainer calls it, then
what the trainer's optimizer step does. Each variant runs in its own process; per variant it records the
mean wall time of a pass after ``--warmup`` passes, the operator calls one pass makes (on a GPU, each
is at least one kernel launch: the fixed per-step cost), and the peak memory:

    python benchmarks/train_pass.py --shape smollm2-135m --variants "ref;recompute=false;optim=adamw_torch_fused"

A variant is ``key=value,key=value`` (``ref``: the reference settings): ``recompute`` (gradient
checkpointing, the reference's true), ``optim`` (the reference's adamw_8bit on a GPU, adamw_torch on a
CPU), ``liger`` (TRL's chunked log-prob path, ``use_liger_kernel``; needs the liger-kernel package).
The FLOP floor printed beside a GPU pass: 6 FLOP per parameter and token (8 with recomputation) at
``--tflops`` (an H200's dense bf16 rate by default).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
KEYS = {"recompute": "gradient_checkpointing", "optim": "optim", "liger": "use_liger_kernel"}


def parse_variant(spec: str) -> dict:
    """``recompute=false,optim=adamw_torch_fused`` -> GRPOConfig fields; ``ref`` -> {}."""
    import yaml

    out = {}
    for pair in filter(None, spec.split(",")):
        if pair.strip() == "ref":
            continue
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in KEYS:
            raise SystemExit(f"cannot read variant {spec!r}: write ref or key=value,... with keys {', '.join(KEYS)}")
        out[KEYS[key.strip()]] = yaml.safe_load(value)
    return out


def worker(a) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    cuda = torch.cuda.is_available()
    torch.manual_seed(0)
    settings = json.loads(a.settings)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16 if cuda else torch.float32)
    tok = AutoTokenizer.from_pretrained(a.model)
    fields = dict(output_dir="/tmp/train-pass", per_device_train_batch_size=a.rows, num_generations=a.rows, max_completion_length=a.completion,
                  learning_rate=5e-6, max_grad_norm=0.1, optim="adamw_8bit" if cuda else "adamw_torch", report_to="none", seed=0,
                  gradient_checkpointing=True, **({"bf16": True} if cuda else {"use_cpu": True, "bf16": False}))
    fields.update(settings)
    trainer = GRPOTrainer(model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=GRPOConfig(**fields),
                          processing_class=tok, train_dataset=Dataset.from_list([{"prompt": "x"}] * a.rows),
                          peft_config=LoraConfig(r=64, lora_alpha=64, target_modules=SEVEN, task_type="CAUSAL_LM"))
    model = trainer.model
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop, which is not run here
    if fields["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs or {"use_reentrant": False})
    model.train()
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    device = model.device
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    inputs = {
        "prompt_ids": torch.randint(5, vocab, (a.rows, a.prompt), generator=g).to(device),
        "prompt_mask": torch.ones(a.rows, a.prompt, dtype=torch.long, device=device),
        "completion_ids": torch.randint(5, vocab, (a.rows, a.completion), generator=g).to(device),
        "completion_mask": torch.ones(a.rows, a.completion, dtype=torch.long, device=device),
        "advantages": torch.randn(a.rows, generator=g).to(device),
        "num_items_in_batch": torch.tensor(a.rows * a.completion, device=device),
    }
    params = [p for p in model.parameters() if p.requires_grad]

    def one_pass():
        with trainer.compute_loss_context_manager():  # the trainer's autocast, as in its training_step
            loss = trainer.compute_loss(model, inputs)
        trainer.accelerator.backward(loss)
        torch.nn.utils.clip_grad_norm_(params, trainer.args.max_grad_norm)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        model.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        one_pass()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.passes):
        t0 = time.perf_counter()
        one_pass()
        sync()
        times.append(time.perf_counter() - t0)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_pass()
        sync()
    # operator calls made from Python or autograd, not the ones an operator makes inside itself
    top_level_ops = sum(1 for e in prof.events() if e.name.startswith("aten::") and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))
    base_params = sum(p.numel() for p in model.parameters())
    tokens = a.rows * (a.prompt + a.completion)
    flops = (8 if fields["gradient_checkpointing"] else 6) * base_params * tokens
    return {
        "settings": settings,
        "mean_pass_s": statistics.fmean(times),
        "median_pass_s": statistics.median(times),
        "pass_times_s": times,
        "aten_ops_per_pass": top_level_ops,
        "trainable_tensors": len(params),
        "parameters": base_params,
        "tokens": tokens,
        "flop_floor_s": flops / (a.tflops * 1e12) if cuda else None,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="smollm2-135m")
    ap.add_argument("--variants", default="ref;recompute=false;optim=adamw_torch_fused;recompute=false,optim=adamw_torch_fused",
                    help="variants separated by ';', each ref or key=value,... (keys: recompute, optim, liger)")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=110, help="prompt tokens per row (GSM8K prompts under the benchmark tokenizer: mean 107)")
    ap.add_argument("--completion", type=int, default=200)
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tflops", type=float, default=790.0)
    ap.add_argument("--model-dir", default="/tmp/bench-models")
    ap.add_argument("--out", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--model", help="an existing model folder to use instead of building one of --shape (e.g. the one grpo_step.py built)")
    a = ap.parse_args()
    if a.worker:
        print("RESULT " + json.dumps(worker(a)), flush=True)
        return
    from grpo_core.testing.modelgen import build_random_model

    model = a.model or str(build_random_model(Path(a.model_dir) / a.shape, a.shape))
    results = []
    out = Path(a.out or HERE / "results" / f"train_pass-{a.shape}-{a.rows}x{a.prompt}+{a.completion}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for spec in a.variants.split(";"):
        settings = parse_variant(spec)
        cmd = [sys.executable, __file__, "--worker", "--settings", json.dumps(settings), "--model", model, "--rows", str(a.rows),
               "--prompt", str(a.prompt), "--completion", str(a.completion), "--passes", str(a.passes), "--warmup", str(a.warmup),
               "--tflops", str(a.tflops)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            tail = (proc.stderr or "")[-1500:]
            print(f"{spec:50s} FAILED (exit {proc.returncode}):\n{tail}", flush=True)
            results.append({"variant": spec, "settings": settings, "failed": True, "stderr_tail": tail})
        else:
            r = {"variant": spec, **json.loads(line[7:])}
            results.append(r)
            floor = f"  floor {r['flop_floor_s']:.3f} s ({r['mean_pass_s'] / r['flop_floor_s']:.1f}x)" if r["flop_floor_s"] else ""
            peak = f"  peak {r['peak_allocated_gib']:.1f} GiB" if r["peak_allocated_gib"] is not None else ""
            print(f"{spec:50s} {r['mean_pass_s']:.3f} s/pass (median {r['median_pass_s']:.3f})  {r['aten_ops_per_pass']} aten ops"
                  f"{floor}{peak}", flush=True)
        out.write_text(json.dumps({"shape": a.shape, "rows": a.rows, "prompt": a.prompt, "completion": a.completion, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
