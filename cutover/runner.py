"""The runner: the only place that orders a step's verbs. See docs/runner.md.

For each step, in dependency order:
  preview (no side effects) -> confirm -> checkpoint committed to SQLite -> apply each pending
  change, marking it done at once -> verify the world -> done.
A step that crashed mid-apply is finished from its checkpoint (apply is idempotent); a rollback
restores every applied change's `before` and verifies the restore.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cutover.errors import (
    ConfirmationRequired,
    CutoverError,
    NotFound,
    PreviewChanged,
    RollbackRefused,
    StepFailed,
    UsageError,
    VerificationFailed,
    WorldChanged,
)
from cutover.faults import crash_if_asked
from cutover.plan import Plan, PlannedStep
from cutover.safety import drifted, raise_if_unsafe
from cutover.state import State, iso
from cutover.steps.base import Change, Context, Finding, Waiting, changes_digest
from cutover.workspace import Workspace

CRASH_POINTS = ("after-checkpoint", "mid-apply", "after-apply")
MIN_HASH_PREFIX = 8
APPLIED = ("running", "done", "failed")


class Output(Protocol):
    """How the runner talks to the operator; the CLI renders it with rich, tests stay quiet."""

    def step_header(self, step: PlannedStep, note: str) -> None: ...
    def preview(self, step: PlannedStep, changes: list[Change]) -> None: ...
    def progress(self, step: PlannedStep, done: int, total: int) -> None: ...
    def findings(self, step: PlannedStep, findings: list[Finding]) -> None: ...
    def note(self, message: str) -> None: ...


class QuietOutput:
    def step_header(self, step: PlannedStep, note: str) -> None: ...
    def preview(self, step: PlannedStep, changes: list[Change]) -> None: ...
    def progress(self, step: PlannedStep, done: int, total: int) -> None: ...
    def findings(self, step: PlannedStep, findings: list[Finding]) -> None: ...
    def note(self, message: str) -> None: ...


Confirm = Callable[[PlannedStep, list[Change]], bool]


@dataclass
class RunOptions:
    step: str | None = None
    until: str | None = None
    yes: bool = False
    dry_run: bool = False
    force: bool = False
    #: with `step`: apply only if the preview's hash starts with this (what was reviewed)
    expect_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "until": self.until, "yes": self.yes, "force": self.force}


@dataclass
class RunResult:
    plan: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: tuple[str, datetime, str] | None = None
    previews: dict[str, list[Change]] = field(default_factory=dict)
    preview_hashes: dict[str, str] = field(default_factory=dict)
    preview_errors: dict[str, str] = field(default_factory=dict)


def _crash_if_asked(step_id: str, point: str) -> None:
    """Fault injection for tests: CUTOVER_CRASH_AT=STEP_ID:POINT exits at once with 137."""
    crash_if_asked(f"{step_id}:{point}")


def select_items(recipients: list[dict[str, Any]], selector: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """Recipients whose fields equal the selector's values (a list value means any of them)."""
    def matches(recipient: dict[str, Any]) -> bool:
        for key, wanted in selector.items():
            value = recipient.get(key)
            options = wanted if isinstance(wanted, list) else [wanted]
            if value not in options:
                return False
        return True

    return [r for r in recipients if matches(r)]


class Runner:
    def __init__(self, workspace: Workspace, state: State, plan: Plan,
                 output: Output | None = None, confirm: Confirm | None = None):
        self.workspace = workspace
        self.state = state
        workspace.state = state  # handed to connectors that keep a table in it
        self.plan = plan
        self.output = output or QuietOutput()
        self.confirm = confirm

    # --- time ----------------------------------------------------------------------------
    @property
    def simulated_clock(self) -> bool:
        return self.workspace.config.get("clock") == "simulated"

    def now(self) -> datetime:
        return self.state.now()

    def _advance_clock_to(self, until: datetime, reason: str) -> None:
        self.state.advance_clock((until - self.now()).total_seconds() + 1)
        self.state.record_event("clock-advanced", self.plan.name,
                                message=f"simulated clock moved to {iso(until)}: {reason}")
        self.output.note(f"simulated clock: skipped the wait until {iso(until)} ({reason})")

    # --- contexts ------------------------------------------------------------------------
    def context(self, step: PlannedStep, item: dict[str, Any] | None = None,
                force: bool = False, dry_run: bool = False, params: Any = None,
                log: Callable[[str], None] | None = None) -> Context:
        return Context(workspace=self.workspace, plan_name=self.plan.name, step_id=step.id,
                       params=params if params is not None else step.params, item=item,
                       force=force, dry_run=dry_run, clock=self.now,
                       log=log or self.output.note, holds=self.state.holds, state=self.state)

    def applied_params(self, step: PlannedStep) -> Any:
        """The params the step's checkpoint was applied with: a rollback or a resume acts on
        the systems the step changed, even if the plan file was edited since."""
        checkpoint = self.state.checkpoint(self.plan.name, step.id)
        if checkpoint is None or checkpoint.get("params") is None:
            return step.params
        return step.kind.Params.model_validate(checkpoint["params"])

    def items_for(self, step: PlannedStep) -> list[dict[str, Any] | None]:
        if step.spec.for_each is None:
            return [None]
        from cutover.inventory.store import latest_recipients

        recipients = latest_recipients(self.state)
        if not recipients:
            raise NotFound(f"step {step.id} runs for_each over the inventory, but no inventory "
                           "snapshot exists: run `cutover inventory collect` first")
        return select_items(recipients, step.spec.for_each)

    def preview_step(self, step: PlannedStep, force: bool = False,
                     items: list[dict[str, Any] | None] | None = None
                     ) -> list[tuple[Change, dict[str, Any] | None]]:
        """Every change of the step (of `items`, default all), each with its inventory item."""
        targets = self.items_for(step) if items is None else items
        planned: list[tuple[Change, dict[str, Any] | None]] = []
        seen: set[str] = set()
        for item, changes in zip(targets, self._previews(step, targets, force), strict=True):
            for change in changes:
                if change.item in seen:
                    change = Change(f"{item['address'] if item else '-'}: {change.item}",
                                    change.action, change.before, change.after, change.summary)
                seen.add(change.item)
                planned.append((change, item))
        return planned

    def _previews(self, step: PlannedStep, items: list[dict[str, Any] | None],
                  force: bool) -> list[list[Change]]:
        """Each item's preview, in item order. A kind whose previews only read and may run side
        by side (`preview_workers` > 1: a mailbox copy, whose preview waits on two logins) is
        previewed that many items at a time after the first (which builds the connectors
        alone); its notes are told in item order and the first item that fails, in item order,
        raises, as when previewed one by one."""
        instance = step.kind()
        workers = min(getattr(step.kind, "preview_workers", 1), len(items) - 1)
        if workers <= 1 or sqlite3.threadsafety < 3:  # see State.open: one shared connection
            return [instance.preview(self.context(step, item, force=force, dry_run=True))
                    for item in items]
        first = instance.preview(self.context(step, items[0], force=force, dry_run=True))
        notes: list[list[str]] = [[] for _ in items[1:]]

        def preview(index: int) -> list[Change]:
            return instance.preview(self.context(step, items[index + 1], force=force,
                                                 dry_run=True, log=notes[index].append))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(preview, index) for index in range(len(items) - 1)]
            previews = [first]
            try:
                for index, future in enumerate(futures):
                    changes = future.result()
                    for note in notes[index]:
                        self.output.note(note)
                    previews.append(changes)
            finally:
                for future in futures:
                    future.cancel()
        return previews

    # --- run -----------------------------------------------------------------------------
    def selected_steps(self, options: RunOptions) -> list[PlannedStep]:
        ordered = self.plan.ordered()
        for name in (options.step, options.until):
            if name is not None and not self.plan.has_step(name):
                raise UsageError(f"plan {self.plan.name} has no step {name!r}")
        if options.step:
            return [self.plan.step(options.step)]
        if options.until:
            keep = set(self.plan.graph.ancestors(options.until)) | {options.until}
            return [s for s in ordered if s.id in keep]
        return ordered

    def run(self, options: RunOptions) -> RunResult:
        result = RunResult(self.plan.name)
        steps = self.selected_steps(options)
        if options.expect_hash and not options.step:
            raise UsageError("--expect-hash names one step's preview: use it with --step")
        if options.expect_hash and len(options.expect_hash) < MIN_HASH_PREFIX:
            raise UsageError(f"--expect-hash needs at least {MIN_HASH_PREFIX} characters of "
                             "the hash `plan show` printed")
        if options.dry_run:
            return self._dry_run(steps, options, result)
        if options.step:
            self._require_dependencies_done(self.plan.step(options.step))
        run_id = self.state.start_run(self.plan.name, self.workspace.relative(self.plan.path),
                                      options.to_json())
        self.state.record_event("run-started", self.plan.name, message=str(options.to_json()))
        try:
            for step in steps:
                if self._run_step(step, options, result) == "waiting":
                    self.state.finish_run(run_id, "waiting")
                    return result
        except BaseException as exc:
            # A refusal (no confirmation, unsafe change, bad input found at preview) before
            # this invocation changed anything leaves the state as it was, audit log apart.
            # A failure once a checkpoint exists keeps its run: resume picks it up.
            if isinstance(exc, (UsageError, KeyboardInterrupt)) and not result.done and \
                    not self.state.checkpointed_since(self.plan.name, run_id):
                self.state.delete_run(run_id)
            raise
        self.state.finish_run(run_id, "finished")
        self.state.record_event("run-finished", self.plan.name)
        return result

    def _dry_run(self, steps: list[PlannedStep], options: RunOptions,
                 result: RunResult) -> RunResult:
        for step in steps:
            status = self.state.step_status(self.plan.name, step.id)
            if status == "done":
                self.output.step_header(step, "done")
                result.skipped.append(step.id)
                continue
            try:
                changes = [change for change, _ in self.preview_step(step, options.force)]
            except Waiting as wait:
                result.preview_errors[step.id] = f"waits until {iso(wait.until)}: {wait.reason}"
                self.output.step_header(step, result.preview_errors[step.id])
                continue
            except CutoverError as exc:
                reason = str(exc).splitlines()[0]
                result.preview_errors[step.id] = reason
                self.output.step_header(step, f"cannot preview yet: {reason}")
                continue
            result.previews[step.id] = changes
            result.preview_hashes[step.id] = changes_digest(changes)
            self.output.step_header(step, f"preview {changes_digest(changes)[:12]}")
            self.output.preview(step, changes)
        return result

    def _require_dependencies_done(self, step: PlannedStep) -> None:
        missing = [dep for dep in step.spec.requires
                   if self.state.step_status(self.plan.name, dep) != "done"]
        if missing:
            raise UsageError(f"step {step.id} requires {', '.join(missing)}, not done yet")
        for dep in step.spec.requires:
            uncovered = self.uncovered_items(self.plan.step(dep))
            if uncovered:
                raise UsageError(f"step {step.id} requires {dep}, which has not handled "
                                 f"{', '.join(i['address'] for i in uncovered)} (collected "
                                 f"since it ran): run `cutover run "
                                 f"{self.workspace.display(self.plan.path)} --step "
                                 f"{dep}` first")

    def _run_step(self, step: PlannedStep, options: RunOptions, result: RunResult) -> str:
        row = self.state.step(self.plan.name, step.id)
        status = row["status"] if row else "pending"
        if status == "done":
            uncovered = self.uncovered_items(step)
            if not uncovered:
                self.output.step_header(step, "already done")
                result.skipped.append(step.id)
                return "done"
            self._extend(step, uncovered, options, result)
            status = "running"
        checkpoint = self.state.checkpoint(self.plan.name, step.id)
        if status in ("running", "failed") and checkpoint is not None:
            self.output.step_header(step, "resuming from its checkpoint")
            reviewed = options.expect_hash
            if reviewed and not checkpoint["preview_hash"].startswith(reviewed.lower()):
                raise PreviewChanged(f"step {step.id}: its checkpoint holds preview "
                                     f"{checkpoint['preview_hash'][:12]}, not the reviewed "
                                     f"{reviewed[:12]}; nothing was applied")
            entries = checkpoint["changes"]
            resuming = True
        else:
            entries = self._preview_and_checkpoint(step, options, result)
            if entries is None:
                return "waiting"
            resuming = False
        self._apply_entries(step, entries, options, resuming)
        self._verify(step, entries)
        self.state.set_step(self.plan.name, step.id, step.spec.kind, "done")
        self.state.record_event("step-done", self.plan.name, step.id)
        result.done.append(step.id)
        return "done"

    def uncovered_items(self, step: PlannedStep) -> list[dict[str, Any]]:
        """Inventory items a done for_each step was never run over (collected since): until it
        handles them, steps after it would route mail to what does not exist."""
        if step.spec.for_each is None:
            return []
        checkpoint = self.state.checkpoint(self.plan.name, step.id)
        if checkpoint is None or checkpoint.get("covered") is None:
            return []
        covered = set(checkpoint["covered"])
        return [item for item in self.items_for(step) if item["address"] not in covered]

    def _extend(self, step: PlannedStep, items: list[dict[str, Any]], options: RunOptions,
                result: RunResult) -> None:
        """Re-open a done step for the items it never handled: preview them, pass the gate,
        confirm, add them to its checkpoint; the caller applies and verifies them."""
        names = ", ".join(item["address"] for item in items)
        self.output.step_header(step, f"done, but the inventory gained {len(items)} item(s) "
                                      f"since: {names}")
        planned = self.preview_step(step, options.force, items)
        changes = [change for change, _ in planned]
        digest = changes_digest(changes)
        self.output.preview(step, changes)
        result.previews[step.id] = changes
        result.preview_hashes[step.id] = digest
        self._gate(step.id, step.kind().unsafe_reasons(self.context(step, force=options.force,
                                                                    dry_run=True), changes),
                   options.force)
        if changes and step.spec.confirm and not options.yes:
            if self.confirm is None or not self.confirm(step, changes):
                raise ConfirmationRequired(f"step {step.id} must also handle {names}: confirm "
                                           "on a terminal or pass --yes")
        covered = (self.state.checkpoint(self.plan.name, step.id) or {}).get("covered") or []
        self.state.extend_checkpoint(self.plan.name, step.id, step.spec.kind,
                                     [dict(c.to_json(), for_item=i) for c, i in planned],
                                     digest, covered + [item["address"] for item in items])
        self.state.record_event("checkpoint", self.plan.name, step.id,
                                message=f"re-opened for {len(items)} new item(s): {names}")

    def _preview_and_checkpoint(self, step: PlannedStep, options: RunOptions,
                                result: RunResult) -> list[dict[str, Any]] | None:
        while True:
            try:
                planned = self.preview_step(step, options.force)
                break
            except Waiting as wait:
                if not self.simulated_clock:
                    self.state.set_step(self.plan.name, step.id, step.spec.kind, "waiting",
                                        message=wait.reason, wait_until=wait.until)
                    self.state.record_event("step-waiting", self.plan.name, step.id,
                                            message=f"until {iso(wait.until)}: {wait.reason}")
                    self.output.step_header(step, f"waiting until {iso(wait.until)}: "
                                                  f"{wait.reason}")
                    result.waiting = (step.id, wait.until, wait.reason)
                    return None
                self._advance_clock_to(wait.until, wait.reason)
        changes = [change for change, _ in planned]
        digest = changes_digest(changes)
        self.output.step_header(step, f"preview {digest[:12]}")
        self.output.preview(step, changes)
        result.previews[step.id] = changes
        result.preview_hashes[step.id] = digest
        if options.expect_hash and not digest.startswith(options.expect_hash.lower()):
            raise PreviewChanged(f"step {step.id}: the preview is {digest[:12]}, not the "
                                 f"reviewed {options.expect_hash[:12]}: the world changed "
                                 "since the review; nothing was applied (review it again)")
        self._gate(step.id, step.kind().unsafe_reasons(self.context(step, force=options.force,
                                                                    dry_run=True), changes),
                   options.force)
        if changes and step.spec.confirm and not options.yes:
            if self.confirm is None:
                raise ConfirmationRequired(f"step {step.id} changes {len(changes)} item(s): "
                                           "confirm on a terminal or pass --yes")
            if not self.confirm(step, changes):
                raise ConfirmationRequired(f"step {step.id} was not confirmed; nothing changed")
        entries = [dict(change.to_json(), for_item=item) for change, item in planned]
        covered = None if step.spec.for_each is None else \
            [item["address"] for item in self.items_for(step)]
        self.state.write_checkpoint(self.plan.name, step.id, step.spec.kind, entries, digest,
                                    step.params.model_dump(mode="json"), covered)
        self.state.record_event("checkpoint", self.plan.name, step.id,
                                message=f"{len(entries)} change(s) recorded before applying")
        _crash_if_asked(step.id, "after-checkpoint")
        return entries

    def _gate(self, step_id: str, reasons: list[str], force: bool,
              what: str = "unsafe change refused") -> None:
        """The one safety gate (cutover.safety): refuse naming every reason, unless forced;
        a forced pass is said and audited."""
        for reason in raise_if_unsafe(step_id, reasons, force, what):
            self.output.note(f"--force: passing: {reason}")
            self.state.record_event("unsafe-forced", self.plan.name, step_id, message=reason)

    def _apply_entries(self, step: PlannedStep, entries: list[dict[str, Any]],
                       options: RunOptions, resuming: bool = False) -> None:
        instance = step.kind()
        params = self.applied_params(step)
        status_by_item = {row["item"]: row["status"] for row in
                          self.state.items(self.plan.name, step.id)}
        crash_after = (len(entries) + 1) // 2
        done = sum(1 for entry in entries if status_by_item.get(entry["item"]) == "done")
        if not entries:
            _crash_if_asked(step.id, "mid-apply")  # "half" of nothing is now
        in_flight = resuming  # the first pending item of a resumed step may be half applied
        for entry in entries:
            if status_by_item.get(entry["item"]) == "done":
                continue
            change = _change_of(entry)
            ctx = self.context(step, entry.get("for_item"), force=options.force, params=params)
            if not in_flight:
                self._refuse_if_world_moved(step, instance, ctx, change, options.force)
            in_flight = False
            try:
                instance.apply(ctx, change)
            except CutoverError as exc:
                self._fail(step, f"apply of {change.item} failed: {str(exc).splitlines()[0]}")
            except Exception as exc:  # a bug or an unexpected system error: record, stop
                self._fail(step, f"apply of {change.item} failed: {type(exc).__name__}: {exc}")
            with self.state.atomic():
                self.state.mark_item(self.plan.name, step.id, change.item, "done")
                self.state.record_event("applied", self.plan.name, step.id, change.item,
                                        change.before, change.after, change.describe())
            done += 1
            self.output.progress(step, done, len(entries))
            if done == crash_after:
                _crash_if_asked(step.id, "mid-apply")
        _crash_if_asked(step.id, "after-apply")

    def _refuse_if_world_moved(self, step: PlannedStep, instance: Any, ctx: Context,
                               change: Change, force: bool) -> None:
        """The gate before one item is applied: the world still shows what the preview saw
        (or already what it wants); else someone changed it since, and applying would
        overwrite their change."""
        try:
            reason = drifted(instance, ctx, change, [change.before, change.after])
        except CutoverError:
            return  # cannot observe now: apply itself will say what is wrong
        if reason is None:
            return
        try:
            self._gate(step.id, [f"{reason}, not as previewed"], force,
                       "the world changed since the preview")
        except UsageError as exc:
            self._fail(step, str(exc).split(": ", 1)[1], WorldChanged)

    def _fail(self, step: PlannedStep, message: str,
              error: type[CutoverError] = StepFailed) -> None:
        self.state.set_step(self.plan.name, step.id, step.spec.kind, "failed", message=message)
        self.state.record_event("step-failed", self.plan.name, step.id, message=message)
        raise error(f"step {step.id}: {message}")

    def _verify(self, step: PlannedStep, entries: list[dict[str, Any]],
                rollback: bool = False) -> None:
        instance = step.kind()
        params = self.applied_params(step)
        findings: list[Finding] = []
        for item, changes in self._verification_groups(step, entries, rollback):
            try:
                findings += instance.verify(self.context(step, item, params=params), changes)
            except CutoverError as exc:
                where = item["address"] if item else step.id
                findings.append(Finding(where, str(exc).splitlines()[0]))
        self.output.findings(step, findings)
        errors = [f for f in findings if f.severity == "error"]
        what = "rollback of step" if rollback else "step"
        if errors:
            message = f"verification failed: {errors[0].item}: {errors[0].problem}" + (
                f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
            self.state.set_step(self.plan.name, step.id, step.spec.kind, "failed",
                                message=message)
            self.state.record_event("verify-failed", self.plan.name, step.id, message=message)
            raise VerificationFailed(f"{what} {step.id}: {message}")
        self.state.record_event("verified", self.plan.name, step.id,
                                message=f"{len(findings)} warning(s)" if findings else None)

    def _verification_groups(self, step: PlannedStep, entries: list[dict[str, Any]],
                             rollback: bool) -> list[tuple[dict[str, Any] | None, list[Change]]]:
        """What verify sees: per for_each item its changes (inverted after a rollback). Items
        that needed no change are verified too: "nothing to change" is a claim about the world."""
        groups: dict[str, tuple[dict[str, Any] | None, list[Change]]] = {}
        for entry in entries:
            item = entry.get("for_item")
            change = _change_of(entry)
            key = item["address"] if item else ""
            groups.setdefault(key, (item, []))[1].append(change.inverse() if rollback
                                                          else change)
        if rollback:
            return list(groups.values())
        if step.spec.for_each is not None:
            for item in self.items_for(step):
                groups.setdefault(item["address"], (item, []))
        elif not groups:
            groups[""] = (None, [])
        return list(groups.values())

    # --- rollback ------------------------------------------------------------------------
    def rollback(self, step_id: str, cascade: bool = False, yes: bool = False,
                 force: bool = False) -> list[str]:
        if not self.plan.has_step(step_id):
            raise RollbackRefused(f"plan {self.plan.name} has no step {step_id!r}")
        if self.state.step_status(self.plan.name, step_id) not in APPLIED or \
                self.state.checkpoint(self.plan.name, step_id) is None:
            raise RollbackRefused(f"step {step_id} has not been applied: nothing to roll back")
        applied_dependents = [
            dep for dep in self.plan.graph.dependents(step_id)
            if self.state.step_status(self.plan.name, dep) in APPLIED
            and self.state.checkpoint(self.plan.name, dep) is not None]
        if applied_dependents and not cascade:
            raise RollbackRefused(f"steps that depend on {step_id} are applied: "
                                  f"{', '.join(applied_dependents)} (roll them back first, "
                                  "or use --cascade)")
        order = list(reversed(applied_dependents)) + [step_id]
        reasons = [reason for name in order for reason in self._rollback_drift(
            self.plan.step(name))]
        self._gate(step_id, reasons, force, "changed since it was applied, so a rollback "
                   "would overwrite that change")
        if not yes:
            if self.confirm is None:
                raise ConfirmationRequired(f"rolling back {', '.join(order)}: confirm on a "
                                           "terminal or pass --yes")
            if not self.confirm(self.plan.step(step_id), []):
                raise ConfirmationRequired("rollback was not confirmed; nothing changed")
        for name in order:
            self._rollback_step(self.plan.step(name), force)
        # an interrupted run must not re-apply, on resume, what was just rolled back
        self.state.supersede_runs(self.plan.name)
        return order

    def _touched(self, step: PlannedStep) -> list[tuple[dict[str, Any], bool]]:
        """The checkpoint entries a rollback restores, each with whether it was in flight:
        the applied items, plus the first pending one (it may have been mid-apply at a crash).
        """
        checkpoint = self.state.checkpoint(self.plan.name, step.id)
        assert checkpoint is not None
        status_by_item = {row["item"]: row["status"] for row in
                          self.state.items(self.plan.name, step.id)}
        touched: list[tuple[dict[str, Any], bool]] = []
        for entry in checkpoint["changes"]:
            status = status_by_item.get(entry["item"], "pending")
            if status == "done":
                touched.append((entry, False))
            elif status == "pending":
                touched.append((entry, True))
                break
        return touched

    def _rollback_drift(self, step: PlannedStep) -> list[str]:
        """What someone changed since this step applied it: the world is not its `after`
        (an in-flight item may also still be at `before`)."""
        instance = step.kind()
        params = self.applied_params(step)
        reasons = []
        for entry, in_flight in self._touched(step):
            change = _change_of(entry)
            allowed = [change.after, change.before] if in_flight else [change.after]
            try:
                reason = drifted(instance, self.context(step, entry.get("for_item"),
                                                        params=params), change, allowed)
            except CutoverError:
                continue  # cannot observe: the rollback itself will say what is wrong
            if reason is not None:
                reasons.append(f"{step.id}: {reason}, applied as "
                               f"{instance.describe_state(change.after)}")
        return reasons

    def _rollback_step(self, step: PlannedStep, force: bool = False) -> None:
        touched = [entry for entry, _ in self._touched(step)]
        self.output.step_header(step, f"rolling back {len(touched)} change(s)")
        instance = step.kind()
        params = self.applied_params(step)
        for entry in reversed(touched):
            change = _change_of(entry)
            try:
                instance.rollback(self.context(step, entry.get("for_item"), force=force,
                                               params=params), change)
            except CutoverError as exc:
                self._fail(step, f"rollback of {change.item} failed: {str(exc).splitlines()[0]}")
            except Exception as exc:  # the step must not stay `done` with items restored
                self._fail(step, f"rollback of {change.item} failed: {type(exc).__name__}: "
                                 f"{exc}")
            with self.state.atomic():
                self.state.mark_item(self.plan.name, step.id, change.item, "rolled_back")
                self.state.record_event("rolled-back", self.plan.name, step.id, change.item,
                                        change.after, change.before, f"restore {change.item}")
        self._verify(step, touched, rollback=True)
        self.state.set_step(self.plan.name, step.id, step.spec.kind, "rolled_back")
        self.state.record_event("step-rolled-back", self.plan.name, step.id)


def _change_of(entry: dict[str, Any]) -> Change:
    return Change.from_json({key: entry[key] for key in
                             ("item", "action", "before", "after", "summary")})

