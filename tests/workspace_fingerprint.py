"""What a workspace's systems hold, independent of incidental names: for comparing the outcome
of two runs (an interrupted-and-resumed one against an uninterrupted one)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dns.zone

IGNORED_TOP = {"state", "credentials"}
#: the migration service's job history in the Exchange Online twin (batches and move requests
#: with their report entries and times): a record that moves happened, as an audit log is, not
#: what the systems hold; a move back does not erase that a move took place
IGNORED_PATHS = {("tenant", "migration")}


def _zone_records(path: Path) -> list[str]:
    zone = dns.zone.from_file(str(path), origin=path.name.removesuffix(".zone"), relativize=True,
                              check_origin=False)
    records = []
    for name, ttl, rdata in zone.iterate_rdatas():
        if rdata.rdtype == dns.rdatatype.SOA:
            continue  # the serial counts updates, not content
        records.append(f"{name} {ttl} {dns.rdatatype.to_text(rdata.rdtype)} {rdata.to_text()}")
    return sorted(records)


def _maildir_entry(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    folder = relative.parent.parent  # .../<folder>/cur/<name>
    flags = path.name.rpartition(":2,")[2] if ":2," in path.name else ""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{folder} {digest} {flags}"


def _text(path: Path, roots: tuple[Path, ...]) -> str:
    """File text with the workspace's paths written as $WS: two copies of a workspace in
    different directories hold the same content."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    for root in roots:
        text = text.replace(str(root), "$WS")
    return text


def fingerprint(root: Path, copied_from: tuple[Path, ...] = ()) -> dict[str, object]:
    """Maildir messages as (folder, content, flags), zone records without SOA, passwd entries
    without their random hashes, every other file byte for byte."""
    roots = (root, *copied_from)
    result: dict[str, object] = {}
    messages: list[str] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        relative = path.relative_to(root)
        if relative.parts[0] in IGNORED_TOP or path.name.endswith(".lock") or \
                relative.parts[:2] in IGNORED_PATHS:
            continue  # lock files are incidental
        if path.parent.name in ("cur", "new", "tmp") and relative.parts[0] == "mail":
            if path.parent.name != "tmp":
                messages.append(_maildir_entry(path, root))
            continue
        if relative.parts[0] == "mail":
            continue  # uid lists and indexes: incidental
        if relative.parts[0] == "zones":
            result[str(relative)] = _zone_records(path)
        elif relative.parts[:2] == ("dovecot", "users"):
            result[str(relative)] = [line.split(":")[0] + ":" + ":".join(line.split(":")[2:])
                                     for line in _text(path, roots).splitlines()]
        else:
            result[str(relative)] = hashlib.sha256(_text(path, roots).encode(
                "utf-8", "surrogateescape")).hexdigest()
    result["mail"] = sorted(messages)
    return result
