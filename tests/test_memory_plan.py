"""Sizing vLLM's engine before anything loads (grpo_core.memory_plan); the runner's use of it is in test_train_cpu.py."""

from __future__ import annotations

import pytest

from grpo_core.errors import PreflightError
from grpo_core.memory_plan import GIB, Shapes, check_fraction, vllm_need
from grpo_core.modelgen import SHAPES

H200 = int(139.8 * GIB)


def shapes(name: str) -> Shapes:
    return Shapes.from_config(SHAPES[name])


def test_parameter_counts_match_the_published_sizes():
    # Qwen2.5-3B: 3.09B parameters, 0.49B for 0.5B (q/k/v biases are the small remainder)
    for name, published in (("qwen2.5-3b", 3.09e9), ("qwen2.5-0.5b", 0.494e9)):
        s = shapes(name)
        assert abs(s.linear_params() + s.other_params() - published) / published < 0.01
    # KV cache: 2 (K, V) x 36 layers x 2 KV heads x 128 dims x 2 bytes
    assert shapes("qwen2.5-3b").kv_bytes_per_token() == 36_864


def test_a_config_without_the_sizes_says_which_is_missing():
    with pytest.raises(ValueError, match="lacks 'intermediate_size'"):
        Shapes.from_config({"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 10})


def test_4bit_weights_are_about_a_third():
    full = vllm_need(shapes("qwen2.5-3b"), sequences=8, max_len=1024, load_in_4bit=False).weights
    nf4 = vllm_need(shapes("qwen2.5-3b"), sequences=8, max_len=1024, load_in_4bit=True).weights
    assert 5.7 < full / GIB < 5.8 and 0.3 < nf4 / full < 0.4


def test_a_fraction_below_weights_plus_one_sequence_is_refused_with_the_fix():
    need = vllm_need(shapes("qwen2.5-3b"), sequences=64, max_len=1024, load_in_4bit=False)
    with pytest.raises(PreflightError) as err:
        check_fraction(need, 0.03, H200)
    msg = str(err.value)
    assert "0.03 gives vLLM 4.2 GiB" in msg and "weights (5.7 GiB)" in msg and "--gpu-memory-utilization 0.1 or more" in msg


def test_a_tight_fraction_warns_and_a_roomy_one_is_quiet():
    need = vllm_need(shapes("qwen2.5-3b"), sequences=64, max_len=1024, load_in_4bit=False)
    line, warning = check_fraction(need, 0.045, H200)  # above the floor (5.8 GiB), below weights + round + allowance
    assert "smallest fraction that starts: 0.041" in line and warning and "0.1 would hold it" in warning
    line, warning = check_fraction(need, 0.1, H200)
    assert warning is None and "0.1 x 139.8 GiB = 14.0 GiB for weights 5.7 GiB + KV cache 2.25 GiB for a whole round" in line
