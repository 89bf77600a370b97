"""GPU: the judge reward against vLLM's OpenAI-compatible server, beside a training run (`pytest -m gpu`).

The judge is a random-weight Qwen2.5-0.5B-shaped model (no download) served by
``python -m vllm.entrypoints.openai.api_server`` on the same GPU as the training run; its
replies are constrained to the score schema (``response_format=json_schema``), so replies
parse although the weights are random (one that runs out of tokens abstains as unparseable). Two measurements, written to
``benchmarks/results/``:

* ``judge-vllm-h200.json``: requests/s and p50/p99 latency at concurrency 8, 32 and 128
  (``benchmarks/judge.py`` against the server, no training);
* ``judge-vllm-h200-train.json``: a 4-step ``grpo-core run`` (trl backend, vLLM colocate)
  with ``xml,judge_score``: the judge's calls and latency from run.json, and the share of
  each step spent in the reward stage (``time/rewards_s`` / ``time/step_s``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory, cuda_gpu):
    from grpo_core.testing.modelgen import build_random_model

    return str(build_random_model(tmp_path_factory.mktemp("judge") / "qwen05", "qwen2.5-0.5b"))


@pytest.fixture(scope="module")
def vllm_judge(judge_model, tmp_path_factory):
    from grpo_rewards_judge.local_server import free_port

    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", judge_model, "--served-model-name", "judge",
           "--host", "127.0.0.1", "--port", str(port), "--gpu-memory-utilization", "0.25", "--max-model-len", "4096"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as res:
                if res.status == 200:
                    break
        except OSError:
            time.sleep(2)
    else:
        proc.kill()
        pytest.fail("vLLM's server did not start within 600 s:\n" + log.read_text(errors="replace")[-4000:])
    yield url
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_judge_throughput_against_vllm(vllm_judge):
    out = RESULTS / "judge-vllm-h200.json"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "judge.py"), "--base-url", vllm_judge, "--model", "judge",
                          "--response-format", "json_schema", "--n", "1024", "--batch", "64", "--concurrency", "8", "32", "128",
                          "--out", str(out)], capture_output=True, text=True, timeout=900)
    print(res.stdout, res.stderr[-3000:])
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    for row in rows:
        assert row["requests"] == 1024, row
        # random weights: a reply may run out of tokens inside the schema (unparseable), but the server never fails
        assert all(r.startswith("unparseable") for r in row["abstain_reasons"]), row
        assert row["cached"]["requests"] == 0 and row["cached"]["cache_hits"] == 1024


def test_judge_beside_a_training_run(vllm_judge, tmp_path):
    from grpo_core.testing.modelgen import build_random_model

    policy = str(build_random_model(tmp_path / "policy", "qwen2.5-0.5b"))
    cmd = [sys.executable, "-m", "grpo_core", "run", "--model", policy, "--backend", "trl", "--set", "use_vllm=true",
           "--set", "vllm_mode=colocate", "--gpu-memory-utilization", "0.25", "--dataset", "gsm8k:train", "--limit", "64",
           "--plugins", "xml,judge_score", "--max-steps", "4", "--num-generations", "8", "--per-device-train-batch-size", "64",
           "--max-completion-length", "128", "--eval-limit", "0", "--set", "logging_steps=1", "--output-dir", str(tmp_path / "run"),
           "--set", f"reward_options.judge_score.base_url={vllm_judge}", "--set", "reward_options.judge_score.model=judge",
           "--set", "reward_options.judge_score.concurrency=64", "--set", "reward_options.judge_score.cache=off"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    judge = info["reward_metrics"]["judge_score"]
    assert judge["calls"] >= 4 * 64 and all(r.startswith("unparseable") for r in judge["abstain_reasons"]), judge
    history = [h for h in json.loads((tmp_path / "run" / "log_history.json").read_text()) if "time/step_s" in h]
    steps = history[1:] or history  # the first step includes compilation and warm-up
    share = sum(h["time/rewards_s"] for h in steps) / sum(h["time/step_s"] for h in steps)
    result = {"benchmark": "judge beside training", "date": time.strftime("%Y-%m-%d"), "gpu": "H200",
              "judge": "random-weight Qwen2.5-0.5B shape, vLLM server, gpu-memory-utilization 0.25",
              "policy": "random-weight Qwen2.5-0.5B shape, trl backend, vLLM colocate", "batch": 64, "concurrency": 64,
              "judge_metrics": judge, "reward_share_of_step": share,
              "step_s": [h["time/step_s"] for h in history], "rewards_s": [h["time/rewards_s"] for h in history]}
    (RESULTS / "judge-vllm-h200-train.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"judge: {judge['calls']:g} calls, p50 {judge['latency_p50_ms']:.0f} ms, p99 {judge['latency_p99_ms']:.0f} ms; "
          f"reward stage {share:.1%} of the step")
