"""Parse procmailrc text into a syntax tree: assignments, recipes, nested blocks.

Pure: a string in, values out. Syntax errors come back as located `Problem`s (the parser never
raises on odd input; `parse` collects every problem it can and keeps going), so the converter
can report `file:line: reason` for all of them at once.

The grammar follows procmailrc(5):

    NAME=value                      assignment (value may be quoted, may hold $VAR and `cmd`)
    :0[flags][:[lockfile]]          a recipe
    * [!][$][weight^exp] condition  zero or more (regex, < size, > size, VAR ?? re, ? cmd)
    action                          folder(s), ! addresses, | command, or { nested block }

Lines ending in a backslash continue on the next line. `#` starts a comment on a line of its own
(and after an assignment's value or a flags line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cutover.errors import Problem

KNOWN_FLAGS = frozenset("HBDAaEehbcfwWir")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", re.S)
_RECIPE = re.compile(r"^:(\d*)[ \t]*([A-Za-z]*)(\s*:\s*(\S*))?\s*(#.*)?$")
_WEIGHT = re.compile(r"^(-?\d+(?:\.\d*)?|-?\.\d+)\s*\^\s*(-?\d+(?:\.\d*)?|-?\.\d+)\s*")


@dataclass(frozen=True)
class Assignment:
    line: int
    name: str
    value: str | None  # None: `NAME` alone or `NAME=` (unset)
    quoted: bool = False  # single-quoted: no $ expansion


@dataclass(frozen=True)
class Condition:
    line: int
    text: str  # the condition without its `*`, `!`, `$` and weight prefixes
    negated: bool = False
    expand: bool = False  # `$`: variables are substituted before matching
    weight: tuple[float, float] | None = None
    kind: str = "regex"  # regex | size_over | size_under | variable | program
    variable: str = ""  # for kind "variable": the name before `??`


@dataclass(frozen=True)
class Action:
    line: int
    kind: str  # folder | forward | pipe
    text: str  # folder path(s), addresses, or the command line


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


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Physical lines joined at trailing backslashes, each with its first line number."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not pending:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        lines.append((start, _join_continuation(pending)))
        pending = []
    if pending:
        lines.append((start, _join_continuation(pending)))
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

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, message))

    def peek(self) -> tuple[int, str] | None:
        while self.position < len(self.lines):
            number, text = self.lines[self.position]
            stripped = text.strip()
            if stripped and not stripped.startswith("#"):
                return number, stripped
            self.position += 1
        return None

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
                nodes.append(_assignment(number, match.group(1), match.group(2)))
            elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
                nodes.append(Assignment(number, text, None))
            else:
                self.problem(number, f"expected an assignment or a recipe (:0), got {text[:40]!r}")
        return nodes

    def parse_recipe(self, number: int, text: str, depth: int) -> Recipe | None:
        match = _RECIPE.match(text)
        if match is None:
            self.problem(number, f"malformed recipe start {text[:40]!r}")
            return None
        if match.group(1) != "0":
            self.problem(number, "old-style recipe (:N): write :0 with '*' conditions")
        flags = match.group(2)
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
            if rest and rest != "}":
                self.problem(action_line, "put the contents of a '{' block on the next lines")
            recipe.block = [] if rest == "}" else self.parse_block(action_line, depth)
            recipe.end_line = self.lines[self.position - 1][0] if self.position else action_line
            return recipe
        recipe.action = _action(action_line, action_text)
        recipe.end_line = action_line
        return recipe

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
        body = text[1:].lstrip()
        negated = expand = False
        weight = None
        while body[:1] in ("!", "$"):
            if body[0] == "!":
                negated = not negated
            else:
                expand = True
            body = body[1:].lstrip()
        if (weighted := _WEIGHT.match(body)) is not None:
            weight = (float(weighted.group(1)), float(weighted.group(2)))
            body = body[weighted.end():]
            while body[:1] in ("!", "$"):
                if body[0] == "!":
                    negated = not negated
                else:
                    expand = True
                body = body[1:].lstrip()
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
        elif (named := re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\?\?\s?", body)) is not None:
            kind, variable, body = "variable", named.group(1), body[named.end():]
        return Condition(number, body, negated, expand, weight, kind, variable)


def _assignment(number: int, name: str, raw: str) -> Assignment:
    value = strip_comment(raw)
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return Assignment(number, name, value[1:-1], quoted=True)
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return Assignment(number, name, value[1:-1])
    return Assignment(number, name, value if value else None)


def _action(number: int, text: str) -> Action:
    if text.startswith("!"):
        return Action(number, "forward", text[1:].strip())
    if text.startswith("|"):
        return Action(number, "pipe", text[1:].strip())
    return Action(number, "folder", strip_comment(text))


def parse(text: str, filename: str = "procmailrc") -> Parsed:
    """The syntax tree of a procmailrc and every syntax problem found, each with its line."""
    parser = _Parser(text, filename)
    nodes = parser.parse_nodes(0)
    return Parsed(nodes, parser.problems)
