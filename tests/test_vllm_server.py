"""The trl backend's vLLM-server connection (layout b): retries, a timeout per request, and a clear error naming the
server when it is gone, against a fake HTTP server (TRL's client needs vLLM installed, so its session is tested)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from grpo_core.config.settings import RunConfig
from grpo_core.errors import VllmServerError
from grpo_core.train.backends.trl import TrlBackend
from grpo_core.train.vllm_server import configure_client, server_client, server_session


class FakeServer:
    """Answers POST /generate/ with ``statuses`` in turn (then 200), or never answers when ``hang``."""

    def __init__(self, statuses=(), hang=False):
        self.seen, statuses, outer = [], list(statuses), self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.seen.append(self.path)
                if hang:
                    time.sleep(5)
                code = statuses.pop(0) if statuses else 200
                body = b'{"completion_ids": [[1, 2]]}'
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_retries_a_temporarily_failing_server():
    server = FakeServer(statuses=[503, 502])
    try:
        session = server_session(server.url, retries=2, timeout=10, backoff=0)
        answer = session.post(f"{server.url}/generate/", json={"prompts": [[1]]})
        assert answer.json() == {"completion_ids": [[1, 2]]}
        assert server.seen == ["/generate/"] * 3  # two failures retried, the third answered
    finally:
        server.close()


def test_a_server_that_keeps_failing_is_named():
    server = FakeServer(statuses=[503] * 5)
    try:
        with pytest.raises(VllmServerError, match=f"the vLLM server at {server.url} did not answer POST /generate/ .* after 1 retries"):
            server_session(server.url, retries=1, timeout=10, backoff=0).post(f"{server.url}/generate/", json={})
        assert len(server.seen) == 2
    finally:
        server.close()


def test_a_dead_server_is_named_with_what_to_check():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket closes
    with pytest.raises(VllmServerError) as caught:
        server_session(url, retries=1, timeout=5, backoff=0).post(f"{url}/generate/", json={})
    message = str(caught.value)
    assert url in message and "ConnectionError" in message and "vllm_server.log" in message and "--resume" in message
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_a_hung_server_times_out():
    server = FakeServer(hang=True)
    try:
        with pytest.raises(VllmServerError, match=r"\(timed out\) after 0 retries \(0.2 s each\)"):
            server_session(server.url, retries=0, timeout=0.2, backoff=0).post(f"{server.url}/generate/", json={})
    finally:
        server.close()


def test_trainer_built_gives_trls_client_the_session():
    client = SimpleNamespace(base_url="http://10.0.0.2:8000", session=requests.Session())
    trainer = SimpleNamespace(use_vllm=True, vllm_generation=SimpleNamespace(vllm_client=client))
    assert server_client(trainer) is client
    cfg = RunConfig().merged({"vllm_mode": "server", "vllm_server_retries": 2, "vllm_server_request_timeout": 30, "fast_vllm_sync": False}, "test")
    lines = []
    TrlBackend().trainer_built(trainer, cfg, lines.append)
    assert client.session.timeout == 30 and client.session.retries == 2
    assert client.session.get_adapter("http://x").max_retries.total == 2
    assert "vLLM server: http://10.0.0.2:8000 (2 retries, 30 s per request)" in lines


def test_first_connection_failure_names_the_address_and_the_launcher():
    cfg = RunConfig().merged({"vllm_mode": "server", "vllm_server_host": "10.0.0.9", "vllm_server_port": 8123, "vllm_server_timeout": 5}, "test")
    with pytest.raises(VllmServerError, match=r"no vLLM server answered at http://10.0.0.9:8123 within 5 s .*grpo-core launch"):
        with TrlBackend().building_trainer(cfg, print):
            raise requests.ConnectionError("The vLLM server can't be reached")  # what TRL's VLLMClient raises


def test_settings_are_checked():
    with pytest.raises(Exception, match="vllm_server_retries"):
        RunConfig().merged({"vllm_server_retries": -1}, "test").validate()
    assert RunConfig().merged({"vllm_server_request_timeout": None}, "test").validate().vllm_server_request_timeout is None
    assert configure_client(SimpleNamespace(base_url="http://h:1"), retries=0, timeout=None).endswith("(0 retries, no time limit per request)")
