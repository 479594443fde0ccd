"""Crash at every point of every step of the sample plans, then resume: the workspace ends
exactly as after an uninterrupted run (Maildirs, zone files, maps, sieve files; not the DB)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.plan import load_plan
from cutover.runner import CRASH_POINTS
from cutover.sample import write_sample
from cutover.sample.writer import PLAN_NAMES
from tests.workspace_fingerprint import fingerprint

REPO = Path(__file__).resolve().parent.parent
SAMPLE_STEPS = [(name, step.id) for name in PLAN_NAMES
                for step in load_plan(REPO / "plans" / name).ordered()]


def cutover(workspace: Path, *args: str, crash_at: str | None = None
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CUTOVER_CRASH_AT", None)
    if crash_at:
        env["CUTOVER_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine") / "agency"
    write_sample(root)
    return root


@pytest.fixture(scope="module")
def uninterrupted(pristine, tmp_path_factory) -> dict:
    workspace = tmp_path_factory.mktemp("reference") / "agency"
    shutil.copytree(pristine, workspace)
    for name in PLAN_NAMES:
        result = cutover(workspace, "run", f"plans/{name}", "--yes")
        assert result.returncode == 0, result.stderr
    return fingerprint(workspace)


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("plan, step", SAMPLE_STEPS)
def test_crash_then_resume_ends_as_an_uninterrupted_run(pristine, uninterrupted, tmp_path,
                                                        plan, step, point):
    workspace = tmp_path / "agency"
    shutil.copytree(pristine, workspace)
    crashed = False
    for name in PLAN_NAMES:
        result = cutover(workspace, "run", f"plans/{name}", "--yes",
                         crash_at=f"{step}:{point}" if name == plan else None)
        if result.returncode == 137:
            crashed = True
            resumed = cutover(workspace, "resume", "--yes")
            assert resumed.returncode == 0, resumed.stderr
        else:
            assert result.returncode == 0, result.stderr
    assert crashed, f"{step}:{point} was never reached"
    assert fingerprint(workspace) == uninterrupted
