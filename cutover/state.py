"""The state store: one SQLite file (WAL) per workspace, through sqlite-utils.

sqlite-utils is imported when something is written or migrated: what `cutover status` and
`cutover log` read (a big batch's items, the audit log) is read with plain SQL, so those
commands start without it (~40 ms).

Tables (schema set "cutover.state"; other modules add their own named sets):
- runs:        one row per `run`/`resume` invocation target: plan, options, status
- steps:       per plan and step id: status (pending/running/done/failed/rolled_back/waiting)
- checkpoints: per plan and step: the changes (with `before`, the rollback payload) and the hash
               of the reviewed preview, committed before the first change is applied
- items:       per plan, step and change item: pending/done/rolled_back
- events:      the append-only audit log (who, when, what, before/after)
- holds:       persisted "not before" times (DNS TTL waits)
- lock:        one row while a run/resume/rollback holds the workspace

The state never holds a secret: changes carry no credentials (step kinds guarantee it), and
events are written from changes and messages only.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover.errors import StateUnusable, WorkspaceLocked
from cutover.migrations import build_migrations, migrations_applied

if TYPE_CHECKING:
    import sqlite_utils
    from sqlite_utils.migrations import Migrations

APPLICATION_ID = 0x43555430  # "CUT0": marks the file as ours; a foreign DB is refused
MIGRATION_SET = "cutover.state"


def m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create({"id": int, "plan": str, "plan_path": str, "options": str, "status": str,
                       "started": str, "finished": str}, pk="id")
    db["steps"].create({"plan": str, "step_id": str, "kind": str, "status": str,
                        "updated": str, "wait_until": str, "message": str},
                       pk=("plan", "step_id"))
    db["checkpoints"].create({"plan": str, "step_id": str, "created": str, "preview_hash": str,
                              "changes": str}, pk=("plan", "step_id"))
    db["items"].create({"plan": str, "step_id": str, "item": str, "position": int,
                        "status": str, "updated": str}, pk=("plan", "step_id", "item"))
    db["events"].create({"id": int, "at": str, "user": str, "host": str, "plan": str,
                         "step_id": str, "item": str, "event": str, "before": str,
                         "after": str, "message": str}, pk="id")
    db["holds"].create({"key": str, "until": str, "reason": str}, pk="key")
    db["lock"].create({"id": int, "pid": int, "host": str, "command": str, "acquired": str},
                      pk="id")


def m002_settings(db: sqlite_utils.Database) -> None:
    db["settings"].create({"key": str, "value": str}, pk="key")


def m003_checkpoint_params(db: sqlite_utils.Database) -> None:
    # the params a step was applied with: rollback and resume use them, not a plan edited since
    db["checkpoints"].add_column("params", str)


def m004_checkpoint_covered(db: sqlite_utils.Database) -> None:
    # the for_each items a step was run over: items the inventory gains later re-open it
    db["checkpoints"].add_column("covered", str)


STATE_MIGRATION_STEPS = (m001_initial, m002_settings, m003_checkpoint_params,
                         m004_checkpoint_covered)


@cache
def state_migrations() -> Migrations:
    """The state's own migration set, built when one may run."""
    return build_migrations(MIGRATION_SET, STATE_MIGRATION_STEPS)


def _migrated(conn: sqlite3.Connection) -> bool:
    return migrations_applied(conn, MIGRATION_SET, STATE_MIGRATION_STEPS)


def _rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    """Rows as dicts, column name -> value in table order (as sqlite-utils returns them)."""
    cursor = conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def remaining_wait(row: dict[str, Any], now: datetime) -> float | None:
    """Seconds a waiting step (a row of `steps`) has still to wait at `now`."""
    if not row.get("wait_until"):
        return None
    return max(0.0, (parse_iso(row["wait_until"]) - now).total_seconds())


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


class Holds:
    """Persisted "not before" times, keyed by what they protect ("dns:zone:name:type")."""

    def __init__(self, state: State):
        self._state = state

    def set(self, key: str, until: datetime, reason: str) -> None:
        self._state.db["holds"].upsert({"key": key, "until": iso(until), "reason": reason},
                                       pk="key")

    def get(self, key: str) -> tuple[datetime, str] | None:
        rows = self._state.rows("SELECT * FROM holds WHERE key = ?", [key])
        if not rows:
            # a hold on a whole zone's MX is written as "dns:zone:*:MX"
            parts = key.split(":")
            if len(parts) == 4 and parts[2] != "*":
                rows = self._state.rows("SELECT * FROM holds WHERE key = ?",
                                        [":".join([parts[0], parts[1], "*", parts[3]])])
        if not rows:
            return None
        return parse_iso(rows[0]["until"]), rows[0]["reason"]

    def all(self) -> list[dict[str, Any]]:
        return self._state.rows("SELECT * FROM holds")


class State:
    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path
        self.holds = Holds(self)
        #: a snapshot (`open_snapshot`): writes go to memory and are lost, by design
        self.read_only = False
        #: tables the check on open left out, checked by `check_table` before they are read
        self.unchecked: frozenset[str] = frozenset()

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The state through sqlite-utils (tables, upserts, atomic), on the same connection."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return _rows(self.conn, sql, params)

    @classmethod
    def open(cls, path: Path | str, create: bool = True) -> State:
        path = Path(path)
        if not path.exists() and not create:
            raise StateUnusable(f"no state database at {path}")
        conn = None
        created = str(path) != ":memory:" and not path.exists()
        created_dir = created and not path.parent.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # shared with the threads that preview a step's items side by side (the runner's
            # `preview_workers`): SQLite serializes the calls, the previews only read
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None,
                                   check_same_thread=False)
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            if app_id != APPLICATION_ID and tables:
                raise StateUnusable(f"{path} is not a cutover state database")
            if tables and str(path) != ":memory:":
                _check_integrity(conn, path)
            if not tables:
                # 16 KiB pages (before WAL mode fixes the size): a 50,000-recipient snapshot
                # commits a quarter as many pages as with SQLite's 4 KiB default
                conn.execute("PRAGMA page_size = 16384")
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a checkpoint committed before a DNS or mail write survives a power loss
            conn.execute("PRAGMA synchronous=FULL")
            state = cls(conn, path)
            state.migrate_state()
            return state
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if created:  # a refused open leaves no empty database behind
                for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                    leftover.unlink(missing_ok=True)
                if created_dir:
                    with suppress(OSError):
                        path.parent.rmdir()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _unusable(path, exc) from None
            if isinstance(exc, PermissionError):
                raise StateUnusable(f"cannot write the state database at {path}") from None
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise StateUnusable(f"no space left on device for the state database at "
                                    f"{path}: free some space, then run the command "
                                    "again") from None
            if isinstance(exc, OSError):
                raise StateUnusable(f"cannot open the state database at {path}: "
                                    f"{exc.strerror}") from None
            raise

    @classmethod
    def open_snapshot(cls, path: Path | str, copy: bool = True) -> State:
        """A read-only view of the state at `path` (an empty state when there is none), for
        previews, status and reports. The file is opened immutable (or read-only through an
        existing WAL), so nothing is written beside it, whatever the workspace's permissions.
        With `copy` (previews: steps may create their tables) it is copied into memory and
        migrated there; without, it is read in place (reports of a big inventory)."""
        path = Path(path)
        if not copy and path.exists():
            wal = path.with_name(path.name + "-wal")
            mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
            try:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True,
                                       isolation_level=None, check_same_thread=False)
                if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                    raise StateUnusable(f"{path} is not a cutover state database")
                _check_integrity(conn, path, _tables(conn) - CHECKED_WHEN_READ)
            except sqlite3.DatabaseError as exc:
                raise _unusable(path, exc) from None
            state = cls(conn, path)
            state.read_only = True
            state.unchecked = CHECKED_WHEN_READ
            return state
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path.exists():
            try:
                # Without a -wal file the database is all in the main file: open it immutable,
                # so not even a -shm is created. With one (a writer is open, or crashed), read
                # through it read-only: both side files exist already, nothing new is written.
                wal = path.with_name(path.name + "-wal")
                mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
                source = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
                try:
                    if source.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID \
                            and source.execute("SELECT count(*) FROM sqlite_master"
                                               ).fetchone()[0]:
                        raise StateUnusable(f"{path} is not a cutover state database")
                    _check_integrity(source, path)
                    source.backup(memory)
                finally:
                    source.close()
            except sqlite3.DatabaseError as exc:
                raise _unusable(path, exc) from None
        state = cls(memory, path)
        state.read_only = True
        state.migrate_state()  # in memory only: an older file still reads
        return state

    def migrate_state(self) -> None:
        """Apply the state's own migrations that have not run (none, usually: then
        sqlite-utils is not even imported)."""
        if not _migrated(self.conn):
            self.migrate(state_migrations())

    def migrate(self, migrations: Migrations, db: sqlite_utils.Database | None = None) -> None:
        """Apply `migrations` to this state (through `db`, a connection of `shared_connection`,
        when the caller is not on the thread that opened it)."""
        try:
            migrations.apply(db if db is not None else self.db)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc):
                raise StateUnusable(f"cannot write the state database at {self.path}") from None
            raise

    def check_table(self, table: str) -> None:
        """Before a table the check on open left out is read: its pages and its indexes'
        checked now (StateUnusable when damaged), once."""
        if table in self.unchecked:
            try:
                _check_integrity(self.conn, self.path, [table])
            except sqlite3.DatabaseError as exc:
                raise _unusable(self.path, exc) from None
            self.unchecked -= {table}

    def close(self) -> None:
        self.conn.close()

    def shared_connection(self) -> sqlite3.Connection:
        """A connection to this state that may move between threads (one at a time), for the
        tables a connector is handed (the Graph UID map). A snapshot shares its own."""
        if self.read_only or str(self.path) == ":memory:":
            return self.conn
        return sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                               check_same_thread=False)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def now(self) -> datetime:
        """The workspace's clock: real time, moved forward when a simulated clock skips a wait
        (the demo's `clock: simulated`)."""
        return utcnow() + timedelta(seconds=float(self.setting("clock_offset_s", "0") or 0))

    def advance_clock(self, seconds: float) -> None:
        offset = float(self.setting("clock_offset_s", "0") or 0)
        self.set_setting("clock_offset_s", str(offset + max(0.0, seconds)))

    # --- settings ---------------------------------------------------------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        self.db["settings"].upsert({"key": key, "value": value}, pk="key")

    # --- the lock ------------------------------------------------------------------------
    def acquire_lock(self, command: str) -> None:
        """One run/resume/rollback per workspace. A lock left by a dead process on this host
        is stale and taken over; a lock held elsewhere is refused."""
        host = socket.gethostname()
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            raise WorkspaceLocked("another cutover process is writing this workspace") from None
        try:
            row = conn.execute("SELECT pid, host, command, acquired FROM lock WHERE id = 1")
            held = row.fetchone()
            if held is not None and not _lock_is_stale(held[0], held[1], host):
                raise WorkspaceLocked(f"workspace is locked by `{held[2]}` (pid {held[0]} on "
                                      f"{held[1]} since {held[3]}); wait for it to finish")
            conn.execute("INSERT OR REPLACE INTO lock (id, pid, host, command, acquired) "
                         "VALUES (1, ?, ?, ?, ?)", (os.getpid(), host, command, iso(utcnow())))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def release_lock(self) -> None:
        self.conn.execute("DELETE FROM lock WHERE id = 1 AND pid = ?", (os.getpid(),))

    def holds_lock(self) -> bool:
        """Whether this process holds the workspace lock (a read-only snapshot never does)."""
        if self.read_only:
            return False
        row = self.conn.execute("SELECT pid FROM lock WHERE id = 1").fetchone()
        return row is not None and row[0] == os.getpid()

    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the workspace lock (pid, host, command, acquired), and whether it is
        provably stale (a dead process on this host)."""
        rows = self.rows("SELECT * FROM lock WHERE id = 1")
        if not rows:
            return None
        held = rows[0]
        held.pop("id", None)
        held["stale"] = _lock_is_stale(held["pid"], held["host"], socket.gethostname()) and \
            held["pid"] != os.getpid()
        return held

    def clear_lock(self, force: bool = False) -> dict[str, Any] | None:
        """Remove a lock its holder can no longer release. Without `force` only a stale one;
        with it any (the holder on another host, a pid reused by another process). Audited."""
        held = self.lock_holder()
        if held is None:
            return None
        if not held["stale"] and not force:
            raise WorkspaceLocked(f"workspace is locked by `{held['command']}` (pid "
                                  f"{held['pid']} on {held['host']} since {held['acquired']}); "
                                  "if that process is gone for good: cutover unlock --force")
        with self.db.atomic():
            self.db.execute("DELETE FROM lock WHERE id = 1")
            self.record_event("lock-cleared", message=f"lock of `{held['command']}` (pid "
                              f"{held['pid']} on {held['host']} since {held['acquired']})"
                              + (" cleared with --force" if force else " was stale"))
        return held

    # --- runs and steps ---------------------------------------------------------------------
    def start_run(self, plan: str, plan_path: str, options: dict[str, Any]) -> int:
        return self.db["runs"].insert({"plan": plan, "plan_path": plan_path,
                                       "options": _json(options), "status": "running",
                                       "started": iso(utcnow())}).last_pk

    def finish_run(self, run_id: int, status: str) -> None:
        with self.db.atomic():
            self.db["runs"].update(run_id, {"status": status, "finished": iso(utcnow())})
            if status == "finished":
                self.supersede_runs(self.db["runs"].get(run_id)["plan"], keep=run_id)

    def supersede_runs(self, plan: str, keep: int | None = None) -> None:
        """Earlier interrupted runs of `plan` are moot once none of its steps is left
        mid-apply: resume must not replay them."""
        unsettled = self.db.execute(
            "SELECT COUNT(*) FROM steps WHERE plan = ? AND status IN ('running', 'failed')",
            [plan]).fetchone()[0]
        if not unsettled:
            self.db.execute("UPDATE runs SET status = 'superseded' WHERE plan = ? AND "
                            "id != ? AND status NOT IN ('finished', 'superseded')",
                            [plan, keep if keep is not None else -1])

    def unfinished_run(self) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM runs WHERE status NOT IN ('finished', 'superseded') "
                         "ORDER BY id desc LIMIT 1")
        return rows[0] if rows else None

    def step(self, plan: str, step_id: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM steps WHERE plan = ? AND step_id = ?", [plan, step_id])
        return rows[0] if rows else None

    def step_status(self, plan: str, step_id: str) -> str:
        row = self.step(plan, step_id)
        return row["status"] if row else "pending"

    def set_step(self, plan: str, step_id: str, kind: str, status: str,
                 message: str | None = None, wait_until: datetime | None = None) -> None:
        self.db["steps"].upsert({"plan": plan, "step_id": step_id, "kind": kind,
                                 "status": status, "updated": iso(utcnow()),
                                 "wait_until": iso(wait_until) if wait_until else None,
                                 "message": message}, pk=("plan", "step_id"))

    def steps(self, plan: str | None = None) -> list[dict[str, Any]]:
        if plan is None:
            return self.rows("SELECT * FROM steps")
        return self.rows("SELECT * FROM steps WHERE plan = ?", [plan])

    def plans(self) -> list[dict[str, Any]]:
        """Every plan that has run in this workspace, with the path it last ran from."""
        seen: dict[str, dict[str, Any]] = {}
        for row in self.rows("SELECT * FROM runs ORDER BY id"):
            seen[row["plan"]] = row
        return list(seen.values())

    # --- checkpoints and items --------------------------------------------------------------
    def write_checkpoint(self, plan: str, step_id: str, kind: str, changes: list[dict[str, Any]],
                         preview_hash: str, params: dict[str, Any] | None = None,
                         covered: list[str] | None = None) -> None:
        """Durably record what will change, and how to undo it, before anything changes."""
        with self.db.atomic():
            self.db["items"].delete_where("plan = ? AND step_id = ?", [plan, step_id])
            self.db["checkpoints"].upsert({"plan": plan, "step_id": step_id,
                                           "created": iso(utcnow()),
                                           "preview_hash": preview_hash,
                                           "changes": _json(changes),
                                           "params": _json(params),
                                           "covered": _json(covered)}, pk=("plan", "step_id"))
            self.db["items"].insert_all(
                [{"plan": plan, "step_id": step_id, "item": change["item"], "position": index,
                  "status": "pending", "updated": iso(utcnow())}
                 for index, change in enumerate(changes)], pk=("plan", "step_id", "item"))
            self.set_step(plan, step_id, kind, "running")

    def extend_checkpoint(self, plan: str, step_id: str, kind: str,
                          changes: list[dict[str, Any]], preview_hash: str,
                          covered: list[str]) -> None:
        """Add the changes of items a done step never handled (the inventory grew) to its
        checkpoint, before they are applied; the items already done stay done."""
        checkpoint = self.checkpoint(plan, step_id)
        assert checkpoint is not None
        with self.db.atomic():
            start = len(checkpoint["changes"])
            self.db["checkpoints"].update((plan, step_id), {
                "changes": _json(checkpoint["changes"] + changes),
                "preview_hash": preview_hash, "covered": _json(covered)})
            self.db["items"].insert_all(
                [{"plan": plan, "step_id": step_id, "item": change["item"],
                  "position": start + index, "status": "pending", "updated": iso(utcnow())}
                 for index, change in enumerate(changes)], pk=("plan", "step_id", "item"),
                replace=True)
            self.set_step(plan, step_id, kind, "running")

    def checkpoint(self, plan: str, step_id: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM checkpoints WHERE plan = ? AND step_id = ?",
                         [plan, step_id])
        if not rows:
            return None
        row = rows[0]
        row["changes"] = json.loads(row["changes"])
        row["params"] = json.loads(row["params"]) if row.get("params") else None
        row["covered"] = json.loads(row["covered"]) if row.get("covered") else None
        return row

    def items(self, plan: str, step_id: str) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM items WHERE plan = ? AND step_id = ? ORDER BY position",
                         [plan, step_id])

    def item_counts(self, plan: str) -> dict[str, dict[str, int]]:
        """Per step of `plan`: how many items in total and in each status (one query)."""
        counts: dict[str, dict[str, int]] = {}
        for step_id, status, count in self.conn.execute(
                "SELECT step_id, status, COUNT(*) FROM items WHERE plan = ? "
                "GROUP BY step_id, status", [plan]).fetchall():
            entry = counts.setdefault(step_id, {"total": 0})
            entry[status] = count
            entry["total"] += count
        return counts

    def item_details(self, plan: str) -> dict[str, list[dict[str, str]]]:
        """Per step of `plan`: each item and its status, in checkpoint order (one query)."""
        details: dict[str, list[dict[str, str]]] = {}
        for step_id, item, status in self.conn.execute(
                "SELECT step_id, item, status FROM items WHERE plan = ? "
                "ORDER BY step_id, position", [plan]).fetchall():
            details.setdefault(step_id, []).append({"item": item, "status": status})
        return details

    def delete_run(self, run_id: int) -> None:
        """Forget a run that changed nothing (refused before its first checkpoint)."""
        self.db["runs"].delete(run_id)

    def checkpointed_since(self, plan: str, run_id: int) -> bool:
        """Whether any step of `plan` was checkpointed since run `run_id` started."""
        started = self.db["runs"].get(run_id)["started"]
        return bool(self.db.execute(
            "SELECT COUNT(*) FROM checkpoints WHERE plan = ? AND created >= ?",
            [plan, started]).fetchone()[0])

    def checkpoints(self, plan: str) -> list[dict[str, Any]]:
        """Every checkpoint of `plan` with its step's kind (rollback of a step the plan file
        no longer has works from these)."""
        rows = []
        for row in self.conn.execute(
                "SELECT c.step_id, s.kind, c.params FROM checkpoints c JOIN steps s "
                "ON s.plan = c.plan AND s.step_id = c.step_id WHERE c.plan = ? "
                "ORDER BY c.created", [plan]).fetchall():
            rows.append({"step_id": row[0], "kind": row[1],
                         "params": json.loads(row[2]) if row[2] else {}})
        return rows

    def mark_item(self, plan: str, step_id: str, item: str, status: str) -> None:
        self.db["items"].update((plan, step_id, item), {"status": status,
                                                        "updated": iso(utcnow())})

    # --- the audit log ----------------------------------------------------------------------
    def record_event(self, event: str, plan: str | None = None, step_id: str | None = None,
                     item: str | None = None, before: Any = None, after: Any = None,
                     message: str | None = None) -> None:
        self.db["events"].insert({"at": iso(utcnow()), "user": _user(),
                                  "host": socket.gethostname(), "plan": plan,
                                  "step_id": step_id, "item": item, "event": event,
                                  "before": _json(before), "after": _json(after),
                                  "message": message})

    def events(self, plan: str | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE plan = ?", [plan]) if plan else ("", [])
        rows = []
        for row in self.rows(f"SELECT * FROM events{where} ORDER BY id", args):
            row["before"] = json.loads(row["before"]) if row["before"] else None
            row["after"] = json.loads(row["after"]) if row["after"] else None
            rows.append(row)
        return rows


#: what the operator can do about a state database that SQLite cannot read
RECOVER = ("restore it from a backup, or move it aside (the next run starts a fresh state and "
           "forgets what was applied)")


#: Tables a read-only view opened in place (`open_snapshot(copy=False)`: the reports) leaves
#: out of its check on open: an inventory snapshot's recipient rows, most of a big state's
#: pages (55 MB of 56 at 50,000 recipients), which only the CSV report reads, after checking
#: them (`State.check_table`). The summary reports so open a big state without reading it whole.
CHECKED_WHEN_READ = frozenset({"inventory_recipients"})


def _tables(conn: sqlite3.Connection) -> set[str]:
    """Every table of the database, its schema table included."""
    return {"sqlite_schema"} | {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table'")}


def _check_integrity(conn: sqlite3.Connection, path: Path,
                     tables: Iterable[str] | None = None) -> None:
    """A damaged page is found here, before anything is read or written, rather than in the
    middle of a run. quick_check reads every page once (about 0.06 s for 55 MB); with `tables`,
    the pages of those tables and their indexes only."""
    if tables is None or sqlite3.sqlite_version_info < (3, 33):  # no quick_check(TABLE) yet
        problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
    else:
        problems = ["ok"]
        for table in tables:
            problems = [row[0] for row in conn.execute(
                "SELECT quick_check FROM pragma_quick_check(?)", [table]).fetchall()]
            if problems != ["ok"]:
                break
    if problems != ["ok"]:
        detail = problems[0].splitlines()[-1] if problems and problems[0] else "damaged"
        raise StateUnusable(f"{path} is corrupt (database disk image is malformed: "
                            f"{detail}): {RECOVER}")


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> StateUnusable:
    code = getattr(exc, "sqlite_errorcode", None)
    # a full disk shows as SQLITE_FULL, or as an I/O error growing the -shm/-wal file
    io_error = code is not None and code & 0xFF == sqlite3.SQLITE_IOERR
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc) or \
            (io_error and _no_space_left(path)):
        return StateUnusable(f"no space left on device for the state database at {path}: "
                             "free some space, then run the command again")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in str(exc) \
            or "not a database" in str(exc):
        return StateUnusable(f"{path} is corrupt ({exc}): {RECOVER}")
    return StateUnusable(f"{path} is not a usable state database ({exc})")


def _no_space_left(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def _user() -> str:
    import getpass  # only for what writes the audit log

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _lock_is_stale(pid: int, lock_host: str, this_host: str) -> bool:
    if lock_host != this_host:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
