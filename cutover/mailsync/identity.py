"""The identity map: which target message is the copy of which source message.

Two tables in the state DB (migration set "cutover.mailsync"):

- `mailsync_folders`: per (pair, source folder) the counters seen at the end of the last sync,
  on both sides; when nothing moved since, a re-run skips the folder after one STATUS.
- `mailsync_messages`: per (pair, source folder, source UIDVALIDITY, source UID) the target
  folder/UIDVALIDITY/UID and the sha256 of the content. A row is written `pending` (with the
  target's UIDNEXT before the APPEND) and committed before the APPEND, then marked `done` with
  the target UID. After a kill -9 a pending row is resolved by digest among the target messages
  at or above that UIDNEXT, so an APPEND that did arrive is never repeated.

`pair` names the two accounts ("imap://a@h:143 -> maildir:///m/a"); no password is ever stored.

Opening is cheap once the tables exist: a state DB that already records every migration of this
set is opened with plain sqlite3, so a no-op re-run (and each worker thread) skips importing
sqlite-utils and checking every migration set again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

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


MIGRATIONS = (m001_identity_map,)  # in order; a new one is appended here


@cache
def mailsync_migrations() -> Any:
    """The sqlite-utils migration set, built only when the DB needs migrating."""
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)
    for migration in MIGRATIONS:
        migrations()(migration)
    return migrations


def _open_migrated(path: Path) -> sqlite3.Connection | None:
    """A connection to `path` when it is a WAL state DB on which every migration of this set
    has been applied (so State.open ran on it before), else None."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(str(path), timeout=10, isolation_level=None)
    try:
        applied = {row[0] for row in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET])}
        wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    except sqlite3.DatabaseError:  # no such table, not a DB, locked: State.open says why
        conn.close()
        return None
    if not wal or not {m.__name__ for m in MIGRATIONS} <= applied:
        conn.close()
        return None
    conn.execute("PRAGMA synchronous=NORMAL")  # as State.open sets it
    return conn


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


_ROW_FIELDS = ("src_folder", "src_uidvalidity", "src_uid", "dst_folder", "dst_uidvalidity",
               "dst_uid", "digest", "state", "dst_uidnext_before")


class IdentityMap:
    """Reads and writes the two tables through one sqlite connection (one per thread)."""

    def __init__(self, conn: sqlite3.Connection):
        self.db = conn

    @classmethod
    def open(cls, path: Path) -> IdentityMap:
        conn = _open_migrated(Path(path))
        if conn is None:
            from cutover.state import State

            state = State.open(path)
            state.migrate(mailsync_migrations())
            conn = state.db.conn
        return cls(conn)

    def close(self) -> None:
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

    def rename_source_folder(self, pair: str, old: str, new: str, dst_folder: str) -> None:
        self._write("UPDATE mailsync_folders SET src_folder = ?, dst_folder = ? "
                    "WHERE pair = ? AND src_folder = ?", [new, dst_folder, pair, old])
        self._write("UPDATE mailsync_messages SET src_folder = ?, dst_folder = ? "
                    "WHERE pair = ? AND src_folder = ?", [new, dst_folder, pair, old])

    # --- messages -------------------------------------------------------------------------
    def rows(self, pair: str, src_folder: str) -> list[Row]:
        cursor = self.db.execute(
            f"SELECT {', '.join(_ROW_FIELDS)} FROM mailsync_messages "
            "WHERE pair = ? AND src_folder = ?", [pair, src_folder])
        return [Row(*values) for values in cursor.fetchall()]

    def all_rows(self, pair: str) -> list[Row]:
        cursor = self.db.execute(
            f"SELECT {', '.join(_ROW_FIELDS)} FROM mailsync_messages WHERE pair = ?", [pair])
        return [Row(*values) for values in cursor.fetchall()]

    def put(self, pair: str, rows: list[Row]) -> None:
        """Insert or replace rows in one transaction (pending before APPEND, done after)."""
        self._many(
            "INSERT OR REPLACE INTO mailsync_messages (pair, " + ", ".join(_ROW_FIELDS) + ") "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
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
