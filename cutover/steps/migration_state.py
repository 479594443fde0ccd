"""What the migration batch steps watched, per mailbox, in the state DB; progress with an ETA.

Tables (schema set "cutover.migration", applied to the runner's State when first written):
- migration_mailboxes: per plan, batch and mailbox, the latest Get-MigrationUserStatistics seen
  (status, percent, items, skipped items, bytes, error) with when it was seen, and the first
  observation of the current sync (for the rate the ETA is computed from);
- migration_steps: which step watches which batch (so status can answer per step).

`batch_progress(state, plan, step_id)` is what `cutover status` shows for a batch step: one row
per mailbox with its ETA, plus a summary. Reading never creates the tables: a workspace where no
batch ran answers with nothing.

Observations are written by apply, verify and rollback (the run's verbs), and by a preview only
in the process that holds the workspace lock: a preview that waits for Synced is how a run
watches, while `plan show` (no lock) leaves the state untouched.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from cutover.parsers.exchange_objects import MigrationUserStatistics

MIGRATIONS = Migrations("cutover.migration")
SYNCED_PERCENT = 95  # MRS reports 95% once the initial copy is done and it keeps in sync


@MIGRATIONS()
def m001_migration_mailboxes(db: sqlite_utils.Database) -> None:
    db["migration_mailboxes"].create({
        "plan": str, "batch": str, "address": str, "status": str, "percent": int,
        "items_total": int, "items_synced": int, "items_skipped": int, "bytes_total": int,
        "bytes_transferred": int, "error": str, "observed": str, "first_observed": str,
        "first_percent": int, "first_bytes": int}, pk=("plan", "batch", "address"))
    db["migration_steps"].create({"plan": str, "step_id": str, "batch": str},
                                 pk=("plan", "step_id"))


def _iso(moment: datetime) -> str:
    from cutover.state import iso

    return iso(moment)


def may_record(ctx: Any) -> bool:
    """Apply, verify and rollback record; a preview only inside a locked run."""
    if ctx.state is None:
        return False
    if not ctx.dry_run:
        return True
    try:
        row = ctx.state.db.execute("SELECT pid FROM lock WHERE id = 1").fetchone()
    except Exception:  # noqa: BLE001 - an in-memory preview state without tables
        return False
    return row is not None and row[0] == os.getpid()


def record(ctx: Any, batch: str, users: list[MigrationUserStatistics]) -> None:
    """Keep what was just seen of `users` (no-op where recording is not allowed)."""
    if not may_record(ctx):
        return
    state = ctx.state
    state.migrate(MIGRATIONS)
    now = _iso(ctx.now())
    table = state.db["migration_mailboxes"]
    existing = {row["address"]: row for row in table.rows_where(
        "plan = ? AND batch = ?", [ctx.plan_name, batch])}
    rows = []
    for user in users:
        before = existing.get(user.address)
        restarted = before is None or user.percent < (before["percent"] or 0) or \
            before["status"] in ("Failed", "Stopped", "Queued")
        rows.append({
            "plan": ctx.plan_name, "batch": batch, "address": user.address,
            "status": user.status, "percent": user.percent, "items_total": user.items_total,
            "items_synced": user.items_synced, "items_skipped": user.items_skipped,
            "bytes_total": user.bytes_total, "bytes_transferred": user.bytes_transferred,
            "error": user.error or None, "observed": now,
            "first_observed": now if restarted else before["first_observed"],
            "first_percent": user.percent if restarted else before["first_percent"],
            "first_bytes": user.bytes_transferred if restarted else before["first_bytes"]})
    with state.atomic():
        table.upsert_all(rows, pk=("plan", "batch", "address"))
        state.db["migration_steps"].upsert({"plan": ctx.plan_name, "step_id": ctx.step_id,
                                            "batch": batch}, pk=("plan", "step_id"))


def eta(row: dict[str, Any]) -> datetime | None:
    """When the initial sync should reach Synced, from the rate between the first and the
    latest observation (bytes when known, else percent); None when done or unknown."""
    from cutover.state import parse_iso

    if row["status"] not in ("Syncing", "Queued", "IncrementalSyncing") or \
            not row["first_observed"]:
        return None
    first, last = parse_iso(row["first_observed"]), parse_iso(row["observed"])
    elapsed = (last - first).total_seconds()
    if elapsed <= 0:
        return None
    if row["bytes_total"] and row["bytes_transferred"] > (row["first_bytes"] or 0):
        rate = (row["bytes_transferred"] - (row["first_bytes"] or 0)) / elapsed
        remaining = (row["bytes_total"] - row["bytes_transferred"]) / rate
    elif row["percent"] > (row["first_percent"] or 0):
        rate = (row["percent"] - (row["first_percent"] or 0)) / elapsed
        remaining = max(0, SYNCED_PERCENT - row["percent"]) / rate
    else:
        return None
    return last + timedelta(seconds=remaining)


def _has_tables(state: Any) -> bool:
    return "migration_mailboxes" in state.db.table_names()


def batch_of_step(state: Any, plan: str, step_id: str) -> str | None:
    if not _has_tables(state):
        return None
    rows = list(state.db["migration_steps"].rows_where("plan = ? AND step_id = ?",
                                                       [plan, step_id]))
    return rows[0]["batch"] if rows else None


def batch_progress(state: Any, plan: str, step_id: str) -> dict[str, Any] | None:
    """Per-mailbox progress of the batch `step_id` watches, with ETAs, or None (not a batch
    step, or nothing watched yet). JSON-ready.

        {"batch": "phase2-people", "observed": "...", "counts": {"Synced": 50, "Failed": 1},
         "eta": "..." | None, "mailboxes": [{"address", "status", "percent", "items_synced",
         "items_total", "items_skipped", "bytes_transferred", "bytes_total", "error",
         "observed", "eta"}, ...]}
    """
    batch = batch_of_step(state, plan, step_id)
    if batch is None:
        return None
    mailboxes = []
    for row in state.db["migration_mailboxes"].rows_where(
            "plan = ? AND batch = ?", [plan, batch], order_by="address"):
        expected = eta(row)
        mailboxes.append({key: row[key] for key in (
            "address", "status", "percent", "items_synced", "items_total", "items_skipped",
            "bytes_transferred", "bytes_total", "error", "observed")} |
            {"eta": _iso(expected) if expected else None})
    etas = [m["eta"] for m in mailboxes if m["eta"]]
    return {"batch": batch, "observed": max((m["observed"] for m in mailboxes), default=None),
            "counts": dict(Counter(m["status"] for m in mailboxes)),
            "eta": max(etas) if etas else None, "mailboxes": mailboxes}


def progress(state: Any, plan: str | None = None) -> dict[str, dict[str, Any]]:
    """`batch_progress` of every batch step (of `plan`, or of every plan), by "plan/step"."""
    if not _has_tables(state):
        return {}
    where, args = ("plan = ?", [plan]) if plan else (None, None)
    result = {}
    for row in state.db["migration_steps"].rows_where(where, args, order_by="plan, step_id"):
        found = batch_progress(state, row["plan"], row["step_id"])
        if found is not None:
            result[f"{row['plan']}/{row['step_id']}"] = found
    return result
