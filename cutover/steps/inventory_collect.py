"""inventory.collect: take a classified inventory snapshot as a plan step (before each phase).

    - id: inventory
      kind: inventory.collect
      params: {source: exchange-csv}      # omit source to merge every configured source

Read-only against servers. Preview collects and compares with the latest snapshot of the same
source: identical content means nothing to do. Apply stores a snapshot (once: a snapshot with
the same content from this step is not stored twice). Rollback marks it superseded, so
`for_each` selections fall back to the snapshot before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from cutover.errors import WorldChanged
from cutover.inventory import store
from cutover.inventory.collect import collection
from cutover.state import State
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class InventoryCollectParams(Params):
    source: str | None = None


@contextmanager
def _state(ctx: Context) -> Iterator[State]:
    state = State.open(ctx.workspace.state_path)
    try:
        yield state
    finally:
        state.close()


def _tag(ctx: Context) -> str:
    return f"{ctx.plan_name}:{ctx.step_id}"


@register
class InventoryCollect(Step):
    kind: ClassVar[str] = "inventory.collect"
    Params: ClassVar[type[Params]] = InventoryCollectParams
    summary: ClassVar[str] = "Collect and classify the inventory into a new snapshot"

    def _collect(self, ctx: Context) -> tuple[str, list[dict[str, Any]], list[str]]:
        run = collection(ctx.workspace, ctx.params.source, ctx.now())
        recipients = list(run.recipients())
        return run.label, recipients, run.warnings

    def preview(self, ctx: Context) -> list[Change]:
        source, recipients, _ = self._collect(ctx)
        digest = store.snapshot_digest(recipients)
        with _state(ctx) as state:
            latest = store.latest_snapshot(state, source)
        if latest is not None and latest["digest"] == digest:
            return []
        after = {"source": source, "digest": digest, "recipients": len(recipients),
                 "created_by": _tag(ctx)}
        return [Change(f"snapshot from {source}", "create", None, after,
                       f"snapshot from {source} ({len(recipients)} recipients)")]

    def apply(self, ctx: Context, change: Change) -> None:
        source, recipients, warnings = self._collect(ctx)
        digest = store.snapshot_digest(recipients)
        if digest != change.after["digest"]:
            raise WorldChanged(f"the inventory of {source} changed since the preview: "
                               "preview the step again")
        with _state(ctx) as state:
            latest = store.latest_snapshot(state, source)
            if latest is not None and latest["digest"] == digest:
                return  # already stored (a re-applied in-flight item)
            store.store_snapshot(state, source, recipients, warnings, created_by=_tag(ctx),
                                 taken_at=ctx.now())

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        with _state(ctx) as state:
            return [f for change in changes for f in self._verify_one(state, change)]

    def _verify_one(self, state: State, change: Change) -> list[Finding]:
        if change.after is not None:
            latest = store.latest_snapshot(state, change.after["source"])
            if latest is None or latest["digest"] != change.after["digest"]:
                return [Finding(change.item, "the latest complete snapshot is not the one this "
                                             "step collected")]
            return []
        wanted = change.before  # after a rollback: the step's snapshot must be superseded
        stored = [s for s in store.list_snapshots(state)
                  if s["source"] == wanted["source"] and s["digest"] == wanted["digest"]
                  and s["created_by"] == wanted["created_by"]]
        if stored:
            return [Finding(change.item, f"snapshot {stored[-1]['id']} is still current after "
                                         "rollback")]
        return []

    def rollback(self, ctx: Context, change: Change) -> None:
        after = change.after or {}
        if after:
            with _state(ctx) as state:
                store.supersede(state, after["source"], after["digest"], after["created_by"])

    def manual_checks(self, params: Any) -> list[str]:
        return ["cutover inventory list", "cutover inventory diff"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["nothing to undo on servers: collection only reads"]
