"""vllm_engine_kwargs reach the LLM(...) TRL builds in colocate mode (vLLM itself is faked: CPU only)."""

from __future__ import annotations

import importlib

import pytest

from grpo_core.config.settings import build_config
from grpo_core.errors import ConfigError
from grpo_core.train.vllm_engine import TRL_GENERATION_MODULE, extra_engine_kwargs


def test_extra_arguments_reach_the_engine_and_override_trls(monkeypatch):
    module = importlib.import_module(TRL_GENERATION_MODULE)
    made = []

    def fake_llm(**kwargs):
        made.append(kwargs)
        return "engine"

    monkeypatch.setattr(module, "LLM", fake_llm, raising=False)
    said: list[str] = []
    with extra_engine_kwargs({"enforce_eager": True, "kv_cache_dtype": "fp8"}, echo=said.append):
        # what TRL's colocate generator does: look the name up in its module and call it
        assert module.LLM(model="m", enforce_eager=False, max_num_batched_tokens=4096) == "engine"
    assert made == [{"model": "m", "enforce_eager": True, "max_num_batched_tokens": 4096, "kv_cache_dtype": "fp8"}]
    assert said == ["vLLM engine: enforce_eager=True, kv_cache_dtype='fp8' (overriding TRL's enforce_eager)"]
    assert module.LLM is fake_llm  # restored


def test_nothing_is_wrapped_without_extra_arguments(monkeypatch):
    module = importlib.import_module(TRL_GENERATION_MODULE)
    sentinel = object()
    monkeypatch.setattr(module, "LLM", sentinel, raising=False)
    with extra_engine_kwargs(None):
        assert module.LLM is sentinel


def test_the_setting_is_a_mapping():
    cfg = build_config(sets=["vllm_engine_kwargs={enforce_eager: true, max_num_seqs: 64}"])
    assert cfg.vllm_engine_kwargs == {"enforce_eager": True, "max_num_seqs": 64}
    with pytest.raises(ConfigError, match="vllm_engine_kwargs must be a mapping"):
        build_config(sets=["vllm_engine_kwargs=eager"]).validate(check_grpo_fields=False)
