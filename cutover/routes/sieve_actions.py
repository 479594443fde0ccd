"""What a Sieve script does with mail, as far as routing cares: redirect, fileinto, pipe,
discard, keep, each marked conditional (inside an `if`) or not.

A small tokenizer (strings, multi-line `text:` literals, comments, brackets) is enough: the
routing model does not evaluate tests, it reports which actions always happen and which may.
Strings in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUTING_ACTIONS = frozenset({"redirect", "fileinto", "pipe", "discard", "keep", "stop"})

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*|/\*.*?\*/)
  | (?P<multiline>text:[ \t]*(?:\#[^\n]*)?\r?\n.*?\r?\n\.\r?\n)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<number>\d+[KMG]?)
  | (?P<punct>[{}\[\](),;])
  | (?P<space>\s+)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class SieveAction:
    action: str  # redirect | fileinto | pipe | discard | keep | stop
    argument: str = ""  # the address, folder or program
    copy: bool = False  # :copy, or a redirect that does not end delivery
    conditional: bool = False

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, "argument": self.argument, "copy": self.copy,
                "conditional": self.conditional}


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _tokens(script: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(script):
        match = _TOKEN.match(script, position)
        if match is None:  # something we do not understand: skip one character
            position += 1
            continue
        position = match.end()
        kind = match.lastgroup or ""
        if kind not in ("comment", "space"):
            tokens.append((kind, match.group()))
    return tokens


def sieve_actions(script: str) -> list[SieveAction]:
    """Routing actions in script order; `conditional` when inside any block."""
    actions: list[SieveAction] = []
    depth = 0
    command: list[tuple[str, str]] = []
    for kind, text in _tokens(script):
        if text == "{":
            depth += 1
            command = []
        elif text == "}":
            depth = max(0, depth - 1)
            command = []
        elif text == ";":
            action = _action(command, depth > 0)
            if action is not None:
                actions.append(action)
            command = []
        else:
            command.append((kind, text))
    return actions


def _action(command: list[tuple[str, str]], conditional: bool) -> SieveAction | None:
    if not command or command[0][0] != "word":
        return None
    name = command[0][1].lower()
    if name == "vnd.dovecot.pipe" or name == "execute":
        name = "pipe"
    if name not in ROUTING_ACTIONS:
        return None
    tags = {text.lower() for kind, text in command if kind == "tag"}
    strings = [_unquote(text) for kind, text in command if kind == "string"]
    argument = strings[0] if strings else ""
    return SieveAction(name, argument, copy=":copy" in tags, conditional=conditional)


def unconditional(actions: list[SieveAction]) -> list[SieveAction]:
    """The actions that run for every message, up to the first unconditional `stop`."""
    result = []
    for action in actions:
        if action.conditional:
            continue
        if action.action == "stop":
            break
        result.append(action)
    return result
