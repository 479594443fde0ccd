from datetime import UTC, datetime

import pytest

from cutover.errors import WorldChanged
from cutover.inventory import store
from cutover.sample.org import recipients as sample_recipients
from cutover.state import State
from cutover.steps.base import Change, Context
from cutover.steps.inventory_collect import InventoryCollect
from cutover.workspace import Workspace
from tests.inventory.sample_org import write_sample_workspace

SAMPLE_SIZE = len(sample_recipients())

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path):
    workspace = Workspace(write_sample_workspace(tmp_path / "ws"))
    params = InventoryCollect.Params(source="exchange-csv")
    # the runner hands every step its State; steps never open the database themselves
    return Context(workspace, "phase1", "inventory", params, clock=lambda: NOW,
                   state=State.open(workspace.state_path))


def snapshots(ctx):
    state = State.open(ctx.workspace.state_path)
    try:
        return store.list_snapshots(state)
    finally:
        state.close()


def test_preview_offers_one_snapshot_and_apply_stores_it(ctx):
    step = InventoryCollect()
    changes = step.preview(ctx)
    assert [c.item for c in changes] == ["snapshot from exchange-csv"]
    assert changes[0].after["recipients"] == SAMPLE_SIZE and changes[0].before is None
    step.apply(ctx, changes[0])
    assert step.verify(ctx, changes) == []
    assert [s["recipients"] for s in snapshots(ctx)] == [SAMPLE_SIZE]


def test_second_apply_changes_nothing_and_preview_is_empty(ctx):
    step = InventoryCollect()
    change = step.preview(ctx)[0]
    step.apply(ctx, change)
    step.apply(ctx, change)
    assert len(snapshots(ctx)) == 1
    assert step.preview(ctx) == []


def test_apply_refuses_when_the_inventory_changed_since_preview(ctx):
    step = InventoryCollect()
    change = step.preview(ctx)[0]
    (ctx.workspace.root / "procmail" / "waveform-request@example.org" / ".procmailrc").unlink()
    with pytest.raises(WorldChanged):
        step.apply(ctx, change)
    assert snapshots(ctx) == []


def test_rollback_supersedes_the_snapshot_from_the_checkpoint_alone(ctx):
    step = InventoryCollect()
    change = step.preview(ctx)[0]
    step.apply(ctx, change)
    restored = Change.from_json(change.to_json())  # as read back from a checkpoint
    step.rollback(ctx, restored)
    step.rollback(ctx, restored)
    assert snapshots(ctx) == []
    assert step.verify(ctx, [restored.inverse()]) == []
    assert [f.problem for f in step.verify(ctx, [restored])] == [
        "the latest complete snapshot is not the one this step collected"]


def test_params_reject_unknown_keys():
    with pytest.raises(ValueError):
        InventoryCollect.Params(source="x", path="y")
