"""`cloud.migration_batch` on the sample organisation through the exo-file twin: pre-staged,
watched into the state DB, completed in its window, verified, rolled back; crash and resume at
every point of the batch steps leaves one batch completed once."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.errors import RollbackRefused, StepFailed, VerificationFailed
from cutover.runner import CRASH_POINTS, RunOptions
from cutover.state import State
from cutover.steps import migration_state
from cutover.steps.base import Context
from cutover.steps.hybrid_support import Window
from cutover.workspace import Workspace
from tests.steps.hybrid_sample import PHASE2, batches, edit_plan, run_until, runner

PEOPLE = 40
MOVING = 52  # people, shared mailboxes and rooms


def test_prestage_creates_one_started_batch_and_completes_nothing(agency):
    current = run_until(agency, "prestage")
    batch = batches(agency)["phase2-people"]
    assert len(batch["Users"]) == MOVING and batch["StartTime"]
    assert batch["CompleteRequestTime"] is None
    tenant = json.loads((agency / "tenant" / "recipients.json").read_text())
    assert {r["RecipientTypeDetails"] for r in tenant} == {"MailUser"}  # nothing moved
    items = current.state.items("phase2-cloud", "prestage")
    assert [i["item"] for i in items][0] == "batch" and len(items) == MOVING + 1
    progress = migration_state.batch_progress(current.state, "phase2-cloud", "prestage")
    assert len(progress["mailboxes"]) == MOVING
    assert set(progress["counts"]) <= {"Queued", "Syncing"}


def test_prestage_again_changes_nothing(agency):
    current = run_until(agency, "prestage")
    assert current.preview_step(current.plan.step("prestage")) == []


def test_wait_synced_holds_the_run_on_a_real_clock(agency):
    config = agency / "cutover.yaml"
    config.write_text(config.read_text().replace("clock: simulated", ""))
    current = runner(agency)
    result = current.run(RunOptions(yes=True, until="wait-synced"))
    assert result.waiting is not None and result.waiting[0] == "wait-synced"
    assert "still syncing" in result.waiting[2]
    assert current.state.step_status("phase2-cloud", "wait-synced") == "waiting"


def test_a_mailbox_over_the_bad_item_limit_stops_the_run_naming_it_and_the_remedy(agency):
    edit_plan(agency, "prestage", bad_item_limit=0)
    with pytest.raises(StepFailed) as failed:
        run_until(agency, "wait-synced")
    message = str(failed.value)
    assert "sean.obrien@example.org: Failed: TooManyBadItemsPermanentException" in message
    assert "raise bad_item_limit in the plan" in message
    # the operator raises the limit in the plan; the prestage step retries the mailbox
    edit_plan(agency, "prestage", bad_item_limit=10)
    current = runner(agency)
    current.state.set_step("phase2-cloud", "prestage", "cloud.migration_batch", "pending")
    current.run(RunOptions(yes=True, until="wait-synced"))
    assert current.state.step_status("phase2-cloud", "wait-synced") == "done"


def test_complete_moves_every_mailbox_and_verifies_folder_counts(agency):
    current = run_until(agency, "complete")
    assert current.state.step_status("phase2-cloud", "complete") == "done"
    users = batches(agency)["phase2-people"]["Users"]
    assert all(u["Materialised"] for u in users) and len(users) == MOVING
    remote = json.loads((agency / "exchange" / "management" / "remote-mailboxes.json")
                        .read_text())
    assert len(remote) == MOVING
    progress = migration_state.batch_progress(current.state, "phase2-cloud", "complete")
    assert progress["counts"] == {"Completed": MOVING}
    sean = next(m for m in progress["mailboxes"] if m["address"] == "sean.obrien@example.org")
    assert sean["items_skipped"] == 2


def test_complete_waits_for_its_window(agency):
    current = run_until(agency, "complete")
    waits = [e["message"] for e in current.state.events("phase2-cloud")
             if e["event"] == "clock-advanced" and "window" in (e["message"] or "")]
    assert len(waits) == 1 and "sat 06:00-10:00 Europe/Vienna" in waits[0]
    requested = batches(agency)["phase2-people"]["CompleteRequestTime"]
    window = Window(days=["sat"], start="06:00", end="10:00", timezone="Europe/Vienna")
    assert window.open_at(datetime.fromisoformat(requested.replace("Z", "+00:00")))


def test_verify_finds_mail_missing_in_the_tenant(agency):
    current = run_until(agency, "complete")
    cloud = Workspace(agency).connector("mailstores", "cloud")
    with cloud.open("amira.haddad@example.org") as session:
        inbox = session.list_messages("INBOX")
        session.delete("INBOX", [inbox[0].uid])
    step = current.plan.step("complete")
    entries = current.state.checkpoint("phase2-cloud", "complete")["changes"]
    with pytest.raises(VerificationFailed, match="amira.haddad@example.org: 1 item"):
        current._verify(step, entries)


def test_prestage_rollback_is_refused_while_mailboxes_are_in_the_cloud(agency):
    current = run_until(agency, "complete")
    with pytest.raises(RollbackRefused, match="complete"):
        current.rollback("prestage", yes=True)  # dependents applied: cascade needed
    assert current.rollback("prestage", cascade=True, yes=True)[-1] == "prestage"
    assert batches(agency) == {}
    mailboxes = json.loads((agency / "exchange" / "management" / "mailboxes.json").read_text())
    assert sum(1 for m in mailboxes if m["PrimarySmtpAddress"].startswith("amira")) == 1


def test_observations_give_an_eta_per_mailbox(tmp_path):
    state = State.open(tmp_path / "state.db")
    clock = {"now": datetime(2026, 3, 14, 8, 0, tzinfo=UTC)}
    state.acquire_lock("test")
    ctx = Context(workspace=None, plan_name="p", step_id="wait", params=None,
                  clock=lambda: clock["now"], state=state, dry_run=True)  # a locked preview
    from cutover.parsers.exchange_objects import MigrationUserStatistics as Stats

    migration_state.record(ctx, "b", [Stats("a@x", "b", "Syncing", 20, bytes_total=1000,
                                            bytes_transferred=200)])
    clock["now"] += timedelta(minutes=10)
    migration_state.record(ctx, "b", [Stats("a@x", "b", "Syncing", 40, bytes_total=1000,
                                            bytes_transferred=400)])
    row = migration_state.batch_progress(state, "p", "wait")["mailboxes"][0]
    assert row["eta"] == "2026-03-14T08:40:00+00:00"  # 600 bytes left at 200 per 10 minutes
    state.release_lock()
    unlocked = Context(workspace=None, plan_name="p", step_id="wait", params=None,
                       clock=lambda: clock["now"], state=state, dry_run=True)
    assert not migration_state.may_record(unlocked)  # plan show writes nothing


# --- crash at every point of the batch steps, then resume ------------------------------------


def cutover(workspace: Path, *args: str, crash_at: str | None = None
            ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CUTOVER_CRASH_AT", None)
    if crash_at:
        env["CUTOVER_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace),
                           *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("step", ["prestage", "complete"])
def test_crash_then_resume_leaves_one_batch_completed_once(agency, step, point):
    crashed = cutover(agency, "run", PHASE2, "--yes", "--until", "complete",
                      crash_at=f"{step}:{point}")
    assert crashed.returncode == 137, crashed.stderr
    resumed = cutover(agency, "resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    found = batches(agency)
    assert list(found) == ["phase2-people"]
    report = [entry["Message"] for entry in found["phase2-people"]["Report"]["Entries"]]
    assert sum("created" in message for message in report) == 1
    assert sum(message == "Completion requested." for message in report) == 1
    assert all(user["Materialised"] for user in found["phase2-people"]["Users"])


# --- render mode: the operator runs the PowerShell, cutover reads what it exported -----------


def test_render_mode_writes_the_cmdlet_then_reads_its_export_through_the_same_parsing(agency):
    import yaml

    from cutover.connectors.pwsh import OperatorActionRequired
    from cutover.steps.cloud_migration_batch import CloudMigrationBatch

    config = yaml.safe_load((agency / "cutover.yaml").read_text())
    config["management"]["tenant"] = {
        "kind": "exo", "mode": "render", "app_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
        "organization": "exampleorg.onmicrosoft.com",
        "certificate_thumbprint": "A3F1C9E07B2D4E6F8A0B1C2D3E4F5A6B7C8D9E0F"}
    (agency / "cutover.yaml").write_text(yaml.safe_dump(config))
    current = runner(agency)
    current.run(RunOptions(yes=True, step="inventory"))
    step = current.plan.step("prestage")
    shown: list[str] = []
    ctx = dataclasses.replace(current.context(step, dry_run=True), log=shown.append)
    with pytest.raises(OperatorActionRequired, match="Get-MigrationBatch phase2-people: run "):
        CloudMigrationBatch().preview(ctx)
    scripts = agency / "runbooks" / "powershell" / "tenant"
    [script] = scripts.glob("Get-MigrationBatch-*.ps1")
    text = script.read_text()
    assert shown == [f"run in PowerShell: {script}\n{text}"]  # the console shows it whole
    assert "Connect-ExchangeOnline -AppId '6731de76-14a6-49ae-97bc-6eba6914391e'" in text
    assert "Get-MigrationBatch -Identity 'phase2-people' -IncludeReport" in text
    # what the script exports when the batch does not exist yet
    script.with_suffix(".json").write_text(json.dumps({"ok": False, "error": {
        "message": "ExBDDC58|Microsoft.Exchange.Configuration.Tasks."
                   "ManagementObjectNotFoundException|The migration batch \"phase2-people\" "
                   "can't be found.", "error_id": "", "category": "NotSpecified"},
        "exported": datetime.now(UTC).isoformat()}))
    changes = CloudMigrationBatch().preview(ctx)
    assert changes[0].item == "batch" and len(changes) == MOVING + 1
    with pytest.raises(OperatorActionRequired, match="New-MigrationBatch phase2-people"):
        CloudMigrationBatch().apply(current.context(step), changes[0])
    [csv] = scripts.glob("New-MigrationBatch-*.csv")
    assert csv.read_text().count("@example.org") == MOVING
