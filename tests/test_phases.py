"""PhaseClock: TRL's profiling contexts and step boundaries become per-step phase times."""

from __future__ import annotations

import pytest

pytest.importorskip("trl")
from trl.extras.profiling import ProfilingContext  # noqa: E402

from grpo_core.train.phases import PhaseClock  # noqa: E402


def ctx(name):
    return ProfilingContext(name=f"SomeGRPOTrainer.{name}", report_to=[])


class FakeClock:
    """Time that passes only when a test says so: phase times are exact, whatever the machine's load."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


TIME = FakeClock()


def busy(seconds):
    TIME.now += seconds


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
    clock = PhaseClock(clock=TIME).install()
    try:
        clock.on_train_begin(None, None, None)
        busy(0.003)  # time between steps outside any context: part of the step, counted as training
        fake_step(clock)
        fake_step(clock, logps_inside_prepare=False)
    finally:
        clock.uninstall()
    first, second = clock.steps
    assert first["sync_s"] == pytest.approx(0.002) and first["generate_s"] == pytest.approx(0.01)
    assert first["old_logps_s"] == pytest.approx(0.004)  # the training forward (0.005) is not counted here
    assert second["old_logps_s"] == 0.0
    assert first["rewards_s"] == pytest.approx(0.001)  # a reward's own context adds nothing on top
    assert first["prepare_s"] == pytest.approx(0.002 + 0.01 + 0.004 + 0.001)  # the phases nest in _prepare_inputs
    assert first["step_s"] == pytest.approx(0.003 + 0.017 + 0.005)
    assert first["train_s"] == pytest.approx(0.003 + 0.005)
    assert first["prepare_s"] + first["train_s"] == pytest.approx(first["step_s"])
    assert second["prepare_s"] == pytest.approx(0.013) and second["step_s"] == pytest.approx(0.018)


def test_metrics_are_means_since_the_last_log_and_summary_skips_warmup():
    clock = PhaseClock(clock=TIME).install()
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
    clock = PhaseClock(clock=TIME).install()
    clock.uninstall()
    clock.on_train_begin(None, None, None)
    fake_step(clock)
    assert clock.steps[0]["generate_s"] == 0.0 and clock.steps[0]["prepare_s"] == 0.0
