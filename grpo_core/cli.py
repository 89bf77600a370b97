"""The ``grpo-core`` command line.

Sub-commands live in their own modules and are attached here; plugins add
more through the ``register_commands`` hook. Listing commands import nothing
heavy (no torch, transformers or trl).
"""

from __future__ import annotations

import json
import sys

import click

from . import __version__
from .errors import GrpoCoreError


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


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, "") or "")) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r.get(c, "") or "").ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines)


def _print_collisions(reg) -> None:
    for name, quals in reg.collisions().items():
        click.echo(f"warning: {reg.kind} {name!r} is registered by several plugins ({', '.join(quals)}); use the qualified name.", err=True)


@cli.command()
@click.option("--all", "include_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--hook", help="Only plugins that implement this hook.")
def plugins(include_all, hook):
    """List installed plugins as JSON: distribution, version, hooks, registrations."""
    from .plugins import plugin_summaries, registries

    items = plugin_summaries(include_builtins=include_all)
    if hook:
        items = [p for p in items if hook in p["hooks"]]
    regs = registries()
    out = items
    problems = {k: v for k, v in regs.errors.items()}
    collisions = {**regs.rewards.collisions(), **regs.verifiers.collisions(), **regs.datasets.collisions()}
    if problems or collisions:
        out = {"plugins": items, "errors": problems, "collisions": collisions}
    click.echo(json.dumps(out, indent=2))


def _listing(kind: str, as_json: bool) -> None:
    from .plugins import registries

    reg = getattr(registries(), kind)
    rows = []
    for item in reg:
        s = item.summary()
        s["source"] = f"{s['distribution'] or s['plugin']} {s['version'] or ''}".strip()
        s["name"] = s["name"] if s["name"] in reg.names() else s["qualified_name"]
        rows.append(s)
    _print_collisions(reg)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ["name", "source", "description"]
    if kind == "rewards":
        cols = ["name", "default_weight", "source", "description"]
    if kind == "datasets":
        cols = ["name", "verifier", "source", "description"]
    click.echo(_table(rows, cols) if rows else f"(no {kind} registered)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rewards(as_json):
    """List reward functions: name, default weight, source plugin, description."""
    _listing("rewards", as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def verifiers(as_json):
    """List answer verifiers: name, source plugin, description."""
    _listing("verifiers", as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json):
    """List dataset adapters: name, verifier, source plugin, description."""
    _listing("datasets", as_json)


_core_commands: dict[str, click.Command] = {}


def _attach_commands() -> None:
    """Attach the core's sub-commands, then each plugin's (``register_commands``).

    A plugin may add commands but never replace one of the core's: that is
    reported and undone. A plugin whose hook raises is reported and skipped.
    """
    from . import commands  # noqa: F401  (registers run, score, eval, ...)
    from .plugins import load_plugins, pm

    if not _core_commands:
        _core_commands.update(cli.commands)
    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            impl.function(**{a: cli for a in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
            click.echo(f"grpo-core: warning: plugin {plugin!r} failed in register_commands: {type(exc).__name__}: {exc}", err=True)
        for name, cmd in _core_commands.items():
            if cli.commands.get(name) is not cmd:
                cli.commands[name] = cmd
                click.echo(
                    f"grpo-core: warning: plugin {plugin!r} tried to replace the core command {name!r}; "
                    "it was kept. Give the plugin's command another name.",
                    err=True,
                )


def main(argv: list[str] | None = None) -> int:
    _attach_commands()
    try:
        cli.main(args=argv, prog_name="grpo-core", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
