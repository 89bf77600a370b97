"""The phases of a run, one by one, and the backends behind them.

Fast: the bundled tiny reasoner, the built-in arithmetic task and format rewards, and fakes where a phase
only passes things along (a trainer that records what it was asked to do). A whole run is in test_train_cpu.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

from grpo_core.config.settings import BACKENDS, RunConfig, build_config
from grpo_core.errors import ConfigError, PreflightError
from grpo_core.train import backends, run_phases, runner
from grpo_core.train.backends.base import Backend, LoadedPolicy
from grpo_core.train.backends.trl import TrlBackend
from grpo_core.train.backends.unsloth import UnslothBackend
from grpo_core.train.diagnosis import Diagnosis

FLAGS = {"dataset": "arithmetic:train", "limit": 16, "plugins": "xml,soft_format", "num_generations": 4,
         "per_device_train_batch_size": 8, "max_completion_length": 12, "eval_limit": 0, "threads": 1}


def _cfg(tmp_path, **flags) -> RunConfig:
    return build_config(flags={**FLAGS, "output_dir": str(tmp_path), **flags})


def _no_gpu(monkeypatch, unsloth_installed: bool = False):
    import grpo_core.train.backends.trl as trl_module
    import grpo_core.train.backends.unsloth as unsloth_module

    monkeypatch.setattr(unsloth_module, "cuda_available", lambda: False)
    monkeypatch.setattr(trl_module, "cuda_available", lambda: False)
    monkeypatch.setattr(unsloth_module, "_installed", lambda: unsloth_installed)


def _gpu(monkeypatch, unsloth_installed: bool):
    """A CUDA GPU without vLLM (so auto's trl + vLLM colocate rule never applies: tests/test_backend_choice.py has it)."""
    import grpo_core.train.backends.trl as trl_module
    import grpo_core.train.backends.unsloth as unsloth_module

    monkeypatch.setattr(unsloth_module, "cuda_available", lambda: True)
    monkeypatch.setattr(unsloth_module, "_installed", lambda: unsloth_installed)
    monkeypatch.setattr(trl_module, "_vllm_installed", lambda: False)


# -- the backends -------------------------------------------------------------------------------------


def test_every_backend_the_settings_accept_is_registered():
    assert set(backends.REGISTERED) == set(BACKENDS) - {"auto"}
    assert all(isinstance(b, Backend) and b.name == name for name, b in backends.REGISTERED.items())


@pytest.mark.parametrize(
    ("gpu", "unsloth", "full", "picked", "reason"),
    [
        (False, False, False, "trl", "no CUDA GPU visible (trl + PEFT on CPU)"),
        (True, False, False, "trl", "CUDA GPU found but Unsloth is not installed"),
        (True, True, False, "unsloth", "CUDA GPU and Unsloth found (vLLM is not installed for the trl backend)"),
        (True, True, True, "trl", "full fine-tuning runs on the trl backend"),
    ],
)
def test_auto_picks_a_backend_and_says_why(monkeypatch, gpu, unsloth, full, picked, reason):
    (_gpu if gpu else _no_gpu)(monkeypatch, unsloth_installed=unsloth)
    backend, why = backends.choose_backend(RunConfig(full_finetune=full))
    assert (backend.name, why) == (picked, reason)


def test_a_backend_set_by_name_is_used_or_refused_with_the_fix(monkeypatch):
    _no_gpu(monkeypatch, unsloth_installed=True)
    backend, why = backends.choose_backend(RunConfig(backend="trl"))
    assert backend.name == "trl" and why == "backend set to trl (--backend, preset or config)"
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*use --backend trl"):
        backends.choose_backend(RunConfig(backend="unsloth"))
    _gpu(monkeypatch, unsloth_installed=False)
    with pytest.raises(ConfigError, match=r"not installed; `pip install 'grpo-core\[gpu\]'`.*or use --backend trl"):
        backends.choose_backend(RunConfig(backend="unsloth"))
    with pytest.raises(ConfigError, match="backend 'nope' is not one of auto, unsloth, trl"):
        backends.get_backend("nope")


def test_each_backend_owns_its_settings_and_the_others_are_noted_as_ignored():
    trl, unsloth = TrlBackend(), UnslothBackend()
    assert {"trim_padding", "group_steps", "vllm_engine_kwargs", "fast_vllm_sync", "use_vllm", "vllm_mode", "full_finetune"} <= set(trl.settings())
    assert {"fast_inference", "load_in_fp8"} <= set(unsloth.settings())
    assert not set(trl.settings()) & set(unsloth.settings())
    fields = {f for f in RunConfig.__dataclass_fields__}
    assert set(trl.settings()) | set(unsloth.settings()) <= fields
    cfg = RunConfig(load_in_fp8=True, vllm_engine_kwargs={"enforce_eager": True})
    assert backends.ignored_settings(cfg, trl, [unsloth]) == ["load_in_fp8: ignored on the trl backend (it applies to unsloth)"]
    assert backends.ignored_settings(cfg, unsloth, [trl]) == ["vllm_engine_kwargs: ignored on the unsloth backend (it applies to trl)"]
    assert backends.ignored_settings(RunConfig(), trl, [unsloth]) == []  # defaults are not news


def test_the_trl_backend_sizes_its_engine_to_the_run_and_keeps_a_length_the_user_set(monkeypatch, tmp_path):
    monkeypatch.setattr(TrlBackend, "colocated_vllm", lambda self, cfg: True)
    import grpo_core.train.backends.base as base

    monkeypatch.setattr(base, "gpu_total_bytes", lambda: 24 * 2**30)
    cfg = _cfg(tmp_path, max_seq_length=512)
    setup = TrlBackend().vllm_setup(cfg, "m", {})
    assert (setup.max_model_len, setup.grow_to_fit, setup.total_bytes) == (512, True, 24 * 2**30)
    setup = TrlBackend().vllm_setup(cfg, "m", {"vllm_max_model_length": 4096})
    assert (setup.max_model_len, setup.grow_to_fit) == (4096, False)
    kwargs: dict = {}
    TrlBackend().after_preflight(kwargs, {"vllm_memory": {"max_model_len": 640}})
    assert kwargs == {"vllm_max_model_length": 640}
    kwargs = {"vllm_max_model_length": 4096}
    TrlBackend().after_preflight(kwargs, {"vllm_memory": {"max_model_len": 640}})
    assert kwargs == {"vllm_max_model_length": 4096}


def test_unsloth_sizes_its_engine_only_with_fast_inference(monkeypatch, tmp_path):
    _gpu(monkeypatch, unsloth_installed=True)
    import grpo_core.train.backends.base as base

    monkeypatch.setattr(base, "gpu_total_bytes", lambda: 24 * 2**30)
    assert UnslothBackend().vllm_setup(_cfg(tmp_path, fast_inference=False), "m", {}) is None
    setup = UnslothBackend().vllm_setup(_cfg(tmp_path, max_seq_length=768), "m", {})
    assert (setup.max_model_len, setup.grow_to_fit) == (768, False)


def test_the_run_names_no_backend():
    """The runner and its phases ask the Backend; only the backends' own modules know their names."""
    for module in (runner, run_phases):
        tree = ast.parse(Path(module.__file__).read_text())
        names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not names & set(backends.REGISTERED), module.__name__


def test_run_reads_as_its_phases():
    lines, _ = inspect.getsourcelines(runner.run)
    assert len(lines) <= 80
    called = {n.func.attr for n in ast.walk(ast.parse(inspect.getsource(runner.run)))
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and getattr(n.func.value, "id", None) == "phase"}
    assert called == {"set_up", "rewards", "data", "preflight", "record", "load", "evaluate_before", "warm_up", "probe",
                      "build_trainer", "train", "save", "evaluate_after", "report"}


# -- a backend added by one registration ----------------------------------------------------------------


class RecordingBackend(TrlBackend):
    """A backend that trains like trl and records which of its hooks the run called."""

    name = "recording"
    auto_rank = 100

    def __init__(self) -> None:
        self.calls: list[str] = []

    def auto_choice(self, cfg):
        return True, "it always wants to"

    def prepare_process(self):
        self.calls.append("prepare_process")

    def after_preflight(self, grpo_kwargs, facts):
        self.calls.append("after_preflight")
        grpo_kwargs["recorded"] = True


def test_a_registered_backend_is_chosen_and_asked_for_each_step(grpo_register, monkeypatch, tmp_path):
    backend = RecordingBackend()
    monkeypatch.setitem(backends.REGISTERED, backend.name, backend)
    lines: list[str] = []
    info = runner.run(_cfg(tmp_path), dry_run=True, echo=lines.append)
    assert lines[0] == "backend: recording (it always wants to)"
    assert info["backend"] == "recording" and info["backend_reason"] == "it always wants to"
    assert backend.calls == ["prepare_process", "after_preflight"] and info["grpo_config"]["recorded"] is True


# -- each phase -------------------------------------------------------------------------------------------


@pytest.fixture
def echoed() -> list[str]:
    return []


@pytest.fixture
def setup(grpo_register, tmp_path, monkeypatch, echoed):
    _no_gpu(monkeypatch)
    return run_phases.set_up(_cfg(tmp_path), world_size=1, resume=False, echo=echoed.append)


def test_set_up_checks_the_settings_and_chooses_the_backend(grpo_register, tmp_path, monkeypatch):
    _no_gpu(monkeypatch)
    lines: list[str] = []
    s = run_phases.set_up(_cfg(tmp_path, load_in_fp8=True), world_size=2, resume=True, echo=lines.append)
    assert s.backend.name == "trl" and s.backend_reason.startswith("no CUDA GPU")
    assert Path(s.model_path, "config.json").is_file()  # the bundled tiny reasoner
    assert (s.world_size, s.resume, s.out_dir) == (2, True, tmp_path)
    assert lines == ["backend: trl (no CUDA GPU visible (trl + PEFT on CPU))", "load_in_fp8: ignored on the trl backend (it applies to unsloth)"]
    with pytest.raises(ConfigError, match="backend must be one of auto, unsloth, trl; got 'gpu'"):  # the settings check, before any backend is asked
        run_phases.set_up(_cfg(tmp_path, backend="gpu"), world_size=1, resume=False, echo=lines.append)


def test_rewards_and_data(setup, echoed):
    engine = run_phases.rewards(setup)
    assert engine.names == ["xml", "soft_format"]
    data = run_phases.data(setup)
    assert data.name == "arithmetic" and len(data.dataset) == 16 and "prompt" in data.dataset.column_names
    assert echoed[-3].startswith("rewards: xml×1") and echoed[-2].startswith("dataset: arithmetic:train (16 rows")
    assert echoed[-1] == "evaluation: off (eval_limit 0)"


def test_data_refuses_an_empty_split(grpo_register, tmp_path, monkeypatch):
    import toy_plugin

    from grpo_core import hookimpl

    class Empty(toy_plugin.ToyDataset):
        name = "empty"
        verifier = "arithmetic"

        def rows(self, split, **options):
            return iter(())

    class P:
        @hookimpl
        def register_datasets(self, register):
            register(Empty())

    grpo_register(P(), name="empty_plugin")
    _no_gpu(monkeypatch)
    s = run_phases.set_up(_cfg(tmp_path, dataset="empty:train"), world_size=1, resume=False, echo=lambda _: None)
    with pytest.raises(PreflightError, match="loaded no rows"):
        run_phases.data(s)


def test_preflight_runs_extra_checks_on_the_checked_dataset_and_they_can_stop_the_run(setup):
    engine, data = run_phases.rewards(setup), run_phases.data(setup)
    seen = []

    def count_rows(dataset, report):
        seen.append(len(dataset))
        report.say("extra check: fine")

    prepared = run_phases.preflight(setup, data, engine, extra_checks=[count_rows])
    assert seen == [len(prepared.dataset)] and "extra check: fine" in prepared.report.lines
    assert prepared.grpo_kwargs["output_dir"] == str(setup.out_dir) and prepared.cfg is setup.cfg  # nothing to settle on CPU
    assert engine.totals == {} or all(v.calls == 0 for v in engine.totals.values())  # the smoke test's calls are forgotten

    def refuse(dataset, report):
        raise PreflightError("the probe says no")

    with pytest.raises(PreflightError, match="the probe says no"):
        run_phases.preflight(setup, data, engine, extra_checks=[refuse])
    engine.close()


def test_record_writes_run_json_before_the_model_loads(setup):
    engine, data = run_phases.rewards(setup), run_phases.data(setup)
    prepared = run_phases.preflight(setup, data, engine)
    info = run_phases.record(setup, data, engine, prepared, dry_run=False)
    on_disk = json.loads((setup.out_dir / "run.json").read_text())
    assert on_disk["status"] == "loading" and on_disk["backend"] == "trl" and on_disk["model"] == "bundled:tiny-reasoner"
    assert on_disk["dataset"]["adapter"] == "arithmetic" and on_disk["dataset"]["rows"] == len(prepared.dataset)
    assert [r["name"] for r in on_disk["rewards"]] == ["xml", "soft_format"] and info.data == on_disk
    engine.close()


class FakeBackend(TrlBackend):
    name = "fake"

    def __init__(self, policy: LoadedPolicy) -> None:
        self.policy = policy

    def load_policy(self, cfg, model_path):
        return self.policy


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def test_load_takes_the_backends_overrides_where_the_user_set_nothing_and_prints_its_notes(setup, echoed):
    import dataclasses

    policy = LoadedPolicy("fake", model="M", tokenizer=_tokenizer(setup.model_path), peft_config=None, trainer_base=object,
                          grpo_overrides={"seed": 99, "bf16": False}, notes=["activations: kept (no recomputation) (because)"])
    s = dataclasses.replace(setup, backend=FakeBackend(policy))
    info = run_phases.record(s, run_phases.data(s), run_phases.rewards(s), _prepared(s), dry_run=False)
    grpo_kwargs = {"seed": 3}
    assert run_phases.load(s, grpo_kwargs, info) is policy
    assert grpo_kwargs == {"seed": 3, "bf16": False}
    assert info.data["status"] == "running" and info.data["grpo_config"] == grpo_kwargs
    assert echoed[-1] == "activations: kept (no recomputation) (because)"


def _prepared(s):
    engine = run_phases.rewards(s)
    prepared = run_phases.preflight(s, run_phases.data(s), engine)
    engine.close()
    return prepared


def test_evaluate_before_and_warm_up_do_nothing_unless_asked(setup):
    import dataclasses

    policy = LoadedPolicy("fake", model="M", tokenizer=None, peft_config="LORA", trainer_base=object)
    info = run_phases.RunInfo(setup.out_dir)
    assert run_phases.evaluate_before(setup, run_phases.data(setup), policy, info) is None  # eval_limit 0
    assert run_phases.warm_up(setup, policy, _prepared(setup), info) == ("M", "LORA")
    resuming = dataclasses.replace(setup, cfg=dataclasses.replace(setup.cfg, sft_warmup_steps=3), resume=True)
    assert run_phases.warm_up(resuming, policy, _prepared(setup), info) == ("M", "LORA")  # a resumed run warmed up already
    assert "sft" not in info.data


def test_build_trainer_hands_the_trainer_its_metric_sources_through_its_constructor(setup):
    engine, data = run_phases.rewards(setup), run_phases.data(setup)
    prepared = run_phases.preflight(setup, data, engine)
    policy = setup.backend.load_policy(setup.cfg, setup.model_path)
    for k, v in policy.grpo_overrides.items():
        prepared.grpo_kwargs.setdefault(k, v)

    class Extra:
        def pop_metrics(self):
            return {"extra/metric": 1.0}

    from transformers import TrainerCallback

    marker = TrainerCallback()
    training = run_phases.build_trainer(setup, policy, policy.model, policy.peft_config, prepared, engine,
                                        extra_callbacks=[marker], metric_sources=[Extra()])
    trainer = training.trainer
    assert type(trainer).__name__ == "GrpoCoreGRPOTrainer"
    assert not [a for a in vars(trainer) if a.startswith("_grpo_core")]
    sources = trainer.metric_sources
    assert isinstance(sources[0], run_phases.EngineRewardFuncs) and sources[1] is training.clock and isinstance(sources[2], Extra)
    assert marker in trainer.callback_handler.callbacks and training.progress in trainer.callback_handler.callbacks
    logs = {"loss": 0.5}
    trainer.log(logs)
    assert logs["extra/metric"] == 1.0
    training.clock.uninstall()
    engine.close()


class FakeState:
    global_step = 3
    log_history = [{"loss": 0.1}]


class FakeTrainer:
    def __init__(self, outcome=None):
        self.outcome = outcome
        self.state = FakeState()
        self.model = "trained"
        self.saved: list[str] = []

    def train(self, resume_from_checkpoint=None):
        if self.outcome is not None:
            raise self.outcome

    def save_model(self, path):
        Path(path).mkdir(parents=True)
        self.saved.append(path)


class FakeSwitch:
    requested = False
    installed = False

    def install(self):
        self.installed = True

    def uninstall(self):
        self.installed = False


class FakeProgress:
    warnings = ["slow"]
    history: list = []
    diagnosis = Diagnosis([])


class FakeEngine:
    totals: dict = {}
    closed = False

    def close(self):
        self.closed = True

    def reported_totals(self):
        return {"judge": {"calls": 4.0}}


def _training(trainer, stop=None):
    return run_phases.Training(trainer, FakeProgress(), stop or FakeSwitch(), FakeSwitch(), max_steps=3)


@pytest.mark.parametrize(("outcome", "requested", "status"), [(None, False, "finished"), (None, True, "interrupted"), (KeyboardInterrupt(), False, "aborted")])
def test_train_ends_with_a_status_and_always_cleans_up(setup, echoed, outcome, requested, status):
    stop = FakeSwitch()
    stop.requested = requested
    training, engine = _training(FakeTrainer(outcome), stop), FakeEngine()
    assert run_phases.train(setup, training, engine, run_phases.RunInfo(setup.out_dir)) == status
    assert engine.closed and not training.stop.installed and echoed[-1] == "training: 3 steps"


def test_a_failed_training_is_recorded_and_raised(setup):
    training, engine, info = _training(FakeTrainer(RuntimeError("boom"))), FakeEngine(), run_phases.RunInfo(setup.out_dir)
    with pytest.raises(RuntimeError, match="boom"):
        run_phases.train(setup, training, engine, info)
    assert info.data["status"] == "failed" and info.data["global_step"] == 3 and engine.closed
    assert info.data["error"] == "RuntimeError: boom"  # what stopped it, in run.json


def test_save_evaluate_after_and_report(setup, capsys):
    trainer = FakeTrainer()
    tok = _tokenizer(setup.model_path)
    policy = LoadedPolicy("fake", model="M", tokenizer=tok, peft_config=None, trainer_base=object)
    training, info = _training(trainer), run_phases.RunInfo(setup.out_dir)
    prepared = run_phases.Prepared(setup.cfg, None, {}, run_phases.PreflightReport(warnings=["short data"]))
    adapter_dir = run_phases.save(setup, training, policy, prepared, FakeEngine(), info, "interrupted", started=0.0)
    assert trainer.saved == [str(adapter_dir)] and (adapter_dir / "tokenizer.json").is_file() and (adapter_dir / "README.md").is_file()
    assert json.loads((setup.out_dir / "log_history.json").read_text()) == [{"loss": 0.1}]
    assert info.data["status"] == "interrupted" and info.data["warnings"] == ["short data", "slow"]
    assert info.data["reward_metrics"] == {"judge": {"calls": 4.0}}  # what the rewards reported about themselves

    class Plan:
        ran: list = []

        def run(self, stage, model, tokenizer):
            self.ran.append((stage, model))

        def summary(self):
            return {"after": "ok"}

    plan = Plan()
    run_phases.evaluate_after(plan, training, policy, info, "interrupted")
    assert plan.ran == [] and "evaluation" not in info.data  # only a finished run is evaluated
    run_phases.evaluate_after(plan, training, policy, info, "finished")
    assert plan.ran == [("after", "trained")] and info.data["evaluation"] == {"after": "ok"}

    run_phases.report(setup, info, training, None, "aborted", started=0.0)
    assert (setup.out_dir / "report.md").is_file() and "total_seconds" in info.data
    assert "aborted; the adapter so far was saved" in capsys.readouterr().err
