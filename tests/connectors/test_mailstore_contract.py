"""One contract, every store: ImapMailStore against a real Dovecot and a real Cyrus IMAP (in its
"."/"INBOX." and "/"/"INBOX/" layouts), and the Maildir twin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX, MailboxSession, NewMessage
from cutover.errors import AuthenticationFailed, NotFound
from tests.mailsync.corpus import imap_store

#: param -> (server fixture, its user fixture or None to add one)
IMAP_SERVERS = {"imap": "dovecot", "cyrus": "cyrus", "cyrus-slash": "cyrus_slash"}

MESSAGE = b"From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\nbody line\r\nsecond\r\n"
WHEN = datetime(2019, 6, 1, 12, 30, 15, tzinfo=UTC)


@pytest.fixture(params=[*IMAP_SERVERS, "maildir"])
def session(request, tmp_path) -> MailboxSession:
    if request.param in IMAP_SERVERS:
        server = request.getfixturevalue(IMAP_SERVERS[request.param])
        user = server.add_user(f"contract-{tmp_path.name}")
        opened = imap_store(server).open(user)
    else:
        opened = MaildirMailStore(tmp_path / "mail").open("bob@verify.example.org")
        # A twin's account is its directory; Dovecot makes a new account's on first login.
        opened.create_folder(INBOX)
    with opened as live:
        yield live


def test_new_account_has_an_empty_inbox(session):
    folders = session.folders()
    assert [f.name for f in folders] == [INBOX]
    assert folders[0].messages == 0 and folders[0].uidvalidity > 0


def test_append_keeps_bytes_flags_keywords_and_internaldate(session):
    flags = frozenset({"\\Seen", "\\Answered", "$Label1"})
    [uid] = session.append(INBOX, [NewMessage(MESSAGE, flags, WHEN)])
    [ref] = session.list_messages(INBOX)
    assert (ref.uid, ref.size, ref.flags) == (uid, len(MESSAGE), flags)
    assert ref.internaldate.timestamp() == WHEN.timestamp()
    assert list(session.fetch(INBOX, [uid])) == [(uid, MESSAGE)]


def test_append_of_a_batch_returns_one_uid_per_message_in_order(session):
    uids = session.append(INBOX, [NewMessage(MESSAGE + b"%d\r\n" % i) for i in range(5)])
    assert uids == sorted(uids) and len(set(uids)) == 5
    fetched = dict(session.fetch(INBOX, uids))
    assert [fetched[u][-3:] for u in uids] == [b"%d\r\n" % i for i in range(5)]


def test_nested_and_non_ascii_folders_keep_their_names_and_noselect_parent(session):
    session.create_folder("Projects/Alpha")
    session.create_folder("Entwürfe & Co")
    session.create_folder("Entwürfe & Co")  # idempotent
    folders = {f.name: f for f in session.folders()}
    assert set(folders) == {INBOX, "Projects", "Projects/Alpha", "Entwürfe & Co"}
    assert folders["Projects/Alpha"].selectable
    # A parent made on the way is \Noselect on Dovecot and Maildir; Cyrus makes it a real,
    # empty folder. Either way it holds no message.
    assert folders["Projects"].messages == 0


def test_folder_counters_follow_appends(session):
    session.create_folder("Archive")
    session.append("Archive", [NewMessage(MESSAGE), NewMessage(MESSAGE)])
    info = session.folder("Archive")
    assert (info.messages, info.size_bytes) == (2, 2 * len(MESSAGE))
    assert info.uidnext > max(m.uid for m in session.list_messages("Archive"))


def test_set_flags_replaces_the_whole_set(session):
    [uid] = session.append(INBOX, [NewMessage(MESSAGE, frozenset({"\\Seen", "$Label1"}))])
    session.set_flags(INBOX, [uid], frozenset({"\\Flagged", "$Forwarded"}))
    assert session.list_messages(INBOX)[0].flags == {"\\Flagged", "$Forwarded"}


def test_delete_expunges_only_the_named_messages(session):
    first, second = session.append(INBOX, [NewMessage(MESSAGE), NewMessage(MESSAGE + b"x")])
    session.delete(INBOX, [first])
    assert [m.uid for m in session.list_messages(INBOX)] == [second]
    assert list(session.fetch(INBOX, [first])) == []


def test_rename_keeps_messages_and_uidvalidity(session):
    session.create_folder("Old")
    session.append("Old", [NewMessage(MESSAGE)])
    validity = session.folder("Old").uidvalidity
    session.rename_folder("Old", "New")
    assert session.folder("New").uidvalidity == validity
    assert session.folder("New").messages == 1
    with pytest.raises(NotFound):
        session.folder("Old")


def test_deleted_folder_is_gone_and_missing_folder_is_not_found(session):
    session.create_folder("Temp")
    session.delete_folder("Temp")
    assert "Temp" not in {f.name for f in session.folders()}
    with pytest.raises(NotFound):
        session.list_messages("Temp")


def test_imap_wrong_password_is_authentication_failed(dovecot, dovecot_user):
    with pytest.raises(AuthenticationFailed):
        imap_store(dovecot, password="wrong").open(dovecot_user)


def test_a_child_of_inbox_is_listed_under_inbox(session):
    session.create_folder("INBOX/Station Reports")
    session.append("INBOX/Station Reports", [NewMessage(MESSAGE)])
    folders = {f.name: f for f in session.folders()}
    assert set(folders) == {INBOX, "INBOX/Station Reports"}
    assert folders[INBOX].selectable and folders["INBOX/Station Reports"].messages == 1
