"""``grpo-core presets``: the named run presets and what each sets (nothing heavy loads)."""

from __future__ import annotations

import json

import click

from grpo_core.config.presets import DEFAULT_PRESET, PRESETS, get_preset


@click.command()
@click.argument("name", required=False)
def presets(name):
    """List the run presets (`grpo-core run --preset NAME`), or print one preset's settings as JSON."""
    if name:
        click.echo(json.dumps(get_preset(name), indent=2, default=str))
        return
    for preset in PRESETS:
        settings = get_preset(preset)
        default = " (the default without --model)" if preset == DEFAULT_PRESET else ""
        click.echo(f"{preset}{default}: model {settings.get('model') or 'bundled:tiny-reasoner'}, dataset {settings.get('dataset')}")
