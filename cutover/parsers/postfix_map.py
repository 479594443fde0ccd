"""Postfix lookup-table source files (`virtual`, `transport`, `relay_domains`...): parse and edit.

The format is postmap(1)'s input: a logical line is `key<whitespace>value`; a line starting
with whitespace continues the previous logical line; empty lines, whitespace-only lines and
lines whose first non-whitespace character is `#` are ignored. Keys compare case-insensitively
(postmap folds them to lower case). When a key appears twice postmap keeps the first.

Edits replace or delete only the lines of the entry they touch, so comments, ordering and every
other line stay byte-for-byte as they were. Strings in, values out: no file access here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cutover.errors import Problem, ValidationFailed

_KEY_VALUE = re.compile(r"(?P<key>\S+)(?P<sep>[ \t]+)(?P<value>\S.*?)[ \t\r]*$")


@dataclass(frozen=True)
class MapEntry:
    """One logical entry: `first`..`last` are indexes into the file's lines (inclusive)."""

    key: str
    value: str
    separator: str
    first: int
    last: int

    @property
    def folded_key(self) -> str:
        return self.key.lower()


@dataclass(frozen=True)
class MapFile:
    """A parsed map source: its raw lines (with their line endings) and its entries in order."""

    lines: tuple[str, ...]
    entries: tuple[MapEntry, ...]

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def entry(self, key: str) -> MapEntry | None:
        """The entry postmap would use for `key` (the first one)."""
        folded = key.lower()
        return next((e for e in self.entries if e.folded_key == folded), None)

    def lookup(self, key: str) -> str | None:
        entry = self.entry(key)
        return entry.value if entry else None

    def as_dict(self) -> dict[str, str]:
        """key -> value as postmap sees it (first occurrence wins, keys folded)."""
        result: dict[str, str] = {}
        for entry in self.entries:
            result.setdefault(entry.folded_key, entry.value)
        return result

    def entry_text(self, key: str) -> str | None:
        """The exact text of `key`'s entry lines, continuation lines included."""
        entry = self.entry(key)
        return "".join(self.lines[entry.first:entry.last + 1]) if entry else None

    def placement(self, key: str) -> dict[str, Any] | None:
        """Where `key`'s entry sits, to put it back there after a delete: the keys of the
        entries below and above it, and how many comment or blank lines separate it from the
        one above (or from the top of the file). JSON-ready."""
        entry = self.entry(key)
        if entry is None:
            return None
        index = self.entries.index(entry)
        above = self.entries[index - 1] if index > 0 else None
        below = self.entries[index + 1] if index + 1 < len(self.entries) else None
        return {"below": below.key if below else None, "above": above.key if above else None,
                "gap": entry.first - (above.last + 1 if above else 0)}

    def non_entry_lines(self) -> list[str]:
        """Comments and blank lines, in order: what a human may edit besides entries."""
        inside = {i for e in self.entries for i in range(e.first, e.last + 1)}
        return [line for i, line in enumerate(self.lines) if i not in inside]


def _is_ignored(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def parse_map(text: str, source: str = "map") -> MapFile:
    """Parse a map source; every malformed line is reported at once as `source:line: ...`."""
    lines = tuple(text.splitlines(keepends=True))
    entries: list[MapEntry] = []
    problems: list[Problem] = []
    current: dict | None = None
    for index, line in enumerate(lines):
        if _is_ignored(line):
            continue
        if line[0] in " \t":
            if current is None:
                problems.append(Problem(source, index + 1,
                                        "a logical line must not start with whitespace"))
                continue
            # postmap joins a continuation line as is, without its line break
            current["value"] += line.rstrip("\r\n")
            current["last"] = index
            continue
        if current is not None:
            entries.append(_finish(current))
        match = _KEY_VALUE.match(line.rstrip("\r\n"))
        if match is None:
            problems.append(Problem(source, index + 1,
                                    f"expected 'key whitespace value', got {line.strip()!r}"))
            current = None
            continue
        current = {"key": match["key"], "value": match["value"], "separator": match["sep"],
                   "first": index, "last": index}
    if current is not None:
        entries.append(_finish(current))
    if problems:
        raise ValidationFailed(problems)
    return MapFile(lines, tuple(entries))


def _finish(current: dict) -> MapEntry:
    return MapEntry(current["key"], current["value"].rstrip(" \t\r"), current["separator"],
                    current["first"], current["last"])


def _line_ending(parsed: MapFile) -> str:
    return "\r\n" if parsed.lines and parsed.lines[0].endswith("\r\n") else "\n"


def _new_separator(parsed: MapFile, key: str) -> str:
    """Follow the file's layout: tabs if it uses tabs, else pad to its value column."""
    if not parsed.entries:
        return "\t"
    last = parsed.entries[-1]
    if "\t" in last.separator:
        return last.separator
    column = len(last.key) + len(last.separator)
    return " " * max(1, column - len(key))


def format_entry(parsed: MapFile, key: str, value: str, separator: str | None = None) -> str:
    return f"{key}{separator or _new_separator(parsed, key)}{value}{_line_ending(parsed)}"


def _without(lines: list[str], parsed: MapFile, folded: str) -> list[str]:
    """`lines` minus every entry of `folded` (later duplicates too: postmap would use them)."""
    drop = {i for e in parsed.entries if e.folded_key == folded for i in range(e.first, e.last + 1)}
    return [line for i, line in enumerate(lines) if i not in drop]


def set_entry(text: str, key: str, value: str | None) -> str:
    """The text with `key` set to `value` (None deletes it); every other line untouched.

    An existing entry is rewritten in place on one line, keeping its key spelling and separator;
    a new entry is appended at the end.
    """
    parsed = parse_map(text)
    existing = parsed.entry(key)
    if value is not None and "\n" in value:
        raise ValueError("a map value cannot span lines")
    if existing is None:
        if value is None:
            return text
        prefix = text if not text or text.endswith("\n") else text + _line_ending(parsed)
        return prefix + format_entry(parsed, key, value)
    lines = list(parsed.lines)
    if value is not None:
        replacement = format_entry(parsed, existing.key, value, existing.separator)
        if not parsed.lines[existing.last].endswith("\n"):
            replacement = replacement.rstrip("\r\n")  # the file had no final newline
        lines[existing.first] = replacement
        for index in range(existing.first + 1, existing.last + 1):
            lines[index] = ""
        dropped = MapFile(parsed.lines, tuple(e for e in parsed.entries if e is not existing))
        return "".join(_without(lines, dropped, existing.folded_key))
    return "".join(_without(lines, parsed, existing.folded_key))


def put_back_entry(text: str, key: str, entry_text: str | None,
                   placement: dict[str, Any] | None) -> str:
    """Restore `key`'s exact prior entry text: in place if the key is there, else where
    `placement` (from MapFile.placement) says it was."""
    parsed = parse_map(text)
    existing = parsed.entry(key)
    lines = list(parsed.lines)
    if existing is not None:
        at_end = existing.last == len(lines) - 1
        replacement = [_terminated(entry_text, parsed, at_end)] if entry_text else []
        lines[existing.first:existing.last + 1] = replacement
        return _drop_later_duplicates("".join(lines), key)
    if entry_text is None:
        return text
    position = _insert_position(parsed, placement or {})
    if position == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += _line_ending(parsed)
    lines.insert(position, _terminated(entry_text, parsed, position == len(lines)))
    return "".join(lines)


def _terminated(entry_text: str, parsed: MapFile, at_end: bool) -> str:
    """An entry placed above other lines needs its line break even if it had none before."""
    if at_end or entry_text.endswith("\n"):
        return entry_text
    return entry_text + _line_ending(parsed)


def _drop_later_duplicates(text: str, key: str) -> str:
    parsed = parse_map(text)
    folded = key.lower()
    matches = [e for e in parsed.entries if e.folded_key == folded]
    if len(matches) <= 1:
        return text
    drop = {i for e in matches[1:] for i in range(e.first, e.last + 1)}
    return "".join(line for i, line in enumerate(parsed.lines) if i not in drop)


def _insert_position(parsed: MapFile, placement: dict[str, Any]) -> int:
    """`gap` lines below the entry that was above (or the top), never past the entry that
    was below; when the entry above is gone, just above the one below (else the end)."""
    below = parsed.entry(placement["below"]) if placement.get("below") else None
    limit = below.first if below else len(parsed.lines)
    start = 0
    if placement.get("above"):
        above = parsed.entry(placement["above"])
        if above is None:
            return limit
        start = above.last + 1
    return min(start + int(placement.get("gap", 0)), limit)


def parse_domain_list(text: str) -> list[str]:
    """The first word of each logical line, lower-cased: what Postfix reads from a file named
    in a list parameter (`relay_domains = /etc/postfix/relay_domains`), and the keys of a map
    used for the same purpose (`example.org OK`)."""
    return [line.split()[0].lower() for line in text.splitlines()
            if not _is_ignored(line) and line[0] not in " \t"]


def parse_main_cf(text: str) -> dict[str, str]:
    """main.cf parameters (`name = value`, continuation lines start with whitespace)."""
    parameters: dict[str, str] = {}
    name: str | None = None
    for line in text.splitlines():
        if _is_ignored(line):
            continue
        if line[0] in " \t" and name is not None:
            parameters[name] = f"{parameters[name]} {line.strip()}".strip()
            continue
        left, equals, right = line.partition("=")
        if not equals:
            name = None
            continue
        name = left.strip()
        parameters[name] = right.strip()
    return parameters
