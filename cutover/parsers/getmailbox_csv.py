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
- Values are written as the exporting session's culture writes them, and with -UseCulture so is
  the delimiter: PowerShell 7 in de-DE writes `"2,15 GB (2.308.544.921 bytes)";"18.11.2026
  14:07:31"`, fr-FR `18/11/2026 14:07:31`, en-US `11/18/2026 2:07:31 PM`. The delimiter is read
  from the header line (and said in a warning when it is not ','), dates by their separators,
  and the day/month order of slashed dates from the first date of the file only one order fits
  (`scan_day_first`).

Errors that make the file unusable (missing columns, undecodable text, rows of the wrong width,
an address twice in one file) are collected as located Problems and raised together once the
file has been read. An unreadable cell (a size, a count, a date, a flag, a placeholder
EmailAddresses) is a warning naming its line, and a row without a usable primary address is
skipped with a warning: one bad cell never refuses the whole file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import itemgetter
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

# The exact byte count in brackets, whatever the culture wrote around it: `(1,324,567,890 bytes)`,
# `(2.308.544.921 bytes)`, `(2 308 544 921 bytes)` (fr-FR: U+202F or U+00A0), `(2’308’544’921
# bytes)` (de-CH); the unit word is not relied on.
_SIZE_IN_BRACKETS = re.compile(r"\(([\d.,\s\u00a0'\u2019\u202f]+?)\s*[^\W\d_]+\)")
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE_PLAIN = re.compile(r"^(\d[\d.,]*)\s*(b|kb|mb|gb|tb)$", re.IGNORECASE)
_GROUPED_COUNT = re.compile(r"^\d{1,3}(?:[.,\s\u00a0'\u2019\u202f]\d{3})+$")
_NON_DIGITS = re.compile(r"\D")
_PROXY_SPLIT = re.compile(r"\s+(?=[A-Za-z0-9]{2,8}:)")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_WHITESPACE = re.compile(r"\s")

#: Columns read as dates (DateTime.ToString() in the exporting session's culture).
DATE_COLUMNS = ("LastLogonTime",)
DELIMITERS = (",", ";", "\t", "|")

# DateTime.ToString() as the cultures admins run PowerShell in write it. Day and month are
# told apart by the separator where the culture's order is fixed (dots and dashes: day first;
# year first when the year leads); slashes are both en-US (month first) and en-GB, fr-FR,
# es-ES, it-IT... (day first), which `DateReader` resolves for the whole file.
_TIME = (r"(?:[T\s,]\s*(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?(?:[.,]\d+)?"
         r"\s*(am|pm|a\.\s?m\.|p\.\s?m\.)?)?$")
_DAY_DOT_MONTH = re.compile(r"^(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})" + _TIME, re.IGNORECASE)
_DAY_DASH_MONTH = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})" + _TIME, re.IGNORECASE)
_YEAR_FIRST = re.compile(r"^(\d{4})[/.]\s?(\d{1,2})[/.]\s?(\d{1,2})\.?" + _TIME, re.IGNORECASE)
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})" + _TIME, re.IGNORECASE)


def detect_encoding(head: bytes) -> str:
    """The codec for a CSV export, from its first bytes (BOMs as PowerShell writes them)."""
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        return "utf-16"  # the codec reads the BOM and the byte order
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0:1] != b"\x00":
        return "utf-16-le"  # UTF-16 without its BOM: every other byte of ASCII is NUL
    return "utf-8"


def detect_delimiter(header: str) -> str:
    """The field delimiter of an export, from its header line: the candidate that splits it
    into the most fields (',' on a tie). Export-Csv -UseCulture writes the session culture's
    list separator: ',' in en-US, ';' in de-DE, fr-FR and most of Europe."""
    best, fields = ",", 0
    for candidate in DELIMITERS:
        count = len(next(csv.reader([header], delimiter=candidate), []))
        if count > fields:
            best, fields = candidate, count
    return best


def parse_size(text: str) -> int | None:
    """Bytes from a TotalItemSize value; None for an empty cell. ValueError if malformed.
    `2.15 GB (2,308,544,921 bytes)` in any culture's number format: the bracketed count is
    exact; a value without it (`2,15 GB`) is read with its last '.' or ',' as the decimal mark."""
    text = (text or "").strip()
    if not text:
        return None
    bracketed = _SIZE_IN_BRACKETS.search(text)
    if bracketed:
        digits = _NON_DIGITS.sub("", bracketed.group(1))
        if digits:
            return int(digits)
    if text.isdigit():
        return int(text)
    plain = _SIZE_PLAIN.match(_SPACES.sub(" ", text))
    if plain:
        return int(_decimal(plain.group(1)) * _SIZE_UNITS[plain.group(2).lower()])
    raise ValueError(f"malformed size {text!r} (expected like '1.2 GB (1,288,490,189 bytes)')")


def _decimal(text: str) -> float:
    """`2,15` or `2.15` or `1,023.5` or `1.023,5`: the last mark is the decimal one."""
    mark = max(text.rfind("."), text.rfind(","))
    if mark < 0:
        return float(text)
    whole, fraction = text[:mark], text[mark + 1:]
    return float(_NON_DIGITS.sub("", whole) + "." + fraction)


def parse_count(text: str) -> int | None:
    """An item count: plain digits, or digits grouped as any culture groups them."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if _GROUPED_COUNT.match(text):
        return int(_NON_DIGITS.sub("", text))
    raise ValueError(f"malformed item count {text!r}")


def parse_bool(text: str) -> bool | None:
    lowered = (text or "").strip().lower()
    return {"true": True, "false": False}.get(lowered)


class DateReader:
    """Reads the dates of one file: DateTime.ToString() in the exporting session's culture.

    `day_first` says how the file's slashed dates read (True: 18/11/2026, False: 11/18/2026),
    as `scan_day_first` learned it from the file; None when no date in the file tells. Then
    an ambiguous date (05/11/2026) is read month first when it carries AM/PM or the file is
    comma separated (en-US), else day first, and `assumed` keeps the first such value so the
    collection can say what was assumed."""

    def __init__(self, day_first: bool | None = None, delimiter: str = ","):
        self.day_first = day_first
        self.delimiter = delimiter
        self.assumed: tuple[str, bool] | None = None  # (first ambiguous value, day first?)

    def parse(self, text: str) -> str | None:
        """An ISO timestamp; None for an empty cell; ValueError when unreadable."""
        text = _SPACES.sub(" ", text or "").strip()
        if not text:
            return None
        try:
            if len(text) >= 10 and text[4] == "-" and text[:4].isdigit():
                return datetime.fromisoformat(text).isoformat()
            return self._localized(text)
        except ValueError:
            raise ValueError(f"unreadable date {text!r}") from None

    def _localized(self, text: str) -> str:
        match = _DAY_DOT_MONTH.match(text) or _DAY_DASH_MONTH.match(text)
        if match:
            day, month, year = match.group(1, 2, 3)
        elif match := _YEAR_FIRST.match(text):
            year, month, day = match.group(1, 2, 3)
        elif match := _SLASHED.match(text):
            first, second, year = match.group(1, 2, 3)
            day_first = self._day_first(text, int(first), int(second), match.group(7))
            day, month = (first, second) if day_first else (second, first)
        else:
            raise ValueError(text)
        hour, minute, second_, marker = match.group(4, 5, 6, 7)
        hour_value = int(hour or 0)
        if marker:
            pm = marker[0] in "pP"
            if not 1 <= hour_value <= 12:
                raise ValueError(text)
            hour_value = hour_value % 12 + (12 if pm else 0)
        return datetime(int(year), int(month), int(day), hour_value, int(minute or 0),
                        int(second_ or 0)).isoformat()

    def _day_first(self, text: str, first: int, second: int, marker: str | None) -> bool:
        if first > 12 or second > 12:
            return first > 12
        if self.day_first is not None:
            return self.day_first
        assumed = not marker and self.delimiter != ","
        if self.assumed is None:
            self.assumed = (text, assumed)
        return assumed


def parse_datetime(text: str, reader: DateReader | None = None) -> str | None:
    """An ISO timestamp from the locale-dependent text PowerShell writes; None if empty.
    ValueError when unreadable."""
    return (reader or DateReader()).parse(text)


def slashed_date_order(text: str) -> bool | None:
    """True for a date that reads only day first (18/11/2026), False only month first
    (11/18/2026), None for any other value."""
    match = _SLASHED.match(_SPACES.sub(" ", text or "").strip())
    if not match:
        return None
    first, second = int(match.group(1)), int(match.group(2))
    if first > 12 >= second:
        return True
    if second > 12 >= first:
        return False
    return None


@dataclass
class ProxyAddresses:
    primary: str | None = None
    aliases: list[str] = field(default_factory=list)  # smtp: secondary addresses
    others: list[str] = field(default_factory=list)  # X500:, SIP:, EUM: ... as written
    placeholder: bool = False  # the cell held the collection's type name, not its values


def parse_proxy_addresses(text: str) -> ProxyAddresses:
    """`SMTP:a@x;smtp:b@x;X500:/o=...` (or space separated) -> primary, aliases, the rest."""
    primary, aliases, others, placeholder = _proxy_parts(text)
    return ProxyAddresses(primary, aliases, others, placeholder)


def _proxy_parts(text: str) -> tuple[str | None, list[str], list[str], bool]:
    """What `parse_proxy_addresses` returns, as a tuple (read once per row)."""
    text = (text or "").strip()
    if not text:
        return None, [], [], False
    if text in PROXY_COLLECTION_PLACEHOLDERS:
        return None, [], [], True
    if ";" in text:
        values = text.split(";")
    elif _WHITESPACE.search(text):
        values = _PROXY_SPLIT.split(text)
    else:
        values = [text]  # one address (most contacts and groups)
    primary = None
    aliases: list[str] = []
    others: list[str] = []
    for value in values:
        value = value.strip()
        prefix, sep, rest = value.partition(":")
        if not sep:
            continue
        if prefix == "SMTP":
            primary = rest.lower()
        elif prefix.lower() == "smtp":
            aliases.append(rest.lower())
        else:
            others.append(value)
    return primary, aliases, others, False


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
    """Problems found while reading: `errors` make the import fail, `warnings` do not.
    `delimiters` records the field delimiter each file was read with."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    delimiters: dict[str, str] = field(default_factory=dict)

    def raise_if_failed(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def _is_preamble(line: str) -> bool:
    """PowerShell 5's `#TYPE ...` line, or the `sep=;` line Excel users put first."""
    return line.startswith("#TYPE") or (line.lower().startswith("sep=")
                                        and len(line.rstrip("\r\n")) == 5)


def iter_rows(lines: Iterable[str], file: str, report: ImportReport,
              delimiter: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(0, {column: column}) for the header, then (line, {column: value}) for each data row.
    A `#TYPE` (or `sep=X`) line before the header is skipped; the delimiter is the one given,
    else the one `sep=` names, else the one the header shows (`detect_delimiter`), and a
    delimiter other than ',' is said in a warning. Decoding errors in the underlying stream
    become a located error instead of an exception."""
    header: list[str] = []
    for line, cells in iter_cells(lines, file, report, delimiter):
        if line == 0:
            header = cells
            yield 0, {name: name for name in header}
        else:
            yield line, dict(zip(header, cells, strict=True))


def iter_cells(lines: Iterable[str], file: str, report: ImportReport,
               delimiter: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """What `iter_rows` reads, as lists: (0, the column names), then (line, the cells) for each
    data row, every one exactly as wide as the header."""
    source = iter(lines)
    skipped = 0
    reader = None
    try:
        head = next(source, None)
        while head is not None and _is_preamble(head.lstrip("\ufeff")):
            if head.lower().lstrip("\ufeff").startswith("sep="):
                delimiter = delimiter or head.lstrip("\ufeff")[4]
            skipped += 1
            head = next(source, None)
        if head is None:
            report.errors.append(Problem(file, 1, "empty file: no header line"))
            return
        delimiter = delimiter or detect_delimiter(head)
        report.delimiters[file] = delimiter
        reader = csv.reader(chain([head], source), delimiter=delimiter)
        header = [name.strip().lstrip("\ufeff") for name in next(reader)]
        if delimiter != ",":
            report.warnings.append(Problem(file, skipped + 1, _delimiter_note(delimiter)))
        yield 0, header
        width = len(header)
        for row in reader:
            if len(row) != width or row == [""]:
                if not row or row == [""]:
                    continue
                report.errors.append(Problem(file, skipped + reader.line_num,
                                             f"{len(row)} fields where the header has {width}"))
                continue
            yield skipped + reader.line_num, row
    except UnicodeDecodeError:
        line = skipped + (reader.line_num if reader is not None else 0) + 1
        report.errors.append(Problem(file, line, "text is neither UTF-8 nor UTF-16 with a BOM "
                                     "(re-export with Export-Csv -Encoding UTF8)"))
    except csv.Error as exc:
        report.errors.append(Problem(file, skipped + reader.line_num, f"malformed CSV: {exc}"))


def _delimiter_note(delimiter: str) -> str:
    return (f"fields are separated by {delimiter!r}, not ',' (Export-Csv -UseCulture in a "
            f"culture whose list separator is {delimiter!r}, as de-DE or fr-FR): read so, "
            "with dates and numbers as that culture writes them")


def scan_day_first(lines: Iterable[str]) -> bool | None:
    """How the slashed dates of an export read, from the first one only one order fits:
    True for day first (18/11/2026: en-GB, fr-FR...), False for month first (11/18/2026:
    en-US), None when the file has none that tells."""
    report = ImportReport()
    columns: list[str] = []
    for line, row in iter_rows(lines, "<scan>", report):
        if line == 0:
            columns = [name for name in DATE_COLUMNS if name in row]
            if not columns:
                return None
            continue
        for name in columns:
            order = slashed_date_order(row[name])
            if order is not None:
                return order
    return None


def _missing_columns(header: Collection[str], required: Iterable[str]) -> list[str]:
    return [name for name in required if name not in header]


#: The cells of a Get-Mailbox/Get-Recipient row a recipient is read from, in the order
#: `_record_from_cells` takes them; a column the file lacks reads as an empty cell.
RECORD_COLUMNS = ("PrimarySmtpAddress", "EmailAddresses", "RecipientTypeDetails", "DisplayName",
                  "Name", "ForwardingSmtpAddress", "ForwardingAddress",
                  "DeliverToMailboxAndForward", "ExchangeGuid", "Guid", "Identity",
                  "TotalItemSize", "ItemCount", "LastLogonTime")


def _picker(header: list[str], columns: tuple[str, ...]) -> Callable[[list[str]], Any]:
    """A function taking a row's cells, with one empty cell appended, to the cells of
    `columns` in that order (a missing column: the empty cell). Positions are worked out once
    per file; of two columns of the same name the last counts, as in a dict of the row."""
    position = {name: index for index, name in enumerate(header)}
    empty = len(header)
    return itemgetter(*(position.get(name, empty) for name in columns))


def _record_from_row(row: dict[str, str], where: str, warn: list[str],
                     dates: DateReader) -> tuple[dict[str, Any] | None, str | None]:
    """A recipient dict from one Get-Mailbox/Get-Recipient row, or (None, why it is not)."""
    cells = tuple(row.get(name) or "" for name in RECORD_COLUMNS)
    return _record_from_cells(cells, where, warn, dates)


def _record_from_cells(cells: tuple[str, ...], where: str, warn: list[str],
                       dates: DateReader) -> tuple[dict[str, Any] | None, str | None]:
    """`_record_from_row` for the row's cells of RECORD_COLUMNS, in that order: the per-row
    work of an import, so each cell is looked at once and only when it holds something."""
    (primary, proxy_text, detail, display_name, name, forwarding_smtp, forwarding_address,
     deliver_and_forward, exchange_guid, guid, identity, size, count, last_logon) = cells
    proxy_primary, aliases, others, placeholder = _proxy_parts(proxy_text)
    if placeholder:
        warn.append("EmailAddresses holds the collection type name, not addresses (export with "
                    "@{n='EmailAddresses';e={$_.EmailAddresses -join ';'}}): aliases unknown")
    address = primary.strip().lower() or proxy_primary
    if not address or not _ADDRESS.match(address):
        return None, f"PrimarySmtpAddress {address or '(empty)'!r} is not an address"
    detail = detail.strip()
    kind = RECIPIENT_TYPES.get(detail)
    if kind is None:
        warn.append(f"unknown RecipientTypeDetails {detail!r}: type 'other'")
        kind = "other"
    local, _, domain = address.partition("@")
    record: dict[str, Any] = {
        "address": address,
        "local": local,
        "domain": domain,
        "aliases": sorted({a for a in aliases if a != address}) if aliases else [],
        "other_addresses": others,
        "display_name": (display_name or name).strip(),
        "type": kind,
        "type_detail": detail,
        "forwarding": _forwarding(forwarding_smtp, forwarding_address, deliver_and_forward,
                                  warn) if forwarding_smtp or forwarding_address else [],
        "rules": [],
        "size_bytes": None,
        "items": None,
        "last_logon": None,
        "guid": (exchange_guid or guid).strip().lower() or None,
        "identity": identity.strip() or None,
        "origin": where,
    }
    if size or count or last_logon:
        _statistics_cells(record, size, count, last_logon, warn, dates)
    return record, None


def _forwarding(smtp: str, address: str, flag: str, warn: list[str]) -> list[dict[str, Any]]:
    """The ForwardingSmtpAddress and ForwardingAddress cells (and DeliverToMailboxAndForward,
    whether a copy stays) as forwarding entries."""
    result = []
    for column, text in (("ForwardingSmtpAddress", smtp), ("ForwardingAddress", address)):
        target = forwarding_target(text)
        if target:
            result.append({"via": column, "to": target, "keep_copy": False})
    if result:
        keep_copy = parse_bool(flag)
        if keep_copy is None and flag.strip():
            warn.append(f"DeliverToMailboxAndForward: unreadable {flag.strip()!r} (expected "
                        "True or False): read as False, the forwarded mail keeps no copy")
        for entry in result:
            entry["keep_copy"] = bool(keep_copy)
    return result


def _apply_statistics(record: dict[str, Any], row: dict[str, str], warn: list[str],
                      dates: DateReader) -> None:
    """Copy TotalItemSize/ItemCount/LastLogonTime from a row (of either export) into record;
    an unreadable cell is a warning and leaves the value unknown."""
    _statistics_cells(record, row.get("TotalItemSize") or "", row.get("ItemCount") or "",
                      row.get("LastLogonTime") or "", warn, dates)


def _statistics_cells(record: dict[str, Any], size: str, count: str, last_logon: str,
                      warn: list[str], dates: DateReader) -> None:
    """`_apply_statistics` for the three cells themselves."""
    cells = ((size, "TotalItemSize", "size_bytes", parse_size, ""),
             (count, "ItemCount", "items", parse_count, ""),
             (last_logon, "LastLogonTime", "last_logon", dates.parse, ": last logon unknown"))
    for text, column, key, parse, unknown in cells:
        if not text:
            continue
        try:
            value = parse(text)
        except ValueError as exc:
            warn.append(f"{column}: {exc}{unknown}")
            continue
        if value is not None and value != "":
            record[key] = value


def _assumed_date_order(file: str, dates: DateReader, report: ImportReport) -> None:
    if dates.assumed is not None:
        value, day_first = dates.assumed
        order = "day/month/year" if day_first else "month/day/year (en-US)"
        report.warnings.append(Problem(file, 1, f"dates such as {value!r} read both as "
                                       "day/month and as month/day, and no date in the file "
                                       f"tells which: read as {order}"))


def read_recipients(lines: Iterable[str], file: str, report: ImportReport,
                    seen: dict[str, str] | None = None,
                    day_first: bool | None = None) -> Iterator[dict[str, Any]]:
    """Stream recipient dicts from a Get-Mailbox or Get-Recipient export. `seen` maps the
    addresses read so far to their file: a later file's copy of a known address is skipped
    (Get-Recipient repeats every mailbox), while a duplicate within one file is an error.
    `day_first`: how the file's slashed dates read (`scan_day_first`). A row without a usable
    address is skipped with a warning; an unreadable cell is a warning for its row."""
    seen = {} if seen is None else seen
    dates = DateReader(day_first)
    pick = None
    for line, cells in iter_cells(lines, file, report):
        if pick is None:
            missing = _missing_columns(cells, MAILBOX_REQUIRED)
            if missing:
                report.errors.append(Problem(file, 1, "missing column(s) " + ", ".join(missing)
                                             + " (is this a Get-Mailbox or Get-Recipient "
                                             "export?)"))
                return
            dates.delimiter = report.delimiters[file]
            pick = _picker(cells, RECORD_COLUMNS)
            continue
        cells.append("")
        warnings: list[str] = []
        record, unusable = _record_from_cells(pick(cells), f"{file}:{line}", warnings, dates)
        if warnings:
            report.warnings.extend(Problem(file, line, text) for text in warnings)
        if record is None:
            report.warnings.append(Problem(file, line, f"{unusable}: row skipped"))
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
    _assumed_date_order(file, dates, report)


def read_statistics(lines: Iterable[str], file: str, report: ImportReport,
                    day_first: bool | None = None) -> dict[str, dict[str, Any]]:
    """Get-MailboxStatistics rows keyed by every identity they carry (lower-cased): MailboxGuid,
    PrimarySmtpAddress, Identity, DisplayName. Values hold size_bytes, items, last_logon."""
    table: dict[str, dict[str, Any]] = {}
    dates = DateReader(day_first)
    for line, row in iter_rows(lines, file, report):
        if line == 0:
            if not any(name in row for name in STATISTICS_SIZE_COLUMNS) or not any(
                    name in row for name in STATISTICS_KEY_COLUMNS):
                report.errors.append(Problem(file, 1, "a Get-MailboxStatistics export needs "
                                             "TotalItemSize or ItemCount and one of "
                                             + ", ".join(STATISTICS_KEY_COLUMNS)))
                return table
            dates.delimiter = report.delimiters[file]
            continue
        warnings: list[str] = []
        stats: dict[str, Any] = {"size_bytes": None, "items": None, "last_logon": None}
        _apply_statistics(stats, row, warnings, dates)
        report.warnings.extend(Problem(file, line, text) for text in warnings)
        for column in STATISTICS_KEY_COLUMNS:
            key = (row.get(column) or "").strip().lower()
            if key:
                table.setdefault(f"{column}:{key}", stats)
    _assumed_date_order(file, dates, report)
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
    lines = text.splitlines(keepends=True)
    records = list(read_recipients(lines, file, report, day_first=scan_day_first(lines)))
    report.raise_if_failed()
    return records, report
