"""Crash at every point of every step of the sample plans, then resume: the workspace ends
exactly as after an uninterrupted run (Maildirs, zone files, maps, sieve files; not the DB)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
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
LAST_STEP = {name: step for name, step in SAMPLE_STEPS}  # the last one of each plan wins


def cutover(workspace: Path, *args: str, crash_at: str | None = None
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CUTOVER_CRASH_AT", None)
    if crash_at:
        env["CUTOVER_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env=env)


@dataclass
class Baselines:
    """Where each case runs (one directory per test worker, so the absolute paths the state
    and the sample's files hold stay true), the workspace as it stood before each step of
    each plan, and the fingerprint an uninterrupted run of each plan leaves."""

    workspace: Path
    before_step: dict[tuple[str, str], Path]
    uninterrupted: dict[str, dict]

    def restore(self, plan: str, step: str) -> Path:
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        shutil.copytree(self.before_step[(plan, step)], self.workspace, symlinks=True)
        return self.workspace


@pytest.fixture(scope="module")
def baselines(tmp_path_factory) -> Baselines:
    """Run each plan a step at a time (`run --until`), keeping a copy of the workspace before
    each step: a case then starts where its step starts, instead of running the whole plan
    up to it again."""
    root = tmp_path_factory.mktemp("crash")
    workspace = root / "agency"
    write_sample(workspace)
    baselines = Baselines(workspace, {}, {})
    for name, step in SAMPLE_STEPS:
        snapshot = root / "before" / name / step
        shutil.copytree(workspace, snapshot, symlinks=True)
        baselines.before_step[(name, step)] = snapshot
        ran = cutover(workspace, "run", f"plans/{name}", "--until", step, "--yes")
        assert ran.returncode == 0, ran.stderr
        if step == LAST_STEP[name]:
            baselines.uninterrupted[name] = fingerprint(workspace)
    return baselines


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("plan, step", SAMPLE_STEPS)
def test_crash_then_resume_ends_as_an_uninterrupted_run(baselines, plan, step, point):
    workspace = baselines.restore(plan, step)
    crashed = cutover(workspace, "run", f"plans/{plan}", "--yes", crash_at=f"{step}:{point}")
    assert crashed.returncode == 137, f"{step}:{point} was never reached: {crashed.stderr}"
    resumed = cutover(workspace, "resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(workspace) == baselines.uninterrupted[plan]
