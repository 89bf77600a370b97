"""``grpo-core runs``: the runs under a folder, with their status, steps and accuracy (nothing heavy loads)."""

from __future__ import annotations

import json

import click

from grpo_core.run_folder import list_runs


def _accuracy(run: dict) -> str:
    before, after = run.get("accuracy_before"), run.get("accuracy_after")
    if before is None and after is None:
        return "-"
    fmt = lambda v: "?" if v is None else f"{v:.1%}"  # noqa: E731
    return f"{fmt(before)}->{fmt(after)}"


@click.command()
@click.argument("folder", default="runs", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def runs(folder, as_json):
    """List the runs under FOLDER (default runs/): status, steps, accuracy before->after.

    A run whose run.json says it is running but whose process no longer exists is listed as `died`;
    continue it with `grpo-core run --output-dir RUN --resume`.
    """
    found = list_runs(folder)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo(f"no runs under {folder} (a run folder holds run.json)")
        return
    rows = [("run", "status", "steps", "accuracy", "started")]
    for r in found:
        steps = "-" if r.get("steps") is None else str(r["steps"]) + (f"/{r['max_steps']}" if r.get("max_steps") and r["max_steps"] != r["steps"] else "")
        rows.append((r["path"], str(r.get("status")), steps, _accuracy(r), str(r.get("started") or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
