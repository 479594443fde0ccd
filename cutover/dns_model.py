"""Record text helpers shared by the DNS connectors and steps: names relative to a zone, values in
zone-file presentation syntax, and the RRset value that previews, checkpoints and verification
compare. Pure: strings in, values out.

Values are kept canonical so that two spellings of one record compare equal: names absolute with
a trailing dot, lower-case, as dnspython prints them (`"10 mx1.example.org."`, TXT quoted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

APEX = "@"
#: Types a dns.records change may not touch: the SOA belongs to the server.
UNCHANGEABLE_TYPES = frozenset({"SOA"})
_TXT_CHUNK = 255
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


class RecordInvalid(ValueError):
    """A name, type or value that cannot be a record of the zone."""


@dataclass(frozen=True)
class RRset:
    """All records of one name and type, relative name, with the TTL they share."""

    name: str
    type: str
    ttl: int
    values: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "ttl": self.ttl, "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RRset:
        return cls(data["name"], data["type"], int(data["ttl"]), tuple(data["values"]))

    def describe(self) -> str:
        return f"{self.ttl} {' | '.join(self.values)}"


def zone_origin(zone: str) -> dns.name.Name:
    try:
        return dns.name.from_text(zone.strip().rstrip(".") + ".")
    except dns.exception.DNSException as exc:
        raise RecordInvalid(f"invalid zone name {zone!r}: {exc}") from None


def zone_text(zone: str) -> str:
    """The zone's canonical spelling: lower-case, no trailing dot."""
    return zone_origin(zone).to_text(omit_final_dot=True).lower()


def relative_name(zone: str, name: str) -> str:
    """`name` relative to `zone`, "@" for the apex. A name ending in "." is absolute and must lie
    inside the zone; anything else is already relative (as in a zone file)."""
    origin = zone_origin(zone)
    name = name.strip()
    if name in ("", APEX):
        return APEX
    try:
        absolute = dns.name.from_text(name, origin=origin)
    except dns.exception.DNSException as exc:
        raise RecordInvalid(f"invalid name {name!r}: {exc}") from None
    if not absolute.is_subdomain(origin):
        raise RecordInvalid(f"{name} is not inside zone {zone_text(zone)}")
    return relative_text(origin, absolute)


def relative_text(origin: dns.name.Name, absolute: dns.name.Name) -> str:
    if absolute == origin:
        return APEX
    return absolute.relativize(origin).to_text().lower()


def absolute_name(zone: str, relative: str) -> dns.name.Name:
    origin = zone_origin(zone)
    return origin if relative == APEX else dns.name.from_text(relative, origin=origin)


def fqdn(zone: str, relative: str) -> str:
    """`www` in `example.org` -> `www.example.org` (no trailing dot, for display and keys)."""
    return absolute_name(zone, relative).to_text(omit_final_dot=True).lower()


def record_type(text: str) -> str:
    try:
        rdtype = dns.rdatatype.from_text(text.strip().upper())
    except dns.exception.DNSException:
        raise RecordInvalid(f"unknown record type {text!r}") from None
    return dns.rdatatype.to_text(rdtype)


def _split_long_strings(value: str) -> str:
    """TXT character-strings hold at most 255 bytes; a long DKIM key written as one quoted string
    is split the way zone files and providers do, so the published record reads the same."""
    def split(match: re.Match[str]) -> str:
        body = match.group(1)
        chunks = [body[i:i + _TXT_CHUNK] for i in range(0, len(body), _TXT_CHUNK)] or [""]
        return " ".join(f'"{chunk}"' for chunk in chunks)

    return _QUOTED.sub(split, value)


def parse_value(zone: str, rdtype: str, value: str) -> dns.rdata.Rdata:
    origin = zone_origin(zone)
    value = str(value).strip()
    if rdtype in ("TXT", "SPF"):
        if not value.startswith('"') and re.search(r"\s", value):
            raise RecordInvalid(f'{rdtype} value must be quoted: "{value}"')
        value = _split_long_strings(value)
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, value, origin=origin,
                                   relativize=False)
    except dns.exception.DNSException as exc:
        raise RecordInvalid(f"invalid {rdtype} value {value!r}: {exc}") from None


def canonical_value(zone: str, rdtype: str, value: str) -> str:
    return rdata_text(parse_value(zone, rdtype, value), zone_origin(zone))


def canonical_values(zone: str, rdtype: str, values: list[str] | tuple[str, ...]
                     ) -> tuple[str, ...]:
    """Sorted, de-duplicated canonical values; raises RecordInvalid naming the bad one."""
    return tuple(sorted({canonical_value(zone, rdtype, value) for value in values}))


def rrset_from_rdataset(zone: str, relative: str, rdataset: Any) -> RRset:
    """An RRset from a dnspython rdataset (answer section, zone node or transfer)."""
    origin = zone_origin(zone)
    rdtype = dns.rdatatype.to_text(rdataset.rdtype)
    values = tuple(sorted({rdata_text(rdata, origin) for rdata in rdataset}))
    return RRset(relative, rdtype, int(rdataset.ttl), values)


def rdata_text(rdata: dns.rdata.Rdata, origin: dns.name.Name) -> str:
    """Presentation text with absolute names (zone nodes may hold relative ones); lower-case
    except for TXT, whose case is data."""
    text = rdata.to_text(origin=origin, relativize=False)
    return text if rdata.rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF) else text.lower()


def wanted_rrset(zone: str, name: str, rdtype: str, ttl: int, values: list[str]) -> RRset:
    return RRset(relative_name(zone, name), record_type(rdtype), int(ttl),
                 canonical_values(zone, record_type(rdtype), values))


def same_rrset(left: RRset | None, right: RRset | None) -> bool:
    """Equal data: both absent, or same TTL and the same set of values."""
    if left is None or right is None:
        return left is right
    return left.ttl == right.ttl and left.values == right.values
