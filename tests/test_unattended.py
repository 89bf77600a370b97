"""Unattended runs: nothing already written is lost, every exit leaves a status, a resumed run is the run.

Fast: the bundled tiny reasoner and the built-in arithmetic task; fakes stand in for the phases that load
or train (the runner's own exit paths are what is tested). A killed and resumed real run is in
test_kill_resume.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grpo_core.cli import run as run_command
from grpo_core.cli.main import cli
from grpo_core.config.settings import build_config
from grpo_core.errors import ConfigError
from grpo_core.run_folder import (
    RunInfo,
    check_output_dir,
    effective_status,
    last_checkpoint,
    list_runs,
    resolve_trained,
)
from grpo_core.train import run_phases, runner
from grpo_core.train.resume import MAY_CHANGE_ON_RESUME, resumed_config

FLAGS = {"dataset": "arithmetic:train", "limit": 16, "plugins": "xml,soft_format", "num_generations": 4,
         "per_device_train_batch_size": 8, "max_completion_length": 12, "eval_limit": 0, "threads": 1}


def _cfg(out: Path, **flags):
    return build_config(flags={**FLAGS, "output_dir": str(out), **flags})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # reaped: no process has this id now (ids are not reused this fast)


def _finished_run(folder: Path, **fields) -> dict:
    """A run folder as a finished run leaves it (run.json with an evaluation, an adapter, a checkpoint)."""
    run = {"status": "finished", "global_step": 10, "started": "2026-11-28T22:00:00+0000",
           "evaluation": {"dataset": "arithmetic:test", "before": {"accuracy": 0.1}, "after": {"accuracy": 0.4}},
           "config": _cfg(folder).to_dict(), "warnings": ["an old warning"], "pid": _dead_pid(), "host": socket.gethostname(),
           **fields}
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "base", "r": 4}))
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (folder / "run.json").write_text(json.dumps(run))
    return run


# -- 1. a dry run writes nothing into an existing run ------------------------------------------------------


def test_dry_run_into_a_finished_run_leaves_its_run_json_alone(grpo_register, tmp_path):
    before = _finished_run(tmp_path)
    lines: list[str] = []
    info = runner.run(_cfg(tmp_path), dry_run=True, echo=lines.append)
    assert info["status"] == "dry-run"
    assert json.loads((tmp_path / "run.json").read_text()) == before
    assert not (tmp_path / "preflight.json").exists()
    assert "holds a run, so nothing was written" in lines[-1]


def test_dry_run_into_a_new_folder_writes_preflight_json_and_a_run_may_follow(grpo_register, tmp_path):
    info = runner.run(_cfg(tmp_path / "new"), dry_run=True, echo=lambda _: None)
    assert json.loads((tmp_path / "new" / "preflight.json").read_text())["status"] == info["status"] == "dry-run"
    assert not (tmp_path / "new" / "run.json").exists()
    check_output_dir(tmp_path / "new")  # a dry run's record does not make the folder a run


# -- 2. a run into a folder holding a run, or other files, is refused --------------------------------------


def test_run_into_a_run_folder_refuses_naming_resume_and_overwrite(grpo_register, tmp_path):
    _finished_run(tmp_path)
    with pytest.raises(ConfigError, match="--resume.*--overwrite"):
        runner.run(_cfg(tmp_path), echo=lambda _: None)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "finished"


def test_run_refuses_a_non_empty_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and is not a run folder"):
        check_output_dir(tmp_path)
    with pytest.raises(ConfigError, match="not empty and is not a run folder"):
        check_output_dir(tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_clears_the_run_files_and_keeps_the_rest(tmp_path):
    _finished_run(tmp_path)
    (tmp_path / "report.md").write_text("old report")
    (tmp_path / "notes.txt").write_text("mine")
    check_output_dir(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_run_names_the_two_ways_on(tmp_path):
    _finished_run(tmp_path)
    res = CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "--resume" in res.output and "--overwrite" in res.output


# -- 3. --resume takes the run's own settings -------------------------------------------------------------


def test_resume_reads_the_recorded_settings(tmp_path):
    _finished_run(tmp_path, config=_cfg(tmp_path, dataset="arithmetic:train", limit=7, max_steps=10).to_dict())
    cfg = resumed_config(tmp_path)
    assert cfg.limit == 7 and cfg.grpo["max_steps"] == 10 and cfg.output_dir == str(tmp_path)
    # repeating a recorded setting is fine; one that may change on resume changes
    assert resumed_config(tmp_path, flags={"limit": 7, "max_steps": 20}).grpo["max_steps"] == 20
    assert "max_steps" in MAY_CHANGE_ON_RESUME


@pytest.mark.parametrize("flags, sets, named", [({"limit": 8}, [], "limit"), ({}, ["beta=0.5"], "beta"),
                                                ({"lora.r": 99}, [], "lora.r")])
def test_resume_refuses_a_differing_setting_by_name(tmp_path, flags, sets, named):
    _finished_run(tmp_path, config=_cfg(tmp_path, limit=7).to_dict())
    with pytest.raises(ConfigError, match=rf"these differ: {named}:"):
        resumed_config(tmp_path, flags=flags, sets=sets)


def test_cli_resume_refuses_a_differing_flag_before_anything_loads(tmp_path):
    _finished_run(tmp_path, config=_cfg(tmp_path, limit=7).to_dict())
    res = CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path), "--resume", "--limit", "9"])
    assert res.exit_code == 2 and "limit: 7 in run.json, 9 given" in res.output


def test_resumed_run_info_keeps_the_record_and_adds_the_resume(tmp_path):
    before = _finished_run(tmp_path, status="running", global_step=3)
    info = RunInfo(tmp_path, resumed=True)
    info.update(status="loading")
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["started"] == before["started"] and data["evaluation"] == before["evaluation"]
    assert data["warnings"] == ["an old warning"]
    assert data["resumes"] == [{"at": data["resumes"][0]["at"], "from_step": 3, "previous_status": "died"}]
    assert data["pid"] == os.getpid()


# -- 4. every exit path writes a final status; a dead process reads as died ---------------------------------


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("raised, status", [(_Boom("the GPU caught fire"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_every_exit_path_writes_a_final_status(grpo_register, tmp_path, monkeypatch, raised, status):
    def load(setup, grpo_kwargs, info):
        info.update(status="running")
        raise raised

    monkeypatch.setattr(run_phases, "load", load)
    with pytest.raises(type(raised)):
        runner.run(_cfg(tmp_path), echo=lambda _: None)
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["status"] == status
    if status == "failed":
        assert data["error"] == "_Boom: the GPU caught fire"


def test_a_record_left_by_a_dead_process_reads_as_died(tmp_path):
    _finished_run(tmp_path / "a", status="running", global_step=4)
    _finished_run(tmp_path / "b")
    live = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    assert effective_status(live) == "running"
    assert effective_status({**live, "host": "another-machine"}) == "running"  # cannot tell from here
    assert resolve_trained(tmp_path / "a").status == "died"
    rows = {Path(r["path"]).name: r for r in list_runs(tmp_path)}
    assert (rows["a"]["status"], rows["a"]["steps"]) == ("died", 4)
    assert (rows["b"]["status"], rows["b"]["accuracy_after"]) == ("finished", 0.4)


def test_runs_command_lists_runs_with_status_steps_accuracy(tmp_path):
    _finished_run(tmp_path / "a", status="running", global_step=4)
    _finished_run(tmp_path / "b")
    res = CliRunner().invoke(cli, ["runs", str(tmp_path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split()[:4] == ["run", "status", "steps", "accuracy"]
    row_a = next(ln for ln in lines if ln.startswith(str(tmp_path / "a")))
    row_b = next(ln for ln in lines if ln.startswith(str(tmp_path / "b")))
    assert row_a.split()[1:3] == ["died", "4"]
    assert row_b.split()[1:4] == ["finished", "10", "10.0%->40.0%"]


def test_resume_says_the_run_died(grpo_register, tmp_path, monkeypatch):
    _finished_run(tmp_path, status="running", global_step=10)
    lines: list[str] = []
    monkeypatch.setattr(run_phases, "set_up", lambda *a, **k: (_ for _ in ()).throw(_Boom("stop here")))
    with pytest.raises(_Boom):
        runner.run(_cfg(tmp_path), resume=True, echo=lines.append)
    assert lines[0].startswith(f"resume: the run in {tmp_path} is died at step 10; continuing from")


# -- 5. Ctrl-C exits 130 after saving ------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["interrupted", "aborted", KeyboardInterrupt])
def test_a_stopped_run_exits_130(tmp_path, monkeypatch, outcome):
    def fake_run(cfg, **kwargs):
        if outcome is KeyboardInterrupt:
            raise KeyboardInterrupt
        return {"status": outcome, "global_step": 3}

    monkeypatch.setattr(run_command, "train_run", fake_run)
    res = CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path / "r"), "--plugins", "xml"])
    assert res.exit_code == run_command.EXIT_INTERRUPTED == 130, res.output


def test_a_finished_run_exits_0(tmp_path, monkeypatch):
    monkeypatch.setattr(run_command, "train_run", lambda cfg, **kw: {"status": "finished"})
    assert CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path / "r"), "--plugins", "xml"]).exit_code == 0


# -- 6. an impossible --output-dir, or --resume with nothing to resume, is refused at once --------------------


def test_output_dir_that_is_a_file_or_under_one_is_refused_before_preflight(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("")
    monkeypatch.setattr(run_phases, "set_up", lambda *a, **k: pytest.fail("pre-flight started"))
    for out, says in ((tmp_path / "f", "is a file"), (tmp_path / "f" / "run", "lies under")):
        res = CliRunner().invoke(cli, ["run", "--output-dir", str(out), "--plugins", "xml"])
        assert res.exit_code == 2 and says in res.output, res.output


def test_resume_with_no_checkpoint_is_refused_before_preflight(tmp_path, monkeypatch):
    monkeypatch.setattr(run_phases, "set_up", lambda *a, **k: pytest.fail("pre-flight started"))
    res = CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path / "none"), "--resume"])
    assert res.exit_code == 2 and "holds no run" in res.output
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"status": "failed", "config": _cfg(tmp_path / "r").to_dict()}))
    res = CliRunner().invoke(cli, ["run", "--output-dir", str(tmp_path / "r"), "--resume"])
    assert res.exit_code == 2 and "no complete checkpoint" in res.output, res.output


def test_a_partly_written_checkpoint_is_not_resumed(tmp_path):
    for step, state in ((2, "{}"), (3, '{"glob')):  # the process died while writing checkpoint-3
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-4").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")


def test_a_resumed_failed_run_moves_the_old_error_into_its_resume_record(tmp_path):
    _finished_run(tmp_path, status="failed", error="RuntimeError: out of memory", global_step=6)
    info = RunInfo(tmp_path, resumed=True)
    assert "error" not in info.data
    assert info.data["resumes"][-1]["previous_status"] == "failed"
    assert info.data["resumes"][-1]["previous_error"] == "RuntimeError: out of memory"
