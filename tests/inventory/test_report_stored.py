"""The summary and CSV lines stored with a snapshot render the very reports a walk over its
recipients renders: whatever order they were stored in, however long the lists."""

import io
import json
import random

import pytest

from cutover.inventory import report, store
from cutover.state import State


@pytest.fixture
def state(tmp_path):
    state = State.open(tmp_path / "state" / "cutover.db")
    yield state
    state.close()


def recipient(i: int) -> dict:
    klass = ["people", "unknown", "verification", "archive"][i % 4]  # archive: not a class
    destination = {"archive": "tape"}.get(klass, ["cloud", "keep", "linux"][i % 3])
    return {"address": f"u{i:05d}@x.org", "local": f"u{i:05d}", "domain": "x.org",
            "class": klass, "destination": destination, "type": "user", "reason": f"rule {i}",
            "size_bytes": (i * 7919) % 100_000 if i % 5 else None, "items": i % 13,
            "display_name": f"User | {i}\nsecond line" if i % 11 == 0 else f"User {i}",
            "aliases": [f"a{i}@x.org"], "origin": f"f.csv:{i + 2}",
            "forwarding": [{"via": "ForwardingSmtpAddress", "to": f"f{i}@y.org",
                            "keep_copy": True}] if i % 2 else [],
            "rules": [{"kind": "procmail", "path": f"procmail/u{i}/.procmailrc",
                       "forward_to": ["z@y.org"]}] if i % 3 == 0 else [],
            "routing": [{"kind": "postfix", "map": "virtual", "value": "v@y.org",
                         "path": "postfix/virtual:1", "forward_to": ["v@y.org"]}]
            if i % 7 == 0 else []}


def rendered(fmt: str, summary: dict) -> str:
    out = io.StringIO()
    report.render(fmt, summary, None, out)
    return out.getvalue()


def test_stored_summary_renders_what_a_walk_in_address_order_renders(state):
    recipients = [recipient(i) for i in range(3 * report.LIST_LIMIT)]
    random.Random(15).shuffle(recipients)
    snapshot_id = store.store_snapshot(state, "csv", recipients, ["w"])
    meta = store.get_snapshot(state, snapshot_id)
    stored = store.snapshot_summary(state, meta, 20.0)
    walked = report.summarize(store.iter_recipients(state, snapshot_id), meta, 20.0)
    assert stored["totals"]["forwarding"] > len(stored["forwarding"]) == report.LIST_LIMIT
    assert [b["class"] for b in stored["by_class"]][-1] == "archive"
    for fmt in ("md", "json", "html"):
        assert rendered(fmt, stored) == rendered(fmt, walked), fmt


def test_stored_csv_lines_are_the_csv_report(state):
    recipients = [recipient(i) for i in range(300)]
    random.Random(16).shuffle(recipients)
    snapshot_id = store.store_snapshot(state, "csv", recipients, [])
    from_lines, from_recipients = io.StringIO(), io.StringIO()
    report.render_csv_lines(store.iter_csv_lines(state, snapshot_id), from_lines)
    report.render_csv(store.iter_recipients(state, snapshot_id), from_recipients)
    assert from_lines.getvalue() == from_recipients.getvalue()


def test_snapshot_stored_by_an_older_version_is_summarized_from_its_recipients(state):
    snapshot_id = store.store_snapshot(state, "csv", [recipient(i) for i in range(10)], [])
    state.db.execute("delete from inventory_summaries")
    meta = store.get_snapshot(state, snapshot_id)
    assert store.iter_csv_lines(state, snapshot_id) is None
    assert store.snapshot_summary(state, meta)["totals"]["recipients"] == 10


def test_one_encoding_gives_the_stored_json_and_the_digested_one():
    r = recipient(3)
    data, stable = store.encode(r)
    assert data == json.dumps(r, sort_keys=True, default=str)
    assert stable == json.dumps({k: v for k, v in r.items() if k != "origin"}, sort_keys=True,
                                default=str)
    assert store.encode({"address": "a@x.org"}) == ('{"address": "a@x.org"}',) * 2
    assert store.encode({"origin": "f:1"})[1] == "{}"
    assert store.encode({"origin": "f:1", "z": 1})[1] == '{"z": 1}'
    nested = {"address": "a", "forwarding": [{"origin": "f:1"}], "origin": "f:1", "z": [1]}
    assert store.encode(nested)[1] == json.dumps(
        {"address": "a", "forwarding": [{"origin": "f:1"}], "z": [1]}, sort_keys=True)


@pytest.mark.parametrize("cells", [
    {"display_name": "Smith, Anna"}, {"display_name": 'The "Boss"'},
    {"display_name": "two\nlines"}, {"display_name": "carriage\rreturn"},
    {"display_name": " padded\t"}, {"display_name": "Zoë Ünal"}, {"display_name": ""},
    {"type": None, "class": None, "destination": None}, {"size_bytes": 0, "items": 0},
    {"size_bytes": 1.5, "items": True}, {"display_name": 42}, {"reason": "a;b,c"},
    {"aliases": ["x,y@x.org"]}, {"source": "exchange-csv"},
])
def test_csv_line_is_what_the_csv_writer_writes(cells):
    r = {**recipient(7), **cells}
    written = io.StringIO()
    report.render_csv([r], written)
    assert report.csv_line(r) == written.getvalue().split("\n", 1)[1]
