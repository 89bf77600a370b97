"""grpo-core's vLLM weight sync, checked on CPU against PEFT's own merge (no vLLM needed)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
peft = pytest.importorskip("peft")

from tiny_models import build_tiny_qwen2  # noqa: E402

from grpo_core.train.vllm_sync import changing_weights, install_fast_sync, why_not_fast  # noqa: E402

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_qwen2(tmp_path_factory.mktemp("m") / "tiny")


def lora_model(model_dir, dtype=torch.float32, targets=SEVEN):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets, task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)  # B starts at zero; make the adapter do something
    return model


def test_streamed_weights_equal_peft_merge_and_leave_training_weights_alone(model_dir):
    model = lora_model(model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    streamed = dict(changing_weights(model))
    # exactly the seven projections of every layer, under the names vLLM's load_weights expects
    layers = model.config.num_hidden_layers
    assert len(streamed) == 7 * layers
    assert all(k.startswith("model.layers.") and k.endswith("_proj.weight") for k in streamed)
    assert not any("lora" in k or "base_layer" in k for k in streamed)
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    for name, w in streamed.items():
        torch.testing.assert_close(w, merged[name], rtol=1e-5, atol=1e-6)
        base_name = "base_model.model." + name.replace(".weight", ".base_layer.weight")
        assert not torch.equal(w, before[base_name]), f"{name}: the adapter was not merged in"
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"{n} was modified by the sync"


def test_bf16_weights_are_merged_in_float32_then_cast(model_dir):
    model = lora_model(model_dir, dtype=torch.bfloat16)
    name, w = next(iter(changing_weights(model)))
    assert w.dtype == torch.bfloat16
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    exact = layer.base_layer.weight.float() + layer.get_delta_weight("default").float()
    assert torch.equal(w, exact.to(torch.bfloat16))


def test_trainable_non_lora_parameters_are_sent_too(model_dir):
    model = lora_model(model_dir, targets=["q_proj"])
    model.base_model.model.model.norm.weight.requires_grad_(True)
    names = [n for n, _ in changing_weights(model)]
    assert "model.norm.weight" in names
    assert sum(n.endswith("q_proj.weight") for n in names) == model.config.num_hidden_layers
    assert not any("k_proj" in n or "embed" in n for n in names)


class FakeVLLMModel:
    def __init__(self):
        self.calls = []

    def load_weights(self, weights):
        self.calls.append([(n, t.clone()) for n, t in weights])  # consumes the stream like vLLM does


def fake_trainer(model, **gen_overrides):
    vmodel = FakeVLLMModel()
    llm = SimpleNamespace(
        llm_engine=SimpleNamespace(model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=vmodel)))),
        reset_prefix_cache=lambda: setattr(llm, "reset", True),
    )
    gen = SimpleNamespace(mode="colocate", enable_sleep_mode=False, _dist=SimpleNamespace(is_fsdp=False, is_deepspeed=False), llm=llm,
                          sync_weights=lambda: pytest.fail("TRL's sync was called"))
    vars(gen).update(gen_overrides)
    trainer = SimpleNamespace(use_vllm=True, vllm_generation=gen, model=model, accelerator=SimpleNamespace(unwrap_model=lambda m: m))
    return trainer, vmodel, llm


def test_installed_sync_makes_one_load_call_and_resets_the_prefix_cache(model_dir):
    model = lora_model(model_dir)
    trainer, vmodel, llm = fake_trainer(model)
    assert install_fast_sync(trainer) is None
    trainer.vllm_generation.sync_weights()
    assert len(vmodel.calls) == 1 and len(vmodel.calls[0]) == 7 * model.config.num_hidden_layers
    assert getattr(llm, "reset", False)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"mode": "server"}, "server mode"),
        ({"enable_sleep_mode": True}, "sleep mode"),
        ({"_dist": SimpleNamespace(is_fsdp=True, is_deepspeed=False)}, "FSDP"),
    ],
)
def test_unsupported_setups_keep_trls_sync_and_say_why(model_dir, overrides, reason):
    trainer, _, _ = fake_trainer(lora_model(model_dir), **overrides)
    original = trainer.vllm_generation.sync_weights
    assert reason in install_fast_sync(trainer)
    assert trainer.vllm_generation.sync_weights is original


def test_full_finetune_and_no_vllm_are_refused(model_dir):
    from transformers import AutoModelForCausalLM

    trainer, _, _ = fake_trainer(AutoModelForCausalLM.from_pretrained(model_dir))
    assert why_not_fast(trainer) == "not a LoRA model"
    trainer.use_vllm = False
    assert why_not_fast(trainer) == "vLLM is not used"
