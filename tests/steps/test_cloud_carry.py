"""cloud.carry: the Graph path carries each person's contacts and the inbox rules Graph can
express, through the personal-file twins (on premises and Exchange Online) and a Maildir
cloud mail store for the folders rules move mail to."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from cutover.errors import UsageError
from cutover.sample import write_sample
from cutover.steps.base import Change, Context
from cutover.steps.cloud_carry import CloudCarry, CloudCarryParams
from cutover.workspace import Workspace

ERIK = {"displayName": "Erik Lund", "givenName": "Erik", "surname": "Lund",
        "companyName": "Nordic Seismic Network",
        "emailAddresses": [{"address": "erik.lund@example.net", "name": "Erik Lund"}],
        "businessPhones": ["+47 22 00 12 34"]}
FRONT_DESK = {"displayName": "Front desk (Vienna)", "businessPhones": ["+43 1 26060 0"]}

REPORTS_RULE = {"kind": "inbox-rule", "name": "Station reports", "enabled": True,
                "priority": 1, "forward_to": [], "redirect": False, "delete": False,
                "conditions": {"ContainsSubjectStrings": ["STATION REPORT"],
                               "FromAddresses": [{"address": "ops@ims.example.net"}]},
                "exceptions": {"HasAttachments": True},
                "actions": {"MoveToFolder": "Station Reports", "StopProcessingRules": True}}
HOLIDAY_RULE = {"kind": "inbox-rule", "name": "Holiday auto-reply", "enabled": True,
                "priority": 2, "forward_to": [], "redirect": False, "delete": False,
                "conditions": {"SentToMe": True,
                               "WithinDateRange": {"StartDateTime": "2026-12-20T00:00:00",
                                                   "EndDateTime": "2027-01-04T00:00:00"}},
                "exceptions": {}, "actions": {"ServerReplyWithMessage": True}}
PROCMAIL_RULE = {"kind": "procmail", "path": "procmail/amira/.procmailrc", "forward_to": []}

AMIRA = {"address": "amira.haddad@example.org", "local": "amira.haddad",
         "domain": "example.org", "rules": [REPORTS_RULE, HOLIDAY_RULE, PROCMAIL_RULE]}
BOX = "amira.haddad@example.org"


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({
        "mailstores": {"cloud": {"kind": "maildir", "path": "mail/cloud"}},
        "personal": {
            "exchange": {"kind": "personal-file", "path": "exchange/personal"},
            "cloud": {"kind": "personal-file", "path": "cloud/personal",
                      "mailstore": "cloud"}}}))
    workspace = Workspace(tmp_path)
    with workspace.connector("mail-store", "cloud").open(BOX) as session:
        session.create_folder("INBOX")
        session.create_folder("INBOX/Station Reports")
    source = workspace.path("exchange/personal")
    source.mkdir(parents=True)
    (source / f"{BOX}.json").write_text(json.dumps({"contacts": [
        ERIK, FRONT_DESK, {**ERIK, "displayName": "Erik (duplicate card)"}]}))
    return workspace


def context(workspace: Workspace, item: dict | None = None, **params) -> Context:
    params = {"source": "exchange", "target": "cloud", **params}
    logged: list[str] = []
    return Context(workspace, "phase2-cloud-graph", "carry", CloudCarryParams(**params),
                   item or AMIRA, log=logged.append)


def cloud(workspace: Workspace) -> dict:
    path = workspace.path(f"cloud/personal/{BOX}.json")
    return json.loads(path.read_text()) if path.exists() else {"contacts": [],
                                                                "messageRules": []}


def run(step: CloudCarry, ctx: Context) -> list[Change]:
    changes = step.preview(ctx)
    for change in changes:
        assert step.comparable(step.observe(ctx, change)) == step.comparable(change.before)
        step.apply(ctx, change)
    return changes


def test_preview_lists_missing_contacts_once_and_the_rules_graph_can_express(workspace):
    ctx = context(workspace)

    contacts, rules = CloudCarry().preview(ctx)

    assert contacts.item == f"contacts {BOX}" and contacts.action == "create"
    assert [c["displayName"] for c in contacts.after["contacts"]] == [
        "Erik Lund", "Front desk (Vienna)"]  # the duplicate card is the same person
    assert rules.item == f"rules {BOX}"
    [rule] = rules.after["rules"]
    assert rule == {
        "displayName": "Station reports", "sequence": 1, "isEnabled": True,
        "conditions": {"subjectContains": ["STATION REPORT"],
                       "fromAddresses": [{"emailAddress": {"address": "ops@ims.example.net"}}]},
        "exceptions": {"hasAttachments": True},
        "actions": {"moveToFolder": "INBOX/Station Reports", "stopProcessingRules": True}}
    assert "2 rule(s) not carried" in rules.describe()


def test_unmappable_rules_are_listed_with_why(workspace):
    logged: list[str] = []
    ctx = context(workspace)
    ctx.log = logged.append

    CloudCarry().preview(ctx)

    holiday = next(line for line in logged if "Holiday auto-reply" in line)
    assert "not carried" in holiday
    assert "condition WithinDateRange: a date range" in holiday
    assert "action ServerReplyWithMessage" in holiday
    procmail = next(line for line in logged if "procmail/amira/.procmailrc" in line)
    assert "not an Exchange inbox rule" in procmail


def test_a_carried_forwarding_rule_warns_of_the_outbound_forwarding_block(workspace):
    rule = {**REPORTS_RULE, "actions": {
        "RedirectToRecipients": [{"address": "amira@partner.example.net"}]}}
    logged: list[str] = []
    ctx = context(workspace, {**AMIRA, "rules": [rule]}, contacts=False)
    ctx.log = logged.append

    [change] = CloudCarry().preview(ctx)

    assert change.after["rules"][0]["actions"] == {
        "redirectTo": [{"emailAddress": {"address": "amira@partner.example.net"}}]}
    assert any("forwards to amira@partner.example.net" in line and "exo.auto_forwarding"
               in line for line in logged)


def test_rule_whose_folder_is_not_in_the_cloud_mailbox_is_not_carried(workspace):
    rule = {**REPORTS_RULE, "actions": {"MoveToFolder": "Bulletins"}}
    logged: list[str] = []
    ctx = context(workspace, {**AMIRA, "rules": [rule]})
    ctx.log = logged.append

    changes = CloudCarry().preview(ctx)

    assert [c.item for c in changes] == [f"contacts {BOX}"]
    assert any("folder 'Bulletins' is not in the cloud mailbox" in line for line in logged)


def test_apply_creates_contacts_and_rules_and_verify_reads_them_back(workspace):
    step, ctx = CloudCarry(), context(workspace)

    changes = run(step, ctx)

    held = cloud(workspace)
    assert sorted(c["displayName"] for c in held["contacts"]) == [
        "Erik Lund", "Front desk (Vienna)"]
    assert [r["displayName"] for r in held["messageRules"]] == ["Station reports"]
    assert all(entry["id"] for entry in held["contacts"] + held["messageRules"])
    assert step.verify(ctx, changes) == []
    assert step.preview(ctx) == []  # everything Graph can carry is there


def test_second_apply_changes_nothing(workspace):
    step, ctx = CloudCarry(), context(workspace)
    changes = run(step, ctx)
    before = cloud(workspace)

    for change in changes:  # the runner re-applies the in-flight item after a crash
        step.apply(ctx, change)

    assert cloud(workspace) == before


def test_contacts_already_in_the_cloud_are_matched_not_duplicated(workspace):
    target = workspace.path("cloud/personal")
    target.mkdir(parents=True)
    (target / f"{BOX}.json").write_text(json.dumps({"contacts": [
        {"id": "AAMkAD-existing", "displayName": "Erik L.",
         "emailAddresses": [{"address": "Erik.Lund@example.net", "name": "Erik L."}]}]}))
    step, ctx = CloudCarry(), context(workspace, rules=False)

    [change] = step.preview(ctx)

    assert [c["displayName"] for c in change.after["contacts"]] == ["Front desk (Vienna)"]
    step.apply(ctx, change)
    assert len(cloud(workspace)["contacts"]) == 2


def test_a_different_rule_of_the_same_name_is_left_alone(workspace):
    target = workspace.path("cloud/personal")
    target.mkdir(parents=True)
    theirs = {"id": "AQAAAJ5dZqA=", "displayName": "Station reports", "sequence": 1,
              "isEnabled": True, "actions": {"delete": True}}
    (target / f"{BOX}.json").write_text(json.dumps({"messageRules": [theirs]}))
    logged: list[str] = []
    ctx = context(workspace, contacts=False)
    ctx.log = logged.append

    assert CloudCarry().preview(ctx) == []
    assert any("a different rule of that name" in line for line in logged)


def test_rollback_removes_exactly_what_the_step_created(workspace):
    target = workspace.path("cloud/personal")
    target.mkdir(parents=True)
    own = {"id": "AAMkAD-own", "displayName": "Beatriz Santos",
           "emailAddresses": [{"address": "beatriz.santos@example.org"}]}
    (target / f"{BOX}.json").write_text(json.dumps({"contacts": [own], "messageRules": []}))
    step, ctx = CloudCarry(), context(workspace)
    changes = run(step, ctx)

    for change in changes:
        assert step.comparable(step.observe(ctx, change)) == step.comparable(change.after)
        step.rollback(ctx, change)
        step.rollback(ctx, change)  # idempotent

    assert cloud(workspace) == {"contacts": [own], "messageRules": []}
    assert step.verify(ctx, [c.inverse() for c in changes]) == []


def test_verify_reports_a_created_contact_that_went_missing(workspace):
    step, ctx = CloudCarry(), context(workspace, rules=False)
    changes = run(step, ctx)
    held = cloud(workspace)
    held["contacts"] = [c for c in held["contacts"] if c["displayName"] != "Erik Lund"]
    workspace.path(f"cloud/personal/{BOX}.json").write_text(json.dumps(held))

    [finding] = step.verify(ctx, changes)

    assert "contact 'Erik Lund' is not in Exchange Online" in finding.problem


def test_gate_sees_a_created_rule_edited_since(workspace):
    step, ctx = CloudCarry(), context(workspace, contacts=False)
    [change] = run(step, ctx)
    held = cloud(workspace)
    held["messageRules"][0]["actions"] = {"delete": True}
    workspace.path(f"cloud/personal/{BOX}.json").write_text(json.dumps(held))

    assert step.comparable(step.observe(ctx, change)) != step.comparable(change.after)


def test_nothing_to_carry_is_a_usage_error(workspace):
    with pytest.raises(UsageError, match="nothing to carry"):
        CloudCarry().preview(context(workspace, contacts=False, rules=False))


def test_params_reject_unknown_keys():
    with pytest.raises(ValueError):
        CloudCarryParams(source="exchange", target="cloud", calendars=True)


def cutover_cli(root, *args: str):
    """Run cutover from inside the workspace, as an operator would."""
    return subprocess.run([sys.executable, "-m", "cutover", *args], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_the_graph_plan_carries_the_sample_contacts_once_and_rolls_them_back(tmp_path):
    root = tmp_path / "agency"
    write_sample(root)
    plan = "plans/phase2-cloud-graph.yaml"
    carried = root / "cloud" / "personal" / f"{BOX}.json"

    first = cutover_cli(root, "run", plan, "--until", "carry-contacts-and-rules", "--yes")
    assert first.returncode == 0, first.stderr
    assert sorted(c["displayName"] for c in json.loads(carried.read_text())["contacts"]) == [
        "Erik Lund", "Front desk (Vienna)"]

    again = cutover_cli(root, "run", plan, "--step", "carry-contacts-and-rules", "--yes")
    assert again.returncode == 0, again.stderr
    assert len(json.loads(carried.read_text())["contacts"]) == 2

    back = cutover_cli(root, "rollback", "carry-contacts-and-rules", "--yes")
    assert back.returncode == 0, back.stderr
    assert json.loads(carried.read_text())["contacts"] == []


def test_before_the_copy_a_rule_folder_is_missing_and_the_rule_waits(workspace):
    ctx = context(workspace, {**AMIRA, "address": "erik.lund@example.org"},
                  target_mailbox="erik.lund@example.org", contacts=False)
    logged: list[str] = []
    ctx.log = logged.append

    assert CloudCarry().preview(ctx) == []  # no cloud Maildir for him yet
    assert any("'Station Reports' is not in the cloud mailbox (the mail copy creates it"
               in line for line in logged)


def test_two_rules_of_one_name_carry_the_first_only(workspace):
    second = {**REPORTS_RULE, "priority": 5, "actions": {"MarkAsRead": True}}
    logged: list[str] = []
    ctx = context(workspace, {**AMIRA, "rules": [REPORTS_RULE, second]}, contacts=False)
    ctx.log = logged.append
    step = CloudCarry()

    [change] = step.preview(ctx)
    step.apply(ctx, change)

    assert [r["sequence"] for r in change.after["rules"]] == [1]
    assert any("another rule of that name" in line for line in logged)
    assert step.verify(ctx, [change]) == []


@pytest.mark.parametrize("point", ["after-checkpoint", "after-apply"])
def test_a_crash_then_resume_creates_each_contact_once(tmp_path, point):
    root = tmp_path / "agency"
    write_sample(root)
    plan = "plans/phase2-cloud-graph.yaml"
    assert cutover_cli(root, "run", plan, "--until", "copy-to-cloud", "--yes").returncode == 0
    crashed = subprocess.run(
        [sys.executable, "-m", "cutover", "run", plan, "--step", "carry-contacts-and-rules",
         "--yes"], cwd=root, capture_output=True, text=True,
        env={**os.environ, "CUTOVER_CRASH_AT": f"carry-contacts-and-rules:{point}"})
    assert crashed.returncode == 137

    resumed = cutover_cli(root, "resume", "--yes")

    assert resumed.returncode == 0, resumed.stderr
    carried = json.loads((root / "cloud" / "personal" / f"{BOX}.json").read_text())
    assert sorted(c["displayName"] for c in carried["contacts"]) == [
        "Erik Lund", "Front desk (Vienna)"]
