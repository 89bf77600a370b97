"""``grpo-core run``: GRPO training from a preset, a YAML file and flags."""

from __future__ import annotations

import click

from grpo_core.cli.options import flag_updates, setting_options
from grpo_core.config.presets import DEFAULT_PRESET
from grpo_core.config.settings import build_config
from grpo_core.config.trl_fields import grpo_defaults
from grpo_core.plugins import load_plugin_file
from grpo_core.rewards.selection import resolve
from grpo_core.train import run as train_run


@click.command()
@click.option("--preset", help="Start from a preset: tiny-cpu (the default without --model), seed-qwen2.5-3b, seed-llama3.2-3b, fast-qwen2.5-3b.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML file of settings (grpo-core settings and any GRPOConfig field), layered on the same base as flags.")
@setting_options
@click.option("--plugin-file", "plugin_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A .py file of rewards/verifiers/datasets to load without packaging it. Repeatable.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Any setting or GRPOConfig field, e.g. --set beta=0.04. Repeatable.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --output-dir.")
@click.option("--dry-run", is_flag=True, help="Run the pre-flight checks, then stop before loading the model.")
def run(preset, config_file, plugin_files, sets, resume, dry_run, **flags):
    """Train a model with GRPO on the chosen rewards.

    With no --model and no --preset this runs the embedded default (tiny-cpu):
    the bundled tiny reasoner on bundled arithmetic problems, offline on CPU.
    A --config file is layered on the same base. Every setting is checked
    (type and range) before anything loads; docs/config.md lists them.
    """
    for path in plugin_files:
        load_plugin_file(path)
    cfg = build_config(preset=preset, config_file=config_file, flags=flag_updates(flags), sets=list(sets),
                       default_preset=DEFAULT_PRESET).validate()
    resolve(cfg.reward_selection)  # names and options: exit 2 before anything heavy loads
    click.echo(settings_line(cfg))
    train_run(cfg, dry_run=dry_run, resume=resume, echo=lambda s: click.echo(s))


def settings_line(cfg) -> str:
    """Which preset the settings start from, and the checkpoint interval in force."""
    base = f"preset {cfg.preset}" + (" (the default without --model)" if cfg.preset == DEFAULT_PRESET else "") if cfg.preset else "no preset"
    save = {**grpo_defaults(), **cfg.grpo}
    limit = save.get("save_total_limit")
    kept = "all kept" if limit is None else f"the last {limit} kept"
    return f"settings: {base}; checkpoints every {save.get('save_steps'):g} steps, {kept} (--save-steps, --save-total-limit)"
