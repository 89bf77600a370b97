"""The run's held-out evaluation: the chosen dataset's own test split (or a note that there is none), named in
pre-flight, with progress during a long evaluation."""

from __future__ import annotations

from click.testing import CliRunner

from grpo_core.cli import run as run_command
from grpo_core.cli.main import cli
from grpo_core.config.settings import build_config
from grpo_core.evaluation.plan import EvalPlan
from grpo_core.kit.datasets import DatasetAdapter
from grpo_core.train import run_phases


class TrainOnly(DatasetAdapter):
    name = "myproblems"
    splits = ("train",)


class WithTest(DatasetAdapter):
    name = "myproblems"
    splits = ("train", "test")


def _captured_cfg(monkeypatch, *args):
    seen = {}
    monkeypatch.setattr(run_command, "train_run", lambda cfg, **kw: seen.setdefault("cfg", cfg) and {"status": "finished"})
    res = CliRunner().invoke(cli, ["run", "--plugins", "xml", *args])
    assert res.exit_code == 0, res.output
    return seen["cfg"]


def test_a_chosen_dataset_is_not_evaluated_on_the_presets_split(monkeypatch, tmp_path):
    assert build_config(preset="tiny-cpu").eval_dataset == "arithmetic:test"  # what the default preset evaluates on
    assert _captured_cfg(monkeypatch, "--dataset", "myproblems:train").eval_dataset is None
    assert _captured_cfg(monkeypatch, "--dataset", "myproblems:train", "--eval-dataset", "gsm8k:test").eval_dataset == "gsm8k:test"
    assert _captured_cfg(monkeypatch).eval_dataset == "arithmetic:test"
    # the same rule for a config file, --set and the Python API
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("dataset: myproblems:train\n")
    assert build_config(preset="tiny-cpu", config_file=str(yaml_file)).eval_dataset is None
    assert build_config(preset="tiny-cpu", sets=["dataset=myproblems:train"]).eval_dataset is None
    yaml_file.write_text("dataset: myproblems:train\neval_dataset: gsm8k:test\n")
    assert build_config(preset="tiny-cpu", config_file=str(yaml_file)).eval_dataset == "gsm8k:test"


def test_the_training_adapters_own_test_split_or_a_note():
    cfg = build_config(flags={"dataset": "myproblems:train", "eval_limit": 50})
    adapter, split, line = EvalPlan.target(cfg, WithTest(), "myproblems")
    assert split == "test" and line == "evaluation: myproblems:test, up to 50 problems, before and after training"
    adapter, split, line = EvalPlan.target(cfg, TrainOnly(), "myproblems")
    assert split is None and line.startswith("evaluation: skipped: dataset 'myproblems' has no test split")
    assert "--eval-dataset" in line
    assert EvalPlan.from_config(cfg, TrainOnly(), "myproblems", print) is None


def test_preflight_names_the_eval_dataset(grpo_register, tmp_path):
    lines: list[str] = []
    cfg = build_config(flags={"dataset": "arithmetic:train", "limit": 8, "eval_limit": 20, "output_dir": str(tmp_path)})
    setup = run_phases.set_up(cfg, world_size=1, resume=False, echo=lines.append)
    run_phases.data(setup)
    assert "evaluation: arithmetic:test, up to 20 problems, before and after training" in lines


def test_a_long_evaluation_says_how_far_it_is():
    lines: list[str] = []
    plan = EvalPlan(dataset=[], verifier=None, spec="x:test", max_new_tokens=8, echo=lines.append)
    progress = plan._progress("before")
    for done in range(32, 321, 32):
        progress(done, 320)
    assert [ln.split(",")[0] for ln in lines] == [f"  evaluating (before): {d}/320 problems" for d in range(32, 320, 32)]
