"""The judge rewards' options, registration and metrics protocol (no server)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import grpo_core
from grpo_core import ConfigError
from grpo_core.errors import SelectionError
from grpo_core.rewards.engine import RewardEngine
from grpo_core.rewards.selection import RewardSelection
from grpo_rewards_judge import rewards
from grpo_rewards_judge.metrics import JudgeMetrics
from judge_fixtures import judge_key  # noqa: F401 (pytest fixtures)


def test_registered_with_options_equal_to_the_keyword_defaults():
    for name, func in (("judge_score", rewards.judge_score), ("judge_pairwise", rewards.judge_pairwise)):
        spec = grpo_core.get_reward(name)
        assert spec.provenance.distribution == "grpo-rewards-judge"
        assert spec.cpu_bound is False and spec.is_async is False  # I/O bound: runs inline, its own loop does the waiting
        params = inspect.signature(func).parameters
        assert spec.options == {k: p.default for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
        for key in ("base_url", "model", "rubric", "temperature", "max_tokens", "concurrency", "timeout", "retries", "cache"):
            assert key in spec.options, key
        assert not any("key" in k and k != "api_key_env" for k in spec.options)  # the key itself is never an option
    assert grpo_core.get_reward("judge_pairwise").requires == ("answer",)


def test_bad_options_are_clear_errors():
    with pytest.raises(SelectionError, match=r"has no option 'url'; its options: base_url \(default 'http://127.0.0.1:8000/v1'\)"):
        RewardEngine.from_selection(RewardSelection.parse("judge_score", {"judge_score": {"url": "x"}}))
    with pytest.raises(SelectionError, match=r"option 'concurrency' must be a whole number \(its default is 8\); got 'many'"):
        RewardEngine.from_selection(RewardSelection.parse("judge_score", {"judge_score": {"concurrency": "many"}}))
    with pytest.raises(ConfigError, match="response_format must be one of json_schema, json_object, none"):
        rewards.judge_score(["x"], response_format="xml", cache="off")
    with pytest.raises(ConfigError, match="score_min must be below score_max"):
        rewards.judge_score(["x"], score_min=5, score_max=5, cache="off")
    with pytest.raises(ConfigError, match="no column 'solution'"):
        rewards.judge_pairwise(["x"], answer=["1"], reference_column="solution", cache="off")


def test_missing_reference_abstains_without_a_call():
    m = rewards.judge_pairwise.reward_metrics
    m.reset()
    assert rewards.judge_pairwise(["x", "y"], prompts=["q", "q"], answer=["", None], cache="off",
                                  base_url="http://127.0.0.1:9/v1") == [None, None]
    t = m.totals()
    assert t["calls"] == 0 and t["abstained"] == 2 and t["abstain_reasons"] == {"no reference": 2}


def test_metrics_window_totals_and_quantiles():
    m = JudgeMetrics()
    m.record(calls=3, cache_hits=1, latencies=[0.1, 0.2, 0.3], scores=[1, 5, 5], reasons=[None, "timeout", None, None])
    window = m.pop()
    assert window["calls"] == 3 and window["cache_hits"] == 1 and window["abstained"] == 1
    assert window["latency_p50_ms"] == pytest.approx(200) and window["latency_p99_ms"] == pytest.approx(300)
    assert window["score_mean"] == pytest.approx(11 / 3)
    assert m.pop() == {}  # nothing new since
    m.record(calls=1, latencies=[0.5], scores=[2], reasons=["unparseable: no score in the reply"])
    totals = m.totals()
    assert totals["calls"] == 4 and totals["unparseable"] == 1
    assert totals["score_counts"] == {"1": 1, "2": 1, "5": 2}
    assert totals["abstain_reasons"] == {"timeout": 1, "unparseable: no score in the reply": 1}
    m.reset()
    assert m.totals()["calls"] == 0


def test_import_is_light():
    code = ("import sys, json; import grpo_rewards_judge.plugin, grpo_core; grpo_core.get_rewards();"
            "print(json.dumps([m for m in ('torch','transformers','trl','datasets') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_unusable_cache_is_reported_once_and_skipped(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    m = rewards.judge_score.reward_metrics
    m.reset()
    out = rewards.judge_score(["x", "y"], prompts=["q", "q"], cache=str(blocker / "judge.sqlite3"),
                              base_url="http://127.0.0.1:9/v1", timeout=2.0, retries=0)
    assert out == [None, None]  # the judge was still asked (nothing listens on port 9), training would go on
    assert m.totals()["abstain_reasons"] == {"unreachable": 2}
    err = capsys.readouterr().err
    assert err.count("is not usable") == 1 and "cache=off" in err


def test_the_judge_rewards_run_in_the_trainer_process_so_their_metrics_reach_the_run():
    """No registration timeout: one would send the judge to a worker process, out of reach of its reward_metrics."""
    engine = RewardEngine.from_selection(RewardSelection.parse("judge_score,judge_pairwise", {}))
    try:
        for r in engine.rewards:
            assert r.spec.timeout is None and not r.in_process, r.name
            assert r.reported is not None, r.name
    finally:
        engine.close()
