"""Graph message ids <-> the protocol's (UIDVALIDITY, UID), kept in the workspace state.

Graph ids are long strings; the sync engine speaks integer UIDs. A folder's row number is its
UIDVALIDITY and UIDs are handed out in increasing order as messages are first seen, so "UID > last
seen" still means "new". The map is a named Migrations set ("cutover.graph") in the State it is
handed: the connector never opens the workspace's database itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from cutover.state import State

GRAPH_MIGRATIONS = Migrations("cutover.graph")


@GRAPH_MIGRATIONS()
def m001_uid_map(db: Any) -> None:
    db["graph_folders"].create({"id": int, "mailbox": str, "folder_id": str}, pk="id")
    db["graph_folders"].create_index(["mailbox", "folder_id"], unique=True)
    db["graph_uids"].create({"folder": int, "uid": int, "message_id": str},
                            pk=("folder", "uid"))
    db["graph_uids"].create_index(["folder", "message_id"], unique=True)


class UidMap:
    """Graph ids <-> (UIDVALIDITY, UID), persisted in the workspace state DB."""

    def __init__(self, state: State, mailbox: str):
        # The sync engine's session pool hands a session from thread to thread (one at a
        # time), and may open it outside the runner's thread: neither this connection nor the
        # migration may use the runner's thread-bound one.
        self.conn: sqlite3.Connection = state.shared_connection()
        self._owned = self.conn is not state.db.conn
        state.migrate(GRAPH_MIGRATIONS, sqlite_utils.Database(self.conn))
        self.mailbox = mailbox.lower()

    def close(self) -> None:
        if self._owned:
            self.conn.close()

    def uidvalidity(self, folder_id: str) -> int:
        row = self.conn.execute("SELECT id FROM graph_folders WHERE mailbox = ? AND folder_id = ?",
                                (self.mailbox, folder_id)).fetchone()
        if row:
            return int(row[0])
        cursor = self.conn.execute("INSERT OR IGNORE INTO graph_folders (mailbox, folder_id) "
                                   "VALUES (?, ?)", (self.mailbox, folder_id))
        if cursor.lastrowid and cursor.rowcount:
            return int(cursor.lastrowid)
        return self.uidvalidity(folder_id)

    def uidnext(self, folder_id: str) -> int:
        row = self.conn.execute("SELECT MAX(uid) FROM graph_uids WHERE folder = ?",
                                (self.uidvalidity(folder_id),)).fetchone()
        return int(row[0] or 0) + 1

    def uids(self, folder_id: str, message_ids: Sequence[str]) -> dict[str, int]:
        """The UID of each id, giving new ids the next UIDs in the order given."""
        folder = self.uidvalidity(folder_id)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            known = dict(self.conn.execute(
                "SELECT message_id, uid FROM graph_uids WHERE folder = ?", (folder,)).fetchall())
            row = self.conn.execute("SELECT MAX(uid) FROM graph_uids WHERE folder = ?",
                                    (folder,)).fetchone()
            next_uid = int(row[0] or 0) + 1
            for message_id in message_ids:
                if message_id not in known:
                    known[message_id] = next_uid
                    self.conn.execute("INSERT INTO graph_uids (folder, uid, message_id) "
                                      "VALUES (?, ?, ?)", (folder, next_uid, message_id))
                    next_uid += 1
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return {message_id: known[message_id] for message_id in message_ids}

    def message_ids(self, folder_id: str, uids: Sequence[int]) -> dict[int, str]:
        folder = self.uidvalidity(folder_id)
        rows = self.conn.execute("SELECT uid, message_id FROM graph_uids WHERE folder = ?",
                                 (folder,)).fetchall()
        wanted = set(uids)
        return {int(uid): str(mid) for uid, mid in rows if uid in wanted}

    def forget(self, folder_id: str, uids: Iterable[int]) -> None:
        folder = self.uidvalidity(folder_id)
        self.conn.executemany("DELETE FROM graph_uids WHERE folder = ? AND uid = ?",
                              [(folder, uid) for uid in uids])


