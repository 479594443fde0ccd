"""Inventory snapshots in the state DB: stored complete or not at all, read back, compared.

A snapshot is one collection run (one source, or every source merged). Rows are written inside
one transaction and the snapshot is marked `complete` in that same transaction, so a failure
half-way (a bad CSV row found at the end, a lost connection) leaves nothing behind. Readers only
ever see `complete` snapshots; a rolled-back `inventory.collect` marks its snapshot `superseded`.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from sqlite_utils.migrations import Migrations

from cutover.errors import NotFound, UsageError, WorldChanged
from cutover.inventory.report import SUMMARY_VERSION, SummaryBuilder, csv_line, summarize

INVENTORY_MIGRATIONS = Migrations("cutover.inventory")
BATCH = 500

#: Keys that describe a recipient's state; collection metadata (origin) is not compared.
VOLATILE_KEYS = frozenset({"origin"})


@INVENTORY_MIGRATIONS()
def m001_snapshots(db: Any) -> None:
    db["inventory_snapshots"].create({
        "id": int, "source": str, "taken_at": str, "status": str, "recipients": int,
        "total_bytes": int, "digest": str, "warnings": str, "created_by": str,
    }, pk="id")
    db["inventory_recipients"].create({
        "snapshot_id": int, "address": str, "class": str, "destination": str, "type": str,
        "size_bytes": int, "data": str,
    }, pk=("snapshot_id", "address"), foreign_keys=[("snapshot_id", "inventory_snapshots")])
    db["inventory_recipients"].create_index(["snapshot_id", "class"])


@INVENTORY_MIGRATIONS()
def m002_summaries(db: Any) -> None:
    """What reports need, computed once while a snapshot is stored: its summary, and each
    recipient's line of the CSV report (`version` says which renderer wrote them)."""
    db["inventory_summaries"].create({"snapshot_id": int, "version": int, "data": str},
                                     pk="snapshot_id",
                                     foreign_keys=[("snapshot_id", "inventory_snapshots")])
    db["inventory_recipients"].add_column("csv_line", str)


def _db(state: Any) -> Any:
    """State (from cutover.state) or a bare sqlite_utils.Database; migrations applied."""
    if hasattr(state, "migrate"):
        state.migrate(INVENTORY_MIGRATIONS)
        return state.db
    INVENTORY_MIGRATIONS.apply(state)
    return state


def _rows_db(state: Any) -> Any:
    """`_db`, to read recipient rows: a report's view of a big state checks their pages when
    they are first read rather than on open (cutover.state.CHECKED_WHEN_READ)."""
    db = _db(state)
    check_table = getattr(state, "check_table", None)
    if check_table is not None:
        check_table("inventory_recipients")
    return db


_ENCODER = json.JSONEncoder(sort_keys=True, default=str)  # what json.dumps(sort_keys) does
# The same encoder's C half, made once: JSONEncoder.encode builds it for every call (a
# quarter of the time of a recipient). No check for circular references: a recipient read
# from exports has none (one would end in RecursionError instead of ValueError).
_C_ENCODE = None if c_make_encoder is None else c_make_encoder(
    None, _ENCODER.default, encode_basestring_ascii, None, ": ", ", ", True, False, True)


def _json(value: dict[str, Any]) -> str:
    """`_ENCODER.encode(value)` for a dict."""
    if _C_ENCODE is None:  # pragma: no cover - a Python without the json accelerator
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def encode(recipient: dict[str, Any]) -> tuple[str, str]:
    """(data, stable): the recipient as stored (JSON, keys sorted) and the same without its
    volatile key `origin`, as digested. Encoded once: `origin` is cut out of the stored text
    where it occurs exactly once (always, but for a nested copy of the same member; then the
    members around it are encoded apart)."""
    data = _json(recipient)
    if "origin" not in recipient:
        return data, data
    origin = recipient["origin"]
    member = '"origin": ' + (encode_basestring_ascii(origin) if type(origin) is str
                             else _ENCODER.encode(origin))
    start = data.find(member)
    if start >= 0 and data.find(member, start + 1) < 0:  # exactly once
        end = start + len(member)
        if data[start - 2:start] == ", ":
            return data, data[:start - 2] + data[end:]
        if data[end:end + 2] == ", ":
            return data, data[:start] + data[end + 2:]
        return data, "{}"
    before = _ENCODER.encode({k: v for k, v in recipient.items() if k < "origin"})[1:-1]
    after = _ENCODER.encode({k: v for k, v in recipient.items() if k > "origin"})[1:-1]
    return data, "{" + ", ".join(p for p in (before, after) if p) + "}"


def recipient_digest(recipient: dict[str, Any]) -> str:
    return sha256(encode(recipient)[1].encode()).hexdigest()


class SetDigest:
    """Order-independent digest of a recipient set in constant memory: the sum of each
    recipient's hash modulo 2**256 (addresses are unique within a snapshot)."""

    def __init__(self) -> None:
        self.total = 0  # the sum, reduced modulo 2**256 when read (`hexdigest`)
        self.count = 0

    def add(self, recipient: dict[str, Any]) -> None:
        self.add_encoded(recipient["address"], encode(recipient)[1])

    def add_encoded(self, address: str, stable: str) -> None:
        """`stable`: the recipient as `encode` gives it without its volatile keys."""
        line = f"{address}:{sha256(stable.encode()).hexdigest()}".encode()
        self.total += int.from_bytes(sha256(line).digest())
        self.count += 1

    def hexdigest(self) -> str:
        self.total %= 2**256
        return f"{self.total:064x}"


def snapshot_digest(recipients: Iterable[dict[str, Any]]) -> str:
    """Order-independent digest of a recipient set: equal digests mean nothing changed."""
    digest = SetDigest()
    for recipient in recipients:
        digest.add(recipient)
    return digest.hexdigest()


@dataclass(frozen=True)
class SnapshotTotals:
    """What a snapshot's row and summary hold once every recipient has been made a row."""

    digest: str
    recipients: int
    total_bytes: int
    summary: dict[str, Any]  # `SummaryBuilder.state()`


class SnapshotRows:
    """One pass over a snapshot's recipients: each one's row of inventory_recipients (without
    the snapshot id: `row`), and, once they are all made, their `totals`."""

    def __init__(self) -> None:
        self.digest = SetDigest()
        self.summary = SummaryBuilder()
        self.total = 0

    def row(self, recipient: dict[str, Any], line: str | None = None) -> tuple[Any, ...]:
        """`line`: the recipient's CSV report line, when whoever read it rendered it."""
        data, stable = encode(recipient)
        address, size = recipient["address"], recipient.get("size_bytes")
        self.digest.add_encoded(address, stable)
        self.summary.add(recipient)
        if size:
            self.total += size
        return (address, recipient.get("class"), recipient.get("destination"),
                recipient.get("type"), size, data,
                csv_line(recipient) if line is None else line)

    def totals(self) -> SnapshotTotals:
        return SnapshotTotals(self.digest.hexdigest(), self.digest.count, self.total,
                              self.summary.state())


def store_snapshot(state: Any, source: str, recipients: Iterable[dict[str, Any]],
                   warnings: list[str], created_by: str | None = None,
                   taken_at: datetime | None = None, expect_digest: str | None = None) -> int:
    """Store every recipient and return the snapshot id. `recipients` may be a generator that
    raises (a validation error found at the end of a file): then nothing at all is stored.
    `warnings` is read after the recipients are consumed, so a streaming reader may append.
    With `expect_digest`, content that differs raises WorldChanged and nothing is stored."""
    made = SnapshotRows()
    return store_rows(state, source, map(made.row, recipients), made.totals, warnings,
                      created_by, taken_at, expect_digest)


def store_rows(state: Any, source: str, rows: Iterable[tuple[Any, ...]],
               totals: Callable[[], SnapshotTotals], warnings: list[str],
               created_by: str | None = None, taken_at: datetime | None = None,
               expect_digest: str | None = None) -> int:
    """`store_snapshot` for rows made by `SnapshotRows.row`; `totals` is called once `rows`
    are consumed, as `warnings` is read."""
    db = _db(state)
    taken = (taken_at or datetime.now(UTC)).isoformat(timespec="seconds")
    with db.atomic():
        snapshot_id = db["inventory_snapshots"].insert({
            "source": source, "taken_at": taken, "status": "incomplete", "recipients": 0,
            "total_bytes": 0, "digest": "", "warnings": "[]", "created_by": created_by,
        }).last_pk
        with _without_cycle_collection():
            batch: list[tuple[Any, ...]] = []
            append = batch.append
            for row in rows:
                append((snapshot_id, *row))
                if len(batch) >= BATCH:
                    _insert(db.conn, batch)
                    batch.clear()
            _insert(db.conn, batch)
        done = totals()
        if expect_digest is not None and done.digest != expect_digest:
            raise WorldChanged(f"the inventory of {source} changed since the preview: "
                               "preview the step again")
        db["inventory_snapshots"].update(snapshot_id, {
            "status": "complete", "recipients": done.recipients,
            "total_bytes": done.total_bytes, "digest": done.digest,
            "warnings": json.dumps(list(warnings)),
        })
        db.execute("insert into inventory_summaries (snapshot_id, version, data) "
                   "values (?, ?, ?)", [snapshot_id, SUMMARY_VERSION,
                                        json.dumps(done.summary, default=str)])
    return snapshot_id


_INSERT = ("insert into inventory_recipients (snapshot_id, address, class, destination, type, "
           "size_bytes, data, csv_line) values (?, ?, ?, ?, ?, ?, ?, ?)")


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection while the rows are made: they hold no cycles (reference
    counting frees each recipient), but the hundreds of thousands of containers they are made
    of start a collection every few hundred, each walking every object of this process
    (0.18 s of 1.7 at 50,000 recipients). What a cycle left meanwhile is collected later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _insert(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
    if not batch:
        return
    try:
        conn.executemany(_INSERT, batch)
    except sqlite3.IntegrityError as exc:  # the same address twice in one snapshot
        if "UNIQUE" in str(exc):
            raise UsageError(f"duplicate address in one snapshot: {exc}") from None
        raise


def list_snapshots(state: Any, include_superseded: bool = False) -> list[dict[str, Any]]:
    """Snapshots, oldest first (never an incomplete one)."""
    db = _db(state)
    where = "status = 'complete'" if not include_superseded else \
        "status in ('complete', 'superseded')"
    rows = db["inventory_snapshots"].rows_where(where, order_by="id")
    return [{**row, "warnings": json.loads(row["warnings"] or "[]")} for row in rows]


def get_snapshot(state: Any, snapshot_id: int | str | None = None) -> dict[str, Any]:
    """One complete snapshot's metadata; None means the latest. NotFound otherwise."""
    snapshots = list_snapshots(state)
    if not snapshots:
        raise NotFound("no inventory snapshot yet: run `cutover inventory collect`")
    if snapshot_id is None:
        return snapshots[-1]
    for snapshot in snapshots:
        if str(snapshot["id"]) == str(snapshot_id):
            return snapshot
    known = ", ".join(str(s["id"]) for s in snapshots[-10:])
    raise NotFound(f"no complete inventory snapshot {snapshot_id} (latest: {known})")


def latest_snapshot(state: Any, source: str | None = None) -> dict[str, Any] | None:
    snapshots = [s for s in list_snapshots(state) if source is None or s["source"] == source]
    return snapshots[-1] if snapshots else None


def iter_recipients(state: Any, snapshot_id: int) -> Iterator[dict[str, Any]]:
    """Recipients of a snapshot in address order, streamed from the DB."""
    db = _rows_db(state)
    loads = json.loads
    for (data,) in db.execute("select data from inventory_recipients where snapshot_id = ? "
                              "order by address", [snapshot_id]):
        yield loads(data)


def _stored_summary(db: Any, snapshot_id: int) -> dict[str, Any] | None:
    """The summary state stored with a snapshot by this version's renderer, if any."""
    rows = db.execute("select data from inventory_summaries where snapshot_id = ? and "
                      "version = ?", [snapshot_id, SUMMARY_VERSION]).fetchall()
    return json.loads(rows[0][0]) if rows else None


def snapshot_summary(state: Any, snapshot: dict[str, Any],
                     throughput_mb_s: float | None = None) -> dict[str, Any]:
    """The report summary of a snapshot (its metadata as `get_snapshot` gives it): the one
    stored with it, else (a snapshot stored by an older version) computed from its recipients."""
    stored = _stored_summary(_db(state), snapshot["id"])
    if stored is not None:
        return SummaryBuilder(stored).summary(snapshot, throughput_mb_s)
    return summarize(iter_recipients(state, snapshot["id"]), snapshot, throughput_mb_s)


def class_counts(state: Any, snapshot_id: int) -> dict[str, int]:
    """Recipients per class, without reading them (from the class column)."""
    db = _rows_db(state)
    return {klass: count for klass, count in db.execute(
        "select class, count(*) from inventory_recipients where snapshot_id = ? "
        "group by class", [snapshot_id])}


def iter_csv_lines(state: Any, snapshot_id: int) -> Iterator[str] | None:
    """Each recipient's line of the CSV report in address order, as stored with the snapshot;
    None when they were stored by another version (render from `iter_recipients` then)."""
    db = _rows_db(state)
    if not db.execute("select 1 from inventory_summaries where snapshot_id = ? and version = ?",
                      [snapshot_id, SUMMARY_VERSION]).fetchall():
        return None
    return (line for (line,) in db.execute(
        "select csv_line from inventory_recipients where snapshot_id = ? order by address",
        [snapshot_id]))


def latest_recipients(state: Any, source: str | None = None) -> list[dict[str, Any]]:
    """Recipients of the latest complete snapshot ([] when none): what `for_each` selects."""
    snapshot = latest_snapshot(state, source)
    return list(iter_recipients(state, snapshot["id"])) if snapshot else []


def find_recipient(state: Any, address: str,
                   snapshot_id: int | None = None) -> dict[str, Any] | None:
    """A recipient by primary address or alias in a snapshot (default the latest)."""
    db = _rows_db(state)
    snapshot = get_snapshot(state, snapshot_id)
    address = address.strip().lower()
    rows = list(db.query("select data from inventory_recipients where snapshot_id = ? and "
                         "address = ?", [snapshot["id"], address]))
    if rows:
        return json.loads(rows[0]["data"])
    pattern = f'%"{address}"%'
    for row in db.query("select data from inventory_recipients where snapshot_id = ? and "
                        "data like ?", [snapshot["id"], pattern]):
        recipient = json.loads(row["data"])
        if address in recipient.get("aliases", []):
            return recipient
    return None


def supersede(state: Any, source: str, digest: str, created_by: str | None) -> int:
    """Mark the snapshots a step stored as superseded; returns how many changed."""
    db = _db(state)
    with db.atomic():
        cursor = db.execute("update inventory_snapshots set status = 'superseded' where "
                            "status = 'complete' and source = ? and digest = ? and "
                            "created_by is ?", [source, digest, created_by])
    return cursor.rowcount


DIFF_FIELDS = ("class", "destination", "type", "display_name", "aliases", "forwarding", "rules",
               "size_bytes", "items")


def diff_snapshots(state: Any, before_id: int | str | None = None,
                   after_id: int | str | None = None) -> dict[str, Any]:
    """Added, removed and changed recipients between two snapshots (default: the two latest).
    `moves` lists class or destination changes, the drift that matters before a phase."""
    snapshots = list_snapshots(state)
    after = get_snapshot(state, after_id)
    if before_id is None:
        earlier = [s for s in snapshots if s["id"] < after["id"]]
        if not earlier:
            raise NotFound(f"snapshot {after['id']} is the first one: nothing to compare with")
        before = earlier[-1]
    else:
        before = get_snapshot(state, before_id)
    result: dict[str, Any] = {"before": before["id"], "after": after["id"], "added": [],
                              "removed": [], "changed": [], "moves": []}
    old = iter_recipients(state, before["id"])
    new = iter_recipients(state, after["id"])
    for left, right in _merge_by_address(old, new):
        _diff_pair(left, right, result)
    return result


def _merge_by_address(old: Iterator[dict[str, Any]], new: Iterator[dict[str, Any]]):
    """Walk two address-ordered streams together (memory stays flat for large snapshots)."""
    left, right = next(old, None), next(new, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left["address"] < right["address"]):
            yield left, None
            left = next(old, None)
        elif left is None or right["address"] < left["address"]:
            yield None, right
            right = next(new, None)
        else:
            yield left, right
            left, right = next(old, None), next(new, None)


def _diff_pair(left: dict[str, Any] | None, right: dict[str, Any] | None,
               result: dict[str, Any]) -> None:
    def brief(r: dict[str, Any]) -> dict[str, Any]:
        return {k: r.get(k) for k in ("address", "class", "destination", "type")}

    if left is None:
        result["added"].append(brief(right))
    elif right is None:
        result["removed"].append(brief(left))
    else:
        fields = {key: {"before": left.get(key), "after": right.get(key)}
                  for key in DIFF_FIELDS if left.get(key) != right.get(key)}
        if fields:
            result["changed"].append({"address": right["address"], "fields": fields})
        if "class" in fields or "destination" in fields:
            result["moves"].append({"address": right["address"],
                                    "before": f"{left.get('class')} -> {left.get('destination')}",
                                    "after": f"{right.get('class')} -> "
                                             f"{right.get('destination')}",
                                    "reason": right.get("reason")})
