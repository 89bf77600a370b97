"""``--resume``: a run continues with the settings its own run.json recorded.

Settings given beside ``--resume`` (flags, ``--set``, a preset or a config file) must agree with the
recorded ones; a setting that differs is refused by name, unless it is one of :data:`MAY_CHANGE_ON_RESUME`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from grpo_core.config.settings import RunConfig, build_config
from grpo_core.errors import ConfigError
from grpo_core.run_folder import read_run_json

#: settings a resumed run may change: how long it runs, how often it saves, how it uses this machine
MAY_CHANGE_ON_RESUME = ("max_steps", "save_steps", "save_total_limit", "threads", "profile", "trace_step", "log_rollouts")


def flat_settings(cfg: RunConfig) -> dict[str, Any]:
    """Every setting by the name a user gives it: ``lora.r``, and GRPOConfig fields by their own names."""
    data = cfg.to_dict()
    grpo, lora = data.pop("grpo"), data.pop("lora")
    data.pop("output_dir")  # where the run is, not how it trains: the folder may have moved
    return {**data, **{f"lora.{k}": v for k, v in lora.items()}, **grpo}


def resumed_config(output_dir: str | Path, *, preset: str | None = None, config_file: str | None = None,
                   flags: dict[str, Any] | None = None, sets: list[str] | None = None) -> RunConfig:
    """The recorded settings of the run in ``output_dir``, with what was given checked against them."""
    out = Path(output_dir)
    recorded = read_run_json(out).get("config")
    if not recorded:
        raise ConfigError(
            f"--resume: {str(out / 'run.json')!r} records no settings (the run stopped before its pre-flight ended); "
            "start it again with --overwrite."
        )
    recorded = dict(recorded)
    recorded_preset = recorded.pop("preset", None)  # a record, not a setting to merge
    base = RunConfig().merged(recorded, f"{out / 'run.json'}")
    base.preset = recorded_preset
    given = build_config(preset=preset, config_file=config_file, flags=flags, sets=sets, base=base)
    before, after = flat_settings(base), flat_settings(given)
    differing = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k) and k not in MAY_CHANGE_ON_RESUME]
    if differing:
        shown = "; ".join(f"{k}: {before.get(k)!r} in run.json, {after.get(k)!r} given" for k in differing)
        raise ConfigError(
            f"--resume continues with the settings in run.json, and these differ: {shown}. Drop them from the command "
            f"(only {', '.join(MAY_CHANGE_ON_RESUME)} may change on resume), or start a new run in another --output-dir."
        )
    return dataclasses.replace(given, output_dir=str(out))


class ResumesOnCpuProcesses:
    """Put first in a trainer's bases: a run of several CPU processes resumes from its checkpoint.

    In a distributed run transformers loads the optimizer's state onto ``args.device``, which on CPU is
    ``cpu:RANK``, a location ``torch.load`` cannot restore ("don't know how to restore data location ...
    (tagged with cpu:0)"; transformers 5.17, torch 2.13). The state is loaded onto the CPU instead."""

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is None or self.args.world_size == 1 or self.args.device.type != "cpu":
            return super()._load_optimizer_and_scheduler(checkpoint)
        import torch  # deferred: heavy (torch); the CLI imports this module before anything loads

        original = torch.load

        def load(*args, map_location=None, **kwargs):
            if isinstance(map_location, torch.device) and map_location.type == "cpu":
                map_location = "cpu"
            return original(*args, map_location=map_location, **kwargs)

        torch.load = load
        try:
            return super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            torch.load = original
