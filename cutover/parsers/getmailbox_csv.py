"""Get-Mailbox / Get-MailboxStatistics / Get-Recipient CSV exports: text in, recipient dicts out.

What Exchange Management Shell writes, as admins produce it:

    Get-Mailbox -ResultSize Unlimited | Select Name,DisplayName,Alias,PrimarySmtpAddress,
        @{n='EmailAddresses';e={$_.EmailAddresses -join ';'}},RecipientTypeDetails,
        ForwardingAddress,ForwardingSmtpAddress,DeliverToMailboxAndForward,ExchangeGuid |
        Export-Csv Get-Mailbox.csv
    Get-Mailbox -ResultSize Unlimited | Get-MailboxStatistics |
        Select DisplayName,MailboxGuid,TotalItemSize,ItemCount,LastLogonTime |
        Export-Csv Get-MailboxStatistics.csv

- Windows PowerShell 5 writes `#TYPE Selected.Microsoft.Exchange...` as the first line unless
  -NoTypeInformation is given; PowerShell 7 never does. Both are accepted.
- PS5's default encoding for Export-Csv is UTF-16 LE with a BOM ("Unicode"); -Encoding UTF8 gives
  UTF-8 with a BOM. `detect_encoding` tells them apart from the first bytes.
- `EmailAddresses` exported without -join is the collection's ToString: the literal
  `Microsoft.Exchange.Data.ProxyAddressCollection` (no addresses: a warning), or over remoting a
  space-separated list. With -join ';' it is `SMTP:a@x;smtp:b@x;X500:/o=...`.
- `TotalItemSize` is `1.234 GB (1,324,567,890 bytes)`; the byte count in brackets is exact (its
  group separator follows the admin's locale, so only the digits count).

Errors that make the file unusable (missing columns, undecodable text, duplicate or missing
primary addresses) are collected as located Problems and raised together once the file has been
read; everything else (a malformed size, a placeholder EmailAddresses) is a warning for that row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cutover.errors import Problem, ValidationFailed

MAILBOX_REQUIRED = ("PrimarySmtpAddress", "RecipientTypeDetails")
STATISTICS_SIZE_COLUMNS = ("TotalItemSize", "ItemCount")
STATISTICS_KEY_COLUMNS = ("MailboxGuid", "PrimarySmtpAddress", "Identity", "DisplayName")
PROXY_COLLECTION_PLACEHOLDERS = (
    "Microsoft.Exchange.Data.ProxyAddressCollection",
    "Deserialized.Microsoft.Exchange.Data.ProxyAddressCollection",
    "System.Collections.ArrayList",
)

#: RecipientTypeDetails -> the short type the classifier matches on.
RECIPIENT_TYPES: dict[str, str] = {
    "UserMailbox": "user",
    "LinkedMailbox": "user",
    "SharedMailbox": "shared",
    "RoomMailbox": "room",
    "LinkedRoomMailbox": "room",
    "EquipmentMailbox": "equipment",
    "SchedulingMailbox": "scheduling",
    "DiscoveryMailbox": "discovery",
    "ArbitrationMailbox": "system",
    "AuditLogMailbox": "system",
    "AuxAuditLogMailbox": "system",
    "MonitoringMailbox": "system",
    "SystemMailbox": "system",
    "SystemAttendantMailbox": "system",
    "PublicFolderMailbox": "public-folder",
    "PublicFolder": "public-folder",
    "GroupMailbox": "group-mailbox",
    "TeamMailbox": "group-mailbox",
    "MailUser": "mailuser",
    "RemoteUserMailbox": "remote",
    "RemoteSharedMailbox": "remote",
    "RemoteRoomMailbox": "remote",
    "RemoteEquipmentMailbox": "remote",
    "MailContact": "contact",
    "MailForestContact": "contact",
    "MailUniversalDistributionGroup": "group",
    "MailUniversalSecurityGroup": "group",
    "MailNonUniversalGroup": "group",
    "RoomList": "group",
    "DynamicDistributionGroup": "group",
}

_SIZE_IN_BRACKETS = re.compile(r"\(([\d.,\s\u00a0'\u202f]+)\s*bytes\)", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE_PLAIN = re.compile(r"^([\d.]+)\s*(b|kb|mb|gb|tb)$", re.IGNORECASE)
_PROXY_SPLIT = re.compile(r"\s+(?=[A-Za-z0-9]{2,8}:)")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M:%S",
                 "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")


def detect_encoding(head: bytes) -> str:
    """The codec for a CSV export, from its first bytes (BOMs as PowerShell writes them)."""
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        return "utf-16"  # the codec reads the BOM and the byte order
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0:1] != b"\x00":
        return "utf-16-le"  # UTF-16 without its BOM: every other byte of ASCII is NUL
    return "utf-8"


def parse_size(text: str) -> int | None:
    """Bytes from a TotalItemSize value; None for an empty cell. ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return None
    bracketed = _SIZE_IN_BRACKETS.search(text)
    if bracketed:
        digits = re.sub(r"\D", "", bracketed.group(1))
        if digits:
            return int(digits)
    if text.isdigit():
        return int(text)
    plain = _SIZE_PLAIN.match(text)
    if plain:
        return int(float(plain.group(1)) * _SIZE_UNITS[plain.group(2).lower()])
    raise ValueError(f"malformed size {text!r} (expected like '1.2 GB (1,288,490,189 bytes)')")


def parse_count(text: str) -> int | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"malformed item count {text!r}")
    return int(text)


def parse_bool(text: str) -> bool | None:
    lowered = (text or "").strip().lower()
    return {"true": True, "false": False}.get(lowered)


def parse_datetime(text: str) -> str | None:
    """An ISO timestamp from the locale-dependent text PowerShell writes; None if unknown."""
    text = (text or "").strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    return None


@dataclass
class ProxyAddresses:
    primary: str | None = None
    aliases: list[str] = field(default_factory=list)  # smtp: secondary addresses
    others: list[str] = field(default_factory=list)  # X500:, SIP:, EUM: ... as written
    placeholder: bool = False  # the cell held the collection's type name, not its values


def parse_proxy_addresses(text: str) -> ProxyAddresses:
    """`SMTP:a@x;smtp:b@x;X500:/o=...` (or space separated) -> primary, aliases, the rest."""
    text = (text or "").strip()
    result = ProxyAddresses()
    if not text:
        return result
    if text in PROXY_COLLECTION_PLACEHOLDERS:
        result.placeholder = True
        return result
    values = text.split(";") if ";" in text else _PROXY_SPLIT.split(text)
    for value in (v.strip() for v in values):
        prefix, sep, rest = value.partition(":")
        if not sep:
            continue
        if prefix == "SMTP":
            result.primary = rest.lower()
        elif prefix.lower() == "smtp":
            result.aliases.append(rest.lower())
        else:
            result.others.append(value)
    return result


def forwarding_target(text: str) -> str | None:
    """`smtp:x@y` (ForwardingSmtpAddress) or a ForwardingAddress identity -> its target."""
    text = (text or "").strip()
    if not text:
        return None
    prefix, sep, rest = text.partition(":")
    if sep and prefix.lower() == "smtp":
        return rest.lower()
    return text.lower() if _ADDRESS.match(text) else text


@dataclass
class ImportReport:
    """Problems found while reading: `errors` make the import fail, `warnings` do not."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def raise_if_failed(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class _LineCounter:
    """Feeds csv.reader while counting physical lines, to locate each row in the file."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.line += 1
        return text


def iter_rows(lines: Iterable[str], file: str,
              report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {column: value}) for each data row; a `#TYPE` first line is skipped. Decoding
    errors in the underlying stream become a located error instead of an exception."""
    counter = _LineCounter(lines)
    reader = csv.reader(counter)
    header: list[str] | None = None
    try:
        for row in reader:
            if header is None:
                if row and row[0].startswith("#TYPE"):
                    continue
                header = [name.strip().lstrip("\ufeff") for name in row]
                yield 0, {name: name for name in header}  # the header, for column checks
                continue
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                report.errors.append(Problem(file, counter.line, f"{len(row)} fields where the "
                                                                 f"header has {len(header)}"))
                continue
            yield counter.line, dict(zip(header, row, strict=True))
    except UnicodeDecodeError:
        report.errors.append(Problem(file, counter.line + 1, "text is neither UTF-8 nor UTF-16 "
                             "with a BOM (re-export with Export-Csv -Encoding UTF8)"))
    except csv.Error as exc:
        report.errors.append(Problem(file, counter.line, f"malformed CSV: {exc}"))
    if header is None and not report.errors:
        report.errors.append(Problem(file, 1, "empty file: no header line"))


def _missing_columns(header: dict[str, str], required: Iterable[str]) -> list[str]:
    return [name for name in required if name not in header]


def _record_from_row(row: dict[str, str], where: str,
                     warn: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """A recipient dict from one Get-Mailbox/Get-Recipient row, or (None, error message)."""
    proxies = parse_proxy_addresses(row.get("EmailAddresses", ""))
    if proxies.placeholder:
        warn.append("EmailAddresses holds the collection type name, not addresses (export with "
                    "@{n='EmailAddresses';e={$_.EmailAddresses -join ';'}}): aliases unknown")
    address = (row.get("PrimarySmtpAddress") or "").strip().lower() or proxies.primary
    if not address or not _ADDRESS.match(address):
        return None, f"PrimarySmtpAddress {address or '(empty)'!r} is not an address"
    detail = (row.get("RecipientTypeDetails") or "").strip()
    kind = RECIPIENT_TYPES.get(detail)
    if kind is None:
        warn.append(f"unknown RecipientTypeDetails {detail!r}: type 'other'")
        kind = "other"
    local, _, domain = address.partition("@")
    record: dict[str, Any] = {
        "address": address,
        "local": local,
        "domain": domain,
        "aliases": sorted({a for a in proxies.aliases if a != address}),
        "other_addresses": proxies.others,
        "display_name": (row.get("DisplayName") or row.get("Name") or "").strip(),
        "type": kind,
        "type_detail": detail,
        "forwarding": _forwarding(row),
        "rules": [],
        "size_bytes": None,
        "items": None,
        "last_logon": None,
        "guid": (row.get("ExchangeGuid") or row.get("Guid") or "").strip().lower() or None,
        "identity": (row.get("Identity") or "").strip() or None,
        "origin": where,
    }
    _apply_statistics(record, row, warn)
    return record, None


def _forwarding(row: dict[str, str]) -> list[dict[str, Any]]:
    keep_copy = parse_bool(row.get("DeliverToMailboxAndForward", ""))
    result = []
    for column in ("ForwardingSmtpAddress", "ForwardingAddress"):
        target = forwarding_target(row.get(column, ""))
        if target:
            result.append({"via": column, "to": target, "keep_copy": bool(keep_copy)})
    return result


def _apply_statistics(record: dict[str, Any], row: dict[str, str], warn: list[str]) -> None:
    """Copy TotalItemSize/ItemCount/LastLogonTime from a row (of either export) into record."""
    try:
        size = parse_size(row.get("TotalItemSize", ""))
        if size is not None:
            record["size_bytes"] = size
    except ValueError as exc:
        warn.append(f"TotalItemSize: {exc}")
    try:
        items = parse_count(row.get("ItemCount", ""))
        if items is not None:
            record["items"] = items
    except ValueError as exc:
        warn.append(f"ItemCount: {exc}")
    logon = parse_datetime(row.get("LastLogonTime", ""))
    if logon:
        record["last_logon"] = logon


def read_recipients(lines: Iterable[str], file: str, report: ImportReport,
                    seen: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Stream recipient dicts from a Get-Mailbox or Get-Recipient export. `seen` maps the
    addresses read so far to their file: a later file's copy of a known address is skipped
    (Get-Recipient repeats every mailbox), while a duplicate within one file is an error."""
    seen = {} if seen is None else seen
    rows = iter_rows(lines, file, report)
    for line, row in rows:
        if line == 0:
            missing = _missing_columns(row, MAILBOX_REQUIRED)
            if missing:
                report.errors.append(Problem(file, 1, "missing column(s) " + ", ".join(missing)
                                             + " (is this a Get-Mailbox or Get-Recipient "
                                             "export?)"))
                return
            continue
        warnings: list[str] = []
        record, error = _record_from_row(row, f"{file}:{line}", warnings)
        report.warnings.extend(Problem(file, line, text) for text in warnings)
        if error:
            report.errors.append(Problem(file, line, error))
            continue
        address = record["address"]
        earlier = seen.get(address)
        if earlier == file:
            report.errors.append(Problem(file, line, f"duplicate address {address}"))
            continue
        if earlier is not None:
            continue
        seen[address] = file
        yield record


def read_statistics(lines: Iterable[str], file: str,
                    report: ImportReport) -> dict[str, dict[str, Any]]:
    """Get-MailboxStatistics rows keyed by every identity they carry (lower-cased): MailboxGuid,
    PrimarySmtpAddress, Identity, DisplayName. Values hold size_bytes, items, last_logon."""
    table: dict[str, dict[str, Any]] = {}
    for line, row in iter_rows(lines, file, report):
        if line == 0:
            if not any(name in row for name in STATISTICS_SIZE_COLUMNS) or not any(
                    name in row for name in STATISTICS_KEY_COLUMNS):
                report.errors.append(Problem(file, 1, "a Get-MailboxStatistics export needs "
                                             "TotalItemSize or ItemCount and one of "
                                             + ", ".join(STATISTICS_KEY_COLUMNS)))
                return table
            continue
        warnings: list[str] = []
        stats: dict[str, Any] = {"size_bytes": None, "items": None, "last_logon": None}
        _apply_statistics(stats, row, warnings)
        report.warnings.extend(Problem(file, line, text) for text in warnings)
        for column in STATISTICS_KEY_COLUMNS:
            key = (row.get(column) or "").strip().lower()
            if key:
                table.setdefault(f"{column}:{key}", stats)
    return table


def join_statistics(record: dict[str, Any], statistics: dict[str, dict[str, Any]]) -> bool:
    """Fill size/items/last logon from the statistics export; False when no row matches."""
    candidates = [("MailboxGuid", record.get("guid")), ("PrimarySmtpAddress", record["address"]),
                  ("Identity", record.get("identity")),
                  ("DisplayName", record.get("display_name"))]
    for column, value in candidates:
        stats = statistics.get(f"{column}:{(value or '').lower()}") if value else None
        if stats:
            for key in ("size_bytes", "items", "last_logon"):
                if stats[key] is not None:
                    record[key] = stats[key]
            return True
    return False


def parse_text(text: str, file: str = "<csv>") -> tuple[list[dict[str, Any]], ImportReport]:
    """Whole-text convenience for tests and small files; raises ValidationFailed on errors."""
    report = ImportReport()
    records = list(read_recipients(text.splitlines(keepends=True), file, report))
    report.raise_if_failed()
    return records, report
