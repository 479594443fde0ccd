"""`cutover inventory ...`: collect snapshots, compare them, explain one recipient."""

from __future__ import annotations

from typing import Any

import typer

from cutover.commands.common import JSON_OPTION, console, err_console, print_json, workspace_of
from cutover.errors import NotFound
from cutover.inventory import store
from cutover.inventory.collect import collect_and_store
from cutover.inventory.report import human_size
from cutover.state import State

app = typer.Typer(no_args_is_help=True, help="Collect, compare and explain the inventory.")

WARNINGS_SHOWN = 20


def open_state(ctx: typer.Context) -> tuple[Any, State]:
    from cutover import operations

    workspace = workspace_of(ctx)
    state = operations.open_state(workspace)
    workspace.state = state  # handed to connectors that keep a table in it
    return workspace, state


@app.command()
def collect(
    ctx: typer.Context,
    source: str = typer.Option(None, "--source", "-s",
                               help="One inventory source (default: every source, merged)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Read every configured source (read-only) and store a classified snapshot.

    Example: cutover inventory collect --source exchange-csv
    """
    workspace, state = open_state(ctx)
    snapshot_id = collect_and_store(workspace, state, source)
    snapshot = store.get_snapshot(state, snapshot_id)
    classes = store.class_counts(state, snapshot_id)
    if json_output:
        print_json({**snapshot, "classes": dict(classes)})
        return
    console.print(f"snapshot {snapshot_id} from {snapshot['source']}: "
                  f"{snapshot['recipients']} recipients, {human_size(snapshot['total_bytes'])} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(classes.items()))})", markup=False)
    for warning in snapshot["warnings"][:WARNINGS_SHOWN]:
        err_console.print(f"warning: {warning}", markup=False, soft_wrap=True)
    if len(snapshot["warnings"]) > WARNINGS_SHOWN:
        err_console.print(f"warning: {len(snapshot['warnings']) - WARNINGS_SHOWN} more "
                          "(cutover inventory list --json shows all)", markup=False,
                          soft_wrap=True)


@app.command("list")
def list_snapshots(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """The stored snapshots, oldest first.

    Example: cutover inventory list
    """
    from rich.table import Table
    from rich.text import Text

    _, state = open_state(ctx)
    snapshots = store.list_snapshots(state, include_superseded=True)
    if json_output:
        print_json(snapshots)
        return
    table = Table("id", "taken at", "source", "status", "recipients", "size", "warnings")
    for s in snapshots:
        table.add_row(str(s["id"]), s["taken_at"], Text(s["source"]), s["status"],
                      str(s["recipients"]), human_size(s["total_bytes"]), str(len(s["warnings"])))
    console.print(table)


@app.command()
def diff(
    ctx: typer.Context,
    snapshot_a: str = typer.Argument(None, help="Earlier snapshot id (default: the one before B)."),
    snapshot_b: str = typer.Argument(None, help="Later snapshot id (default: the latest)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Added, removed and changed recipients, and class/destination moves, between snapshots.

    Example: cutover inventory diff          (the latest against the one before)
    """
    _, state = open_state(ctx)
    result = store.diff_snapshots(state, snapshot_a, snapshot_b)
    if json_output:
        print_json(result)
        return
    console.print(f"snapshot {result['before']} -> {result['after']}: "
                  f"{len(result['added'])} added, {len(result['removed'])} removed, "
                  f"{len(result['changed'])} changed, {len(result['moves'])} moved")
    for r in result["added"]:
        console.print(f"+ {r['address']} ({r['class']} -> {r['destination']})", markup=False,
                      soft_wrap=True)
    for r in result["removed"]:
        console.print(f"- {r['address']} (was {r['class']} -> {r['destination']})",
                      markup=False, soft_wrap=True)
    for move in result["moves"]:
        console.print(f"~ {move['address']}: {move['before']} => {move['after']} "
                      f"({move['reason']})", markup=False, soft_wrap=True)
    moved = {m["address"] for m in result["moves"]}
    for change in result["changed"]:
        if change["address"] not in moved:
            console.print(f"~ {change['address']}: {', '.join(sorted(change['fields']))}",
                          markup=False, soft_wrap=True)


@app.command()
def show(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Primary address or alias."),
    snapshot: str = typer.Option(None, "--snapshot", help="Snapshot id (default: the latest)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Everything the inventory knows about one recipient, and why it is classified so.

    Example: cutover inventory show datarequest@example.org
    """
    from rich.markup import escape

    _, state = open_state(ctx)
    recipient = store.find_recipient(state, address, snapshot)
    if recipient is None:
        raise NotFound(f"{address} is not in the inventory snapshot")
    if json_output:
        print_json(recipient)
        return
    console.print(f"[bold]{escape(recipient['address'])}[/bold] "
                  f"{escape(recipient.get('display_name') or '')}")
    console.print(f"  class {recipient.get('class')} -> destination "
                  f"{recipient.get('destination')}", markup=False)
    console.print(f"  why: {recipient.get('reason')}", markup=False, soft_wrap=True)
    skip = {"address", "display_name", "class", "destination", "reason"}
    for key in sorted(k for k in recipient if k not in skip):
        value = recipient[key]
        if value in (None, [], {}, ""):
            continue
        if key == "size_bytes":
            value = f"{value} ({human_size(value)})"
        console.print(f"  {key}: {value}", markup=False, soft_wrap=True)
