"""The small interface both DNS connectors share (Rfc2136Zone and its twin ZoneFile).

    read_zone(zone)                  every RRset of the zone, keyed by (relative name, type)
    read_rrset(zone, name, type)     one RRset as the primary serves it now, or None
    update(zone, edits)              apply edits atomically; each edit's `before` is a
                                     prerequisite, so a changed world raises WorldChanged
    views(zone, name, type)          the RRset as each authoritative nameserver serves it
    serials(zone) / serial(zone)     SOA serial per nameserver / on the primary
    zone_for(name)                   the zone (of this provider) that holds `name`, or None

Names are relative to the zone ("@" is the apex); values are canonical (see
cutover.dns_model). This module registers no connector kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cutover.dns_model import RRset

#: Provider-level safety settings a `dns.records` step falls back to (see cutover.safety).
SAFETY_KEYS = ("max_update_share", "max_delete_share", "min_existing_records")


@dataclass(frozen=True)
class Edit:
    """Turn one RRset from `before` (None: absent) into `after` (None: delete it)."""

    name: str
    type: str
    before: RRset | None
    after: RRset | None


@dataclass(frozen=True)
class ServerError:
    """A nameserver that could not answer (unreachable, not authoritative, refused)."""

    message: str


View = RRset | None | ServerError


class DnsZone(Protocol):
    safety: dict[str, Any]

    def zone_for(self, name: str) -> str | None: ...

    def read_zone(self, zone: str) -> dict[tuple[str, str], RRset]: ...

    def read_rrset(self, zone: str, name: str, rdtype: str) -> RRset | None: ...

    def update(self, zone: str, edits: list[Edit]) -> None: ...

    def views(self, zone: str, name: str, rdtype: str) -> dict[str, View]: ...

    def serials(self, zone: str) -> dict[str, int | ServerError]: ...

    def serial(self, zone: str) -> int: ...


def changed_message(zone: str, edit: Edit, current: RRset | None, where: str) -> str:
    """The WorldChanged message: what the RRset is now, what the preview expected."""
    from cutover.dns_model import fqdn

    now = current.describe() if current else "absent"
    expected = edit.before.describe() if edit.before else "absent"
    return (f"{edit.type} {fqdn(zone, edit.name)} changed since the preview on {where} "
            f"(now {now}, expected {expected}); nothing was written")


def safety_settings(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config[key] for key in SAFETY_KEYS if key in config}


def serial_newer_or_equal(serial: int, reference: int) -> bool:
    """RFC 1982 serial arithmetic: is `serial` at or after `reference`?"""
    return serial == reference or 0 < (serial - reference) % 2**32 < 2**31
