"""GPU, 2 GPUs: `grpo-core launch` in layout (a) (two ranks, each with colocated vLLM) and layout (b) (one rank, TRL's
vLLM server on the second GPU), on a random-weight Qwen2.5-0.5B-shaped model (run with `pytest -m gpu`).

They prove the launch (config, server start and health wait, ranks, weight sync to the server, clean stop), not
learning. Skipped by CI (no GPU); a machine with fewer than 2 GPUs fails them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def model_05b(tmp_path_factory, cuda_gpu):
    if cuda_gpu.cuda.device_count() < 2:
        pytest.fail("the launch GPU tests need 2 GPUs (nvidia-h200-x2)")
    from grpo_core.testing.modelgen import build_random_model

    return str(build_random_model(tmp_path_factory.mktemp("m") / "qwen05", "qwen2.5-0.5b"))


RUN = ["--backend", "trl", "--dataset", "gsm8k:train", "--limit", "64", "--plugins", "xml,soft_format,strict_format,int,correctness",
       "--max-steps", "3", "--num-generations", "8", "--per-device-train-batch-size", "8", "--max-completion-length", "64",
       "--eval-limit", "0", "--probe", "0", "--gpu-memory-utilization", "0.25"]


def _launch(args, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "grpo_core", "launch", *args, "--output-dir", str(out)],
                          capture_output=True, text=True, env=env, timeout=560)
    print(proc.stdout[-4000:])
    print(proc.stderr[-6000:], file=sys.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "run.json").read_text()), proc


def test_layout_a_two_ranks_with_colocated_vllm(model_05b, tmp_path):
    info, proc = _launch(["--gpus", "2", "--", "--model", model_05b, *RUN], tmp_path)
    assert info["world_size"] == 2 and info["status"] == "finished" and info["global_step"] == 3
    assert info["grpo_config"]["use_vllm"] is True and info["grpo_config"]["vllm_mode"] == "colocate"
    assert "16 completions per optimizer step" in proc.stdout  # both ranks' 8


def test_layout_b_one_rank_and_a_vllm_server(model_05b, tmp_path):
    port = 8765
    info, proc = _launch(["--gpus", "2", "--vllm-gpus", "1", "--vllm-port", str(port), "--vllm-gpu-memory-utilization", "0.3",
                          "--", "--model", model_05b, *RUN], tmp_path)
    assert info["world_size"] == 1 and info["status"] == "finished" and info["global_step"] == 3
    assert info["grpo_config"]["vllm_mode"] == "server" and info["grpo_config"]["vllm_server_port"] == port
    assert "the vLLM server answers" in proc.stderr and f"vLLM server: http://127.0.0.1:{port}" in proc.stdout
    assert (tmp_path / "vllm_server.log").is_file()
    # the server was stopped: nothing listens on its port any more
    assert not any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp"))
