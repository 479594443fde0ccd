"""A step kind whose previews only read (`preview_workers` > 1) is previewed several items at a
time, and the run cannot tell: changes, notes and the first failure come in item order."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest

from cutover.errors import StepFailed
from cutover.plan import load_plan
from cutover.runner import QuietOutput, Runner
from cutover.state import State
from cutover.steps.base import Change, Context, Finding, Params, Step, register

ITEMS = [{"address": f"u{n}@example.org"} for n in range(1, 13)]
#: items 2 and 3 wait for each other: previewed one by one, they never meet
MEETING = {"u2@example.org", "u3@example.org"}


class LookParams(Params):
    fail: list[str] = []


@register
class TestLook(Step):
    """Previews each item from the workspace's state, on whatever thread the runner picks."""

    kind: ClassVar[str] = "test.look"
    Params = LookParams
    preview_workers: ClassVar[int] = 4
    meeting: ClassVar[threading.Barrier] = threading.Barrier(2)

    def preview(self, ctx: Context) -> list[Change]:
        address = ctx.item["address"]
        if address in MEETING:
            self.meeting.wait(timeout=30)
        ctx.log(f"looked at {address} ({ctx.state.setting('seen', 'never')})")
        if address in ctx.params.fail:
            raise StepFailed(f"cannot read {address}")
        return [Change(address, "create", None, "looked")]

    def apply(self, ctx: Context, change: Change) -> None: ...

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        return []

    def rollback(self, ctx: Context, change: Change) -> None: ...


class Notes(QuietOutput):
    def __init__(self):
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture
def look_runner(workspace, write_plan):
    def make(fail: list[str] = ()) -> tuple[Runner, Notes]:
        TestLook.meeting.reset()
        path = write_plan(f"""\
            name: look
            steps:
              - id: look
                kind: test.look
                params: {{fail: {list(fail)}}}
            """)
        notes = Notes()
        state = State.open(workspace.state_path)
        return Runner(workspace, state, load_plan(path), notes), notes

    return make


def test_items_previewed_side_by_side_come_back_in_item_order_with_their_notes(look_runner):
    runner, output = look_runner()
    planned = runner.preview_step(runner.plan.step("look"), items=ITEMS)
    assert [change.item for change, _ in planned] == [item["address"] for item in ITEMS]
    assert [item for _, item in planned] == ITEMS
    # read from the state on the workers' threads, told in item order
    assert output.notes == [f"looked at {item['address']} (never)" for item in ITEMS]


def test_the_first_failing_item_in_item_order_is_the_one_reported(look_runner):
    runner, _ = look_runner(fail=["u9@example.org", "u4@example.org"])
    with pytest.raises(StepFailed, match="cannot read u4@example.org"):
        runner.preview_step(runner.plan.step("look"), items=ITEMS)


def test_a_kind_without_preview_workers_is_previewed_one_item_at_a_time(look_runner,
                                                                         monkeypatch):
    monkeypatch.setattr(TestLook, "preview_workers", 1)
    monkeypatch.setattr(TestLook, "meeting", threading.Barrier(1))  # nobody to meet
    runner, output = look_runner()
    threads = set()
    original = TestLook.preview

    def preview(self, ctx):
        threads.add(threading.get_ident())
        return original(self, ctx)

    monkeypatch.setattr(TestLook, "preview", preview)
    planned = runner.preview_step(runner.plan.step("look"), items=ITEMS)
    assert threads == {threading.get_ident()}
    assert len(planned) == len(ITEMS) and len(output.notes) == len(ITEMS)
