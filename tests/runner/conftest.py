from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import tests.runner.filestep  # noqa: F401 - registers the test step kinds
from cutover.plan import load_plan
from cutover.runner import Runner
from cutover.state import State
from cutover.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "cutover.yaml").write_text("name: test\n")
    (tmp_path / "plans").mkdir()
    return Workspace(tmp_path)


@pytest.fixture
def write_plan(workspace: Workspace):
    def write(text: str, name: str = "p.yaml") -> Path:
        path = workspace.root / "plans" / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def runner_for(workspace: Workspace):
    def make(plan_path: Path) -> Runner:
        state = State.open(workspace.state_path)
        return Runner(workspace, state, load_plan(plan_path))

    return make
