"""The step trace's summary arithmetic (the profiler itself runs in tests/test_train_cpu.py)."""

from __future__ import annotations

from types import SimpleNamespace

from grpo_core.train.step_trace import summarise


def event(name, count, cpu_us, gpu_us):
    return SimpleNamespace(key=name, count=count, self_cpu_time_total=cpu_us, self_device_time_total=gpu_us)


def test_gpu_summary_counts_launches_and_busy_time():
    events = [event("aten::mm", 10, 500, 40_000), event("cudaLaunchKernel", 900, 9_000, 0), event("aten::add", 50, 800, 10_000)]
    s = summarise(events, wall_s=0.2, on_gpu=True)
    assert s["kernel_launches"] == 900 and s["gpu_busy_ms"] == 50.0 and s["gpu_busy_share"] == 0.25
    assert [r["name"] for r in s["top"]][:2] == ["aten::mm", "aten::add"]  # by GPU time


def test_cpu_summary_ranks_by_cpu_time():
    s = summarise([event("aten::mm", 1, 100, 0), event("aten::add", 1, 300, 0)], wall_s=0.01, on_gpu=False)
    assert s["ranked_by"] == "self_cpu_ms" and s["top"][0]["name"] == "aten::add" and s["gpu_busy_share"] is None
