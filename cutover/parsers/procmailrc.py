"""Parse procmailrc text into a syntax tree: assignments, recipes, nested blocks.

Pure: a string in, values out. Syntax errors come back as located `Problem`s (the parser never
raises on odd input; `parse` collects every problem it can and keeps going), so the converter
can report `file:line: reason` for all of them at once.

The grammar follows procmailrc(5):

    NAME=value                      assignment (value may be quoted, may hold $VAR and `cmd`)
    :0[flags][:[lockfile]]          a recipe
    * [!][$][weight^exp] condition  zero or more (regex, < size, > size, VAR ?? re, ? cmd)
    action                          folder(s), ! addresses, | command, or { nested block }

Lines ending in a backslash continue on the next line, and a quoted assignment value may span
lines (`NL="` newline `"`). `#` starts a comment on a line of its own (and after an assignment's
value, a flags line or a folder). What procmail tolerates is tolerated here the way procmail does,
with a warning naming the line: a one-line block (`{ HOST }`), a recipe start without its `0`
(`:O:`, read as `:0` with the rest skipped), an action line outside a recipe and a stray text line
(skipped; its bare words unset variables, as procmail's log shows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cutover.errors import Problem

KNOWN_FLAGS = frozenset("HBDAaEehbcfwWir")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", re.S)
_RECIPE = re.compile(r"^:(\d*)[ \t]*([A-Za-z \t]*?)[ \t]*(:\s*(\S*))?\s*(#.*)?$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WEIGHT = re.compile(r"^(-?\d+(?:\.\d*)?|-?\.\d+)\s*\^\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*")


@dataclass(frozen=True)
class Assignment:
    line: int
    name: str
    value: str | None  # None: `NAME` alone or `NAME=` (unset)
    quoted: bool = False  # single-quoted: no $ expansion
    end_line: int = 0  # the last physical line (a continued or multi-line quoted value)
    inline: bool = False  # one of several statements on one line (`{ EXITCODE=75 HOST }`)


@dataclass(frozen=True)
class Condition:
    line: int
    text: str  # the condition without its `*`, `!`, `$` and weight prefixes
    negated: bool = False
    expand: bool = False  # `$`: variables are substituted before matching
    weight: tuple[float, float] | None = None
    kind: str = "regex"  # regex | size_over | size_under | variable | program
    variable: str = ""  # for kind "variable": the name before `??`
    end_line: int = 0


@dataclass(frozen=True)
class Action:
    line: int
    kind: str  # folder | forward | pipe | capture (`VAR=| command`)
    text: str  # folder path(s), addresses, or the command line
    end_line: int = 0
    variable: str = ""  # for kind "capture": the variable that receives the output


@dataclass
class Recipe:
    line: int
    flags: str
    lockfile: str | None
    conditions: list[Condition] = field(default_factory=list)
    action: Action | None = None
    block: list[Node] | None = None  # a nested `{ ... }` instead of an action
    end_line: int = 0


Node = Assignment | Recipe


@dataclass
class Parsed:
    nodes: list[Node]
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)  # what procmail skips with a warning


_OPEN_QUOTE = re.compile(r'^\s*[A-Za-z_][A-Za-z0-9_]*\s*=\s*(["\'])')


def _open_quote(line: str) -> str:
    """The quote an assignment line leaves open (a value continued on the next lines), or ''."""
    start = _OPEN_QUOTE.match(line)
    if start is None:
        return ""
    quote = start.group(1)
    return quote if line[start.end():].count(quote) % 2 == 0 else ""


def _logical_lines(text: str) -> list[tuple[int, int, str]]:
    """Physical lines joined at trailing backslashes and inside multi-line quoted assignment
    values, each with its first and last line number."""
    lines: list[tuple[int, int, str]] = []
    pending: list[str] = []
    start = 0
    quote = ""
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if quote:  # inside a quoted value: the newline is part of it
            pending[-1] += "\n" + raw
            if raw.count(quote) % 2 == 1:
                quote = ""
                lines.append((start, number, pending[0]))
                pending = []
            continue
        if not pending:
            start = number
            quote = _open_quote(raw)
            if quote:
                pending.append(raw)
                continue
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        lines.append((start, number, _join_continuation(pending)))
        pending = []
    if pending:
        lines.append((start, start + len(pending) - 1, _join_continuation(pending)))
    return lines


def _join_continuation(parts: list[str]) -> str:
    # procmail drops the leading whitespace of continued lines in conditions and actions alike
    return parts[0] + "".join(part.lstrip() for part in parts[1:])


def strip_comment(value: str) -> str:
    """An unquoted `#` preceded by whitespace ends the value (assignments, flag lines)."""
    quote = ""
    for index, char in enumerate(value):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "#" and (index == 0 or value[index - 1] in " \t"):
            return value[:index].rstrip()
    return value.rstrip()


class _Parser:
    def __init__(self, text: str, filename: str):
        self.lines = _logical_lines(text)
        self.filename = filename
        self.position = 0
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, message))

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(Problem(self.filename, line, message))

    def peek(self) -> tuple[int, str] | None:
        while self.position < len(self.lines):
            number, _, text = self.lines[self.position]
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                return number, stripped
            self.position += 1
        return None

    def end_line(self) -> int:
        """The last physical line of the logical line just consumed."""
        return self.lines[self.position - 1][1]

    def parse_nodes(self, depth: int) -> list[Node]:
        nodes: list[Node] = []
        while (current := self.peek()) is not None:
            number, text = current
            if text.startswith("}"):
                if depth == 0:
                    self.problem(number, "'}' without a matching '{'")
                    self.position += 1
                    continue
                return nodes
            self.position += 1
            if text.startswith(":"):
                recipe = self.parse_recipe(number, text, depth)
                if recipe is not None:
                    nodes.append(recipe)
            elif (match := _ASSIGNMENT.match(text)) is not None:
                nodes.append(_assignment(number, match.group(1), match.group(2),
                                         self.end_line()))
            elif _NAME.fullmatch(strip_comment(text)):
                nodes.append(Assignment(number, strip_comment(text), None, end_line=number))
            else:
                nodes += self.stray(number, text)
        return nodes

    def stray(self, number: int, text: str) -> list[Node]:
        """A line procmail skips with a warning; its bare words unset variables, as procmail
        does ("Assigning" each one in its log)."""
        if text[:1] in "|!*{":
            self.warn(number, f"skipped {text[:40]!r}: an action or condition outside a "
                              "recipe (procmail skips it too)")
            return []
        self.warn(number, f"skipped {text[:40]!r}: not an assignment or a recipe (procmail "
                          "skips it too, unsetting its bare words)")
        return [Assignment(number, word, None, end_line=number, inline=True)
                for word in text.split() if _NAME.fullmatch(word)]

    def parse_recipe(self, number: int, text: str, depth: int) -> Recipe | None:
        match = _RECIPE.match(text)
        if match is None or match.group(1) == "":
            # procmail reads `:` alone as `:0` and skips what it cannot read as flags (`:O:`)
            self.warn(number, f"recipe start {text[:40]!r} read as ':0' (procmail skips "
                              f"{text[1:40]!r})")
            match = _RECIPE.match(":0")
            assert match is not None
        elif match.group(1) != "0":
            self.problem(number, "old-style recipe (:N): write :0 with '*' conditions")
        flags = re.sub(r"\s", "", match.group(2))
        unknown = sorted(set(flags) - KNOWN_FLAGS)
        if unknown:
            self.problem(number, f"unknown recipe flag(s) {''.join(unknown)!r}")
        lockfile = match.group(4) if match.group(3) is not None else None
        recipe = Recipe(number, flags, lockfile)
        while (current := self.peek()) is not None and current[1].startswith("*"):
            self.position += 1
            condition = self.parse_condition(*current)
            if condition is not None:
                recipe.conditions.append(condition)
        if current is None:
            self.problem(number, "recipe has no action")
            return recipe
        action_line, action_text = current
        self.position += 1
        if action_text.startswith("{"):
            rest = action_text[1:].strip()
            if rest.endswith("}"):
                recipe.block = self.one_line_block(action_line, rest[:-1].strip())
            elif rest:
                self.problem(action_line, "put the contents of a '{' block on the next lines")
                recipe.block = self.parse_block(action_line, depth)
            else:
                recipe.block = self.parse_block(action_line, depth)
            recipe.end_line = self.end_line()
            return recipe
        recipe.action = _action(action_line, action_text, self.end_line())
        recipe.end_line = recipe.action.end_line
        return recipe

    def one_line_block(self, number: int, inner: str) -> list[Node]:
        """`{ HOST }`, `{ SPAM=yes }`, `{ EXITCODE=75 HOST }`: statements on the brace line."""
        nodes: list[Node] = []
        for word in inner.split():
            if (match := _ASSIGNMENT.match(word)) is not None:
                nodes.append(_assignment(number, match.group(1), match.group(2), number,
                                         inline=True))
            elif _NAME.fullmatch(word):
                nodes.append(Assignment(number, word, None, end_line=number, inline=True))
            else:
                self.problem(number, f"cannot read {word!r} in a one-line block; put the "
                                     "block's contents on their own lines")
        return nodes

    def parse_block(self, opened_at: int, depth: int) -> list[Node]:
        nodes = self.parse_nodes(depth + 1)
        current = self.peek()
        if current is None:
            self.problem(opened_at, "'{' block is never closed")
            return nodes
        number, text = current
        self.position += 1
        if text.strip() != "}":
            self.problem(number, "put nothing after a closing '}'")
        return nodes

    def parse_condition(self, number: int, text: str) -> Condition | None:
        end = self.end_line()
        negated, expand, body = _prefixes(text[1:].lstrip(), False, False)
        weight = None
        if (weighted := _WEIGHT.match(body)) is not None:
            weight = (float(weighted.group(1)), float(weighted.group(2)))
            negated, expand, body = _prefixes(body[weighted.end():], negated, expand)
        kind, variable = "regex", ""
        if body[:1] in ("<", ">"):
            kind = "size_over" if body[0] == ">" else "size_under"
            size = body[1:].strip()
            if not size.isdigit():
                self.problem(number, f"size condition needs a number of bytes, got {size!r}")
                return None
            body = size
        elif body[:1] == "?":
            kind, body = "program", body[1:].strip()
        elif (named := re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\?\?\s*", body)) is not None:
            kind, variable = "variable", named.group(1)
            # procmail reads `!` and `$` after `??` too (`* H ?? !^Lines:`)
            negated, expand, body = _prefixes(body[named.end():], negated, expand)
        return Condition(number, body, negated, expand, weight, kind, variable, end)


def _prefixes(body: str, negated: bool, expand: bool) -> tuple[bool, bool, str]:
    while body[:1] in ("!", "$"):
        if body[0] == "!":
            negated = not negated
        else:
            expand = True
        body = body[1:].lstrip()
    return negated, expand, body


def _assignment(number: int, name: str, raw: str, end_line: int,
                inline: bool = False) -> Assignment:
    value = strip_comment(raw)
    end = end_line or number
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return Assignment(number, name, value[1:-1], True, end, inline)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return Assignment(number, name, value[1:-1], False, end, inline)
    return Assignment(number, name, value if value else None, False, end, inline)


_CAPTURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*\|\s*(.*)$", re.S)


def _action(number: int, text: str, end_line: int) -> Action:
    if text.startswith("!"):
        return Action(number, "forward", text[1:].strip(), end_line)
    if text.startswith("|"):
        return Action(number, "pipe", text[1:].strip(), end_line)
    if (capture := _CAPTURE.match(text)) is not None:
        return Action(number, "capture", capture.group(2).strip(), end_line, capture.group(1))
    return Action(number, "folder", strip_comment(text), end_line)


def parse(text: str, filename: str = "procmailrc") -> Parsed:
    """The syntax tree of a procmailrc, every syntax problem and every warning (what procmail
    skips), each with its line."""
    parser = _Parser(text, filename)
    nodes = parser.parse_nodes(0)
    return Parsed(nodes, parser.problems, parser.warnings)
