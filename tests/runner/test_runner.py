"""The runner's semantics, on a real step kind writing real files (see docs/runner.md)."""

from __future__ import annotations

import pytest

from cutover.errors import (
    ConfirmationRequired,
    PreviewChanged,
    RollbackRefused,
    StepFailed,
    UnsafeChange,
    UsageError,
    VerificationFailed,
)
from cutover.runner import RunOptions, select_items

TWO_STEPS = """\
    name: two
    steps:
      - id: first
        kind: test.files
        params: {files: {a.txt: "A1", b.txt: "B1", c.txt: "C1"}}
      - id: second
        kind: test.files
        requires: [first]
        params: {files: {a.txt: "A2"}}
    """


def test_run_applies_every_step_and_records_done(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    result = runner.run(RunOptions(yes=True))
    assert result.done == ["first", "second"]
    assert (workspace.root / "a.txt").read_text() == "A2"
    assert (workspace.root / "b.txt").read_text() == "B1"
    assert [runner.state.step_status("two", s) for s in ("first", "second")] == ["done"] * 2


def test_checkpoint_holds_the_prior_state_before_anything_changes(workspace, write_plan,
                                                                    runner_for):
    (workspace.root / "a.txt").write_text("original")
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True, step="first"))
    checkpoint = runner.state.checkpoint("two", "first")
    befores = {c["item"]: c["before"] for c in checkpoint["changes"]}
    assert befores == {"a.txt": "original", "b.txt": None, "c.txt": None}


def test_second_run_changes_nothing(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True))
    again = runner.run(RunOptions(yes=True))
    assert again.done == [] and again.skipped == ["first", "second"]


def test_dry_run_previews_without_side_effects(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    result = runner.run(RunOptions(dry_run=True))
    assert [c.item for c in result.previews["first"]] == ["a.txt", "b.txt", "c.txt"]
    assert not (workspace.root / "a.txt").exists()
    assert runner.state.steps() == []


def test_without_yes_and_without_terminal_the_run_is_refused_and_state_untouched(
        workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    with pytest.raises(ConfirmationRequired):
        runner.run(RunOptions())
    assert not (workspace.root / "a.txt").exists()
    assert list(runner.state.db["runs"].rows) == []
    assert runner.state.steps() == []


def test_confirm_false_runs_without_asking(workspace, write_plan, runner_for):
    plan = write_plan("""\
        name: quiet
        steps:
          - {id: only, kind: test.files, confirm: false, params: {files: {x: "1"}}}
        """)
    assert runner_for(plan).run(RunOptions()).done == ["only"]


def test_until_runs_the_step_and_its_requirements_only(workspace, write_plan, runner_for):
    plan = write_plan("""\
        name: three
        steps:
          - {id: a, kind: test.files, params: {files: {a: "1"}}}
          - {id: b, kind: test.files, requires: [a], params: {files: {b: "1"}}}
          - {id: c, kind: test.files, params: {files: {c: "1"}}}
        """)
    result = runner_for(plan).run(RunOptions(yes=True, until="b"))
    assert result.done == ["a", "b"]
    assert not (workspace.root / "c").exists()


def test_failed_apply_marks_step_failed_and_rerun_finishes_the_rest(workspace, write_plan,
                                                                     runner_for):
    plan = write_plan("""\
        name: flaky
        steps:
          - id: write
            kind: test.files
            params: {files: {a.txt: "A", b.txt: "B"}, fail_on: b.txt}
        """)
    (workspace.root / "outage").write_text("the target is down")
    runner = runner_for(plan)
    with pytest.raises(StepFailed, match="b.txt"):
        runner.run(RunOptions(yes=True))
    assert runner.state.step_status("flaky", "write") == "failed"
    items = {i["item"]: i["status"] for i in runner.state.items("flaky", "write")}
    assert items == {"a.txt": "done", "b.txt": "pending"}
    (workspace.root / "outage").unlink()
    fixed = runner_for(plan)
    assert fixed.run(RunOptions(yes=True)).done == ["write"]
    assert (workspace.root / "b.txt").read_text() == "B"
    applied = [e["item"] for e in fixed.state.events() if e["event"] == "applied"]
    assert applied == ["a.txt", "b.txt"]  # the finished item was not applied twice


def test_verification_checks_the_world_not_the_state(workspace, write_plan, runner_for,
                                                     monkeypatch):
    from tests.runner.filestep import TestFiles

    monkeypatch.setattr(TestFiles, "apply", lambda self, ctx, change: None)
    runner = runner_for(write_plan(TWO_STEPS))
    with pytest.raises(VerificationFailed, match="a.txt"):
        runner.run(RunOptions(yes=True, step="first"))
    assert runner.state.step_status("two", "first") == "failed"


def test_rollback_restores_files_byte_for_byte_and_verifies(workspace, write_plan,
                                                            runner_for):
    (workspace.root / "a.txt").write_bytes(b"original\r\n\x00bytes")
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True, step="first"))
    assert runner.rollback("first", yes=True) == ["first"]
    assert (workspace.root / "a.txt").read_bytes() == b"original\r\n\x00bytes"
    assert not (workspace.root / "b.txt").exists()
    assert runner.state.step_status("two", "first") == "rolled_back"


def test_rollback_refuses_while_dependents_are_applied_naming_them(workspace, write_plan,
                                                                   runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True))
    with pytest.raises(RollbackRefused, match="second"):
        runner.rollback("first", yes=True)
    assert (workspace.root / "a.txt").read_text() == "A2"


def test_cascade_rolls_back_dependents_first_in_reverse_order(workspace, write_plan,
                                                              runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True))
    assert runner.rollback("first", cascade=True, yes=True) == ["second", "first"]
    assert not (workspace.root / "a.txt").exists()


def test_rollback_of_a_step_that_never_ran_is_refused(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    with pytest.raises(RollbackRefused, match="not been applied"):
        runner.rollback("first", yes=True)


def test_rolled_back_step_runs_again_from_a_fresh_preview(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True, step="first"))
    runner.rollback("first", yes=True)
    assert runner.run(RunOptions(yes=True, step="first")).done == ["first"]
    assert (workspace.root / "c.txt").read_text() == "C1"


def test_audit_log_records_every_change_with_before_and_after(workspace, write_plan,
                                                              runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True, step="first"))
    applied = [e for e in runner.state.events() if e["event"] == "applied"]
    assert {(e["item"], e["before"], e["after"]) for e in applied} == {
        ("a.txt", None, "A1"), ("b.txt", None, "B1"), ("c.txt", None, "C1")}
    assert all(e["user"] and e["host"] and e["at"] for e in applied)


HOLD_PLAN = """\
    name: ttl
    steps:
      - {id: lower-ttl, kind: test.hold, params: {key: none}}
      - {id: switch, kind: test.hold, requires: [lower-ttl], params: {key: "after:lower-ttl"}}
    """


def test_a_step_waits_for_a_hold_and_the_wait_survives_a_restart(workspace, write_plan,
                                                                 runner_for):
    plan = write_plan(HOLD_PLAN)
    result = runner_for(plan).run(RunOptions(yes=True))
    assert result.done == ["lower-ttl"] and result.waiting[0] == "switch"
    reopened = runner_for(plan)  # a new process: a new State on the same file
    row = reopened.state.step("ttl", "switch")
    assert row["status"] == "waiting" and row["wait_until"]
    assert reopened.run(RunOptions(yes=True)).waiting[0] == "switch"
    reopened.state.advance_clock(3601)
    assert reopened.run(RunOptions(yes=True)).done == ["switch"]


def test_simulated_clock_skips_waits_and_logs_it(workspace, write_plan, runner_for):
    (workspace.root / "cutover.yaml").write_text("clock: simulated\n")
    runner = runner_for(write_plan(HOLD_PLAN))
    assert runner.run(RunOptions(yes=True)).done == ["lower-ttl", "switch"]
    assert any(e["event"] == "clock-advanced" for e in runner.state.events())


@pytest.mark.parametrize("selector, expected", [
    ({"class": "verification"}, ["a@x", "b@x"]),
    ({"class": ["people", "shared"]}, ["c@x", "d@x"]),
    ({"class": "verification", "destination": "keep"}, ["b@x"]),
    ({"class": "nobody"}, []),
])
def test_for_each_selector_matches_fields(selector, expected):
    recipients = [{"address": "a@x", "class": "verification", "destination": "linux"},
                  {"address": "b@x", "class": "verification", "destination": "keep"},
                  {"address": "c@x", "class": "people"},
                  {"address": "d@x", "class": "shared"}]
    assert [r["address"] for r in select_items(recipients, selector)] == expected


def test_an_unsafe_step_is_refused_before_any_change_and_force_passes(workspace, write_plan,
                                                                      runner_for):
    plan = write_plan("""\
        name: risky
        steps:
          - {id: big, kind: test.files, params: {files: {a: "1"}, unsafe: true}}
        """)
    runner = runner_for(plan)
    with pytest.raises(UnsafeChange):
        runner.run(RunOptions(yes=True))
    assert not (workspace.root / "a").exists()
    assert list(runner.state.db["runs"].rows) == [] and runner.state.steps() == []
    assert runner.run(RunOptions(yes=True, force=True)).done == ["big"]


def test_expect_hash_applies_exactly_what_was_reviewed(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    reviewed = runner.run(RunOptions(dry_run=True)).preview_hashes["first"]
    (workspace.root / "b.txt").write_text("someone else wrote this")  # the world moves on
    with pytest.raises(PreviewChanged, match="first"):
        runner.run(RunOptions(yes=True, step="first", expect_hash=reviewed[:12]))
    assert not (workspace.root / "a.txt").exists()
    assert runner.state.steps() == [] and list(runner.state.db["runs"].rows) == []
    again = runner.run(RunOptions(dry_run=True)).preview_hashes["first"]
    assert runner.run(RunOptions(yes=True, step="first", expect_hash=again[:12])).done == [
        "first"]


def test_expect_hash_needs_a_single_step(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    with pytest.raises(UsageError, match="--step"):
        runner.run(RunOptions(yes=True, expect_hash="abc"))


def test_a_finished_run_supersedes_an_interrupted_one(workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    interrupted = runner.state.start_run("two", "plans/p.yaml", {})
    runner.run(RunOptions(yes=True))
    assert runner.state.db["runs"].get(interrupted)["status"] == "superseded"
    assert runner.state.unfinished_run() is None


def test_rollback_acts_with_the_params_the_step_was_applied_with(workspace, write_plan,
                                                                 runner_for):
    plan = write_plan(TWO_STEPS)
    runner_for(plan).run(RunOptions(yes=True, step="first"))
    plan.write_text(plan.read_text().replace("a.txt: \"A1\"", "elsewhere.txt: \"A1\""))
    edited = runner_for(plan)
    edited.rollback("first", yes=True)
    assert not (workspace.root / "a.txt").exists()  # what the step wrote, not the edited plan


def test_a_rollback_closes_the_interrupted_run_so_resume_does_not_replay_it(
        workspace, write_plan, runner_for):
    runner = runner_for(write_plan(TWO_STEPS))
    runner.run(RunOptions(yes=True, step="first"))
    interrupted = runner.state.start_run("two", "plans/p.yaml", {"yes": True})
    runner.rollback("first", yes=True)
    assert runner.state.db["runs"].get(interrupted)["status"] == "superseded"
    assert runner.state.unfinished_run() is None
