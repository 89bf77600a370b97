"""The reward engine: runs the chosen rewards, combines them, never stalls.

One engine serves ``grpo-core run`` (through :mod:`grpo_core.train.trl_glue`)
and ``grpo-core score`` (:mod:`grpo_core.rewards.scoring`), so the two cannot disagree. Per batch it:

* runs plain rewards one after another on the engine's reward thread, each
  call under a limit (:data:`DEFAULT_REWARD_TIMEOUT` unless the reward runs in
  a process); if one raises, it retries sample by sample so only the failing
  samples lose their value;
* runs ``async`` rewards concurrently on a private event loop, each bounded by
  its ``timeout`` (or the default limit);
* runs ``cpu_bound`` rewards, and every sync reward that declares a
  ``timeout``, in killable worker processes (:mod:`grpo_core.runtime.deadline`): one
  chunk per worker under the hard limit, and a chunk that fails is re-run
  sample by sample, so a hang or a crash costs only the samples that caused
  it. A declared ``timeout`` is a promise that the reward stops then, and only
  a process can keep it for code that holds the GIL (a backtracking regex,
  huge integer arithmetic);
* runs those three groups at the same time, and names a reward that is still
  running every :data:`NOTICE_EVERY_S` seconds ("waiting on reward X for 30 s");
* enforces the value contract: a list (or tuple) of one ``float``, ``int`` or
  ``None`` per completion. A dict, a string, a bool, NaN or infinity is an
  error naming the plugin; an error, a timeout or a non-number becomes
  ``None`` for that sample and is counted (``on_error="none"``), or ``0.0``
  (``"zero"``), or raises (``"raise"``);
* stops what timed out: a reward thread past its limit is interrupted; one
  that cannot be interrupted (blocked in C code or I/O) moves to a worker
  process, or, when it cannot be sent to one, is disabled for the run;
* trips a circuit breaker: after :data:`BREAKER_TIMEOUTS` consecutive
  timeouts a reward is disabled for the run (its samples score ``None``), with
  a loud warning that the run records;
* keeps per-reward statistics (errors by kind, timeouts, latency) for the logs
  and the report;
* collects what a reward reports about itself: a reward function may carry a
  ``reward_metrics`` object with ``pop() -> dict[str, float]`` (numbers since
  the last pop, logged as ``rewards/NAME/KEY``), ``totals() -> dict`` (since
  the engine started: run.json's ``reward_metrics`` and ``grpo-core score``'s
  report), ``reset()``, and optionally ``progress_keys`` (keys for the
  progress line). Rewards that run in this process only: the counters of a
  reward that runs in a worker process (``cpu_bound``, or a sync reward that
  declares a ``timeout``) live in that worker and never reach the engine.

Ctrl-C while a batch is scored stops it at once: busy workers are killed, a
reward thread is interrupted, and ``KeyboardInterrupt`` propagates.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import math
import numbers
import os
import pickle
import queue
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from grpo_core.errors import GrpoCoreError
from grpo_core.kit.verifier import ShippedVerifiers
from grpo_core.plugins.registries import registries
from grpo_core.plugins.registry import RewardSpec
from grpo_core.rewards.selection import RewardSelection, resolve
from grpo_core.runtime.deadline import Cancelled, get_pool, in_worker, map_with_deadline

ERROR_POLICIES = ("none", "zero", "raise")
#: hard limit per chunk, then per sample, for a ``cpu_bound`` reward that declares no timeout
DEFAULT_CPU_BOUND_TIMEOUT = 30.0
#: limit per call for a plain or async reward that declares no timeout
#: (set ``GRPO_CORE_REWARD_TIMEOUT`` in the environment, or pass ``default_timeout=``, to change it)
DEFAULT_REWARD_TIMEOUT = 60.0
#: consecutive timeouts (samples in a process, calls in a thread or coroutine) that disable a reward for the run
BREAKER_TIMEOUTS = 3
#: a reward still running after this many seconds is named ("waiting on reward X for 30 s"), and again each period
NOTICE_EVERY_S = 30.0
#: seconds a reward thread past its limit gets to stop once interrupted
STOP_GRACE_S = 2.0
# TRL passes these; they are not picklable, so they never travel to workers.
_LOCAL_ONLY_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments")
_STAT_FIELDS = ("calls", "samples", "errors", "raised", "bad_length", "bad_values", "timeouts", "disabled", "nones", "seconds")


class RewardError(GrpoCoreError):
    """A reward failed and the error policy is ``raise``, or it broke the contract."""


@dataclass
class RewardStats:
    """What happened to one reward's samples. ``errors`` = ``raised`` + ``bad_length`` + ``bad_values``."""

    calls: int = 0
    samples: int = 0
    errors: int = 0
    raised: int = 0  #: samples whose call raised
    bad_length: int = 0  #: samples of a batch whose result was not a list of the right length (a dict, ...)
    bad_values: int = 0  #: values that were not a finite float, int or None (NaN, a string, a bool, ...)
    timeouts: int = 0
    disabled: int = 0  #: samples not scored because the circuit breaker had disabled the reward
    nones: int = 0
    seconds: float = 0.0
    last_error: str | None = None

    def add(self, other: "RewardStats") -> None:
        for f in _STAT_FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.last_error = other.last_error or self.last_error

    @property
    def failed(self) -> int:
        """Samples that got no value because something went wrong (not a returned None)."""
        return self.errors + self.timeouts + self.disabled


@dataclass
class ScoreResult:
    """Raw values per reward, the weighted totals, and what happened."""

    names: list[str]
    weights: dict[str, float]
    values: dict[str, list[float | None]]
    stats: dict[str, RewardStats]
    seconds: float = 0.0

    @property
    def totals(self) -> list[float | None]:
        """Weighted sum per sample, ``None`` rewards skipped (as TRL's nansum); None if all are None."""
        n = len(next(iter(self.values.values()), []))
        out: list[float | None] = []
        for i in range(n):
            parts = [self.weights[k] * v[i] for k, v in self.values.items() if v[i] is not None]
            out.append(sum(parts) if parts else None)
        return out


@dataclass
class BoundReward:
    spec: RewardSpec
    weight: float
    name: str  # as selected (bare or qualified); the metric key
    default_timeout: float = DEFAULT_REWARD_TIMEOUT
    moved: bool = False  #: moved to a worker process after its thread could not be stopped
    disabled: str | None = None  #: why the circuit breaker disabled it for the run
    streak: int = 0  #: consecutive timeouts

    @property
    def in_process(self) -> bool:
        """Runs in a killable worker process: cpu_bound, a sync reward with a declared timeout, or moved there."""
        return self.spec.cpu_bound or self.moved or (self.spec.timeout is not None and not self.spec.is_async)

    @property
    def reported(self) -> Any:
        """The reward's own metrics object (its function's ``reward_metrics``), or None.

        None as well for a reward that runs in a worker process from the start
        (``cpu_bound``, or sync with a declared ``timeout``): its counters move in
        the worker, and this process's copy would only ever report zeros."""
        if self.spec.cpu_bound or (self.spec.timeout is not None and not self.spec.is_async):
            return None
        func = self.spec.func
        while isinstance(func, functools.partial):  # the options are bound with functools.partial
            func = func.func
        m = getattr(func, "reward_metrics", None)
        return m if callable(getattr(m, "pop", None)) and callable(getattr(m, "totals", None)) else None

    @property
    def timeout(self) -> float:
        if self.spec.timeout is not None:
            return self.spec.timeout
        return DEFAULT_CPU_BOUND_TIMEOUT if self.spec.cpu_bound else self.default_timeout


def default_reward_timeout() -> float:
    """:data:`DEFAULT_REWARD_TIMEOUT`, or ``GRPO_CORE_REWARD_TIMEOUT`` from the environment."""
    raw = os.environ.get("GRPO_CORE_REWARD_TIMEOUT")
    if raw is None:
        return DEFAULT_REWARD_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value > 0):
        raise GrpoCoreError(f"GRPO_CORE_REWARD_TIMEOUT must be a positive number of seconds, got {raw!r}.")
    return value


class RewardEngine:
    def __init__(self, rewards: Sequence[tuple[RewardSpec, float]], on_error: str = "none", names: Sequence[str] | None = None,
                 default_timeout: float | None = None):
        if on_error not in ERROR_POLICIES:
            raise GrpoCoreError(f"on_error must be one of {', '.join(ERROR_POLICIES)}, got {on_error!r}.")
        if not rewards:
            raise GrpoCoreError("the reward engine needs at least one reward; pass --plugins NAME[:WEIGHT],...")
        names = list(names) if names else [spec.name for spec, _ in rewards]
        limit = default_reward_timeout() if default_timeout is None else float(default_timeout)
        self.rewards = [BoundReward(spec, float(w), n, default_timeout=limit) for (spec, w), n in zip(rewards, names)]
        self.on_error = on_error
        self.totals: dict[str, RewardStats] = {r.name: RewardStats() for r in self.rewards}
        self._pending: dict[str, RewardStats] = {r.name: RewardStats() for r in self.rewards}
        self._reward_wall = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane: _Lane | None = None
        self._warned: set[tuple[str, str]] = set()
        self._running: dict[str, float] = {}  # reward -> when its current call started
        self._noticed: dict[str, int] = {}
        self._verifiers: Any = None
        self.warnings: list[str] = []  #: what the run must record: rewards moved or disabled
        self.notify: Callable[[str], None] = _print_notice  #: where "waiting on reward X" and warnings go
        self.notice_every = NOTICE_EVERY_S
        self.stop_grace = STOP_GRACE_S
        self._reset_reported()  # a reward's own counters cover this engine's work
        for r in self.rewards:
            if r.in_process:
                try:
                    pickle.dumps(r.spec.func)
                except Exception as exc:
                    why = "is cpu_bound" if r.spec.cpu_bound else (
                        f"declares timeout={r.spec.timeout:g}, which grpo-core keeps by running it in a killable worker "
                        "process (a thread cannot be stopped while it holds the GIL),"
                    )
                    raise GrpoCoreError(
                        f"reward {r.name!r} ({r.spec.provenance.describe()}) {why} but cannot be sent to a worker "
                        f"process ({exc}); define it as a module-level function (or an instance of a module-level class), "
                        "or register it without cpu_bound and timeout (it then runs in a thread under the engine's "
                        f"default limit of {limit:g}s)."
                    ) from None

    @classmethod
    def from_selection(cls, selection: RewardSelection | str, on_error: str = "none", registry=None,
                       default_timeout: float | None = None) -> "RewardEngine":
        """The engine of a selection (``"xml,correctness:2"`` is parsed first); options are bound by :func:`resolve`."""
        if isinstance(selection, str):
            selection = RewardSelection.parse(selection)
        chosen = resolve(selection, registry)
        return cls([(r.spec, r.weight) for r in chosen], on_error=on_error, names=[r.name for r in chosen], default_timeout=default_timeout)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rewards]

    @property
    def weights(self) -> dict[str, float]:
        return {r.name: r.weight for r in self.rewards}

    # ------------------------------------------------------------------
    def score(self, completions: Sequence[Any], prompts: Sequence[Any] | None = None, **columns: Any) -> ScoreResult:
        t0 = time.perf_counter()
        n = len(completions)
        kwargs = dict(columns)
        kwargs["completions"] = list(completions)
        kwargs["prompts"] = list(prompts) if prompts is not None else [None] * n
        for k, v in list(kwargs.items()):
            if k in _LOCAL_ONLY_KWARGS or isinstance(v, (str, bytes, dict)) or not hasattr(v, "__getitem__") or not hasattr(v, "__len__"):
                continue
            kwargs[k] = v = list(v)  # datasets' Column, numpy arrays, tuples: one plain list per column
            if len(v) != n:
                raise RewardError(f"column {k!r} has {len(v)} values for {n} completions; every column needs one value per completion.")
        groups: dict[str, list[BoundReward]] = {"inline": [], "async": [], "cpu": []}
        results: dict[str, tuple[list, RewardStats]] = {}
        for r in self.rewards:
            if r.disabled:
                results[r.name] = ([None] * n, RewardStats(calls=1, samples=n, disabled=n, last_error=r.disabled))
            else:
                groups["cpu" if r.in_process else "async" if r.spec.is_async else "inline"].append(r)
        background = []
        try:
            if groups["cpu"]:
                background.append(_Background(self._run_cpu_bound, groups["cpu"], kwargs, n))
            if groups["async"]:
                background.append(_Background(self._run_async, groups["async"], kwargs, n))
            if groups["inline"]:
                results.update(self._run_inline(groups["inline"], kwargs, n))
            for job in background:
                while not job.wait(min(1.0, self.notice_every)):
                    self._notice_slow()
                results.update(job.result())
        except BaseException:
            self._abort(background)
            raise
        wall = time.perf_counter() - t0
        values: dict[str, list[float | None]] = {}
        stats: dict[str, RewardStats] = {}
        for r in self.rewards:
            vals, st = results[r.name]
            vals = self._apply_policy(r, vals, st)
            values[r.name], stats[r.name] = vals, st
        with self._lock:
            for name, st in stats.items():
                self.totals[name].add(st)
                self._pending[name].add(st)
            self._reward_wall += wall
        return ScoreResult(self.names, self.weights, values, stats, wall)

    def _abort(self, background: list) -> None:
        """Ctrl-C (or an error) while scoring: stop every reward still running."""
        if any(r.in_process for r in self.rewards):
            get_pool().cancel()
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        lane = self._lane
        if lane is not None and lane.busy:
            lane.cancel()
            lane.interrupt()
            self._lane = None  # a fresh thread for the next batch; this one ends when its call does
        for job in background:
            job.wait(self.stop_grace)
        self._running.clear()

    # --- slow rewards: name them -----------------------------------------
    def _started(self, name: str) -> None:
        self._running[name] = time.monotonic()
        self._noticed[name] = 0

    def _finished(self, name: str) -> None:
        self._running.pop(name, None)

    def _notice_slow(self) -> None:
        """Name each reward that has been running for another ``notice_every`` seconds."""
        now = time.monotonic()
        for name, since in list(self._running.items()):
            periods = int((now - since) // self.notice_every)
            if periods > self._noticed.get(name, 0):
                self._noticed[name] = periods
                r = next(r for r in self.rewards if r.name == name)
                self.notify(f"waiting on reward {name} for {periods * self.notice_every:g} s (limit {r.timeout:g} s per call)")

    def _warn(self, r: BoundReward, msg: str) -> None:
        """A loud warning, printed and recorded (run.json's warnings)."""
        self.warnings.append(msg)
        self.notify(f"WARNING: {msg}")

    # --- the value contract ---------------------------------------------
    def _clean(self, r: BoundReward, out: Any, n: int, st: RewardStats) -> list[float | None]:
        if type(out) is not list and type(out) is not tuple:
            if hasattr(out, "tolist") and not isinstance(out, (str, bytes, dict)):
                out = out.tolist()  # numpy / torch arrays
            if not isinstance(out, (list, tuple)):
                raise RewardError(
                    f"reward {r.name!r} from {r.spec.provenance.describe()} returned {type(out).__name__}"
                    f"{' ' + repr(out)[:60] if out is not None else ''}; it must return a list with one float (or None) per completion."
                )
        if len(out) != n:
            raise RewardError(
                f"reward {r.name!r} from {r.spec.provenance.describe()} returned {len(out)} values for {n} completions; "
                "it must return exactly one value per completion."
            )
        vals: list[float | None] = []
        for i, v in enumerate(out):
            t = type(v)
            if t is float:
                if math.isfinite(v):
                    vals.append(v)
                    continue
                why = f"{v}; return None for 'no opinion', never NaN or infinity"
            elif t is int:
                vals.append(float(v))
                continue
            elif v is None:
                vals.append(None)
                continue
            elif isinstance(v, numbers.Real) and not isinstance(v, bool):  # numpy scalars
                f = float(v)
                if math.isfinite(f):
                    vals.append(f)
                    continue
                why = f"{f}; return None for 'no opinion', never NaN or infinity"
            elif isinstance(v, bool) or t.__name__ == "bool_":
                why = f"a bool ({v!r}); return 1.0 or 0.0"
            else:
                why = f"{t.__name__} {repr(v)[:40]}, not a float"
            st.errors += 1
            st.bad_values += 1
            st.last_error = f"value {i} is {why}"
            vals.append(None)
            if (r.name, "value") not in self._warned:
                self._warned.add((r.name, "value"))
                print(f"grpo-core: warning: reward {r.name!r} from {r.spec.provenance.describe()}: {st.last_error}. "
                      "Such values count as errors.", file=sys.stderr)
        return vals

    def _call(self, r: BoundReward, kwargs: dict):
        return r.spec.func(**kwargs)

    # --- plain rewards: the reward thread, under a limit -------------------
    def _lane_calls(self, calls: list[tuple[BoundReward, dict]]) -> list[tuple[str, Any]]:
        """Run the calls one after another on the reward thread, each under its reward's limit:
        per call ("ok", out), ("error", exc) or ("timeout", None).

        One hand-off per job: the caller sleeps until the whole job is done, waking only to
        check the running call's limit and to name a slow reward. (Waking for each call would
        cost a GIL switch interval, 5 ms, per reward: the thread is already running the next.)"""
        outcomes: list[tuple[str, Any]] = []
        while len(outcomes) < len(calls):
            if self._lane is None:
                self._lane = _Lane()
                weakref.finalize(self, self._lane.close)  # an engine dropped without close() leaves no thread behind
            lane = self._lane
            todo = calls[len(outcomes):]
            seq, outs = lane.submit([(lambda r=r, kw=kw: self._call(r, kw)) for r, kw in todo])
            timed_out: set[int] = set()
            stuck: int | None = None
            shown: str | None = None
            try:
                while True:
                    cur = lane.running(seq)
                    left = 1.0 if cur is None else cur[1] + todo[cur[0]][0].timeout - time.monotonic()
                    if lane.wait(seq, max(0.0, min(1.0, self.notice_every, left))):
                        break
                    cur = lane.running(seq)
                    if cur is None:
                        continue
                    idx, started = cur
                    r = todo[idx][0]
                    if shown != r.name:  # name the running reward for the "waiting on" notices
                        if shown:
                            self._finished(shown)
                        shown = r.name
                        self._running[r.name], self._noticed[r.name] = started, 0
                    if time.monotonic() >= started + r.timeout and idx not in timed_out:
                        timed_out.add(idx)
                        if not lane.stop(seq, idx, self.stop_grace):
                            stuck = idx
                            lane.cancel()
                            self._lane = None  # it cannot be stopped: abandon the thread; the rest go to a fresh one
                            self._unstoppable(r)
                            break
                        continue
                    self._notice_slow()
            finally:
                if shown:
                    self._finished(shown)
            done = list(outs) if stuck is None else list(outs)[:stuck]
            outcomes += [("timeout", None) if i in timed_out else o for i, o in enumerate(done)]
            if stuck is not None or len(done) in timed_out:  # the timed-out call left no outcome; the rest run again
                outcomes.append(("timeout", None))
        return outcomes

    def _unstoppable(self, r: BoundReward) -> None:
        try:
            pickle.dumps(r.spec.func)
        except Exception:  # noqa: BLE001
            self._disable(r, f"it ran past its {r.timeout:g}s limit in a thread and could not be stopped (blocked in C code "
                             "or I/O), and it cannot be sent to a worker process; it is disabled for the rest of this run "
                             "and scores None. Give it a timeout= and make it picklable, so a worker process can stop it.")
            return
        r.moved = True
        self._warn(r, f"reward {r.name!r} ({r.spec.provenance.describe()}) ran past its {r.timeout:g}s limit in a thread and "
                      "could not be stopped (blocked in C code or I/O); from now on it runs in a killable worker process, "
                      "without trainer_state, log_extra and log_metric.")

    def _disable(self, r: BoundReward, why: str) -> None:
        if r.disabled:
            return
        r.disabled = f"disabled: {why}"
        self._warn(r, f"reward {r.name!r} ({r.spec.provenance.describe()}): {why}")

    def _count_timeouts(self, r: BoundReward, timed_out: bool) -> bool:
        """Feed the circuit breaker; True when it has just disabled ``r``."""
        if not timed_out:
            r.streak = 0
            return False
        r.streak += 1
        if r.streak >= BREAKER_TIMEOUTS and not r.disabled:
            self._disable(r, f"it timed out {r.streak} times in a row (limit {r.timeout:g}s); the circuit breaker disabled it "
                             "for the rest of this run, and its samples score None. Find the inputs that hang it with "
                             f"`grpo-core score --plugins {r.name} ...`.")
            return True
        return False

    def _run_inline(self, rewards: list[BoundReward], kwargs: dict, n: int) -> dict:
        out: dict[str, tuple[list, RewardStats]] = {}
        t0 = time.perf_counter()
        for r, (kind, value) in zip(rewards, self._lane_calls([(r, kwargs) for r in rewards])):
            st = RewardStats(calls=1, samples=n)
            if kind == "timeout":
                st.timeouts += n
                st.last_error = f"timed out after {r.timeout:g}s"
                self._count_timeouts(r, True)
                vals: list = [None] * n
            else:
                self._count_timeouts(r, False)
                try:
                    if kind == "error":
                        raise value
                    vals = self._clean(r, value, n, st)
                except RewardError as exc:
                    self._contract_error(r, exc, st)
                    vals = [None] * n
                except Exception as exc:  # noqa: BLE001 - isolate the failing samples
                    st.last_error = f"{type(exc).__name__}: {exc}"
                    vals = self._per_sample(r, kwargs, n, st)
            t1 = time.perf_counter()
            st.seconds, t0 = t1 - t0, t1
            out[r.name] = (vals, st)
        return out

    def _per_sample(self, r: BoundReward, kwargs: dict, n: int, st: RewardStats) -> list:
        vals: list[float | None] = []
        for i in range(n):
            if r.disabled:
                st.disabled += 1
                vals.append(None)
                continue
            ((kind, out),) = self._lane_calls([(r, _slice(kwargs, i))])
            self._count_timeouts(r, kind == "timeout")
            if kind == "timeout":
                st.timeouts += 1
                st.last_error = f"timed out after {r.timeout:g}s"
                vals.append(None)
                continue
            try:
                if kind == "error":
                    raise out
                vals.extend(self._clean(r, out, 1, st))
            except RewardError as exc:
                self._contract_error(r, exc, st, samples=1)
                vals.append(None)
            except Exception as exc:  # noqa: BLE001
                st.errors += 1
                st.raised += 1
                st.last_error = f"{type(exc).__name__}: {exc}"
                vals.append(None)
        return vals

    # --- worker processes: cpu_bound, and sync rewards with a timeout ------
    def _run_cpu_bound(self, rewards: list[BoundReward], kwargs: dict, n: int) -> dict:
        """Chunks first (one per worker: cheap); a chunk that fails or times out is
        re-run sample by sample, each under the hard limit, so only the bad samples lose."""
        shipped = {k: v for k, v in kwargs.items() if k not in _LOCAL_ONLY_KWARGS}
        width = 1 if in_worker() else max(1, min(get_pool().size, n))
        bounds = [(n * k // width, n * (k + 1) // width) for k in range(width)]
        chunks = [(r, list(range(a, b))) for r in rewards for a, b in bounds if b > a]
        t0 = time.perf_counter()
        for r in rewards:
            self._started(r.name)
        try:
            got = self._map_grouped(chunks, shipped)
            retried = self._retry_samples([(r, idxs) for (r, idxs), oc in zip(chunks, got) if not oc.ok], shipped)
        finally:
            for r in rewards:
                self._finished(r.name)
        wall = time.perf_counter() - t0
        out: dict[str, tuple[list, RewardStats]] = {}
        for r in rewards:
            st = RewardStats(calls=1, samples=n)
            vals: list[float | None] = [None] * n
            for (owner, idxs), oc in zip(chunks, got):
                if owner is not r:
                    continue
                st.seconds += oc.seconds
                if oc.ok:
                    try:
                        vals[idxs[0] : idxs[-1] + 1] = self._clean(r, oc.value, len(idxs), st)
                    except RewardError as exc:
                        self._contract_error(r, exc, st, samples=len(idxs))
                    continue
                for i in idxs:
                    one = retried.get((r.name, i))
                    if one is None:  # the breaker disabled the reward before this sample ran
                        st.disabled += 1
                        st.last_error = r.disabled
                    elif one.timed_out:
                        st.timeouts += 1
                        st.last_error = one.error
                    elif not one.ok:
                        st.errors += 1
                        st.raised += 1
                        st.last_error = one.error
                    else:
                        try:
                            vals[i] = self._clean(r, one.value, 1, st)[0]
                        except RewardError as exc:
                            self._contract_error(r, exc, st, samples=1)
            st.seconds = min(st.seconds, wall)
            out[r.name] = (vals, st)
        return out

    def _retry_samples(self, failed: list[tuple[BoundReward, list[int]]], shipped: dict) -> dict:
        """Re-run the samples of failed chunks one by one, a wave (one per worker) at a time,
        feeding the circuit breaker between waves so a reward that hangs everywhere stops early."""
        todo = [(r, i) for r, idxs in failed for i in idxs]
        width = 1 if in_worker() else get_pool().size
        out: dict = {}
        while todo:
            todo = [(r, i) for r, i in todo if not r.disabled]
            wave, todo = todo[:width], todo[width:]
            if not wave:
                break
            for (r, i), oc in zip(wave, self._map_grouped([(r, [i]) for r, i in wave], shipped)):
                out[(r.name, i)] = oc
                self._count_timeouts(r, oc.timed_out)
        return out

    def _map_grouped(self, jobs: list[tuple[BoundReward, list[int]]], shipped: dict) -> list:
        """Run (reward, sample indices) jobs in the pool; one map per distinct timeout."""
        outcomes: list = [None] * len(jobs)
        by_timeout: dict[float, list[int]] = {}
        for j, (r, _) in enumerate(jobs):
            by_timeout.setdefault(r.timeout, []).append(j)
        verifiers = self._shipped_verifiers()
        for timeout, js in by_timeout.items():
            tasks = [(jobs[j][0].spec.func, _slice(shipped, jobs[j][1]), verifiers) for j in js]
            for j, oc in zip(js, map_with_deadline(_call_kwargs, tasks, timeout=timeout)):
                outcomes[j] = oc
        return outcomes

    def _shipped_verifiers(self):
        """The registered verifiers, sent along with each task so a worker finds one without loading every plugin."""
        if self._verifiers is None:
            self._verifiers = ShippedVerifiers(_verifier_blobs())
        return self._verifiers

    # --- async rewards ------------------------------------------------------
    def _run_async(self, rewards: list[BoundReward], kwargs: dict, n: int) -> dict:
        loop = self._ensure_loop()

        async def one(r: BoundReward):
            st = RewardStats(calls=1, samples=n)
            t0 = time.perf_counter()
            self._started(r.name)
            timed_out = False
            try:
                out = await asyncio.wait_for(self._call(r, kwargs), r.timeout)
                vals = self._clean(r, out, n, st)
            except asyncio.TimeoutError:
                timed_out = True
                st.timeouts += n
                st.last_error = f"timed out after {r.timeout:g}s"
                vals = [None] * n
            except RewardError as exc:
                self._contract_error(r, exc, st)
                vals = [None] * n
            except Exception as exc:  # noqa: BLE001
                st.errors += n
                st.raised += n
                st.last_error = f"{type(exc).__name__}: {exc}"
                vals = [None] * n
            finally:
                self._finished(r.name)
            self._count_timeouts(r, timed_out)
            st.seconds = time.perf_counter() - t0
            return r.name, (vals, st)

        async def all_of():
            return await asyncio.gather(*(one(r) for r in rewards))

        return dict(asyncio.run_coroutine_threadsafe(all_of(), loop).result())

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, daemon=True, name="grpo-core-rewards").start()
            return self._loop

    # --- policies -------------------------------------------------------------
    def _contract_error(self, r: BoundReward, exc: RewardError, st: RewardStats, samples: int | None = None) -> None:
        k = st.samples if samples is None else samples
        st.errors += k
        st.bad_length += k
        st.last_error = str(exc)
        if self.on_error == "raise":
            raise exc
        if (r.name, "contract") not in self._warned:
            self._warned.add((r.name, "contract"))
            print(f"grpo-core: warning: {exc} Its values count as errors.", file=sys.stderr)

    def _apply_policy(self, r: BoundReward, vals: list, st: RewardStats) -> list:
        st.nones = sum(v is None for v in vals)
        if (st.errors or st.timeouts or st.disabled) and self.on_error == "raise":
            raise RewardError(
                f"reward {r.name!r} from {r.spec.provenance.describe()} failed on {st.failed} of "
                f"{st.samples} samples: {st.last_error}. (on_error='raise'; use 'none' or 'zero' to continue.)"
            )
        if self.on_error == "zero":
            return [0.0 if v is None else v for v in vals]
        return vals

    # ------------------------------------------------------------------
    def pop_metrics(self) -> dict[str, float]:
        """Metrics accumulated since the last call, for the training logs."""
        with self._lock:
            out: dict[str, float] = {}
            for name, st in self._pending.items():
                if st.calls == 0:
                    continue
                out[f"rewards/{name}/errors"] = float(st.errors)
                out[f"rewards/{name}/timeouts"] = float(st.timeouts + st.disabled)
                out[f"rewards/{name}/none_frac"] = st.nones / max(1, st.samples)
                out[f"rewards/{name}/latency_ms"] = 1000 * st.seconds / st.calls
            for r in self.rewards:
                if r.reported is not None:
                    out.update({f"rewards/{r.name}/{k}": float(v) for k, v in r.reported.pop().items()})
            calls = max((st.calls for st in self._pending.values()), default=0)
            if calls:
                out["engine/reward_ms"] = 1000 * self._reward_wall / calls
            self._pending = {name: RewardStats() for name in self._pending}
            self._reward_wall = 0.0
            return out

    def failure_warnings(self) -> list[str]:
        """One line per reward whose samples failed (raised, wrong length, NaN, timed out, disabled), for run.json."""
        out = []
        for r in self.rewards:
            st = self.totals[r.name]
            if st.samples and st.failed:
                out.append(f"reward {r.name!r} failed on {st.failed} of {st.samples} samples ({describe_failures(st)})"
                           + ("; its curve carries no signal" if st.failed >= st.samples else "")
                           + (f"; last error: {st.last_error}" if st.last_error else ""))
        return out

    def reset_stats(self) -> None:
        """Forget what was scored so far (e.g. the pre-flight smoke test), so metrics cover training only."""
        with self._lock:
            self.totals = {name: RewardStats() for name in self.totals}
            self._pending = {name: RewardStats() for name in self._pending}
            self._reward_wall = 0.0
        self._reset_reported()

    # --- what rewards report about themselves (``reward_metrics``) -------
    def _reset_reported(self) -> None:
        for r in self.rewards:
            if r.reported is not None and callable(getattr(r.reported, "reset", None)):
                r.reported.reset()

    def reported_totals(self) -> dict[str, dict]:
        """What each reward reported about itself since the engine started (run.json's ``reward_metrics``)."""
        return {r.name: r.reported.totals() for r in self.rewards if r.reported is not None}

    def progress_keys(self) -> dict[str, tuple[str, ...]]:
        """Per reward, the self-reported keys it wants in the progress line."""
        return {r.name: tuple(getattr(r.reported, "progress_keys", ())) for r in self.rewards if r.reported is not None}

    def close(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
        if self._lane is not None:
            self._lane.close()
            self._lane = None


def describe_failures(st: RewardStats | dict) -> str:
    """'raised 3, wrong length 0, NaN/non-number 1, timed out 2, disabled 0': the kinds of failure, by count."""
    get = st.get if isinstance(st, dict) else (lambda k, d=0: getattr(st, k, d))
    kinds = [("raised", "raised"), ("bad_length", "wrong length or type"), ("bad_values", "NaN or non-number"),
             ("timeouts", "timed out"), ("disabled", "disabled")]
    return ", ".join(f"{label} {get(k, 0)}" for k, label in kinds)


def _verifier_blobs() -> dict[str, bytes]:
    """Each registered verifier, pickled, under its qualified name and its bare name where that is unambiguous."""
    blobs: dict[str, bytes] = {}
    try:
        reg = registries().verifiers
    except Exception:  # noqa: BLE001 - a worker then looks verifiers up the slow way
        return blobs
    for entry in reg:
        try:
            blobs[entry.qualified_name] = pickle.dumps(entry.obj)
        except Exception:  # noqa: BLE001 - not picklable: a worker finds it through the registry instead
            continue
    for name in reg.names():
        q = reg.get(name).qualified_name
        if name not in blobs and q in blobs:
            blobs[name] = blobs[q]
    return blobs


def _print_notice(line: str) -> None:
    print(f"grpo-core: {line}", file=sys.stderr, flush=True)


class _Stop(Exception):
    """Raised inside a reward thread that ran past its limit."""


class _Lane:
    """The engine's reward thread: runs a job's calls one after another.

    A call past its limit is interrupted with an exception raised in the thread
    (which takes effect at the reward's next Python instruction: a busy loop
    stops, a call blocked in C code or I/O does not). A finished job is
    announced through a queue, not a ``threading.Event``, whose waiter can
    wait a GIL switch interval (5 ms) for the thread that set it."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._seq = 0
        self._cancelled = False
        self.current: tuple[int, int, float] | None = None  #: (job, call index, when it started)
        self.busy = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name="grpo-core-reward")
        self.thread.start()

    def _loop(self) -> None:
        seq = None
        while True:
            try:
                if seq is not None:  # announce the job done (put before clearing: an interruption here repeats it)
                    self.current = None
                    self.busy = False
                    self._done.put(seq)
                    seq = None
                job = self._jobs.get()
                if job is None:
                    return
                seq, fns, outs = job
                job = None
                for idx, fn in enumerate(fns):
                    if self._cancelled:
                        break
                    self.current = (seq, idx, time.monotonic())
                    try:
                        out: tuple[str, Any] = ("ok", fn())
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        out = ("error", exc)
                    outs.append(out)
                fns = fn = outs = out = None  # hold nothing of the job (its calls reference the engine)
            except _Stop:  # an interruption that arrived outside a call: the job ends, announced above
                continue

    def submit(self, fns: list[Callable[[], Any]]) -> tuple[int, list]:
        """Queue a job; returns its number and the list its outcomes are appended to, in order."""
        self._seq += 1
        outs: list = []
        self.busy = True
        self._jobs.put((self._seq, fns, outs))
        return self._seq, outs

    def wait(self, seq: int, timeout: float) -> bool:
        """True once job ``seq`` is done; False when ``timeout`` seconds pass first."""
        end = time.monotonic() + timeout
        while True:
            try:
                if self._done.get(timeout=max(0.0, end - time.monotonic())) == seq:
                    return True
            except queue.Empty:
                return False

    def running(self, seq: int) -> tuple[int, float] | None:
        """(call index, start time) of job ``seq``'s running call, or None."""
        cur = self.current
        return None if cur is None or cur[0] != seq else (cur[1], cur[2])

    def stop(self, seq: int, idx: int, grace: float) -> bool:
        """Interrupt call ``idx`` of job ``seq``; True when the thread has left it within ``grace`` seconds."""
        if self.running(seq) is None or self.running(seq)[0] != idx:  # type: ignore[index]
            return True
        self.interrupt()
        end = time.monotonic() + grace
        while time.monotonic() < end:
            cur = self.running(seq)
            if cur is None or cur[0] != idx:
                return True
            time.sleep(0.02)
        return False

    def interrupt(self) -> None:
        if self.thread.ident is not None and self.busy:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident), ctypes.py_object(_Stop))

    def cancel(self) -> None:
        """Run no further call of any job (the thread is being abandoned)."""
        self._cancelled = True
        self._jobs.put(None)

    def close(self) -> None:
        self._jobs.put(None)


class _Background:
    """A daemon thread running ``fn(*args)``; Ctrl-C in the caller never waits for it at exit."""

    def __init__(self, fn: Callable, *args: Any) -> None:
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        self._got: tuple | None = None

        def target():
            try:
                self._out.put(("ok", fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - re-raised by result()
                self._out.put(("error", exc))

        threading.Thread(target=target, daemon=True, name="grpo-core-rewards-bg").start()

    def wait(self, timeout: float) -> bool:
        """True once ``fn`` has returned or raised."""
        if self._got is None:
            try:
                self._got = self._out.get(timeout=timeout)
            except queue.Empty:
                return False
        return True

    def result(self) -> Any:
        while not self.wait(60.0):
            pass
        kind, value = self._got  # type: ignore[misc]
        if kind == "error":
            if isinstance(value, Cancelled):
                raise KeyboardInterrupt from value
            raise value
        return value


def _slice(kwargs: dict, idx) -> dict:
    """The kwargs of one sample (an int) or of several (a list of indices)."""
    pick = [idx] if isinstance(idx, int) else list(idx)
    return {k: ([v[i] for i in pick] if isinstance(v, (list, tuple)) else v) for k, v in kwargs.items()}


def _call_kwargs(func, kwargs, verifiers=None):
    """Run in a worker. ``verifiers`` installed themselves when the task was unpickled (see ShippedVerifiers)."""
    out = func(**kwargs)
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__iter__"):
        return out  # the parent reports the contract error
    return list(out)
