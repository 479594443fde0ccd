"""cloud.mailbox: preview lists missing Microsoft 365 mailboxes; verify fails while one is
missing; apply records a mailbox an administrator has created; rollback changes nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from cutover.errors import StepFailed
from cutover.steps.base import Change, Context
from cutover.steps.cloud_mailbox import CloudMailbox, CloudMailboxParams
from cutover.workspace import Workspace

ANNA = {"address": "anna.berg@example.org", "local": "anna.berg", "domain": "example.org"}
ERIK = {"address": "erik.lund@example.org", "local": "erik.lund", "domain": "example.org"}


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"directory": {
        "m365": {"kind": "directory-file", "path": "directory/users.json"}}}))
    (tmp_path / "directory").mkdir()
    write_users(Workspace(tmp_path), ["anna.berg@example.org"])
    return Workspace(tmp_path)


def write_users(workspace: Workspace, addresses: list[str]) -> None:
    users = [{"userPrincipalName": a, "mail": a, "proxyAddresses": [f"SMTP:{a}"]}
             for a in addresses]
    workspace.path("directory/users.json").write_text(json.dumps(users))


def context(workspace: Workspace, item: dict, **params) -> Context:
    params.setdefault("directory", "m365")
    return Context(workspace, "phase2", "cloud-mailboxes", CloudMailboxParams(**params), item)


def test_existing_mailbox_needs_nothing(workspace):
    assert CloudMailbox().preview(context(workspace, ANNA)) == []


def test_preview_reports_a_missing_mailbox(workspace):
    [change] = CloudMailbox().preview(context(workspace, ERIK))

    assert change.item == "m365/erik.lund@example.org"
    assert change.action == "create"
    assert change.after == {"directory": "m365", "address": "erik.lund@example.org",
                            "mailbox": True}
    assert "administrator" in change.describe()


def test_user_template_is_expanded_from_the_item(workspace):
    write_users(workspace, ["anna.berg@exampleorg.onmicrosoft.com"])
    ctx = context(workspace, ANNA, user="{local}@exampleorg.onmicrosoft.com")

    assert CloudMailbox().preview(ctx) == []


def test_verify_fails_while_the_mailbox_is_missing(workspace):
    ctx = context(workspace, ERIK)
    changes = CloudMailbox().preview(ctx)

    [finding] = CloudMailbox().verify(ctx, changes)

    assert finding.item == "m365/erik.lund@example.org"
    assert "Microsoft 365 admin centre" in finding.problem


def test_apply_fails_until_the_administrator_has_provisioned_then_records_it(workspace):
    ctx = context(workspace, ERIK)
    [change] = CloudMailbox().preview(ctx)

    with pytest.raises(StepFailed, match="erik.lund@example.org"):
        CloudMailbox().apply(ctx, change)
    write_users(workspace, ["anna.berg@example.org", "erik.lund@example.org"])
    CloudMailbox().apply(ctx, change)
    CloudMailbox().apply(ctx, change)  # idempotent

    assert CloudMailbox().verify(ctx, [change]) == []
    assert CloudMailbox().preview(ctx) == []


def test_rollback_leaves_the_mailbox_and_its_verification_passes(workspace):
    ctx = context(workspace, ERIK)
    [change] = CloudMailbox().preview(ctx)
    write_users(workspace, ["erik.lund@example.org"])
    restored = Change.from_json(json.loads(json.dumps(change.to_json())))

    CloudMailbox().rollback(ctx, restored)

    assert CloudMailbox().verify(ctx, [restored.inverse()]) == []
    assert "erik.lund@example.org" in workspace.path("directory/users.json").read_text()


def test_params_reject_unknown_keys():
    with pytest.raises(ValueError):
        CloudMailboxParams(directory="m365", licence="E3")


def test_preview_says_what_the_graph_copy_does_not_carry():
    from cutover.steps.cloud_mailbox import not_carried

    item = {"address": "amira.haddad@example.org", "rules": [{"kind": "sieve"}],
            "other_addresses": ["X500:/o=Agency/cn=Recipients/cn=amira.haddad"],
            "forwarding": []}
    said = not_carried(item)
    assert said.startswith("calendars and tasks (contacts and the inbox rules Graph can "
                           "express are carried by cloud.carry); 1 inventoried rule(s) Graph "
                           "cannot express (sieve: ?); 1 X500 address(es)")


def test_preview_no_longer_lists_rules_the_graph_path_carries():
    from cutover.steps.cloud_mailbox import not_carried

    carried = {"kind": "inbox-rule", "name": "Reports", "priority": 1,
               "conditions": {"ContainsSubjectStrings": ["report"]}, "exceptions": {},
               "actions": {"MoveToFolder": "Reports"}}
    dated = {**carried, "name": "Holiday", "conditions": {"WithinDateRange": {}}}
    said = not_carried({"address": "amira.haddad@example.org", "rules": [carried, dated]})
    assert "1 inventoried rule(s) Graph cannot express (inbox-rule: Holiday)" in said
    assert "Reports" not in said
    assert "the Outlook profile" in said
