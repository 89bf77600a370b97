"""Sizing vLLM's engine before anything loads (grpo_core.train.memory_plan); the runner's use of it is in test_train_cpu.py."""

from __future__ import annotations

import pytest

from grpo_core.errors import PreflightError
from grpo_core.train.memory_plan import GIB, Shapes, activation_bytes_per_token, auto_fraction, check_fraction, keep_activations, vllm_need
from grpo_core.testing.modelgen import SHAPES

H200 = int(139.8 * GIB)
H100 = int(79.6 * GIB)


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


def need_3b(**kw):
    """The measured run: Qwen2.5-3B bf16, 8 prompts x 8 completions, longest prompt 161 tokens + 200 completion tokens."""
    return vllm_need(shapes("qwen2.5-3b"), **{"sequences": 64, "max_len": 1024, "round_len": 161 + 200, "load_in_4bit": False, **kw})


def test_4bit_weights_are_about_a_third():
    full, nf4 = need_3b().weights, need_3b(load_in_4bit=True).weights
    assert 5.7 < full / GIB < 5.8 and 0.3 < nf4 / full < 0.4


def test_a_round_holds_its_longest_sequence_and_the_floor_the_engine_length():
    per_token = shapes("qwen2.5-3b").kv_bytes_per_token()
    need = need_3b()
    assert need.kv_round == 64 * 361 * per_token  # 0.79 GiB, not 64 x 1024 tokens (2.25 GiB)
    assert need.kv_one_sequence == 1024 * per_token and need.floor == need.weights + 1024 * per_token
    assert need.comfortable == need.weights + need.kv_round + GIB  # the allowance: 1.0 GiB
    # vLLM's own start check, as measured through raw TRL (model length 32768): "1.12 GiB KV cache is needed"
    trl = need_3b(max_len=32768)
    assert round(trl.kv_one_sequence / GIB, 2) == 1.12 and trl.kv_round == need.kv_round
    # a round can never hold more than the engine's model length
    assert need_3b(round_len=5000).kv_round == 64 * 1024 * per_token


def test_a_fraction_below_weights_plus_one_sequence_is_refused_with_the_fix():
    with pytest.raises(PreflightError) as err:
        check_fraction(need_3b(), 0.03, H200)
    msg = str(err.value)
    assert "0.03 gives vLLM 4.2 GiB" in msg and "weights (5.7 GiB)" in msg
    assert "--gpu-memory-utilization 0.06 (what auto picks) to hold a whole round (at least 0.041 to start)" in msg


def test_a_model_no_fraction_can_hold_is_refused_without_suggesting_one():
    with pytest.raises(PreflightError, match="cannot hold them at any fraction: use --load-in-4bit"):
        check_fraction(need_3b(), 1.0, 4 * GIB)


def test_a_tight_fraction_warns_and_a_roomy_one_is_quiet():
    # floor 5.78 GiB (0.041 of an H200); comfortable 5.75 + 0.79 + 1.0 = 7.54 GiB (0.054)
    line, warning = check_fraction(need_3b(), 0.045, H200)
    assert "smallest fraction that starts: 0.041" in line and "~1.0 GiB for CUDA graphs and buffers: 0.054)" in line
    assert warning and "0.06 would hold it (what --gpu-memory-utilization auto picks)" in warning
    line, warning = check_fraction(need_3b(), 0.06, H200)
    assert warning is None and "0.06 x 139.8 GiB = 8.4 GiB for weights 5.7 GiB + KV cache 0.79 GiB for a whole round" in line


def test_auto_picks_the_comfortable_share_rounded_up_to_a_hundredth():
    # 3B bf16 on an H200: (5.75 + 0.79 + 1.0) / 139.8 = 0.054 -> 0.06 (fraction 0.05 was measured to run)
    assert auto_fraction(need_3b(), H200) == 0.06
    # the same need on an H100's 79.6 GiB: 7.54 / 79.6 = 0.095 -> 0.1
    assert auto_fraction(need_3b(), H100) == 0.1
    # 4-bit: (1.95 + 0.79 + 1.0) GiB -> 0.027 -> 0.03 of an H200, 0.047 -> 0.05 of an H100
    assert (auto_fraction(need_3b(load_in_4bit=True), H200), auto_fraction(need_3b(load_in_4bit=True), H100)) == (0.03, 0.05)
    # never below what it rounds, never above the whole GPU
    for need, total in ((need_3b(), H200), (need_3b(), H100), (need_3b(load_in_4bit=True), H200)):
        assert auto_fraction(need, total) * total >= need.comfortable > (auto_fraction(need, total) - 0.01) * total
    assert auto_fraction(need_3b(), 4 * GIB) == 1.0


def test_an_auto_fraction_says_so_and_does_not_warn():
    line, warning = check_fraction(need_3b(), 0.06, H200, auto=True)
    assert warning is None and line.startswith("vLLM memory: 0.06 x 139.8 GiB = 8.4 GiB")
    assert line.endswith("; 0.06 chosen automatically (gpu_memory_utilization auto) from those 7.54 GiB of weights, "
                         "a round's KV and the allowance, rounded up to the next 0.01")
    assert "chosen automatically" not in check_fraction(need_3b(), 0.06, H200)[0]


def test_activation_estimate_is_an_upper_bound_near_the_measured_3b_figure():
    # the H200 run of 2026-11-21 14:39: ~110 KB per token and layer at Qwen2.5-3B's shapes, LoRA r=64
    per_token_layer = activation_bytes_per_token(shapes("qwen2.5-3b"), 64) / 36
    assert 110_000 <= per_token_layer <= 160_000


def test_activations_are_kept_when_they_fit_beside_vllm_and_the_weights():
    s3b = shapes("qwen2.5-3b")
    # 8 rows x 1024 tokens: ~41 GiB of activations; an H200 at vLLM fraction 0.1 leaves ~101 GiB
    keep, why = keep_activations(s3b, rows=8, max_len=1024, completion_len=200, lora_r=64, vllm_fraction=0.1, total_bytes=H200, load_in_4bit=False)
    assert keep and "fit in" in why and "8 × 1024 tokens" in why
    # the same on an H100 at fraction 0.5: ~22 GiB left -> recompute
    keep, why = keep_activations(s3b, rows=8, max_len=1024, completion_len=200, lora_r=64, vllm_fraction=0.5, total_bytes=H100, load_in_4bit=False)
    assert not keep and "exceed" in why
    # more rows need more room
    assert not keep_activations(s3b, rows=64, max_len=1024, completion_len=200, lora_r=64, vllm_fraction=0.1, total_bytes=H200, load_in_4bit=False)[0]
