"""Folder names between cutover and an IMAP server's dialect: strings in, strings out."""

from __future__ import annotations

import pytest

from cutover.connectors.imap.names import Dialect, FolderNameRefused, dialect_from_namespace

DOVECOT = Dialect("/", "")
COURIER = Dialect(".", "INBOX.")
CYRUS_UNIX = Dialect("/", "INBOX/")
FLAT_DOT = Dialect(".", "")


@pytest.mark.parametrize("dialect, name, wire", [
    (DOVECOT, "INBOX", "INBOX"),
    (DOVECOT, "Archive/2024", "Archive/2024"),
    (DOVECOT, "Lists/ops.example.org", "Lists/ops.example.org"),
    (COURIER, "INBOX", "INBOX"),
    (COURIER, "Sent", "INBOX.Sent"),
    (COURIER, "Archive/2024", "INBOX.Archive.2024"),
    (COURIER, "INBOX/Station Reports", "INBOX.INBOX.Station Reports"),
    (COURIER, "Lists/ops.example.org", "INBOX.Lists.ops\u2024example\u2024org"),
    (COURIER, "Entwürfe & Co", "INBOX.Entwürfe & Co"),
    (CYRUS_UNIX, "Archive/2024", "INBOX/Archive/2024"),
    (CYRUS_UNIX, "a.b", "INBOX/a.b"),
    (FLAT_DOT, "Archive/2024", "Archive.2024"),
])
def test_names_map_to_the_server_and_back_unchanged(dialect, name, wire):
    assert dialect.to_wire(name) == wire
    assert dialect.to_neutral(wire) == name


@pytest.mark.parametrize("dialect, wire", [
    (COURIER, "user.alice.Sent"),  # another user's folder
    (COURIER, "INBOX."),  # the prefix itself
    (Dialect("/", "", ("shared/",)), "shared/team"),
])
def test_folders_outside_the_personal_namespace_are_not_ours(dialect, wire):
    assert dialect.to_neutral(wire) is None


def test_a_name_holding_the_separator_is_renamed_and_says_how_users_see_it():
    assert COURIER.renamed("Lists/ops.example.org") == "Lists/ops\u2024example\u2024org"
    assert COURIER.renamed("Lists/ops") is None
    assert DOVECOT.renamed("Lists/ops.example.org") is None


def test_a_name_with_the_look_alike_is_refused_by_name():
    with pytest.raises(FolderNameRefused, match="ops\u2024org"):
        COURIER.to_wire("Lists/ops\u2024org")


def test_a_server_folder_with_a_slash_in_one_level_reads_back_as_one_level():
    assert COURIER.to_neutral("INBOX.a/b") == "a\u2215b"
    assert COURIER.to_wire("a\u2215b") == "INBOX.a/b"


def test_a_server_without_hierarchy_refuses_nested_names():
    with pytest.raises(FolderNameRefused):
        Dialect("", "").to_wire("Archive/2024")


@pytest.mark.parametrize("personal, others, delimiter, expected", [
    ((("INBOX.", "."),), (("user.", "."), ("", ".")), None, Dialect(".", "INBOX.", ("user.",))),
    ((("", "/"),), (), None, Dialect("/", "")),
    (None, (), ".", Dialect(".", "")),
    (None, (), "", Dialect("", "")),
])
def test_dialect_comes_from_namespace_else_from_the_list_delimiter(personal, others, delimiter,
                                                                   expected):
    assert dialect_from_namespace(personal, others, delimiter) == expected
