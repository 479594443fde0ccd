"""Step kind linux.account on its files, and against a real Dovecot: the new account logs in
over IMAP and receives over LMTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX
from cutover.steps.base import Change, Context
from cutover.steps.linux_account import LinuxAccount, LinuxAccountParams
from cutover.workspace import Workspace
from tests.mailsync.corpus import imap_store

ITEM = {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"}
ADDRESS = "datarequest@verify.example.org"
PASSWD_BEFORE = "bulletin@verify.example.org:{PLAIN}x:1000:1000::/srv/b::\n"
MAPS_BEFORE = "# hand-kept\nbulletin@verify.example.org bulletin@verify.example.org/\n"


def make_workspace(root: Path, passwd: Path, mail_root: Path) -> Workspace:
    (root / "cutover.yaml").write_text(yaml.safe_dump({"accounts": {"linux": {
        "kind": "dovecot-passwd", "passwd_file": str(passwd),
        "virtual_mailbox_maps": "postfix/virtual_mailbox_maps",
        "virtual_mailbox_domains": "postfix/virtual_mailbox_domains",
        "mail_root": str(mail_root), "credentials_dir": "credentials/"}}}))
    return Workspace(root)


def context(workspace: Workspace, item: dict = ITEM) -> Context:
    return Context(workspace, "phase1", "accounts",
                   LinuxAccountParams(accounts="linux", address="{local}@verify.example.org"),
                   dict(item))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "dovecot").mkdir()
    (tmp_path / "dovecot" / "users").write_text(PASSWD_BEFORE)
    (tmp_path / "postfix").mkdir()
    (tmp_path / "postfix" / "virtual_mailbox_maps").write_text(MAPS_BEFORE)
    (tmp_path / "postfix" / "virtual_mailbox_domains").write_text("verify.example.org OK\n")
    return make_workspace(tmp_path, tmp_path / "dovecot" / "users", tmp_path / "mail" / "linux")


def _password(workspace: Workspace) -> str:
    text = (workspace.root / "credentials" / f"{ADDRESS}.txt").read_text()
    return text.split("password: ")[1].strip()


def test_apply_creates_entries_and_a_0600_credentials_file_without_secrets_in_change(workspace):
    step, ctx = LinuxAccount(), context(workspace)
    [change] = step.preview(ctx)
    assert change.before["domain"] is True and change.before["passwd"] is False
    step.apply(ctx, change)
    assert step.verify(ctx, [change]) == []
    credentials = workspace.root / "credentials" / f"{ADDRESS}.txt"
    assert credentials.stat().st_mode & 0o777 == 0o600
    password = _password(workspace)
    assert password not in json.dumps(change.to_json())
    passwd = (workspace.root / "dovecot" / "users").read_text()
    assert passwd.startswith(PASSWD_BEFORE) and password not in passwd
    assert f"{ADDRESS}:{{SSHA512}}" in passwd
    assert (workspace.root / "mail" / "linux" / ADDRESS / "cur").is_dir()
    assert step.preview(ctx) == []


def test_second_apply_keeps_the_first_password(workspace):
    step, ctx = LinuxAccount(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    first = _password(workspace)
    step.apply(ctx, change)
    assert _password(workspace) == first
    users = (workspace.root / "dovecot" / "users").read_text().splitlines()
    assert sum(line.startswith(ADDRESS + ":") for line in users) == 1


def test_rollback_removes_exactly_what_it_added(workspace):
    files = [workspace.root / p for p in ("dovecot/users", "postfix/virtual_mailbox_maps",
                                          "postfix/virtual_mailbox_domains")]
    before = [f.read_text() for f in files]
    step, ctx = LinuxAccount(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    checkpoint = Change.from_json(json.loads(json.dumps(change.to_json())))
    step.rollback(ctx, checkpoint)
    step.rollback(ctx, checkpoint)
    assert [f.read_text() for f in files] == before
    assert not (workspace.root / "mail" / "linux" / ADDRESS).exists()
    assert not (workspace.root / "credentials" / f"{ADDRESS}.txt").exists()
    assert step.verify(ctx, [checkpoint.inverse()]) == []


def test_rollback_keeps_the_domain_while_another_added_account_uses_it(tmp_path):
    workspace = make_workspace(tmp_path, tmp_path / "users", tmp_path / "mail")
    step = LinuxAccount()
    changes = {}
    for local in ("datarequest", "bulletin"):
        ctx = context(workspace, dict(ITEM, local=local))
        [changes[local]] = step.preview(ctx)
        step.apply(ctx, changes[local])
    domains = tmp_path / "postfix" / "virtual_mailbox_domains"
    step.rollback(context(workspace), changes["datarequest"])
    assert "verify.example.org OK" in domains.read_text().splitlines()
    step.rollback(context(workspace, dict(ITEM, local="bulletin")), changes["bulletin"])
    assert domains.read_text() == ""


def test_new_account_logs_in_over_imap_and_receives_over_lmtp(dovecot, tmp_path):
    owner = dovecot.home(dovecot.add_user("owner-probe")).stat()
    mail_root = dovecot.root / "vmail"
    mail_root.mkdir(exist_ok=True)
    os.chown(mail_root, owner.st_uid, owner.st_gid)
    workspace = make_workspace(tmp_path, dovecot.passwd_file, mail_root)
    step, ctx = LinuxAccount(), context(workspace)
    [change] = step.preview(ctx)
    step.apply(ctx, change)
    with imap_store(dovecot, _password(workspace)).open(ADDRESS) as session:
        assert [f.name for f in session.folders()] == [INBOX]
    dovecot.deliver(ADDRESS, b"From: a@example.net\r\nSubject: hello\r\n\r\nfirst mail\r\n")
    with MaildirMailStore(mail_root).open(ADDRESS) as session:
        [ref] = session.list_messages(INBOX)
        [(_, content)] = session.fetch(INBOX, [ref.uid])
    assert content.endswith(b"first mail\r\n")
