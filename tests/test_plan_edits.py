"""What the state knows stays reachable whatever happens to the plan file, and a lock whose
holder is gone can be cleared."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.sample import write_sample

PHASE1 = "plans/phase1-segregate.yaml"


def cutover(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run cutover from inside the workspace, as an operator would (plans/... is its own)."""
    return subprocess.run([sys.executable, "-m", "cutover", *args], cwd=root,
                          capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", **env})


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "agency"
    write_sample(root)
    return root


def without_serial(zone_text: str) -> str:
    """A zone file's text with its SOA serial blanked (every update bumps it)."""
    return re.sub(r"\b20\d{8}\b", "SERIAL", zone_text)


def remove_step(root: Path, step_id: str) -> None:
    """Cut the step (and every mention of it in requires) out of the phase-1 plan file."""
    import yaml

    path = root / PHASE1
    plan = yaml.safe_load(path.read_text())
    plan["steps"] = [s for s in plan["steps"] if s["id"] != step_id]
    for step in plan["steps"]:
        step["requires"] = [r for r in step.get("requires", []) if r != step_id]
    path.write_text(yaml.safe_dump(plan, sort_keys=False))


def test_resume_refuses_when_the_plan_lost_an_unfinished_step(workspace):
    crashed = cutover(workspace, "run", PHASE1, "--until", "spam-filter", "--yes",
                      CUTOVER_CRASH_AT="spam-filter:after-checkpoint")
    assert crashed.returncode == 137
    remove_step(workspace, "spam-filter")

    resumed = cutover(workspace, "resume", "--yes")

    assert resumed.returncode == 2
    assert resumed.stderr.startswith("error: plan phase1-segregate no longer has step(s) "
                                     "spam-filter that did not finish")


def test_a_step_removed_from_the_plan_is_still_rolled_back_from_its_checkpoint(workspace):
    zone = without_serial((workspace / "zones" / "verify.example.org").read_text())
    assert cutover(workspace, "run", PHASE1, "--until", "spam-filter", "--yes").returncode == 0
    remove_step(workspace, "spam-filter")

    rolled = cutover(workspace, "rollback", "spam-filter", "--yes")

    assert rolled.returncode == 0, rolled.stderr
    status = json.loads(cutover(workspace, "status", "--json").stdout)
    steps = {s["id"]: s["status"] for s in status["plans"][0]["steps"]}
    assert steps["spam-filter"] == "rolled_back"
    assert not (workspace / "postfix" / "main.cf").exists()  # the milter it added is gone
    assert cutover(workspace, "rollback", "verify-domain-dns", "--cascade", "--yes"
                   ).returncode == 0
    assert without_serial((workspace / "zones" / "verify.example.org").read_text()) == zone


def test_a_renamed_plan_is_refused_instead_of_stranding_its_checkpoints(workspace):
    assert cutover(workspace, "run", PHASE1, "--until", "spam-filter", "--yes").returncode == 0
    path = workspace / PHASE1
    path.write_text(path.read_text().replace("name: phase1-segregate", "name: phase1-renamed"))

    refused = cutover(workspace, "run", PHASE1, "--yes")

    assert refused.returncode == 2
    assert "ran as plan 'phase1-segregate', now named 'phase1-renamed'" in refused.stderr


def hold_lock(root: Path, pid: int, host: str) -> None:
    conn = sqlite3.connect(root / "state" / "cutover.db")
    conn.execute("INSERT OR REPLACE INTO lock (id, pid, host, command, acquired) "
                 "VALUES (1, ?, ?, 'run plans/phase1-segregate.yaml', '2026-12-01T10:00:00+00:00')",
                 (pid, host))
    conn.commit()
    conn.close()


def test_a_lock_held_from_another_host_is_shown_and_cleared_only_with_force(workspace):
    assert cutover(workspace, "run", PHASE1, "--until", "inventory", "--yes").returncode == 0
    hold_lock(workspace, 4242, "old-admin-host")

    locked = cutover(workspace, "run", PHASE1, "--yes")
    assert locked.returncode == 2 and "old-admin-host" in locked.stderr
    assert json.loads(cutover(workspace, "status", "--json").stdout)["lock"]["host"] == \
        "old-admin-host"
    assert "old-admin-host" in cutover(workspace, "status").stdout

    unforced = cutover(workspace, "unlock")
    assert unforced.returncode == 2 and "unlock --force" in unforced.stderr

    cleared = cutover(workspace, "unlock", "--force")
    assert cleared.returncode == 0, cleared.stderr
    assert json.loads(cutover(workspace, "status", "--json").stdout)["lock"] is None
    events = json.loads(cutover(workspace, "log", "--json").stdout)
    assert events[-1]["event"] == "lock-cleared" and "old-admin-host" in events[-1]["message"]


def test_a_stale_lock_on_this_host_is_cleared_without_force(workspace):
    assert cutover(workspace, "run", PHASE1, "--until", "inventory", "--yes").returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hold_lock(workspace, dead.pid, socket.gethostname())

    cleared = cutover(workspace, "unlock")

    assert cleared.returncode == 0, cleared.stderr
    assert "cleared the lock" in cleared.stdout
