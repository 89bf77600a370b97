"""The embedded default learns: a shortened tiny-cpu run must raise held-out accuracy.

The full recipe (100 steps) gains about +40 points (benchmarks/demo_learning.py,
docs/tiny-reasoner.md); 20 steps gained about +24 when measured. The margin
asserted here is looser so that only a real regression in learning fails it.
"""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_shortened_tiny_cpu_run_improves_held_out_accuracy(tmp_path, plugin_state):
    """With grpo-core alone: ``plugin_state`` loads the built-ins only (no grpo-rewards-math)."""
    from grpo_core.config.tiny_recipe import TINY_CPU_SMOKE_OVERRIDES
    from grpo_core.config.settings import build_config
    from grpo_core.train.runner import run

    flags = {
        "output_dir": str(tmp_path / "run"),
        "report": False,
        "seed": 0,
        "threads": 1,  # one thread: never slower here, and immune to a busy second core
        "eval_limit": TINY_CPU_SMOKE_OVERRIDES["eval_limit"],
        "max_steps": TINY_CPU_SMOKE_OVERRIDES["grpo"]["max_steps"],
    }
    cfg = build_config(preset="tiny-cpu", flags=flags)
    info = run(cfg, echo=lambda s: None)
    assert [r["distribution"] for r in info["rewards"]] == ["grpo-core"] * 4, info["rewards"]
    ev = info["evaluation"]
    before, after = ev["before"], ev["after"]
    assert 0.35 <= before["accuracy"] <= 0.75, before
    assert after["format_rate"] >= 0.95, after
    assert ev["accuracy_delta"] >= 0.08, ev
