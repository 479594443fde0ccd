"""The identity map lives in the State it is handed: migrated there when it may write, read
without a single write for a preview, and reachable from worker threads through their own
connections to the same file."""

import sqlite3
import threading

from cutover.mailsync.identity import IdentityMap, Row, m001_identity_map
from cutover.state import State

PAIR = "imap://a@h:143 -> maildir:///m/a"


def _row(uid: int, made_by: str | None = "phase1/move-mail") -> Row:
    return Row("INBOX", 7, uid, "INBOX", 9, 100 + uid, f"digest{uid}", "done", None, made_by)


def _tables(path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()


def test_a_writable_map_adds_its_tables_to_the_state(tmp_path):
    state = State.open(tmp_path / "cutover.db")
    identity = IdentityMap.of(state)
    identity.put(PAIR, [_row(1), _row(2, made_by="")])
    assert identity.rows_made_by(PAIR, "phase1/move-mail") == [_row(1)]
    state.close()
    assert {"runs", "mailsync_folders", "mailsync_messages", "mailsync_created"} <= _tables(
        tmp_path / "cutover.db")


def test_a_read_only_map_of_a_state_without_tables_is_empty_and_writes_nothing(tmp_path):
    path = tmp_path / "cutover.db"
    State.open(path).close()
    before = path.read_bytes()
    state = State.open(path, create=False)
    identity = IdentityMap.of(state, writable=False)
    assert identity.all_rows(PAIR) == [] and identity.folder_records(PAIR) == {}
    state.close()
    assert "mailsync_messages" not in _tables(path) and path.read_bytes() == before


def test_a_read_only_map_reads_a_state_an_older_cutover_wrote_without_migrating_it(tmp_path):
    path = tmp_path / "cutover.db"
    state = State.open(path)
    m001_identity_map(state.db.conn)  # the identity map before `made_by` existed
    state.db.conn.execute("INSERT INTO mailsync_messages VALUES (?,?,?,?,?,?,?,?,?,?)",
                          [PAIR, "INBOX", 7, 1, "INBOX", 9, 101, "digest1", "done", None])
    identity = IdentityMap.of(state, writable=False)
    assert identity.all_rows(PAIR) == [_row(1, made_by=None)]
    columns = [row[1] for row in state.db.conn.execute("PRAGMA table_info(mailsync_messages)")]
    assert "made_by" not in columns
    state.close()


def test_worker_threads_get_their_own_connection_to_the_same_file(tmp_path):
    state = State.open(tmp_path / "cutover.db")
    identity = IdentityMap.of(state)
    seen = []

    def worker():
        mine = identity.for_thread()
        mine.put(PAIR, [_row(5)])
        seen.append(mine is identity)
        mine.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [False] and identity.for_thread() is identity
    assert identity.all_rows(PAIR) == [_row(5)]
    state.close()


def test_an_in_memory_state_is_not_shared_with_other_threads():
    state = State.open(":memory:")
    identity = IdentityMap.of(state)
    assert not identity.can_share and IdentityMap.empty().can_share
    state.close()
