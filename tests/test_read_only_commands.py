"""Commands that promise to change nothing leave the workspace byte for byte as they found it:
no state database created, none written (not even a -wal or -shm beside it), no file touched.
The one exception is the index a Maildir reader keeps (`dovecot-uidlist`), as Dovecot's own
readers do."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.sample import write_sample

PHASES = ("plans/phase1-segregate.yaml", "plans/phase2-cloud.yaml")
READER_INDEXES = {"dovecot-uidlist"}


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory below root: its bytes' digest (directories: 'dir')."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.name in READER_INDEXES:
            continue
        relative = str(path.relative_to(root))
        found[relative] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def cutover(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(root), *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})


READ_ONLY = [
    ("plan", "show", PHASES[0]),
    ("plan", "show", PHASES[1]),
    ("plan", "show", PHASES[0], "--json"),
    ("run", PHASES[0], "--dry-run"),
    ("run", PHASES[1], "--dry-run"),
    ("plan", "check", PHASES[0]),
    ("status",),
    ("status", "--json"),
    ("log",),
    ("runbook", PHASES[0]),
]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fresh") / "agency"
    write_sample(root)
    return root


@pytest.fixture(scope="module")
def half_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("half") / "agency"
    write_sample(root)
    ran = cutover(root, "run", PHASES[0], "--until", "accounts", "--yes")
    assert ran.returncode == 0, ran.stderr
    return root


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_fresh_workspace_stays_byte_for_byte_unchanged(fresh, command):
    before = snapshot(fresh)
    result = cutover(fresh, *command)
    assert result.returncode == 0, result.stderr
    assert snapshot(fresh) == before
    assert not list((fresh / "state").glob("cutover.db*"))


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_workspace_with_state_stays_byte_for_byte_unchanged(half_run, command):
    before = snapshot(half_run)
    result = cutover(half_run, *command)
    assert result.returncode == 0, result.stderr
    assert snapshot(half_run) == before
    assert sorted(p.name for p in (half_run / "state").iterdir()) == ["cutover.db"]


def test_dry_run_previews_what_run_would_do_next(half_run):
    shown = cutover(half_run, "run", PHASES[0], "--dry-run")
    assert "accounts (linux.account): done" in shown.stdout
    assert "move-mail (mailbox.sync): preview" in shown.stdout
