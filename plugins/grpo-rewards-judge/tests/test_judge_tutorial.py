"""The code of the tutorial's section "a reward that asks a judge" (docs/plugins/tutorial.md copies it)."""

from __future__ import annotations

import json

from judge_fixtures import judge_key, judge_server, options  # noqa: F401 (pytest fixtures)


def test_tutorial_judge_section(options, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open("samples.jsonl", "w") as f:
        for text in ("<reasoning>3 + 4 = 7</reasoning><answer>7</answer>", "<answer>12</answer>"):
            f.write(json.dumps({"completion": text}) + "\n")
    base_url, model, cache = options["base_url"], options["model"], options["cache"]
    timeout = options["timeout"]  # generous: a busy machine must not turn the judgments into timeouts
    # -- start judge --
    from grpo_core.rewards.scoring import score, summarize

    judge = {"base_url": base_url, "model": model, "rubric": "reasoning", "score_min": 1, "score_max": 5,
             "response_format": "json_object", "cache": cache, "timeout": timeout}
    report = score("judge_score", dataset="arithmetic:test", completions_path="samples.jsonl",
                   reward_options={"judge_score": judge})
    judged = report.engine.reported_totals()["judge_score"]
    assert judged["calls"] + judged["cache_hits"] == 2
    assert summarize(report)["judge_score"]["all"]["none"] == judged["abstained"] / 2
    # -- end judge --
    assert judged["calls"] == 2 and judged["abstained"] == 0, judged["abstain_reasons"]
