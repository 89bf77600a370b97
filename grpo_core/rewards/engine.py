"""The reward engine: runs the chosen rewards, combines them, never stalls.

One engine serves ``grpo-core run`` (through :mod:`grpo_core.train.trl_glue`) and
``grpo-core score`` (:mod:`grpo_core.rewards.scoring`), so the two cannot disagree. Per batch it:

* runs plain rewards inline; if one raises, it retries sample by sample so
  only the failing samples lose their value;
* runs ``async`` rewards concurrently on a private event loop, each bounded by
  its ``timeout``;
* runs ``cpu_bound`` rewards in killable worker processes
  (:mod:`grpo_core.runtime.deadline`): one chunk per worker under the hard
  ``timeout``, and a chunk that fails is re-run sample by sample, so a
  hang or a crash costs only the samples that caused it;
* runs those three groups at the same time;
* turns an exception, a timeout or a non-number into ``None`` for that sample
  and counts it (``on_error="none"``), or into ``0.0`` (``"zero"``), or raises
  (``"raise"``); a result of the wrong length is an error naming the plugin;
* keeps per-reward statistics (errors, timeouts, latency) for the logs;
* collects what a reward reports about itself: a reward function may carry a
  ``reward_metrics`` object with ``pop() -> dict[str, float]`` (numbers since
  the last pop, logged as ``rewards/NAME/KEY``), ``totals() -> dict`` (since
  the engine started: run.json's ``reward_metrics`` and ``grpo-core score``'s
  report), ``reset()``, and optionally ``progress_keys`` (keys for the
  progress line). In-process rewards only: a ``cpu_bound`` reward's counters
  live in its worker processes.
"""

from __future__ import annotations

import asyncio
import functools
import math
import pickle
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

from grpo_core.errors import GrpoCoreError
from grpo_core.plugins.registry import RewardSpec
from grpo_core.rewards.selection import RewardSelection, resolve
from grpo_core.runtime.deadline import get_pool, in_worker, map_with_deadline

ERROR_POLICIES = ("none", "zero", "raise")
DEFAULT_CPU_BOUND_TIMEOUT = 30.0
# TRL passes these; they are not picklable, so they never travel to workers.
_LOCAL_ONLY_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments")


class RewardError(GrpoCoreError):
    """A reward failed and the error policy is ``raise``, or it broke the contract."""


@dataclass
class RewardStats:
    calls: int = 0
    samples: int = 0
    errors: int = 0
    timeouts: int = 0
    nones: int = 0
    seconds: float = 0.0
    last_error: str | None = None

    def add(self, other: "RewardStats") -> None:
        for f in ("calls", "samples", "errors", "timeouts", "nones", "seconds"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.last_error = other.last_error or self.last_error


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

    @property
    def reported(self) -> Any:
        """The reward's own metrics object (its function's ``reward_metrics``), or None."""
        func = self.spec.func
        while isinstance(func, functools.partial):  # the options are bound with functools.partial
            func = func.func
        m = getattr(func, "reward_metrics", None)
        return m if callable(getattr(m, "pop", None)) and callable(getattr(m, "totals", None)) else None

    @property
    def timeout(self) -> float | None:
        if self.spec.timeout is not None:
            return self.spec.timeout
        return DEFAULT_CPU_BOUND_TIMEOUT if self.spec.cpu_bound else None


class RewardEngine:
    def __init__(self, rewards: Sequence[tuple[RewardSpec, float]], on_error: str = "none", names: Sequence[str] | None = None):
        if on_error not in ERROR_POLICIES:
            raise GrpoCoreError(f"on_error must be one of {', '.join(ERROR_POLICIES)}, got {on_error!r}.")
        if not rewards:
            raise GrpoCoreError("the reward engine needs at least one reward; pass --plugins NAME[:WEIGHT],...")
        names = list(names) if names else [spec.name for spec, _ in rewards]
        self.rewards = [BoundReward(spec, float(w), n) for (spec, w), n in zip(rewards, names)]
        self.on_error = on_error
        self.totals: dict[str, RewardStats] = {r.name: RewardStats() for r in self.rewards}
        self._pending: dict[str, RewardStats] = {r.name: RewardStats() for r in self.rewards}
        self._reward_wall = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned: set[str] = set()
        self._reset_reported()  # a reward's own counters cover this engine's work
        for r in self.rewards:
            if r.spec.cpu_bound:
                try:
                    pickle.dumps(r.spec.func)
                except Exception as exc:
                    raise GrpoCoreError(
                        f"reward {r.name!r} ({r.spec.provenance.describe()}) is cpu_bound but cannot be sent to a worker "
                        f"process ({exc}); define it as a module-level function, or register it without cpu_bound."
                    ) from None

    @classmethod
    def from_selection(cls, selection: RewardSelection | str, on_error: str = "none", registry=None) -> "RewardEngine":
        """The engine of a selection (``"xml,correctness:2"`` is parsed first); options are bound by :func:`resolve`."""
        if isinstance(selection, str):
            selection = RewardSelection.parse(selection)
        chosen = resolve(selection, registry)
        return cls([(r.spec, r.weight) for r in chosen], on_error=on_error, names=[r.name for r in chosen])

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
        groups = {"inline": [], "async": [], "cpu": []}
        for r in self.rewards:
            groups["cpu" if r.spec.cpu_bound else "async" if r.spec.is_async else "inline"].append(r)
        results: dict[str, tuple[list, RewardStats]] = {}
        with ThreadPoolExecutor(max_workers=2) as ex:
            fut_cpu = ex.submit(self._run_cpu_bound, groups["cpu"], kwargs, n) if groups["cpu"] else None
            fut_async = ex.submit(self._run_async, groups["async"], kwargs, n) if groups["async"] else None
            for r in groups["inline"]:
                results[r.name] = self._run_inline(r, kwargs, n)
            if fut_cpu:
                results.update(fut_cpu.result())
            if fut_async:
                results.update(fut_async.result())
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

    # ------------------------------------------------------------------
    def _clean(self, r: BoundReward, out: Any, n: int, st: RewardStats) -> list[float | None]:
        if out is None or isinstance(out, (str, bytes)) or not hasattr(out, "__len__"):
            raise RewardError(
                f"reward {r.name!r} from {r.spec.provenance.describe()} returned {type(out).__name__}; "
                "it must return a list with one float (or None) per completion."
            )
        if len(out) != n:
            raise RewardError(
                f"reward {r.name!r} from {r.spec.provenance.describe()} returned {len(out)} values for {n} completions; "
                "it must return exactly one value per completion."
            )
        vals: list[float | None] = []
        for v in out:
            if v is None:
                vals.append(None)
                continue
            try:
                f = float(v)
            except (TypeError, ValueError):
                st.errors += 1
                st.last_error = f"non-numeric value {v!r}"
                vals.append(None)
                continue
            if math.isnan(f) or math.isinf(f):
                st.errors += 1
                st.last_error = f"non-finite value {f}"
                vals.append(None)
            else:
                vals.append(f)
        return vals

    def _call(self, r: BoundReward, kwargs: dict):
        return r.spec.func(**kwargs)

    def _run_inline(self, r: BoundReward, kwargs: dict, n: int) -> tuple[list, RewardStats]:
        st = RewardStats(calls=1, samples=n)
        t0 = time.perf_counter()
        try:
            if r.timeout is not None:
                vals = self._with_thread_timeout(r, kwargs, n, st)
            else:
                vals = self._clean(r, self._call(r, kwargs), n, st)
        except RewardError as exc:
            self._contract_error(r, exc, st)
            vals = [None] * n
        except Exception as exc:  # noqa: BLE001 - isolate the failing samples
            st.last_error = f"{type(exc).__name__}: {exc}"
            vals = self._per_sample(r, kwargs, n, st)
        st.seconds = time.perf_counter() - t0
        return vals, st

    def _with_thread_timeout(self, r: BoundReward, kwargs: dict, n: int, st: RewardStats) -> list:
        box: dict = {}

        def target():
            try:
                box["out"] = self._call(r, kwargs)
            except BaseException as exc:  # noqa: BLE001
                box["exc"] = exc

        th = threading.Thread(target=target, daemon=True, name=f"reward-{r.name}")
        th.start()
        th.join(r.timeout)
        if th.is_alive():
            st.timeouts += n
            st.last_error = f"timed out after {r.timeout:g}s (declare cpu_bound=True for a hard, killable limit)"
            return [None] * n
        if "exc" in box:
            raise box["exc"]
        return self._clean(r, box["out"], n, st)

    def _per_sample(self, r: BoundReward, kwargs: dict, n: int, st: RewardStats) -> list:
        vals: list[float | None] = []
        for i in range(n):
            one = _slice(kwargs, i)
            try:
                if r.timeout is not None:  # the retry stays under the reward's time limit
                    vals.extend(self._with_thread_timeout(r, one, 1, st))
                else:
                    vals.extend(self._clean(r, self._call(r, one), 1, st))
            except Exception as exc:  # noqa: BLE001
                st.errors += 1
                st.last_error = f"{type(exc).__name__}: {exc}"
                vals.append(None)
        return vals

    def _run_cpu_bound(self, rewards: list[BoundReward], kwargs: dict, n: int) -> dict:
        """Chunks first (one per worker: cheap); a chunk that fails or times out is
        re-run sample by sample, each under the hard limit, so only the bad samples lose."""
        shipped = {k: v for k, v in kwargs.items() if k not in _LOCAL_ONLY_KWARGS}
        width = 1 if in_worker() else max(1, min(get_pool().size, n))
        bounds = [(n * k // width, n * (k + 1) // width) for k in range(width)]
        chunks = [(r, list(range(a, b))) for r in rewards for a, b in bounds if b > a]
        t0 = time.perf_counter()
        got = self._map_grouped([(r, idxs) for r, idxs in chunks], shipped)
        retry = [(r, [i]) for (r, idxs), oc in zip(chunks, got) if not oc.ok for i in idxs]
        retried = dict(zip([(r.name, idxs[0]) for r, idxs in retry], self._map_grouped(retry, shipped))) if retry else {}
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
                        self._contract_error(r, exc, st)
                    continue
                for i in idxs:
                    one = retried[(r.name, i)]
                    if one.timed_out:
                        st.timeouts += 1
                        st.last_error = one.error
                    elif not one.ok:
                        st.errors += 1
                        st.last_error = one.error
                    else:
                        try:
                            vals[i] = self._clean(r, one.value, 1, st)[0]
                        except RewardError as exc:
                            self._contract_error(r, exc, st)
            st.seconds = min(st.seconds, wall)
            out[r.name] = (vals, st)
        return out

    def _map_grouped(self, jobs: list[tuple[BoundReward, list[int]]], shipped: dict) -> list:
        """Run (reward, sample indices) jobs in the pool; one map per distinct timeout."""
        outcomes: list = [None] * len(jobs)
        by_timeout: dict[float, list[int]] = {}
        for j, (r, _) in enumerate(jobs):
            by_timeout.setdefault(r.timeout, []).append(j)
        for timeout, js in by_timeout.items():
            tasks = [(jobs[j][0].spec.func, _slice(shipped, jobs[j][1])) for j in js]
            for j, oc in zip(js, map_with_deadline(_call_kwargs, tasks, timeout=timeout)):
                outcomes[j] = oc
        return outcomes

    def _run_async(self, rewards: list[BoundReward], kwargs: dict, n: int) -> dict:
        loop = self._ensure_loop()

        async def one(r: BoundReward):
            st = RewardStats(calls=1, samples=n)
            t0 = time.perf_counter()
            try:
                coro = self._call(r, kwargs)
                out = await (asyncio.wait_for(coro, r.timeout) if r.timeout else coro)
                vals = self._clean(r, out, n, st)
            except asyncio.TimeoutError:
                st.timeouts += n
                st.last_error = f"timed out after {r.timeout:g}s"
                vals = [None] * n
            except RewardError as exc:
                self._contract_error(r, exc, st)
                vals = [None] * n
            except Exception as exc:  # noqa: BLE001
                st.errors += n
                st.last_error = f"{type(exc).__name__}: {exc}"
                vals = [None] * n
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

    def _contract_error(self, r: BoundReward, exc: RewardError, st: RewardStats) -> None:
        st.errors += st.samples
        st.last_error = str(exc)
        if self.on_error == "raise":
            raise exc
        if r.name not in self._warned:
            self._warned.add(r.name)
            print(f"grpo-core: warning: {exc} Its values count as errors.", file=sys.stderr)

    def _apply_policy(self, r: BoundReward, vals: list, st: RewardStats) -> list:
        st.nones = sum(v is None for v in vals)
        if (st.errors or st.timeouts) and self.on_error == "raise":
            raise RewardError(
                f"reward {r.name!r} from {r.spec.provenance.describe()} failed on {st.errors + st.timeouts} of "
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
                out[f"rewards/{name}/timeouts"] = float(st.timeouts)
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


def _slice(kwargs: dict, idx) -> dict:
    """The kwargs of one sample (an int) or of several (a list of indices)."""
    pick = [idx] if isinstance(idx, int) else list(idx)
    return {k: ([v[i] for i in pick] if isinstance(v, (list, tuple)) else v) for k, v in kwargs.items()}


def _call_kwargs(func, kwargs):
    out = func(**kwargs)
    if asyncio.iscoroutine(out):
        out = asyncio.run(out)
    return list(out) if not isinstance(out, (str, bytes)) and hasattr(out, "__iter__") else out
