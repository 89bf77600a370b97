"""``grpo-core new-plugin``: write a ready-to-install plugin package."""

from __future__ import annotations

import click

from grpo_core.scaffold.scaffold import scaffold


@click.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(["reward", "verifier", "dataset"]), default="reward", show_default=True,
              help="What the example plugin registers.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where to create the package folder.")
def new_plugin(name, kind, directory):
    """Create a plugin package NAME: pyproject, example module, README, tests.

    NAME is a short name such as `brevity` (giving the distribution
    grpo-rewards-brevity, module grpo_rewards_brevity and the registered name
    brevity) or a full distribution name starting with `grpo-`.

    \b
    Then:
      cd grpo-rewards-brevity
      pip install -e .
      pytest
      grpo-core rewards
    """

    result = scaffold(name, kind=kind, directory=directory)
    click.echo(f"created {result.root}")
    for path in result.files:
        click.echo(f"  {path.relative_to(result.root)}")
    click.echo(f"\nnext:\n  cd {result.root}\n  pip install -e .\n  pytest\n  grpo-core {kind}s")
