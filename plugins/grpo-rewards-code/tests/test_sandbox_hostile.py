"""Hostile programs: each comes back inside its limits, leaves nothing behind, and never
touches this (the trainer's) process.

Every isolation layer that works on this machine is tested (``rlimits`` always
does); the programs of one layer run as one concurrent batch to keep this fast.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpo_rewards_code import sandbox
from grpo_rewards_code.sandbox import JAIL, Limits, execute_many

LIMITS = Limits(timeout=2.0, cpu=1, memory_mb=256, output_bytes=16 * 1024, processes=16)
#: the wall-clock deadline kills the group; reading what is left and reaping may add a little
SLACK = 5.0
CANARY_DIR = Path("/tmp")  # world-writable on the host: a sandbox that leaks could write here


def _hostile(canary: str, home: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (program, the ways it may end). ``finished`` means it ran to the end without harm."""
    return {
        "fork_bomb": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", {"timeout", "cpu_limit", "killed"}),
        "busy_loop": ("while True:\n    pass", {"timeout", "cpu_limit", "killed"}),
        "sleeping_loop": ("import time\nwhile True:\n    time.sleep(0.1)", {"timeout"}),
        "memory_bomb": ("x = []\nwhile True:\n    x.append(bytearray(10**8))", {"finished", "crash", "cpu_limit", "killed", "timeout"}),
        "output_flood": ("while True:\n    print('x' * 4096)", {"output_limit"}),
        "write_outside": (f"open({canary!r}, 'w').write('leak')", {"finished"}),
        "write_home": (f"open({home + '/leak'!r}, 'w').write('leak')", {"finished"}),
        "read_passwd": ("print(open('/etc/passwd').read())", {"finished"}),
        "read_ssh": (f"import os\nprint(os.listdir({home + '/.ssh'!r}))", {"finished"}),
        "read_environment": ("import os\nprint(sorted(os.environ))\nassert not os.environ, dict(os.environ)", {"finished"}),
        "socket_local": ("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)", {"finished"}),
        "socket_outside": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", {"finished"}),
        "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", {"finished"}),
        "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)", {"finished", "killed"}),
        "ignore_signals": (
            "import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n"
            "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(1000)",
            {"timeout"},
        ),
        "sys_exit_odd": ("import sys\nsys.exit(object())", {"finished"}),
        "sys_exit_big": ("import sys\nsys.exit(2**70)", {"finished"}),
        "os_exit": ("import os\nos._exit(77)", {"exit"}),
        "thread_outlives_main": ("import threading, time\nthreading.Thread(target=time.sleep, args=(1000,)).start()", {"finished"}),
        "spawn_bash": (
            "import subprocess\nsubprocess.Popen(['bash', '-c', 'sleep 1000 & sleep 1000'])\nimport time\ntime.sleep(1000)",
            {"timeout", "finished"},
        ),
        "escape_group": ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)", {"finished"}),
        "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)", {"finished"}),
        "ctypes_null": ("import ctypes\nctypes.string_at(0)", {"crash"}),
    }


def _layers() -> list[str]:
    found = []
    for layer in sandbox.ISOLATIONS:
        why = sandbox._probe(layer)
        if why is None:
            found.append(layer)
    return found


LAYERS = _layers()


def _parent(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[1].decode()
    except OSError:
        return None


def _descends_from_me(pid: str) -> bool:
    me = str(os.getpid())
    while pid not in (None, "0", "1"):
        if pid == me:
            return True
        pid = _parent(pid)
    return False


def _stray(marker_uids: set[int]) -> list[str]:
    """Live processes of this test's sandboxes: run by a uid they leased, or a launcher this process started.

    Not every launcher on the machine: other suites or trainers may run sandboxes at the same time."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[-1].split()[0]
            if state == b"Z":
                continue
            uid = entry.stat().st_uid
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if uid in marker_uids or ((JAIL in cmd or "/jail.py" in cmd) and _descends_from_me(entry.name)):
            out.append(f"{entry.name} uid={uid} {cmd[:120]}")
    return out


def _wait_gone(uids: set[int]) -> list[str]:
    for _ in range(100):  # the kernel tears a pid namespace down asynchronously
        left = _stray(uids)
        if not left:
            return []
        time.sleep(0.05)
    return left


@pytest.fixture
def leased_uids(monkeypatch) -> set[int]:
    """The sandbox uids this test's executions lease."""
    seen: set[int] = set()
    lease = sandbox._lease_uid

    def recording():
        uid, fd = lease()
        if uid is not None:
            seen.add(uid)
        return uid, fd

    monkeypatch.setattr(sandbox, "_lease_uid", recording)
    return seen


@pytest.mark.parametrize("layer", LAYERS)
def test_hostile_programs_are_contained(layer, tmp_path, monkeypatch, leased_uids):
    monkeypatch.setattr(sandbox, "_chosen", layer)
    canary = str(CANARY_DIR / f"grpo-code-canary-{uuid.uuid4().hex}")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("SECRET")
    os.chmod(tmp_path, 0o777)
    os.chmod(home, 0o777)  # writable for the sandbox's uid: only the isolation may stop it
    cases = _hostile(canary, str(home))
    got_signal = []
    old = signal.signal(signal.SIGTERM, lambda *a: got_signal.append(a))
    before_threads = set(threading.enumerate())
    try:
        runs = execute_many([(prog, ["assert True"]) for prog, _ in cases.values()], LIMITS, workers=4)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert not got_signal
    assert set(threading.enumerate()) - before_threads == set()  # no thread left behind (other tests' may have ended)
    assert len(leased_uids) == (len(cases) if os.geteuid() == 0 else 0)  # one uid per execution
    assert _wait_gone(leased_uids) == []
    namespaced = layer != "rlimits"
    for (name, (_, endings)), ex in zip(cases.items(), runs):
        assert ex is not None, name
        assert ex.ended in endings, (name, ex)
        assert ex.seconds < LIMITS.timeout + SLACK, (name, ex.seconds)
        assert len(ex.output) <= LIMITS.output_bytes, name
        if name == "read_environment":
            assert ex.program_ok, ex  # nothing in its environment at all
        if name in ("read_passwd", "read_ssh") and namespaced:
            assert not ex.program_ok and "FileNotFoundError" in ex.program_error.detail, (name, ex)  # invisible
            assert "root:" not in ex.output and "id_rsa" not in ex.output
        if name == "socket_outside" and namespaced:
            assert not ex.program_ok and ex.program_error.kind == "forbidden", ex
        if name == "kill_parent":  # refused (another uid), or aimed at a pid-namespace init, which ignores it
            assert ex.program_ok or ex.program_error.kind == "forbidden", ex
        if name == "memory_bomb" and ex.ended == "finished":
            assert ex.program_error.kind == "memory", ex
        if name == "deep_recursion":
            assert "RecursionError" in ex.program_error.detail, ex
        if name in ("sys_exit_odd", "sys_exit_big"):
            assert ex.program_error.kind == "exit" and ex.tests[0].kind == "not_run", ex
        if name == "thread_outlives_main":
            assert ex.tests[0].ok, ex  # the tests ran; the thread died with the process
        if name == "escape_group":
            assert ex.tests[0].ok, ex
    assert not Path(canary).exists()
    assert not (home / "leak").exists()
    assert os.getpid() > 0 and signal.getsignal(signal.SIGTERM) is old


def test_the_test_process_is_untouched_by_a_parent_killer(tmp_path):
    """The one that aims at the trainer directly: its pid, sent in the program text."""
    me = os.getpid()
    runs = execute_many([(f"import os, signal\nos.kill({me}, signal.SIGKILL)", [])], LIMITS)
    assert runs[0].program_error is not None and runs[0].program_error.kind in ("forbidden", "exception")


def test_temp_dirs_are_gone_afterwards(monkeypatch):
    monkeypatch.setattr(sandbox, "_chosen", "rlimits")
    made = []
    real = sandbox.tempfile.mkdtemp

    def spy(*a, **kw):
        made.append(real(*a, **kw))
        return made[-1]

    monkeypatch.setattr(sandbox.tempfile, "mkdtemp", spy)
    ex = sandbox.execute("open('scratch.txt', 'w').write('x' * 100)\nimport os\nassert os.path.exists('scratch.txt')", [], LIMITS)
    assert ex.program_ok, ex
    assert made and not any(os.path.exists(p) for p in made)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    code=st.one_of(
        st.integers(-(2**80), 2**80).map(lambda n: f"import sys\nsys.exit({n})"),
        st.integers(0, 255).map(lambda n: f"import os\nos._exit({n})"),
        st.sampled_from(["SIGTERM", "SIGKILL", "SIGSEGV", "SIGABRT", "SIGUSR1", "SIGXCPU"]).map(
            lambda s: f"import os, signal\nos.kill(os.getpid(), signal.{s})"
        ),
        st.text(max_size=200),
        st.binary(max_size=100).map(lambda b: f"print({b!r})"),
    )
)
def test_any_ending_is_reported_never_raised(code):
    """Whatever a program does to end itself, the run is reported, the test process carries on."""
    ex = execute_many([(code, ["assert True"])], LIMITS)[0]
    assert ex is not None
    assert ex.ended != "sandbox_error", ex
    assert len(ex.tests) == 1
    if ex.tests[0].ok:
        assert ex.program_ok and ex.ended == "finished"


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are leased only when the trainer runs as root")
def test_a_leased_uid_is_never_handed_out_again_on_this_machine_until_released(monkeypatch):
    import itertools
    import subprocess
    import sys

    uid, fd = sandbox._lease_uid()
    try:
        # another process on the machine cannot take the same lease
        probe = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
                 "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")
        lease_file = str(sandbox.UID_LEASES / str(uid))
        assert subprocess.run([sys.executable, "-c", probe, lease_file]).returncode == 3
        # an execution that starts its search at the same uid moves on to the next free one
        offset = (uid - sandbox.UID_BASE) - os.getpid() * 61
        monkeypatch.setattr(sandbox, "_uid_counter", itertools.count(offset))
        other, other_fd = sandbox._lease_uid()
        assert other != uid
        sandbox._end_lease(other_fd)
    finally:
        sandbox._end_lease(fd)
    assert subprocess.run([sys.executable, "-c", probe, lease_file]).returncode == 0  # released


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are leased only when the trainer runs as root")
def test_a_lease_folder_others_can_write_is_refused(monkeypatch, tmp_path):
    from grpo_core import ConfigError

    loose = tmp_path / "leases"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    monkeypatch.setattr(sandbox, "UID_LEASES", loose)
    with pytest.raises(ConfigError, match="must be a folder owned by root with mode 0700; remove it and run again"):
        sandbox._lease_uid()
