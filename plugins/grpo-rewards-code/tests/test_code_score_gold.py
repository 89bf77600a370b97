"""`grpo-core score --plugins code_tests --dataset mbpp:test --gold-format`: the reference
solutions score 1.0 and every broken variant less."""

from __future__ import annotations

from click.testing import CliRunner

from grpo_core.rewards.scoring import score, summarize


def test_gold_solutions_score_one_and_broken_variants_less():
    report = score("code_tests,code_format", dataset="mbpp:test", gold_format=True, limit=6)
    s = summarize(report)
    tests = {v: d["mean"] for v, d in s["code_tests"].items()}
    fmt = {v: d["mean"] for v, d in s["code_format"].items()}
    for good in ("perfect", "perfect_chat", "draft_then_final", "trailing_text"):
        assert tests[good] == 1.0, (good, tests)
    for broken in ("wrong_code", "syntax_error", "no_fence", "unclosed_fence", "other_language", "empty"):
        assert tests[broken] < 0.5, (broken, tests)
    assert fmt["perfect"] == 1.0 and fmt["draft_then_final"] == 0.5 and fmt["no_fence"] == 0.0
    assert all(d["errors"] == 0 and d["timeouts"] == 0 for d in s["code_tests"].values())


def test_the_cli_prints_the_code_variants():
    from grpo_core.cli import cli, register_commands

    register_commands()
    res = CliRunner().invoke(cli, ["score", "--plugins", "code_tests", "--dataset", "humaneval:test", "--gold-format", "--limit", "3"],
                             prog_name="grpo-core", catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = {ln.split()[0]: ln.split() for ln in res.output.splitlines() if ln.strip()}
    assert lines["perfect"][2] == "1.000" and lines["wrong_code"][2] == "0.000"
