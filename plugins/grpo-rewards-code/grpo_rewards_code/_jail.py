"""What runs inside the sandbox: this file is executed as a script (``python -I -S -B``).

It uses the standard library only (and imports little: every import is paid
once per execution) and never imports the package (``-S``: no
site-packages). The parent (:mod:`grpo_rewards_code.sandbox`) starts it with
an empty environment, the job (``marshal``) on stdin, the program's output on
stdout/stderr and fd 3 as the channel for results.

Steps, each chosen by ``job["isolation"]``:

1. ``namespaces``: this process is pid 1 of a new pid namespace (``unshare
   --fork``) with its own network and mount namespaces. It builds a minimal
   read-only root (``/usr``, the Python prefix, a few ``/dev`` nodes, an empty
   ``/etc``) with a small writable ``tmpfs`` at ``/tmp``, pivots into it and
   mounts a fresh ``/proc``. ``bwrap``: bubblewrap did all of that already
   (``--as-pid-1``: this process is pid 1 there too).
   ``rlimits``: nothing; the parent made a temporary directory to work in.
2. Fork the program's process. The child drops to an unprivileged user (a
   dedicated uid when started as root, else a nested user namespace), sets
   ``no_new_privs`` and the rlimits, then runs the program and the tests in
   this interpreter, reporting one JSON line per event on fd 3.
3. The parent side (pid 1) waits for it, reports how it ended, and exits;
   when pid 1 of a pid namespace exits the kernel kills everything left in it.
"""

import errno
import marshal
import os
import resource
import signal
import sys

RESULTS_FD = 3  # replaced by the job's "results_fd" in main()
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
CLONE_NEWUSER = 0x10000000
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
#: errno values that mean "the sandbox refused": reported as a forbidden action
FORBIDDEN_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENETUNREACH, errno.ENETDOWN, errno.EAGAIN,
                    errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENOSYS}

_LIBC = None


def _libc():
    """libc through ctypes, imported only where a syscall Python lacks is needed (mounts, prctl):
    every import here is paid once per execution, and bwrap needs none of these calls."""
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _check(ret, what):
    if ret != 0:
        import ctypes

        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src, target, fstype, flags, data=None):
    _check(_libc().mount(src and src.encode(), target.encode(), fstype and fstype.encode(), flags,
                       data and data.encode()), f"mount {target}")


def _bind(src, target, *, readonly=True):
    if os.path.isdir(src):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(src, target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV * (not src.startswith("/dev")))


def build_root(job):
    """A minimal read-only root with a writable /tmp, then pivot into it (namespaces mode)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = "/tmp"  # a mount point that exists everywhere; covered only inside this mount namespace
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            os.symlink(os.readlink(top), root + top)
        elif os.path.isdir(top):
            _bind(top, root + top)
    for path in job["binds"]:  # the Python prefix when it lives outside /usr
        if os.path.exists(path) and not os.path.exists(root + path):
            _bind(path, root + path)
    for dev in ("null", "zero", "random", "urandom"):
        _bind("/dev/" + dev, f"{root}/dev/{dev}", readonly=False)
    for d in ("etc", "proc", "tmp", ".old"):
        os.makedirs(f"{root}/{d}", exist_ok=True)
    # a fresh /proc for this pid namespace, mounted while the old one is still visible (a user
    # namespace may mount proc only where an unobscured proc is already visible)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV)
    _mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['limits']['tmp_mb']}m,mode=1777")
    os.chdir(root)
    _check(_libc().syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b".old"), "pivot_root")
    os.chroot(".")
    _check(_libc().umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


#: imported before the uid drop in ``rlimits`` mode, where the dropped uid may not be able to read the
#: Python prefix (e.g. a pyenv under /root); with namespaces the prefix is bound readable instead
PRELOAD = ("array", "bisect", "collections", "copy", "datetime", "decimal", "encodings.idna", "fractions", "functools", "heapq",
           "itertools", "json", "math", "operator", "random", "re", "socket", "statistics", "string", "threading",
           "typing")


def drop_privileges(job):
    """Become an unprivileged user with no capabilities and no way to regain them."""
    uid = job["uid"]
    if job["isolation"] == "rlimits" and os.geteuid() == 0:
        for name in PRELOAD:
            __import__(name)
    if job["isolation"] == "userns" or (job["isolation"] == "bwrap" and uid is None):
        # this process is the invoking user inside a user namespace (root there under `unshare
        # --map-root-user`): step into a nested one as nobody, which holds no capabilities and
        # cannot signal or trace the launcher
        outer_uid, outer_gid = os.getuid(), os.getgid()
        _check(_libc().unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
        for name, text in (("setgroups", "deny"), ("uid_map", f"65534 {outer_uid} 1"), ("gid_map", f"65534 {outer_gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        os.setgid(65534)
        os.setuid(65534)
    elif os.geteuid() == 0 and uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if job["isolation"] != "bwrap":  # bubblewrap has set it already
        _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def set_limits(limits):
    mb = 1024 * 1024
    for res, value in (
        (resource.RLIMIT_CPU, (limits["cpu"], limits["cpu"] + 1)),
        (resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2),
        (resource.RLIMIT_FSIZE, (limits["file_mb"] * mb,) * 2),
        (resource.RLIMIT_NOFILE, (limits["open_files"],) * 2),
        (resource.RLIMIT_NPROC, (limits["processes"],) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(res, value)


# --- the program and its tests ---------------------------------------------------------------------


_JSON_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord('"'): '\\"', ord("\\"): "\\\\"}


def _to_json(value):
    """JSON for the flat events below (str, int, bool, None), without importing json (and re)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_to_json(k)}: {_to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return '"' + value.translate(_JSON_ESCAPES) + '"'
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(int(value))


def _report(event):
    data = (_to_json(event) + "\n").encode("utf-8", "replace")
    try:
        os.write(RESULTS_FD, data)
    except OSError:
        pass


def classify(exc):
    """(kind, detail) for an exception raised by the program or a test."""
    if isinstance(exc, AssertionError):
        return "assertion", str(exc)[:200]
    if isinstance(exc, MemoryError):
        return "memory", "MemoryError (the memory limit)"
    if isinstance(exc, SystemExit):
        return "exit", f"SystemExit({exc.code!r})"[:200]
    if isinstance(exc, OSError) and exc.errno in FORBIDDEN_ERRNOS and not isinstance(exc, FileNotFoundError):
        return "forbidden", f"{type(exc).__name__}: {exc}"[:200]
    if isinstance(exc, FileNotFoundError) and exc.filename and not str(exc.filename).startswith(("/tmp", ".")):
        return "forbidden", f"{type(exc).__name__}: {exc}"[:200]
    return "exception", f"{type(exc).__name__}: {exc}"[:200]


def run_program(job):
    """Run the program, then each test in its namespace; one event per step on fd 3."""
    token = job.pop("token")
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    _report({"t": token, "event": "start"})
    try:
        code = compile(job["program"], "solution.py", "exec")
        exec(code, namespace)  # noqa: S102 - running it is the point; the sandbox contains it
    except BaseException as exc:  # noqa: BLE001
        kind, detail = classify(exc)
        _report({"t": token, "event": "program", "ok": False, "kind": kind, "detail": detail})
        _report({"t": token, "event": "done"})
        return
    _report({"t": token, "event": "program", "ok": True})
    for i, test in enumerate(job["tests"]):
        _report({"t": token, "event": "test_start", "i": i})
        try:
            exec(compile(test, f"test_{i}", "exec"), namespace)  # noqa: S102
        except BaseException as exc:  # noqa: BLE001
            kind, detail = classify(exc)
            _report({"t": token, "event": "test", "i": i, "ok": False, "kind": kind, "detail": detail})
        else:
            _report({"t": token, "event": "test", "i": i, "ok": True})
    _report({"t": token, "event": "done"})


def child(job):
    if job["isolation"] != "bwrap":  # bwrap's pid namespace dies with its --die-with-parent launcher
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(job["workdir"])
    drop_privileges(job)
    set_limits(job["limits"])
    sys.stdin = open(os.devnull)
    os.environ.clear()  # started with none; this drops what Python itself set (LC_CTYPE)
    sys.setrecursionlimit(job["limits"]["recursion"])
    try:
        run_program(job)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads the program left running end here


def main():
    global RESULTS_FD
    # pid 1 of a pid namespace gets only the signals it handles: drop Python's SIGINT handler, so the
    # program (which may share this uid) cannot interrupt the launcher
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    job = marshal.loads(sys.stdin.buffer.read())  # written by the parent (trusted): marshal needs no import
    RESULTS_FD = job["results_fd"]
    sys.stdin.close()
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    if job["isolation"] in ("namespaces", "userns"):
        build_root(job)
    if job["isolation"] != "rlimits":
        job["workdir"] = "/tmp"
    if job["isolation"] != "bwrap":
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    pid = os.fork()
    if pid == 0:
        child(job)
    # reap everything (pid 1 inherits orphans) until the program's own process is gone
    while True:
        try:
            got, status = os.waitpid(-1, 0)
        except ChildProcessError:
            status = 0
            break
        if got == pid:
            break
    ended = {"event": "exit", "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
             "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
    _report(ended)
    os._exit(0)


if __name__ == "__main__":
    main()
