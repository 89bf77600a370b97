"""Run untrusted Python programs, locally and offline, each in its own sandbox.

One execution (:func:`execute`) is one short-lived process tree, started in a
new session (its own process group) with an empty environment, under

* an isolation layer chosen once per process (:func:`isolation`), best first:

  - ``bwrap``: bubblewrap builds new pid/net/ipc/uts/mount namespaces (and a user
    namespace when not root), the launcher as their pid 1,
    with a minimal read-only root (``/usr``, the Python prefix, ``/dev`` and
    ``/proc`` of its own) and a fresh ``tmpfs`` at ``/tmp``;
  - ``namespaces`` (as root) or ``userns`` (as any user, through a user
    namespace): ``unshare`` gives new pid, net and mount namespaces and the
    in-sandbox launcher (:mod:`._jail`) builds the same minimal root itself;
  - ``rlimits``: no namespaces could be made. Only rlimits, a dropped uid (as
    root), a private temporary directory and the process-group kill remain;
    :func:`isolation` says so loudly, and ``docs/plugins/code.md`` lists what
    that leaves open;

* rlimits on CPU seconds, address space, file size, open files and process
  count (:class:`Limits`), and an unprivileged user with ``no_new_privs``;
* a wall-clock deadline after which the whole group (and with it the pid
  namespace) is killed, and a cap on the output kept (more output kills it).

:func:`execute_many` runs executions concurrently, ``workers`` at a time
(default: twice the cores, since a sleeping program holds a slot but no core
and a busy one is stopped by its CPU limit), and each run has its own uid
when running as root so that one program's fork bomb cannot use up another's
process limit.

Choose the layer with ``GRPO_CODE_SANDBOX=bwrap|namespaces|userns|rlimits``
(``auto``, the default, takes the first that works).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import marshal
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grpo_core import ConfigError

JAIL = str(Path(__file__).parent / "_jail.py")
ISOLATIONS = ("bwrap", "namespaces", "userns", "rlimits")
ENV_VAR = "GRPO_CODE_SANDBOX"
#: uids the sandboxes run as when started by root: a fresh one per execution, round the range, so no
#: two runs share one and what a killed run leaves for the system to reap never counts against the next.
#: Each is leased with an flock on a file in UID_LEASES, so trainers and ranks on one machine never share one
#: either (without a pid namespace, a run's cleanup kills every process of its uid).
UID_BASE, UID_COUNT = 611_000, 4096
UID_LEASES = Path(tempfile.gettempdir()) / "grpo-rewards-code-uids"
RESULTS_CAP = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one execution may use. ``timeout`` is wall-clock seconds for the whole run."""

    timeout: float = 5.0
    cpu: int = 5  #: CPU seconds (RLIMIT_CPU; one more second and SIGKILL)
    memory_mb: int = 512  #: address space (RLIMIT_AS)
    file_mb: int = 8  #: the largest file it may write (RLIMIT_FSIZE)
    tmp_mb: int = 32  #: the size of its /tmp (namespaces; a tmpfs)
    open_files: int = 64  #: RLIMIT_NOFILE
    processes: int = 16  #: RLIMIT_NPROC (per sandbox in namespaces; per uid otherwise)
    output_bytes: int = 64 * 1024  #: stdout+stderr kept; more kills the run
    recursion: int = 2000  #: Python's recursion limit inside

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise ConfigError(f"sandbox limit {name} must be a positive number, got {value!r}.")


@dataclass
class TestResult:
    ok: bool
    #: assertion | exception | memory | forbidden | exit | timeout | cpu_limit | killed | output_limit |
    #: file_limit | crash | not_run
    kind: str = ""
    detail: str = ""


@dataclass
class Execution:
    """How one run ended: the program's own outcome and one :class:`TestResult` per test."""

    program_ok: bool
    tests: list[TestResult]
    ended: str  #: finished | timeout | cpu_limit | killed | output_limit | file_limit | crash | exit | sandbox_error
    detail: str = ""
    output: str = ""
    seconds: float = 0.0
    isolation: str = ""
    program_error: TestResult | None = field(default=None)

    @property
    def passed(self) -> int:
        return sum(t.ok for t in self.tests)


# --- choosing the isolation layer -------------------------------------------------------------------

_chosen: str | None = None
_choose_lock = threading.Lock()


def _python() -> str:
    """The interpreter to run the launcher with: the real binary, not a venv's link to it."""
    return os.path.realpath(sys.executable)


def _binds() -> list[str]:
    """Folders the sandbox needs besides /usr: the Python prefix when it lives elsewhere."""
    paths = {os.path.realpath(sys.base_prefix), os.path.dirname(_python())}
    return sorted(p for p in paths if not p.startswith("/usr/"))


def command(isolation: str, limits: Limits) -> list[str]:
    """The argv that starts the launcher under ``isolation`` (it reads the job on stdin)."""
    py = [_python(), "-I", "-S", "-B", JAIL]
    death = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
    if isolation == "bwrap":
        # no user namespace as root: the launcher then runs as real root with only the capabilities it needs
        # to drop to its own uid (inside a user namespace root's files would still be its own)
        users = ["--unshare-user"] if os.geteuid() != 0 else ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        argv = ["bwrap", *users, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--as-pid-1", "--new-session", "--clearenv",
                "--ro-bind", "/usr", "/usr", "--dev", "/dev", "--proc", "/proc", "--dir", "/etc", "--chdir", "/tmp"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                argv += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                argv += ["--ro-bind", top, top]
        for path in _binds():  # the folders above it traversable by the sandbox's uid (bwrap makes them 0700)
            parents = [str(p) for p in reversed(Path(path).parents) if str(p) != "/"]
            argv += [arg for p in parents for arg in ("--perms", "0755", "--dir", p)] + ["--ro-bind", path, path]
        argv += ["--size", str(limits.tmp_mb * 1024 * 1024), "--perms", "1777", "--tmpfs", "/tmp",
                 "--ro-bind", JAIL, "/jail.py", "--remount-ro", "/"]
        return death + argv + ["--"] + py[:-1] + ["/jail.py"]
    if isolation == "namespaces":
        return death + ["unshare", "--net", "--pid", "--mount", "--ipc", "--uts", "--fork", "--kill-child"] + py
    if isolation == "userns":
        return death + ["unshare", "--user", "--map-root-user", "--net", "--pid", "--mount", "--ipc", "--uts",
                        "--fork", "--kill-child"] + py
    if isolation == "rlimits":
        return death + py
    raise ConfigError(f"unknown sandbox isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)} (or auto).")


def _candidates() -> list[str]:
    out = []
    if shutil.which("bwrap"):
        out.append("bwrap")
    if shutil.which("unshare"):
        out.append("namespaces" if os.geteuid() == 0 else "userns")
    return out + ["rlimits"]


PROBE = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\n"


def _probe(isolation: str) -> str | None:
    """None when ``isolation`` works on this machine, else why not."""
    tests = ["import os\nassert not os.path.exists('/etc/passwd')"] if isolation != "rlimits" else []
    try:
        ex = _run_once(isolation, PROBE, tests, Limits(timeout=20))
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if ex.ended != "finished" or not ex.program_ok or ex.passed != len(tests):
        return f"{ex.ended}: {ex.detail or ex.output.strip()[-300:]}"
    return None


def isolation(announce: bool = True) -> str:
    """The isolation layer in use (chosen on first call, then fixed), announced once on stderr."""
    global _chosen
    with _choose_lock:
        if _chosen is not None:
            return _chosen
        wanted = os.environ.get(ENV_VAR, "auto").strip() or "auto"
        if wanted != "auto" and wanted not in ISOLATIONS:
            raise ConfigError(f"{ENV_VAR}={wanted!r} is not a sandbox isolation; choose auto or one of {', '.join(ISOLATIONS)}.")
        tried = []
        for cand in [wanted] if wanted != "auto" else _candidates():
            why = _probe(cand)
            if why is None:
                _chosen = cand
                break
            tried.append(f"{cand} ({why})")
        if _chosen is None:
            raise ConfigError(f"no sandbox could run a program here: {'; '.join(tried)}. Set {ENV_VAR} to one of {', '.join(ISOLATIONS)}.")
        if announce:
            _announce(_chosen, tried)
        return _chosen


def _announce(chosen: str, tried: list[str]) -> None:
    who = "root, programs run as unprivileged uids" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    if chosen == "rlimits":
        print(
            "grpo-rewards-code: WARNING: code runs with rlimits only: no network, mount or pid namespace "
            f"could be made ({'; '.join(tried) or 'forced by ' + ENV_VAR}). Programs can reach the network, "
            "read what this user can read, and signal this user's processes. See docs/plugins/code.md.",
            file=sys.stderr,
        )
    else:
        skipped = f"; not available: {'; '.join(tried)}" if tried else ""
        print(f"grpo-rewards-code: sandbox isolation: {chosen} ({who}){skipped}", file=sys.stderr)


def reset_isolation() -> None:
    """Forget the chosen layer (tests, or after changing GRPO_CODE_SANDBOX)."""
    global _chosen
    with _choose_lock:
        _chosen = None


# --- one execution ----------------------------------------------------------------------------------


def execute(program: str, tests: list[str] = (), limits: Limits | None = None) -> Execution:
    """Run ``program`` then each test snippet in its namespace, in a sandbox. Never raises for bad programs."""
    return _run_once(isolation(), program, list(tests), limits or Limits())


def _run_once(iso: str, program: str, tests: list[str], limits: Limits) -> Execution:
    token = uuid.uuid4().hex
    workdir = tempfile.mkdtemp(prefix="grpo-code-") if iso == "rlimits" else None
    uid, lease = _lease_uid()
    if workdir and uid is not None:
        os.chown(workdir, uid, uid)
    r_res, w_res = os.pipe()
    job = {"isolation": iso, "program": program, "tests": tests, "token": token, "uid": uid, "workdir": workdir,
           "binds": _binds(), "limits": asdict(limits), "results_fd": w_res}
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            command(iso, limits), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(w_res,), env={}, start_new_session=True, cwd="/",
        )
    except BaseException:
        os.close(r_res)
        os.close(w_res)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        _end_lease(lease)
        raise
    os.close(w_res)
    try:
        output, results, why = _collect(proc, marshal.dumps(job), r_res, limits, t0)
    finally:
        _kill_group(proc)
        os.close(r_res)
        if iso == "rlimits" and uid is not None:
            _kill_uid(uid)  # without a pid namespace, what left the process group is found by its uid,
            _remove_files_of(uid)  # and without a mount namespace, what it wrote in shared temp folders
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        _end_lease(lease)  # only now: the uid has no process and no file left
    return _interpret(output, results, why, token, len(tests), limits, time.monotonic() - t0, iso)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _kill_uid(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (one run's own uid), until none is left."""
    for _ in range(50):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid != uid:
                    continue
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                        continue  # already dead, waiting for its new parent to reap it
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        if not found:
            return
        time.sleep(0.01)


#: the world-writable folders a program running as its own uid could write to without namespaces
SHARED_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def _remove_files_of(uid: int) -> None:
    """Delete what ``uid`` left at the top of the shared temporary folders (rlimits mode, as root)."""
    for folder in SHARED_TEMP_DIRS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


def _collect(proc, job: bytes, r_res: int, limits: Limits, t0: float):
    """Feed the job, then read output and results until both close, the deadline passes, or output overflows."""
    proc.stdin.write(job)
    proc.stdin.close()
    out_fd = proc.stdout.fileno()
    sel = selectors.DefaultSelector()
    sel.register(out_fd, selectors.EVENT_READ, "out")
    sel.register(r_res, selectors.EVENT_READ, "res")
    output, results, why = bytearray(), bytearray(), None
    open_fds, launcher_gone = 2, False
    try:
        while open_fds:
            left = limits.timeout - (time.monotonic() - t0)
            if left <= 0:
                why = "timeout"
                break
            # once the launcher has exited, only a process that escaped it can hold the pipes open:
            # take what is already written and stop
            launcher_gone = launcher_gone or proc.poll() is not None
            ready = sel.select(0 if launcher_gone else min(left, 0.25))
            if launcher_gone and not ready:
                break
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    open_fds -= 1
                    continue
                buf = output if key.data == "out" else results
                buf += chunk
                if len(output) > limits.output_bytes or len(results) > RESULTS_CAP:
                    why = "output_limit"
                    break
            if why:
                break
    finally:
        sel.close()
        proc.stdout.close()
    return bytes(output[: limits.output_bytes]), bytes(results[:RESULTS_CAP]), why


_SIGNAL_KIND = {signal.SIGXCPU: "cpu_limit", signal.SIGKILL: "killed", signal.SIGSEGV: "crash", signal.SIGBUS: "crash",
                signal.SIGABRT: "crash", signal.SIGILL: "crash", signal.SIGFPE: "crash", signal.SIGXFSZ: "file_limit"}


def _interpret(output: bytes, results: bytes, why: str | None, token: str, n_tests: int, limits: Limits,
               seconds: float, iso: str) -> Execution:
    events, exit_event = [], None
    for line in results.decode("utf-8", "replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        if ev.get("event") == "exit":
            exit_event = ev  # the launcher's own report; the last one wins
        elif ev.get("t") == token:
            events.append(ev)
    text = output.decode("utf-8", "replace")
    program = next((e for e in events if e.get("event") == "program"), None)
    tests: dict[int, TestResult] = {}
    running = None
    done = any(e.get("event") == "done" for e in events)
    for e in events:
        if e.get("event") == "test_start" and isinstance(e.get("i"), int):
            running = e["i"]
        elif e.get("event") == "test" and isinstance(e.get("i"), int) and e["i"] not in tests:
            tests[e["i"]] = TestResult(bool(e.get("ok")), str(e.get("kind", "")), str(e.get("detail", "")))
            running = None
    # how the run ended
    if why == "timeout":
        ended, detail = "timeout", f"killed after the {limits.timeout:g}s wall-clock limit"
    elif why == "output_limit":
        ended, detail = "output_limit", f"more than {limits.output_bytes} bytes of output"
    elif exit_event is None:
        ended, detail = "sandbox_error", "the sandbox ended without a report: " + text.strip()[-300:]
    elif exit_event.get("signal"):
        sig = int(exit_event["signal"])
        ended = _SIGNAL_KIND.get(sig, "crash")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        detail = f"killed by {name}" + (" (the hard CPU limit, or the program itself)" if ended == "killed" else "")
    elif not done and program is not None:
        ended, detail = "exit", f"the program exited (code {exit_event.get('code')}) before the tests finished"
    elif program is None:
        ended, detail = "exit", f"the program exited (code {exit_event.get('code')}) before it finished loading"
    else:
        ended, detail = "finished", ""
    program_error = None
    if program is not None and not program.get("ok"):
        program_error = TestResult(False, str(program.get("kind", "")), str(program.get("detail", "")))
    out: list[TestResult] = []
    for i in range(n_tests):
        if i in tests:
            out.append(tests[i])
        elif program_error is not None:
            out.append(TestResult(False, "not_run", f"the program failed: {program_error.detail}"))
        elif i == running or (running is None and program is not None and i == len(tests) and not done) or program is None:
            kind = {"finished": "exception", "sandbox_error": "crash"}.get(ended, ended)
            out.append(TestResult(False, kind, detail))
        else:
            out.append(TestResult(False, "not_run", "an earlier test ended the run"))
    return Execution(program is not None and bool(program.get("ok")), out, ended, detail, text, seconds, iso, program_error)


# --- many executions --------------------------------------------------------------------------------


def default_workers() -> int:
    return 2 * (os.cpu_count() or 1)


_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _lease_folder() -> Path:
    """UID_LEASES, made by root and writable by root alone (a sandboxed program must not touch the leases)."""
    UID_LEASES.mkdir(mode=0o700, exist_ok=True)
    st = UID_LEASES.stat(follow_symlinks=False)
    if not UID_LEASES.is_dir() or UID_LEASES.is_symlink() or st.st_uid != 0 or st.st_mode & 0o077:
        raise ConfigError(f"the code sandbox's uid lease folder {UID_LEASES} must be a folder owned by root with mode 0700; "
                          "remove it and run again.")
    return UID_LEASES


def _lease_uid() -> tuple[int | None, int | None]:
    """(a sandbox uid no other execution on this machine holds, the lease's file descriptor); (None, None) unless root.

    The lease is an exclusive ``flock`` on the uid's file: it ends with :func:`_end_lease`, or when the process
    that holds it dies. Processes start at different points of the range, so they seldom try the same uid."""
    if os.geteuid() != 0:
        return None, None
    folder = _lease_folder()
    with _uid_lock:
        start = next(_uid_counter) + os.getpid() * 61
    for i in range(UID_COUNT):
        uid = UID_BASE + (start + i) % UID_COUNT
        fd = os.open(folder / str(uid), os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise ConfigError(f"all {UID_COUNT} code-sandbox uids ({UID_BASE}-{UID_BASE + UID_COUNT - 1}) are in use on this machine; "
                      "run fewer sandboxes at once (the reward's workers option).")


def _end_lease(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def execute_many(jobs: list[tuple[str, list[str]]], limits: Limits | None = None, *, workers: int | None = None,
                 deadline: float | None = None) -> list[Execution | None]:
    """Run (program, tests) pairs concurrently. A job not started before ``deadline``
    (``time.monotonic()`` seconds) is skipped: None."""
    limits = limits or Limits()
    iso = isolation()
    workers = max(1, min(workers or default_workers(), len(jobs) or 1))

    def one(job):
        if deadline is not None and time.monotonic() + 0.05 > deadline:
            return None
        lim = limits
        if deadline is not None:
            lim = Limits(**{**asdict(limits), "timeout": max(0.05, min(limits.timeout, deadline - time.monotonic()))})
        return _run_once(iso, job[0], list(job[1]), lim)

    if workers == 1 or len(jobs) <= 1:
        return [one(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code-sandbox") as ex:
        return list(ex.map(one, jobs))
