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
def baselines(tmp_path_factory) -> dict[str, tuple[Path, dict, Path]]:
    """Per plan: the workspace as it stands before the plan runs, and the fingerprint an
    uninterrupted run of the plan leaves."""
    root = tmp_path_factory.mktemp("baselines")
    current = root / "start"
    write_sample(current)
    result: dict[str, tuple[Path, dict, Path]] = {}
    for name in PLAN_NAMES:
        before = root / f"before-{name}"
        shutil.copytree(current, before)
        ran = cutover(current, "run", f"plans/{name}", "--yes")
        assert ran.returncode == 0, ran.stderr
        result[name] = (before, fingerprint(current), current)
    return result


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("plan, step", SAMPLE_STEPS)
def test_crash_then_resume_ends_as_an_uninterrupted_run(baselines, tmp_path, plan, step, point):
    before, uninterrupted, origin = baselines[plan]
    workspace = tmp_path / "agency"
    shutil.copytree(before, workspace)
    crashed = cutover(workspace, "run", f"plans/{plan}", "--yes", crash_at=f"{step}:{point}")
    assert crashed.returncode == 137, f"{step}:{point} was never reached: {crashed.stderr}"
    resumed = cutover(workspace, "resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    # a workspace copied after phase 1 keeps absolute paths of the original (mail homes)
    assert fingerprint(workspace, copied_from=(origin,)) == uninterrupted
