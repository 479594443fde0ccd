"""Top-level commands: init, demo, run, resume, status, log, rollback, runbook."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cutover.commands.common import (
    JSON_OPTION,
    YES_OPTION,
    console,
    print_json,
    workspace_of,
)
from cutover.errors import NotFound, RollbackRefused, UsageError
from cutover.plan import PlannedStep, load_plan
from cutover.render import changes_table, findings_table, runbook_markdown
from cutover.runner import Runner, RunOptions, remaining_wait
from cutover.state import State, parse_iso
from cutover.steps.base import Change, Finding
from cutover.workspace import Workspace


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
            console.print(changes_table(f"  {len(changes)} change(s)", changes))

    def progress(self, step: PlannedStep, done: int, total: int) -> None:
        if not self.quiet and (done == total or done % max(1, total // 10) == 0):
            console.print(f"  applied {done}/{total}")

    def findings(self, step: PlannedStep, findings: list[Finding]) -> None:
        if findings:
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


def open_state(workspace: Workspace, create: bool = True) -> State:
    if create:
        workspace.check_writable()
    return State.open(workspace.state_path, create=create)


class Locked:
    """Hold the workspace lock for one run/resume/rollback."""

    def __init__(self, state: State, command: str):
        self.state = state
        self.command = command

    def __enter__(self) -> State:
        self.state.acquire_lock(self.command)
        return self.state

    def __exit__(self, *exc: Any) -> None:
        self.state.release_lock()


def run_plan(workspace: Workspace, plan_argument: str, options: RunOptions,
             quiet: bool = False) -> int:
    plan = load_plan(workspace.resolve_plan(plan_argument))
    workspace.config  # noqa: B018 - validate cutover.yaml before touching state
    if options.dry_run:  # the same path as `plan show`: read-only, state included
        Runner(workspace, preview_state(workspace), plan, ConsoleOutput(quiet)).run(options)
        return 0
    state = open_state(workspace)
    with Locked(state, f"run {plan_argument}"):
        return _run_locked(workspace, state, plan, options, quiet)


def _run_locked(workspace: Workspace, state: State, plan, options: RunOptions,
                quiet: bool = False) -> int:
    runner = Runner(workspace, state, plan, ConsoleOutput(quiet), _confirm_or_none())
    result = runner.run(options)
    if result.waiting:
        step_id, until, reason = result.waiting
        console.print(f"[yellow]waiting[/yellow]: step {step_id} may not run before "
                      f"{until.isoformat(timespec='seconds')} ({reason}); run `cutover resume` "
                      "then")
    else:
        console.print(f"plan {plan.name}: {len(result.done)} step(s) applied, "
                      f"{len(result.skipped)} already done")
    return 0


def preview_state(workspace: Workspace) -> State:
    """The state a preview reads: the workspace's when it exists, else an empty one in memory
    (a preview creates nothing, and works in a read-only workspace)."""
    if workspace.state_path.exists():
        return State.open(workspace.state_path, create=False)
    return State.open(":memory:")


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
        if step and until:
            raise UsageError("--step and --until exclude each other")
        run_plan(workspace_of(ctx), plan, RunOptions(step, until, yes, dry_run, force,
                                                     expect_hash))

    @app.command()
    def resume(ctx: typer.Context, yes: bool = YES_OPTION) -> None:
        """Pick up the interrupted run exactly where it stopped (finishing a step that was
        mid-apply from its checkpoint).

        Example: cutover resume --yes
        """
        workspace = workspace_of(ctx)
        state = open_state(workspace)
        with Locked(state, "resume"):
            unfinished = state.unfinished_run()
            if unfinished is None:
                console.print("nothing to resume: every run finished")
                return
            saved = json.loads(unfinished["options"] or "{}")
            # Steps resumed from a checkpoint need no confirmation; a step previewed afresh
            # needs this command's own --yes, never the interrupted run's.
            options = RunOptions(step=saved.get("step"), until=saved.get("until"), yes=yes,
                                 force=saved.get("force", False))
            state.record_event("resume", unfinished["plan"], message=f"run {unfinished['id']}")
            _run_locked(workspace, state, load_plan(workspace.path(unfinished["plan_path"])),
                        options)

    @app.command()
    def status(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
        """Per-step and per-item state of every plan that has run in the workspace.

        Example: cutover status --json
        """
        workspace = workspace_of(ctx)
        if not workspace.state_path.exists():
            report: dict[str, Any] = {"workspace": str(workspace.root), "plans": []}
        else:
            report = status_report(workspace, open_state(workspace, create=False))
        if json_output:
            print_json(report)
            return
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

    @app.command()
    def log(ctx: typer.Context, json_output: bool = JSON_OPTION,
            plan: str = typer.Option(None, "--plan", help="Only events of this plan (name)."),
            ) -> None:
        """The append-only audit log: who, when, what, before and after.

        Example: cutover log --json
        """
        workspace = workspace_of(ctx)
        events = [] if not workspace.state_path.exists() else \
            open_state(workspace, create=False).events(plan)
        if json_output:
            print_json(events)
            return
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
                 yes: bool = YES_OPTION) -> None:
        """Restore what a step changed, from its checkpoint, then verify the restore.

        Example: cutover rollback switch-mx --yes
        """
        workspace = workspace_of(ctx)
        if not workspace.state_path.exists():
            raise RollbackRefused(f"step {step} has never run in this workspace")
        state = open_state(workspace)
        plan_path = _plan_of_step(workspace, state, step, plan)
        with Locked(state, f"rollback {step}"):
            runner = Runner(workspace, state, load_plan(plan_path), ConsoleOutput(),
                            _confirm_or_none())
            order = runner.rollback(step, cascade=cascade, yes=yes)
        console.print(f"rolled back: {', '.join(order)}")

    @app.command()
    def runbook(ctx: typer.Context, plan: str = typer.Argument(..., help="Plan file."),
                output: Path = typer.Option(None, "-o", "--output", help="Write to FILE.")
                ) -> None:
        """Render an operator runbook (Markdown) from a plan; standard output without -o.

        Example: cutover runbook plans/phase2-cloud.yaml -o runbooks/phase2-cloud.md
        """
        workspace = workspace_of(ctx)
        path = workspace.resolve_plan(plan)
        text = runbook_markdown(load_plan(path), _display_path(path, workspace))
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
        from cutover.sample import run_demo

        target = directory or Path(tempfile.mkdtemp(prefix="cutover-demo-"))
        console.print(f"demo workspace: {target}")
        run_demo(target)


def _display_path(path: Path, workspace: Workspace) -> str:
    try:
        return str(path.relative_to(workspace.root))
    except ValueError:
        return str(path)


def _plan_of_step(workspace: Workspace, state: State, step_id: str, plan_name: str | None
                  ) -> Path:
    rows = [row for row in state.steps() if row["step_id"] == step_id
            and (plan_name is None or row["plan"] == plan_name)]
    if not rows:
        raise RollbackRefused(f"step {step_id} has never run in this workspace")
    if len(rows) > 1:
        names = ", ".join(sorted(row["plan"] for row in rows))
        raise UsageError(f"step {step_id} exists in several plans ({names}): add --plan NAME")
    plans = {row["plan"]: row["plan_path"] for row in state.plans()}
    path = workspace.path(plans.get(rows[0]["plan"], ""))
    if not path.is_file():
        raise NotFound(f"plan file of {rows[0]['plan']} is gone: {path}")
    return path


def status_report(workspace: Workspace, state: State) -> dict[str, Any]:
    plans = []
    for run_row in state.plans():
        rows = {row["step_id"]: row for row in state.steps(run_row["plan"])}
        order: list[str] = list(rows)
        kinds = {step_id: row["kind"] for step_id, row in rows.items()}
        path = workspace.path(run_row["plan_path"])
        now = state.now()
        try:
            plan = load_plan(path)
            order = [step.id for step in plan.ordered()] + [s for s in rows if
                                                            not plan.has_step(s)]
            kinds.update({step.id: step.spec.kind for step in plan.steps})
        except Exception:  # a plan file edited or removed since: report what state knows
            pass
        steps = []
        for step_id in order:
            row = rows.get(step_id, {})
            items = state.items(run_row["plan"], step_id)
            entry = {
                "id": step_id, "kind": kinds.get(step_id), "status": row.get("status", "pending"),
                "updated": row.get("updated"), "message": row.get("message"),
                "wait_until": row.get("wait_until"),
                "items": {"total": len(items),
                          "done": sum(1 for i in items if i["status"] == "done"),
                          "rolled_back": sum(1 for i in items if i["status"] == "rolled_back"),
                          "detail": [{"item": i["item"], "status": i["status"]} for i in items]},
            }
            if row.get("wait_until"):
                entry["wait_remaining_s"] = remaining_wait(row, now)
            steps.append(entry)
        plans.append({"name": run_row["plan"], "path": str(path), "steps": steps,
                      "last_run": {"id": run_row["id"], "status": run_row["status"],
                                   "started": run_row["started"]}})
    holds = [{"key": h["key"], "until": h["until"], "reason": h["reason"],
              "expired": parse_iso(h["until"]) <= state.now()} for h in state.holds.all()]
    return {"workspace": str(workspace.root), "plans": plans, "holds": holds}

