"""`cutover demo`: the whole mission on the sample organisation, no servers needed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.table import Table

from cutover.commands.common import console
from cutover.runner import RunOptions
from cutover.sample.writer import PLAN_NAMES, write_sample
from cutover.workspace import Workspace


def run_demo(target: Path) -> None:
    from cutover.commands.run import run_plan

    write_sample(target)
    workspace = Workspace(target)
    for name in PLAN_NAMES:
        console.rule(f"[bold]{name}")
        run_plan(workspace, f"plans/{name}", RunOptions(yes=True), quiet=True)
    print_summary(workspace)


def write_reports(workspace: Workspace) -> list[Path]:
    """The inventory report as an administrator would hand it on: HTML and Markdown."""
    from cutover.commands.report import write_inventory_report

    reports = workspace.root / "reports"
    reports.mkdir(exist_ok=True)
    written = []
    for fmt, name in (("html", "inventory.html"), ("md", "inventory.md")):
        write_inventory_report(workspace, fmt, reports / name)
        written.append(reports / name)
    return written


def print_summary(workspace: Workspace) -> None:
    from cutover.inventory.store import latest_recipients
    from cutover.state import State

    state = State.open(workspace.state_path)
    recipients = latest_recipients(state)
    moves = Counter((r.get("class"), r.get("destination")) for r in recipients)
    table = Table(title="What moved", title_justify="left")
    for column in ("class", "destination", "mailboxes"):
        table.add_column(column)
    for (klass, destination), count in sorted(moves.items(), key=str):
        table.add_row(str(klass), str(destination), str(count))
    console.print(table)

    changed = Counter((e["plan"], e["step_id"]) for e in state.events()
                      if e["event"] == "applied")
    table = Table(title="What changed", title_justify="left")
    for column in ("plan", "step", "changes applied", "status"):
        table.add_column(column)
    for row in state.steps():
        table.add_row(row["plan"], row["step_id"],
                      str(changed.get((row["plan"], row["step_id"]), 0)), row["status"])
    console.print(table)
    _print_mailbox_locations(workspace, state, recipients)
    _print_routes(workspace)
    reports = write_reports(workspace)
    console.print(f"\ninventory report: {reports[0]}")
    console.print(f"workspace: {workspace.root}\n"
                  f"next: cutover --workspace {workspace.root} status | log | routes")


def _print_mailbox_locations(workspace: Workspace, state, recipients) -> None:
    """Per person: where the mailbox is now, and that nothing was left behind."""
    from cutover.steps.hybrid_report import mailbox_locations

    people = sorted(r["address"] for r in recipients if r.get("class") == "people")
    locations = mailbox_locations(workspace, state, people)
    table = Table(title="Where people's mailboxes are", title_justify="left")
    for column in ("person", "mailbox", "messages moved", "left behind"):
        table.add_column(column)
    for found in locations:
        behind = "nothing" if not found.left_behind else (
            f"{found.left_behind} (reported by MRS as skipped)" if not found.unexplained
            else f"{found.unexplained} NOT accounted for")
        table.add_row(found.address, found.location,
                      f"{found.messages_cloud}/{found.messages_onprem}", behind)
    console.print(table)
    lost = sum(found.unexplained for found in locations)
    moved = sum(1 for found in locations if found.location == "Exchange Online")
    console.print(f"{moved} of {len(locations)} people's mailboxes are in Exchange Online; "
                  + ("nothing was left behind but what MRS reported" if not lost else
                     f"{lost} message(s) left behind without MRS reporting them"))


def _print_routes(workspace: Workspace) -> None:
    """Where mail for each domain now goes, and which old addresses forward where."""
    from cutover.commands.routes import domains_table
    from cutover.routes.domains import compute_routing

    routing = compute_routing(workspace)
    console.print(domains_table(routing))
    console.print(f"{len(routing.forwards)} forwarded addresses (cutover routes lists them)")
