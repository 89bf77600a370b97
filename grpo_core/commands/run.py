"""``grpo-core run``: validate the reward selection, then train."""

from __future__ import annotations

import click

from ..cli import cli


@cli.command()
@click.option("--plugins", "plugins_", help="Rewards to combine, NAME[:WEIGHT],... e.g. xml:0.5,correctness:2.")
@click.option("--dry-run", is_flag=True, help="Validate and run the pre-flight checks, then stop.")
def run(plugins_, dry_run):
    """Train a model with GRPO on the chosen rewards."""
    from ..selection import parse_selection, resolve

    chosen = resolve(parse_selection(plugins_ or ""))
    for spec, weight in chosen:
        click.echo(f"reward {spec.name} (weight {weight:g}) from {spec.provenance.describe()}")
