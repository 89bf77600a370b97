"""The judge rewards against a real OpenAI-compatible server (llama-cpp-python + SmolLM2-135M-Instruct)."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
import urllib.request


from grpo_core.rewards.engine import RewardEngine
from grpo_core.rewards.selection import RewardSelection
from grpo_rewards_judge import rewards
from grpo_rewards_judge.cache import ReplyCache
from grpo_rewards_judge.local_server import free_port
from judge_fixtures import MODEL, judge_key, judge_server, options, own_server  # noqa: F401 (pytest fixtures)

PROMPTS = [[{"role": "user", "content": "What is 12 + 30?"}]] * 2 + [[{"role": "user", "content": "Name the capital of France."}]] * 2
COMPLETIONS = [
    [{"role": "assistant", "content": "<reasoning>12 + 30 = 42</reasoning><answer>42</answer>"}],
    [{"role": "assistant", "content": "<answer>7</answer>"}],
    [{"role": "assistant", "content": "The capital of France is Paris."}],
    [{"role": "assistant", "content": "bananas"}],
]


def distinct(n: int):
    """n different (prompt, completion) pairs: each one is its own judgment (equal ones are asked once)."""
    return ([[{"role": "user", "content": f"What is {i} + 1?"}] for i in range(n)],
            [[{"role": "assistant", "content": f"<answer>{i + 1}</answer>"}] for i in range(n)])


def fresh_metrics(func):
    func.reward_metrics.reset()
    return func.reward_metrics


def test_scores_completions_and_caches_them(options):
    metrics = fresh_metrics(rewards.judge_score)
    first = rewards.judge_score(COMPLETIONS, prompts=PROMPTS, **options)
    assert len(first) == 4 and all(v is not None and 0.0 <= v <= 1.0 for v in first), first  # constrained: parseable
    totals = metrics.totals()
    assert totals["calls"] == 4 and totals["cache_hits"] == 0 and totals["abstained"] == 0
    assert sum(totals["score_counts"].values()) == 4 and totals["latency_p50_ms"] > 0
    assert ReplyCache(options["cache"]).count() == 4
    # the second run pays nothing: every judgment comes from the cache, with the same values
    assert rewards.judge_score(COMPLETIONS, prompts=PROMPTS, **options) == first
    totals = metrics.totals()
    assert totals["calls"] == 4 and totals["cache_hits"] == 4
    # another rubric is another judgment
    rewards.judge_score(COMPLETIONS[:1], prompts=PROMPTS[:1], **{**options, "rubric": "helpfulness"})
    assert metrics.totals()["calls"] == 5


def test_pairwise_against_the_reference(options):
    metrics = fresh_metrics(rewards.judge_pairwise)
    out = rewards.judge_pairwise(COMPLETIONS[1:3], prompts=PROMPTS[1:3], answer=["42", "Paris"], **options)
    assert len(out) == 2 and all(v in (0.0, 0.5, 1.0) for v in out), out
    assert metrics.totals()["calls"] == 2


def test_unconstrained_replies_still_parse_or_abstain_with_a_reason(options):
    """Without response_format the 135M model writes prose: each sample is a score or None with its reason."""
    metrics = fresh_metrics(rewards.judge_score)
    out = rewards.judge_score(COMPLETIONS[:2], prompts=PROMPTS[:2], **{**options, "response_format": "none", "max_tokens": 16})
    totals = metrics.totals()
    assert totals["calls"] == 2
    assert sum(v is None for v in out) == totals["abstained"] == totals["unparseable"]
    assert all(r.startswith("unparseable: ") for r in totals["abstain_reasons"])


def test_runs_inside_the_engine_and_inside_a_running_event_loop(options):
    engine = RewardEngine.from_selection(RewardSelection.parse("judge_score", {"judge_score": options}))
    try:
        res = engine.score(COMPLETIONS[:2], prompts=PROMPTS[:2])
        assert all(v is not None for v in res.values["judge_score"])
        logged = engine.pop_metrics()
        assert logged["rewards/judge_score/calls"] == 2 and logged["rewards/judge_score/abstained"] == 0
        assert engine.reported_totals()["judge_score"]["calls"] == 2

        async def from_a_coroutine():  # a notebook or an async trainer calls the reward from its own loop
            return rewards.judge_score(COMPLETIONS[:2], prompts=PROMPTS[:2], **options)

        assert asyncio.run(from_a_coroutine()) == res.values["judge_score"]
    finally:
        engine.close()


def test_a_closed_port_abstains_for_every_sample(tmp_path):
    metrics = fresh_metrics(rewards.judge_score)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    prompts, completions = distinct(16)
    out = rewards.judge_score(completions, prompts=prompts, base_url=dead, cache=str(tmp_path / "c.sqlite3"),
                              timeout=5.0, retries=1, concurrency=2)
    assert out == [None] * 16
    totals = metrics.totals()
    assert totals["abstain_reasons"] == {"unreachable": 16}
    assert totals["calls"] <= 2  # the first refused connections stop the batch from asking again
    assert ReplyCache(str(tmp_path / "c.sqlite3")).count() == 0  # failures are not cached: the next run asks again


def test_a_paused_server_times_out_and_the_batch_finishes(own_server, tmp_path):
    metrics = fresh_metrics(rewards.judge_score)
    prompts, completions = distinct(8)
    own_server.pause()  # SIGSTOP: connections are accepted, nothing is answered
    try:
        out = rewards.judge_score(completions, prompts=prompts, base_url=own_server.base_url, model=MODEL,
                                  response_format="json_object", cache=str(tmp_path / "c.sqlite3"),
                                  timeout=1.0, retries=0, concurrency=2)
    finally:
        own_server.resume()
    assert out == [None] * 8
    totals = metrics.totals()
    reasons = totals["abstain_reasons"]
    # `concurrency` timeouts in a row (plus at most concurrency - 1 calls already in flight) ...
    assert 2 <= reasons["timeout"] <= 3 and totals["calls"] == reasons["timeout"]
    # ... and the rest of the batch is not sent to a stalled judge
    assert reasons["unreachable"] == 8 - reasons["timeout"]


def test_abstains_when_the_server_stops_mid_batch(own_server, tmp_path):
    metrics = fresh_metrics(rewards.judge_score)
    result: dict = {}
    prompts, completions = distinct(12)

    def batch():
        result["out"] = rewards.judge_score(completions, prompts=prompts, base_url=own_server.base_url, model=MODEL,
                                            response_format="json_object", cache=str(tmp_path / "c.sqlite3"),
                                            timeout=240.0, retries=1, concurrency=1)

    worker = threading.Thread(target=batch)
    worker.start()
    deadline = time.monotonic() + 240  # generous: the machine may be busy
    while own_server.requests_served() < 1 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.01)
    own_server.stop()  # SIGTERM while the batch is in flight
    worker.join(300)
    assert not worker.is_alive()
    out = result["out"]
    assert out[0] is not None and out[-1] is None and len(out) == 12
    totals = metrics.totals()
    assert totals["abstained"] == sum(v is None for v in out) >= 1
    assert set(totals["abstain_reasons"]) <= {"unreachable", "timeout"}
    assert ReplyCache(str(tmp_path / "c.sqlite3")).count() == 12 - totals["abstained"]  # what was answered is kept


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Answers the first `failures` requests with 503 and forwards the rest to the real server."""

    def __init__(self, backend: str, failures: int):
        self.backend, self.failures, self.seen = backend, failures, 0
        super().__init__(("127.0.0.1", 0), _FlakyHandler)


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen += 1
        if self.server.seen <= self.server.failures:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
        req = urllib.request.Request(self.server.backend + self.path.removeprefix("/v1"), data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as res:
            data = res.read()
            self.send_response(res.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_retries_a_503(options):
    proxy = _FlakyProxy(options["base_url"], failures=1)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        metrics = fresh_metrics(rewards.judge_score)
        url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
        out = rewards.judge_score(COMPLETIONS[:1], prompts=PROMPTS[:1], **{**options, "base_url": url, "retries": 2})
        assert out[0] is not None and proxy.seen == 2  # refused once, answered on the retry
        assert metrics.totals()["calls"] == 1
        proxy.failures, proxy.seen = 10, 0
        out = rewards.judge_score(COMPLETIONS[1:2], prompts=PROMPTS[1:2], **{**options, "base_url": url, "retries": 1})
        assert out == [None] and proxy.seen == 2 and metrics.totals()["abstain_reasons"] == {"http 503": 1}
    finally:
        proxy.shutdown()
        proxy.server_close()
