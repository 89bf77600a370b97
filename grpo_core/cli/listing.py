"""``grpo-core plugins``, ``rewards``, ``verifiers`` and ``datasets``: what the installed plugins provide.

These commands import nothing heavy (no torch, transformers or trl).
"""

from __future__ import annotations

import json

import click

from grpo_core.plugins import plugin_summaries, registries


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, "") or "")) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    for r in rows:
        lines.append("  ".join(str(r.get(c, "") or "").ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines)


def _print_collisions(reg) -> None:
    for name, quals in reg.collisions().items():
        click.echo(f"warning: {reg.kind} {name!r} is registered by several plugins ({', '.join(quals)}); use the qualified name.", err=True)


@click.command()
@click.option("--all", "include_all", is_flag=True, help="Include the built-in plugins.")
@click.option("--hook", help="Only plugins that implement this hook.")
def plugins(include_all, hook):
    """List installed plugins, and what failed or collided, as one JSON object."""
    items = plugin_summaries(include_builtins=include_all)
    if hook:
        items = [p for p in items if hook in p["hooks"]]
    regs = registries()
    collisions = {**regs.rewards.collisions(), **regs.verifiers.collisions(), **regs.datasets.collisions()}
    click.echo(json.dumps({"plugins": items, "errors": dict(regs.errors), "collisions": collisions}, indent=2))


def _listing(kind: str, as_json: bool) -> None:
    reg = getattr(registries(), kind)
    rows = []
    for item in reg:
        s = item.summary()
        s["source"] = f"{s['distribution'] or s['plugin']} {s['version'] or ''}".strip()
        s["name"] = s["name"] if s["name"] in reg.names() else s["qualified_name"]
        rows.append(s)
    table_rows = [{**s, "options": ", ".join(f"{k}={v!r}" for k, v in s.get("options", {}).items())} for s in rows]
    _print_collisions(reg)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ["name", "source", "description"]
    if kind == "rewards":
        cols = ["name", "default_weight", "options", "source", "description"]
    if kind == "datasets":
        cols = ["name", "verifier", "source", "description"]
    click.echo(_table(table_rows, cols) if rows else f"(no {kind} registered)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rewards(as_json):
    """List reward functions: name, default weight, options (with defaults), source plugin, description."""
    _listing("rewards", as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def verifiers(as_json):
    """List answer verifiers: name, source plugin, description."""
    _listing("verifiers", as_json)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json):
    """List dataset adapters: name, verifier, source plugin, description."""
    _listing("datasets", as_json)
