"""`cutover report inventory`: what exists, where it goes, how long moving it takes."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cutover.commands.common import console, workspace_of
from cutover.errors import ConfigInvalid, UsageError
from cutover.inventory import store
from cutover.inventory.collect import inventory_config
from cutover.inventory.report import render, render_csv, render_csv_lines
from cutover.state import State

app = typer.Typer(no_args_is_help=True, help="Reports for administrators.")


FORMATS = ("md", "csv", "json", "html")


@app.callback()
def reports() -> None:
    """Reports for administrators."""


def _throughput(workspace, given: float | None) -> float | None:
    if given is not None:
        return given
    value = inventory_config(workspace).get("throughput_mb_per_s")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigInvalid("cutover.yaml: inventory.throughput_mb_per_s must be a number "
                            f"(MB/s), not {value!r}") from None


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
    meta = write_inventory_report(workspace_of(ctx), fmt, output, snapshot, throughput)
    if output is not None:
        console.print(f"wrote {output} ({fmt}, snapshot {meta['id']})")


def write_inventory_report(workspace, fmt: str, output: Path | None,
                           snapshot: str | None = None, throughput: float | None = None
                           ) -> dict:
    """Render the inventory report of a snapshot (default: the latest) to `output`, or to
    standard output; returns the snapshot's metadata."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")
    state = State.open(workspace.state_path)
    meta = store.get_snapshot(state, snapshot)
    rate = _throughput(workspace, throughput)
    if output is None:
        _render(fmt, state, meta, rate, sys.stdout)
        return meta
    try:
        with output.open("w", encoding="utf-8", newline="") as out:
            _render(fmt, state, meta, rate, out)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    return meta


def _render(fmt: str, state: State, meta: dict, throughput: float | None, out) -> None:
    """CSV from the lines stored with the snapshot (else from its recipients); the other
    formats from the summary stored with it (else computed)."""
    if fmt == "csv":
        lines = store.iter_csv_lines(state, meta["id"])
        if lines is not None:
            render_csv_lines(lines, out)
        else:
            render_csv(store.iter_recipients(state, meta["id"]), out)
        return
    render(fmt, store.snapshot_summary(state, meta, throughput), None, out)

