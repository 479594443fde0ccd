"""The sync engine against a real Dovecot: exact, incremental, and re-matching by digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX, MailStore, NewMessage
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.folders import FolderRules
from cutover.mailsync.verify import compare
from tests.mailsync.corpus import build, count, imap_store, load, run_sync


@dataclass
class Pair:
    source: MailStore
    source_user: str
    target: MailStore
    target_user: str
    state: Path

    def sync(self, **options):
        options.setdefault("jobs", 3)
        account = Account(self.source, self.source_user, self.target, self.target_user)
        [result] = run_sync(self.state, SyncOptions(**options), [account])
        return result

    def src(self):
        return self.source.open(self.source_user)

    def dst(self):
        return self.target.open(self.target_user)

    def assert_exact(self, delete: bool = True, rules: FolderRules | None = None):
        with self.src() as left, self.dst() as right:
            comparison = compare(left, right, rules, delete=delete)
            assert [d.describe() for d in comparison.differences] == []
            if delete and rules is None:
                assert count(left) == count(right)


@pytest.fixture
def imap_pair(dovecot, tmp_path) -> Pair:
    store = imap_store(dovecot)
    source, target = dovecot.add_user(f"src-{tmp_path.name}"), dovecot.add_user(
        f"dst-{tmp_path.name}")
    with store.open(source) as session:
        load(session, build())
    return Pair(store, source, store, target, tmp_path / "state.db")


def test_full_copy_is_exact_with_every_oddity_and_a_large_message(dovecot, tmp_path):
    store = imap_store(dovecot)
    source, target = dovecot.add_user("src-large"), dovecot.add_user("dst-large")
    with store.open(source) as session:
        load(session, build(seed=3, large=True))
    pair = Pair(store, source, store, target, tmp_path / "state.db")
    result = pair.sync()
    assert result.copied == sum(len(v) for v in build(seed=3, large=True).values())
    pair.assert_exact()
    with pair.dst() as right:
        folders = {f.name: f for f in right.folders()}
    assert not folders["Projects"].selectable and "Entwürfe & Co" in folders


def test_second_run_changes_nothing(imap_pair):
    imap_pair.sync()
    with imap_pair.dst() as right:
        before = right.folders()
    again = imap_pair.sync()
    assert (again.copied, again.flags_updated, again.deleted) == (0, 0, 0)
    assert again.unchanged_folders == again.folders
    with imap_pair.dst() as right:
        assert right.folders() == before


def _new_message(session):
    session.append(INBOX, [NewMessage(b"Subject: late\r\n\r\nnew\r\n", frozenset({"$Label1"}),
                                      datetime(2024, 2, 2, tzinfo=UTC))])


def _flags_changed(session):
    uid = session.list_messages("Sent")[0].uid
    session.set_flags("Sent", [uid], frozenset({"\\Seen", "\\Flagged", "$Label1"}))


def _keyword_removed(session):
    for ref in session.list_messages(INBOX):
        if "$Label1" in ref.flags:
            session.set_flags(INBOX, [ref.uid], ref.flags - {"$Label1"})


def _expunged(session):
    refs = session.list_messages("Archive/2024")
    session.delete("Archive/2024", [refs[0].uid, refs[-1].uid])


def _new_folder(session):
    session.create_folder("Archive/2025")
    session.append("Archive/2025", [NewMessage(b"Subject: x\r\n\r\ny\r\n")])


def _uidvalidity_reset(session):
    refs = session.list_messages("Archive/2024")
    contents = dict(session.fetch("Archive/2024", [r.uid for r in refs]))
    session.delete_folder("Archive/2024")
    session.create_folder("Archive/2024")
    session.append("Archive/2024", [NewMessage(contents[r.uid], r.flags, r.internaldate)
                                    for r in refs])


@pytest.mark.parametrize("change", [_new_message, _flags_changed, _keyword_removed, _expunged,
                                    _new_folder, _uidvalidity_reset])
def test_each_source_change_then_resync_is_exact(imap_pair, change):
    imap_pair.sync()
    with imap_pair.src() as session:
        change(session)
    result = imap_pair.sync(delete=True)
    imap_pair.assert_exact()
    if change is _uidvalidity_reset:
        assert result.copied == 0 and result.rematched == 13


def test_renamed_source_folder_is_renamed_on_target_without_copying(imap_pair):
    imap_pair.sync()
    with imap_pair.src() as session:
        session.rename_folder("Entwürfe & Co", "Entwürfe 2024")
    result = imap_pair.sync(delete=True)
    assert result.copied == 0 and result.renamed_folders == ["Entwürfe & Co -> Entwürfe 2024"]
    imap_pair.assert_exact()


def test_target_uidvalidity_reset_is_rematched_by_digest(imap_pair):
    imap_pair.sync()
    with imap_pair.dst() as session:
        _uidvalidity_reset(session)
    result = imap_pair.sync()
    assert result.copied == 0 and result.rematched == 13
    imap_pair.assert_exact()


def test_without_delete_expunged_source_messages_stay_on_target(imap_pair):
    imap_pair.sync()
    with imap_pair.src() as session:
        _expunged(session)
    assert imap_pair.sync().deleted == 0
    imap_pair.assert_exact(delete=False)


def test_dry_run_counts_what_would_be_copied_and_changes_nothing(imap_pair):
    result = imap_pair.sync(dry_run=True)
    assert sum(result.to_copy.values()) == sum(len(v) for v in build().values())
    with imap_pair.dst() as right:
        assert [f.name for f in right.folders()] == [INBOX]


def test_folder_globs_and_mapping_choose_and_rename_folders(imap_pair):
    rules = FolderRules.parse(["Archive*", "INBOX"], ["INBOX"], ["Archive=Old/Archive"])
    imap_pair.sync(rules=rules)
    with imap_pair.dst() as right:
        names = {f.name for f in right.folders() if f.selectable}
    assert names == {INBOX, "Old/Archive/2024"}
    imap_pair.assert_exact(rules=rules)


def test_maildir_to_imap_maps_exchange_special_folders(dovecot, tmp_path):
    maildir = MaildirMailStore(tmp_path / "mail")
    corpus = build(seed=5, per_folder=4)
    corpus["Sent Items"] = corpus.pop("Sent")
    corpus["Deleted Items"] = corpus.pop("Archive/2024")
    with maildir.open("bob") as session:
        load(session, corpus)
    target = dovecot.add_user("md-target")
    pair = Pair(maildir, "bob", imap_store(dovecot), target, tmp_path / "state.db")
    pair.sync()
    with pair.dst() as right:
        names = {f.name for f in right.folders()}
    assert {"Sent", "Trash"} <= names and "Sent Items" not in names
    pair.assert_exact()
    assert pair.sync().copied == 0


def test_imap_to_maildir_is_exact_and_readable_by_dovecot_layout(imap_pair, tmp_path):
    maildir = MaildirMailStore(tmp_path / "out")
    pair = Pair(imap_pair.source, imap_pair.source_user, maildir, "bob", tmp_path / "s.db")
    pair.sync()
    pair.assert_exact()
    assert (tmp_path / "out" / "bob" / "Entw&APw-rfe &- Co" / "cur").is_dir()
    again = pair.sync()
    assert again.copied == 0 and again.unchanged_folders == again.folders
