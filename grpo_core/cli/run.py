"""``grpo-core run``: GRPO training from a preset, a YAML file and flags."""

from __future__ import annotations

import dataclasses
import sys

import click

from grpo_core.config.presets import DEFAULT_PRESET
from grpo_core.config.settings import build_config, fraction_or_auto, load_yaml
from grpo_core.errors import ConfigError
from grpo_core.plugins import load_plugin_file
from grpo_core.run_folder import check_output_dir
from grpo_core.rewards.selection import parse_selection, resolve
from grpo_core.train import run as train_run
from grpo_core.train.resume import resumed_config

#: the exit code of a run stopped by Ctrl-C or SIGTERM (after saving), as a shell's 128 + SIGINT:
#: ``grpo-core run ... && grpo-core export ...`` exports only a run that finished
EXIT_INTERRUPTED = 130


class _FractionOrAuto(click.ParamType):
    """A number or ``auto``, checked as the config checks it (one message names both forms)."""

    name = "fraction"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value != "auto":
            try:
                value = float(value)
            except ValueError:
                pass  # neither form: fraction_or_auto says what the two are
        try:
            return fraction_or_auto(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


# flag name -> config key; GRPOConfig fields go to RunConfig.grpo automatically
_FLAG_KEYS = {
    "model": "model",
    "dataset": "dataset",
    "eval_dataset": "eval_dataset",
    "plugins_": "plugins",
    "output_dir": "output_dir",
    "backend": "backend",
    "max_steps": "max_steps",
    "learning_rate": "learning_rate",
    "num_generations": "num_generations",
    "max_completion_length": "max_completion_length",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "lora_r": "lora.r",
    "load_in_4bit": "load_in_4bit",
    "fast_inference": "fast_inference",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "chat_template": "chat_template",
    "sft_warmup_steps": "sft_warmup_steps",
    "limit": "limit",
    "eval_limit": "eval_limit",
    "on_reward_error": "on_reward_error",
    "threads": "threads",
    "profile": "profile",
    "seed": "seed",
}


@click.command()
@click.option("--preset", help="Start from a preset: tiny-cpu (the default without --model), seed-qwen2.5-3b, seed-llama3.2-3b, fast-qwen2.5-3b.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of settings (grpo-core settings and any GRPOConfig field).")
@click.option("--model", help="Hub id or local folder. Default: the bundled tiny reasoner.")
@click.option("--dataset", help="Training data, NAME[:SPLIT], e.g. gsm8k:train.")
@click.option("--eval-dataset", help="Held-out data for the before/after evaluation, NAME[:SPLIT].")
@click.option("--plugins", "plugins_", help="Rewards to combine, NAME[:WEIGHT],... e.g. xml:0.5,correctness:2.")
@click.option("--output-dir", help="Where checkpoints, the adapter, run.json and the report go.")
@click.option("--backend", type=click.Choice(["auto", "unsloth", "trl"]), help="Training backend (default auto).")
@click.option("--max-steps", type=int, help="Optimizer steps.")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, help="Learning rate.")
@click.option("--num-generations", type=int, help="Completions per prompt (the group size).")
@click.option("--max-completion-length", type=int, help="Longest completion, in tokens.")
@click.option("--per-device-train-batch-size", type=int, help="Completions per device per step (a multiple of --num-generations).")
@click.option("--lora-r", type=int, help="LoRA rank.")
@click.option("--load-in-4bit/--no-load-in-4bit", default=None, help="4-bit base weights (GPU).")
@click.option("--fast-inference/--no-fast-inference", default=None, help="unsloth: vLLM generation in-process.")
@click.option("--gpu-memory-utilization", type=_FractionOrAuto(), metavar="FRACTION|auto",
              help="Fraction of GPU memory vLLM may reserve, or auto: sized by pre-flight from the model's config and the GPU.")
@click.option("--chat-template", help="chatml, llama-3.1, qwen2.5, or a .jinja file.")
@click.option("--sft-warmup-steps", type=int, help="Supervised warm-up steps on reference solutions before GRPO.")
@click.option("--limit", type=int, help="Use only the first N training rows.")
@click.option("--eval-limit", type=int, help="Problems in the before/after evaluation (0 skips it).")
@click.option("--on-reward-error", type=click.Choice(["none", "zero", "raise"]), help="What a failing reward gives a sample.")
@click.option("--threads", type=int, help="torch CPU threads.")
@click.option("--profile", is_flag=True, default=None, help="Exact per-phase step times (generate, sync, old_logps, rewards, train): the GPU is synchronised at phase edges.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--plugin-file", "plugin_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A .py file of rewards/verifiers/datasets to load without packaging it. Repeatable.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Any setting or GRPOConfig field, e.g. --set beta=0.04. Repeatable.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --output-dir from its last checkpoint, with the settings its run.json recorded "
                   "(flags given beside it must agree, except max_steps, save_steps, save_total_limit, threads, profile, trace_step).")
@click.option("--overwrite", is_flag=True, help="Start again in an --output-dir that holds a run: delete its run.json, adapter, checkpoints and report first.")
@click.option("--dry-run", is_flag=True,
              help="Run the pre-flight checks, then stop before loading the model; writes preflight.json (nothing, into a folder that holds a run).")
def run(preset, config_file, plugin_files, sets, resume, overwrite, dry_run, **flags):
    """Train a model with GRPO on the chosen rewards.

    With no --model and no --preset this runs the embedded default (tiny-cpu):
    the bundled tiny reasoner on bundled arithmetic problems, offline on CPU.

    Exit status: 0 when the run finished, 130 when Ctrl-C or SIGTERM stopped it (what it trained is
    saved), 2 for settings refused before anything loaded, 1 when it failed (run.json says why).
    """
    for path in plugin_files:
        load_plugin_file(path)
    if flags.get("plugins_") is not None:
        # a --plugins list is checked before anything else (preset, YAML, model): exit 2 at once
        resolve(parse_selection(flags["plugins_"]))
    updates = {_FLAG_KEYS[k]: v for k, v in flags.items() if v is not None}
    if resume:
        output_dir = updates.pop("output_dir", None)
        if output_dir is None:
            raise ConfigError("--resume needs --output-dir: the folder of the run to continue.")
        check_output_dir(output_dir, resume=True, overwrite=overwrite)
        cfg = resumed_config(output_dir, preset=preset, config_file=config_file, flags=updates, sets=list(sets))
    else:
        if not preset and not config_file and "model" not in updates:
            preset = DEFAULT_PRESET
        cfg = build_config(preset=preset, config_file=config_file, flags=updates, sets=list(sets))
        if _given("dataset", updates, sets, config_file) and not _given("eval_dataset", updates, sets, config_file):
            # a preset's held-out split belongs to the preset's dataset: evaluate on the chosen dataset's own
            cfg = dataclasses.replace(cfg, eval_dataset=None)
    # validate the reward selection first: exit 2 before anything heavy loads
    resolve(parse_selection(cfg.plugins))

    try:
        info = train_run(cfg, dry_run=dry_run, resume=resume, overwrite=overwrite, echo=lambda s: click.echo(s))
    except KeyboardInterrupt:
        click.echo("grpo-core: interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if info.get("status") in ("interrupted", "aborted"):
        click.echo(f"grpo-core: the run was {info['status']} at step {info.get('global_step')} (exit {EXIT_INTERRUPTED}); "
                   f"continue it with: grpo-core run --output-dir {cfg.output_dir} --resume", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _given(key: str, flags: dict, sets: tuple[str, ...], config_file: str | None) -> bool:
    """Whether the user set ``key`` (a flag, ``--set`` or the config file), rather than a preset."""
    return (key in flags or any(s.partition("=")[0].strip() == key for s in sets)
            or bool(config_file and key in load_yaml(config_file)))

