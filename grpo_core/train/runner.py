"""``grpo-core run``: the run as its phases (:mod:`grpo_core.train.run_phases` holds each one)."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

from grpo_core.config.settings import RunConfig
from grpo_core.run_folder import is_main_process
from grpo_core.train import run_phases as phase


def run(cfg: RunConfig, *, dry_run: bool = False, resume: bool = False, echo: Callable[[str], None] = print) -> dict:
    """Train ``cfg``'s policy with GRPO; returns run.json's contents (a dry run stops after pre-flight)."""
    started = time.monotonic()
    if not is_main_process():
        echo = _silent  # every rank runs this function; one of them talks
    setup = phase.set_up(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")), resume=resume, echo=echo)
    engine = phase.rewards(setup)
    data = phase.data(setup)
    prepared = phase.preflight(setup, data, engine)
    setup = dataclasses.replace(setup, cfg=prepared.cfg)  # with what pre-flight settled (an "auto" vLLM fraction)
    info = phase.record(setup, data, engine, prepared, dry_run=dry_run)
    if dry_run:
        echo(f"dry run: pre-flight passed; wrote {info.path}")
        return info.data

    policy = phase.load(setup, prepared.grpo_kwargs, info)
    evals = phase.evaluate_before(setup, data, policy, info)
    model, peft_config = phase.warm_up(setup, policy, prepared, info, evals)
    phase.probe(setup, model, policy, prepared, engine, info)
    training = phase.build_trainer(setup, policy, model, peft_config, prepared, engine)
    status = phase.train(setup, training, engine, info)
    phase.save(setup, training, policy, prepared, engine, info, status, started)
    phase.evaluate_after(evals, training, policy, info, status)
    phase.report(setup, info, training, evals, status, started)
    return info.data


def _silent(_line: str) -> None:
    pass
