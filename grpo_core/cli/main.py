"""``grpo-core``: the group, the core's commands added to it, then each plugin's (``register_commands``)."""

from __future__ import annotations

import sys

import click

from grpo_core.cli import eval as eval_command, export as export_command, launch, listing, new_plugin, presets, run, runs, score
from grpo_core.cli.group import cli
from grpo_core.plugins import load_plugins
from grpo_core.plugins.manager import call_each_implementation

CORE_COMMANDS = (
    run.run,
    launch.launch,
    score.score,
    eval_command.eval_,
    export_command.export,
    new_plugin.new_plugin,
    listing.plugins,
    listing.rewards,
    listing.verifiers,
    listing.datasets,
    runs.runs,
    presets.presets,
)
for _command in CORE_COMMANDS:
    cli.add_command(_command)


def _warn(plugin: str, message: str) -> None:
    click.echo(f"grpo-core: warning: {message}", err=True)


def register_commands() -> None:
    """Attach each plugin's commands (``register_commands``).

    A plugin may add commands but never replace one of the core's: that is
    reported and undone. A plugin whose hook raises is reported and skipped.
    """
    load_plugins()

    def group_for(plugin: str) -> click.Group:
        return cli

    def check_core_commands_kept(plugin: str) -> None:
        for command in CORE_COMMANDS:
            if cli.commands.get(command.name) is not command:
                cli.commands[command.name] = command
                click.echo(
                    f"grpo-core: warning: plugin {plugin!r} tried to replace the core command {command.name!r}; "
                    "it was kept. Give the plugin's command another name.",
                    err=True,
                )

    call_each_implementation("register_commands", group_for, _warn, after_each=check_core_commands_kept)


def main(argv: list[str] | None = None) -> int:
    register_commands()
    try:
        cli.main(args=argv, prog_name="grpo-core", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
