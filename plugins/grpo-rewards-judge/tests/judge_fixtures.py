"""Fixtures for the judge tests: a real OpenAI-compatible server.

llama-cpp-python's server with SmolLM2-135M-Instruct (:mod:`grpo_rewards_judge.local_server`). One
server runs for the whole session (``judge_server``); tests that stop or pause a server get their own
(``own_server``). Servers demand the API key, so a call only succeeds when the key reached the server
through the environment, the one way the judge reads it.

A module, not a conftest.py: the suite's own tests import helpers with ``from conftest import ...``,
and a second conftest.py would take that name. Test modules import the fixtures they use.
"""

from __future__ import annotations

import atexit
import tempfile
from pathlib import Path

import pytest

from grpo_rewards_judge.local_server import ServerError, smollm2_gguf, start_server

KEY_ENV = "GRPO_JUDGE_API_KEY"
SECRET = "sk-judge-test-7f3a91c2e4b8d6f0a1c3e5"  # what the tests look for in every file a run writes
MODEL = "smollm2-135m"


def _start(log_dir):
    try:
        return start_server(smollm2_gguf(), log_dir, alias=MODEL, api_key=SECRET)
    except ServerError as exc:
        pytest.fail(str(exc))


_shared: dict = {}


@pytest.fixture(scope="session")
def judge_server():
    """One server for every module that imports this fixture (each import is its own fixture for pytest)."""
    if "server" not in _shared or _shared["server"].proc.poll() is not None:
        _shared["server"] = _start(Path(tempfile.mkdtemp(prefix="judge-server-")))
        atexit.register(_shared["server"].stop)
    return _shared["server"]


@pytest.fixture
def own_server(tmp_path):
    server = _start(tmp_path)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def judge_key(monkeypatch):
    """The key, from the environment only (subprocesses inherit it)."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def options(judge_server, tmp_path):
    """Reward options for the session server: llama-cpp-python's schema form, a fresh cache."""
    return {"base_url": judge_server.base_url, "model": MODEL, "response_format": "json_object",
            "cache": str(tmp_path / "judge.sqlite3"), "timeout": 240.0}
