"""GPU: grpo-core's vLLM weight sync puts exactly the merged LoRA weights into a colocated vLLM engine.

The engine is the one TRL's GRPOTrainer builds (vLLM colocate); the check reads vLLM's own
fused parameters (qkv_proj, gate_up_proj, o_proj, down_proj) back and compares them with
W + scale * B @ A from the PEFT model, and with what TRL's own sync writes.
It runs in its own process: a vLLM engine per process, and the eval tests keep theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.gpu


def test_fast_sync_writes_the_merged_weights_into_vllm(cuda_gpu):
    proc = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=400,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    print(proc.stdout[-3000:])
    print(proc.stderr[-3000:], file=sys.stderr)
    assert proc.returncode == 0 and "SYNC CHECK PASSED" in proc.stdout, proc.stderr[-2000:]


def make_trainer(tmp):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from grpo_core.testing.modelgen import build_random_model

    path = str(build_random_model(os.path.join(tmp, "small"), "small"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    args = GRPOConfig(
        output_dir=os.path.join(tmp, "out"), use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.1,
        per_device_train_batch_size=4, num_generations=4, max_completion_length=8, bf16=True, report_to="none", max_steps=1,
    )
    ds = Dataset.from_list([{"prompt": "hello"}] * 8)
    t = GRPOTrainer(model=model, reward_funcs=lambda completions, **k: [0.0] * len(completions), args=args, train_dataset=ds,
                    processing_class=AutoTokenizer.from_pretrained(path),
                    peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                           task_type="CAUSAL_LM"))
    with torch.no_grad():
        g = torch.Generator(device="cpu").manual_seed(0)
        for n, p in t.model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return t


def _vllm_layer(trainer, i):
    from grpo_core.train.vllm_sync import vllm_model

    return vllm_model(trainer.vllm_generation).model.layers[i]


def _expected(trainer, i):
    """vLLM's fused layouts of the merged weights of layer i."""
    import torch

    layer = trainer.model.base_model.model.model.layers[i]

    def merged(m):
        return (m.base_layer.weight.float() + m.get_delta_weight("default").float()).to(m.base_layer.weight.dtype)

    a, mlp = layer.self_attn, layer.mlp
    return {
        "qkv": torch.cat([merged(a.q_proj), merged(a.k_proj), merged(a.v_proj)]),
        "o": merged(a.o_proj),
        "gate_up": torch.cat([merged(mlp.gate_proj), merged(mlp.up_proj)]),
        "down": merged(mlp.down_proj),
    }


def _actual(trainer, i):
    v = _vllm_layer(trainer, i)
    return {"qkv": v.self_attn.qkv_proj.weight, "o": v.self_attn.o_proj.weight,
            "gate_up": v.mlp.gate_up_proj.weight, "down": v.mlp.down_proj.weight}


def check(trainer):
    import torch

    from grpo_core.train.vllm_sync import install_fast_sync

    trl_sync = trainer.vllm_generation.sync_weights
    before = {k: v.clone() for k, v in _actual(trainer, 0).items()}
    training_weights = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    assert install_fast_sync(trainer) is None
    trainer.vllm_generation.sync_weights()
    for i in range(trainer.model.config.num_hidden_layers):
        exp, act = _expected(trainer, i), _actual(trainer, i)
        for k in exp:
            torch.testing.assert_close(act[k], exp[k], rtol=0, atol=0, msg=f"layer {i} {k}")
    assert not torch.equal(before["qkv"], _actual(trainer, 0)["qkv"]), "the sync changed nothing in vLLM"
    for n, p in trainer.model.named_parameters():
        assert torch.equal(p, training_weights[n]), f"{n} was modified"
    # TRL's own sync (in-place bf16 merge) lands on the same weights, up to bf16 rounding
    ours = {k: v.clone() for k, v in _actual(trainer, 0).items()}
    trl_sync()
    for k, v in _actual(trainer, 0).items():
        torch.testing.assert_close(v, ours[k], rtol=2e-2, atol=2e-3)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        check(make_trainer(tmp))
    print("SYNC CHECK PASSED")
