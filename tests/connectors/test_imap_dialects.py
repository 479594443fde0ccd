"""ImapMailStore against servers that are not laid out like Dovecot: real Cyrus IMAP with a "."
separator and an "INBOX." personal namespace, with "/" and "INBOX/", and with munge8bit."""

from __future__ import annotations

import pytest

from cutover.connectors.imap.store import (
    CHECK_PER_KIND,
    ServerRewritesMessages,
    StoredCheck,
    explain_rewrite,
    message_kinds,
)
from cutover.connectors.mailstore import INBOX, NewMessage
from tests.mailsync.corpus import imap_store

PLAIN = b"From: a@example.org\r\nSubject: plain\r\n\r\nbody\r\n"
EIGHT_BIT_HEADER = b"From: a@example.org\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\r\nbody\r\n"


@pytest.mark.parametrize("layout, stored", [("cyrus", "INBOX.Archive.2024"),
                                            ("cyrus_slash", "INBOX/Archive/2024")])
def test_a_session_that_never_listed_folders_writes_in_the_servers_layout(request, layout,
                                                                          stored, tmp_path):
    server = request.getfixturevalue(layout)
    user = server.add_user(f"nolist-{tmp_path.name}")
    with imap_store(server).open(user) as session:  # a pool worker: it never calls folders()
        session.create_folder("Archive/2024")
        session.append("Archive/2024", [NewMessage(PLAIN)])
    assert server.folders(user)[stored] == 1


def test_every_session_of_a_store_shares_the_dialect_learned_at_the_first_login(cyrus,
                                                                                 cyrus_user):
    store = imap_store(cyrus)
    with store.open(cyrus_user) as first, store.open(cyrus_user) as second:
        assert first.dialect is second.dialect
        assert (first.dialect.separator, first.dialect.prefix) == (".", "INBOX.")


def test_a_name_holding_the_separator_is_stored_with_a_look_alike_and_reads_back(cyrus,
                                                                                 cyrus_user):
    with imap_store(cyrus).open(cyrus_user) as session:
        session.create_folder("Lists/ops.example.org")
        session.append("Lists/ops.example.org", [NewMessage(PLAIN)])
        listed = {f.name: f for f in session.folders()}
        assert session.dialect.renamed("Lists/ops.example.org") == \
            "Lists/ops\u2024example\u2024org"
    assert listed["Lists/ops.example.org"].messages == 1
    assert "Lists/ops/example/org" not in listed and "Lists/ops" not in listed
    assert cyrus.folders(cyrus_user)["INBOX.Lists.ops\u2024example\u2024org"] == 1


def test_folders_of_other_users_are_not_listed_as_ours(cyrus, tmp_path):
    owner, reader = (cyrus.add_user(f"{who}-{tmp_path.name}") for who in ("owner", "reader"))
    admin = cyrus.admin()
    try:
        assert admin.setacl(f"user.{owner}", reader, "lr")[0] == "OK"
    finally:
        admin.logout()
    assert f"user.{owner}" in cyrus.folders(reader)
    with imap_store(cyrus).open(reader) as session:
        assert [f.name for f in session.folders()] == [INBOX]


@pytest.mark.parametrize("layout", ["dovecot", "cyrus"])
def test_create_and_delete_twice_are_fine_whatever_the_server_answers(request, layout,
                                                                      tmp_path):
    server = request.getfixturevalue(layout)
    user = server.add_user(f"twice-{tmp_path.name}")
    with imap_store(server).open(user) as session:
        session.create_folder("Reports")
        session.create_folder("Reports")
        session.delete_folder("Reports")
        session.delete_folder("Reports")
        assert [f.name for f in session.folders()] == [INBOX]


def test_a_server_that_rewrites_8bit_headers_is_refused_and_its_copy_removed(cyrus_munging,
                                                                             tmp_path):
    user = cyrus_munging.add_user(f"munged-{tmp_path.name}")
    store = imap_store(cyrus_munging)
    with store.open(user) as session:
        session.append(INBOX, [NewMessage(PLAIN)])  # plain ASCII comes back exact
        with pytest.raises(ServerRewritesMessages, match="munge8bit: no"):
            session.append(INBOX, [NewMessage(EIGHT_BIT_HEADER)])
        assert session.folder(INBOX).messages == 1
        with store.open(user) as other:  # every session of the store knows
            with pytest.raises(ServerRewritesMessages):
                other.append(INBOX, [NewMessage(PLAIN)])
        assert session.folder(INBOX).messages == 1


def test_only_the_first_messages_of_each_kind_are_read_back():
    check = StoredCheck()
    assert [check.wanted(PLAIN) for _ in range(CHECK_PER_KIND + 1)] == \
        [True] * CHECK_PER_KIND + [False]
    assert check.wanted(EIGHT_BIT_HEADER)  # a new kind is checked again


@pytest.mark.parametrize("content, kinds", [
    (PLAIN, {"any"}),
    (EIGHT_BIT_HEADER, {"any", "8-bit header"}),
    (b"Subject: x\r\n\r\ncaf\xc3\xa9\r\n", {"any", "8-bit body"}),
    (b"Subject: x\n\nbody\n", {"any", "bare line ending"}),
    (b"Subject: x\r\n\r\na\x00b\r\n", {"any", "NUL"}),
    (b"Subject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n", {"any", "8-bit header", "8-bit body"}),
    (b"Subject: caf\xc3\xa9\r\n\r\nplain\r\n", {"any", "8-bit header"}),
    (b"Subject: x\r\nbare\rcr\r\n\r\nbody\r\n", {"any", "bare line ending"}),
])
def test_message_kinds_name_what_a_server_might_rewrite(content, kinds):
    assert message_kinds(content) == kinds


def test_message_kinds_looks_only_for_the_kinds_asked():
    content = b"Subject: caf\xc3\xa9\n\nbody\x00\n"
    assert message_kinds(content, {"NUL"}) == {"NUL"}
    assert message_kinds(content, {"any", "bare line ending"}) == {"any", "bare line ending"}


def test_the_cause_of_a_rewrite_is_named():
    munged = EIGHT_BIT_HEADER.replace(b"\xc3\xbc\xc3\x9f", b"XXXX")
    assert "munge8bit" in explain_rewrite(EIGHT_BIT_HEADER, munged)
    assert "line endings" in explain_rewrite(b"a\nb\n", b"a\r\nb\r\n")
    assert "first difference at byte 1" in explain_rewrite(b"abc", b"aXc")
