"""Where a GRPO step's time goes: generation, weight sync, log-prob passes, rewards, training.

TRL wraps the parts of a step in ``trl.extras.profiling.ProfilingContext``
(named ``<TrainerClass>.<part>``) but only reports them to experiment
trackers. :class:`PhaseClock` listens to those same contexts and to the
trainer's step boundaries, and turns them into per-step records::

    step_s        wall time from one optimizer step's end to the next (everything)
    generate_s    vLLM / HF generation
    sync_s        pushing the policy's weights into vLLM
    old_logps_s   log-prob passes made while preparing a generation batch
                  (the importance-sampling / old-policy forward)
    rewards_s     the reward functions
    prepare_s     all of the generation-batch work (the four above and glue)
    train_s       step_s - prepare_s: forward, backward, optimizer, logging

With ``sync_cuda=True`` each timed part waits for the GPU at its edges, so
asynchronous kernels are charged to the part that launched them (a few
synchronisations per step; the clock is meant for profiling runs).
Steps that reuse a buffered generation batch (``steps_per_generation > 1``)
have ``prepare_s`` near zero; average ``step_s`` over whole rounds.

Only one clock listens at a time; installing a second replaces the first.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from transformers import TrainerCallback

#: TRL profiling names (after the class name) -> phase.
PHASE_OF = {
    "vLLM.generate": "generate",
    "transformers.generate": "generate",
    "transformers.generate_batch": "generate",
    "sync_weights": "sync",
    "_calculate_rewards": "rewards",
    "_prepare_inputs": "prepare",
}
LOGPS = "_get_per_token_logps_and_entropies"
PHASES = ("generate", "sync", "old_logps", "rewards", "prepare")

_listener: "PhaseClock | None" = None
_patched = False


def _cuda_sync() -> None:
    import torch  # deferred: heavy (torch)

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _patch_profiling() -> None:
    """Make TRL's ProfilingContext report enter/exit to the active clock (once per process)."""
    global _patched
    if _patched:
        return
    from trl.extras.profiling import ProfilingContext  # deferred: heavy (trl)

    enter, exit_ = ProfilingContext.__enter__, ProfilingContext.__exit__

    def __enter__(self):
        if _listener is not None:
            _listener._enter(self.name)
        return enter(self)

    def __exit__(self, *exc):
        try:
            return exit_(self, *exc)
        finally:
            if _listener is not None:
                _listener._exit(self.name)

    ProfilingContext.__enter__, ProfilingContext.__exit__ = __enter__, __exit__
    _patched = True


class PhaseClock(TrainerCallback):
    """A trainer callback that records, per optimizer step, the time of each phase."""

    def __init__(self, sync_cuda: bool = False, clock: Callable[[], float] = time.perf_counter) -> None:
        self.sync_cuda = sync_cuda
        self._now = clock  # seconds; tests pass a fake clock
        self.steps: list[dict[str, float]] = []
        self._open: list[tuple[str, float]] = []
        self._acc: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self._last_end: float | None = None
        self._logged = 0

    # -- listening -----------------------------------------------------------
    def install(self) -> "PhaseClock":
        global _listener
        _patch_profiling()
        _listener = self
        return self

    def uninstall(self) -> None:
        global _listener
        if _listener is self:
            _listener = None

    def _enter(self, name: str) -> None:
        if self.sync_cuda:
            _cuda_sync()
        self._open.append((name.split(".", 1)[-1], self._now()))

    def _exit(self, name: str) -> None:
        if not self._open:
            return
        if self.sync_cuda:
            _cuda_sync()
        part, t0 = self._open.pop()
        dt = self._now() - t0
        phase = PHASE_OF.get(part)
        if part == LOGPS and any(p == "_prepare_inputs" for p, _ in self._open):
            phase = "old_logps"
        if phase:
            self._acc[phase] += dt

    # -- step boundaries -----------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._last_end = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        if self.sync_cuda:
            _cuda_sync()
        now = self._now()
        rec = {f"{k}_s": v for k, v in self._acc.items()}
        rec["step_s"] = now - (self._last_end if self._last_end is not None else now)
        rec["train_s"] = max(0.0, rec["step_s"] - rec["prepare_s"])
        self.steps.append(rec)
        self._acc = dict.fromkeys(PHASES, 0.0)
        self._last_end = now

    def on_train_end(self, args, state, control, **kwargs):
        self.uninstall()

    # -- reading -------------------------------------------------------------
    def pop_metrics(self) -> dict[str, Any]:
        """Mean of each phase over the steps since the last call, as ``time/<phase>_s``."""
        new = self.steps[self._logged :]
        self._logged = len(self.steps)
        if not new:
            return {}
        return {f"time/{k}": sum(r[k] for r in new) / len(new) for k in new[0]}

    def summary(self, skip: int = 1) -> dict[str, float]:
        """Mean of each phase over all steps after the first ``skip`` (warm-up and compilation)."""
        rows = self.steps[skip:] or self.steps
        if not rows:
            return {}
        return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
