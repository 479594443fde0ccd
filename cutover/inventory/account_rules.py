"""What routes each account's mail on the Linux side: procmailrc, Sieve scripts, Postfix maps.

Only detection: presence, paths and forward targets are recorded on the recipient (procmail and
Sieve under `rules`, Postfix entries under `routing`); converting procmail is another module's job.

    inventory:
      routing:                 # shared by every source; a source may carry its own
        procmail: procmail/    # procmail/<address>/.procmailrc (or procmail/<local>/...)
        sieve: sieve/          # sieve/<address>/*.sieve
        postfix: postfix/      # every map source file in the directory (virtual, aliases, ...)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from cutover.parsers import postfix_map, procmailrc

_SIEVE_REDIRECT = re.compile(r'\bredirect\s+(?::copy\s+)?"([^"]+)"', re.IGNORECASE)
_ADDRESS = re.compile(r"[^@\s,<>\"]+@[^@\s,<>\"]+")
_MAP_SUFFIXES = (".db", ".lmdb", ".cdb", ".bak", "~", ".swp")


def _recipe_forwards(nodes: list[Any]) -> list[str]:
    targets: list[str] = []
    for node in nodes:
        if isinstance(node, procmailrc.Recipe):
            if node.action is not None and node.action.kind == "forward":
                targets.extend(a.lower() for a in _ADDRESS.findall(node.action.text))
            if node.block:
                targets.extend(_recipe_forwards(node.block))
    return targets


def procmail_rule(path: Path, label: str) -> dict[str, Any]:
    text = path.read_text(errors="replace")
    parsed = procmailrc.parse(text, label)
    recipes = sum(1 for node in parsed.nodes if isinstance(node, procmailrc.Recipe))
    pipes = sorted({m.group(1).split()[0] for m in re.finditer(r"^\s*\|\s*(\S+)", text, re.M)})
    return {"kind": "procmail", "path": label, "recipes": recipes,
            "forward_to": sorted(set(_recipe_forwards(parsed.nodes))), "pipes": pipes,
            "problems": len(parsed.problems)}


def sieve_rule(path: Path, label: str) -> dict[str, Any]:
    text = path.read_text(errors="replace")
    return {"kind": "sieve", "path": label,
            "forward_to": sorted({t.lower() for t in _SIEVE_REDIRECT.findall(text)})}


def _entries(directory: Path | None) -> frozenset[str]:
    """The names in a directory (none when it is missing): listed once, so that the accounts
    without routing files, nearly all of them, cost a set lookup instead of file system calls."""
    if directory is None:
        return frozenset()
    try:
        return frozenset(os.listdir(directory))
    except OSError:
        return frozenset()


class RoutingIndex:
    """Looks up routing files for one address; Postfix maps are read once, up front, and the
    procmail and Sieve directories listed once."""

    def __init__(self, workspace: Any, config: dict[str, Any] | None):
        config = config or {}
        self.workspace = workspace
        self.procmail = workspace.path(config["procmail"]) if config.get("procmail") else None
        self.sieve = workspace.path(config["sieve"]) if config.get("sieve") else None
        self.procmail_homes = _entries(self.procmail)
        self.sieve_homes = _entries(self.sieve)
        self.postfix = self._postfix_entries(config.get("postfix"))

    def _label(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.workspace.root))
        except ValueError:
            return str(path)

    def _postfix_entries(self, directory: str | None) -> dict[str, list[dict[str, Any]]]:
        entries: dict[str, list[dict[str, Any]]] = {}
        if not directory:
            return entries
        root = self.workspace.path(directory)
        files = [root] if root.is_file() else sorted(p for p in root.glob("*") if p.is_file())
        for path in files:
            if path.name.endswith(_MAP_SUFFIXES) or path.name == "main.cf":
                continue
            text = path.read_text(errors="replace")
            if path.name == "aliases":  # aliases(5): `name: value`
                text = re.sub(r"^([^\s#:]+):", r"\1 ", text, flags=re.M)
            for entry in postfix_map.parse_map(text, path.name).entries:
                entries.setdefault(entry.folded_key, []).append({
                    "kind": "postfix", "map": path.name, "key": entry.key, "value": entry.value,
                    "path": f"{self._label(path)}:{entry.first + 1}",
                    "forward_to": sorted({a.lower() for a in _ADDRESS.findall(entry.value)}),
                })
        return entries

    def annotate(self, recipient: dict[str, Any]) -> None:
        """Add found procmail/Sieve rules to `rules` and Postfix entries to `routing`."""
        address, local = recipient["address"], recipient["local"]
        rules = list(recipient.get("rules") or [])
        if self.procmail:
            for name in (address, local):
                if name not in self.procmail_homes and "/" not in name:
                    continue
                path = self.procmail / name / ".procmailrc"
                if path.is_file():
                    rules.append(procmail_rule(path, self._label(path)))
                    break
        if self.sieve and (address in self.sieve_homes or "/" in address):
            directory = self.sieve / address
            if directory.is_dir():
                for path in sorted(directory.glob("*.sieve")):
                    rules.append(sieve_rule(path, self._label(path)))
        recipient["rules"] = rules
        routing = []
        for key in (address, local):
            routing.extend(self.postfix.get(key, []))
        if routing or "routing" in recipient:
            recipient["routing"] = routing
