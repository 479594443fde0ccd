"""dns.records: set or delete RRsets of one zone, through a provider of cutover.yaml.

    - id: lower-mx-ttl
      kind: dns.records
      params:
        zone: example.org
        provider: dns
        changes:
          - {name: "@", type: MX, ttl: 300, set: ["10 mx1.example.org."]}
          - {name: old, type: A, delete: true}

Preview is the exact diff against what the primary serves now, checked against the safety
thresholds (cutover.safety). Apply sends one update per RRset whose prerequisite is the RRset of
the preview (`Change.before`: TTL and values), so a record someone changed meanwhile makes the
step fail with WorldChanged instead of being overwritten. Verify waits (up to verify_timeout)
until every authoritative nameserver serves the new data and has the primary's SOA serial.

Lowering a TTL records a hold: resolvers may keep the old RRset for the old TTL, so a later
change of that RRset (and any later MX change in the zone, after an MX TTL was lowered) waits
until the old TTL has run out. The runner persists holds and shows the remaining wait.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cutover.connectors.dns_zone import DnsZone, Edit, ServerError, serial_newer_or_equal
from cutover.dns_model import (
    APEX,
    UNCHANGEABLE_TYPES,
    RecordInvalid,
    RRset,
    canonical_values,
    fqdn,
    record_type,
    relative_name,
    same_rrset,
    zone_text,
)
from cutover.errors import CapabilityMissing, UsageError
from cutover.safety import Thresholds, ZoneChangeCounts, unsafe_reasons
from cutover.steps.base import Change, Context, Finding, Params, Step, register

DEFAULT_TTL = 3600
POLL_INTERVAL = 0.2


class RecordChange(BaseModel):
    """One RRset: `set` its values (with `ttl`), or `delete: true` it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    ttl: int | None = Field(default=None, ge=0, le=2**31 - 1)
    set: list[str] | None = None
    delete: bool = False

    @model_validator(mode="after")
    def _set_or_delete(self) -> RecordChange:
        if self.delete == (self.set is not None):
            raise ValueError(f"{self.name} {self.type}: give either set: [values] or delete: true")
        if self.set is not None and not self.set:
            raise ValueError(f"{self.name} {self.type}: set needs at least one value "
                             "(use delete: true to remove the RRset)")
        return self


class DnsRecordsParams(Params):
    zone: str
    provider: str = "dns"
    changes: list[RecordChange] = Field(min_length=1)
    max_update_share: float | None = Field(default=None, gt=0, le=1)
    max_delete_share: float | None = Field(default=None, gt=0, le=1)
    min_existing_records: int | None = Field(default=None, ge=0)
    verify_timeout: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _records_are_valid(self) -> DnsRecordsParams:
        """Every name, type and value parses in the zone; each RRset appears once."""
        problems: list[str] = []
        seen: set[tuple[str, str]] = set()
        for change in self.changes:
            try:
                key = (relative_name(self.zone, change.name), record_type(change.type))
                if key[1] in UNCHANGEABLE_TYPES:
                    raise RecordInvalid(f"{change.name} {key[1]}: the SOA is managed by the "
                                        "server, not by dns.records")
                if change.set is not None:
                    canonical_values(self.zone, key[1], change.set)
            except RecordInvalid as exc:
                problems.append(str(exc))
                continue
            if key in seen:
                problems.append(f"{change.name} {key[1]} appears twice in changes")
            seen.add(key)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def hold_keys(zone: str, name: str, rdtype: str) -> list[str]:
    """Keys of the holds that protect an RRset: its own, plus the zone-wide one for MX."""
    keys = [f"dns:{zone}:{name}:{rdtype}"]
    if rdtype == "MX":
        keys.append(f"dns:{zone}:*:MX")
    return keys


def payload(zone: str, rrset: RRset | None) -> dict[str, Any] | None:
    return None if rrset is None else {"zone": zone, **rrset.to_json()}


def rrset_of(data: dict[str, Any] | None) -> RRset | None:
    return None if data is None else RRset.from_json(data)


def change_key(change: Change) -> tuple[str, str, str]:
    data = change.after or change.before
    if not data:
        raise UsageError(f"{change.item}: the checkpoint holds neither before nor after")
    return data["zone"], data["name"], data["type"]


@register
class DnsRecords(Step):
    kind = "dns.records"
    Params = DnsRecordsParams
    needs = frozenset({"dns.update"})
    summary = "Set or delete DNS RRsets with RFC 2136 prerequisites and safety thresholds."

    # --- preview -----------------------------------------------------------------------
    def preview(self, ctx: Context) -> list[Change]:
        params: DnsRecordsParams = ctx.params
        zone = zone_text(params.zone)
        provider: DnsZone = ctx.connector("providers", params.provider)
        changes = [change for spec in params.changes
                   if (change := self._diff(zone, provider, spec)) is not None]
        if not changes:
            return []
        for change in changes:
            for key in hold_keys(*change_key(change)):
                ctx.wait_for(key)
        # the thresholds are the runner's safety gate's business: see unsafe_reasons
        return changes

    def _diff(self, zone: str, provider: DnsZone, spec: RecordChange) -> Change | None:
        name, rdtype = relative_name(zone, spec.name), record_type(spec.type)
        current = provider.read_rrset(zone, name, rdtype)
        wanted = None
        if not spec.delete:
            ttl = spec.ttl if spec.ttl is not None else (current.ttl if current else DEFAULT_TTL)
            wanted = RRset(name, rdtype, ttl, canonical_values(zone, rdtype, spec.set or []))
        if same_rrset(current, wanted):
            return None
        action = "create" if current is None else "delete" if wanted is None else "update"
        item = f"{rdtype} {fqdn(zone, name)}"
        summary = (f"{action} {item}: {current.describe() if current else '(absent)'} -> "
                   f"{wanted.describe() if wanted else '(deleted)'}")
        return Change(item, action, payload(zone, current), payload(zone, wanted), summary)

    def unsafe_reasons(self, ctx: Context, changes: list[Change]) -> list[str]:
        if not changes:
            return []
        zone = zone_text(ctx.params.zone)
        provider: DnsZone = ctx.connector("providers", ctx.params.provider)
        return self._threshold_reasons(ctx, zone, provider, changes)

    def _threshold_reasons(self, ctx: Context, zone: str, provider: DnsZone,
                           changes: list[Change]) -> list[str]:
        try:
            existing: dict[tuple[str, str], RRset] | None = provider.read_zone(zone)
        except CapabilityMissing as exc:
            # Without a transfer the share limits cannot be computed; the MX rule still can.
            ctx.log(f"safety: share limits not checked: {exc}")
            existing = None
        after: dict[tuple[str, str], RRset | None] = dict(existing or {})
        for change in changes:
            _, name, rdtype = change_key(change)
            after[(name, rdtype)] = rrset_of(change.after)
        before_mx = ([k for k in existing if k[1] == "MX"] if existing is not None else
                     [(c.before["name"], "MX") for c in changes if c.before and
                      c.before["type"] == "MX"])
        after_mx = [k for k, v in after.items() if k[1] == "MX" and v is not None]
        counts = ZoneChangeCounts(
            zone=zone,
            existing=None if existing is None else sum(1 for k in existing if k[1] != "SOA"),
            updates=sum(1 for c in changes if c.action == "update"),
            deletes=sum(1 for c in changes if c.action == "delete"),
            mx_before=len(before_mx), mx_after=len(after_mx),
            apex_ns_changed=any(change_key(c)[1:] == (APEX, "NS") for c in changes))
        limits = Thresholds.resolve(ctx.params.model_dump(), getattr(provider, "safety", {}))
        return unsafe_reasons(counts, limits)

    # --- apply / rollback --------------------------------------------------------------
    def apply(self, ctx: Context, change: Change) -> None:
        self._move(ctx, change.before, change.after)
        before, after = rrset_of(change.before), rrset_of(change.after)
        if before is not None and after is not None and after.ttl < before.ttl:
            zone, name, rdtype = change_key(change)
            until = ctx.now() + timedelta(seconds=before.ttl)
            reason = (f"resolvers may cache {rdtype} {fqdn(zone, name)} for its old TTL "
                      f"({before.ttl}s)")
            for key in hold_keys(zone, name, rdtype):
                ctx.hold_until(key, until, reason)

    def rollback(self, ctx: Context, change: Change) -> None:
        self._move(ctx, change.after, change.before)

    def observe(self, ctx: Context, change: Change) -> Any:
        zone, name, rdtype = change_key(change)
        provider: DnsZone = ctx.connector("providers", ctx.params.provider)
        return payload(zone, provider.read_rrset(zone, name, rdtype))

    def comparable(self, data: Any) -> Any:
        rrset = rrset_of(data)
        return None if rrset is None else [rrset.ttl, sorted(rrset.values)]

    def describe_state(self, data: Any) -> str:
        return _shown(rrset_of(data))

    def _move(self, ctx: Context, source: dict | None, target: dict | None) -> None:
        """Turn the RRset from `source` into `target`; done already if it is `target`."""
        data = target or source
        if data is None:
            return
        zone, name, rdtype = data["zone"], data["name"], data["type"]
        provider: DnsZone = ctx.connector("providers", ctx.params.provider)
        current = provider.read_rrset(zone, name, rdtype)
        if same_rrset(current, rrset_of(target)):
            return
        # The update's prerequisite is what the checkpoint says is there; with --force (the
        # runner's gate passed an edit made since) it is what is there now.
        expected = current if ctx.force else rrset_of(source)
        provider.update(zone, [Edit(name, rdtype, expected, rrset_of(target))])

    # --- verify --------------------------------------------------------------------------
    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        if not changes:
            return []
        provider: DnsZone = ctx.connector("providers", ctx.params.provider)
        deadline = time.monotonic() + ctx.params.verify_timeout
        while True:  # secondaries follow by NOTIFY/IXFR: poll until they have or time is up
            findings = self._findings(provider, changes)
            if not findings or time.monotonic() >= deadline:
                return findings
            time.sleep(POLL_INTERVAL)

    def _findings(self, provider: DnsZone, changes: list[Change]) -> list[Finding]:
        findings: list[Finding] = []
        zones: set[str] = set()
        for change in changes:
            zone, name, rdtype = change_key(change)
            zones.add(zone)
            expected = rrset_of(change.after)
            for server, view in provider.views(zone, name, rdtype).items():
                if isinstance(view, ServerError):
                    findings.append(Finding(change.item, f"{server}: {view.message}"))
                elif not same_rrset(view, expected):
                    findings.append(Finding(change.item, f"{server} serves {_shown(view)}, "
                                                         f"expected {_shown(expected)}"))
        for zone in sorted(zones):
            primary = provider.serial(zone)
            for server, serial in provider.serials(zone).items():
                if isinstance(serial, ServerError):
                    findings.append(Finding(f"SOA {zone}", f"{server}: {serial.message}"))
                elif not serial_newer_or_equal(serial, primary):
                    findings.append(Finding(f"SOA {zone}", f"{server} has serial {serial}, "
                                            f"the primary {primary}: not propagated"))
        return findings

    # --- runbook -------------------------------------------------------------------------
    def manual_checks(self, params: Any) -> list[str]:
        zone = zone_text(params.zone)
        return [f"dig +norec @<each nameserver of {zone}> "
                f"{fqdn(zone, relative_name(zone, c.name))} {record_type(c.type)}"
                for c in params.changes] + [
            f"dig +norec @<each nameserver of {zone}> {zone} SOA  (same serial everywhere)"]

    def manual_rollback(self, params: Any) -> list[str]:
        zone = zone_text(params.zone)
        return [f"nsupdate -k <tsig key file>: restore each RRset of {zone} listed in the "
                "checkpoint (`cutover status --json` shows the before values), then `send`"]


def _shown(rrset: RRset | None) -> str:
    return rrset.describe() if rrset else "(absent)"
