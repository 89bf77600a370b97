"""The ``grpo-core`` click group and its error handler (one clear line, no traceback)."""

from __future__ import annotations

import click

from grpo_core._version import __version__
from grpo_core.errors import GrpoCoreError


class GrpoCoreGroup(click.Group):
    """Prints grpo-core errors as one clear line and exits 2, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GrpoCoreError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=GrpoCoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grpo-core")
def cli():
    """GRPO training for LLM reasoners, with rewards, verifiers and datasets from plugins."""
