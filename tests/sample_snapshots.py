"""The sample organisation's workspace as it stands before each step of the sample plans.

Tests that start from "the plans ran up to step N" (crash then resume, roll back one step) take
a copy of the snapshot instead of running the plans again. Every snapshot is taken, and every
copy restored, in one directory per test worker: the state and the sample's files hold
absolute paths (Maildir homes, the copy engine's mailbox pairs), so they stay true.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cutover.plan import load_plan
from cutover.sample import write_sample
from cutover.sample.writer import PLAN_NAMES
from tests.workspace_fingerprint import fingerprint

REPO = Path(__file__).resolve().parent.parent
SAMPLE_KINDS = {(name, step.id): step.spec.kind for name in PLAN_NAMES
                for step in load_plan(REPO / "plans" / name).ordered()}
SAMPLE_STEPS = list(SAMPLE_KINDS)  # (plan file, step id) in the order the plans run


def cutover(workspace: Path, *args: str, crash_at: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """cutover as an operator runs it, in its own process (a crash kills only that)."""
    env = dict(os.environ)
    env.pop("CUTOVER_CRASH_AT", None)
    if crash_at:
        env["CUTOVER_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace), *args],
                          capture_output=True, text=True, env=env)


@dataclass
class SampleSnapshots:
    workspace: Path
    before: dict[tuple[str, str], Path] = field(default_factory=dict)
    #: fingerprint of the workspace once the step ran (the plans run a step at a time)
    after: dict[tuple[str, str], dict] = field(default_factory=dict)

    def restore(self, plan: str, step: str) -> Path:
        """The workspace as it stood before `step` of `plan`, in the one place it ran."""
        if self.workspace.exists():
            shutil.rmtree(self.workspace)
        shutil.copytree(self.before[(plan, step)], self.workspace, symlinks=True)
        return self.workspace


@pytest.fixture(scope="session")
def sample_snapshots(tmp_path_factory) -> SampleSnapshots:
    """Run the sample plans a step at a time (`run --until`), keeping a copy of the workspace
    before each step and the fingerprint after it."""
    root = tmp_path_factory.mktemp("sample-snapshots")
    snapshots = SampleSnapshots(root / "agency")
    write_sample(snapshots.workspace)
    for plan, step in SAMPLE_STEPS:
        snapshots.before[(plan, step)] = root / "before" / plan / step
        shutil.copytree(snapshots.workspace, snapshots.before[(plan, step)], symlinks=True)
        ran = cutover(snapshots.workspace, "run", f"plans/{plan}", "--until", step, "--yes")
        assert ran.returncode == 0, ran.stderr
        snapshots.after[(plan, step)] = fingerprint(snapshots.workspace)
    return snapshots
