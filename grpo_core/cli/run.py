"""``grpo-core run``: GRPO training from a preset, a YAML file and flags."""

from __future__ import annotations

import sys

import click

from grpo_core.cli.options import flag_updates, setting_options
from grpo_core.config.presets import DEFAULT_PRESET
from grpo_core.config.settings import RunConfig, build_config
from grpo_core.config.trl_fields import grpo_defaults
from grpo_core.errors import ConfigError
from grpo_core.plugins import load_plugin_file
from grpo_core.rewards.selection import resolve
from grpo_core.run_folder import check_output_dir, is_main_process
from grpo_core.train import run as train_run
from grpo_core.train.resume import resumed_config

#: the exit code of a run stopped by Ctrl-C or SIGTERM (after saving), as a shell's 128 + SIGINT:
#: ``grpo-core run ... && grpo-core export ...`` exports only a run that finished
EXIT_INTERRUPTED = 130


@click.command()
@click.option("--preset", help="Start from a preset: tiny-cpu (the default without --model), seed-qwen2.5-3b, seed-llama3.2-3b, fast-qwen2.5-3b.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML file of settings (grpo-core settings and any GRPOConfig field), layered on the same base as flags.")
@setting_options
@click.option("--plugin-file", "plugin_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A .py file of rewards/verifiers/datasets to load without packaging it. Repeatable.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Any setting or GRPOConfig field, e.g. --set beta=0.04. Repeatable.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --output-dir from its last checkpoint, with the settings its run.json recorded "
                   "(flags given beside it must agree, except max_steps, save_steps, save_total_limit, threads, profile, trace_step, log_rollouts).")
@click.option("--overwrite", is_flag=True, help="Start again in an --output-dir that holds a run: delete its run.json, adapter, checkpoints and report first.")
@click.option("--dry-run", is_flag=True,
              help="Run the pre-flight checks, then stop before loading the model; writes preflight.json (nothing, into a folder that holds a run).")
def run(preset, config_file, plugin_files, sets, resume, overwrite, dry_run, **flags):
    """Train a model with GRPO on the chosen rewards.

    With no --model and no --preset this runs the embedded default (tiny-cpu):
    the bundled tiny reasoner on bundled arithmetic problems, offline on CPU.
    A --config file is layered on the same base. Every setting is checked
    (type and range) before anything loads; docs/config.md lists them.

    Exit status: 0 when the run finished, 130 when Ctrl-C or SIGTERM stopped it (what it trained is
    saved), 2 for settings refused before anything loaded, 1 when it failed (run.json says why).
    """
    cfg = run_settings(preset, config_file, plugin_files, sets, resume, overwrite, flags)
    if is_main_process():  # every process of a multi-process run runs this command; one talks
        click.echo(settings_line(cfg))
    try:
        info = train_run(cfg, dry_run=dry_run, resume=resume, overwrite=overwrite, echo=lambda s: click.echo(s))
    except KeyboardInterrupt:
        click.echo("grpo-core: interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if info.get("status") in ("interrupted", "aborted"):
        if is_main_process():
            click.echo(f"grpo-core: the run was {info['status']} at step {info.get('global_step')} (exit {EXIT_INTERRUPTED}); "
                       f"continue it with: grpo-core run --output-dir {cfg.output_dir} --resume", err=True)
        sys.exit(EXIT_INTERRUPTED)


def run_settings(preset, config_file, plugin_files, sets, resume, overwrite, flags) -> RunConfig:
    """The run's settings from ``run``'s parsed arguments, checked (``grpo-core launch`` reads its run arguments here too)."""
    for path in plugin_files:
        load_plugin_file(path)
    updates = flag_updates(flags)
    if resume:
        output_dir = updates.pop("output_dir", None)
        if output_dir is None:
            raise ConfigError("--resume needs --output-dir: the folder of the run to continue.")
        check_output_dir(output_dir, resume=True, overwrite=overwrite)
        cfg = resumed_config(output_dir, preset=preset, config_file=config_file, flags=updates, sets=list(sets))
    else:
        cfg = build_config(preset=preset, config_file=config_file, flags=updates, sets=list(sets), default_preset=DEFAULT_PRESET)
    cfg.validate()
    resolve(cfg.reward_selection)  # names and options: exit 2 before anything heavy loads
    return cfg


def settings_from_arguments(args: list[str] | tuple[str, ...]) -> tuple[RunConfig, dict[str, bool]]:
    """The settings ``grpo-core run ARGS`` would run with (parsed by ``run``'s own options), and its
    ``resume``, ``overwrite`` and ``dry_run`` flags."""
    with run.make_context("run", list(args)) as ctx:
        params = dict(ctx.params)
    modes = {name: bool(params.pop(name)) for name in ("resume", "overwrite", "dry_run")}
    cfg = run_settings(params.pop("preset"), params.pop("config_file"), params.pop("plugin_files"), params.pop("sets"),
                       modes["resume"], modes["overwrite"], params)
    return cfg, modes


def settings_line(cfg) -> str:
    """Which preset the settings start from, and the checkpoint interval in force."""
    base = f"preset {cfg.preset}" + (" (the default without --model)" if cfg.preset == DEFAULT_PRESET else "") if cfg.preset else "no preset"
    save = {**grpo_defaults(), **cfg.grpo}
    limit = save.get("save_total_limit")
    kept = "all kept" if limit is None else f"the last {limit} kept"
    return f"settings: {base}; checkpoints every {save.get('save_steps'):g} steps, {kept} (--save-steps, --save-total-limit)"
