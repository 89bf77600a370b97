"""The trl backend's connection to a vLLM server (``vllm_mode: server``): timeouts, retries, and a clear error.

TRL's ``VLLMClient`` (trl 1.14.2, ``trl/generation/vllm_client.py``) talks to the server through a
``requests`` session with a fixed retry policy (5 retries, backoff 2 s, on connection errors and HTTP
500/502/503) and no timeout on a request, so a server that hangs holds the run forever, and a server that died
surfaces as ``requests.exceptions.ConnectionError: HTTPConnectionPool(...): Max retries exceeded`` from deep in
the generation step. :func:`configure_client` gives the client a session with ``vllm_server_retries`` and
``vllm_server_request_timeout`` (run settings) that turns a request that still fails into a
:class:`~grpo_core.errors.VllmServerError` naming the server's address and what to check.
:func:`server_errors` does the same for the first connection, made while the trainer is built
(``vllm_server_timeout``, TRL's GRPOConfig field, is how long that one waits).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from grpo_core.errors import VllmServerError

#: TRL's: exponential backoff between retries (2 s, 4 s, 8 s, ...), retried on these statuses
BACKOFF_S = 2.0
RETRY_STATUSES = (500, 502, 503)
POOL_SIZE = 64  # TRL's _DEFAULT_GENERATION_CONCURRENCY: connections reused across a round's requests

WHAT_TO_CHECK = ("Check that the server still runs (started by `grpo-core launch --vllm-gpus`, its log is vllm_server.log in the "
                 "run's folder), that this address is reachable from the training machine, and, for a slow server, raise "
                 "--set vllm_server_request_timeout=SECONDS or vllm_server_retries=N. The run's checkpoints are kept: "
                 "continue with --resume.")


class ServerSession(requests.Session):
    """A session whose requests time out after ``timeout`` seconds without an answer, and whose failures
    (after the adapter's retries) are :class:`VllmServerError`."""

    def __init__(self, base_url: str, timeout: float | None, retries: int) -> None:
        super().__init__()
        self.base_url, self.timeout, self.retries = base_url, timeout, retries

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            path = urlparse(url).path or "/"
            wait = f"{self.timeout:g} s each" if self.timeout is not None else "no time limit"
            # requests reports a read timeout that the retries gave up on as a ConnectionError: name it by its cause
            why = "timed out" if isinstance(exc, requests.Timeout) or "timed out" in str(exc) else type(exc).__name__
            raise VllmServerError(f"the vLLM server at {self.base_url} did not answer {method} {path} ({why}) after "
                                  f"{self.retries} retries ({wait}). {WHAT_TO_CHECK}") from exc


def server_session(base_url: str, *, retries: int, timeout: float | None, backoff: float = BACKOFF_S) -> ServerSession:
    session = ServerSession(base_url, timeout, retries)
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, status_forcelist=RETRY_STATUSES,
                  backoff_factor=backoff, allowed_methods=["POST", "GET"])
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def configure_client(client: Any, *, retries: int, timeout: float | None, backoff: float = BACKOFF_S) -> str:
    """Give TRL's ``VLLMClient`` grpo-core's session; returns a line saying what was set."""
    client.session = server_session(client.base_url, retries=retries, timeout=timeout, backoff=backoff)
    wait = f"{timeout:g} s per request" if timeout is not None else "no time limit per request"
    return f"vLLM server: {client.base_url} ({retries} retries, {wait})"


def server_client(trainer: Any) -> Any | None:
    """The trainer's ``VLLMClient`` (the main process's, in server mode), or ``None``."""
    return getattr(getattr(trainer, "vllm_generation", None), "vllm_client", None)


@contextlib.contextmanager
def server_errors(address: str, wait_s: float) -> Iterator[None]:
    """While the trainer is built: TRL's "can't be reached" becomes a :class:`VllmServerError` naming the fix."""
    try:
        yield
    except requests.ConnectionError as exc:
        raise VllmServerError(f"no vLLM server answered at {address} within {wait_s:g} s (vllm_server_timeout) while the trainer "
                              "started. Start one with `grpo-core launch --gpus N --vllm-gpus M -- ...` (or `trl vllm-serve`), "
                              "point the run at it with --set vllm_server_host=HOST --set vllm_server_port=PORT, or give it "
                              f"longer with --set vllm_server_timeout=SECONDS. ({exc})") from exc
