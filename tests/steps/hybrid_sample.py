"""The sample organisation, phase 1 done and the inventory collected, for the hybrid step tests:
one pristine copy per session, each test works on its own copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from cutover.plan import load_plan
from cutover.runner import Runner, RunOptions
from cutover.sample import write_sample
from cutover.state import State
from cutover.workspace import Workspace

PHASE2 = "plans/phase2-cloud.yaml"


@pytest.fixture(scope="session")
def after_phase1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hybrid") / "agency"
    write_sample(root)
    workspace = Workspace(root)
    state = State.open(workspace.state_path)
    Runner(workspace, state, load_plan(root / "plans" / "phase1-segregate.yaml")).run(
        RunOptions(yes=True))
    state.close()
    return root


@pytest.fixture
def agency(after_phase1, tmp_path) -> Path:
    root = tmp_path / "agency"
    shutil.copytree(after_phase1, root)
    return root


def runner(root: Path, plan: str = PHASE2) -> Runner:
    workspace = Workspace(root)
    return Runner(workspace, State.open(workspace.state_path), load_plan(root / plan))


def edit_plan(root: Path, step_id: str, **params: Any) -> None:
    path = root / PHASE2
    plan = yaml.safe_load(path.read_text())
    for step in plan["steps"]:
        if step["id"] == step_id:
            step["params"].update(params)
    path.write_text(yaml.safe_dump(plan, sort_keys=False))


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def batches(root: Path) -> dict[str, Any]:
    return json.loads((root / "tenant" / "migration" / "batches.json").read_text())


def run_until(root: Path, step: str) -> Runner:
    current = runner(root)
    current.run(RunOptions(yes=True, until=step))
    return current
