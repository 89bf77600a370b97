"""Hard time limits for code that may hang: killable worker processes.

``signal.alarm`` only works on the main thread and cannot interrupt C code
(a sympy ``str()`` of a 24-million-bit integer), and a thread that times out
keeps running. The only limit that always holds is a process that can be
killed, so that is what this module provides:

* :func:`call_with_deadline` runs one call in a worker and gives up (killing
  and replacing the worker) when the deadline passes;
* :func:`map_with_deadline` spreads many calls over the pool, each with its
  own deadline, and returns one :class:`Outcome` per call, in order.

Each task's clock starts once the worker has unpickled it (so a slow first
import of the function's module is not charged to the call). Workers are
spawned lazily, one pool per process, each in its own process group: a
worker killed on a deadline takes with it every process it started, and
Ctrl-C in a terminal reaches the parent only (which then stops the workers,
see :func:`cancel_all`).

Inside a worker, a nested call keeps its own hard limit: the worker forks a
child that runs the nested calls and kills it when one runs past its
deadline (a verifier called by a ``cpu_bound`` reward costs at most the
verifier's ``timeout``, not the reward's). Where ``os.fork`` does not exist,
nested calls run inline, bounded by the outer deadline only.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Sequence

_IN_WORKER = False
IMPORT_GRACE_S = 120.0  # time a fresh worker may spend importing a task's module
POLL_S = 0.25  # how often a waiting map checks whether it was cancelled


@dataclass
class Outcome:
    """What became of one call: a value, an error, or a timeout."""

    ok: bool
    value: Any = None
    error: str | None = None
    timed_out: bool = False
    seconds: float = 0.0


def _worker_main(conn) -> None:
    global _IN_WORKER
    _IN_WORKER = True
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task_id, payload = msg
        try:
            fn, args, kwargs = pickle.loads(payload)
        except BaseException as exc:  # noqa: BLE001 - report, never die silently
            conn.send((task_id, "started", None))
            conn.send(
                (task_id, "error", f"could not load task in the worker ({type(exc).__name__}: {exc}); "
                 "define the function in an importable module, not in __main__ or a notebook cell")
            )
            continue
        conn.send((task_id, "started", None))
        try:
            result = fn(*args, **kwargs)
            conn.send((task_id, "ok", result))
        except BaseException as exc:  # noqa: BLE001
            try:
                conn.send((task_id, "error", f"{type(exc).__name__}: {exc}"))
            except Exception:
                return


#: a worker leads its own process group (POSIX), so killing the group stops what it started
_OWN_PROCESS_GROUP: dict = {"process_group": 0} if os.name == "posix" and sys.version_info >= (3, 11) else (
    {"start_new_session": True} if os.name == "posix" else {}
)


class Cancelled(Exception):
    """A map was cancelled (Ctrl-C): its busy workers were killed."""


class _Worker:
    """One ``python -m grpo_core.runtime.worker`` child, talking over a socketpair.

    A plain subprocess (not multiprocessing) so that the parent's ``__main__``
    is never re-imported and workers may start processes of their own.
    """

    def __init__(self) -> None:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grpo_core.runtime.worker", str(child.fileno())],
            pass_fds=(child.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            **_OWN_PROCESS_GROUP,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.task: int | None = None
        self.started_at: float | None = None
        self.dispatched_at: float = 0.0
        self.timeout: float = 0.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker and everything it started (its process group)."""
        try:
            if _OWN_PROCESS_GROUP:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        try:
            self.conn.close()
        except Exception:
            pass


class KillablePool:
    """A small pool of worker processes that can be killed on a deadline."""

    def __init__(self, size: int | None = None) -> None:
        env = os.environ.get("GRPO_CORE_WORKERS")
        self.size = max(1, size or (int(env) if env else min(2, os.cpu_count() or 1)))
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.killed = 0  # workers killed on a deadline, for metrics
        self._cancel = threading.Event()
        _pools.add(self)

    def cancel(self) -> None:
        """Stop the map in flight (from any thread): its busy workers are killed, it raises :class:`Cancelled`."""
        self._cancel.set()

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.alive()]
        while len(self._workers) < self.size:
            self._workers.append(_Worker())

    def map(self, fn: Callable, arg_list: Sequence[tuple], timeout: float, kwargs_list: Sequence[dict] | None = None) -> list[Outcome]:
        n = len(arg_list)
        kwargs_list = kwargs_list or [{}] * n
        results: list[Outcome | None] = [None] * n
        pending = list(range(n))[::-1]
        with self._lock:
            self._cancel.clear()
            # A worker still holding a task here was abandoned by an interrupted
            # map (KeyboardInterrupt, ...): it may still be computing and would
            # answer for a task of ours, so it is replaced, not reused.
            for w in [w for w in self._workers if w.task is not None]:
                w.kill()
                self._workers.remove(w)
            self._ensure()
            busy: dict[int, _Worker] = {}
            while pending or busy:
                for w in self._workers:
                    if w.task is None and pending:
                        i = pending.pop()
                        try:
                            payload = pickle.dumps((fn, arg_list[i], kwargs_list[i]))
                        except Exception as exc:
                            results[i] = Outcome(False, error=f"task is not picklable: {exc}")
                            continue
                        w.task, w.started_at, w.dispatched_at, w.timeout = i, None, time.monotonic(), timeout
                        try:
                            w.conn.send((i, payload))
                        except OSError:  # the worker died while idle: retry the task on a fresh one
                            pending.append(i)
                            self._replace(w, busy)
                            break
                        busy[id(w)] = w
                if not busy:
                    continue
                now = time.monotonic()
                deadlines = [
                    (w.started_at + w.timeout) if w.started_at else (w.dispatched_at + IMPORT_GRACE_S)
                    for w in busy.values()
                ]
                ready = wait([w.conn for w in busy.values()], timeout=min(POLL_S, max(0.0, min(deadlines) - now)))
                if self._cancel.is_set():
                    for w in list(busy.values()):
                        self._replace(w, busy)
                    raise Cancelled("cancelled; the busy workers were stopped")
                for w in list(busy.values()):
                    if w.conn in ready:
                        try:
                            task_id, kind, value = w.conn.recv()
                        except (EOFError, OSError):
                            results[w.task] = Outcome(False, error="worker process died (crash or out of memory)")
                            self._replace(w, busy)
                            continue
                        if kind == "started":
                            w.started_at = time.monotonic()
                            continue
                        took = time.monotonic() - (w.started_at or w.dispatched_at)
                        results[task_id] = (
                            Outcome(True, value=value, seconds=took) if kind == "ok" else Outcome(False, error=value, seconds=took)
                        )
                        w.task = None
                        del busy[id(w)]
                    else:
                        limit = (w.started_at + w.timeout) if w.started_at else (w.dispatched_at + IMPORT_GRACE_S)
                        if time.monotonic() >= limit:
                            results[w.task] = Outcome(False, error=f"timed out after {w.timeout:g}s", timed_out=True, seconds=w.timeout)
                            self.killed += 1
                            self._replace(w, busy)
        return results  # type: ignore[return-value]

    def _replace(self, w: _Worker, busy: dict) -> None:
        busy.pop(id(w), None)
        w.kill()
        self._workers.remove(w)
        self._workers.append(_Worker())

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                try:
                    w.conn.send(None)
                except Exception:
                    pass
                w.kill()
            self._workers = []


_pools: "weakref.WeakSet[KillablePool]" = weakref.WeakSet()


def cancel_all() -> None:
    """Cancel every map in flight in this process (Ctrl-C): their busy workers are killed at once."""
    for p in list(_pools):
        p.cancel()


_pool: KillablePool | None = None
_pool_pid: int | None = None
_pool_guard = threading.Lock()


def get_pool() -> KillablePool:
    """The process-wide pool, created on first use (and anew after a fork)."""
    global _pool, _pool_pid
    with _pool_guard:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = KillablePool(), os.getpid()
        return _pool


def restart_workers() -> None:
    """Close this process's pool, so the next map starts fresh workers (they inherit ``sys.path`` as it is then)."""
    if _pool is not None and _pool_pid == os.getpid():
        _pool.close()


@atexit.register
def _shutdown() -> None:
    if _pool is not None and _pool_pid == os.getpid():
        _pool.close()


def in_worker() -> bool:
    """True inside a grpo-core worker process, where an outer deadline holds."""
    return _IN_WORKER


def map_with_deadline(fn: Callable, arg_list: Iterable[tuple], timeout: float, kwargs_list: Sequence[dict] | None = None) -> list[Outcome]:
    """Run ``fn(*args)`` for each args tuple, each under a hard ``timeout``."""
    arg_list = list(arg_list)
    kwargs_list = list(kwargs_list) if kwargs_list else [{}] * len(arg_list)
    if _IN_WORKER:
        if not hasattr(os, "fork"):  # no fork (Windows): the outer deadline bounds nested calls
            return [_inline(fn, a, kw) for a, kw in zip(arg_list, kwargs_list)]
        return _forked_map(fn, arg_list, timeout, kwargs_list)
    return get_pool().map(fn, arg_list, timeout, kwargs_list)


def call_with_deadline(fn: Callable, *args, timeout: float, **kwargs) -> Outcome:
    """Run one ``fn(*args, **kwargs)`` under a hard ``timeout`` (seconds)."""
    return map_with_deadline(fn, [args], timeout, [kwargs])[0]


def _inline(fn: Callable, args: tuple, kwargs: dict) -> Outcome:
    t0 = time.monotonic()
    try:
        return Outcome(True, value=fn(*args, **kwargs), seconds=time.monotonic() - t0)
    except Exception as exc:  # noqa: BLE001
        return Outcome(False, error=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - t0)



def _forked_map(fn: Callable, arg_list: list, timeout: float, kwargs_list: list) -> list[Outcome]:
    """Nested calls inside a worker: a forked child runs them one after another, each
    under ``timeout``; a child that runs past one is killed, and a new child takes the rest.

    Forking costs no imports (the child shares what the worker has loaded), and the
    child is in the worker's process group, so a worker killed on its own deadline
    takes the child with it."""
    from multiprocessing.connection import Pipe

    results: list[Outcome | None] = [None] * len(arg_list)
    start = 0
    while start < len(arg_list):
        reader, writer = Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the child: run the rest, report each result, never return
            code = 0
            try:
                reader.close()
                for i in range(start, len(arg_list)):
                    oc = _inline(fn, arg_list[i], kwargs_list[i])
                    try:
                        writer.send((i, oc))
                    except Exception as exc:  # noqa: BLE001 - an unpicklable result
                        writer.send((i, Outcome(False, error=f"result is not picklable: {exc}", seconds=oc.seconds)))
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        writer.close()
        i, began = start, time.monotonic()
        try:
            while i < len(arg_list):
                if reader.poll(max(0.0, began + timeout - time.monotonic())):
                    try:
                        j, oc = reader.recv()
                    except (EOFError, OSError):
                        results[i] = Outcome(False, error="nested call's process died (crash or out of memory)")
                        i += 1
                        break
                    results[j] = oc
                    i, began = j + 1, time.monotonic()
                else:
                    results[i] = Outcome(False, error=f"timed out after {timeout:g}s", timed_out=True, seconds=timeout)
                    i += 1
                    break
        finally:
            reader.close()
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
        start = i
    return results  # type: ignore[return-value]
