"""The judge through grpo-core's command line: `score` twice (the cache), a dead judge, a training run,
and the API key in none of the files any of them writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_rewards_judge.local_server import free_port
from judge_fixtures import SECRET, judge_key, judge_server  # noqa: F401 (pytest fixtures)

LINES = [
    "<reasoning>3 + 4 = 7</reasoning><answer>7</answer>",
    "<answer>12</answer>",
    "I do not know.",
    "<reasoning>5 * 5 = 25</reasoning><answer>25</answer>",
]


def grpo_core(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRPO_CORE_LOAD_PLUGINS"}  # real entry-point discovery
    return subprocess.run([sys.executable, "-m", "grpo_core", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def judge_options(base_url: str, cache: Path, **more) -> list[str]:
    opts = {"base_url": base_url, "model": "smollm2-135m", "response_format": "json_object", "cache": str(cache),
            "timeout": 240.0, **more}  # generous: a busy machine must not turn the test's judgments into timeouts
    return [arg for k, v in opts.items() for arg in ("--reward-option", f"judge_score.{k}={v}")]


def reported(output: str, key: str) -> float:
    """A value of the 'judge_score reports:' block of `grpo-core score`."""
    block = output[output.index("judge_score reports:") :]
    line = next(ln for ln in block.splitlines() if ln.strip().startswith(f"{key} = "))
    return float(line.split("=", 1)[1])


def files_without_secret(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.is_file()]
    leaks = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"the API key was written to {leaks}"
    return files


def test_score_prints_a_table_and_the_second_run_is_all_cache_hits(judge_server, tmp_path):
    completions = tmp_path / "samples.jsonl"
    completions.write_text("".join(json.dumps({"completion": c}) + "\n" for c in LINES))
    args = ["score", "--plugins", "judge_score", "--dataset", "arithmetic:test", "--completions", str(completions),
            *judge_options(judge_server.base_url, tmp_path / "cache" / "judge.sqlite3")]
    first = grpo_core(*args, "--out", str(tmp_path / "first.jsonl"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "judge_score  (weight 1; grpo-rewards-judge 0.1.0; base_url=" in first.stdout
    assert "model='smollm2-135m'" in first.stdout and "timeout=240.0" in first.stdout  # the options in force
    assert reported(first.stdout, "calls") == 4 and reported(first.stdout, "cache_hits") == 0
    assert reported(first.stdout, "abstained") == 0
    second = grpo_core(*args, "--out", str(tmp_path / "second.jsonl"), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert reported(second.stdout, "calls") == 0 and reported(second.stdout, "cache_hits") == 4
    scores = [[json.loads(ln)["rewards"]["judge_score"] for ln in (tmp_path / f).read_text().splitlines()]
              for f in ("first.jsonl", "second.jsonl")]
    assert scores[0] == scores[1] and None not in scores[0]
    for proc in (first, second):
        assert SECRET not in proc.stdout + proc.stderr
    assert len(files_without_secret(tmp_path)) >= 4  # samples, cache, both outputs


def test_score_against_a_closed_port_gives_none_and_exits_normally(tmp_path):
    completions = tmp_path / "samples.jsonl"
    completions.write_text("".join(json.dumps({"completion": c}) + "\n" for c in LINES))
    res = grpo_core("score", "--plugins", "judge_score,xml", "--completions", str(completions), "--out", str(tmp_path / "o.jsonl"),
                    *judge_options(f"http://127.0.0.1:{free_port()}/v1", tmp_path / "c.sqlite3", timeout=5.0), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(ln) for ln in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["rewards"]["judge_score"] for r in rows] == [None] * 4
    assert all(r["rewards"]["xml"] is not None for r in rows)  # the other rewards carry on
    assert "unreachable: 4" in res.stdout


@pytest.mark.slow
def test_training_run_reports_the_judge_and_never_writes_the_key(judge_server, tmp_path):
    out = tmp_path / "run"
    res = grpo_core("run", "--plugins", "xml,judge_score", "--max-steps", "1", "--output-dir", str(out), "--eval-limit", "0",
                    "--set", "num_generations=2", "--set", "per_device_train_batch_size=2", "--set", "max_completion_length=16",
                    "--set", f"reward_options.judge_score.base_url={judge_server.base_url}",
                    "--set", "reward_options.judge_score.model=smollm2-135m",
                    "--set", "reward_options.judge_score.response_format=json_object",
                    "--set", f"reward_options.judge_score.cache={tmp_path / 'judge.sqlite3'}",
                    "--set", "reward_options.judge_score.timeout=240",
                    cwd=tmp_path, timeout=420)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    info = json.loads((out / "run.json").read_text())
    judge = info["reward_metrics"]["judge_score"]
    assert judge["calls"] >= 1 and judge["abstained"] == 0
    scored = info["reward_totals"]["judge_score"]["samples"]  # the engine's count of the training samples
    assert judge["calls"] + judge["cache_hits"] + judge["duplicates"] == scored >= 2, judge
    assert info["config"]["reward_options"]["judge_score"]["model"] == "smollm2-135m"
    history = json.loads((out / "log_history.json").read_text())
    assert any("rewards/judge_score/calls" in h for h in history)
    assert "judge_score: calls" in res.stdout  # the progress line
    assert SECRET not in res.stdout + res.stderr
    files_without_secret(tmp_path)


def test_benchmark_script_runs_against_a_server(judge_server, tmp_path):
    """benchmarks/judge.py (the numbers in docs/benchmarks.md) works, on a small sample."""
    out = tmp_path / "judge.json"
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "judge.py"
    res = subprocess.run([sys.executable, str(script), "--base-url", judge_server.base_url, "--model", "smollm2-135m",
                          "--response-format", "json_object", "--n", "2", "--batch", "2", "--concurrency", "1", "--timeout", "240", "--out", str(out)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["requests"] == 2 and row["abstained"] == 0 and row["requests_per_s"] > 0
    assert row["cached"] == {"requests": 0, "cache_hits": 2, "batch_wall_p50_ms": row["cached"]["batch_wall_p50_ms"]}
