"""The verbs a user runs, as plain functions (after Alembic's `command.py`).

Each takes a Workspace, its options, an output sink (the runner's `Output`) and a confirm
callback; the command line only parses options, calls one of these and renders what it returns.
A library user (a script, a test, the demo) calls the same functions.

    from cutover import operations
    from cutover.workspace import Workspace

    workspace = Workspace("/srv/agency")
    operations.run(workspace, "plans/phase1-segregate.yaml", RunOptions(until="accounts", yes=True))
    print(operations.status(workspace)["plans"][0]["steps"][0]["status"])
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover.errors import (
    CutoverError,
    NotFound,
    PlanInvalid,
    Problem,
    RollbackRefused,
    StateUnusable,
    UsageError,
)
from cutover.state import State, parse_iso, remaining_wait
from cutover.workspace import Workspace

# The plan loader (pydantic, every step kind) and the runner are imported by the verbs that
# run a plan: `status`, `log`, `unlock` and the reports start without them.
if TYPE_CHECKING:
    from cutover.plan import Plan
    from cutover.runner import Confirm, Output, RunOptions, RunResult


# --- the state: one way to open it --------------------------------------------------------
def open_state(workspace: Workspace, create: bool = True) -> State:
    """The workspace's state for commands that write it (run, resume, rollback, unlock...)."""
    if create:
        workspace.check_writable()
    else:
        workspace.check_exists()
    return State.open(workspace.state_path, create=create)


def preview_state(workspace: Workspace) -> State:
    """The state a preview reads: a read-only, in-memory copy of the workspace's (an empty one
    when there is none). `plan show` and `run --dry-run` so leave the workspace byte for byte
    as they found it, and work in a read-only workspace."""
    workspace.check_exists()
    return State.open_snapshot(workspace.state_path)


@contextmanager
def locked(state: State, command: str) -> Iterator[State]:
    """Hold the workspace lock for one run/resume/rollback; close the state afterwards (so
    its WAL is checkpointed into the file)."""
    try:
        state.acquire_lock(command)
        try:
            yield state
        finally:
            state.release_lock()
    finally:
        state.close()


def _load(workspace: Workspace, plan_argument: str | Path) -> Plan:
    """The plan, once the whole environment it runs in is checked: cutover.yaml as a whole,
    every connector a step names, every entry against its role (before any step previews)."""
    from cutover.environment import check_for_plan
    from cutover.plan import load_plan

    path = workspace.resolve_plan(plan_argument)
    plan = load_plan(path)
    check_for_plan(workspace, plan, str(path))
    workspace.validate()
    return plan


# --- run, preview, resume, rollback -------------------------------------------------------
def preview(workspace: Workspace, plan_argument: str | Path, output: Output | None = None,
            force: bool = False) -> tuple[Plan, RunResult]:
    """Every step's preview and its hash; changes nothing (the state included)."""
    from cutover.runner import Runner, RunOptions

    plan = _load(workspace, plan_argument)
    runner = Runner(workspace, preview_state(workspace), plan, output)
    return plan, runner.run(RunOptions(dry_run=True, force=force))


def run(workspace: Workspace, plan_argument: str | Path, options: RunOptions,
        output: Output | None = None, confirm: Confirm | None = None) -> RunResult:
    """Run a plan (or `--step`/`--until` part of it) under the workspace lock."""
    from cutover.runner import Runner

    if options.dry_run:
        plan = _load(workspace, plan_argument)
        return Runner(workspace, preview_state(workspace), plan, output).run(options)
    plan = _load(workspace, plan_argument)
    state = open_state(workspace)
    with locked(state, f"run {plan_argument}"):
        _refuse_renamed_plan(workspace, state, plan)
        return Runner(workspace, state, plan, output, confirm).run(options)


def resume(workspace: Workspace, yes: bool = False, output: Output | None = None,
           confirm: Confirm | None = None) -> RunResult | None:
    """Finish the interrupted run exactly where it stopped; None when every run finished."""
    from cutover.plan import load_plan
    from cutover.runner import Runner, RunOptions

    state = open_state(workspace)
    with locked(state, "resume"):
        unfinished = state.unfinished_run()
        if unfinished is None:
            return None
        saved = json.loads(unfinished["options"] or "{}")
        plan = load_plan(_plan_file(workspace, unfinished["plan"], unfinished["plan_path"]))
        workspace.validate()
        gone = [row["step_id"] for row in state.steps(unfinished["plan"])
                if row["status"] in ("running", "failed") and not plan.has_step(row["step_id"])]
        if gone:
            raise UsageError(f"plan {plan.name} no longer has step(s) {', '.join(gone)} that "
                             "did not finish: put them back in the plan, or roll them back "
                             f"(cutover rollback {gone[0]} --plan {plan.name})")
        # Steps resumed from a checkpoint need no confirmation; a step previewed afresh
        # needs this command's own --yes, never the interrupted run's.
        options = RunOptions(step=saved.get("step"), until=saved.get("until"), yes=yes,
                             force=saved.get("force", False))
        state.record_event("resume", unfinished["plan"], message=f"run {unfinished['id']}")
        return Runner(workspace, state, plan, output, confirm).run(options)


def rollback(workspace: Workspace, step_id: str, cascade: bool = False,
             plan_name: str | None = None, yes: bool = False, force: bool = False,
             output: Output | None = None, confirm: Confirm | None = None) -> list[str]:
    """Restore what a step changed, from its checkpoint, then verify the restore. Works from
    the checkpoint even when the plan file has changed or lost the step since."""
    from cutover.runner import Runner

    if not workspace.state_path.exists():
        workspace.check_exists()
        raise RollbackRefused(f"step {step_id} has never run in this workspace")
    state = open_state(workspace)
    try:
        plan_name = _plan_of_step(state, step_id, plan_name)
    except BaseException:
        state.close()
        raise
    with locked(state, f"rollback {step_id}"):
        plan = _plan_or_checkpoints(workspace, state, plan_name)
        runner = Runner(workspace, state, plan, output, confirm)
        return runner.rollback(step_id, cascade=cascade, yes=yes, force=force)


def unlock(workspace: Workspace, force: bool = False) -> dict[str, Any] | None:
    """Clear the workspace lock left by a process that can no longer release it (another host,
    a reused pid). Without `force` only a provably stale lock (a dead pid on this host) is
    cleared. Returns the lock that was cleared, None when there was none."""
    state = open_state(workspace)
    try:
        return state.clear_lock(force=force)
    finally:
        state.close()


# --- reading the state --------------------------------------------------------------------
def status(workspace: Workspace) -> dict[str, Any]:
    """Per-step and per-item state of every plan that has run, the holds and the lock."""
    workspace.check_exists()
    if not workspace.state_path.exists():
        return {"workspace": str(workspace.root), "plans": [], "holds": [], "lock": None}
    state = State.open_snapshot(workspace.state_path)
    now = state.now()
    plans = [_plan_status(workspace, state, row, now) for row in state.plans()]
    holds = [{"key": h["key"], "until": h["until"], "reason": h["reason"],
              "expired": parse_iso(h["until"]) <= now} for h in state.holds.all()]
    return {"workspace": str(workspace.root), "plans": plans, "holds": holds,
            "lock": state.lock_holder()}


def events(workspace: Workspace, plan: str | None = None) -> list[dict[str, Any]]:
    """The audit log, oldest first."""
    workspace.check_exists()
    if not workspace.state_path.exists():
        return []
    return State.open_snapshot(workspace.state_path).events(plan)


def _plan_status(workspace: Workspace, state: State, run_row: dict[str, Any],
                 now: Any) -> dict[str, Any]:
    name = run_row["plan"]
    rows = {row["step_id"]: row for row in state.steps(name)}
    order: list[str] = list(rows)
    kinds = {step_id: row["kind"] for step_id, row in rows.items()}
    path = workspace.path(run_row["plan_path"])
    try:
        outline = _plan_outline(path)
        order = [step_id for step_id, _ in outline] + [s for s in rows if s not in
                                                       dict(outline)]
        kinds.update(dict(outline))
    except CutoverError:  # a plan edited or removed since: report what the state knows
        pass
    counts = state.item_counts(name)
    details = state.item_details(name)
    steps = []
    for step_id in order:
        row = rows.get(step_id, {})
        count = counts.get(step_id, {})
        entry = {
            "id": step_id, "kind": kinds.get(step_id), "status": row.get("status", "pending"),
            "updated": row.get("updated"), "message": row.get("message"),
            "wait_until": row.get("wait_until"),
            "items": {"total": count.get("total", 0), "done": count.get("done", 0),
                      "rolled_back": count.get("rolled_back", 0),
                      "detail": details.get(step_id, [])},
        }
        if row.get("wait_until"):
            entry["wait_remaining_s"] = remaining_wait(row, now)
        if kinds.get(step_id) == "cloud.migration_batch":
            from cutover.steps.migration_state import batch_progress

            entry["batch"] = batch_progress(state, name, step_id)
        steps.append(entry)
    return {"name": name, "path": str(path), "steps": steps,
            "last_run": {"id": run_row["id"], "status": run_row["status"],
                         "started": run_row["started"]}}


def _plan_outline(path: Path) -> list[tuple[str, str]]:
    """The steps of a plan file in run order, as (id, kind), without loading the step kinds:
    enough for `cutover status`, which must stay fast on a big workspace. Raises PlanInvalid
    when the file does not even have that shape."""
    from cutover import yaml_loader
    from cutover.step_graph import CycleFound, StepGraph

    try:
        data, _ = yaml_loader.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml_loader.YamlProblem):
        raise PlanInvalid([Problem(str(path), 1, "cannot read the plan's steps")]) from None
    raw = data.get("steps") if isinstance(data, dict) else None
    steps = [s for s in raw or [] if isinstance(s, dict) and isinstance(s.get("id"), str)]
    kinds = {s["id"]: str(s.get("kind")) for s in steps}
    requires = {s["id"]: [r for r in (s.get("requires") or []) if r in kinds] for s in steps}
    try:
        order = StepGraph(requires).order
    except CycleFound:
        order = list(requires)
    return [(step_id, kinds[step_id]) for step_id in order]


# --- reports and runbooks -----------------------------------------------------------------
REPORT_FORMATS = ("md", "csv", "json", "html")


def _throughput(workspace: Workspace, given: float | None) -> float | None:
    from cutover.errors import ConfigInvalid
    from cutover.inventory.collect import inventory_config

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


def runbook(workspace: Workspace, plan_argument: str | Path) -> str:
    """The operator runbook (Markdown) of a plan."""
    from cutover.plan import load_plan
    from cutover.render import runbook_markdown

    path = workspace.resolve_plan(plan_argument)
    return runbook_markdown(load_plan(path), workspace.display(path))


def write_inventory_report(workspace: Workspace, fmt: str, output: Path | None,
                           snapshot: str | None = None, throughput: float | None = None
                           ) -> dict[str, Any]:
    """Render the inventory report of a snapshot (default: the latest) to `output`, or to
    standard output; returns the snapshot's metadata."""
    import sys

    from cutover.inventory import store

    if fmt not in REPORT_FORMATS:
        raise UsageError(f"unknown report format {fmt!r}: use one of {', '.join(REPORT_FORMATS)}")
    workspace.check_exists()
    try:  # in place: a 100,000-mailbox inventory is not copied into memory
        state = State.open_snapshot(workspace.state_path, copy=False)
        meta = store.get_snapshot(state, snapshot)
    except StateUnusable:  # a state an older cutover wrote: read it migrated, in memory
        state = State.open_snapshot(workspace.state_path)
        meta = store.get_snapshot(state, snapshot)
    rate = _throughput(workspace, throughput)
    if output is None:
        _render_report(fmt, state, meta, rate, sys.stdout)
        return meta
    try:
        with output.open("w", encoding="utf-8", newline="") as out:
            _render_report(fmt, state, meta, rate, out)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    return meta


def _render_report(fmt: str, state: State, meta: dict[str, Any], throughput: float | None,
                   out: Any) -> None:
    """CSV from the lines stored with the snapshot (else from its recipients); the other
    formats from the summary stored with it (else computed)."""
    from cutover.inventory import store
    from cutover.inventory.report import render, render_csv, render_csv_lines

    if fmt == "csv":
        lines = store.iter_csv_lines(state, meta["id"])
        if lines is not None:
            render_csv_lines(lines, out)
        else:
            render_csv(store.iter_recipients(state, meta["id"]), out)
        return
    render(fmt, store.snapshot_summary(state, meta, throughput), None, out)


# --- the demo -----------------------------------------------------------------------------
def demo(target: Path, output: Output | None = None) -> dict[str, Any]:
    """Build the sample organisation in `target` and run every sample plan to completion;
    returns the summary the demo prints (what moved, what changed, reports written)."""
    from collections import Counter

    from cutover.inventory.store import latest_recipients
    from cutover.routes.story import route_snapshot
    from cutover.runner import RunOptions
    from cutover.sample.org import DEMO_TRACED
    from cutover.sample.writer import PLAN_NAMES, write_sample

    write_sample(target)
    workspace = Workspace(target)
    routes_before = route_snapshot(workspace, list(DEMO_TRACED))
    runs = []
    for name in PLAN_NAMES:
        result = run(workspace, f"plans/{name}", RunOptions(yes=True), output)
        runs.append({"plan": result.plan, "applied": len(result.done),
                     "already_done": len(result.skipped)})
    routes_after = route_snapshot(Workspace(target), list(DEMO_TRACED))  # a fresh read
    state = State.open_snapshot(workspace.state_path)
    recipients = latest_recipients(state)
    moves = Counter((str(r.get("class")), str(r.get("destination"))) for r in recipients)
    changed = Counter((e["plan"], e["step_id"]) for e in state.events()
                      if e["event"] == "applied")
    reports = workspace.root / "reports"
    reports.mkdir(exist_ok=True)
    written = []
    for fmt, name in (("html", "inventory.html"), ("md", "inventory.md")):
        write_inventory_report(workspace, fmt, reports / name)
        written.append(str(reports / name))
    people = sorted(r["address"] for r in recipients if r.get("class") == "people")
    return {
        "workspace": str(workspace.root),
        "runs": runs,
        "mailboxes": _mailbox_locations(workspace, state, people),
        "moves": [{"class": k, "destination": d, "mailboxes": n}
                  for (k, d), n in sorted(moves.items())],
        "steps": [{"plan": row["plan"], "step": row["step_id"], "status": row["status"],
                   "changes_applied": changed.get((row["plan"], row["step_id"]), 0)}
                  for row in state.steps()],
        "reports": written,
        "routes": {"before": routes_before, "after": routes_after},  # address -> Trace
    }


def _mailbox_locations(workspace: Workspace, state: State, people: list[str]
                       ) -> list[dict[str, Any]]:
    """Per person: where the mailbox is now, and what (if anything) was left behind."""
    from cutover.steps.hybrid_report import mailbox_locations

    if not workspace.entries("management"):
        return []
    workspace.state = state
    return [{"address": found.address, "location": found.location,
             "messages_onprem": found.messages_onprem, "messages_cloud": found.messages_cloud,
             "left_behind": found.left_behind, "unexplained": found.unexplained}
            for found in mailbox_locations(workspace, state, people)]


# --- helpers ------------------------------------------------------------------------------
def _plan_of_step(state: State, step_id: str, plan_name: str | None) -> str:
    rows = [row for row in state.steps() if row["step_id"] == step_id
            and (plan_name is None or row["plan"] == plan_name)]
    if not rows:
        raise RollbackRefused(f"step {step_id} has never run in this workspace")
    if len(rows) > 1:
        names = ", ".join(sorted(row["plan"] for row in rows))
        raise UsageError(f"step {step_id} exists in several plans ({names}): add --plan NAME")
    return rows[0]["plan"]


def _plan_file(workspace: Workspace, name: str, recorded: str) -> Path:
    path = workspace.path(recorded)
    if not path.is_file():
        raise NotFound(f"plan file of {name} is gone: {path}")
    return path


def _plan_or_checkpoints(workspace: Workspace, state: State, name: str) -> Plan:
    """The plan as its file says, or, when the file is gone or no longer valid, the plan as
    its checkpoints recorded it: a rollback needs only what the checkpoints hold."""
    from cutover.plan import load_plan, plan_from_checkpoints

    recorded = {row["plan"]: row["plan_path"] for row in state.plans()}.get(name, "")
    path = workspace.path(recorded) if recorded else None
    if path is not None and path.is_file():
        try:
            plan = load_plan(path)
            if plan.name == name:
                return plan_from_checkpoints(name, path, state, base=plan)
        except CutoverError:
            pass
    return plan_from_checkpoints(name, path, state)


def _refuse_renamed_plan(workspace: Workspace, state: State, plan: Plan) -> None:
    """A plan file that already ran under another name: running it under the new name would
    re-checkpoint applied changes as "nothing to do" and strand the old checkpoints."""
    here = workspace.relative(plan.path)
    for row in state.plans():
        if row["plan_path"] == here and row["plan"] != plan.name and any(
                step["status"] in ("running", "failed", "done", "waiting")
                for step in state.steps(row["plan"])):
            raise UsageError(f"{workspace.display(plan.path)} ran as plan {row['plan']!r}, now "
                             f"named {plan.name!r}: give it its old name back, or roll back "
                             f"{row['plan']} first (cutover rollback STEP --plan {row['plan']})")
