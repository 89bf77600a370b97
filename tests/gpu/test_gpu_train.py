"""GPU: `grpo-core run` on both backends, from the same CLI (run with `pytest -m gpu`).

Needs a CUDA GPU and the GPU stack (Unsloth, vLLM, TRL; see docs/gpu.md). The
model is a random-weight Qwen2.5-0.5B-shaped model built on the spot, so the
rewards are ~0: these tests prove the pipeline (load, generate with vLLM, score,
step, save), not learning.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model_05b(tmp_path_factory, cuda_gpu):
    from grpo_core.testing.modelgen import build_random_model

    return str(build_random_model(tmp_path_factory.mktemp("m") / "qwen05", "qwen2.5-0.5b"))


def _run_cli(args, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "grpo_core", "run", *args, "--output-dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=540)
    print(proc.stdout[-4000:])
    print(proc.stderr[-4000:], file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "run.json").read_text()), proc.stdout


COMMON = [
    "--dataset", "gsm8k:train", "--limit", "32", "--plugins", "xml,soft_format,strict_format,int,correctness",
    "--max-steps", "3", "--num-generations", "8", "--per-device-train-batch-size", "8",
    "--max-completion-length", "64", "--eval-limit", "0", "--lora-r", "16", "--gpu-memory-utilization", "0.25",
    "--set", "optim=adamw_8bit",
    "--probe", "0",  # random weights: the probe would (rightly) stop the run for lack of signal
]


def test_unsloth_backend_with_fast_inference(model_05b, tmp_path):
    info, out = _run_cli(["--model", model_05b, "--backend", "unsloth", "--fast-inference", *COMMON], tmp_path)
    assert info["backend"] == "unsloth" and info["status"] == "finished" and info["global_step"] == 3
    assert info["grpo_config"]["use_vllm"] is True
    assert "step 3/3" in out
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("spg", [1, 2])
def test_trl_backend_with_vllm_colocate(model_05b, tmp_path, spg):
    """spg 2: one vLLM round feeds two steps (grouped steps, per-chunk padding, old log-probs)."""
    info, out = _run_cli(["--model", model_05b, "--backend", "trl", "--set", "use_vllm=true", "--set", "vllm_mode=colocate",
                          *COMMON, "--set", f"steps_per_generation={spg}"], tmp_path)
    assert info["backend"] == "trl" and info["status"] == "finished" and info["global_step"] == 3
    assert info["grpo_config"]["use_vllm"] is True and info["grpo_config"]["vllm_mode"] == "colocate"
    assert "vLLM weight sync: grpo-core's" in out
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    steps = [h for h in json.loads((tmp_path / "log_history.json").read_text()) if "time/step_s" in h]
    assert len(steps) == 3 and all(h["time/step_s"] > 0 for h in steps)
    generated = [h for h in steps if h["time/generate_s"] > 0]
    assert len(generated) == (3 if spg == 1 else 2)  # steps 1 and 3 generate when a round feeds two steps


def test_auto_picks_unsloth_on_gpu():
    pytest.importorskip("unsloth")
    from grpo_core.config.settings import RunConfig
    from grpo_core.train.backends import choose_backend

    assert choose_backend(RunConfig(model="x/y"))[0].name == "unsloth"


def test_trl_colocate_with_the_speed_levers(model_05b, tmp_path):
    """skip_old_logps_pass, recompute_activations auto and a fused optimizer through the real vLLM path."""
    info, out = _run_cli(["--model", model_05b, "--backend", "trl", "--set", "use_vllm=true", "--set", "vllm_mode=colocate", *COMMON,
                          "--set", "skip_old_logps_pass=true", "--set", "recompute_activations=auto", "--set", "optim=adamw_torch_fused"], tmp_path)
    assert info["status"] == "finished" and info["global_step"] == 3
    assert "activations: kept (no recomputation) (recompute_activations auto:" in out
    assert info["grpo_config"]["gradient_checkpointing"] is False
    steps = [h for h in json.loads((tmp_path / "log_history.json").read_text()) if "time/step_s" in h]
    assert len(steps) == 3
    assert all(h["time/old_logps_s"] == 0 for h in steps)  # TRL's separate pass never ran
    ratios = [h["sampling/importance_sampling_ratio/mean"] for h in steps]
    assert all(math.isfinite(r) and 0 <= r <= 3.0 for r in ratios)  # from the training pass, not the NaN placeholder


def test_auto_picks_trl_colocate_for_a_local_16bit_model_that_fits(model_05b):
    pytest.importorskip("unsloth")
    pytest.importorskip("vllm")
    from grpo_core.config.settings import RunConfig
    from grpo_core.train.backends import choose_backend

    backend, why = choose_backend(RunConfig(model=model_05b, gpu_memory_utilization=0.25))
    assert backend.name == "trl" and "faster than Unsloth" in why
    assert choose_backend(RunConfig(model=model_05b, auto_prefers="memory"))[0].name == "unsloth"


@pytest.mark.parametrize("backend", ["unsloth", "trl"])
def test_dynamic_sampling_and_mismatch_correction_on_both_backends(model_05b, tmp_path, backend):
    """The generation hook both backends share: tied groups dropped/refilled, truncated IS on, mismatch logged."""
    if backend == "unsloth":
        pytest.importorskip("unsloth")
    args = ["--model", model_05b, "--backend", backend, *COMMON, "--dynamic-sampling", "--set", "dynamic_sampling_max_rounds=1"]
    args += ["--fast-inference"] if backend == "unsloth" else ["--set", "use_vllm=true", "--set", "vllm_mode=colocate"]
    info, out = _run_cli(args, tmp_path)
    assert info["status"] == "finished" and info["global_step"] == 3
    assert info["grpo_config"]["vllm_importance_sampling_correction"] is True
    assert info["grpo_config"]["vllm_importance_sampling_mode"] == "token_truncate"
    assert "mismatch correction: token_truncate" in out, out[-3000:]
    history = [h for h in json.loads((tmp_path / "log_history.json").read_text()) if "loss" in h]
    assert all("dynamic_sampling/dropped_groups" in h for h in history)
    assert all("mismatch/logp_diff_mean" in h for h in history), history[-1]
