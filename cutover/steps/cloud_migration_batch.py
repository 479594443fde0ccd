"""Step kind `cloud.migration_batch`: people's mailboxes move by an Exchange hybrid migration
batch (remote moves by the Mailbox Replication Service), pre-staged, watched, completed in a
window, verified, and reversible.

    - id: prestage
      kind: cloud.migration_batch
      params:
        stage: prestage                  # prestage | synced | complete
        batch: phase2-people             # the batch's name: looked up before anything is made
        mailboxes: {destination: cloud}  # the inventory's recipients to move
        source_endpoint: mail.example.org
        target_delivery_domain: exampleorg.mail.onmicrosoft.com
        bad_item_limit: 10               # per mailbox; more corrupt items fail the mailbox
        large_item_limit: 5
    - id: wait-synced
      kind: cloud.migration_batch
      params: {stage: synced, batch: phase2-people}
    - id: complete
      kind: cloud.migration_batch
      params:
        stage: complete
        batch: phase2-people
        window: {days: [sat], start: "06:00", end: "10:00", timezone: Europe/Vienna}
        mailstore: cloud                 # the tenant's mail store (graph) for folder counts
        offboarding: {remote_host: mail.example.org, target_database: DB01,
                      target_delivery_domain: example.org}

Management connectors: `management: {tenant: ..., onprem: ...}` (params `tenant`, `onprem`).

- `prestage`: preview shows the batch (create, add missing mailboxes, raise limits, start a
  stopped batch) and each mailbox joining it. Apply looks the batch up by name first, so a
  crash and `resume` never make a second one: New-MigrationBatch with the CSV of every planned
  mailbox and -AutoStart, never completing. Verify: every mailbox is in the batch and not
  failed. Rollback (nothing moved yet): Stop-MigrationBatch, wait for Stopped,
  Remove-MigrationBatch; refused while a mailbox of the batch is in Exchange Online (roll back
  the completion first: the move back).
- `synced`: changes nothing. Its preview waits (the run holds; `cutover resume` later) until
  every mailbox is Synced, with the ETA from what was watched; a failed mailbox stops the run
  naming it and what to do. Each look is kept in the state DB (`cutover status`).
- `complete`: preview waits for Synced and for the window to open, and reads each mailbox's
  folder counts on premises (Get-MailboxFolderStatistics) into the checkpoint. Apply: the batch
  item runs Complete-MigrationBatch unless the batch is already completing or completed (no
  double completion), each mailbox item watches its mailbox until Completed (failing if the
  window closes first). Verify: every mailbox Completed, a UserMailbox in the tenant, a
  RemoteMailbox on premises, and each mail folder's item count in the tenant's mail store
  (Graph) at least the on-premises count less the items MRS skipped. Rollback: per mailbox an
  offboarding move back (New-MoveRequest -Outbound), watched until Completed, then removed;
  verified by the mailbox being on premises again.

Verification addresses and mailboxes that stay are not touched (see `exo.accepted_domain`,
`exo.connector`, `exo.mail_contact`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cutover.connectors.exchange_management import management
from cutover.errors import NotFound, StepFailed, UsageError
from cutover.parsers.exchange_objects import (
    COMPLETED_STATUSES,
    MigrationUserStatistics,
)
from cutover.steps import migration_state
from cutover.steps.base import Change, Context, Finding, Params, Step, Waiting, register
from cutover.steps.hybrid_support import Window, pause, planned_mailboxes

BATCH_ITEM = "batch"
STOPPABLE = ("Syncing", "Synced", "SyncedWithErrors", "Starting", "Failed", "Created",
             "IncrementalSyncing")


class Offboarding(BaseModel):
    """Where a move back goes (New-MoveRequest -Outbound)."""

    model_config = ConfigDict(extra="forbid")

    remote_host: str
    target_database: str
    target_delivery_domain: str


class MigrationBatchParams(Params):
    stage: Literal["prestage", "synced", "complete"]
    batch: str = Field(max_length=64)
    tenant: str = "tenant"
    onprem: str = "onprem"
    mailboxes: dict[str, str | list[str]] = Field(default_factory=lambda: {
        "destination": "cloud"})
    source_endpoint: str = ""
    target_delivery_domain: str = ""
    bad_item_limit: int | None = 10
    large_item_limit: int | None = 0
    window: Window | None = None
    mailstore: str | None = None
    offboarding: Offboarding | None = None
    #: how often a watched mailbox is looked at while apply or rollback waits
    poll_minutes: float = 5.0


def _users(tenant: Any, batch: str) -> dict[str, MigrationUserStatistics]:
    return {user.address: user for user in tenant.migration_users(batch)}


def _failure(user: MigrationUserStatistics) -> str:
    return f"{user.address}: {user.status}" + (f": {user.error}" if user.error else "")


@register
class CloudMigrationBatch(Step):
    kind = "cloud.migration_batch"
    Params = MigrationBatchParams
    summary = ("Move mailboxes to Exchange Online by a hybrid migration batch: pre-stage, "
               "wait for Synced, complete in a window; roll back by stopping or moving back.")

    def __init__(self) -> None:
        # one apply loop asks the service once per poll, not once per mailbox
        self._seen: tuple[str, datetime, dict[str, MigrationUserStatistics]] | None = None

    # --- shared -----------------------------------------------------------------------------
    def _watch(self, ctx: Context, tenant: Any, batch: str, fresh: bool = False
               ) -> dict[str, MigrationUserStatistics]:
        params: MigrationBatchParams = ctx.params
        now = ctx.now()
        if fresh or self._seen is None or self._seen[0] != batch or \
                now - self._seen[1] >= timedelta(minutes=params.poll_minutes):
            users = _users(tenant, batch)
            migration_state.record(ctx, batch, list(users.values()))
            self._seen = (batch, now, users)
        return self._seen[2]

    def preview(self, ctx: Context) -> list[Change]:
        params: MigrationBatchParams = ctx.params
        return getattr(self, f"_preview_{params.stage}")(ctx, params)

    def apply(self, ctx: Context, change: Change) -> None:
        params: MigrationBatchParams = ctx.params
        getattr(self, f"_apply_{params.stage}")(ctx, params, change)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: MigrationBatchParams = ctx.params
        if changes and all(c.summary.startswith("restore ") for c in changes):
            # the runner verifies a rollback with the inverse changes
            if params.stage == "prestage":
                return self._verify_rolled_back(ctx, params, changes)
            if params.stage == "complete":
                return self._verify_moved_back(ctx, params, changes)
            return []
        return getattr(self, f"_verify_{params.stage}")(ctx, params, changes)

    def rollback(self, ctx: Context, change: Change) -> None:
        params: MigrationBatchParams = ctx.params
        if params.stage == "prestage" and change.item == BATCH_ITEM:
            if change.action == "create":
                self._remove_batch(ctx, params)
            else:
                self._restore_batch(ctx, params, change.before)
        elif params.stage == "complete" and change.item != BATCH_ITEM:
            self._move_back(ctx, params, change.after["address"])
        # a mailbox's prestage item goes with its batch; `synced` changed nothing; a completed
        # batch cannot be un-completed: its mailboxes move back one by one

    def _restore_batch(self, ctx: Context, params: MigrationBatchParams,
                       before: dict[str, Any]) -> None:
        """The batch existed before the step: its limits and a stopped state come back;
        mailboxes the step added stay in it (nothing of theirs has moved)."""
        tenant = management(ctx, params.tenant)
        batch = tenant.migration_batch(params.batch)
        if batch is None:
            return
        if (batch.bad_item_limit, batch.large_item_limit) != (before["bad_item_limit"],
                                                              before["large_item_limit"]):
            tenant.set_migration_batch_limits(params.batch, before["bad_item_limit"],
                                              before["large_item_limit"])
        if before["status"] in ("Stopped", "Created") and batch.status in STOPPABLE:
            tenant.stop_migration_batch(params.batch)

    # --- prestage -----------------------------------------------------------------------------
    def _preview_prestage(self, ctx: Context, params: MigrationBatchParams) -> list[Change]:
        if not params.source_endpoint or not params.target_delivery_domain:
            raise UsageError(f"step {ctx.step_id}: stage prestage needs source_endpoint and "
                             "target_delivery_domain")
        tenant = management(ctx, params.tenant)
        wanted = planned_mailboxes(ctx, params.mailboxes)
        batch = tenant.migration_batch(params.batch)
        settings = {"batch": params.batch, "source_endpoint": params.source_endpoint,
                    "target_delivery_domain": params.target_delivery_domain,
                    "bad_item_limit": params.bad_item_limit,
                    "large_item_limit": params.large_item_limit}
        if batch is None:
            changes = [Change(BATCH_ITEM, "create", None, {**settings, "users": wanted},
                              f"create batch {params.batch} of {len(wanted)} mailbox(es) from "
                              f"{params.source_endpoint}, started, not completed")]
            return changes + [self._joins(params, a) for a in wanted]
        present = self._watch(ctx, tenant, params.batch, fresh=True)
        missing = [a for a in wanted if a not in present]
        failed = [u for a, u in present.items() if a in wanted and u.failed]
        now = {"batch": params.batch, "status": batch.status,
               "bad_item_limit": batch.bad_item_limit,
               "large_item_limit": batch.large_item_limit}
        reasons = []
        if missing:
            reasons.append(f"add {len(missing)} mailbox(es)")
        if (batch.bad_item_limit, batch.large_item_limit) != (params.bad_item_limit,
                                                              params.large_item_limit):
            reasons.append(f"limits {batch.bad_item_limit}/{batch.large_item_limit} -> "
                           f"{params.bad_item_limit}/{params.large_item_limit}")
        if batch.status in ("Stopped", "Created") or failed:
            reasons.append("start it" if not failed else f"retry {len(failed)} failed "
                                                         "mailbox(es)")
        if not reasons:
            ctx.log(f"batch {params.batch}: {batch.status}, {len(present)} mailbox(es)")
            return []
        changes = [Change(BATCH_ITEM, "update", now, {**settings, "users": wanted},
                          f"batch {params.batch} ({batch.status}): {', '.join(reasons)}")]
        return changes + [self._joins(params, a) for a in missing]

    def _joins(self, params: MigrationBatchParams, address: str) -> Change:
        return Change(address, "create", None,
                      {"batch": params.batch, "address": address, "location": "onprem"},
                      f"{address}: joins batch {params.batch} (pre-staged, not completed)")

    def _apply_prestage(self, ctx: Context, params: MigrationBatchParams,
                        change: Change) -> None:
        tenant = management(ctx, params.tenant)
        if change.item == BATCH_ITEM:
            self._ensure_batch(ctx, tenant, change.after)
            return
        users = self._watch(ctx, tenant, params.batch)
        if change.after["address"] not in users:
            users = self._watch(ctx, tenant, params.batch, fresh=True)
        if change.after["address"] not in users:
            raise StepFailed(f"{change.after['address']} is not in batch {params.batch}")

    def _ensure_batch(self, ctx: Context, tenant: Any, wanted: dict[str, Any]) -> None:
        """Idempotent: the batch is looked up by name before anything is made."""
        name = wanted["batch"]
        batch = tenant.migration_batch(name)
        if batch is None:
            tenant.new_migration_batch(
                name, wanted["users"], source_endpoint=wanted["source_endpoint"],
                target_delivery_domain=wanted["target_delivery_domain"],
                bad_item_limit=wanted["bad_item_limit"],
                large_item_limit=wanted["large_item_limit"], complete_after=None,
                auto_start=True)
            ctx.log(f"batch {name} created with {len(wanted['users'])} mailbox(es), started")
            return
        present = _users(tenant, name)
        missing = [a for a in wanted["users"] if a not in present]
        if missing:
            tenant.add_migration_users(name, missing)
        if (batch.bad_item_limit, batch.large_item_limit) != (wanted["bad_item_limit"],
                                                              wanted["large_item_limit"]):
            tenant.set_migration_batch_limits(name, wanted["bad_item_limit"],
                                              wanted["large_item_limit"])
        if batch.status in ("Stopped", "Created") or any(
                u.failed for a, u in present.items() if a in wanted["users"]):
            tenant.start_migration_batch(name)

    def _verify_prestage(self, ctx: Context, params: MigrationBatchParams,
                         changes: list[Change]) -> list[Finding]:
        tenant = management(ctx, params.tenant)
        if tenant.migration_batch(params.batch) is None:
            return [Finding(BATCH_ITEM, f"batch {params.batch} does not exist")]
        users = self._watch(ctx, tenant, params.batch, fresh=True)
        findings = []
        for address in planned_mailboxes(ctx, params.mailboxes):
            user = users.get(address)
            if user is None:
                findings.append(Finding(address, f"not in batch {params.batch}"))
            elif user.failed:
                findings.append(Finding(address, _failure(user) + _remedy(user)))
        return findings

    def _remove_batch(self, ctx: Context, params: MigrationBatchParams) -> None:
        tenant = management(ctx, params.tenant)
        batch = tenant.migration_batch(params.batch)
        if batch is None:
            return
        moved = [a for a in _users(tenant, params.batch) if tenant.mailbox(a) is not None]
        if moved:
            raise StepFailed(f"batch {params.batch}: {len(moved)} mailbox(es) are in Exchange "
                             f"Online ({moved[0]}...): roll back the completion step first "
                             "(it moves them back)")
        if batch.status in STOPPABLE:
            tenant.stop_migration_batch(params.batch)
            while (batch := tenant.migration_batch(params.batch)) is not None and \
                    batch.status == "Stopping":
                pause(ctx, params.poll_minutes * 60, f"batch {params.batch} stopping")
        tenant.remove_migration_batch(params.batch)
        ctx.log(f"batch {params.batch} stopped and removed; nothing moved")

    def _verify_rolled_back(self, ctx: Context, params: MigrationBatchParams,
                            changes: list[Change]) -> list[Finding]:
        tenant = management(ctx, params.tenant)
        onprem = management(ctx, params.onprem)
        findings = []
        for change in changes:
            if change.item == BATCH_ITEM:
                exists = tenant.migration_batch(params.batch) is not None
                if change.after is None and exists:
                    findings.append(Finding(BATCH_ITEM, f"batch {params.batch} still exists"))
                elif change.after is not None and not exists:
                    findings.append(Finding(BATCH_ITEM, f"batch {params.batch} is gone"))
            elif onprem.mailbox(change.item) is None:
                findings.append(Finding(change.item, "no longer a mailbox on premises"))
        return findings

    # --- synced -----------------------------------------------------------------------------
    def _batch_users(self, ctx: Context, params: MigrationBatchParams, tenant: Any
                     ) -> dict[str, MigrationUserStatistics]:
        if tenant.migration_batch(params.batch) is None:
            raise NotFound(f"batch {params.batch} does not exist: run the prestage step first")
        return self._watch(ctx, tenant, params.batch, fresh=True)

    def _wait_until_synced(self, ctx: Context, params: MigrationBatchParams,
                           users: dict[str, MigrationUserStatistics]) -> None:
        failed = [u for u in users.values() if u.failed]
        if failed:
            raise StepFailed(f"batch {params.batch}: {len(failed)} mailbox(es) failed, first "
                             f"{_failure(failed[0])}{_remedy(failed[0])}")
        pending = [u for u in users.values() if not u.synced]
        if not pending:
            return
        progress = migration_state.batch_progress(ctx.state, ctx.plan_name, ctx.step_id) \
            if migration_state.may_record(ctx) else None
        etas = [m["eta"] for m in (progress or {}).get("mailboxes", []) if m["eta"]]
        poll = ctx.now() + timedelta(minutes=max(params.poll_minutes, 15))
        until = min([poll] + [datetime.fromisoformat(max(etas))] if etas else [poll])
        until = max(until, ctx.now() + timedelta(minutes=params.poll_minutes))
        average = sum(u.percent for u in users.values()) // max(1, len(users))
        raise Waiting(until, f"batch {params.batch}: {len(pending)} of {len(users)} "
                             f"mailbox(es) still syncing ({average}% overall)")

    def _preview_synced(self, ctx: Context, params: MigrationBatchParams) -> list[Change]:
        tenant = management(ctx, params.tenant)
        users = self._batch_users(ctx, params, tenant)
        self._wait_until_synced(ctx, params, users)
        ctx.log(f"batch {params.batch}: all {len(users)} mailbox(es) synced")
        return []

    def _verify_synced(self, ctx: Context, params: MigrationBatchParams,
                       changes: list[Change]) -> list[Finding]:
        tenant = management(ctx, params.tenant)
        users = self._watch(ctx, tenant, params.batch, fresh=True)
        if not users:
            return [Finding(BATCH_ITEM, f"batch {params.batch} has no mailboxes")]
        return [Finding(u.address, f"{u.status} ({u.percent}%), not synced" +
                        (f": {u.error}" if u.error else ""))
                for u in users.values() if not u.synced]

    # --- complete -----------------------------------------------------------------------------
    def _preview_complete(self, ctx: Context, params: MigrationBatchParams) -> list[Change]:
        tenant = management(ctx, params.tenant)
        onprem = management(ctx, params.onprem)
        users = self._batch_users(ctx, params, tenant)
        todo = sorted(a for a, u in users.items() if u.status not in COMPLETED_STATUSES)
        if not todo:
            ctx.log(f"batch {params.batch}: every mailbox completed")
            return []
        batch = tenant.migration_batch(params.batch)
        if batch.status not in ("Completing",):
            self._wait_until_synced(ctx, params, users)
            self._wait_for_window(ctx, params)
        changes = [Change(BATCH_ITEM, "update", {"batch": params.batch, "status": batch.status},
                          {"batch": params.batch, "status": "Completed"},
                          f"complete batch {params.batch} ({len(todo)} mailbox(es))")]
        for address in todo:
            folders = {f.path: f.items for f in onprem.folder_statistics(address)
                       if f.container_class in ("", "IPF.Note")}
            changes.append(Change(
                address, "update",
                {"batch": params.batch, "address": address, "location": "onprem",
                 "folders": folders},
                {"batch": params.batch, "address": address, "location": "cloud"},
                f"{address}: completes; Outlook follows autodiscover to Exchange Online"))
        return changes

    def _wait_for_window(self, ctx: Context, params: MigrationBatchParams) -> None:
        if params.window is None:
            return
        if params.window.open_at(ctx.now()) is None:
            raise Waiting(params.window.next_start(ctx.now()),
                          f"batch {params.batch} completes in the window "
                          f"{params.window.describe()}")

    def _apply_complete(self, ctx: Context, params: MigrationBatchParams,
                        change: Change) -> None:
        tenant = management(ctx, params.tenant)
        if change.item == BATCH_ITEM:
            batch = tenant.migration_batch(params.batch)
            if batch is None:
                raise StepFailed(f"batch {params.batch} does not exist")
            if batch.status in ("Completing", "Completed", "CompletedWithErrors") or any(
                    u.status in ("Completing", *COMPLETED_STATUSES)
                    for u in _users(tenant, params.batch).values()):
                ctx.log(f"batch {params.batch}: completion already requested ({batch.status})")
                return
            self._require_window(ctx, params)
            tenant.complete_migration_batch(params.batch)
            ctx.log(f"batch {params.batch}: Complete-MigrationBatch")
            return
        address = change.after["address"]
        while True:
            user = self._watch(ctx, tenant, params.batch).get(address)
            if user is None:
                raise StepFailed(f"{address} is not in batch {params.batch}")
            if user.completed:
                return
            if user.failed:
                raise StepFailed(_failure(user) + _remedy(user))
            self._require_window(ctx, params, f"{address} is still {user.status} "
                                              f"({user.percent}%)")
            pause(ctx, params.poll_minutes * 60, f"{address} {user.status}")

    def _require_window(self, ctx: Context, params: MigrationBatchParams,
                        what: str = "") -> None:
        if params.window is not None and params.window.open_at(ctx.now()) is None:
            raise StepFailed(f"batch {params.batch}: the window {params.window.describe()} is "
                             "closed" + (f" and {what}" if what else "") +
                             "; resume in the next window")

    def _verify_complete(self, ctx: Context, params: MigrationBatchParams,
                         changes: list[Change]) -> list[Finding]:
        tenant = management(ctx, params.tenant)
        onprem = management(ctx, params.onprem)
        users = self._watch(ctx, tenant, params.batch, fresh=True)
        store = ctx.connector("mailstores", params.mailstore) if params.mailstore else None
        findings = []
        for change in changes:
            if change.item == BATCH_ITEM:
                continue
            address = change.after["address"]
            user = users.get(address)
            if user is None or not user.completed:
                status = user.status if user else "not in the batch"
                findings.append(Finding(address, f"not completed ({status})"))
                continue
            if tenant.mailbox(address) is None:
                findings.append(Finding(address, "no mailbox in Exchange Online"))
            remote = onprem.remote_mailbox(address)
            if remote is None:
                findings.append(Finding(address, "not a RemoteMailbox on premises"))
            if store is not None:
                findings += _compare_folders(store, address, change.before.get("folders", {}),
                                             user.items_skipped)
        return findings

    def _move_back(self, ctx: Context, params: MigrationBatchParams, address: str) -> None:
        tenant = management(ctx, params.tenant)
        if tenant.mailbox(address) is None:
            return  # not (or no longer) in Exchange Online
        if params.offboarding is None:
            raise StepFailed(f"{address}: moving a completed mailbox back needs params "
                             "offboarding: {remote_host, target_database, "
                             "target_delivery_domain}")
        request = tenant.move_request(address)
        if request is None:
            tenant.new_outbound_move_request(
                address, remote_host=params.offboarding.remote_host,
                target_database=params.offboarding.target_database,
                target_delivery_domain=params.offboarding.target_delivery_domain,
                bad_item_limit=params.bad_item_limit)
            ctx.log(f"{address}: New-MoveRequest -Outbound to {params.offboarding.remote_host}")
        while not (request := tenant.move_request(address)).completed:
            if request.failed:
                raise StepFailed(f"{address}: the move back failed ({request.status})")
            pause(ctx, params.poll_minutes * 60, f"{address} moving back ({request.percent}%)")
        tenant.remove_move_request(address)

    def _verify_moved_back(self, ctx: Context, params: MigrationBatchParams,
                           changes: list[Change]) -> list[Finding]:
        tenant = management(ctx, params.tenant)
        onprem = management(ctx, params.onprem)
        findings = []
        for change in changes:
            if change.item == BATCH_ITEM:
                continue
            address = change.after["address"]
            if onprem.mailbox(address) is None:
                findings.append(Finding(address, "not a mailbox on premises again"))
            if tenant.mailbox(address) is not None:
                findings.append(Finding(address, "still a mailbox in Exchange Online"))
        return findings

    # --- runbook --------------------------------------------------------------------------
    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-MigrationBatch -Identity {params.batch} | Format-List Status,TotalCount,"
                "SyncedCount,FinalizedCount,FailedCount",
                f"Get-MigrationUser -BatchId {params.batch} | Get-MigrationUserStatistics | "
                "Format-Table Identity,Status,PercentageComplete,SkippedItemCount,Error"]

    def manual_rollback(self, params: Any) -> list[str]:
        if params.stage == "prestage":
            return [f"Stop-MigrationBatch -Identity {params.batch}; then Remove-MigrationBatch "
                    f"-Identity {params.batch} (nothing has moved before completion)"]
        if params.stage == "complete":
            return ["per mailbox: New-MoveRequest -Identity <address> -Outbound "
                    "-RemoteHostName <on-premises MRS proxy> -RemoteTargetDatabase <database> "
                    "-TargetDeliveryDomain <on-premises domain> -RemoteCredential (Get-Credential)"
                    "; when Completed, Remove-MoveRequest <address>"]
        return ["Nothing to undo: this stage waits and changes nothing."]


def _remedy(user: MigrationUserStatistics) -> str:
    if "BadItems" in user.error:
        return (" -> raise bad_item_limit in the plan (or New-MailboxRepairRequest on "
                "premises), then `cutover run` the prestage step again")
    if "LargeItems" in user.error:
        return " -> raise large_item_limit in the plan, then run the prestage step again"
    return ""


def _folder_name(path: str) -> str:
    """Get-MailboxFolderStatistics' `/Inbox` or `/Projects/2024` as a mail store folder name."""
    name = path.strip("/")
    return "INBOX" if name.lower() == "inbox" else name.replace("Inbox/", "INBOX/")


def _compare_folders(store: Any, address: str, onprem: dict[str, int], skipped: int
                     ) -> list[Finding]:
    """Each on-premises mail folder's count is in the tenant, less what MRS said it skipped
    (more is fine: mail kept arriving)."""
    with store.open(address) as session:
        counts = {folder.name: folder.messages for folder in session.folders()
                  if folder.selectable}
    missing = {path: items - counts.get(_folder_name(path), 0) for path, items in onprem.items()
               if items > counts.get(_folder_name(path), 0)}
    if sum(missing.values()) <= skipped:
        return []
    worst = max(missing, key=missing.get)
    return [Finding(address, f"{sum(missing.values())} item(s) missing in Exchange Online, "
                             f"MRS skipped {skipped} (folder {worst}: "
                             f"{onprem[worst]} on premises, "
                             f"{counts.get(_folder_name(worst), 0)} in the tenant)")]
