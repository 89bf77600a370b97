"""The killable deadline pool: hard limits that hold for any code, on any thread."""

from __future__ import annotations

import threading
import time

import pytest

import helpers_rewards as h
from grpo_core.runtime import deadline
from grpo_core.runtime.deadline import KillablePool, call_with_deadline, map_with_deadline


@pytest.fixture(scope="module")
def pool():
    p = KillablePool(size=2)
    yield p
    p.close()


def test_results_in_order(pool):
    out = pool.map(h.add, [(i, 10) for i in range(7)], timeout=20)
    assert [o.value for o in out] == [i + 10 for i in range(7)]
    assert all(o.ok and not o.timed_out and o.error is None for o in out)


def test_a_hanging_call_is_killed_and_the_pool_recovers(pool):
    killed_before = pool.killed
    pids_before = {w.proc.pid for w in pool._workers}
    t0 = time.monotonic()
    out = pool.map(h.hang, [(60,), ()], timeout=1.0, kwargs_list=[{}, {"seconds": 0}])
    assert time.monotonic() - t0 < 30  # far below the 60 s the call would take
    assert out[0].timed_out and not out[0].ok and "timed out after 1s" in out[0].error
    assert out[1].ok and out[1].value == "woke"
    assert pool.killed == killed_before + 1
    # the killed worker was replaced; the pool still works
    assert len(pool._workers) == 2 and all(w.alive() for w in pool._workers)
    assert {w.proc.pid for w in pool._workers} != pids_before
    assert [o.value for o in pool.map(h.add, [(1, 2)], timeout=20)] == [3]


def test_errors_are_reported_not_raised(pool):
    (out,) = pool.map(h.fail, [("bad input",)], timeout=20)
    assert not out.ok and not out.timed_out
    assert out.error == "RuntimeError: bad input"


def test_a_dying_worker_is_reported_and_replaced(pool):
    out = pool.map(h.die, [()], timeout=20)
    assert not out[0].ok and "worker process died" in out[0].error
    assert pool.map(h.add, [(2, 2)], timeout=20)[0].value == 4


def test_unpicklable_tasks_are_reported(pool):
    (out,) = pool.map(lambda: 1, [()], timeout=20)
    assert not out.ok and "not picklable" in out.error


def test_functions_from_unimportable_modules_are_explained(pool, tmp_path, monkeypatch):
    mod = tmp_path / "only_here_mod.py"
    mod.write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    m = importlib.import_module("only_here_mod")
    mod.unlink()  # the worker cannot import it (its sys.path is fixed at spawn anyway)
    (out,) = pool.map(m.f, [()], timeout=20)
    assert not out.ok and "could not load task in the worker" in out.error


def test_works_from_a_non_main_thread(pool):
    box = {}

    def target():
        box["out"] = pool.map(h.hang, [(60,), (0,)], timeout=1.0)

    th = threading.Thread(target=target)
    th.start()
    th.join(60)
    assert not th.is_alive()
    assert box["out"][0].timed_out and box["out"][1].value == "woke"


def test_runs_in_separate_processes(pool):
    import os

    pids = [o.value for o in pool.map(h.pid, [()] * 4, timeout=20)]
    assert os.getpid() not in pids


def test_module_level_helpers_and_nested_calls_in_worker():
    assert call_with_deadline(h.add, 2, 3, timeout=20).value == 5
    assert [o.value for o in map_with_deadline(h.add, [(1, 1), (2, 2)], timeout=20)] == [2, 4]
    # inside a worker, nested calls keep their own hard limit: a forked child runs them and is killed on time
    assert not deadline.in_worker()
    deadline._IN_WORKER = True
    try:
        assert call_with_deadline(h.add, 1, 2, timeout=20).value == 3
        err = call_with_deadline(h.fail, "x", timeout=20)
        assert not err.ok and err.error == "RuntimeError: x"
        out = map_with_deadline(h.add, [(1, 1), (0,), (2, 2)], timeout=20)
        assert [o.value for o in out] == [2, None, 4] and "TypeError" in out[1].error
        hung, after = map_with_deadline(h.hang, [(60,), (0,)], timeout=0.5)
        assert hung.timed_out and not hung.ok and after.value == "woke"  # a fresh child took the rest
    finally:
        deadline._IN_WORKER = False


def test_an_interrupted_map_does_not_wedge_the_pool():
    """A map interrupted mid-flight (Ctrl-C) leaves workers holding a task; the next map must still run."""
    p = KillablePool(size=1)
    try:
        p._ensure()
        w = p._workers[0]
        w.task = 0  # as if a previous map had been interrupted while this worker was busy
        box = {}
        th = threading.Thread(target=lambda: box.setdefault("out", p.map(h.add, [(1, 1)], timeout=20)), daemon=True)
        th.start()
        th.join(60)
        assert not th.is_alive(), "map hung on a worker left busy by an interrupted map"
        assert box["out"][0].value == 2
    finally:
        p.close()
