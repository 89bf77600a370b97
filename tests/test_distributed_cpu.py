"""Two processes under torchrun (gloo, on CPU): the same code path `accelerate launch` takes on several GPUs.

Every rank runs `grpo-core run`; the batch arithmetic counts both processes, one rank talks and
writes, DDP skips its unused-parameter search (LoRA uses every adapter), and the adapter is saved once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_two_processes_train_one_run(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.fail("torchrun is missing; it comes with torch")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29731", "-m", "grpo_core", "run",
           "--max-steps", "2", "--eval-limit", "0", "--threads", "1", "--per-device-train-batch-size", "16",
           "--limit", "200", "--output-dir", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = proc.stdout
    # the batch counts both processes: 16 completions each = 32 per round = 4 prompts x 8
    assert "4 prompt(s) x 8 generations = 32 completions per generation round" in text
    # one rank talks: each message once
    assert text.count("step 2/2 |") == 1, text
    assert text.count("saved adapter to") == 1 and text.count("training: 2 steps") == 1
    assert "find_unused_parameters=True" not in proc.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "finished" and info["global_step"] == 2
    assert info["grpo_config"]["ddp_find_unused_parameters"] is False
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "tokenizer_config.json").is_file()
