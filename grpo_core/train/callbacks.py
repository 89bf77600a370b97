"""Trainer callbacks: the progress line, run-health warnings, and graceful stop.

The headline is the reward, not the loss (GRPO's loss sits near 0 by design).
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback as HFProgress

from grpo_core.train.diagnosis import Diagnosis
from grpo_core.train.processes import every_process


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


class ProgressCallback(TrainerCallback):
    """One line per logging step: reward, reward std, per-reward means, clipped ratio, where the time went.

    Given the reward ``engine``, it also prints the engine's notices on the
    progress stream ("waiting on reward X for 30 s", a reward disabled by the
    circuit breaker), and its :attr:`warnings` include the engine's: rewards
    moved or disabled, and each reward that failed on some samples.
    ``reported_keys`` names, per reward, the self-reported numbers to show
    (:meth:`RewardEngine.progress_keys`)."""

    def __init__(self, reward_names: list[str], stream=None, zero_variance_patience: int = 5, engine=None,
                 reported_keys: dict[str, tuple[str, ...]] | None = None) -> None:
        self.names = reward_names
        self.reported_keys = reported_keys or {}  # per reward, what it reports about itself (RewardEngine.progress_keys)
        self.stream = stream or sys.stdout
        self.patience = zero_variance_patience
        self._zero_streak = 0
        self._t0 = time.monotonic()
        self.history: list[dict] = []
        self._warnings: list[str] = []
        self._warned: set[str] = set()
        self.diagnosis = Diagnosis(reward_names)
        self.engine = engine
        if engine is not None:
            engine.notify = self.notice

    @property
    def warnings(self) -> list[str]:
        """Everything run.json records: this callback's warnings, then the reward engine's."""
        if self.engine is None:
            return list(self._warnings)
        return self._warnings + self.engine.warnings + self.engine.failure_warnings()

    def notice(self, line: str) -> None:
        """A line between the step lines (the reward engine's notices)."""
        print(f"  {line}", file=self.stream, flush=True)

    def _warn(self, kind: str, msg: str) -> None:
        """Print each kind of warning once; keep them all for run.json."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        self._warnings.append(msg)
        print(f"  warning: {msg}", file=self.stream, flush=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero:
            return  # one progress line per step, from the main process
        if "reward" not in logs:
            if "loss" in logs:  # a step that trains on a round generated earlier (steps_per_generation > 1)
                self._print_line([f"step {state.global_step}/{state.max_steps}", "on the last generation round"], logs)
            return
        rec = {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}}
        self.history.append(rec)
        parts = [f"step {state.global_step}/{state.max_steps}", f"reward {_fmt(logs['reward'])}", f"± {_fmt(logs.get('reward_std', 0.0))}"]
        for n in self.names:
            m = logs.get(f"rewards/{n}/mean")
            if m is not None:
                parts.append(f"{n} {_fmt(m)}")
            own = [(k, logs[f"rewards/{n}/{k}"]) for k in self.reported_keys.get(n, ()) if f"rewards/{n}/{k}" in logs]
            if own:
                parts.append(f"{n}: " + " ".join(f"{k} {v:g}" for k, v in own))
        dropped = logs.get("dynamic_sampling/dropped_groups")
        if dropped is not None:
            parts.append(f"tied groups dropped {dropped:.1f}, refilled {logs.get('dynamic_sampling/refilled_groups', 0.0):.1f}")
        mismatch = logs.get("mismatch/logp_diff_mean")
        if mismatch is not None:
            parts.append(f"mismatch {mismatch:.3f}")
        clipped = logs.get("completions/clipped_ratio")
        if clipped is not None:
            parts.append(f"clipped {clipped:.2f}")
        errs = sum(logs.get(f"rewards/{n}/errors", 0) + logs.get(f"rewards/{n}/timeouts", 0) for n in self.names)
        if errs:
            parts.append(f"reward errors {int(errs)}")
        self._print_line(parts, logs)
        for finding in self.diagnosis.update(self.history):  # what the curves mean, in plain words
            self._warn(finding.kind, finding.message)
        # health checks
        if logs.get("frac_reward_zero_std", 0.0) >= 1.0:
            self._zero_streak += 1
            if self._zero_streak == self.patience:
                self._warn(
                    "zero_variance",
                    f"every group has had zero reward variance for {self.patience} logged steps: there is no learning signal. "
                    "Check the rewards with `grpo-core score`, warm up with --sft-warmup-steps, or raise the temperature."
                )
        else:
            self._zero_streak = 0
        if clipped is not None and clipped > 0.5:
            self._warn("clipped", f"{clipped:.0%} of completions hit max_completion_length; raise it, or rewards that need a closed </answer> cannot fire.")
        deg = logs.get("completions/degenerate_frac")
        if deg is not None and deg > 0.5:
            self._warn(
                "degenerate",
                f"{deg:.0%} of completions look degenerate (repetition or non-text). If this starts suddenly, "
                "try the other generation backend (vLLM <-> HF) or lower the learning rate."
            )
        drift = logs.get("sampling/sampling_logp_difference/mean")
        if drift is not None and drift > self.MAX_SAMPLER_DRIFT:
            self._warn(
                "sampler_drift",
                f"vLLM's log-probs of its own samples differ from the trainer's by {drift:.2f} nats per token on average "
                f"(bf16 noise is a few hundredths): vLLM is probably generating with other weights than the ones being trained. "
                "Check the weight sync (`fast_vllm_sync`, or --set fast_vllm_sync=false for TRL's), or generate with HF (--set use_vllm=false)."
            )

    #: mean |log p_vLLM - log p_trainer| per completion token above which the sampler is not the policy
    MAX_SAMPLER_DRIFT = 0.5

    def _print_line(self, parts: list[str], logs: dict) -> None:
        """Print ``parts`` + the step's time split ('0.62s/step (gen 0.18, rewards 0.05, train 0.34)', when logged)
        + time so far."""
        step_s = logs.get("time/step_s")
        if step_s is not None:
            split = f"gen {logs.get('time/generate_s', 0.0):.2f}, rewards {logs.get('time/rewards_s', 0.0):.2f}, train {logs.get('time/train_s', 0.0):.2f}"
            parts = parts + [f"{step_s:.2f}s/step ({split})"]
        parts = parts + [f"{time.monotonic() - self._t0:.0f}s"]
        print(" | ".join(parts), file=self.stream, flush=True)


class GracefulStop(TrainerCallback):
    """Ctrl-C or SIGTERM: finish the step, save a checkpoint, stop. A second Ctrl-C stops at once.

    The step ends: every reward runs under a time limit (see
    :mod:`grpo_core.rewards.engine`), so the first press never waits on a hung reward
    for ever. The second raises ``KeyboardInterrupt`` in the trainer; the reward
    engine kills its busy workers, and the runner saves the adapter (no
    checkpoint).

    With several processes the stop is decided together: at the end of every step the processes
    share whether any of them was asked to stop, so all stop after the same step and save one
    checkpoint (a process that stopped alone would leave the others waiting in the next step's
    collective operations). torchrun starts its workers in sessions of their own, so a Ctrl-C reaches
    torchrun alone, which passes the signal on to every worker (and kills any still running 30 s later)."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum, frame):
        if self.requested:
            self.uninstall()
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\ngrpo-core: {signal.Signals(signum).name} received; stopping when this step ends (its rewards are "
            "bounded by their time limits), then saving a checkpoint. Press Ctrl-C again to stop now: "
            "the adapter trained so far is saved, but no checkpoint is written for this step.",
            file=sys.stderr,
            flush=True,
        )

    def on_step_end(self, args, state, control, **kwargs):
        if any(every_process(self.requested)):
            self.requested = True  # asked here or in another process of the run: all stop after this step
            control.should_save = True
            control.should_training_stop = True
        return control


def drop_default_printer(trainer) -> None:
    """Remove transformers' own progress printers; ProgressCallback prints instead."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HFProgress)


def abort_message(checkpoint: str | None) -> str:
    """What the runner says after a second Ctrl-C: --resume only when there is a checkpoint to resume from."""
    if checkpoint:
        return f"grpo-core: aborted; the adapter so far was saved. --resume continues from {checkpoint}."
    return "grpo-core: aborted; the adapter so far was saved. No checkpoint was written, so --resume has nothing to resume from."
