"""Line-level editing of zone file text: an administrator's zone file keeps its comments,
directives, ordering and alignment; only the lines of the RRsets that change are touched.

    edit_zone_text(text, zone, {("@", "MX"): RRset(...), ("old", "A"): None})

Each record entry (one line, or several joined by parentheses) holds one record. Editing an RRset
keeps the entries whose value stays (rewriting only their TTL field when the TTL changes), removes
the others, and writes the new values in the layout of a neighbouring entry: where the removed
ones stood, else after the last entry of the same owner name, else at the end. The SOA serial is
bumped in place. Owner names and TTLs that a record inherits from the line before (blank owner,
RFC 1035 last TTL) are written out where an edit would change what the record inherits.

dnspython stays the judge of meaning: the text is checked against dnspython's reading before and
after the edit, and ZoneTextUnsupported is raised rather than return a file that would read
differently from what was asked ($INCLUDE and $GENERATE are not edited line by line). Pure:
strings in, strings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.ttl
import dns.zone

from cutover.dns_model import (
    RRset,
    rdata_text,
    relative_text,
    rrset_from_rdataset,
    zone_origin,
)

Key = tuple[str, str]
#: Types whose presentation ends with a domain name: they show whether a file writes names
#: absolute ("mx1.example.org.") or relative to $ORIGIN ("mx1").
_NAME_TYPES = frozenset({"MX", "NS", "CNAME", "PTR", "SRV", "DNAME"})
_WORD_END = frozenset(' \t\r\n;()"')
_SERIAL_FIELD = 2  # SOA rdata: mname rname serial refresh retry expire minimum


class ZoneTextUnsupported(ValueError):
    """The zone text cannot be edited line by line with certainty (the caller may rewrite it)."""


@dataclass(frozen=True)
class Token:
    text: str
    line: int  # index within its entry's lines
    start: int  # column

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class Entry:
    """One logical line of the file (a record, a directive, or a blank/comment line) with what
    it means: for a record, the owner and TTL it must keep whatever happens around it."""

    lines: list[str]
    owner: dns.name.Name | None = None
    ttl: int | None = None
    rdtype: str | None = None
    value: str | None = None
    in_zone: bool = False
    origin: dns.name.Name | None = None  # $ORIGIN in effect for this entry

    @property
    def is_record(self) -> bool:
        return self.rdtype is not None

    @property
    def single_line(self) -> bool:
        return len(self.lines) == 1


@dataclass(frozen=True)
class Fields:
    """Where a record entry's fields are: token indexes (None: omitted)."""

    tokens: tuple[Token, ...]
    owner: int | None
    ttl: int | None
    rdclass: int | None
    rdtype: int

    @property
    def rdata(self) -> tuple[Token, ...]:
        return self.tokens[self.rdtype + 1:]


# --- lexing ----------------------------------------------------------------------------------

def _lex_line(line: str, index: int, depth: int) -> tuple[list[Token], int]:
    """Words and quoted strings of one physical line, and the parenthesis depth after it."""
    tokens: list[Token] = []
    i = 0
    while i < len(line):
        char = line[i]
        if char in " \t":
            i += 1
        elif char in "\r\n;":
            break
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                raise ZoneTextUnsupported(f"line {index + 1}: unbalanced ')'")
            i += 1
        else:
            end = _quoted_end(line, i, index) if char == '"' else _word_end(line, i)
            tokens.append(Token(line[i:end], index, i))
            i = end
    return tokens, depth


def _quoted_end(line: str, start: int, index: int) -> int:
    i = start + 1
    while i < len(line) and line[i] not in '"\n':
        i += 2 if line[i] == "\\" else 1
    if i >= len(line) or line[i] != '"':
        raise ZoneTextUnsupported(f"line {index + 1}: unterminated quoted string")
    return i + 1


def _word_end(line: str, start: int) -> int:
    i = start
    while i < len(line) and line[i] not in _WORD_END:
        i += 2 if line[i] == "\\" else 1
    return min(i, len(line))


def _entry_tokens(lines: list[str]) -> list[Token]:
    tokens: list[Token] = []
    depth = 0
    for index, line in enumerate(lines):
        found, depth = _lex_line(line, index, depth)
        tokens.extend(found)
    return tokens


def split_entries(text: str) -> list[Entry]:
    """The file as logical entries; joining their lines gives the text back byte for byte."""
    entries: list[Entry] = []
    current: list[str] = []
    depth = 0
    for index, line in enumerate(text.splitlines(keepends=True)):
        current.append(line)
        _, depth = _lex_line(line, index, depth)
        if depth == 0:
            entries.append(Entry(current))
            current = []
    if current:
        raise ZoneTextUnsupported("unbalanced '(' at the end of the file")
    return entries


# --- reading, as dnspython's zone reader does --------------------------------------------------

def _is_ttl(token: Token) -> bool:
    try:
        dns.ttl.from_text(token.text)
    except (dns.exception.DNSException, ValueError):
        return False
    return not token.text.startswith('"')


def _is_class(token: Token) -> bool:
    try:
        dns.rdataclass.from_text(token.text)
    except (dns.exception.DNSException, ValueError):
        return False
    return True


def record_fields(entry: Entry) -> Fields | None:
    """The fields of a record entry, or None for blank, comment and directive entries."""
    tokens = tuple(_entry_tokens(entry.lines))
    if not tokens:
        return None
    first_line = entry.lines[0]
    owner_omitted = first_line[:1] in (" ", "\t")
    if not owner_omitted and tokens[0].text.startswith("$"):
        return None
    index = 0 if owner_omitted else 1
    ttl = rdclass = None
    if index < len(tokens) and _is_ttl(tokens[index]):
        ttl, index = index, index + 1
    if index < len(tokens) and _is_class(tokens[index]):
        rdclass, index = index, index + 1
    if ttl is None and index < len(tokens) and _is_ttl(tokens[index]):
        ttl, index = index, index + 1
    if index >= len(tokens):
        raise ZoneTextUnsupported(f"record without a type: {first_line.strip()!r}")
    return Fields(tokens, None if owner_omitted else 0, ttl, rdclass, index)


def _rdata(fields: Fields, origin: dns.name.Name) -> dns.rdata.Rdata:
    rdtype = fields.tokens[fields.rdtype].text
    text = " ".join(token.text for token in fields.rdata)
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=origin,
                                   relativize=False)
    except dns.exception.DNSException as exc:
        raise ZoneTextUnsupported(f"cannot read {rdtype} {text!r}: {exc}") from None


@dataclass
class _Reader:
    """The state dnspython's zone reader keeps between lines (RFC 2308 TTL rules)."""

    zone: dns.name.Name
    origin: dns.name.Name
    last_name: dns.name.Name
    default_ttl: int | None = None
    default_from_soa: bool = False
    last_ttl: int | None = None

    def directive(self, entry: Entry) -> None:
        tokens = _entry_tokens(entry.lines)
        name = tokens[0].text.upper()
        if name == "$ORIGIN" and len(tokens) > 1:
            self.origin = dns.name.from_text(tokens[1].text, origin=self.origin)
        elif name == "$TTL" and len(tokens) > 1:
            self.default_ttl, self.default_from_soa = dns.ttl.from_text(tokens[1].text), False
        else:
            raise ZoneTextUnsupported(f"directive {name} is not edited line by line")

    def implicit_ttl(self) -> int | None:
        if self.last_ttl is not None and (self.default_ttl is None or self.default_from_soa):
            return self.last_ttl
        return self.default_ttl

    def owner(self, fields: Fields) -> dns.name.Name:
        if fields.owner is None:
            return self.last_name
        text = fields.tokens[fields.owner].text
        return self.origin if text == "@" else dns.name.from_text(text, origin=self.origin)

    def ttl(self, fields: Fields) -> int | None:
        if fields.ttl is not None:
            self.last_ttl = dns.ttl.from_text(fields.tokens[fields.ttl].text)
            return self.last_ttl
        if self.default_ttl is None and fields.tokens[fields.rdtype].text.upper() == "SOA":
            soa = _rdata(fields, self.origin)
            self.default_ttl, self.default_from_soa = int(soa.minimum), True  # type: ignore
        return self.implicit_ttl()


def read_entries(text: str, zone: str) -> list[Entry]:
    """Split and read the text: each record entry gets its owner, TTL, type and value."""
    origin = zone_origin(zone)
    reader = _Reader(origin, origin, origin)
    entries = split_entries(text)
    for entry in entries:
        entry.origin = reader.origin
        fields = record_fields(entry)
        if fields is None:
            if _entry_tokens(entry.lines):
                reader.directive(entry)
            continue
        entry.owner = reader.owner(fields)
        reader.last_name = entry.owner
        entry.ttl = reader.ttl(fields)
        if entry.ttl is None:
            raise ZoneTextUnsupported(f"no TTL known for {entry.lines[0].strip()!r}")
        rdata = _rdata(fields, reader.origin)
        entry.rdtype = dns.rdatatype.to_text(rdata.rdtype)
        entry.value = rdata_text(rdata, origin)
        entry.in_zone = entry.owner.is_subdomain(origin)
    return entries


def entry_rrsets(entries: list[Entry], zone: str) -> dict[Key, RRset]:
    origin = zone_origin(zone)
    grouped: dict[Key, tuple[int, set[str]]] = {}
    for entry in entries:
        if entry.is_record and entry.in_zone:
            key = _key(entry, origin)
            ttl, values = grouped.get(key, (entry.ttl, set()))
            grouped[key] = (min(ttl, entry.ttl), values | {entry.value})  # type: ignore
    return {key: RRset(key[0], key[1], ttl, tuple(sorted(values)))
            for key, (ttl, values) in grouped.items()}


def _key(entry: Entry, origin: dns.name.Name) -> Key:
    return (relative_text(origin, entry.owner), entry.rdtype)  # type: ignore[arg-type]


def dnspython_rrsets(text: str, zone: str) -> dict[Key, RRset]:
    """The zone as dnspython reads it: the meaning every edit is checked against."""
    origin = zone_origin(zone)
    try:
        loaded = dns.zone.from_text(text, origin=origin, relativize=True, check_origin=False)
    except dns.exception.DNSException as exc:
        raise ZoneTextUnsupported(f"not a valid zone: {exc}") from None
    found: dict[Key, RRset] = {}
    for name, rdataset in loaded.iterate_rdatasets():
        rrset = rrset_from_rdataset(zone, relative_text(origin, name.derelativize(origin)),
                                    rdataset)
        found[rrset.key] = rrset
    return found


# --- editing ---------------------------------------------------------------------------------

def edit_zone_text(text: str, zone: str, edits: Mapping[Key, RRset | None],
                   bump_serial: bool = True) -> str:
    """`text` with each RRset of `edits` set to its value (None: removed) and the SOA serial
    bumped; every other line as it was. Keys are (relative name, type), values canonical."""
    try:
        return _edit_zone_text(text, zone, edits, bump_serial)
    except dns.exception.DNSException as exc:
        raise ZoneTextUnsupported(f"cannot edit line by line: {exc}") from None


def _edit_zone_text(text: str, zone: str, edits: Mapping[Key, RRset | None],
                    bump_serial: bool) -> str:
    expected = dnspython_rrsets(text, zone)
    entries = read_entries(text, zone)
    if entry_rrsets(entries, zone) != expected:
        raise ZoneTextUnsupported("the zone text reads differently line by line")
    origin = zone_origin(zone)
    for key, after in edits.items():
        entries = _edit_rrset(entries, origin, key, after, _absolute_style(entries))
        _expect(expected, key, after)
    if bump_serial:
        _bump_serial(entries, origin, expected)
    entries = _write_inherited_fields(entries, origin)
    edited = "".join(line for entry in entries for line in entry.lines)
    if dnspython_rrsets(edited, zone) != expected:
        raise ZoneTextUnsupported("the edited zone text would not read as intended")
    return edited


def _expect(expected: dict[Key, RRset], key: Key, after: RRset | None) -> None:
    if after is None:
        expected.pop(key, None)
    else:
        expected[key] = RRset(key[0], key[1], after.ttl, tuple(sorted(set(after.values))))


def _edit_rrset(entries: list[Entry], origin: dns.name.Name, key: Key, after: RRset | None,
                absolute: bool) -> list[Entry]:
    old = [i for i, e in enumerate(entries) if e.is_record and e.in_zone
           and _key(e, origin) == key]
    wanted = list(dict.fromkeys(after.values)) if after else []
    kept: list[int] = []
    removed: list[int] = []
    for index in old:
        entry = entries[index]
        if entry.value in wanted:
            wanted.remove(entry.value)
            kept.append(index)
            if after and entry.ttl != after.ttl:
                _set_ttl(entry, after.ttl)
        else:
            removed.append(index)
    position = _insert_position(entries, origin, key, kept, removed)
    template = _template(entries, origin, key, old, position)
    new = [_new_entry(template, entries, position, origin, key, after.ttl, value, absolute)
           for value in wanted] if after else []
    result = [e for i, e in enumerate(entries) if i not in removed and i < position]
    result += new
    result += [e for i, e in enumerate(entries) if i not in removed and i >= position]
    return result


def _insert_position(entries: list[Entry], origin: dns.name.Name, key: Key, kept: list[int],
                     removed: list[int]) -> int:
    if removed:
        return removed[0]
    if kept:
        return kept[-1] + 1
    same_owner = [i for i, e in enumerate(entries) if e.is_record and e.in_zone
                  and _key(e, origin)[0] == key[0]]
    return same_owner[-1] + 1 if same_owner else len(entries)


def _template(entries: list[Entry], origin: dns.name.Name, key: Key, old: list[int],
              position: int) -> Entry | None:
    """The entry whose layout new lines copy: one of the RRset's own, else a record of the same
    owner, else the nearest record before the insertion point (single-line ones only)."""
    same_owner = [i for i, e in enumerate(entries) if e.is_record and e.in_zone
                  and _key(e, origin)[0] == key[0]]
    before = [i for i in range(min(position, len(entries)) - 1, -1, -1)
              if entries[i].is_record]
    after = [i for i in range(position, len(entries)) if entries[i].is_record]
    for index in [*old, *reversed(same_owner), *before, *after]:
        if entries[index].single_line:
            return entries[index]
    return None


def _absolute_style(entries: list[Entry]) -> bool:
    """Does the file write names in record data absolute? (ties: yes, the unambiguous way)."""
    votes = [_last_data_token(e).endswith(".") for e in entries
             if e.is_record and e.rdtype in _NAME_TYPES]
    return votes.count(True) >= votes.count(False)


def _last_data_token(entry: Entry) -> str:
    fields = record_fields(entry)
    return fields.rdata[-1].text if fields and fields.rdata else ""


def _new_entry(template: Entry | None, entries: list[Entry], position: int,
               origin: dns.name.Name, key: Key, ttl: int, value: str, absolute: bool) -> Entry:
    here = entries[position].origin if position < len(entries) else _final_origin(entries)
    assert here is not None
    owner = origin if key[0] == "@" else dns.name.from_text(key[0], origin=origin)
    rdata = dns.rdata.from_text(dns.rdataclass.IN, key[1], value, origin=origin,
                                relativize=False)
    data = rdata.to_text(origin=here, relativize=not absolute)
    line = _layout(template, owner, here, ttl, key[1], data)
    newline = _newline(template.lines[0] if template else "")
    return Entry([line + newline], owner=owner, ttl=ttl, rdtype=key[1], value=value,
                 in_zone=True, origin=here)


def _final_origin(entries: list[Entry]) -> dns.name.Name | None:
    """The $ORIGIN in effect after the last entry."""
    if not entries:
        return None
    last = entries[-1]
    tokens = [] if last.is_record else _entry_tokens(last.lines)
    if len(tokens) > 1 and tokens[0].text.upper() == "$ORIGIN":
        return dns.name.from_text(tokens[1].text, origin=last.origin)
    return last.origin


def _newline(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _owner_text(owner: dns.name.Name, here: dns.name.Name) -> str:
    if owner == here:
        return "@"
    return owner.relativize(here).to_text() if owner.is_subdomain(here) else owner.to_text()


def _layout(template: Entry | None, owner: dns.name.Name, here: dns.name.Name, ttl: int,
            rdtype: str, data: str) -> str:
    """One record line in the template's layout: the fields it writes (owner and TTL left out
    where it leaves them out), at its columns, or with its tabs."""
    owner_text = _owner_text(owner, here)
    fields = record_fields(template) if template else None
    if template is None or fields is None or not fields.rdata:
        return f"{owner_text} {ttl} IN {rdtype} {data}"
    tokens = fields.tokens
    slots = [(fields.owner, owner_text), (fields.ttl, str(ttl)),
             (fields.rdclass, tokens[fields.rdclass].text if fields.rdclass is not None else ""),
             (fields.rdtype, rdtype)]
    present = [(tokens[index], text) for index, text in slots if index is not None]
    present.append((fields.rdata[0], data))
    source = template.lines[0]
    line = source[:present[0][0].start]
    for (previous, _), (token, text) in zip([(None, ""), *present], present, strict=False):
        if previous is not None:
            separator = source[previous.end:token.start]
            line += separator if "\t" in separator else " " * max(1, token.start - len(line))
        line += text
    return line


def _replace_token(line: str, token: Token, text: str) -> str:
    """Swap one token, keeping the column of what follows on the line when there is room."""
    rest = line[token.end:]
    spaces = len(rest) - len(rest.lstrip(" \t"))
    follows = rest[spaces:]
    if not follows.strip():
        return line[:token.start] + text + rest
    if "\t" in rest[:spaces]:
        return line[:token.start] + text + rest
    gap = max(1, len(token.text) + spaces - len(text))
    return line[:token.start] + text + " " * gap + follows


def _set_ttl(entry: Entry, ttl: int) -> None:
    entry.ttl = ttl
    fields = record_fields(entry)
    if fields is not None and fields.ttl is not None:
        token = fields.tokens[fields.ttl]
        entry.lines[token.line] = _replace_token(entry.lines[token.line], token, str(ttl))


def _bump_serial(entries: list[Entry], origin: dns.name.Name,
                 expected: dict[Key, RRset]) -> None:
    soa = next((e for e in entries if e.is_record and e.rdtype == "SOA" and e.owner == origin),
               None)
    fields = record_fields(soa) if soa else None
    if soa is None or fields is None or len(fields.rdata) <= _SERIAL_FIELD:
        raise ZoneTextUnsupported("no SOA record at the zone apex")
    token = fields.rdata[_SERIAL_FIELD]
    rdata = _rdata(fields, soa.origin or origin)
    bumped = rdata.replace(serial=(rdata.serial + 1) % 2**32)  # type: ignore[attr-defined]
    soa.lines[token.line] = _replace_token(soa.lines[token.line], token, str(bumped.serial))
    soa.value = rdata_text(bumped, origin)
    old = expected[("@", "SOA")]
    expected[("@", "SOA")] = replace(old, values=(soa.value,))


def _write_inherited_fields(entries: list[Entry], origin: dns.name.Name) -> list[Entry]:
    """Read the edited entries again; where a record would now inherit another owner or TTL
    than it must have (its neighbour was removed or changed), write that field out."""
    reader = _Reader(origin, origin, origin)
    for entry in entries:
        entry.origin = reader.origin
        fields = record_fields(entry)
        if fields is None:
            if _entry_tokens(entry.lines):
                reader.directive(entry)
            continue
        if entry.owner is not None and reader.owner(fields) != entry.owner:
            _write_owner(entry, _owner_text(entry.owner, reader.origin))
            fields = record_fields(entry)
        assert fields is not None
        reader.last_name = entry.owner or reader.owner(fields)
        if reader.ttl(fields) != entry.ttl and entry.ttl is not None:
            _write_ttl(entry, fields, entry.ttl)
            reader.ttl(record_fields(entry))  # type: ignore[arg-type]
    return entries


def _write_owner(entry: Entry, owner_text: str) -> None:
    line = entry.lines[0]
    indent = len(line) - len(line.lstrip(" \t"))
    if "\t" in line[:indent]:
        entry.lines[0] = owner_text + line[:indent].lstrip(" ") + line[indent:]
        return
    gap = indent - len(owner_text) if indent > len(owner_text) else 1
    entry.lines[0] = owner_text + " " * gap + line[indent:]


def _write_ttl(entry: Entry, fields: Fields, ttl: int) -> None:
    following = fields.tokens[fields.rdclass if fields.rdclass is not None else fields.rdtype]
    line = entry.lines[following.line]
    text = str(ttl)
    previous_end = (fields.tokens[fields.owner].end if fields.owner is not None
                    and fields.tokens[fields.owner].line == following.line else 0)
    start = following.start - 1 - len(text)
    if start >= previous_end + 1 and not line[previous_end:following.start].strip():
        entry.lines[following.line] = line[:start] + text + " " + line[following.start:]
    else:
        entry.lines[following.line] = (line[:following.start] + text + " "
                                       + line[following.start:])
