"""sieve.redirect: add a redirect to the account's active script; roll back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cutover.connectors.dovecot.managesieve import ManageSieveStore
from cutover.errors import UsageError
from cutover.rules.differential import SieveTester
from cutover.steps.base import Change, Context
from cutover.steps.sieve_redirect import SieveRedirect, SieveRedirectParams
from cutover.workspace import Workspace

ITEM = {"address": "bulletin@example.org", "local": "bulletin", "domain": "example.org",
        "class": "verification"}
ACCOUNT = "bulletin@verify.example.org"
EXISTING = ('# filing rules\nrequire ["fileinto", "mailbox"];\n'
            'if header :contains "subject" "REB" {\n    fileinto :create "REB";\n    stop;\n}\n')
MESSAGE = b"From: a@example.net\r\nTo: bulletin@example.org\r\nSubject: REB 1\r\n\r\nx\r\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump(
        {"sieve": {"linux": {"kind": "sievedir", "path": "sieve/"}}}))
    return Workspace(tmp_path)


def context(workspace: Workspace, **overrides) -> Context:
    params = SieveRedirectParams.model_validate({
        "sieve": "linux", "account": "{local}@verify.example.org",
        "to": "{local}@cloud.example.org", **overrides})
    return Context(workspace=workspace, plan_name="phase2", step_id="keep-address",
                   params=params, item=ITEM)


def outcome(script: str) -> str:
    with SieveTester(script) as tester:
        return tester.run(MESSAGE, "a@example.net").describe()


def test_copy_redirect_goes_into_the_active_script_and_keeps_its_rules(workspace: Workspace):
    store = workspace.connector("sieve", "linux")
    store.put(ACCOUNT, "rules", EXISTING)
    store.activate(ACCOUNT, "rules")
    ctx = context(workspace, copy=True)
    [change] = SieveRedirect().preview(ctx)
    assert (change.action, change.before["script"]) == ("update", EXISTING)
    SieveRedirect().apply(ctx, change)
    script = store.get(ACCOUNT, "rules")
    assert 'redirect :copy "bulletin@cloud.example.org";' in script
    assert outcome(script) == "folder:REB, redirect:bulletin@cloud.example.org"
    assert SieveRedirect().verify(ctx, [change]) == []


def test_plain_redirect_sends_everything_away(workspace: Workspace):
    store = workspace.connector("sieve", "linux")
    store.put(ACCOUNT, "rules", EXISTING)
    store.activate(ACCOUNT, "rules")
    ctx = context(workspace)
    [change] = SieveRedirect().preview(ctx)
    SieveRedirect().apply(ctx, change)
    assert outcome(store.get(ACCOUNT, "rules")) == "redirect:bulletin@cloud.example.org"


def test_second_apply_changes_nothing(workspace: Workspace):
    ctx = context(workspace, copy=True)
    [change] = SieveRedirect().preview(ctx)
    SieveRedirect().apply(ctx, change)
    SieveRedirect().apply(ctx, change)
    assert SieveRedirect().preview(ctx) == []


def test_without_an_active_script_one_is_created_and_rollback_removes_it(workspace: Workspace):
    store = workspace.connector("sieve", "linux")
    ctx = context(workspace, copy=True)
    [change] = SieveRedirect().preview(ctx)
    assert change.action == "create"
    SieveRedirect().apply(ctx, change)
    assert store.active(ACCOUNT) == "redirect"
    assert outcome(store.get(ACCOUNT, "redirect")) == \
        "folder:INBOX, redirect:bulletin@cloud.example.org"
    SieveRedirect().rollback(ctx, change)
    assert (store.active(ACCOUNT), store.scripts(ACCOUNT)) == (None, [])
    assert SieveRedirect().verify(ctx, [change.inverse()]) == []


def test_rollback_restores_the_previous_script_exactly(workspace: Workspace):
    store = workspace.connector("sieve", "linux")
    store.put(ACCOUNT, "rules", EXISTING)
    store.activate(ACCOUNT, "rules")
    ctx = context(workspace)
    [change] = SieveRedirect().preview(ctx)
    SieveRedirect().apply(ctx, change)
    checkpointed = Change.from_json(json.loads(json.dumps(change.to_json())))
    SieveRedirect().rollback(context(Workspace(workspace.root)), checkpointed)
    SieveRedirect().rollback(context(Workspace(workspace.root)), checkpointed)
    assert (store.active(ACCOUNT), store.get(ACCOUNT, "rules")) == ("rules", EXISTING)


def test_a_target_that_is_not_an_address_is_refused(workspace: Workspace):
    with pytest.raises(UsageError, match="not a mail address"):
        SieveRedirect().preview(context(workspace, to="{local}"))


def test_verify_notices_the_redirect_removed_by_hand(workspace: Workspace):
    ctx = context(workspace, copy=True)
    [change] = SieveRedirect().preview(ctx)
    SieveRedirect().apply(ctx, change)
    workspace.connector("sieve", "linux").put(ACCOUNT, "redirect", "keep;\n")
    [finding] = SieveRedirect().verify(ctx, [change])
    assert finding.problem == "Sieve script 'redirect' is not as recorded"


def test_redirect_and_rollback_over_managesieve(tmp_path: Path, dovecot, monkeypatch):
    user = dovecot.add_user(ACCOUNT)
    store = ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "secret")
    store.put(user, "rules", EXISTING)
    store.activate(user, "rules")
    monkeypatch.setenv("CUTOVER_TEST_SIEVE_PASSWORD", "secret")
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"sieve": {"linux": {
        "kind": "managesieve", "host": dovecot.host, "port": dovecot.managesieve_port,
        "user": "{address}", "password": "env/CUTOVER_TEST_SIEVE_PASSWORD"}}}))
    ctx = context(Workspace(tmp_path), copy=True)
    [change] = SieveRedirect().preview(ctx)
    SieveRedirect().apply(ctx, change)
    assert "redirect :copy" in store.get(user, "rules")
    assert SieveRedirect().verify(ctx, [change]) == []
    SieveRedirect().rollback(ctx, change)
    assert (store.active(user), store.get(user, "rules")) == ("rules", EXISTING)
