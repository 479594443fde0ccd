"""`cutover report inventory`: what exists, where it goes, how long moving it takes."""

from __future__ import annotations

from pathlib import Path

import typer

from cutover import operations
from cutover.commands.common import console, workspace_of

app = typer.Typer(no_args_is_help=True, help="Reports for administrators.")


@app.callback()
def reports() -> None:
    """Reports for administrators."""


@app.command()
def inventory(
    ctx: typer.Context,
    fmt: str = typer.Option("md", "--format", "-f", help="md, csv, json or html."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to FILE (default: stdout)."),
    snapshot: str = typer.Option(None, "--snapshot", help="Snapshot id (default: the latest)."),
    throughput: float = typer.Option(
        None, "--throughput", help="Measured MB/s (default: inventory.throughput_mb_per_s)."),
) -> None:
    """Counts and sizes per class and destination, largest mailboxes, forwarding and rules,
    unresolved accounts, and the transfer estimate per phase.

    Example: cutover report inventory --format html -o inventory.html
    """
    meta = operations.write_inventory_report(workspace_of(ctx), fmt, output, snapshot,
                                             throughput)
    if output is not None:
        console.print(f"wrote {output} ({fmt}, snapshot {meta['id']})", markup=False)
