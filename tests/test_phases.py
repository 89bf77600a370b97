"""PhaseClock: TRL's profiling contexts and step boundaries become per-step phase times."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("trl")
from trl.extras.profiling import ProfilingContext  # noqa: E402

from grpo_core.train.phases import PhaseClock  # noqa: E402


def ctx(name):
    return ProfilingContext(name=f"SomeGRPOTrainer.{name}", report_to=[])


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def fake_step(clock, logps_inside_prepare=True):
    with ctx("_prepare_inputs"):
        with ctx("sync_weights"):
            busy(0.002)
        with ctx("vLLM.generate"):
            busy(0.01)
        if logps_inside_prepare:
            with ctx("_get_per_token_logps_and_entropies"):
                busy(0.004)
        with ctx("_calculate_rewards"):
            with ctx("correctness"):  # a reward's own context is not a phase
                busy(0.001)
    with ctx("compute_loss"):
        with ctx("_get_per_token_logps_and_entropies"):  # the training forward: part of train, not old_logps
            busy(0.005)
    clock.on_step_end(None, None, None)


def test_phases_nest_and_add_up():
    clock = PhaseClock().install()
    try:
        clock.on_train_begin(None, None, None)
        fake_step(clock)
        fake_step(clock, logps_inside_prepare=False)
    finally:
        clock.uninstall()
    first, second = clock.steps
    assert first["generate_s"] >= 0.01 and first["sync_s"] >= 0.002
    assert 0.004 <= first["old_logps_s"] < 0.009  # the training forward is not counted here
    assert second["old_logps_s"] == 0.0
    assert first["rewards_s"] >= 0.001
    parts = first["generate_s"] + first["sync_s"] + first["old_logps_s"] + first["rewards_s"]
    assert parts <= first["prepare_s"] <= first["step_s"]
    assert first["train_s"] >= 0.005
    assert first["prepare_s"] + first["train_s"] == pytest.approx(first["step_s"])


def test_metrics_are_means_since_the_last_log_and_summary_skips_warmup():
    clock = PhaseClock().install()
    try:
        clock.on_train_begin(None, None, None)
        for _ in range(3):
            fake_step(clock)
        logged = clock.pop_metrics()
        assert logged["time/step_s"] == pytest.approx(sum(s["step_s"] for s in clock.steps) / 3)
        assert clock.pop_metrics() == {}  # nothing new since
        fake_step(clock)
        assert clock.pop_metrics()["time/generate_s"] == pytest.approx(clock.steps[-1]["generate_s"])
    finally:
        clock.uninstall()
    assert clock.summary(skip=1)["step_s"] == pytest.approx(sum(s["step_s"] for s in clock.steps[1:]) / 3)


def test_an_uninstalled_clock_hears_nothing():
    clock = PhaseClock().install()
    clock.uninstall()
    clock.on_train_begin(None, None, None)
    fake_step(clock)
    assert clock.steps[0]["generate_s"] == 0.0 and clock.steps[0]["prepare_s"] == 0.0
