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

from cutover.inventory import store
from cutover.inventory.collect import collection
from cutover.state import State
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class InventoryCollectParams(Params):
    source: str | None = None


@contextmanager
def _state(ctx: Context) -> Iterator[State]:
    """The runner's State (a read-only snapshot while previewing): the step never opens the
    database itself."""
    if ctx.state is None:
        raise RuntimeError("inventory.collect runs only under the runner (ctx.state)")
    yield ctx.state


def _tag(ctx: Context) -> str:
    return f"{ctx.plan_name}:{ctx.step_id}"


@register
class InventoryCollect(Step):
    kind: ClassVar[str] = "inventory.collect"
    Params: ClassVar[type[Params]] = InventoryCollectParams
    summary: ClassVar[str] = "Collect and classify the inventory into a new snapshot"

    def preview(self, ctx: Context) -> list[Change]:
        run = collection(ctx.workspace, ctx.params.source, ctx.now())
        digest = store.SetDigest()
        for recipient in run.recipients():
            digest.add(recipient)
        with _state(ctx) as state:
            latest = store.latest_snapshot(state, run.label)
        if latest is not None and latest["digest"] == digest.hexdigest():
            return []
        after = {"source": run.label, "digest": digest.hexdigest(), "recipients": digest.count,
                 "created_by": _tag(ctx)}
        return [Change(f"snapshot from {run.label}", "create", None, after,
                       f"snapshot from {run.label} ({digest.count} recipients)")]

    def apply(self, ctx: Context, change: Change) -> None:
        run = collection(ctx.workspace, ctx.params.source, ctx.now())
        with _state(ctx) as state:
            latest = store.latest_snapshot(state, run.label)
            if latest is not None and latest["digest"] == change.after["digest"]:
                return  # already stored (a re-applied in-flight item)
            store.store_snapshot(state, run.label, run.recipients(), run.warnings,
                                 created_by=_tag(ctx), taken_at=ctx.now(),
                                 expect_digest=change.after["digest"])

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
