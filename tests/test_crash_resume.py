"""Crash at every point of every step of the sample plans, then resume: the workspace ends
exactly as after an uninterrupted run (Maildirs, zone files, maps, sieve files; not the DB)."""

from __future__ import annotations

import pytest

from cutover.runner import CRASH_POINTS
from tests.sample_snapshots import SAMPLE_KINDS, SAMPLE_STEPS, cutover
from tests.workspace_fingerprint import fingerprint

#: kinds whose records later steps read (the inventory for_each selects from, the copy
#: engine's identity map, a migration batch): a crash in them is resumed to the plan's end
#: and compared there; any other step is compared once it has finished
RECORDS_LATER_STEPS_READ = {"inventory.collect", "mailbox.sync", "cloud.migration_batch"}
LAST_STEP = {name: step for name, step in SAMPLE_STEPS}  # the last one of each plan wins


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("plan, step", SAMPLE_STEPS)
def test_crash_then_resume_ends_as_an_uninterrupted_run(sample_snapshots, plan, step, point):
    workspace = sample_snapshots.restore(plan, step)
    until = LAST_STEP[plan] if SAMPLE_KINDS[(plan, step)] in RECORDS_LATER_STEPS_READ else step
    crashed = cutover(workspace, "run", f"plans/{plan}", "--until", until, "--yes",
                      crash_at=f"{step}:{point}")
    assert crashed.returncode == 137, f"{step}:{point} was never reached: {crashed.stderr}"
    resumed = cutover(workspace, "resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(workspace) == sample_snapshots.after[(plan, until)]
