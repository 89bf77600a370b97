"""Starting the launcher's processes, watching them, and stopping every one of them.

Each child starts in a session of its own, so a Ctrl-C at the terminal reaches the launcher alone and the
launcher decides who hears what: the training ranks get SIGINT (``grpo-core run`` saves what it trained and
exits 130), the vLLM server SIGTERM. The launcher marks itself a child subreaper (Linux), so a grandchild whose
parent died first — torchrun's workers and vLLM's engine processes live in sessions of their own — is still its
to find, and it records each child's process tree as it runs. Stopping sends the first signal to each child's
process group, waits a grace period, then sends SIGKILL to every recorded process that is left, and reaps them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import psutil

from grpo_core.errors import GrpoCoreError
from grpo_core.launch.layout import Command

#: the exit code of a launch stopped by Ctrl-C or SIGTERM, as ``grpo-core run``'s (a shell's 128 + SIGINT)
EXIT_INTERRUPTED = 130
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
POLL_S = 0.2
KILL_WAIT_S = 10.0
LOG_LINES = 20

Echo = Callable[[str], None]


class LaunchError(GrpoCoreError):
    """A part of the launch failed; ``exit_code`` is that part's."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it: 128 + N for a child killed by signal N, 1 for a failure that said 0."""
    return 128 - returncode if returncode < 0 else returncode


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux ``PR_SET_CHILD_SUBREAPER``); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Child:
    """One started command in a session of its own, with every process of its tree seen so far."""

    def __init__(self, command: Command, log_path: Path | None = None) -> None:
        self.command = command
        self.log_path = log_path
        out = open(log_path, "ab") if log_path is not None else None
        try:
            self.proc = subprocess.Popen(command.argv, env={**os.environ, **command.env}, stdout=out,
                                         stderr=subprocess.STDOUT if out is not None else None, start_new_session=True)
        finally:
            if out is not None:
                out.close()  # the child holds its own handle
        self.tree: dict[int, psutil.Process] = {}
        self.remember()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def remember(self) -> None:
        """Record the tree as it is now, so that descendants that outlive their parents can still be stopped."""
        try:
            root = psutil.Process(self.pid)
            for p in (root, *root.children(recursive=True)):
                self.tree.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def signal(self, sig: int) -> None:
        """``sig`` to the child's process group (the child and what it started in its session)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def kill_all(self) -> None:
        """SIGKILL to every recorded process still alive."""
        for p in self.tree.values():
            if _alive(p):
                with contextlib.suppress(psutil.Error):
                    p.kill()

    def gone(self) -> bool:
        """Whether the child and every recorded descendant have exited (descendants adopted here are reaped)."""
        self.poll()
        for pid, p in self.tree.items():
            if pid != self.pid and not _alive(p):
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)  # an orphan this subreaper adopted
        return self.proc.returncode is not None and not any(_alive(p) for pid, p in self.tree.items() if pid != self.pid)

    def last_lines(self, n: int = LOG_LINES) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(no log)"
        lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(f"    {line}" for line in lines) or "    (the log is empty)"


def stop(signals: list[tuple[Child, int]], grace: float, echo: Echo) -> None:
    """Send each child its first signal, wait up to ``grace`` seconds, then SIGKILL what is left of every tree."""
    children = [c for c, _ in signals]
    for child in children:
        child.remember()
    if children:  # orphans this subreaper adopted since the last look belong to the launch too
        recorded = {pid for c in children for pid in c.tree}
        with contextlib.suppress(psutil.Error):
            for p in psutil.Process().children(recursive=True):
                if p.pid not in recorded:
                    children[0].tree[p.pid] = p
    for child, sig in signals:
        child.signal(sig)
    try:
        if _wait_gone(children, grace):
            return
        echo(f"launch: still running after {grace:g} s; killing " + ", ".join(c.command.name for c in children if not c.gone()))
    except KeyboardInterrupt:
        echo("launch: interrupted again; killing everything it started")
    for child in children:
        child.kill_all()
    _wait_gone(children, KILL_WAIT_S)


def _wait_gone(children: list[Child], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if all(c.gone() for c in children):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200 (the server's health check)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(server: Child | None, url: str, timeout: float, interval: float = 1.0) -> None:
    """Wait until ``url`` answers 200; refuse when the server exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        code = server.poll() if server is not None else None
        if code is not None:
            raise LaunchError(f"the vLLM server exited with code {code} before it answered {url}; the training ranks were not "
                              f"started. Its last log lines ({server.log_path}):\n{server.last_lines()}", exit_status(code) or 1)
        if answers(url):
            return
        if time.monotonic() >= deadline:
            tail = f" Its last log lines ({server.log_path}):\n{server.last_lines()}" if server is not None else ""
            raise LaunchError(f"the vLLM server at {url} was not healthy after {timeout:g} s; the training ranks were not started. "
                              "A large model can take longer to load: raise --vllm-timeout; check the model path, "
                              f"the server's GPUs and port.{tail}")
        time.sleep(interval)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While active, SIGTERM stops the launcher as Ctrl-C does (both stop everything it started, exit 130)."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def supervise(ranks: Command, *, server: Command | None = None, health_url: str | None = None, log_path: Path | None = None,
              health_timeout: float = 600.0, grace: float = 60.0, echo: Echo = print) -> int:
    """Start the server (if any), wait for ``health_url``, start the ranks, and watch both until the ranks finish.

    Returns the ranks' exit status; raises :class:`LaunchError` when the server fails (before it is healthy,
    or mid-run), after stopping everything. Ctrl-C or SIGTERM stops everything and returns 130."""
    become_subreaper()
    started: list[tuple[Child, int]] = []  # each child with the signal that asks it to stop
    with sigterm_as_interrupt():
        try:
            server_child = None
            if server is not None:
                server_child = Child(server, log_path)
                started.append((server_child, signal.SIGTERM))
                echo(f"launch: {server.name} started (pid {server_child.pid}, GPUs {server.env.get('CUDA_VISIBLE_DEVICES')}, "
                     f"log {log_path}); waiting for {health_url}")
            if health_url is not None:
                wait_healthy(server_child, health_url, health_timeout)
                echo(f"launch: the vLLM server answers {health_url}")
            ranks_child = Child(ranks)
            started.insert(0, (ranks_child, signal.SIGINT))  # SIGINT: the run saves what it trained, then exits
            echo(f"launch: {ranks.name} started (pid {ranks_child.pid})")
            while True:
                for child, _ in started:
                    child.remember()
                code = ranks_child.poll()
                if code is not None:
                    stop(started, grace, echo)
                    echo(f"launch: {ranks.name} exited with code {code}" + ("; the vLLM server was stopped" if server_child else ""))
                    return exit_status(code)
                if server_child is not None and (server_code := server_child.poll()) is not None:
                    raise LaunchError(
                        f"the vLLM server at {health_url} exited with code {server_code} while the run was training; the training "
                        f"ranks were stopped (continue the run with --resume in the run's arguments). Its last log lines "
                        f"({log_path}):\n{server_child.last_lines()}", exit_status(server_code) or 1)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            echo("launch: interrupted; stopping the training ranks (they save what they trained) and the vLLM server")
            stop(started, grace, echo)
            return EXIT_INTERRUPTED
        except BaseException:
            stop(started, grace, echo)
            raise
