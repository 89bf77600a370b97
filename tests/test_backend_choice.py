"""What ``--backend auto`` picks on a GPU, and whether the trl backend recomputes activations
(grpo_core.train.backends), with the GPU, Unsloth and vLLM simulated: only the decisions are under test."""

from __future__ import annotations

import json

import pytest

from grpo_core.config.settings import build_config
from grpo_core.errors import ConfigError
from grpo_core.testing.modelgen import SHAPES
from grpo_core.train import backends
from grpo_core.train.backends import trl as trl_backend
from grpo_core.train.backends import unsloth as unsloth_backend
from grpo_core.train.memory_plan import GIB

H200, L4 = int(139.8 * GIB), int(22.5 * GIB)


@pytest.fixture
def gpu(monkeypatch):
    """A CUDA GPU of a given size with Unsloth and vLLM installed."""
    monkeypatch.setattr(unsloth_backend, "cuda_available", lambda: True)
    monkeypatch.setattr(unsloth_backend, "_installed", lambda: True)
    monkeypatch.setattr(trl_backend, "_vllm_installed", lambda: True)

    def size(total):
        monkeypatch.setattr(trl_backend, "gpu_total_bytes", lambda: total)

    size(H200)
    return size


@pytest.fixture
def model_3b(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SHAPES["qwen2.5-3b"]))
    return str(tmp_path)


def cfg(model, *sets, **flags):
    return build_config(flags={"model": model, **flags}, sets=list(sets))


def test_auto_takes_trl_colocate_for_a_16bit_model_that_fits_and_says_why(gpu, model_3b):
    backend, why = backends.choose_backend(cfg(model_3b, gpu_memory_utilization=0.3))
    assert backend.name == "trl"
    assert "faster than Unsloth" in why and "auto_prefers=memory" in why


def test_auto_keeps_unsloth_when_memory_is_preferred_short_or_the_model_4bit(gpu, model_3b):
    assert backends.choose_backend(cfg(model_3b, "auto_prefers=memory"))[0].name == "unsloth"
    backend, why = backends.choose_backend(cfg(model_3b, load_in_4bit=True))
    assert backend.name == "unsloth" and "4-bit" in why
    gpu(L4)  # 0.5 x 22.5 GiB for vLLM, 5.7 GiB of weights again beside it, and the activations: too much
    backend, why = backends.choose_backend(cfg(model_3b, gpu_memory_utilization=0.5))
    assert backend.name == "unsloth" and "second 16-bit weight copy" in why and "Unsloth shares one" in why


def test_auto_keeps_unsloth_for_a_hub_model_it_cannot_size(gpu):
    backend, why = backends.choose_backend(cfg("Qwen/Qwen2.5-3B-Instruct"))
    assert backend.name == "unsloth" and "cannot be sized" in why


def test_an_unknown_preference_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="speed, memory"):
        build_config(sets=["auto_prefers=fast"]).validate(check_grpo_fields=False)


def test_recomputation_follows_the_setting_and_auto_the_memory(gpu, model_3b):
    assert trl_backend.recompute_activations(cfg(model_3b), model_3b) == (True, "recompute_activations true")
    assert trl_backend.recompute_activations(cfg(model_3b, "recompute_activations=false"), model_3b)[0] is False
    recompute, why = trl_backend.recompute_activations(cfg(model_3b, "recompute_activations=auto", gpu_memory_utilization=0.1), model_3b)
    assert recompute is False and "fit in" in why
    gpu(L4)
    recompute, why = trl_backend.recompute_activations(cfg(model_3b, "recompute_activations=auto", gpu_memory_utilization=0.1), model_3b)
    assert recompute is True and "exceed" in why
    with pytest.raises(ConfigError, match="recompute_activations must be true or false, or one of auto"):
        cfg(model_3b, "recompute_activations=sometimes").validate(check_grpo_fields=False)


def test_fsdp_on_cpu_is_named_as_ignored(monkeypatch):
    """accelerate 1.15 builds FSDP only for GPU-type devices: on CPU the setting would vanish without a word."""
    pytest.importorskip("torch")
    from grpo_core.runtime.hardware import BUNDLED_MODEL

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    plain = trl_backend.TrlBackend().load_policy(build_config(flags={}), str(BUNDLED_MODEL))
    sharded = trl_backend.TrlBackend().load_policy(build_config(sets=["fsdp=full_shard"]), str(BUNDLED_MODEL))
    assert not any(n.startswith("fsdp:") for n in plain.notes)
    assert any(n.startswith("fsdp: ignored on CPU") for n in sharded.notes)
