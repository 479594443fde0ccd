"""Step kind `postfix.maps`: set or delete entries of one Postfix lookup table.

    - id: alias-old-addresses
      kind: postfix.maps
      for_each: {class: verification}
      params:
        server: linux-mx
        map: virtual
        entries: {"{address}": "{local}@verify.example.org"}
        filter_hop: "smtp:[filter.verify.example.org]:10025"

One Change per key. `before` keeps the key's exact prior entry lines, where they sat, and the
whole prior file text, so a rollback puts the file back byte-for-byte when nobody else edited it
since, and otherwise restores just this key's lines in place. `filter_hop` names the domain's own
spam filter: verify fails unless that hop is in the route (transport entry or content_filter)
of every destination the entries send mail to.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from cutover.connectors.postfix.maps import PostfixMapDirectory
from cutover.errors import CutoverError, UsageError
from cutover.item_template import expand
from cutover.parsers.postfix_map import parse_map, put_back_entry, set_entry
from cutover.steps.base import Change, Context, Finding, Params, Step, register

CREDENTIAL_MAP_WORDS = ("sasl", "passwd", "password", "secret", "credential")


class PostfixMapsParams(Params):
    server: str
    map: str
    entries: dict[str, str | None]
    filter_hop: str | None = None

    @field_validator("map")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("map must be a file name in the server's map directory")
        if any(word in value.lower() for word in CREDENTIAL_MAP_WORDS):
            # the prior file text goes into the checkpoint and the audit log: never secrets
            raise ValueError(f"{value} looks like a credentials map (SASL passwords): cutover "
                             "does not edit those")
        return value

    @field_validator("entries")
    @classmethod
    def _some_entries(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        if not value:
            raise ValueError("entries must name at least one key")
        return value


def _wanted_entries(params: PostfixMapsParams, item: dict[str, Any] | None) -> dict[str, Any]:
    wanted: dict[str, str | None] = {}
    for key_template, value_template in params.entries.items():
        key = expand(key_template, item).strip()
        value = None if value_template is None else expand(value_template, item).strip()
        if not key or any(c.isspace() for c in key):
            raise UsageError(f"{params.map}: key {key!r} must be one word without spaces")
        if value is not None and (not value or "\n" in value):
            raise UsageError(f"{params.map}: value for {key} must be one non-empty line")
        wanted[key] = value
    return wanted


def _action(before: str | None, after: str | None) -> str:
    if before is None:
        return "create"
    return "delete" if after is None else "update"


def _summary(map_name: str, key: str, before: str | None, after: str | None) -> str:
    return f"{map_name}: {key}  {before or '(none)'} -> {after or '(deleted)'}"


def _maps(ctx: Context, server: str) -> PostfixMapDirectory:
    maps = ctx.connector("postfix", server)
    if not isinstance(maps, PostfixMapDirectory):
        raise UsageError(f"cutover.yaml: postfix.{server} is not a postfix-maps connector")
    return maps


def hop_destinations(maps: PostfixMapDirectory, map_name: str, key: str, value: str) -> list[str]:
    """Where mail for `key` goes after this entry: the addresses or domains whose route must
    include the filter hop."""
    if map_name == maps.transport_map:
        return [key]
    targets = [t for t in value.replace(",", " ").split() if "@" in t]
    return sorted({t.rpartition("@")[2].lower() for t in targets}) or [key.rpartition("@")[2]]


@register
class PostfixMaps(Step):
    kind = "postfix.maps"
    Params = PostfixMapsParams
    summary = "Edit a Postfix lookup table (virtual, transport...), postmap it, check with -q."

    def preview(self, ctx: Context) -> list[Change]:
        params: PostfixMapsParams = ctx.params
        maps = _maps(ctx, params.server)
        text = maps.read_source(params.map)
        parsed = parse_map(text or "", str(maps.map_path(params.map)))
        changes = []
        for key, value in _wanted_entries(params, ctx.item).items():
            current = parsed.lookup(key)
            if current == value:
                continue
            before = {"server": params.server, "map": params.map, "key": key, "value": current,
                      "entry": parsed.entry_text(key), "placement": parsed.placement(key),
                      "file": text}
            after = {"server": params.server, "map": params.map, "key": key, "value": value,
                     "filter_hop": params.filter_hop}
            changes.append(Change(f"{params.server}/{params.map} {key}", _action(current, value),
                                  before, after, _summary(params.map, key, current, value)))
        return changes

    def apply(self, ctx: Context, change: Change) -> None:
        after = change.after
        maps = _maps(ctx, after["server"])
        text = maps.read_source(after["map"])
        current = parse_map(text or "", str(maps.map_path(after["map"]))).lookup(after["key"])
        if current == after["value"]:
            maps.compile_if_stale(after["map"])  # a crash may have come before postmap ran
            return
        maps.write_source(after["map"], set_entry(text or "", after["key"], after["value"]))

    def observe(self, ctx: Context, change: Change) -> Any:
        where = change.after or change.before
        maps = _maps(ctx, where["server"])
        text = maps.read_source(where["map"])
        return {"value": parse_map(text or "", str(maps.map_path(where["map"]))).lookup(
            where["key"])}

    def comparable(self, payload: Any) -> Any:
        return None if payload is None else payload.get("value")

    def describe_state(self, payload: Any) -> str:
        return repr(self.comparable(payload)) if self.comparable(payload) else "(no entry)"

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings: list[Finding] = []
        for change in changes:
            after = change.after
            maps = _maps(ctx, after["server"])
            try:
                findings.extend(self._check_value(maps, change))
                if after.get("filter_hop") and after["value"] is not None:
                    findings.extend(self._check_hop(maps, change))
            except CutoverError as exc:
                findings.append(Finding(change.item, str(exc)))
        return findings

    @staticmethod
    def _check_value(maps: PostfixMapDirectory, change: Change) -> list[Finding]:
        after = change.after
        actual = maps.lookup(after["map"], after["key"])
        if actual == after["value"]:
            return []
        how = "postmap -q" if maps.compiles else "the map source"
        return [Finding(change.item, f"{how} gives {actual or '(nothing)'} for {after['key']}, "
                                     f"expected {after['value'] or '(nothing)'}")]

    @staticmethod
    def _check_hop(maps: PostfixMapDirectory, change: Change) -> list[Finding]:
        after = change.after
        findings = []
        for destination in hop_destinations(maps, after["map"], after["key"], after["value"]):
            route = maps.route(destination)
            if not route.includes(after["filter_hop"]):
                findings.append(Finding(change.item, (
                    f"filter hop {after['filter_hop']} is not in the route of {destination} "
                    f"(transport: {route.transport or 'none'}, "
                    f"content_filter: {route.content_filter or 'none'})")))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        before = change.before
        maps = _maps(ctx, before["server"])
        current_text = maps.read_source(before["map"])
        restored = _restored_text(current_text, before)
        if restored == current_text:
            maps.compile_if_stale(before["map"])
            return
        maps.write_source(before["map"], restored)

    def manual_checks(self, params: Any) -> list[str]:
        return [f"postmap -q '{key}' hash:<{params.server} map dir>/{params.map}"
                for key in params.entries]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"restore {params.map} on {params.server} from the checkpoint's `file` text, "
                "then run postmap on it and `postfix reload`"]


def _restored_text(current_text: str | None, before: dict[str, Any]) -> str | None:
    """The whole prior file when the only differences from it are this key's (byte-for-byte),
    otherwise the current file with just this key's prior lines put back."""
    original_text = before["file"]
    key = before["key"]
    current = parse_map(current_text or "")
    original = parse_map(original_text or "")
    if _same_apart_from(current, original, key):
        return original_text
    return put_back_entry(current_text or "", key, before["entry"], before["placement"])


def _same_apart_from(current, original, key: str) -> bool:
    folded = key.lower()
    others_now = {k: v for k, v in current.as_dict().items() if k != folded}
    others_then = {k: v for k, v in original.as_dict().items() if k != folded}
    return others_now == others_then and current.non_entry_lines() == original.non_entry_lines()
