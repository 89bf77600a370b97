"""grpo-core eval: metrics against hand-computed values, the engine-neutral JSONL, the command.

Models: the ~100k-parameter tiny Qwen2 (tests/tiny_models.py) and a LoRA adapter
whose B weights are set directly (tests/tiny_adapters.py), so that it changes
the model's outputs without a training run.
"""

from __future__ import annotations

import json
import math
from itertools import combinations

import pytest
from tiny_adapters import tiny_base, tiny_run  # noqa: F401  (fixtures)

from grpo_core.errors import ConfigError, GrpoCoreError
from grpo_core.evaluation.evaluate import EvalRequest, run_eval
from grpo_core.evaluation.metrics import default_ks, majority_answer, pass_at_k, score_completions


# --- unbiased pass@k ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (5, 2, 1, 0.4),
        (10, 0, 5, 0.0),
        (10, 10, 1, 1.0),
        (4, 1, 3, 0.75),  # 1 - C(3,3)/C(4,3) = 1 - 1/4
        (3, 1, 3, 1.0),  # n - c < k: some sample of any 3 is right
        (16, 3, 4, 1 - math.comb(13, 4) / math.comb(16, 4)),
    ],
)
def test_pass_at_k_known_cases(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_equals_enumerating_every_k_subset():
    for n in range(1, 8):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(samples, k))
                brute = sum(any(s) for s in subsets) / len(subsets)
                assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_needs_k_samples():
    with pytest.raises(ValueError, match="at least 3"):
        pass_at_k(2, 1, 3)


def test_default_ks_and_majority():
    assert default_ks(1) == [1]
    assert default_ks(5) == [1, 2, 4, 5]
    assert default_ks(8) == [1, 2, 4, 8]
    assert majority_answer(["3", None, "4", "4", "3"]) == "3"  # tie: first seen
    assert majority_answer([None, None]) is None


# --- metrics on scripted completions (toy verifier: integer equality) ----------------------------

def ans(x: str) -> str:
    return f"<reasoning>\nwork\n</reasoning>\n<answer>\n{x}\n</answer>"


ROWS = [{"id": "p0", "answer": "7"}, {"id": "p1", "answer": "10"}, {"id": "p2", "answer": "3"}]
COMPLETIONS = [
    [ans("7"), ans("7"), ans("8"), "no tags, 7", ans("7")],  # 3 right, 1 wrong, 1 no answer; majority 7
    [ans("9"), ans("10"), "nothing", "nothing", ans("9")],  # 1 right, 2 wrong, 2 no answer; majority 9 (wrong)
    [ans("x"), "nothing", "nothing", "nothing", "nothing"],  # 0 right, 1 unparseable (wrong), 4 no answer
]


@pytest.fixture
def toy(grpo_register):
    import toy_plugin

    grpo_register(toy_plugin.ToyPlugin(), name="toy_plugin")
    from grpo_core import get_verifier

    return get_verifier("toy")


def test_metrics_match_hand_computed_values(toy):
    res = score_completions(ROWS, COMPLETIONS, toy, ks=[1, 2, 5])
    m = res.metrics
    assert m["problems"] == 3 and m["samples_per_problem"] == 5
    assert m["accuracy"] == pytest.approx(4 / 15)
    assert m["no_answer_rate"] == pytest.approx(7 / 15)
    assert m["wrong_rate"] == pytest.approx(4 / 15)  # 2 + 1 different, 1 unparseable
    assert m["format_rate"] == pytest.approx(8 / 15)
    assert m["status_counts"] == {"different": 3, "matched": 4, "no_answer": 7, "pred_unparseable": 1}
    # pass@k per problem: c = 3, 1, 0 of n = 5
    assert m["pass@1"] == pytest.approx((3 / 5 + 1 / 5 + 0) / 3)
    assert m["pass@2"] == pytest.approx(((1 - math.comb(2, 2) / math.comb(5, 2)) + (1 - math.comb(4, 2) / math.comb(5, 2)) + 0) / 3)
    assert m["pass@5"] == pytest.approx(2 / 3)
    assert m["maj@5"] == pytest.approx(1 / 3)  # only p0's majority (7) is right
    p0, p1, p2 = res.problems
    assert p0["majority"] == "7" and p1["majority"] == "9" and p2["majority"] == "x"
    assert [v["status"] for v in p0["verdicts"]] == ["matched", "matched", "different", "no_answer", "matched"]
    assert p0["extracted"] == ["7", "7", "8", None, "7"]
    assert p0["correct"] == 3 and p1["correct"] == 1 and p2["correct"] == 0
    assert all(v["reason"] for p in res.problems for v in p["verdicts"])  # every verdict says why


class ScriptedEngine:
    """An engine that returns fixed completions: base and adapter differ, as a trained adapter would."""

    name = "scripted"

    def __init__(self):
        self.calls = []

    def generate(self, prompts, *, use_adapter=True, samples=1, temperature=0.0, max_new_tokens=256, seed=0, progress=None, desc=""):
        self.calls.append((use_adapter, samples, temperature, seed))
        out = []
        for p in prompts:
            q = p[-1]["content"]  # "a + b?"
            a, b = (int(x) for x in q.rstrip("?").split("+"))
            if use_adapter:
                out.append([ans(str(a + b)) if s % 2 == 0 else ans(str(a + b + 1)) for s in range(samples)])
            else:
                out.append(["I do not know"] * samples)
        return out


def test_run_eval_with_an_engine_writes_the_jsonl_and_compares_base(toy, tmp_path, tiny_run):
    eng = ScriptedEngine()
    out = tmp_path / "e.jsonl"
    lines = []
    summary = run_eval(EvalRequest(dataset="toy:test", adapter=str(tiny_run), samples=3, limit=4, out=str(out), compare_base=True, seed=7),
                       echo=lines.append, engine_obj=eng)
    assert [c[0] for c in eng.calls] == [False, True]  # base, then adapter
    assert {c[3] for c in eng.calls} == {7} and {c[2] for c in eng.calls} == {1.0}  # same seed; T defaults to 1 with K>1
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["model"] for r in recs] == ["base"] * 4 + ["adapter"] * 4
    assert [r["id"] for r in recs[:4]] == [r["id"] for r in recs[4:]] == ["test-0", "test-1", "test-2", "test-3"]
    assert set(recs[0]) == {"model", "id", "prompt", "answer", "completions", "extracted", "verdicts", "format", "correct", "majority",
                            "flexible", "correct_flexible"}
    ad, base = summary["results"]["adapter"], summary["results"]["base"]
    assert ad["accuracy"] == pytest.approx(2 / 3) and ad["pass@2"] == pytest.approx(1.0) and ad["maj@3"] == 1.0
    assert base["accuracy"] == 0.0 and base["no_answer_rate"] == 1.0 and base["wrong_rate"] == 0.0
    assert summary["delta"]["accuracy"] == pytest.approx(2 / 3)
    assert json.loads(out.with_name("e.summary.json").read_text()) == summary
    text = "\n".join(lines)
    assert "accuracy, strict" in text and "accuracy, flexible" in text and "no answer (strict)" in text and "maj@3" in text
    assert "[base: no_answer" in text and "[adapter: matched" in text  # side by side


def test_eval_refuses_identical_greedy_samples_and_missing_model(toy):
    with pytest.raises(ConfigError, match="identical"):
        run_eval(EvalRequest(dataset="toy:test", model="x/y", samples=4, temperature=0.0), engine_obj=ScriptedEngine())
    with pytest.raises(ConfigError, match="--model"):
        run_eval(EvalRequest(dataset="toy:test"), engine_obj=ScriptedEngine())
    with pytest.raises(ConfigError, match="--compare-base needs --adapter"):
        run_eval(EvalRequest(dataset="toy:test", model="x/y", compare_base=True), engine_obj=ScriptedEngine())


# --- the HF engine on the tiny model --------------------------------------------------------------

def test_hf_engine_same_json_as_any_engine_and_deterministic(toy, tmp_path, tiny_run, tiny_base):
    from grpo_core.evaluation.engines import HFEngine

    eng = HFEngine(str(tiny_base), str(tiny_run / "adapter"))
    req = dict(dataset="toy:test", adapter=str(tiny_run / "adapter"), samples=2, temperature=1.0, limit=3, max_new_tokens=8, compare_base=True, seed=3)
    s1 = run_eval(EvalRequest(**req, out=str(tmp_path / "a.jsonl")), echo=lambda s: None, engine_obj=eng)
    s2 = run_eval(EvalRequest(**req, out=str(tmp_path / "b.jsonl")), echo=lambda s: None, engine_obj=eng)
    a, b = (tmp_path / "a.jsonl").read_text(), (tmp_path / "b.jsonl").read_text()
    assert a == b  # same seed, same samples
    recs = [json.loads(x) for x in a.splitlines()]
    scripted = tmp_path / "s.jsonl"
    run_eval(EvalRequest(**{**req, "out": str(scripted)}), echo=lambda s: None, engine_obj=ScriptedEngine())
    assert [set(r) for r in recs] == [set(json.loads(x)) for x in scripted.read_text().splitlines()]
    base_c = [r["completions"] for r in recs if r["model"] == "base"]
    ad_c = [r["completions"] for r in recs if r["model"] == "adapter"]
    assert base_c != ad_c  # the adapter changes what the model writes
    assert s1["engine"] == "hf" and s1 == {**s2, "out": s1["out"]}
    # the metrics in the summary are those of the records
    for stage in ("base", "adapter"):
        rs = [r for r in recs if r["model"] == stage]
        n = sum(len(r["verdicts"]) for r in rs)
        assert s1["results"][stage]["accuracy"] == pytest.approx(sum(r["correct"] for r in rs) / n)
        assert s1["results"][stage]["no_answer_rate"] == pytest.approx(sum(v["status"] == "no_answer" for r in rs for v in r["verdicts"]) / n)


def test_eval_command_end_to_end(toy, tmp_path, tiny_run, tiny_base):
    from click.testing import CliRunner

    from grpo_core.cli import cli, register_commands

    register_commands()
    out = tmp_path / "cli.jsonl"
    res = CliRunner().invoke(cli, ["eval", "--adapter", str(tiny_run), "--dataset", "toy:test", "--limit", "2", "--max-new-tokens", "6",
                                   "--engine", "hf", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["base_model"] == str(tiny_base) and summary["engine"] == "hf"
    assert summary["results"]["adapter"]["problems"] == 2 and len(out.read_text().splitlines()) == 2
    bad = CliRunner().invoke(cli, ["eval", "--adapter", str(tmp_path / "nope"), "--dataset", "toy:test"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_resolve_trained_run_and_adapter_folders(tiny_run, tiny_base, tmp_path):
    from grpo_core.run_folder import resolve_trained

    t = resolve_trained(tiny_run)
    assert t.run_dir == tiny_run and t.adapter_dir == tiny_run / "adapter" and t.base == str(tiny_base) and t.lora_rank == 4
    t2 = resolve_trained(tiny_run / "adapter")
    assert t2.adapter_dir == tiny_run / "adapter" and t2.base == t.base and t2.run["global_step"] == 4
    assert resolve_trained(tiny_run, base="other/model").base == "other/model"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither a run folder"):
        resolve_trained(tmp_path / "empty")


def test_gsm8k_test_split_through_the_math_plugin(plugin_state, tmp_path, tiny_run):
    """The real gsm8k adapter and verifier (plugins/grpo-rewards-math), 2 problems, greedy, on the tiny model."""
    pytest.importorskip("grpo_rewards_math")
    plugin_state(None)  # installed plugins too
    out = tmp_path / "g.jsonl"
    s = run_eval(EvalRequest(dataset="gsm8k:test", adapter=str(tiny_run), limit=2, max_new_tokens=8, engine="hf", out=str(out)), echo=lambda s: None)
    assert s["dataset"] == "gsm8k:test" and s["verifier"] == "gsm8k"
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 2 and all(r["answer"] for r in recs)
    m = s["results"]["adapter"]
    assert m["accuracy"] + m["no_answer_rate"] + m["wrong_rate"] == pytest.approx(1.0)


class HashAnswerEngine:
    """The base model answers ``#### N`` in prose (right, outside the format's slot); the adapter answers in the slot."""

    name = "hash-answer"

    def generate(self, prompts, *, use_adapter=False, samples=1, **kw):
        out = []
        for p in prompts:
            a, b = (int(x) for x in p[-1]["content"].rstrip("?").split("+"))
            out.append([ans(str(a + b)) if use_adapter else f"Adding them up gives the total.\n#### {a + b}"] * samples)
        return out


def test_hash_answer_is_right_when_flexible_and_a_format_failure_when_strict():
    """lm-evaluation-harness's strict-match / flexible-extract split: ``#### 18`` outside the slot."""
    from grpo_core import get_verifier

    res = score_completions([{"id": "p", "answer": "18"}], [["Adding them up gives the total.\n#### 18"]], get_verifier("arithmetic"))
    m = res.metrics
    assert m["accuracy_flexible"] == 1.0
    assert m["accuracy_strict"] == 0.0 and m["accuracy"] == 0.0 and m["format_rate"] == 0.0 and m["no_answer_rate"] == 1.0
    assert res.problems[0]["flexible"][0]["equal"] is True and res.problems[0]["correct_flexible"] == 1


def test_eval_reports_strict_flexible_and_format_side_by_side_with_compare_base(toy, tmp_path, tiny_run):
    out = tmp_path / "h.jsonl"
    lines = []
    summary = run_eval(EvalRequest(dataset="toy:test", adapter=str(tiny_run), limit=4, out=str(out), compare_base=True),
                       echo=lines.append, engine_obj=HashAnswerEngine())
    base, ad = summary["results"]["base"], summary["results"]["adapter"]
    assert (base["accuracy_strict"], base["accuracy_flexible"], base["format_rate"]) == (0.0, 1.0, 0.0)
    assert (ad["accuracy_strict"], ad["accuracy_flexible"], ad["format_rate"]) == (1.0, 1.0, 1.0)
    assert summary["delta"]["accuracy_strict"] == 1.0 and summary["delta"]["accuracy_flexible"] == 0.0 and summary["delta"]["format_rate"] == 1.0
    assert json.loads(out.with_name("h.summary.json").read_text()) == summary
    printed = next(block for block in lines if "accuracy, strict" in block)  # the table, one echo
    table = {ln.split("  ")[0]: ln.split() for ln in printed.splitlines()[2:]}
    assert table["accuracy, strict"][-3:] == ["0.0%", "100.0%", "+100.0%"]
    assert table["accuracy, flexible"][-3:] == ["100.0%", "100.0%", "+0.0%"]
    assert table["format reward rate"][-3:] == ["0.0%", "100.0%", "+100.0%"]
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["correct"] for r in recs[:4]] == [0] * 4 and [r["correct_flexible"] for r in recs[:4]] == [1] * 4


class OracleEngine:
    """Answers every prompt with the gold answer (or a wrong one), to check dataset adapters + verifiers end to end."""

    name = "oracle"

    def __init__(self, answers: dict, wrong: bool = False):
        self.answers, self.wrong = answers, wrong

    def generate(self, prompts, *, samples=1, **kw):
        out = []
        for p in prompts:
            gold = self.answers[p[-1]["content"]]
            out.append([ans("12345" if self.wrong else gold)] * samples)
        return out


@pytest.mark.parametrize("spec", ["aime:2025", "math500:test", "gsm8k:test"])
def test_aime_math500_gsm8k_work_through_their_adapters(plugin_state, tmp_path, spec):
    pytest.importorskip("grpo_rewards_math")
    plugin_state(None)
    from grpo_core import get_dataset

    name, split = spec.split(":")
    rows = get_dataset(name).load(split, limit=4, verbose=False)
    answers = {r["prompt"][-1]["content"]: r["answer"] for r in rows}
    good = run_eval(EvalRequest(dataset=spec, model="x/y", limit=4, out=str(tmp_path / "g.jsonl")), echo=lambda s: None, engine_obj=OracleEngine(answers))
    bad = run_eval(EvalRequest(dataset=spec, model="x/y", limit=4, out=str(tmp_path / "b.jsonl")), echo=lambda s: None,
                   engine_obj=OracleEngine(answers, wrong=True))
    assert good["verifier"] == get_dataset(name).verifier
    assert good["results"]["base"]["accuracy"] == 1.0 and good["results"]["base"]["format_rate"] == 1.0
    assert bad["results"]["base"]["accuracy"] == 0.0 and bad["results"]["base"]["wrong_rate"] == 1.0


class _PlacedModel:
    """A model whose weights sit on the CPU and that records where it is moved."""

    def __init__(self, torch):
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.moved_to: list[str] = []

    def parameters(self):
        return iter([self.weight])

    def to(self, device):
        self.moved_to.append(device)
        return self


@pytest.mark.parametrize("cuda", [True, False])
def test_eval_plan_moves_a_cpu_policy_to_the_gpu_when_there_is_one(monkeypatch, cuda):
    import torch

    from grpo_core.evaluation import plan as plan_module
    from grpo_core.evaluation.metrics import EvalResult

    monkeypatch.setattr(plan_module, "cuda_available", lambda: cuda)
    placed = []

    def fake_evaluate(model, tokenizer, dataset, verifier, **kwargs):
        placed.append(list(model.moved_to))  # where the model was when generation started
        return EvalResult(metrics={"accuracy_strict": 0.5, "accuracy_flexible": 0.5, "format_rate": 1.0, "no_answer_rate": 0.0})

    monkeypatch.setattr(plan_module, "evaluate_model", fake_evaluate)
    model = _PlacedModel(torch)
    evals = plan_module.EvalPlan([{"prompt": "1+1", "answer": "2"}], verifier=None, spec="toy:test", max_new_tokens=8, echo=lambda s: None)
    evals.run("before", model, tokenizer=None)
    assert placed == [["cuda"] if cuda else []]


def test_eval_does_not_overwrite_its_default_output_file(toy, tmp_path, tiny_run, monkeypatch):
    """Without --out, a second evaluation writes a numbered file and says so; the first one's results stay."""
    monkeypatch.chdir(tmp_path)
    req = dict(dataset="toy:test", adapter=str(tiny_run), limit=2)
    run_eval(EvalRequest(**req), echo=lambda s: None, engine_obj=ScriptedEngine())
    first = (tmp_path / "eval-toy-test.jsonl").read_text()
    lines: list[str] = []
    summary = run_eval(EvalRequest(**{**req, "limit": 3}), echo=lines.append, engine_obj=ScriptedEngine())
    assert (tmp_path / "eval-toy-test.jsonl").read_text() == first
    assert summary["out"] == "eval-toy-test-2.jsonl" and len((tmp_path / "eval-toy-test-2.jsonl").read_text().splitlines()) == 3
    assert any("eval-toy-test.jsonl exists (an earlier evaluation); writing eval-toy-test-2.jsonl instead" in ln for ln in lines)


# --- dataset options -----------------------------------------------------------------------------

@pytest.fixture
def my_columns(tmp_path):
    path = tmp_path / "held-out.jsonl"
    path.write_text("\n".join(json.dumps({"q": f"{i} + 1?", "gold": str(i + 1), "key": f"k{i}"}) for i in range(3)))
    return path


def test_eval_takes_dataset_options_for_a_file_with_its_own_columns(grpo_register, tmp_path, my_columns):
    req = dict(dataset=f"jsonl:{my_columns}", model="x/y", out=str(tmp_path / "e.jsonl"))
    with pytest.raises(ConfigError, match=r"no 'question', 'answer', 'id' column.*--dataset-option question=YOUR_COLUMN"):
        run_eval(EvalRequest(**req), echo=lambda s: None, engine_obj=ScriptedEngine())
    summary = run_eval(EvalRequest(**req, dataset_options={"question": "q", "answer": "gold", "id": "key"}), echo=lambda s: None,
                       engine_obj=ScriptedEngine())
    assert summary["results"]["base"]["problems"] == 3
    assert [json.loads(ln)["id"] for ln in (tmp_path / "e.jsonl").read_text().splitlines()] == ["k0", "k1", "k2"]


def test_eval_of_a_run_reuses_its_column_options_but_not_its_file(grpo_register, tmp_path, tiny_run, my_columns):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    info = json.loads((run / "run.json").read_text())
    info["config"] = {**info.get("config", {}), "dataset": "jsonl:train.jsonl",
                      "dataset_options": {"question": "q", "answer": "gold", "id": "key", "path": "train.jsonl"}}
    (run / "run.json").write_text(json.dumps(info))
    lines: list[str] = []
    summary = run_eval(EvalRequest(dataset=f"jsonl:{my_columns}", adapter=str(run), out=str(tmp_path / "e.jsonl")), echo=lines.append,
                       engine_obj=ScriptedEngine())
    assert summary["results"]["adapter"]["problems"] == 3
    assert "dataset options from the run: question=q, answer=gold, id=key (--dataset-option overrides)" in lines


def test_eval_refuses_an_option_the_dataset_does_not_take(grpo_register, my_columns):
    with pytest.raises(GrpoCoreError, match="colour"):
        run_eval(EvalRequest(dataset=f"jsonl:{my_columns}", model="x/y", dataset_options={"colour": "red"}), echo=lambda s: None,
                 engine_obj=ScriptedEngine())


def test_the_builtin_arithmetic_dataset_refuses_any_option_by_name(grpo_register):
    with pytest.raises(GrpoCoreError, match=r"dataset 'arithmetic' takes no option 'limt'; its options: none"):
        run_eval(EvalRequest(dataset="arithmetic:test", model="x/y", dataset_options={"limt": "5"}), echo=lambda s: None,
                 engine_obj=ScriptedEngine())
