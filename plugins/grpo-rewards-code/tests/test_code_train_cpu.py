"""Two GRPO steps on CPU with the bundled tiny model, rewarded by code_format + code_tests.

The tiny reasoner writes arithmetic, not Python, so its replies earn nothing here;
what this proves is the wiring: the rewards run inside ``grpo-core run``, the
pre-flight smoke test runs the reference solutions through the sandbox (1.0),
and the per-reward metrics are logged without errors or timeouts.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from grpo_core.config.settings import build_config  # noqa: E402


def test_two_steps_with_code_rewards(tmp_path):
    from grpo_core.train.runner import run

    flags = {
        "dataset": "tiny_functions:train",
        "plugins": "code_format,code_tests",
        "output_dir": str(tmp_path / "run"),
        "report": False,
        "limit": 16,
        "eval_limit": 0,
        "threads": 1,
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "max_completion_length": 16,
        "max_steps": 2,
        "save_steps": 2,
    }
    lines: list[str] = []
    info = run(build_config(preset="tiny-cpu", flags=flags), echo=lines.append)
    assert info["status"] == "finished" and info["global_step"] == 2
    assert "rewards on gold-formatted answers: code_format 1.00, code_tests 1.00" in "\n".join(lines)
    steps = [h for h in json.loads((tmp_path / "run" / "log_history.json").read_text()) if "reward" in h]
    assert len(steps) == 2
    for h in steps:
        for name in ("code_format", "code_tests"):
            assert h[f"rewards/{name}/errors"] == 0 and h[f"rewards/{name}/timeouts"] == 0, h
            assert h[f"rewards/{name}/none_frac"] == 0
    totals = info["reward_totals"]
    assert totals["code_tests"]["samples"] == 16 and totals["code_tests"]["errors"] == 0
