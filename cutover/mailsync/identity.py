"""The identity map: which target message is the copy of which source message.

Tables in the state DB (migration set "cutover.mailsync"):

- `mailsync_folders`: per (pair, source folder) the counters seen at the end of the last sync,
  on both sides; when nothing moved since, a re-run skips the folder after one STATUS.
- `mailsync_messages`: per (pair, source folder, source UIDVALIDITY, source UID) the target
  folder/UIDVALIDITY/UID and the sha256 of the content. A row is written `pending` (with the
  target's UIDNEXT before the APPEND) and committed before the APPEND, then marked `done` with
  the target UID. After a kill -9 a pending row is resolved by digest among the target messages
  at or above that UIDNEXT, so an APPEND that did arrive is never repeated. `made_by` names
  the copy that appended the message (a plan step, "plan/step-id", or the command line); a
  row whose target message was already there (matched by content) has none: a rollback
  removes exactly the messages its step made, those of an interrupted apply included.
- `mailsync_created`: the target folders a copy created, so that a rollback removes them even
  when a later preview saw them already there.

`pair` names the two accounts ("imap://a@h:143 -> maildir:///m/a"); no password is ever stored.

The map is handed the runner's (or the command's) `State`: it never opens a database by path
itself. Worker threads of the engine get their own connection to the same file
(`for_thread`), because a sqlite connection belongs to the thread that made it. A read-only map
(a preview) never migrates: a state without these tables reads as an empty map.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover.migrations import MIGRATIONS_TABLE, build_migrations, migrations_applied

if TYPE_CHECKING:
    from cutover.connectors.mailstore import FolderInfo
    from cutover.state import State

MIGRATION_SET = "cutover.mailsync"


def m001_identity_map(db: Any) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS mailsync_folders (
        pair TEXT NOT NULL, src_folder TEXT NOT NULL, dst_folder TEXT NOT NULL,
        src_uidvalidity INTEGER, src_uidnext INTEGER, src_messages INTEGER, src_modseq INTEGER,
        dst_uidvalidity INTEGER, dst_uidnext INTEGER, dst_messages INTEGER, dst_modseq INTEGER,
        synced_at TEXT, PRIMARY KEY (pair, src_folder))""")
    db.execute("""CREATE TABLE IF NOT EXISTS mailsync_messages (
        pair TEXT NOT NULL, src_folder TEXT NOT NULL, src_uidvalidity INTEGER NOT NULL,
        src_uid INTEGER NOT NULL, dst_folder TEXT NOT NULL, dst_uidvalidity INTEGER,
        dst_uid INTEGER, digest TEXT NOT NULL, state TEXT NOT NULL,
        dst_uidnext_before INTEGER,
        PRIMARY KEY (pair, src_folder, src_uidvalidity, src_uid))""")
    db.execute("CREATE INDEX IF NOT EXISTS mailsync_messages_dst ON mailsync_messages "
               "(pair, dst_folder, dst_uid)")


def m002_made_by(db: Any) -> None:
    # Rows written before this migration have no maker: a rollback falls back to "at or above
    # the UIDNEXT the preview saw" for them.
    db.execute("ALTER TABLE mailsync_messages ADD COLUMN made_by TEXT")
    db.execute("""CREATE TABLE IF NOT EXISTS mailsync_created (
        pair TEXT NOT NULL, dst_folder TEXT NOT NULL, made_by TEXT NOT NULL,
        PRIMARY KEY (pair, dst_folder))""")


def m003_verified(db: Any) -> None:
    # Per (pair, source folder): both sides' counters when a full comparison last found the
    # folder equal. Unchanged counters since (IMAP messages are immutable; any flag change
    # moves HIGHESTMODSEQ) mean the same comparison would find it equal again.
    db.execute("""CREATE TABLE IF NOT EXISTS mailsync_verified (
        pair TEXT NOT NULL, src_folder TEXT NOT NULL, dst_folder TEXT NOT NULL,
        strict INTEGER NOT NULL, counters TEXT NOT NULL, verified_at TEXT,
        PRIMARY KEY (pair, src_folder))""")


MIGRATIONS = (m001_identity_map, m002_made_by, m003_verified)  # in order; new ones appended


@cache
def mailsync_migrations() -> Any:
    """The sqlite-utils migration set, built only when the DB needs migrating."""
    return build_migrations(MIGRATION_SET, MIGRATIONS)


def migrated(conn: sqlite3.Connection) -> bool:
    """Every migration of this set is recorded in the DB (read only, no sqlite-utils)."""
    return migrations_applied(conn, MIGRATION_SET, MIGRATIONS)


def _file_of(conn: sqlite3.Connection) -> Path | None:
    """The file behind the main database of `conn`, None when it lives in memory."""
    for _, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


def counters_key(src: FolderInfo, dst: FolderInfo) -> str | None:
    """Both folders' counters as one value; equal values mean neither folder changed. None
    when a side cannot tell (no HIGHESTMODSEQ or change marker: a flag change would go
    unseen)."""
    if not (src.highestmodseq and dst.highestmodseq and src.uidnext and dst.uidnext):
        return None
    return (f"{src.uidvalidity}:{src.uidnext}:{src.messages}:{src.highestmodseq}|"
            f"{dst.uidvalidity}:{dst.uidnext}:{dst.messages}:{dst.highestmodseq}")


@dataclass
class FolderRecord:
    src_folder: str
    dst_folder: str
    src_uidvalidity: int
    src_uidnext: int
    src_messages: int
    src_modseq: int
    dst_uidvalidity: int
    dst_uidnext: int
    dst_messages: int
    dst_modseq: int


@dataclass
class Row:
    src_folder: str
    src_uidvalidity: int
    src_uid: int
    dst_folder: str
    dst_uidvalidity: int | None
    dst_uid: int | None
    digest: str
    state: str  # "pending" | "done"
    dst_uidnext_before: int | None = None
    made_by: str | None = None  # the copy that appended it; None: it was there already


_ROW_FIELDS = ("src_folder", "src_uidvalidity", "src_uid", "dst_folder", "dst_uidvalidity",
               "dst_uid", "digest", "state", "dst_uidnext_before", "made_by")
_ROW_COLUMNS = ", ".join(_ROW_FIELDS)


class IdentityMap:
    """Reads and writes the tables through one sqlite connection, used by one thread; the
    engine's workers each get their own through `for_thread()`."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None,
                 shared: bool = False, owned: bool = False):
        self.db = conn
        self.path = path  # the state file, for the connections of other threads
        self.shared = shared  # usable from any thread (an in-memory map of a preview)
        self.owned = owned  # this map opened the connection, so close() closes it
        self.thread = threading.get_ident()

    @classmethod
    def of(cls, state: State, writable: bool = True) -> IdentityMap:
        """The map kept in `state`. Writable: the tables are created or migrated if needed.
        Read only (a preview): nothing is written; a state without the tables reads as empty."""
        conn = state.db.conn
        if not migrated(conn):
            if not writable:
                return cls._migrated_copy(conn)
            state.migrate(mailsync_migrations())
        return cls(conn, _file_of(conn))

    @classmethod
    def empty(cls) -> IdentityMap:
        """A map that knows nothing and lives in memory (what a preview reads when the state
        has no copy recorded yet)."""
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        for migration in MIGRATIONS:
            migration(conn)
        return cls(conn, None, shared=True, owned=True)

    @classmethod
    def _migrated_copy(cls, conn: sqlite3.Connection) -> IdentityMap:
        """For reading a state an older cutover wrote without writing to it: an in-memory
        copy, migrated (or an empty map when it holds no copy at all)."""
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'mailsync_messages'"
                            ).fetchone():
            return cls.empty()
        memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.backup(memory)
        applied = {row[0] for row in memory.execute(
            f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ?", [MIGRATION_SET])}
        for migration in MIGRATIONS:
            if migration.__name__ not in applied:
                migration(memory)
        return cls(memory, None, shared=True, owned=True)

    @property
    def can_share(self) -> bool:
        """Whether other threads can work on this map (own connection to the file, or the
        thread-safe in-memory map)."""
        return self.shared or self.path is not None

    def for_thread(self) -> IdentityMap:
        """This map for the calling thread: itself on the thread that made it (or when it is
        shared), else a new connection to the same state file."""
        if self.shared or threading.get_ident() == self.thread:
            return self
        if self.path is None:
            raise RuntimeError("an in-memory state cannot be used from another thread")
        conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None)
        # A pending row must survive a kill -9 (WAL commits do), not a power loss: the digest
        # re-match then finds what arrived anyway.
        conn.execute("PRAGMA synchronous=NORMAL")
        return IdentityMap(conn, self.path, owned=True)

    def close(self) -> None:
        """Close the connection if this map opened it (a State's connection stays open)."""
        if self.owned:
            self.db.close()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.db.execute(sql, list(params))

    def _many(self, sql: str, rows: list[tuple]) -> None:
        if rows:
            conn = self.db
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    # --- folders --------------------------------------------------------------------------
    def folder_records(self, pair: str) -> dict[str, FolderRecord]:
        cursor = self.db.execute(
            "SELECT src_folder, dst_folder, src_uidvalidity, src_uidnext, src_messages, "
            "src_modseq, dst_uidvalidity, dst_uidnext, dst_messages, dst_modseq "
            "FROM mailsync_folders WHERE pair = ?", [pair])
        return {row[0]: FolderRecord(*row) for row in cursor.fetchall()}

    def save_folder(self, pair: str, record: FolderRecord, when: str) -> None:
        self._write(
            "INSERT OR REPLACE INTO mailsync_folders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [pair, record.src_folder, record.dst_folder, record.src_uidvalidity,
             record.src_uidnext, record.src_messages, record.src_modseq, record.dst_uidvalidity,
             record.dst_uidnext, record.dst_messages, record.dst_modseq, when])

    def forget_folder(self, pair: str, src_folder: str) -> None:
        self._write("DELETE FROM mailsync_folders WHERE pair = ? AND src_folder = ?",
                    [pair, src_folder])
        self._write("DELETE FROM mailsync_messages WHERE pair = ? AND src_folder = ?",
                    [pair, src_folder])

    def forget_target_folder(self, pair: str, dst_folder: str) -> None:
        """The target folder is gone: its records and the rows of the copies it held."""
        self._write("DELETE FROM mailsync_folders WHERE pair = ? AND dst_folder = ?",
                    [pair, dst_folder])
        self._write("DELETE FROM mailsync_messages WHERE pair = ? AND dst_folder = ?",
                    [pair, dst_folder])
        self._write("DELETE FROM mailsync_created WHERE pair = ? AND dst_folder = ?",
                    [pair, dst_folder])

    def rename_source_folder(self, pair: str, old: str, new: str, dst_folder: str) -> None:
        self._write("UPDATE mailsync_folders SET src_folder = ?, dst_folder = ? "
                    "WHERE pair = ? AND src_folder = ?", [new, dst_folder, pair, old])
        self._write("UPDATE mailsync_messages SET src_folder = ?, dst_folder = ? "
                    "WHERE pair = ? AND src_folder = ?", [new, dst_folder, pair, old])

    def note_created(self, pair: str, dst_folder: str, made_by: str) -> None:
        """Recorded before the folder is created, so an interrupted copy's folders are known."""
        self._write("INSERT OR IGNORE INTO mailsync_created VALUES (?, ?, ?)",
                    [pair, dst_folder, made_by])

    def created_folders(self, pair: str, made_by: str) -> list[str]:
        cursor = self.db.execute("SELECT dst_folder FROM mailsync_created WHERE pair = ? AND "
                                 "made_by = ?", [pair, made_by])
        return [row[0] for row in cursor.fetchall()]

    def forget_created(self, pair: str, dst_folders: Iterable[str]) -> None:
        self._many("DELETE FROM mailsync_created WHERE pair = ? AND dst_folder = ?",
                   [(pair, name) for name in dst_folders])

    # --- verified comparisons -------------------------------------------------------------
    def verified(self, pair: str) -> dict[str, tuple[str, bool, str]]:
        """Per source folder: (target folder, strict, counters) of its last equal comparison."""
        cursor = self.db.execute("SELECT src_folder, dst_folder, strict, counters FROM "
                                 "mailsync_verified WHERE pair = ?", [pair])
        return {row[0]: (row[1], bool(row[2]), row[3]) for row in cursor.fetchall()}

    def save_verified(self, pair: str, entries: list[tuple[str, str, bool, str]],
                      when: str) -> None:
        """(source folder, target folder, strict, counters) of folders found equal."""
        self._many("INSERT OR REPLACE INTO mailsync_verified VALUES (?, ?, ?, ?, ?, ?)",
                   [(pair, src, dst, int(strict), counters, when)
                    for src, dst, strict, counters in entries])

    def forget_verified(self, pair: str) -> None:
        self._write("DELETE FROM mailsync_verified WHERE pair = ?", [pair])

    # --- messages -------------------------------------------------------------------------
    def rows(self, pair: str, src_folder: str) -> list[Row]:
        cursor = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM mailsync_messages WHERE pair = ? AND src_folder = ?",
            [pair, src_folder])
        return [Row(*values) for values in cursor.fetchall()]

    def all_rows(self, pair: str) -> list[Row]:
        cursor = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM mailsync_messages WHERE pair = ?", [pair])
        return [Row(*values) for values in cursor.fetchall()]

    def rows_made_by(self, pair: str, made_by: str) -> list[Row]:
        cursor = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM mailsync_messages WHERE pair = ? AND made_by = ?",
            [pair, made_by])
        return [Row(*values) for values in cursor.fetchall()]

    def claimed(self, target: str, dst_folder: str) -> set[int]:
        """Target UIDs of `dst_folder` that some recorded copy into `target` (a target label,
        the right-hand side of a pair) already accounts for, whatever its source."""
        cursor = self.db.execute(
            "SELECT dst_uid FROM mailsync_messages WHERE dst_folder = ? AND state = 'done' "
            "AND substr(pair, -?) = ?", [dst_folder, len(target) + 4, f" -> {target}"])
        return {row[0] for row in cursor.fetchall() if row[0] is not None}

    def put(self, pair: str, rows: list[Row]) -> None:
        """Insert or replace rows in one transaction (pending before APPEND, done after)."""
        self._many(
            f"INSERT OR REPLACE INTO mailsync_messages (pair, {_ROW_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(pair, *(getattr(r, f) for f in _ROW_FIELDS)) for r in rows])

    def drop(self, pair: str, rows: list[Row]) -> None:
        self._many(
            "DELETE FROM mailsync_messages WHERE pair = ? AND src_folder = ? "
            "AND src_uidvalidity = ? AND src_uid = ?",
            [(pair, r.src_folder, r.src_uidvalidity, r.src_uid) for r in rows])

    def pending_folders(self, pair: str) -> set[str]:
        cursor = self.db.execute("SELECT DISTINCT src_folder FROM mailsync_messages "
                                 "WHERE pair = ? AND state = 'pending'", [pair])
        return {row[0] for row in cursor.fetchall()}

    def pairs(self) -> list[str]:
        cursor = self.db.execute("SELECT DISTINCT pair FROM mailsync_messages")
        return [row[0] for row in cursor.fetchall()]
