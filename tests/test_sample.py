"""The embedded sample organisation and the demo."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.plan import load_plan
from cutover.render import runbook_markdown
from cutover.sample import write_sample
from cutover.sample.writer import PLAN_NAMES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "agency"
    write_sample(root)
    return root


def test_sample_inventory_is_a_get_mailbox_export_of_at_least_60_mailboxes(sample):
    raw = (sample / "inventory" / "Get-Mailbox.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf#TYPE ")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig").split("\r\n", 1)[1])))
    assert len(rows) >= 60
    kinds = {row["RecipientTypeDetails"] for row in rows}
    assert {"UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox"} <= kinds
    addresses = {row["PrimarySmtpAddress"] for row in rows}
    assert {"datarequest@example.org", "reb-distribution@example.org"} <= addresses


def test_sample_has_zone_files_maps_and_procmail_rules(sample):
    assert (sample / "zones" / "example.org").read_text().count(" MX ") == 2
    assert (sample / "zones" / "verify.example.org").exists()
    assert {p.name for p in (sample / "postfix").iterdir()} >= {"virtual", "transport"}
    rcs = list((sample / "procmail").glob("*/.procmailrc"))
    assert len(rcs) >= 10


@pytest.mark.parametrize("name", PLAN_NAMES)
def test_sample_plans_are_valid_and_checked_in_unchanged(sample, name):
    plan = load_plan(sample / "plans" / name)
    assert plan.steps
    assert (REPO / "plans" / name).read_text() == (sample / "plans" / name).read_text()


@pytest.mark.parametrize("name", PLAN_NAMES)
def test_checked_in_runbooks_are_rendered_from_the_current_plans(name):
    plan = load_plan(REPO / "plans" / name)
    rendered = runbook_markdown(plan, f"plans/{name}")
    checked_in = REPO / "runbooks" / name.replace(".yaml", ".md")
    assert checked_in.read_text() == rendered, (
        f"regenerate: cutover runbook plans/{name} -o {checked_in.relative_to(REPO)}")


def test_init_refuses_an_existing_workspace(sample):
    result = subprocess.run([sys.executable, "-m", "cutover", "init", "--sample", str(sample)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "already holds a workspace" in result.stderr


def test_demo_runs_both_phases_clean_under_warnings_as_errors(tmp_path):
    target = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-W", "error", "-m", "cutover", "demo",
                             str(target)], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "400"})  # one line a row
    assert result.returncode == 0, result.stderr[-3000:]
    routes = result.stdout.split("Where mail goes, before and after", 1)[1]
    [verification] = [line for line in routes.splitlines() if "│ datarequest@" in line]
    [person] = [line for line in routes.splitlines() if "│ amira.haddad@" in line]
    # a verification address moves from Exchange to the Linux side, a person's to the cloud
    assert "ends onprem: datarequest@example.org" in verification
    assert "ends linux: datarequest@verify.example.org" in verification
    assert "ends onprem: amira.haddad@example.org" in person
    assert "ends cloud: amira.haddad@example.org (Exchange Online)" in person
    passwords = [line.split(": ", 1)[1] for path in (target / "credentials").iterdir()
                 for line in path.read_text().splitlines() if line.startswith("password: ")]
    assert len(passwords) == 13  # one per verification account, handed to the operator
    state_bytes = b"".join(p.read_bytes() for p in (target / "state").iterdir())
    for password in passwords:
        assert password.encode() not in state_bytes
        assert password not in result.stdout + result.stderr
    status = subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(target),
                             "status", "--json"], capture_output=True, text=True)
    import json

    report = json.loads(status.stdout)
    assert sorted(p["name"] for p in report["plans"]) == ["phase1-segregate", "phase2-cloud"]
    assert all(step["status"] == "done" for p in report["plans"] for step in p["steps"])


EXPECTED_CLASS = {"person": ("people", "cloud"), "functional": ("verification", "linux"),
                  "shared": ("shared", "cloud"), "resource": ("resource", "cloud"),
                  "service": ("service", "keep"), "unknown": ("unknown", "keep")}


def test_sample_organisation_classifies_as_expected_with_reasons(sample, tmp_path):
    import shutil

    from cutover.inventory.store import latest_recipients
    from cutover.sample.org import recipients
    from cutover.state import State

    workspace = tmp_path / "agency"
    shutil.copytree(sample, workspace)
    result = subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace),
                             "inventory", "collect"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = {r["address"]: r for r in latest_recipients(State.open(workspace / "state" /
                                                                   "cutover.db"))}
    for recipient in recipients():
        if recipient.role not in EXPECTED_CLASS:
            continue
        classified = found[recipient.address.lower()]
        assert (classified["class"], classified["destination"]) == \
            EXPECTED_CLASS[recipient.role], recipient.address
        assert classified["reason"], recipient.address
