"""The reward runtime: a faulty reward costs its own samples, never the run (issue 16 items 7-13, 24; issue 14 item 7).

No test asserts wall-clock time. Waits are bounded generously, and what is
asserted is behaviour: the call returned, the value is None and counted, the
worker is gone, the reward was disabled and the run says so.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import helpers_rewards as h
from conftest import TESTS, run_cli
from grpo_core import hookimpl
from grpo_core.errors import GrpoCoreError
from grpo_core.plugins.registry import Provenance, make_reward_spec
from grpo_core.rewards.engine import BREAKER_TIMEOUTS, DEFAULT_REWARD_TIMEOUT, RewardEngine, RewardError

PROV = Provenance("testplug", "grpo-test-plugin", "9.9")


def spec(func, name=None, **meta):
    return make_reward_spec(func, name, PROV, meta)


def ones(completions, **kwargs):
    return [1.0] * len(completions)


def _gone(pid: int, within: float = 30.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # our own child that has exited but was not reaped yet counts as gone
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


# --- 7: a declared timeout holds, even for code that holds the GIL -------------------------------------


def test_7_timeout_reward_holding_the_gil_is_stopped_in_a_worker():
    """A backtracking regex never releases the GIL; with timeout= it runs in a killable process."""
    e = RewardEngine([(spec(h.backtracking_reward, timeout=1.0), 1.0), (spec(ones), 1.0)])
    try:
        assert e.rewards[0].in_process
        res = e.score(["fine", "evil", "also fine"])
    finally:
        e.close()
    assert res.values["backtracking_reward"] == [1.0, None, 1.0]
    assert res.stats["backtracking_reward"].timeouts == 1
    assert res.values["ones"] == [1.0, 1.0, 1.0]


def test_7_timeout_on_a_reward_that_cannot_reach_a_process_is_refused():
    def local(completions, **kwargs):
        return [0.0] * len(completions)

    with pytest.raises(GrpoCoreError, match=r"declares timeout=2, which grpo-core keeps by running it in a killable worker process"):
        RewardEngine([(spec(local, timeout=2.0), 1.0)])


CHECK_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import helpers_rewards as h
from grpo_core.plugins.registry import Provenance, make_reward_spec
from grpo_core.testing import ConformanceError, {check}
try:
    {call}
except ConformanceError as exc:
    print(exc)
    sys.exit(3)
"""


def _run_check(check: str, call: str) -> subprocess.CompletedProcess:
    """Run a conformance check in a fresh interpreter, bounded, so a regression cannot hang the suite."""
    code = CHECK_SCRIPT.format(tests=str(TESTS), check=check, call=call)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("meta, limit", [("{'timeout': 1.0}", "its declared timeout of 1s"), ("{}", "10s (no timeout declared)")])
def test_7_check_reward_fails_timeout_instead_of_hanging(meta, limit):
    """The reward holds the GIL for ever on the tag-flood edge case: with a timeout (a worker, as in training)
    and without one (a thread in training; the kit runs the edge cases in a worker first)."""
    proc = _run_check("check_reward", f"check_reward(make_reward_spec(h.hangs_on_tags, None, Provenance('t', None, None), {meta}))")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "[timeout]" in proc.stdout and f"it ran past {limit} on the edge cases" in proc.stdout


EVIL_FILE = '''
import re

from grpo_core import hookimpl


def evil(completions, **kwargs):
    """Catastrophic backtracking on every completion: holds the GIL for ever."""
    return [0.0 if re.match(r"^(a+)+$", "a" * 40 + "b") else 1.0 for c in completions]


@hookimpl
def register_rewards(register):
    register(evil, timeout=1.0)
'''


def test_7_and_24_score_stops_a_gil_holding_reward_and_exits_nonzero(tmp_path):
    plugin = tmp_path / "evil_plugin.py"
    plugin.write_text(EVIL_FILE)
    comps = tmp_path / "c.jsonl"
    comps.write_text("".join(json.dumps({"completion": f"reply {i}"}) + "\n" for i in range(3)))
    res = run_cli("score", "--plugins", "evil", "--plugin-file", str(plugin), "--completions", str(comps), timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "evil failed on every sample" in res.stderr
    assert "timed out after 1s" in res.stdout  # the table's last error


def test_24_score_exits_zero_when_rewards_work(tmp_path):
    comps = tmp_path / "c.jsonl"
    comps.write_text(json.dumps({"completion": "<reasoning>a</reasoning><answer>1</answer>"}) + "\n")
    res = run_cli("score", "--plugins", "xml", "--completions", str(comps), timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


CTRL_C_SCRIPT = """
import os, sys, time
sys.path.insert(0, {tests!r})
import helpers_rewards as h
from grpo_core.plugins.registry import Provenance, make_reward_spec
from grpo_core.rewards.engine import RewardEngine
from grpo_core.train.callbacks import GracefulStop

func = h.{reward}
engine = RewardEngine([(make_reward_spec(func, None, Provenance("t", None, None), {{"timeout": 600.0}}), 1.0)])
stop = GracefulStop()
stop.install()
steps = 0
try:
    while not stop.requested:
        engine.score(["x", "y"])
        steps += 1
        print("step", steps, flush=True)
except KeyboardInterrupt:
    print("aborted", flush=True)
    sys.exit(130)
print("stopped at a safe point after step", steps, flush=True)
"""


def _ctrl_c_script(tmp_path: Path, reward: str) -> subprocess.Popen:
    env = {**os.environ, "PIDFILE": str(tmp_path / "worker.pid")}
    return subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT.format(tests=str(TESTS), reward=reward)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_7_ctrl_c_first_press_stops_at_the_next_safe_point(tmp_path):
    proc = _ctrl_c_script(tmp_path, "pid_then_quick")
    try:
        pidfile = tmp_path / "worker.pid"
        end = time.monotonic() + 120
        while not pidfile.exists() and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        assert pidfile.exists(), proc.stderr.read() if proc.poll() is not None else "no step started"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "stopped at a safe point after step" in out
    assert "stopping when this step ends" in err and "saving a checkpoint" in err


def test_7_second_ctrl_c_stops_a_hung_reward_within_seconds_and_kills_its_worker(tmp_path):
    """The reward holds the GIL in a worker (timeout 600 s): the first press waits for the step, the second stops now."""
    proc = _ctrl_c_script(tmp_path, "pid_then_backtrack")
    try:
        pidfile = tmp_path / "worker.pid"
        end = time.monotonic() + 120
        while not (pidfile.exists() and pidfile.read_text().strip()) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        worker = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert proc.poll() is None  # the first press waits for the step to end
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # far less than the reward's 600 s limit
    finally:
        proc.kill()
    assert proc.returncode == 130, out + err
    assert "aborted" in out
    assert _gone(worker), "the worker running the hung reward is still alive"


# --- 8: a default limit for every reward; slow rewards are named ----------------------------------------


def test_8_every_reward_has_a_default_limit(monkeypatch):
    e = RewardEngine([(spec(ones), 1.0)])
    assert e.rewards[0].timeout == DEFAULT_REWARD_TIMEOUT
    monkeypatch.setenv("GRPO_CORE_REWARD_TIMEOUT", "0.3")
    release = threading.Event()

    def stuck(completions, **kwargs):
        release.wait(60)
        return [1.0] * len(completions)

    e = RewardEngine([(spec(stuck), 1.0), (spec(ones), 1.0)])
    try:
        assert e.rewards[0].timeout == 0.3
        res = e.score(["a", "b"])
    finally:
        release.set()
        e.close()
    assert res.values == {"stuck": [None, None], "ones": [1.0, 1.0]}
    assert res.stats["stuck"].timeouts == 2 and "timed out after 0.3s" in res.stats["stuck"].last_error
    monkeypatch.setenv("GRPO_CORE_REWARD_TIMEOUT", "soon")
    with pytest.raises(GrpoCoreError, match="GRPO_CORE_REWARD_TIMEOUT must be a positive number"):
        RewardEngine([(spec(ones), 1.0)])


@pytest.mark.parametrize("where", ["thread", "process"])
def test_8_a_reward_still_running_is_named(where, tmp_path):
    """The notice fires while the reward runs; the reward waits for it (no timing assumptions)."""
    lines: list[str] = []
    seen = threading.Event()
    if where == "thread":
        def slow(completions, **kwargs):
            seen.wait(60)
            return [1.0] * len(completions)

        e = RewardEngine([(spec(slow), 1.0)])
        name = "slow"
    else:  # the worker waits for a file the notice writes
        flag = tmp_path / "noticed"
        e = RewardEngine([(spec(h.wait_for_flag, cpu_bound=True, timeout=60), 1.0)])
        name = "wait_for_flag"

    def notify(line):
        lines.append(line)
        seen.set()
        if where == "process":
            flag.write_text("1")

    e.notify, e.notice_every = notify, 0.2
    try:
        res = e.score(["a"], flag=[str(tmp_path / "noticed")])
    finally:
        e.close()
    assert res.values[name] == [1.0]
    assert lines and lines[0].startswith(f"waiting on reward {name} for 0.2 s")


def test_8_ctrl_c_messages_promise_only_what_happens():
    from grpo_core.train.callbacks import abort_message

    assert "--resume" not in abort_message(None).replace("--resume has nothing", "")
    assert "No checkpoint was written" in abort_message(None)
    assert "--resume continues from runs/x/checkpoint-5" in abort_message("runs/x/checkpoint-5")


# --- 9: nothing that timed out keeps running ----------------------------------------------------------


def test_9_a_busy_thread_reward_is_stopped_at_its_limit():
    h.busy_reward.stopped = None
    e = RewardEngine([(spec(h.busy_reward), 1.0)], default_timeout=0.3)
    e.stop_grace = 60.0  # generous: an interrupted busy loop stops at its next instruction, however loaded the machine
    try:
        res = e.score(["spin"])
        assert res.values["busy_reward"] == [None] and res.stats["busy_reward"].timeouts == 1
        assert h.busy_reward.stopped is True  # the loop was interrupted, not left spinning
        assert not e.rewards[0].moved and not e.rewards[0].disabled and e.warnings == []
        lane = e._lane
        assert lane is not None and lane.thread.is_alive() and not lane.busy
        assert e.score(["fine"]).values["busy_reward"] == [1.0]
        assert e._lane is lane  # the same reward thread serves the next batch
    finally:
        e.close()


def test_9_an_unstoppable_thread_reward_moves_to_a_process_and_the_run_says_so():
    e = RewardEngine([(spec(h.blocked_reward), 1.0)], default_timeout=0.3)
    try:
        res = e.score(["block"])  # time.sleep: an interruption cannot stop it
        assert res.values["blocked_reward"] == [None] and res.stats["blocked_reward"].timeouts == 1
        assert e.rewards[0].moved and e.rewards[0].in_process
        assert any("runs in a killable worker process" in w for w in e.warnings)
        res = e.score(["fine", "block"])  # now in a worker: the hang is killed at the limit
        assert res.values["blocked_reward"] == [1.0, None] and res.stats["blocked_reward"].timeouts == 1
    finally:
        e.close()


def test_9_an_unstoppable_reward_that_cannot_reach_a_process_is_disabled():
    release = threading.Event()

    def sleeper(completions, **kwargs):  # a closure: cannot be pickled
        time.sleep(30) if not release.is_set() else None
        return [1.0] * len(completions)

    e = RewardEngine([(spec(sleeper), 1.0), (spec(ones), 1.0)], default_timeout=0.3)
    try:
        e.score(["a"])
        assert e.rewards[0].disabled and any("disabled for the rest of this run" in w for w in e.warnings)
        res = e.score(["a", "b"])
    finally:
        release.set()
        e.close()
    assert res.values == {"sleeper": [None, None], "ones": [1.0, 1.0]}
    assert res.stats["sleeper"].disabled == 2


# --- 10: the circuit breaker; the reward phase on the step line ---------------------------------------


def test_10_circuit_breaker_disables_a_hanging_cpu_bound_reward():
    e = RewardEngine([(spec(h.always_hangs, cpu_bound=True, timeout=0.5), 1.0), (spec(ones), 1.0)])
    lines: list[str] = []
    e.notify = lines.append
    try:
        res = e.score([f"c{i}" for i in range(8)])
        st = res.stats["always_hangs"]
        assert res.values["always_hangs"] == [None] * 8 and res.values["ones"] == [1.0] * 8
        assert BREAKER_TIMEOUTS <= st.timeouts < 8 and st.timeouts + st.disabled == 8  # it stopped early
        assert e.rewards[0].disabled
        assert any("circuit breaker disabled it" in w for w in e.warnings)
        assert any(line.startswith("WARNING: reward 'always_hangs'") for line in lines)
        again = e.score(["a", "b"])  # disabled: no worker is asked
        assert again.stats["always_hangs"].disabled == 2 and again.stats["always_hangs"].timeouts == 0
    finally:
        e.close()


def test_10_a_success_resets_the_breaker():
    e = RewardEngine([(spec(h.sleepy_reward, cpu_bound=True, timeout=0.5), 1.0)])
    try:
        for _ in range(BREAKER_TIMEOUTS):  # one hang per batch, among good samples
            res = e.score(["ok", "hang", "ok"])
            assert res.values["sleepy_reward"] == [1.0, None, 1.0]
        assert not e.rewards[0].disabled
    finally:
        e.close()


def test_10_step_line_shows_the_reward_phase_and_engine_warnings_reach_run_json(capsys):
    pytest.importorskip("transformers")
    from grpo_core.train.callbacks import ProgressCallback

    e = RewardEngine([(spec(h.always_hangs, cpu_bound=True, timeout=0.5), 1.0)])
    progress = ProgressCallback(e.names, engine=e)
    try:
        e.score(["a", "b", "c", "d"])
    finally:
        e.close()
    progress._print_line(["step 1/2"], {"time/step_s": 1.5, "time/generate_s": 0.5, "time/rewards_s": 0.75, "time/train_s": 0.25})
    out = capsys.readouterr().out
    assert "1.50s/step (gen 0.50, rewards 0.75, train 0.25)" in out
    assert "WARNING: reward 'always_hangs'" in out  # the engine's notice, on the progress stream
    assert any("circuit breaker" in w for w in progress.warnings)
    assert any("failed on 4 of 4 samples" in w and "carries no signal" in w for w in progress.warnings)


# --- 11: the report shows failed rewards -------------------------------------------------------------


def test_11_report_has_a_failure_section_and_never_a_plain_zero(tmp_path):
    from grpo_core.evaluation.report import failure_steps, write_report

    e = RewardEngine([(spec(h.raising_reward), 1.0), (spec(ones), 1.0)])
    e.score(["boom 1", "boom 2"])
    e.close()
    info = {
        "model": "m", "backend": "trl", "dataset": {"spec": "arithmetic:train"}, "global_step": 2, "status": "finished",
        "rewards": [{"name": "raising_reward", "weight": 1.0}, {"name": "ones", "weight": 1.0}],
        "reward_totals": {k: vars(v) for k, v in e.totals.items()},
    }
    history = [{"step": s, "reward": 1.0, "rewards/raising_reward/mean": math.nan, "rewards/raising_reward/errors": 2.0,
                "rewards/ones/mean": 1.0} for s in (1, 2)]
    text = write_report(tmp_path, info, history, None).read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| raising_reward ⚠"))
    assert "failed on 100% of samples" in row and "raised 2" in row and "0.000" not in row and "n/a" in row
    assert "## Reward errors, timeouts and Nones" in text
    assert "| raising_reward | 2 | 2 (100%) | 0 (0%) | 0 (0%) | 0 (0%) | 0 (0%) | 2 (100%) | ValueError: boom in completion |" in text
    assert "**raising_reward failed on every sample**" in text
    assert failure_steps(history, "raising_reward") == [1, 2] and failure_steps(history, "ones") == []
    assert any("raising_reward" in w and "failed on 2 of 2" in w for w in e.failure_warnings())


# --- 12: the value contract ---------------------------------------------------------------------------


def as_dict(completions, **kwargs):
    return {str(i + 1): 0.0 for i in range(len(completions))}  # its keys read as numbers: 1.0, 2.0


def as_strings(completions, **kwargs):
    return ["0.5"] * len(completions)


def as_bools(completions, **kwargs):
    return [True] * len(completions)


def as_nan(completions, **kwargs):
    return [math.nan] * len(completions)


@pytest.mark.parametrize("func, kind, phrase", [
    (as_dict, "bad_length", "returned dict"),
    (as_strings, "bad_values", "is str '0.5', not a float"),
    (as_bools, "bad_values", "is a bool (True); return 1.0 or 0.0"),
    (as_nan, "bad_values", "is nan; return None"),
])
def test_12_values_outside_the_contract_are_errors_naming_the_plugin(func, kind, phrase, capsys):
    res = RewardEngine([(spec(func), 1.0)]).score(["a", "b"])
    st = res.stats[func.__name__]
    assert res.values[func.__name__] == [None, None]
    assert st.errors == 2 and getattr(st, kind) == 2 and phrase in st.last_error
    err = capsys.readouterr().err
    assert "grpo-test-plugin 9.9" in err and repr(func.__name__) in err
    with pytest.raises(RewardError, match=func.__name__):
        RewardEngine([(spec(func), 1.0)], on_error="raise").score(["a", "b"])


def test_12_ints_tuples_and_numpy_values_are_numbers():
    np = pytest.importorskip("numpy")

    def mixed(completions, **kwargs):
        return (1, 2.5, None, np.float32(0.5))

    def array(completions, **kwargs):
        return np.array([1.0, 0.0, 2.0, 3.0])

    res = RewardEngine([(spec(mixed), 1.0), (spec(array), 1.0)]).score(list("abcd"))
    assert res.values == {"mixed": [1.0, 2.5, None, 0.5], "array": [1.0, 0.0, 2.0, 3.0]}
    assert res.stats["mixed"].errors == 0 and res.stats["array"].errors == 0


# --- 13: the conformance kit never hangs on a verifier --------------------------------------------------


def test_13_check_verifier_fails_never_hangs_on_a_gil_holding_quick_compare():
    proc = _run_check("check_verifier", "check_verifier(h.FractionQuickVerifier(), golds=['42'])")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "[never hangs]" in proc.stdout and "float_overflow" in proc.stdout


def test_13_hooks_doc_says_how_quick_compare_runs_and_what_golds_is():
    hooks = " ".join((TESTS.parent / "docs" / "plugins" / "hooks.md").read_text().split())
    assert "`quick_compare(gold, pred)` runs inline, in the caller's process, with no time limit" in hooks
    assert "returning `None` hands the pair to `compare`" in hooks
    assert "`check_verifier(verifier, golds=[...])`" in hooks and "`golds=` is a list of gold answers" in hooks


# --- 14.7: a verifier's own limit holds inside a worker --------------------------------------------------


def test_14_7_a_hung_verifier_inside_a_cpu_bound_reward_costs_only_its_own_limit(grpo_register):
    class P:
        @staticmethod
        @hookimpl
        def register_verifiers(register):
            register(h.HangingVerifier())

    grpo_register(P, name="hanging-verifier")
    # the reward's limit (120 s) is far above the verifier's (0.5 s): were the verifier bounded only by the
    # reward's limit, the reward would time out; instead each comparison times out, and the reward returns
    e = RewardEngine([(spec(h.verifier_reward, cpu_bound=True, timeout=120.0), 1.0)])
    try:
        res = e.score(["<answer>1</answer>", "<answer>2</answer>"], answer=["1", "3"])
    finally:
        e.close()
    st = res.stats["verifier_reward"]
    assert st.timeouts == 0 and st.errors == 0, st.last_error
    # None: the verifier timed out (not -1.0: the worker found the verifier without loading every plugin)
    assert res.values["verifier_reward"] == [None, None]
