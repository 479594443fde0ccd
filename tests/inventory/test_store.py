import pytest

from cutover.errors import NotFound, UsageError
from cutover.inventory import store
from cutover.state import State


@pytest.fixture
def state(tmp_path):
    state = State.open(tmp_path / "state" / "cutover.db")
    yield state
    state.close()


def rec(address, klass="people", destination="cloud", size=100, **extra):
    local, _, domain = address.partition("@")
    return {"address": address, "local": local, "domain": domain, "class": klass,
            "destination": destination, "type": "user", "size_bytes": size, "aliases": [],
            "reason": "rule x", **extra}


def test_stored_snapshot_reads_back_complete(state):
    snapshot_id = store.store_snapshot(state, "csv", [rec("b@x.org"), rec("a@x.org")], ["w1"])
    snapshot = store.get_snapshot(state, snapshot_id)
    assert (snapshot["status"], snapshot["recipients"], snapshot["total_bytes"],
            snapshot["warnings"]) == ("complete", 2, 200, ["w1"])
    assert [r["address"] for r in store.latest_recipients(state)] == ["a@x.org", "b@x.org"]


def test_failing_stream_stores_nothing_at_all(state):
    def recipients():
        yield rec("a@x.org")
        yield rec("b@x.org")
        raise UsageError("mb.csv:3: duplicate address a@x.org")

    with pytest.raises(UsageError):
        store.store_snapshot(state, "csv", recipients(), [])
    assert store.list_snapshots(state, include_superseded=True) == []
    assert state.db["inventory_recipients"].count == 0
    assert state.db["inventory_snapshots"].count == 0


def test_duplicate_address_in_one_snapshot_is_refused_and_nothing_is_stored(state):
    with pytest.raises(UsageError, match="duplicate address"):
        store.store_snapshot(state, "csv", [rec("a@x.org"), rec("a@x.org")], [])
    assert state.db["inventory_snapshots"].count == 0


def test_latest_recipients_is_empty_without_snapshots(state):
    assert store.latest_recipients(state) == []
    with pytest.raises(NotFound, match="run `cutover inventory collect`"):
        store.get_snapshot(state)


def test_digest_ignores_order_and_origin(state):
    one = store.snapshot_digest([rec("a@x.org", origin="f:1"), rec("b@x.org")])
    two = store.snapshot_digest([rec("b@x.org"), rec("a@x.org", origin="g:9")])
    assert one == two != store.snapshot_digest([rec("a@x.org")])


def test_diff_reports_added_removed_changed_and_moves(state):
    store.store_snapshot(state, "csv", [rec("a@x.org"), rec("b@x.org"), rec("gone@x.org")], [])
    store.store_snapshot(state, "csv", [
        rec("a@x.org", size=500),
        rec("b@x.org", "verification", "linux", reason="rule v"),
        rec("new@x.org")], [])
    diff = store.diff_snapshots(state)
    assert (diff["before"], diff["after"]) == (1, 2)
    assert [r["address"] for r in diff["added"]] == ["new@x.org"]
    assert [r["address"] for r in diff["removed"]] == ["gone@x.org"]
    assert diff["changed"][0] == {"address": "a@x.org",
                                  "fields": {"size_bytes": {"before": 100, "after": 500}}}
    assert diff["moves"] == [{"address": "b@x.org", "before": "people -> cloud",
                              "after": "verification -> linux", "reason": "rule v"}]


def test_diff_of_the_first_snapshot_is_refused(state):
    store.store_snapshot(state, "csv", [rec("a@x.org")], [])
    with pytest.raises(NotFound, match="is the first one"):
        store.diff_snapshots(state)


def test_superseded_snapshot_is_no_longer_latest(state):
    store.store_snapshot(state, "csv", [rec("a@x.org")], [])
    second = store.store_snapshot(state, "csv", [rec("b@x.org")], [], created_by="p:s")
    digest = store.get_snapshot(state, second)["digest"]
    assert store.supersede(state, "csv", digest, "p:s") == 1
    assert store.supersede(state, "csv", digest, "p:s") == 0
    assert [r["address"] for r in store.latest_recipients(state)] == ["a@x.org"]


def test_find_recipient_by_alias(state):
    store.store_snapshot(state, "csv", [rec("a@x.org", aliases=["alias@x.org"])], [])
    assert store.find_recipient(state, "Alias@x.org")["address"] == "a@x.org"
    assert store.find_recipient(state, "nobody@x.org") is None


def test_works_on_a_bare_sqlite_utils_database(tmp_path):
    import sqlite_utils

    db = sqlite_utils.Database(tmp_path / "plain.db")
    store.store_snapshot(db, "csv", [rec("a@x.org")], [])
    assert store.latest_recipients(db)[0]["address"] == "a@x.org"
