"""Step kind mailbox.sync through its four verbs, on Maildir twins and a real Dovecot target."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.steps.base import Change, Context
from cutover.steps.mailbox_sync import MailboxSync, MailboxSyncParams
from cutover.workspace import Workspace
from tests.mailsync.corpus import build, count, load

ITEM = {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"}
TARGET = "datarequest@verify.example.org"


@pytest.fixture(params=["maildir", "imap"])
def workspace(request, tmp_path: Path, monkeypatch) -> Workspace:
    linux: dict = {"kind": "maildir", "path": "mail/linux"}
    if request.param == "imap":
        dovecot = request.getfixturevalue("dovecot")
        dovecot.add_user(f"{tmp_path.name}-{TARGET}")
        monkeypatch.setenv("LINUX_IMAP_PASSWORD", "secret")
        linux = {"kind": "imap", "url": f"imap://{{user}}@127.0.0.1:{dovecot.imap_port}",
                 "password": "env/LINUX_IMAP_PASSWORD"}
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"mailstores": {
        "exchange": {"kind": "maildir", "path": "mail/exchange"}, "linux": linux}}))
    workspace = Workspace(tmp_path)
    with workspace.connector("mailstores", "exchange").open(ITEM["address"]) as session:
        load(session, build(seed=8, per_folder=3))
    workspace.target_user = (f"{tmp_path.name}-{TARGET}" if request.param == "imap" else TARGET)
    return workspace


def context(workspace: Workspace, **params) -> Context:
    params = {"source": "exchange", "target": "linux", "source_user": "{address}",
              "target_user": workspace.target_user, **params}
    return Context(workspace, "phase1", "move-mail", MailboxSyncParams(**params), dict(ITEM))


def target(workspace: Workspace):
    return workspace.connector("mailstores", "linux").open(workspace.target_user)


def test_preview_lists_what_would_be_copied_then_apply_verifies(workspace):
    step, ctx = MailboxSync(), context(workspace)
    [change] = step.preview(ctx)
    assert change.after["copy"] == {INBOX: 4, "Sent": 5, "Archive/2024": 4,
                                    "Entwürfe & Co": 4, "Projects/Alpha": 4}
    step.apply(ctx, change)
    assert step.verify(ctx, [change]) == []
    assert step.preview(ctx) == []


def test_second_apply_changes_nothing(workspace):
    step, ctx = MailboxSync(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    step.apply(ctx, Change.from_json(change.to_json()))
    with target(workspace) as session:
        assert count(session) == 21


def test_rollback_removes_only_what_the_step_copied(workspace):
    with target(workspace) as session:
        session.append(INBOX, [NewMessage(b"Subject: was here\r\n\r\nbefore\r\n")])
    step, ctx = MailboxSync(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    checkpoint = Change.from_json(change.to_json())  # as the runner reloads it
    step.rollback(ctx, checkpoint)
    step.rollback(ctx, checkpoint)  # idempotent
    assert step.verify(ctx, [checkpoint.inverse()]) == []
    with target(workspace) as session:
        assert [f.name for f in session.folders()] == [INBOX]
        [kept] = session.list_messages(INBOX)
        assert next(iter(dict(session.fetch(INBOX, [kept.uid])).values())).endswith(b"before\r\n")
    [again] = step.preview(ctx)
    assert sum(again.after["copy"].values()) == 21


def test_verify_reports_a_message_removed_from_the_target(workspace):
    step, ctx = MailboxSync(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    with target(workspace) as session:
        session.delete("Sent", [session.list_messages("Sent")[0].uid])
    [finding] = step.verify(ctx, [change])
    assert "Sent -> Sent: 1 missing" in finding.problem


def source(workspace: Workspace):
    return workspace.connector("mailstores", "exchange").open(ITEM["address"])


def test_rolling_back_a_second_sync_of_the_same_pair_keeps_the_first_ones_copies(workspace):
    step = MailboxSync()
    first = context(workspace)
    second = Context(workspace, "phase2", "final-sync", first.params, dict(ITEM))
    [copy] = step.preview(first)
    step.apply(first, copy)
    with source(workspace) as session:
        session.append(INBOX, [NewMessage(b"Subject: late\r\n\r\narrived after the copy\r\n")])
    [final] = step.preview(second)
    step.apply(second, final)
    checkpoint = Change.from_json(final.to_json())
    step.rollback(second, checkpoint)
    assert step.verify(second, [checkpoint.inverse()]) == []
    with target(workspace) as session:
        assert count(session) == 21
    [again] = step.preview(second)
    assert again.after["copy"] == {INBOX: 1}
    step.apply(second, again)
    assert step.verify(second, [again]) == []
    with target(workspace) as session:
        assert count(session) == 22
    assert step.preview(first) == []


def test_verify_reports_a_message_copied_twice_even_without_delete(workspace):
    step, ctx = MailboxSync(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    with source(workspace) as session:
        [(_, content)] = session.fetch("Sent", [session.list_messages("Sent")[0].uid])
    with target(workspace) as session:
        session.append("Sent", [NewMessage(content)])
    [finding] = step.verify(ctx, [change])
    assert "Sent -> Sent: 1 extra" in finding.problem
