"""Asking the judge: the ``openai`` client, async, bounded, retried, with a hard deadline.

Reward functions are called synchronously (TRL calls them in turn; grpo-core's
engine calls a plain reward on the trainer's thread). The requests of a batch
still go out concurrently: they run on one event loop in a daemon thread owned
by this module (:func:`run_sync`), which works the same whether the caller has
no event loop, runs inside one (a notebook, an async engine), or sits in a
forked worker (the loop is re-created per process).

Per judgment:

* at most ``concurrency`` requests of a batch are in flight at once;
* the ``openai`` client retries 408/409/429/5xx and connection errors with
  exponential backoff (honouring ``Retry-After``), ``retries`` times;
* ``timeout`` is a hard limit on the judgment, retries included
  (``asyncio.wait_for`` around the call); what is left unanswered abstains.

A judge that cannot be reached (connection refused, or ``concurrency`` calls
in a row timing out with no answer between them) is not asked again for the
rest of the batch: those samples abstain at once, so a dead server costs about
one call's time per batch, not one per sample. The next batch tries again.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Coroutine, Sequence

import openai

KEY_ENV_FALLBACK = "OPENAI_API_KEY"
NO_KEY = "no-key"  # local servers ignore the key; the client insists on one
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key_env: str
    timeout: float
    retries: int
    concurrency: int
    temperature: float
    max_tokens: int
    response_format: str

    def api_key(self) -> str:
        """The key from ``api_key_env``, else ``OPENAI_API_KEY``, else a placeholder (never logged)."""
        return os.environ.get(self.api_key_env) or os.environ.get(KEY_ENV_FALLBACK) or NO_KEY


@dataclass
class Reply:
    text: str | None  #: the judge's reply, None when there is none
    reason: str | None = None  #: why there is none: timeout, unreachable, http 503, ...
    seconds: float = 0.0
    called: bool = True  #: False when the call was skipped because the judge was unreachable


class _Loop:
    """One event loop in a daemon thread, re-created after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: dict[tuple, openai.AsyncOpenAI] = {}

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None or self._pid != os.getpid():
                self.loop = asyncio.new_event_loop()
                self.clients = {}
                self._pid = os.getpid()
                started = threading.Event()
                self.loop.call_soon(started.set)
                threading.Thread(target=self.loop.run_forever, daemon=True, name="grpo-rewards-judge").start()
                started.wait()
            return self.loop


_LOOP = _Loop()


def run_sync(coro: Coroutine) -> Any:
    """Run ``coro`` on the judge's event loop and wait for it, from any thread or event loop."""
    loop = _LOOP.get()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync was called from the judge's own event loop; await the coroutine instead.")
    fut: Future = asyncio.run_coroutine_threadsafe(coro, loop)
    return fut.result()


def _client(ep: Endpoint) -> openai.AsyncOpenAI:
    """One client per endpoint and key, made on (and used only from) the judge's loop."""
    key = ep.api_key()
    ident = (ep.base_url, ep.timeout, ep.retries, key)
    client = _LOOP.clients.get(ident)
    if client is None:
        client = openai.AsyncOpenAI(base_url=ep.base_url, api_key=key, timeout=ep.timeout, max_retries=ep.retries)
        _LOOP.clients[ident] = client
    return client


def response_format(kind: str, schema: dict) -> dict[str, Any]:
    """The request fields that constrain the reply to ``schema``.

    ``json_schema`` is OpenAI's form (OpenAI, vLLM, llama.cpp's own server); ``json_object`` with a
    ``schema`` is llama-cpp-python's; ``none`` asks for nothing and relies on the parser.
    """
    if kind == "json_schema":
        return {"response_format": {"type": "json_schema", "json_schema": {"name": "judgment", "schema": schema, "strict": True}}}
    if kind == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if kind == "none":
        return {}
    raise ValueError(f"response_format {kind!r} is not one of {', '.join(RESPONSE_FORMATS)}.")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "unreachable"
    if isinstance(exc, openai.APIStatusError):
        return f"http {exc.status_code}"
    return f"error {type(exc).__name__}"


async def ask_many(ep: Endpoint, requests: Sequence[Sequence[dict]], schema: dict) -> list[Reply]:
    """One :class:`Reply` per request (a list of chat messages), in order; never raises for a failed call."""
    client = _client(ep)
    gate = asyncio.Semaphore(max(1, ep.concurrency))
    extra = response_format(ep.response_format, schema)
    state = {"down": False, "timeouts_in_a_row": 0}

    async def one(messages) -> Reply:
        async with gate:
            if state["down"]:
                return Reply(None, "unreachable", called=False)
            t0 = time.perf_counter()
            try:
                res = await asyncio.wait_for(
                    client.chat.completions.create(model=ep.model, messages=list(messages), temperature=ep.temperature,
                                                   max_tokens=ep.max_tokens, **extra),
                    ep.timeout,
                )
            except Exception as exc:  # noqa: BLE001 - every failure abstains, with its reason
                reason = _reason(exc)
                if reason == "timeout":
                    state["timeouts_in_a_row"] += 1
                    state["down"] = state["down"] or state["timeouts_in_a_row"] >= max(1, ep.concurrency)
                elif reason == "unreachable":
                    state["down"] = True
                return Reply(None, reason, time.perf_counter() - t0)
            state["timeouts_in_a_row"] = 0
            choice = res.choices[0] if res.choices else None
            text = choice.message.content if choice is not None and choice.message is not None else None
            return Reply(text or "", None, time.perf_counter() - t0)

    return list(await asyncio.gather(*(one(m) for m in requests)))
