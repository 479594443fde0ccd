"""Procmail regex -> POSIX ERE, and header conditions -> field tests."""

from __future__ import annotations

import pytest

from cutover.rules.regex import (
    ALWAYS,
    ENVELOPE_FROM,
    HEADER_NAMES,
    RECIPIENT_HEADERS,
    HeaderMatch,
    RegexUntranslatable,
    header_match,
    translate,
)


@pytest.mark.parametrize(("procmail", "ere"), [
    ("a{2}", "a[{]2[}]"),
    ("\\<word\\>", "(^|[^a-zA-Z0-9_])word([^a-zA-Z0-9_]|$)"),
    ("^^start", "^start"),
    ("[\\]x]", "[]x]"),
    ("a\\.b", "a\\.b"),
    ("(REB|SEB)[ _-]?bulletin", "(REB|SEB)[ _-]?bulletin"),
])
def test_translate_maps_each_dialect_difference(procmail: str, ere: str):
    assert translate(procmail) == (ere, 0)


def test_translate_puts_what_follows_the_match_marker_in_a_numbered_group():
    assert translate("^Subject:.*\\/[0-9]+") == ("^Subject:.*([0-9]+)", 1)
    assert translate("^((List-Id|X-List):(.*[<]\\/[^>]*))") == (
        "^((List-Id|X-List):(.*[<]([^>]*)))", 4)


def test_procmail_backslash_letters_are_plain_letters():
    assert translate("a\\sb")[0] == "asb"


def test_subject_with_any_prefix_becomes_an_unanchored_value_search():
    assert header_match("^Subject:.*DATA_REQUEST") == [HeaderMatch(["subject"], "DATA_REQUEST")]
    assert header_match("^Sender:.*list-\\/[a-z]+") == [
        HeaderMatch(["sender"], "list-([a-z]+)", 1)]


def test_blanks_after_the_colon_anchor_the_value_start():
    assert header_match("^Subject: *BEGIN IMS2\\.0") == [
        HeaderMatch(["subject"], "^BEGIN IMS2\\.0")]
    assert header_match("^X-Spam-Flag:[ \t]*YES") == [HeaderMatch(["x-spam-flag"], "^YES")]


def test_header_alternatives_become_a_header_list():
    assert header_match("^(From|Sender):.*idc") == [HeaderMatch(["from", "sender"], "idc")]


def test_bare_header_name_tests_existence():
    assert header_match("^List-Id:") == [HeaderMatch(["list-id"], None)]


def test_to_macro_expands_to_recipient_headers_with_its_boundary():
    match = header_match("^TO_datarequest@example\\.org")[0]
    assert match.headers == RECIPIENT_HEADERS
    assert match.pattern == "(^|[^-a-zA-Z0-9_.])datarequest@example\\.org"
    assert header_match("^TOall-staff")[0].pattern == "(^|[^a-zA-Z])all-staff"


def test_from_daemon_tests_sender_headers_envelope_and_list_markers():
    headers = [match.headers for match in header_match("^FROM_DAEMON")]
    assert ["envelope:from"] in headers and ["precedence"] in headers
    assert ["mailing-list"] in headers


def test_text_glued_to_the_colon_is_refused():
    with pytest.raises(RegexUntranslatable, match="after the colon"):
        header_match("^Subject:DATA")


def test_a_condition_without_a_header_name_searches_every_field_and_the_envelope():
    matches = header_match("DATA_REQUEST")
    assert HeaderMatch(HEADER_NAMES, "DATA_REQUEST") in matches
    assert HeaderMatch([ENVELOPE_FROM], "DATA_REQUEST") in matches


def test_name_without_colon_covers_the_fields_so_named_and_the_from_line():
    assert header_match("^From.*foo") == [HeaderMatch(["from"], "foo"),
                                          HeaderMatch([ENVELOPE_FROM], "foo")]
    assert header_match("^(To|CC).*list") == [HeaderMatch(["cc"], "list"),
                                              HeaderMatch(["to"], "list")]
    assert header_match("^From.*edu$") == [HeaderMatch(["from"], "edu$")]


def test_any_line_with_a_colon_is_every_field():
    assert header_match("^.*:.*\\[GTD\\]") == [HeaderMatch(HEADER_NAMES, "\\[GTD\\]")]


@pytest.mark.parametrize("regex", [".*", "", "^", "(foo)?"])
def test_a_regex_matching_empty_text_is_always_true(regex: str):
    assert header_match(regex) == [ALWAYS]


def test_header_start_is_the_from_line():
    assert header_match("^^rom[ ]") == []
    assert header_match("^^From") == [ALWAYS]


@pytest.mark.parametrize(("regex", "reason"), [
    ("^Subject: =\\?(iso-8859-1|windows-1251)\\?", "RFC 2047"),
    ("^List-Id: ActiveRDF users <activerdf.lists.deri.org>", "folded"),
    ("^X-Private-Prefix-.*", "starts with"),
])
def test_what_sieve_would_decide_differently_is_refused(regex: str, reason: str):
    with pytest.raises(RegexUntranslatable, match=reason):
        header_match(regex)


def test_body_regex_spells_line_edges_and_keeps_dot_on_one_line():
    pattern, _ = translate("^STA_LIST.*AKS01$", multiline=True)
    assert pattern == ("(^|[^[:print:][:blank:]])STA_LIST([^[:cntrl:]]|[[:blank:]])*AKS01"
                       "([^[:print:][:blank:]]|$)")
