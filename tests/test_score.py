"""`grpo-core score`: rewards over given completions, through the training engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_core import hookimpl
from grpo_core.kit.datasets import DatasetAdapter
from grpo_core.rewards.engine import RewardEngine
from grpo_core.kit.extraction import completion_text, extract_answer
from grpo_core.rewards.scoring import _variants, gold_format_samples, load_rows, match_completions, score, summarize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Capitals(DatasetAdapter):
    """Three capital-city questions (a throwaway adapter for these tests)."""

    name = "capitals"
    verifier = ""  # no gold check: the answers are words
    splits = ("test",)
    DATA = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima")]

    def rows(self, split, **options):
        for i, (country, city) in enumerate(self.DATA):
            yield {"question": f"What is the capital of {country}?", "answer": city, "id": f"capitals/{i}", "country": country}


def right_city(completions, answer, **kwargs):
    """1.0 for the gold city, 0.0 for another, None when there is no answer block."""
    found = [extract_answer(completion_text(c)) for c in completions]
    return [None if f is None else float(f == a) for f, a in zip(found, answer)]


def logs_lengths(completions, log_extra=None, log_metric=None, trainer_state=None, completion_ids=None, **kwargs):
    """0.0 always; logs each completion's byte length and the step it saw."""
    log_extra("n_bytes", [len(ids) for ids in completion_ids])
    log_metric("seen_step", float(trainer_state.global_step))
    return [0.0] * len(completions)


def flaky(completions, **kwargs):
    """Raises on replies mentioning Lima."""
    if any("Lima" in completion_text(c) for c in completions):
        raise ValueError("Lima is not supported")
    return [0.5] * len(completions)


class Plugin:
    @staticmethod
    @hookimpl
    def register_datasets(register):
        register(Capitals())

    @staticmethod
    @hookimpl
    def register_rewards(register):
        register(right_city, requires=("answer",))
        register(logs_lengths)
        register(flaky)


@pytest.fixture
def capitals(grpo_register):
    grpo_register(Plugin, name="score-test")


@pytest.fixture
def invoke(capitals):
    from grpo_core.cli import cli, register_commands

    register_commands()
    return lambda *args: CliRunner().invoke(cli, list(args), prog_name="grpo-core", catch_exceptions=False)


def write_jsonl(path: Path, lines: list[dict]) -> str:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(path)


def test_gold_format_pays_each_variant_what_the_reward_says(capitals):
    report = score("right_city,xml", dataset="capitals:test", gold_format=True)
    s = summarize(report)
    assert list(s["right_city"]) == [*_variants(), "all"]
    city = {v: (d["mean"], d["none"]) for v, d in s["right_city"].items()}
    assert city["perfect"] == city["perfect_chat"] == city["answer_only"] == (1.0, 0.0)
    assert city["wrong_answer"] == (0.0, 0.0)  # "not Paris" is a wrong city
    assert city["no_tags"] == (None, 1.0) and city["empty"] == (None, 1.0)  # no answer block: no opinion
    assert s["xml"]["perfect"]["mean"] == 0.5 and s["xml"]["no_tags"]["mean"] == 0.0
    assert s["total"]["perfect"]["mean"] == 1.5 and s["total"]["no_tags"]["mean"] == 0.0  # None skipped, as in TRL


def test_scores_equal_the_engine_used_by_run(capitals):
    """score batches by variant; the per-sample values must not depend on that."""
    report = score("right_city:2,xml", dataset="capitals:test", gold_format=True)
    rows = {r["id"]: r for r in load_rows("capitals:test")}
    engine = RewardEngine.from_selection("right_city:2,xml")
    direct = engine.score(
        [s.completion for s in report.samples],
        prompts=[rows[s.id]["prompt"] for s in report.samples],
        answer=[rows[s.id]["answer"] for s in report.samples],
    )
    assert report.values == direct.values and report.totals == direct.totals


def test_completions_by_id_and_in_order(capitals, tmp_path):
    by_id = write_jsonl(tmp_path / "a.jsonl", [
        {"id": "capitals/2", "completion": "<answer>Lima</answer>"},
        {"id": "capitals/2", "completion": [{"role": "assistant", "content": "<answer>Cusco</answer>"}], "variant": "sampled"},
        {"id": "capitals/0", "completion": "<answer>Paris</answer>", "note": "kept in --out"},
    ])
    r = score("right_city", dataset="capitals:test", completions_path=by_id)
    assert [s.id for s in r.samples] == ["capitals/2", "capitals/2", "capitals/0"]
    assert r.values["right_city"] == [1.0, 0.0, 1.0] and r.variants == ["file", "sampled"]
    in_order = write_jsonl(tmp_path / "b.jsonl", [{"completion": "<answer>Paris</answer>"}, {"completion": "<answer>Paris</answer>"}])
    assert score("right_city", dataset="capitals:test", completions_path=in_order).values["right_city"] == [1.0, 0.0]
    # no dataset: rewards that need no columns still run
    assert score("xml", completions_path=in_order).values["xml"] == [0.25, 0.25]


@pytest.mark.parametrize(
    "lines, args, message",
    [
        ([{"id": "capitals/9", "completion": "x"}], {}, "1 completion ids are not in the dataset (first: 'capitals/9'); dataset ids look like 'capitals/0'"),
        ([{"id": "capitals/0", "completion": "x"}, {"completion": "y"}], {}, "some completion lines have an id and some do not"),
        ([{"completion": "x"}] * 4, {}, "4 completions without ids but only 3 dataset rows"),
        ([{"text": "x"}], {}, 'each line needs a "completion" key'),
        ([{"completion": 3}], {}, "completion must be a string or a list of chat messages"),
        ([{"completion": "x"}], {"dataset": None}, "reward 'right_city' (score-test (in-process)) needs the column(s) answer, which only a dataset provides"),
    ],
)
def test_bad_input_is_refused_with_the_fix(capitals, tmp_path, lines, args, message):
    from grpo_core.errors import GrpoCoreError

    path = write_jsonl(tmp_path / "c.jsonl", lines)
    with pytest.raises(GrpoCoreError) as exc:
        score("right_city", **{"dataset": "capitals:test", "completions_path": path, **args})
    assert message in str(exc.value)


def test_cli_table_errors_latency_and_out(invoke, tmp_path):
    out = tmp_path / "scored.jsonl"
    res = invoke("score", "--plugins", "right_city,logs_lengths,flaky", "--dataset", "capitals:test", "--gold-format",
                 "--limit", "2", "--batch-size", "2", "--out", str(out))
    assert res.exit_code == 0, res.output
    text = res.output
    assert "right_city  (weight 1; score-test (in-process))" in text
    assert "variant         n   mean    min    max  none  errors  timeouts  ms/sample" in text
    assert "metrics logged with log_metric (mean):\n  seen_step = 0" in text
    assert "flaky" in text and "last error" not in text  # --limit 2 leaves Lima out: no errors
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 2 * len(_variants())
    first = lines[0]
    assert first["id"] == "capitals/0" and first["variant"] == "perfect"
    assert first["rewards"] == {"right_city": 1.0, "logs_lengths": 0.0, "flaky": 0.5} and first["total"] == 1.5
    assert first["logs"] == {"n_bytes": len(first["completion"].encode())}


def test_cli_counts_errors_per_variant_and_isolates_samples(invoke):
    res = invoke("score", "--plugins", "flaky", "--dataset", "capitals:test", "--gold-format")
    assert res.exit_code == 0, res.output
    table = res.output.split("\n\n")[0].splitlines()
    perfect = next(ln for ln in table if ln.startswith("perfect "))
    assert perfect.split()[1:8] == ["3", "0.500", "0.500", "0.500", "33%", "1", "0"]  # Lima's row fails alone
    empty = next(ln for ln in table if ln.startswith("empty "))
    assert empty.split()[1:8] == ["3", "0.500", "0.500", "0.500", "0%", "0", "0"]
    assert "last error: ValueError: Lima is not supported" in res.output


def test_cli_explains_missing_inputs(invoke):
    res = CliRunner().invoke(__import__("grpo_core.cli", fromlist=["cli"]).cli, ["score", "--plugins", "xml"])
    assert res.exit_code == 2 and "nothing to score: pass --completions FILE.jsonl, --gold-format, or both." in res.output
    res = invoke("score", "--plugins", "xml", "--gold-format")
    assert "pass --dataset NAME[:SPLIT] too" in res.output


def test_single_file_plugin_scores_without_packaging(invoke):
    res = invoke("score", "--plugin-file", str(EXAMPLES / "single_file_reward.py"), "--plugins", "xml,concise",
                 "--dataset", "capitals:test", "--gold-format")
    assert res.exit_code == 0, res.output
    assert f"concise  (weight 0.5; single_file_reward (file {EXAMPLES / 'single_file_reward.py'}))" in res.output
    concise = {ln.split()[0]: ln.split() for ln in res.output.split("\n\n")[1].splitlines()[2:]}
    assert concise["no_tags"][5] == "100%" and concise["perfect"][2] != "-"


def test_gold_variants_are_built_from_the_gold():
    rows = [{"id": "r", "answer": "12", "solution": "<reasoning>\n3 * 4 = 12\n</reasoning>\n<answer>\n12\n</answer>"}]
    got = {s.variant: s.completion for s in gold_format_samples(rows)}
    assert got["perfect"] == rows[0]["solution"]
    assert got["wrong_answer"].endswith("<answer>\n13\n</answer>")
    assert got["trailing_text"].startswith(rows[0]["solution"] + "\n")
    assert got["perfect_chat"] == [{"role": "assistant", "content": rows[0]["solution"]}]
    assert match_completions([{"completion": "a"}], None)[0].row is None


def test_gsm8k_end_to_end_through_the_installed_plugin(tmp_path):
    """The real command, in a fresh interpreter, with grpo-rewards-math's dataset and cpu_bound reward."""
    import subprocess
    import sys

    from conftest import run_cli

    if subprocess.run([sys.executable, "-m", "pip", "show", "-q", "grpo-rewards-math"], capture_output=True).returncode:
        pytest.fail("grpo-rewards-math is not installed; run `make setup` (it installs the in-repo plugins)")
    out = tmp_path / "gsm8k.jsonl"
    res = run_cli("score", "--plugins", "xml,correctness", "--dataset", "gsm8k:test", "--gold-format", "--limit", "4",
                  "--out", str(out), timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "correctness  (weight 1; grpo-rewards-math" in res.stdout
    by_variant = {}
    for line in out.read_text().splitlines():
        d = json.loads(line)
        by_variant.setdefault(d["variant"], []).append(d["rewards"]["correctness"])
    assert len(by_variant["perfect"]) == 4
    best = max(by_variant["perfect"])
    assert best > 0 and by_variant["perfect"] == [best] * 4 == by_variant["perfect_chat"] == by_variant["boxed"]
    assert by_variant["wrong_answer"] == by_variant["no_tags"] == by_variant["empty"] == [0.0] * 4


class SpelledCapitals(Capitals):
    """The capitals again, with replies of their own for --gold-format."""

    name = "spelled_capitals"
    gold_variants = {
        "perfect": ("the city spelled out", lambda r: f"<answer>\n{r['answer']}\n</answer>"),
        "lowercase": ("the city in lower case", lambda r: f"<answer>\n{r['answer'].lower()}\n</answer>"),
    }


def test_an_adapter_can_bring_its_own_gold_variants(grpo_register, plugin_state):
    class Own:
        @staticmethod
        @hookimpl
        def register_datasets(register):
            register(SpelledCapitals())

        @staticmethod
        @hookimpl
        def register_rewards(register):
            register(right_city, requires=("answer",))

    grpo_register(Own, name="own-variants")
    report = score("right_city", dataset="spelled_capitals:test", gold_format=True)
    assert report.variants == ["perfect", "lowercase"]
    s = summarize(report)["right_city"]
    assert s["perfect"]["mean"] == 1.0 and s["lowercase"]["mean"] == 0.0
