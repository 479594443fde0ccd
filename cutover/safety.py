"""The one safety gate, and the thresholds it applies (after octoDNS's Plan.raise_if_unsafe).

The runner asks the gate three questions, and only `--force` passes any of them:
- before confirming a preview: the step kind's `unsafe_reasons` (thresholds, rules that disagree);
- before applying an item: has the world moved since the preview (neither before nor after)?
- before rolling back: has anyone changed what the step applied (the world is not `after`)?
A refusal names every reason at once; a forced pass is logged and audited.

The DNS thresholds:

A step that would change too large a share of what exists is refused unless the operator passes
`--force`: a typo in a plan should not be able to rewrite a whole zone. Small zones are exempt
from the share limits (a 4-record zone changes 50% with two edits), but some changes are always
refused without force whatever the size: deleting a zone's last MX (mail would bounce) and
touching the apex NS set (the zone's delegation).

Limits resolve from the most specific setting: the step's params, then the provider's entry in
cutover.yaml, then these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cutover.errors import UnsafeChange


class Unobserved:
    """What `Step.observe` returns when a kind cannot tell an item's state (mail arrives all
    the time, say): the gate then has nothing to compare."""

    def __repr__(self) -> str:
        return "UNOBSERVED"


UNOBSERVED = Unobserved()

MAX_SAFE_UPDATE_SHARE = 0.3
MAX_SAFE_DELETE_SHARE = 0.3
MIN_EXISTING_RECORDS = 10


@dataclass(frozen=True)
class Thresholds:
    max_update_share: float = MAX_SAFE_UPDATE_SHARE
    max_delete_share: float = MAX_SAFE_DELETE_SHARE
    min_existing_records: int = MIN_EXISTING_RECORDS

    @classmethod
    def resolve(cls, *layers: dict[str, Any]) -> Thresholds:
        """The first layer that sets a limit wins (step params before provider config)."""
        chosen: dict[str, Any] = {}
        for name in ("max_update_share", "max_delete_share", "min_existing_records"):
            for layer in layers:
                if layer.get(name) is not None:
                    chosen[name] = layer[name]
                    break
        return cls(**chosen)


@dataclass(frozen=True)
class ZoneChangeCounts:
    """How many RRsets a step touches in a zone of `existing` RRsets (SOA not counted)."""

    zone: str
    existing: int | None
    updates: int
    deletes: int
    mx_before: int
    mx_after: int
    apex_ns_changed: bool = False


def unsafe_reasons(counts: ZoneChangeCounts, limits: Thresholds) -> list[str]:
    reasons: list[str] = []
    if counts.mx_before > 0 and counts.mx_after == 0:
        reasons.append(f"it deletes the last MX of zone {counts.zone} (mail would bounce)")
    if counts.apex_ns_changed:
        reasons.append(f"it changes the apex NS records of zone {counts.zone}")
    existing = counts.existing
    if existing is not None and existing >= limits.min_existing_records:
        for verb, count, limit in (("updates", counts.updates, limits.max_update_share),
                                   ("deletes", counts.deletes, limits.max_delete_share)):
            share = count / existing
            if share > limit:
                reasons.append(f"it {verb} {count} of {existing} RRsets of zone {counts.zone} "
                               f"({share:.0%}, limit {limit:.0%})")
    return reasons


def raise_if_unsafe(step_id: str, reasons: list[str], force: bool,
                    what: str = "unsafe change refused") -> list[str]:
    """The gate: raise UnsafeChange naming every reason, unless forced; returns the reasons
    that --force passed (the caller logs and audits them)."""
    if reasons and not force:
        raise UnsafeChange(f"step {step_id}: {what}: " + "; ".join(reasons) +
                           " (pass --force if this is intended)")
    return reasons


def drifted(step: Any, ctx: Any, change: Any, allowed: list[Any]) -> str | None:
    """Why `change.item` may not be touched: the world shows none of the `allowed` payloads
    (compared through the step kind's `comparable`); None when it does, or cannot tell."""
    observed = step.observe(ctx, change)
    if observed is UNOBSERVED:
        return None
    now = step.comparable(observed)
    if any(now == step.comparable(payload) for payload in allowed):
        return None
    return f"{change.item} is now {step.describe_state(observed)}"
