"""The end-to-end promise of an unattended run: kill it with SIGKILL mid-training, resume it with
``--resume`` alone, and get the adapter an uninterrupted run gets, with run.json and report.md complete.

Real ``grpo-core run`` processes on the bundled tiny reasoner and arithmetic task, on CPU, saving every
step; the trainer's checkpoint carries the optimizer, the schedule, the RNG states and the data order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grpo_core.run_folder import last_checkpoint

torch = pytest.importorskip("torch")

STEPS = 4
ARGS = ["run", "--max-steps", str(STEPS), "--limit", "16", "--num-generations", "4", "--per-device-train-batch-size", "8",
        "--max-completion-length", "24", "--eval-limit", "4", "--threads", "1", "--plugins", "xml,soft_format,correctness",
        "--set", "save_steps=1", "--set", "save_total_limit=10"]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GRPO_CORE_LOAD_PLUGINS"}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _grpo_core(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grpo_core", *args], capture_output=True, text=True, env=_env(), timeout=timeout)


def _adapter(run_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    res = _grpo_core(*ARGS, "--output-dir", str(out))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("killed") / "run"
    proc = subprocess.Popen([sys.executable, "-m", "grpo_core", *ARGS, "--output-dir", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    deadline = time.monotonic() + 300
    try:
        while last_checkpoint(out) is None:  # the first complete checkpoint: training is under way
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    at_kill = json.loads((out / "run.json").read_text())
    assert at_kill["status"] == "running"
    assert int(last_checkpoint(out).rsplit("-", 1)[1]) < STEPS, "the run finished before it was killed"
    resumed = _grpo_core("run", "--output-dir", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    return out, at_kill, resumed


def test_resumed_run_says_it_continues_a_run_that_died(killed_and_resumed):
    _, _, resumed = killed_and_resumed
    assert "is died at step" in resumed.stdout and "continuing from" in resumed.stdout


def test_killed_and_resumed_run_trains_the_same_adapter(uninterrupted, killed_and_resumed):
    whole, (resumed_dir, _, _) = _adapter(uninterrupted), killed_and_resumed
    resumed = _adapter(resumed_dir)
    assert sorted(whole) == sorted(resumed)
    assert any(v.abs().sum() > 0 for k, v in whole.items() if "lora_B" in k)  # it trained at all
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def test_resumed_run_json_is_complete(uninterrupted, killed_and_resumed):
    out, at_kill, _ = killed_and_resumed
    info = json.loads((out / "run.json").read_text())
    whole = json.loads((uninterrupted / "run.json").read_text())
    assert info["status"] == "finished" and info["global_step"] == STEPS
    assert info["started"] == at_kill["started"]
    assert info["evaluation"]["before"] == whole["evaluation"]["before"]
    assert set(info["evaluation"]) == set(whole["evaluation"]) >= {"dataset", "before", "after", "accuracy_delta"}
    assert [r["previous_status"] for r in info["resumes"]] == ["died"]
    assert info["config"] == whole["config"] | {"output_dir": str(out)}
    assert (out / "adapter" / "run.json").read_text() == (out / "run.json").read_text()


def test_resumed_report_is_complete(killed_and_resumed):
    out, _, _ = killed_and_resumed
    report = (out / "report.md").read_text()
    assert f"steps: {STEPS}, status: finished" in report
    assert "| base |" in report and "| after GRPO |" in report  # the before and after evaluations (STAGE_LABELS)
    history = json.loads((out / "log_history.json").read_text())
    assert [h["step"] for h in history if "reward" in h] == list(range(1, STEPS + 1))


def test_model_cards_are_grpo_cores_own(killed_and_resumed):
    out, _, _ = killed_and_resumed
    for card in (out / "README.md", out / "adapter" / "README.md"):
        text = card.read_text()
        assert "fine-tuned version of" not in text and "[None]" not in text and "More Information Needed" not in text
        assert text.startswith("---\nbase_model: bundled:tiny-reasoner") and f"for {STEPS} steps (finished)" in text
        assert "| after |" in text and "Training provenance (grpo-core)" in text
