"""One optimizer step under the torch profiler: which operations and kernels the step's time goes to.

:mod:`grpo_core.train.phases` says how a step splits into generation, sync, log-prob passes and
training; this says what runs inside them. ``trace_step: N`` (a run setting) profiles step N
(generation included when N starts a round) and writes ``trace-step-N.json`` to the output folder:

* the step's wall time, the GPU's busy time, and how many kernels the CPU launched (a step with many
  short kernels and a GPU mostly idle is launch-bound: fewer, larger operations help; a busy GPU is
  compute- or memory-bound: fewer tokens or cheaper kernels help);
* the operations that took the most time, by GPU time on a GPU and by CPU time otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

LAUNCH_NAMES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx")


def _device_us(event) -> float:
    """Self time on the accelerator, under the attribute name this torch uses."""
    for attr in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(event, attr):
            return float(getattr(event, attr))
    return 0.0


def summarise(events, wall_s: float, on_gpu: bool, top: int = 25) -> dict[str, Any]:
    """A JSON-able summary of ``profiler.key_averages()``."""
    rows = [
        {"name": e.key, "count": int(e.count), "self_cpu_ms": e.self_cpu_time_total / 1e3, "self_gpu_ms": _device_us(e) / 1e3}
        for e in events
    ]
    gpu_busy_ms = sum(r["self_gpu_ms"] for r in rows)
    launches = sum(r["count"] for r in rows if r["name"] in LAUNCH_NAMES)
    key = "self_gpu_ms" if on_gpu else "self_cpu_ms"
    rows.sort(key=lambda r: r[key], reverse=True)
    return {
        "wall_ms": wall_s * 1e3,
        "gpu_busy_ms": gpu_busy_ms if on_gpu else None,
        "gpu_busy_share": gpu_busy_ms / (wall_s * 1e3) if on_gpu and wall_s else None,
        "kernel_launches": launches if on_gpu else None,
        "ranked_by": key,
        "top": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in rows[:top]],
    }


class StepTracer(TrainerCallback):
    """Profile optimizer step ``step`` (1-based, as the progress line counts) and write its summary."""

    def __init__(self, step: int, output_dir: str | Path, echo=print):
        self.step, self.output_dir, self.echo = int(step), Path(output_dir), echo
        self._prof = None
        self._t0 = 0.0
        self.summary: dict[str, Any] | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step + 1 != self.step or self._prof is not None:
            return
        import torch  # deferred: heavy (torch)
        from torch.profiler import ProfilerActivity, profile  # deferred: heavy (torch)

        self._on_gpu = torch.cuda.is_available()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self._on_gpu else [])
        self._prof = profile(activities=activities)
        self._prof.__enter__()
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._prof is None or self.summary is not None:
            return
        if self._on_gpu:
            import torch  # deferred: heavy (torch)

            torch.cuda.synchronize()
        wall = time.perf_counter() - self._t0
        self._prof.__exit__(None, None, None)
        self.summary = {"step": self.step, **summarise(self._prof.key_averages(), wall, self._on_gpu)}
        self._prof = None
        path = self.output_dir / f"trace-step-{self.step}.json"
        if state.is_world_process_zero:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.summary, indent=2))
            first = self.summary["top"][0]["name"] if self.summary["top"] else "-"
            busy = self.summary["gpu_busy_share"]
            self.echo(f"trace of step {self.step}: {wall * 1e3:.0f} ms wall"
                      + (f", GPU busy {busy:.0%}, {self.summary['kernel_launches']} kernel launches" if busy is not None else "")
                      + f", most time in {first!r}; {path}")
