"""ZoneFile: the file-backed twin of Rfc2136Zone. One zone file per zone under `path`, named
after the zone (`example.org` or `example.org.zone`), edited line by line as an administrator
would (cutover.parsers.zone_text): only the lines of the edited RRsets change and the SOA serial
is bumped in place; comments, directives, ordering and alignment stay. A file that cannot be
edited with certainty that way ($INCLUDE, $GENERATE) is rewritten whole through dnspython,
every record kept.

    providers:
      demo-zones: {kind: zonefile, path: zones/}

Prerequisites are checked as an RFC 2136 server would (and stricter: the TTL counts too), under an
exclusive lock, so a file edited since the preview raises WorldChanged and is left alone.
"""

from __future__ import annotations

import fcntl
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone

from cutover.connectors.base import connector
from cutover.connectors.dns_zone import (
    Edit,
    ServerError,
    View,
    changed_message,
    safety_settings,
)
from cutover.dns_model import (
    RRset,
    absolute_name,
    parse_value,
    relative_text,
    rrset_from_rdataset,
    same_rrset,
    zone_origin,
    zone_text,
)
from cutover.errors import ConfigInvalid, NotFound, UsageError, WorldChanged
from cutover.files import atomic_write
from cutover.parsers.zone_text import ZoneTextUnsupported, edit_zone_text

if TYPE_CHECKING:
    from cutover.workspace import Workspace

SUFFIXES = ("", ".zone")


@connector("zonefile", role="dns-zone")
class ZoneFile:
    def __init__(self, directory: Path, safety: dict[str, Any] | None = None):
        self.directory = directory
        self.safety = safety or {}

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> ZoneFile:
        if not config.get("path"):
            raise ConfigInvalid("cutover.yaml: a zonefile provider needs a path (a directory)")
        return cls(workspace.path(config["path"]), safety_settings(config))

    # --- where the zones are -------------------------------------------------------------
    def zones(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        names = {p.name.removesuffix(".zone").lower() for p in self.directory.iterdir()
                 if p.is_file() and not p.name.startswith(".")}
        return sorted(names)

    def file_for(self, zone: str) -> Path:
        zone = zone_text(zone)
        for suffix in SUFFIXES:
            candidate = self.directory / f"{zone}{suffix}"
            if candidate.is_file():
                return candidate
        raise NotFound(f"zone {zone} not found: no file {self.directory / zone}[.zone]")

    def zone_for(self, name: str) -> str | None:
        wanted = zone_origin(name)
        matches = [z for z in self.zones() if wanted.is_subdomain(zone_origin(z))]
        return max(matches, key=len) if matches else None

    # --- reading -------------------------------------------------------------------------
    def _load(self, zone: str) -> dns.zone.Zone:
        return _load_file(self.file_for(zone), zone)

    def _read(self, zone: str) -> dns.zone.Zone:
        """The zone for reading only: parsed once while the file stays the same (an edit
        replaces the file: a new inode and mtime). Routing checks read each zone per address."""
        path = self.file_for(zone)
        try:
            info = path.stat()
        except OSError:
            return self._load(zone)  # let the load say what is wrong
        return _parsed(zone, path, info.st_ino, info.st_mtime_ns, info.st_size)

    def read_zone(self, zone: str) -> dict[tuple[str, str], RRset]:
        return _rrsets(zone, self._read(zone))

    def read_rrset(self, zone: str, name: str, rdtype: str) -> RRset | None:
        return _rrset(zone, self._read(zone), name, rdtype)

    def views(self, zone: str, name: str, rdtype: str) -> dict[str, View]:
        return {str(self.file_for(zone)): self.read_rrset(zone, name, rdtype)}

    def serial(self, zone: str) -> int:
        return _soa_serial(self._read(zone))

    def serials(self, zone: str) -> dict[str, int | ServerError]:
        return {str(self.file_for(zone)): self.serial(zone)}

    # --- writing -------------------------------------------------------------------------
    def update(self, zone: str, edits: list[Edit]) -> None:
        path = self.file_for(zone)
        with _locked(path):
            loaded = self._load(zone)
            for edit in edits:
                current = _rrset(zone, loaded, edit.name, edit.type)
                if not same_rrset(current, edit.before):
                    raise WorldChanged(changed_message(zone, edit, current, str(path)))
            _write(path, _edited_text(zone, path, loaded, edits))


def _load_file(path: Path, zone: str) -> dns.zone.Zone:
    try:
        return dns.zone.from_file(str(path), origin=zone_origin(zone), relativize=True)
    except dns.exception.DNSException as exc:
        raise UsageError(f"{path}: not a valid zone file: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


@functools.lru_cache(maxsize=64)
def _parsed(zone: str, path: Path, inode: int, mtime_ns: int, size: int) -> dns.zone.Zone:
    """One parse per (zone file, version of it); never edited (update() loads its own)."""
    return _load_file(path, zone)


def _edited_text(zone: str, path: Path, loaded: dns.zone.Zone, edits: list[Edit]) -> str:
    wanted = {(edit.name, edit.type): edit.after for edit in edits}
    try:
        with open(path, newline="") as source:  # keep CRLF line ends as they are
            return edit_zone_text(source.read(), zone, wanted)
    except ZoneTextUnsupported:
        for edit in edits:
            _replace(zone, loaded, edit)
        _bump_serial(loaded)
        return zone_file_text(loaded)



def _rrsets(zone: str, loaded: dns.zone.Zone) -> dict[tuple[str, str], RRset]:
    origin = zone_origin(zone)
    found: dict[tuple[str, str], RRset] = {}
    for name, rdataset in loaded.iterate_rdatasets():
        relative = relative_text(origin, name.derelativize(origin))
        rrset = rrset_from_rdataset(zone, relative, rdataset)
        found[rrset.key] = rrset
    return found


def _rrset(zone: str, loaded: dns.zone.Zone, name: str, rdtype: str) -> RRset | None:
    rdataset = loaded.get_rdataset(absolute_name(zone, name), rdtype)
    return rrset_from_rdataset(zone, name, rdataset) if rdataset else None


def _replace(zone: str, loaded: dns.zone.Zone, edit: Edit) -> None:
    owner = absolute_name(zone, edit.name)
    loaded.delete_rdataset(owner, edit.type)
    if edit.after is None:
        return
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(edit.type))
    for value in edit.after.values:
        rdataset.add(parse_value(zone, edit.type, value), edit.after.ttl)
    loaded.replace_rdataset(owner, rdataset)


def _soa_serial(loaded: dns.zone.Zone) -> int:
    return int(loaded.get_rdataset(dns.name.empty, "SOA")[0].serial)


def _bump_serial(loaded: dns.zone.Zone) -> None:
    soa = loaded.get_rdataset(dns.name.empty, "SOA")
    new_soa = soa[0].replace(serial=(soa[0].serial + 1) % 2**32)
    rdataset = dns.rdataset.Rdataset(soa.rdclass, soa.rdtype)
    rdataset.add(new_soa, soa.ttl)
    loaded.replace_rdataset(dns.name.empty, rdataset)


def _write(path: Path, text: str) -> None:
    """Write beside the file and rename over it: a reader sees the old or the new zone."""
    atomic_write(path, text)


def zone_file_text(loaded: dns.zone.Zone) -> str:
    """The zone as text: $ORIGIN, the apex (SOA, then NS) first, then names in order."""
    apex_first = {dns.rdatatype.SOA: 0, dns.rdatatype.NS: 1}
    lines = [f"$ORIGIN {loaded.origin.to_text()}"]
    names = sorted(loaded.nodes, key=lambda name: (name != dns.name.empty, name))
    for name in names:
        rdatasets = sorted(loaded.nodes[name].rdatasets,
                           key=lambda r: (apex_first.get(r.rdtype, 2), r.rdtype))
        lines.extend(r.to_text(name, origin=loaded.origin, relativize=True) for r in rdatasets)
    return "\n".join(lines) + "\n"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise editors of the zones directory. The lock is taken on the directory itself:
    a lock file beside the zone would outlive the edit (a rollback must leave the directory as
    it found it), and the zone file's own inode is replaced by every atomic write."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
