"""Rolling back any step of the sample plans restores what that step changed: files byte for
byte, zone files record for record, Maildirs message for message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cutover.plan import load_plan
from cutover.runner import Runner, RunOptions
from cutover.sample import write_sample
from cutover.sample.writer import PLAN_NAMES
from cutover.state import State
from cutover.workspace import Workspace
from tests.sample_snapshots import SAMPLE_STEPS
from tests.workspace_fingerprint import fingerprint


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "agency"
    write_sample(root)
    return root


def runner(root: Path, plan_name: str) -> Runner:
    workspace = Workspace(root)
    return Runner(workspace, State.open(workspace.state_path),
                  load_plan(root / "plans" / plan_name))


@pytest.mark.parametrize("plan, step", SAMPLE_STEPS)
def test_rollback_restores_what_the_step_changed(sample_snapshots, plan, step):
    root = sample_snapshots.restore(plan, step)  # the plans ran up to this step
    before = fingerprint(root)
    current = runner(root, plan)
    current.run(RunOptions(yes=True, step=step))
    assert current.rollback(step, yes=True) == [step]
    assert fingerprint(root) == before
    assert current.state.step_status(current.plan.name, step) == "rolled_back"


def test_rolling_back_all_of_phase_1_leaves_no_file_behind_in_the_zones(pristine, tmp_path):
    root = tmp_path / "agency"
    shutil.copytree(pristine, root)
    before = sorted(p.name for p in (root / "zones").iterdir())
    phase1 = runner(root, PLAN_NAMES[0])
    phase1.run(RunOptions(yes=True))
    phase1.rollback("dns-check-before", cascade=True, yes=True)
    assert sorted(p.name for p in (root / "zones").iterdir()) == before
