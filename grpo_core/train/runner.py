"""``grpo-core run``: the run as its phases (:mod:`grpo_core.train.run_phases` holds each one).

Every way out of a started run leaves a final status in run.json: ``finished``, ``interrupted`` (Ctrl-C or
SIGTERM: stopped after a step and saved), ``aborted`` (a second Ctrl-C: the adapter saved, no checkpoint),
or ``failed`` with the error's summary. A run killed outright cannot write one; readers see its recorded
process gone and call it ``died`` (:func:`grpo_core.run_folder.effective_status`). In a run of several
processes, one killed makes the others fail at their next collective operation: the main process
records ``failed`` with that error (which names the process that saw it), or, when it was the one
killed, readers call the run ``died``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

from grpo_core.config.settings import RunConfig
from grpo_core.errors import ConfigError
from grpo_core.run_folder import LIVE_STATUSES, check_output_dir, effective_status, failure_summary, is_main_process, last_checkpoint, read_run_json
from grpo_core.train import run_phases as phase
from grpo_core.train.processes import leave_together


def run(cfg: RunConfig, *, dry_run: bool = False, resume: bool = False, overwrite: bool = False,
        echo: Callable[[str], None] = print) -> dict:
    """Train ``cfg``'s policy with GRPO; returns run.json's contents (a dry run stops after pre-flight)."""
    started = time.monotonic()
    if not is_main_process():
        echo = _silent  # every rank runs this function; one of them talks
    if is_main_process():  # the other ranks would find the folder rank 0 has begun to write
        check_output_dir(cfg.output_dir, resume=resume, overwrite=overwrite, dry_run=dry_run)
    if resume:
        say_what_is_resumed(cfg.output_dir, echo)
    setup = phase.set_up(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")), resume=resume, echo=echo)
    engine = phase.rewards(setup)
    data = phase.data(setup)
    prepared = phase.preflight(setup, data, engine)
    setup = dataclasses.replace(setup, cfg=prepared.cfg)  # with what pre-flight settled (an "auto" vLLM fraction)
    info = phase.record(setup, data, engine, prepared, dry_run=dry_run)
    if dry_run:
        echo(f"dry run: pre-flight passed; wrote {info.path}" if info.enabled else
             f"dry run: pre-flight passed; {setup.out_dir} holds a run, so nothing was written")
        return info.data

    try:
        policy = phase.load(setup, prepared.grpo_kwargs, info)
        evals = phase.evaluate_before(setup, data, policy, info)
        model, peft_config = phase.warm_up(setup, policy, prepared, info, evals)
        phase.probe(setup, model, policy, prepared, engine, info)
        training = phase.build_trainer(setup, policy, model, peft_config, prepared, engine)
        status = phase.train(setup, training, engine, info)
        phase.save(setup, training, policy, prepared, engine, info, status, started)
        phase.evaluate_after(evals, training, policy, info, status)
        phase.report(setup, info, training, evals, status, started)
        if setup.world_size > 1:
            leave_together()
    except KeyboardInterrupt:
        if info.data.get("status") in ("loading", "running"):
            info.update(status="interrupted", total_seconds=round(time.monotonic() - started, 1))
        raise
    except BaseException as exc:
        if info.data.get("status") not in ("loading", "running"):
            raise  # a phase that stops the run on purpose (the rollout probe) has written its own status
        info.update(status="failed", error=failure_summary(exc), total_seconds=round(time.monotonic() - started, 1))
        raise
    return info.data


def say_what_is_resumed(output_dir: str, echo: Callable[[str], None]) -> None:
    """Before anything loads: the run's recorded state (``died`` when its process is gone) and its checkpoint."""
    checkpoint = last_checkpoint(output_dir)
    if checkpoint is None:
        raise ConfigError(f"--resume: no complete checkpoint in {output_dir!r}, so there is nothing to resume; "
                          "start again with --overwrite (or raise how often it saves: --set save_steps=N).")
    run = read_run_json(output_dir)
    status = effective_status(run)
    # the main process asks; the others would find the run it has begun to record (its own pid, alive)
    if status in LIVE_STATUSES and run.get("pid") != os.getpid() and is_main_process():
        raise ConfigError(f"--resume: the run in {output_dir!r} is still {status} (process {run.get('pid')} on {run.get('host')}); "
                          "stop it first (Ctrl-C saves a checkpoint), then resume.")
    echo(f"resume: the run in {output_dir} is {status or 'unrecorded'} at step {run.get('global_step', '?')}; "
         f"continuing from {checkpoint}")


def _silent(_line: str) -> None:
    pass
