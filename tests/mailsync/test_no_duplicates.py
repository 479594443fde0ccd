"""A copy never duplicates mail, whatever state DB it runs with and whoever else copies into the
same account: a target that already holds a message gets no second copy (content match), and
two copies into one account never run at once (the target's lock, seen by other processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.mailsync import engine
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.locks import target_locks
from cutover.mailsync.verify import compare
from tests.mailsync.corpus import build, count, imap_store, load, run_sync

TOTAL = sum(len(items) for items in build(seed=31, per_folder=6).values())


@pytest.fixture(autouse=True)
def own_lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTOVER_LOCK_DIR", str(tmp_path / "locks"))


@pytest.fixture(params=["imap", "maildir"])
def account(request, dovecot, tmp_path) -> Account:
    store = imap_store(dovecot)
    source = dovecot.add_user(f"dupsrc-{tmp_path.name}")
    with store.open(source) as session:
        load(session, build(seed=31, per_folder=6))
    if request.param == "imap":
        return Account(store, source, store, dovecot.add_user(f"dupdst-{tmp_path.name}"))
    return Account(store, source, MaildirMailStore(tmp_path / "mail"), "bob")


def _assert_exact(account: Account) -> None:
    with account.source.open(account.source_user) as left, \
            account.target.open(account.target_user) as right:
        assert [d.describe() for d in compare(left, right).differences] == []
        assert count(left) == count(right) == TOTAL


def _url(account: Account, side: str) -> str:
    store, user = ((account.source, account.source_user) if side == "source"
                   else (account.target, account.target_user))
    return store.describe(user)


def _cli(account: Account, state: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, CUTOVER_SOURCE_PASSWORD="secret", CUTOVER_TARGET_PASSWORD="secret")
    return subprocess.Popen([sys.executable, "-m", "cutover", "mailbox", "sync",
                            _url(account, "source"), _url(account, "target"), "--state",
                            str(state), "--json", *extra], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)


def test_a_rerun_with_a_new_state_db_finds_every_copy_and_copies_nothing(account, tmp_path):
    [first] = run_sync(tmp_path / "first.db", SyncOptions(jobs=2), [account])
    assert first.copied == TOTAL
    [again] = run_sync(tmp_path / "other.db", SyncOptions(jobs=2), [account])
    assert (again.copied, again.rematched) == (0, TOTAL)
    _assert_exact(account)
    [third] = run_sync(tmp_path / "other.db", SyncOptions(), [account])
    assert third.copied == 0 and third.unchanged_folders == third.folders


class Killed(BaseException):
    """Stands for kill -9 after a few APPENDs."""


def test_a_copy_cut_short_then_finished_with_another_state_is_not_duplicated_by_the_first(
        account, tmp_path, monkeypatch):
    appends = []

    def crash(phase: str) -> None:
        if phase == "after-append":
            appends.append(phase)
            if len(appends) == 2:
                raise Killed()

    monkeypatch.setattr(engine, "_crash_point", crash)
    with pytest.raises(Killed):
        run_sync(tmp_path / "first.db", SyncOptions(jobs=1), [account])
    monkeypatch.undo()
    run_sync(tmp_path / "second.db", SyncOptions(jobs=1), [account])
    [resumed] = run_sync(tmp_path / "first.db", SyncOptions(jobs=2), [account])
    assert resumed.copied == 0
    _assert_exact(account)


def test_a_message_the_target_holds_with_another_internaldate_is_still_copied(dovecot,
                                                                              tmp_path):
    store = imap_store(dovecot)
    source, target = (dovecot.add_user(f"{side}-{tmp_path.name}") for side in ("dsrc", "ddst"))
    [message] = build(seed=3, per_folder=1)[INBOX][:1]
    with store.open(source) as session:
        session.append(INBOX, [message])
    with store.open(target) as session:  # the same bytes, delivered at another time
        session.append(INBOX, [NewMessage(message.content, message.flags)])
    [result] = run_sync(tmp_path / "s.db", SyncOptions(), [Account(store, source, store, target)])
    assert (result.copied, result.rematched) == (1, 0)


def test_two_copies_of_the_same_pair_at_once_never_duplicate(account, tmp_path):
    # The worst case: two processes, each with its own state DB.
    first = _cli(account, tmp_path / "a.db")
    second = _cli(account, tmp_path / "b.db")
    outcomes = [process.wait(timeout=300) for process in (first, second)]
    errors = [process.stderr.read() for process in (first, second)]
    assert 0 in outcomes and set(outcomes) <= {0, 2}, errors
    for code, error in zip(outcomes, errors, strict=True):
        if code == 2:
            assert error.startswith("error: another cutover copy into "), error
    _assert_exact(account)


def test_a_copy_is_refused_while_another_process_copies_into_the_target(account, tmp_path):
    with target_locks([(account.target, account.target_user)], "a run of move-mail"):
        refused = _cli(account, tmp_path / "a.db")
        assert refused.wait(timeout=300) == 2
        error = refused.stderr.read()
    assert error.startswith(f"error: another cutover copy into {_url(account, 'target')}")
    assert len(error.strip().splitlines()) == 1
    with account.target.open(account.target_user) as session:
        assert sum(f.messages for f in session.folders() if f.selectable) == 0
    finished = _cli(account, tmp_path / "a.db")
    assert finished.wait(timeout=300) == 0, finished.stderr.read()
    _assert_exact(account)
