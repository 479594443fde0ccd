"""Top-level commands: init, demo, run, resume, status, log, rollback, unlock, runbook."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cutover import operations
from cutover.commands.common import (
    JSON_OPTION,
    YES_OPTION,
    console,
    escape,
    print_json,
    workspace_of,
)
from cutover.errors import UsageError

# rich's tables, the plan loader and the runner are imported by the commands that use them:
# `cutover status --json` of a 10,000-item batch starts without any of them.
if TYPE_CHECKING:
    from rich.table import Table

    from cutover.plan import PlannedStep
    from cutover.runner import RunResult
    from cutover.steps.base import Change, Finding


class ConsoleOutput:
    """The runner's voice on a terminal."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def step_header(self, step: PlannedStep, note: str) -> None:
        if not self.quiet:
            console.print(f"[bold]{escape(step.id)}[/bold] ({step.spec.kind}): {escape(note)}")

    def preview(self, step: PlannedStep, changes: list[Change]) -> None:
        if self.quiet:
            return
        if not changes:
            console.print("  nothing to change: already applied")
        else:
            from cutover.render import changes_table

            console.print(changes_table(f"  {len(changes)} change(s)", changes))

    def progress(self, step: PlannedStep, done: int, total: int) -> None:
        if not self.quiet and (done == total or done % max(1, total // 10) == 0):
            console.print(f"  applied {done}/{total}")

    def findings(self, step: PlannedStep, findings: list[Finding]) -> None:
        if findings:
            from cutover.render import findings_table

            console.print(findings_table(f"  verification of {step.id}", findings))
        elif not self.quiet:
            console.print("  verified")

    def note(self, message: str) -> None:
        if not self.quiet:
            console.print(f"  {escape(message)}")


def terminal_confirm(step: PlannedStep, changes: list[Change]) -> bool:
    what = f"Apply {len(changes)} change(s) of step {step.id}?" if changes else \
        f"Roll back step {step.id}?"
    try:
        return typer.confirm(what, default=False)
    except (typer.Abort, EOFError, KeyboardInterrupt):  # Ctrl-C / Ctrl-D: a "no"
        return False


def _confirm_or_none():
    return terminal_confirm if sys.stdin is not None and sys.stdin.isatty() else None


def _report_run(result: RunResult) -> None:
    if result.waiting:
        step_id, until, reason = result.waiting
        console.print(f"[yellow]waiting[/yellow]: step {escape(step_id)} may not run before "
                      f"{until.isoformat(timespec='seconds')} ({escape(reason)}); run "
                      "`cutover resume` then")
    else:
        console.print(f"plan {escape(result.plan)}: {len(result.done)} step(s) applied, "
                      f"{len(result.skipped)} already done")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(ctx: typer.Context,
            plan: str = typer.Argument(..., help="Plan file (path, or relative to the workspace)."),
            step: str = typer.Option(None, "--step", help="Run only this step."),
            until: str = typer.Option(None, "--until", help="Run up to and including this step."),
            yes: bool = YES_OPTION,
            dry_run: bool = typer.Option(False, "--dry-run", help="Preview only; change nothing."),
            force: bool = typer.Option(False, "--force", help="Pass safety thresholds."),
            expect_hash: str = typer.Option(
                None, "--expect-hash", help="With --step: apply only if the preview still has "
                "this hash (as `plan show` printed it), i.e. exactly what was reviewed."),
            ) -> None:
        """Run a plan step by step: preview, confirm, checkpoint, apply, verify.

        Example: cutover run plans/phase1-segregate.yaml --until move-mail
        """
        from cutover.runner import RunOptions

        if step and until:
            raise UsageError("--step and --until exclude each other")
        options = RunOptions(step, until, yes, dry_run, force, expect_hash)
        result = operations.run(workspace_of(ctx), plan, options, ConsoleOutput(),
                                _confirm_or_none())
        if not dry_run:
            _report_run(result)

    @app.command()
    def resume(ctx: typer.Context, yes: bool = YES_OPTION) -> None:
        """Pick up the interrupted run exactly where it stopped (finishing a step that was
        mid-apply from its checkpoint).

        Example: cutover resume --yes
        """
        result = operations.resume(workspace_of(ctx), yes, ConsoleOutput(), _confirm_or_none())
        if result is None:
            console.print("nothing to resume: every run finished")
        else:
            _report_run(result)

    @app.command()
    def status(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
        """Per-step and per-item state of every plan that has run in the workspace.

        Example: cutover status --json
        """
        report = operations.status(workspace_of(ctx))
        if json_output:
            print_json(report, compact=True)
            return
        from rich.table import Table

        if not report["plans"]:
            console.print("no plan has run in this workspace yet")
        for plan in report["plans"]:
            table = Table(title=f"{plan['name']}  ({plan['path']})", title_justify="left")
            for column in ("step", "kind", "status", "items", "note"):
                table.add_column(column, overflow="fold")
            for step in plan["steps"]:
                items = step["items"]
                count = f"{items['done']}/{items['total']}" if items["total"] else ""
                note = step.get("message") or ""
                if step["status"] == "waiting" and step.get("wait_until"):
                    left = step["wait_remaining_s"]
                    note = f"until {step['wait_until']} ({left:.0f}s left) {note}"
                table.add_row(step["id"], step["kind"], step["status"], count, note)
            console.print(table)
            for step in plan["steps"]:
                if step.get("batch"):
                    console.print(_batch_table(step["id"], step["batch"]))
        lock = report.get("lock")
        if lock:
            stale = " (stale: its process is gone)" if lock["stale"] else ""
            console.print(f"locked by `{escape(lock['command'])}`: pid {lock['pid']} on "
                          f"{escape(lock['host'])} since {lock['acquired']}{stale}; "
                          "`cutover unlock --force` clears a lock whose holder is gone")

    @app.command()
    def log(ctx: typer.Context, json_output: bool = JSON_OPTION,
            plan: str = typer.Option(None, "--plan", help="Only events of this plan (name)."),
            ) -> None:
        """The append-only audit log: who, when, what, before and after.

        Example: cutover log --json
        """
        events = operations.events(workspace_of(ctx), plan)
        if json_output:
            print_json(events)
            return
        from rich.table import Table

        table = Table(title="audit log", title_justify="left")
        for column in ("at", "who", "plan", "step", "event", "item", "message"):
            table.add_column(column, overflow="fold")
        for event in events:
            table.add_row(event["at"], f"{event['user']}@{event['host']}", event["plan"] or "",
                          event["step_id"] or "", event["event"], event["item"] or "",
                          event["message"] or "")
        console.print(table)

    @app.command()
    def rollback(ctx: typer.Context,
                 step: str = typer.Argument(..., help="The step to roll back."),
                 cascade: bool = typer.Option(False, "--cascade",
                                              help="Roll back applied dependents first."),
                 plan: str = typer.Option(None, "--plan",
                                          help="The plan, when several have this step id."),
                 force: bool = typer.Option(False, "--force", help="Roll back even what was "
                                            "changed by someone else since the apply."),
                 yes: bool = YES_OPTION) -> None:
        """Restore what a step changed, from its checkpoint, then verify the restore.

        Example: cutover rollback switch-mx --yes
        """
        order = operations.rollback(workspace_of(ctx), step, cascade=cascade, plan_name=plan,
                                    yes=yes, force=force, output=ConsoleOutput(),
                                    confirm=_confirm_or_none())
        console.print(f"rolled back: {', '.join(order)}")

    @app.command()
    def runbook(ctx: typer.Context, plan: str = typer.Argument(..., help="Plan file."),
                output: Path = typer.Option(None, "-o", "--output", help="Write to FILE.")
                ) -> None:
        """Render an operator runbook (Markdown) from a plan; standard output without -o.

        Example: cutover runbook plans/phase2-cloud.yaml -o runbooks/phase2-cloud.md
        """
        text = operations.runbook(workspace_of(ctx), plan)
        if output is None:
            sys.stdout.write(text)
            return
        try:
            output.write_text(text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        console.print(f"wrote {output}")

    @app.command()
    def init(ctx: typer.Context,
             directory: Path = typer.Argument(None, help="Workspace to create (default: the "
                                                         "--workspace)."),
             sample: bool = typer.Option(False, "--sample",
                                         help="Fill it with the sample organisation."),
             ) -> None:
        """Create a workspace; with --sample, a sample organisation on file-backed twins.

        Example: cutover init --sample /tmp/agency
        """
        from cutover.sample import write_sample, write_skeleton

        target = directory or workspace_of(ctx).root
        (write_sample if sample else write_skeleton)(target)
        console.print(f"workspace ready: {target}")

    @app.command()
    def demo(directory: Path = typer.Argument(None, help="Where to build the demo workspace "
                                                         "(default: a new temporary directory)."),
             ) -> None:
        """Build the sample organisation and run both phases to completion, then summarise.

        Example: cutover demo /tmp/agency-demo
        """
        import tempfile

        target = directory or Path(tempfile.mkdtemp(prefix="cutover-demo-"))
        console.print(f"demo workspace: {target}")
        summary = operations.demo(target, ConsoleOutput(quiet=True))
        _print_demo_summary(summary)

    @app.command()
    def unlock(ctx: typer.Context,
               force: bool = typer.Option(False, "--force", help="Clear the lock even when its "
                                          "holder cannot be proven gone (another host, a "
                                          "reused pid)."),
               ) -> None:
        """Clear the workspace lock of a run that can no longer release it (audited).

        Without --force only a stale lock (its process dead on this host) is cleared.

        Example: cutover unlock --force
        """
        cleared = operations.unlock(workspace_of(ctx), force=force)
        if cleared is None:
            console.print("the workspace is not locked")
        else:
            console.print(f"cleared the lock of `{escape(cleared['command'])}` (pid "
                          f"{cleared['pid']} on {escape(cleared['host'])})")


def _batch_table(step_id: str, batch: dict[str, Any]) -> Table:
    """Per mailbox of a migration batch: status, progress, skipped items and ETA."""
    from rich.table import Table

    counts = ", ".join(f"{n} {status}" for status, n in sorted(batch["counts"].items()))
    eta = f"; done by {batch['eta']}" if batch.get("eta") else ""
    table = Table(title=f"  {step_id}: batch {batch['batch']} ({counts}{eta})",
                  title_justify="left")
    for column in ("mailbox", "status", "%", "items", "skipped", "eta", "error"):
        table.add_column(column, overflow="fold")
    for box in batch["mailboxes"]:
        items = f"{box['items_synced'] or 0}/{box['items_total'] or 0}"
        table.add_row(box["address"], box["status"], str(box["percent"] or 0), items,
                      str(box["items_skipped"] or 0), box["eta"] or "", box["error"] or "")
    return table


def _print_mailbox_locations(locations: list[dict[str, Any]]) -> None:
    """Per person: where the mailbox is now, and that nothing was left behind."""
    if not locations:
        return
    from rich.table import Table

    table = Table(title="Where people's mailboxes are", title_justify="left")
    for column in ("person", "mailbox", "messages moved", "left behind"):
        table.add_column(column)
    for found in locations:
        behind = "nothing" if not found["left_behind"] else (
            f"{found['left_behind']} (reported by MRS as skipped)" if not found["unexplained"]
            else f"{found['unexplained']} NOT accounted for")
        table.add_row(found["address"], found["location"],
                      f"{found['messages_cloud']}/{found['messages_onprem']}", behind)
    console.print(table)
    lost = sum(found["unexplained"] for found in locations)
    moved = sum(1 for found in locations if found["location"] == "Exchange Online")
    console.print(f"{moved} of {len(locations)} people's mailboxes are in Exchange Online; "
                  + ("nothing was left behind but what MRS reported" if not lost else
                     f"{lost} message(s) left behind without MRS reporting them"))


def _print_demo_summary(summary: dict[str, Any]) -> None:
    from rich.table import Table

    from cutover.commands.routes import before_after_table, domains_table
    from cutover.routes.domains import compute_routing
    from cutover.workspace import Workspace

    for run in summary["runs"]:
        console.print(f"plan {escape(run['plan'])}: {run['applied']} step(s) applied, "
                      f"{run['already_done']} already done")
    table = Table(title="What moved", title_justify="left")
    for column in ("class", "destination", "mailboxes"):
        table.add_column(column)
    for row in summary["moves"]:
        table.add_row(row["class"], row["destination"], str(row["mailboxes"]))
    console.print(table)
    table = Table(title="What changed", title_justify="left")
    for column in ("plan", "step", "changes applied", "status"):
        table.add_column(column)
    for row in summary["steps"]:
        table.add_row(row["plan"], row["step"], str(row["changes_applied"]), row["status"])
    console.print(table)
    _print_mailbox_locations(summary["mailboxes"])
    routing = compute_routing(Workspace(summary["workspace"]))
    console.print(domains_table(routing))
    console.print(f"{len(routing.forwards)} forwarded addresses (cutover routes lists them)")
    console.print(before_after_table(summary["routes"]["before"], summary["routes"]["after"]))
    console.print(f"\ninventory report: {summary['reports'][0]}")
    console.print(f"workspace: {summary['workspace']}\n"
                  f"next: cutover --workspace {summary['workspace']} status | log | routes")
