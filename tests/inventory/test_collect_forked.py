"""`inventory collect` reads in a forked child while it stores (cutover.inventory.forked): the
snapshot must be the one a collection in one process stores, byte for byte, and a child that
fails must leave the error to the collection in this process."""

import sqlite3
import threading
from datetime import UTC, datetime

import pytest

from cutover.errors import ValidationFailed
from cutover.inventory import forked, store
from cutover.inventory.collect import collect_and_store
from cutover.state import State
from cutover.workspace import Workspace
from tests.inventory.sample_org import write_sample_workspace

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def stored(workspace, snapshot_id):
    """Everything the state holds of one snapshot (its collection time aside)."""
    conn = sqlite3.connect(workspace.state_path)
    try:
        meta = conn.execute("select source, status, recipients, total_bytes, digest, warnings "
                            "from inventory_snapshots where id = ?", [snapshot_id]).fetchall()
        rows = conn.execute("select address, class, destination, type, size_bytes, data, "
                            "csv_line from inventory_recipients where snapshot_id = ? "
                            "order by rowid", [snapshot_id]).fetchall()
        summary = conn.execute("select version, data from inventory_summaries where "
                               "snapshot_id = ?", [snapshot_id]).fetchall()
    finally:
        conn.close()
    return meta, rows, summary


def collect_with(tmp_path, name, monkeypatch, fork: bool, **options):
    workspace = Workspace(write_sample_workspace(tmp_path / name, **options))
    if not fork:
        monkeypatch.setattr(forked, "available", lambda: False)
    state = State.open(workspace.state_path)
    try:
        snapshot_id = collect_and_store(workspace, state, now=NOW)
    finally:
        state.close()
        monkeypatch.undo()
    return stored(workspace, snapshot_id)


def test_the_platform_forks_here():
    assert forked.available(), "these tests need POSIX fork and a second core"


@pytest.mark.parametrize("utf16", [True, False])
def test_forked_collection_stores_what_a_collection_in_one_process_stores(
        tmp_path, monkeypatch, utf16):
    in_one = collect_with(tmp_path, "one", monkeypatch, fork=False, utf16=utf16)
    in_two = collect_with(tmp_path, "two", monkeypatch, fork=True, utf16=utf16)
    assert in_two == in_one
    assert in_two[1]  # recipients were stored


def test_warnings_found_in_the_child_are_stored_with_the_snapshot(tmp_path, monkeypatch):
    root = write_sample_workspace(tmp_path / "ws")
    path = root / "inventory" / "Get-Mailbox.csv"
    text = path.read_bytes().decode("utf-16")
    path.write_bytes((text + '"x","X","x","not-an-address","","UserMailbox","","","False",""'
                      "\r\n").encode("utf-16"))
    workspace = Workspace(root)
    state = State.open(workspace.state_path)
    snapshot_id = collect_and_store(workspace, state, now=NOW)
    warnings = store.get_snapshot(state, snapshot_id)["warnings"]
    assert warnings == [f"inventory/Get-Mailbox.csv:{len(text.splitlines()) + 1}: "
                        "PrimarySmtpAddress 'not-an-address' is not an address: row skipped"]


def test_a_failing_child_leaves_the_error_to_the_collection_in_this_process(
        tmp_path, monkeypatch):
    root = write_sample_workspace(tmp_path / "ws")
    path = root / "inventory" / "Get-Mailbox.csv"
    text = path.read_bytes().decode("utf-16")
    path.write_bytes((text + '"x","X","x","amira.haddad@example.org","","UserMailbox","","",'
                      '"False",""\r\n').encode("utf-16"))
    workspace = Workspace(root)
    attempts = []
    real = forked.forked_rows

    def counted(run):
        attempts.append(run)
        return real(run)

    monkeypatch.setattr(forked, "forked_rows", counted)
    state = State.open(workspace.state_path)
    with pytest.raises(ValidationFailed) as caught:
        collect_and_store(workspace, state, now=NOW)
    assert len(attempts) == 1  # the child was tried, and failed
    assert caught.value.lines() == [
        f"inventory/Get-Mailbox.csv:{len(text.splitlines()) + 1}: duplicate address "
        "amira.haddad@example.org"]
    assert store.list_snapshots(state, include_superseded=True) == []


def test_a_child_that_stops_early_raises_child_failed_after_what_it_sent():
    class Broken:
        warnings: list[str] = []

        def recipients(self):
            for n in range(forked.BATCH + 1):
                yield {"address": f"a{n}@example.org"}
            raise RuntimeError("lost the export half-way")

    received = []
    with pytest.raises(forked.ChildFailed), forked.forked_rows(Broken()) as rows:
        for recipient, line in rows:
            received.append((recipient, line))
    assert len(received) == forked.BATCH  # the batches sent whole, then the failure
    assert received[0] == ({"address": "a0@example.org"}, "a0@example.org,,,,,,,,,,,,,,,\n")


def test_no_fork_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert forked.available() is False
    finally:
        stop.set()
        thread.join()


def test_a_fork_refused_by_the_system_collects_in_this_process(tmp_path, monkeypatch):
    def refused():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    expected = collect_with(tmp_path, "one", monkeypatch, fork=False)
    workspace = Workspace(write_sample_workspace(tmp_path / "refused"))
    monkeypatch.setattr(forked.os, "fork", refused)
    state = State.open(workspace.state_path)
    snapshot_id = collect_and_store(workspace, state, now=NOW)
    state.close()
    assert stored(workspace, snapshot_id) == expected
