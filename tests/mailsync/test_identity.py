"""The identity map's state DB: migrated through State.open the first time, reopened directly
once its tables exist, and a file that is not a cutover state DB is still refused."""

import sqlite3

import pytest

from cutover.errors import StateUnusable
from cutover.mailsync.identity import IdentityMap, Row
from cutover.state import State

PAIR = "imap://a@h:143 -> maildir:///m/a"


def _row(uid: int) -> Row:
    return Row("INBOX", 7, uid, "INBOX", 9, 100 + uid, f"digest{uid}", "done")


def test_first_open_creates_the_state_and_identity_tables(tmp_path):
    path = tmp_path / "state" / "cutover.db"
    IdentityMap.open(path).close()
    conn = sqlite3.connect(path)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "events", "mailsync_folders", "mailsync_messages"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopened_map_reads_and_writes_what_the_first_one_stored(tmp_path):
    path = tmp_path / "cutover.db"
    first = IdentityMap.open(path)
    first.put(PAIR, [_row(1), _row(2)])
    first.close()
    second = IdentityMap.open(path)
    second.drop(PAIR, [_row(1)])
    assert second.all_rows(PAIR) == [_row(2)]
    second.close()


def test_state_db_without_identity_tables_gets_them(tmp_path):
    path = tmp_path / "cutover.db"
    State.open(path).close()
    identity = IdentityMap.open(path)
    identity.put(PAIR, [_row(3)])
    assert identity.rows(PAIR, "INBOX") == [_row(3)]
    identity.close()


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StateUnusable, match="not a cutover state database"):
        IdentityMap.open(path)
