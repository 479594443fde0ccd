"""Step kind mailbox.sync through its four verbs, on Maildir twins and a real Dovecot target."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.errors import NotFound
from cutover.plan import load_plan
from cutover.runner import QuietOutput, Runner
from cutover.state import State
from cutover.steps.base import Change, Context
from cutover.steps.mailbox_sync import MailboxSync, MailboxSyncParams
from cutover.workspace import Workspace
from tests.mailsync.corpus import build, count, load
from tests.workspace_fingerprint import fingerprint

ITEM = {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"}
TARGET = "datarequest@verify.example.org"


@pytest.fixture(params=["maildir", "imap"])
def workspace(request, tmp_path: Path, monkeypatch) -> Iterator[Workspace]:
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
    workspace.state = State.open(workspace.state_path)  # as the runner hands it to steps
    yield workspace
    workspace.state.close()


def context(workspace: Workspace, **params) -> Context:
    params = {"source": "exchange", "target": "linux", "source_user": "{address}",
              "target_user": workspace.target_user, **params}
    return Context(workspace, "phase1", "move-mail", MailboxSyncParams(**params), dict(ITEM),
                   state=workspace.state)


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
        session.create_folder(INBOX)
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
    second = Context(workspace, "phase2", "final-sync", first.params, dict(ITEM),
                     state=workspace.state)
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


def test_rollback_keeps_copies_that_were_on_the_target_before_the_step(workspace):
    step = MailboxSync()
    first = context(workspace)
    [copy] = step.preview(first)
    step.apply(first, copy)
    other_state = State.open(workspace.root / "other.db")  # knows nothing of that copy
    again = Context(workspace, "phase1", "move-mail", first.params, dict(ITEM),
                    state=other_state)
    [change] = step.preview(again)
    step.apply(again, change)
    with target(workspace) as session:
        assert count(session) == 21  # found on the target, not copied twice
    checkpoint = Change.from_json(change.to_json())
    step.rollback(again, checkpoint)
    assert step.verify(again, [checkpoint.inverse()]) == []
    with target(workspace) as session:
        assert count(session) == 21  # they were there before this step: they stay
    other_state.close()


# --- through the command line: crashes, rollbacks, a workspace left as it was --------------

PLAN = """\
name: copy
steps:
  - id: move-mail
    kind: mailbox.sync
    params: {{source: exchange, target: linux, source_user: {source}, target_user: {target},
              jobs: 2}}
"""


def cutover(workspace: Workspace, *args: str, crash_at: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    if crash_at:
        env["CUTOVER_MAILSYNC_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(workspace.root),
                           *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def plan(workspace: Workspace) -> str:
    (workspace.root / "plans").mkdir(exist_ok=True)
    (workspace.root / "plans" / "copy.yaml").write_text(PLAN.format(
        source=ITEM["address"], target=workspace.target_user))
    return "plans/copy.yaml"


def _target_count(workspace: Workspace) -> int:
    with target(workspace) as session:
        try:
            return count(session)
        except NotFound:
            return 0


def _crashed_copy(workspace: Workspace, plan: str) -> None:
    """`run` killed (kill -9) right after the second APPEND, before it was recorded."""
    killed = cutover(workspace, "run", plan, "--yes", crash_at="after-append:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _target_count(workspace) > 0  # copies were made and never marked done


def test_rollback_after_a_crash_mid_copy_removes_every_copy_at_once(workspace, plan):
    _crashed_copy(workspace, plan)
    rolled = cutover(workspace, "rollback", "move-mail", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _target_count(workspace) == 0
    again = cutover(workspace, "rollback", "move-mail", "--yes")
    assert again.returncode == 2  # nothing applied any more: refused, not "rolled back"


def test_run_after_a_crash_and_rollback_then_rollback_leaves_nothing_behind(workspace, plan):
    with target(workspace) as session:
        session.create_folder(INBOX)
        session.append(INBOX, [NewMessage(b"Subject: was here\r\n\r\nbefore\r\n")])
    _crashed_copy(workspace, plan)
    assert cutover(workspace, "rollback", "move-mail", "--yes").returncode == 0
    copied = cutover(workspace, "run", plan, "--yes")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert _target_count(workspace) == 21 + 1
    rolled = cutover(workspace, "rollback", "move-mail", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    with target(workspace) as session:
        assert [f.name for f in session.folders()] == [INBOX] and count(session) == 1


def test_a_crash_then_a_fresh_run_then_rollback_takes_back_the_crashed_copies_too(workspace,
                                                                                   plan):
    _crashed_copy(workspace, plan)
    state = State.open(workspace.state_path)  # the step is forgotten, its copies are not
    state.db.execute("DELETE FROM steps")
    state.db.execute("DELETE FROM checkpoints")
    state.close()
    copied = cutover(workspace, "run", plan, "--yes")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert _target_count(workspace) == 21  # the crashed copies were found, not copied again
    rolled = cutover(workspace, "rollback", "move-mail", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert _target_count(workspace) == 0


def test_plan_show_and_dry_run_create_no_state_and_change_no_mail(workspace, plan):
    workspace.state.close()
    workspace.state_path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(workspace.state_path) + suffix).unlink(missing_ok=True)
    before = fingerprint(workspace.root)
    for args in (("plan", "show", plan), ("run", plan, "--dry-run")):
        shown = cutover(workspace, *args)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "copy 21 messages" in shown.stdout
    assert not workspace.state_path.exists() and fingerprint(workspace.root) == before
    workspace.state = State.open(workspace.state_path)


def test_a_misspelt_source_is_an_error_and_nothing_is_created(workspace, plan):
    (workspace.root / "plans" / "copy.yaml").write_text(PLAN.format(
        source="datarequets@example.org", target=workspace.target_user))
    ran = cutover(workspace, "run", plan, "--yes")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "datarequets@example.org does not exist" in ran.stderr
    assert not (workspace.root / "mail" / "exchange" / "datarequets@example.org").exists()
    assert _target_count(workspace) == 0


@pytest.mark.parametrize("workspace", ["maildir"], indirect=True)  # a Maildir state
def test_rollback_and_verify_finish_a_maildir_folder_whose_removal_was_cut_short(workspace,
                                                                                 plan):
    assert isinstance(workspace.connector("mailstores", "linux"), MaildirMailStore)
    assert cutover(workspace, "run", plan, "--yes").returncode == 0
    folder = workspace.root / "mail" / "linux" / workspace.target_user / "Archive" / "2024"
    shutil.rmtree(folder / "new")  # a removal cut short: cur/ and the uidlist still there
    source_url = f"maildir://{workspace.root}/mail/exchange/{ITEM['address']}"
    target_url = f"maildir://{workspace.root}/mail/linux/{workspace.target_user}"
    verified = cutover(workspace, "mailbox", "verify", source_url, target_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    (folder / "cur").rename(folder.parent / "elsewhere")  # cut short after cur/ left
    verified = cutover(workspace, "mailbox", "verify", source_url, target_url)
    assert verified.returncode == 1 and "Archive/2024" in verified.stdout, verified.stderr
    rolled = cutover(workspace, "rollback", "move-mail", "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    with target(workspace) as session:
        assert [f.name for f in session.folders()] == [INBOX] and count(session) == 0


def _logins(dovecot, user: str) -> int:
    return dovecot.log_text().count(f"Login: user=<{user}>")


@pytest.mark.parametrize("workspace", ["imap"], indirect=True)  # logins: Dovecot's log
def test_an_up_to_date_account_is_verified_from_its_preview_without_logging_in_again(
        workspace, request):
    assert workspace.connector("mailstores", "linux").connector_kind == "imap"
    dovecot = request.getfixturevalue("dovecot")
    step, first = MailboxSync(), context(workspace)
    [copy] = step.preview(first)
    step.apply(first, copy)
    assert step.verify(first, [copy]) == []  # compared message by message, remembered
    again = Context(workspace, "phase2", "final-sync", first.params, dict(ITEM),
                    state=workspace.state)
    assert step.preview(again) == []
    logins = _logins(dovecot, workspace.target_user)
    assert step.verify(again, []) == []
    assert _logins(dovecot, workspace.target_user) == logins
    with target(workspace) as session:  # the target changes: the next check reads it
        uid = session.list_messages("Sent")[0].uid
        session.set_flags("Sent", [uid], frozenset({"$Other"}))
    assert step.preview(again) == []
    [finding] = step.verify(again, [])
    assert "Sent -> Sent: 1 with other flags" in finding.problem


@pytest.mark.parametrize("workspace", ["maildir"], indirect=True)
def test_accounts_previewed_side_by_side_give_what_one_by_one_gives(workspace, monkeypatch):
    """mailbox.sync lets the runner preview several accounts at a time; the changes, their
    order and what verify then relies on are those of previews made one account at a time."""
    items = [{"address": f"u{n}@example.org", "local": f"u{n}", "domain": "example.org"}
             for n in range(1, 8)]
    for n, item in enumerate(items, start=1):
        with workspace.connector("mailstores", "exchange").open(item["address"]) as session:
            session.create_folder(INBOX)
            session.append(INBOX, [NewMessage(f"Subject: {n}.{m}\r\n\r\nbody\r\n".encode())
                                   for m in range(n)])
    path = workspace.root / "many.yaml"
    path.write_text(textwrap.dedent("""\
        name: many
        steps:
          - id: copy-many
            kind: mailbox.sync
            params: {source: exchange, target: exchange, source_user: "{address}",
                     target_user: "{local}@copy.example.org"}
        """))
    runner = Runner(workspace, workspace.state, load_plan(path), QuietOutput())
    step = runner.plan.step("copy-many")
    assert MailboxSync.preview_workers > 1
    side_by_side = runner.preview_step(step, items=items)
    monkeypatch.setattr(MailboxSync, "preview_workers", 1)
    one_by_one = runner.preview_step(step, items=items)
    assert [(c.to_json(), i) for c, i in side_by_side] == \
        [(c.to_json(), i) for c, i in one_by_one]
    assert [c.after["copy"] for c, _ in side_by_side] == [{INBOX: n} for n in range(1, 8)]
