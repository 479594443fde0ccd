import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cutover.errors import ValidationFailed
from cutover.parsers.postfix_map import (
    parse_domain_list,
    parse_main_cf,
    parse_map,
    put_back_entry,
    set_entry,
)

SIMPLE = """\
# header comment
datarequest@example.org     datarequest@exchange.example.org

# the bulletin list
bulletin@example.org        alice@example.org,
    bob@example.org
reb-distribution@example.org\treb@exchange.example.org
"""


def test_entries_are_parsed_with_their_line_span():
    parsed = parse_map(SIMPLE)
    assert [(e.key, e.first, e.last) for e in parsed.entries] == [
        ("datarequest@example.org", 1, 1),
        ("bulletin@example.org", 4, 5),
        ("reb-distribution@example.org", 6, 6),
    ]


def test_continuation_line_is_joined_as_postmap_does():
    value = parse_map(SIMPLE).lookup("bulletin@example.org")
    assert value == "alice@example.org,    bob@example.org"


def test_keys_compare_case_insensitively_and_first_duplicate_wins():
    parsed = parse_map("Foo@Example.ORG one\nfoo@example.org two\n")
    assert parsed.lookup("foo@example.org") == "one"
    assert parsed.as_dict() == {"foo@example.org": "one"}


def test_indented_comment_is_a_comment_not_a_continuation():
    parsed = parse_map("a 1\n   # note\nb 2\n")
    assert parsed.as_dict() == {"a": "1", "b": "2"}


def test_key_without_value_is_reported_with_file_and_line():
    with pytest.raises(ValidationFailed) as raised:
        parse_map("ok value\nlonely\n", "postfix/virtual")
    assert raised.value.lines() == [
        "postfix/virtual:2: expected 'key whitespace value', got 'lonely'"]


def test_leading_whitespace_on_first_logical_line_is_reported():
    with pytest.raises(ValidationFailed) as raised:
        parse_map("  starts-indented value\n", "t")
    assert "t:1: a logical line must not start with whitespace" in raised.value.lines()


def test_every_malformed_line_is_reported_at_once():
    with pytest.raises(ValidationFailed) as raised:
        parse_map("one\ntwo\nthree 3\n", "m")
    assert [p.line for p in raised.value.problems] == [1, 2]


def test_update_rewrites_only_that_entry_keeping_its_separator():
    text = set_entry(SIMPLE, "reb-distribution@example.org", "reb@verify.example.org")
    assert text == SIMPLE.replace("reb@exchange.example.org", "reb@verify.example.org")


def test_update_of_multiline_entry_becomes_one_line_in_place():
    text = set_entry(SIMPLE, "bulletin@example.org", "bulletin@verify.example.org")
    assert text.splitlines()[3:6] == [
        "# the bulletin list",
        "bulletin@example.org        bulletin@verify.example.org",
        "reb-distribution@example.org\treb@exchange.example.org",
    ]


def test_delete_removes_the_entry_lines_and_nothing_else():
    text = set_entry(SIMPLE, "bulletin@example.org", None)
    assert text == SIMPLE.replace(
        "bulletin@example.org        alice@example.org,\n    bob@example.org\n", "")


def test_new_entry_is_appended_aligned_to_the_last_entry_layout():
    text = set_entry("a@x.org     b@y.org\n", "cc@x.org", "d@y.org")
    assert text == "a@x.org     b@y.org\ncc@x.org    d@y.org\n"


def test_new_entry_after_a_file_without_final_newline_gets_its_own_line():
    assert set_entry("a 1", "b", "2") == "a 1\nb 2\n"


def test_setting_the_same_value_changes_nothing():
    assert set_entry(SIMPLE, "DataRequest@example.org",
                     "datarequest@exchange.example.org") == SIMPLE


def test_crlf_files_keep_crlf_line_endings():
    text = set_entry("a 1\r\nb 2\r\n", "c", "3")
    assert text == "a 1\r\nb 2\r\nc 3\r\n"


def test_put_back_restores_deleted_entry_in_its_place_byte_for_byte():
    parsed = parse_map(SIMPLE)
    entry = parsed.entry_text("bulletin@example.org")
    placement = parsed.placement("bulletin@example.org")
    deleted = set_entry(SIMPLE, "bulletin@example.org", None)
    assert put_back_entry(deleted, "bulletin@example.org", entry, placement) == SIMPLE


def test_put_back_restores_updated_entry_in_place():
    parsed = parse_map(SIMPLE)
    entry = parsed.entry_text("bulletin@example.org")
    updated = set_entry(SIMPLE, "bulletin@example.org", "x@y.org")
    assert put_back_entry(updated, "bulletin@example.org", entry, None) == SIMPLE


def test_put_back_of_absent_entry_removes_the_created_one():
    created = set_entry(SIMPLE, "new@example.org", "new@verify.example.org")
    assert put_back_entry(created, "new@example.org", None, None) == SIMPLE


def test_main_cf_parameters_with_continuation():
    params = parse_main_cf("# c\nmyhostname = mx\ncontent_filter =\n  amavis:[127.0.0.1]:10024\n")
    assert params == {"myhostname": "mx", "content_filter": "amavis:[127.0.0.1]:10024"}


def test_domain_list_accepts_plain_lists_and_maps():
    text = "# relayed\nExample.org OK\nverify.example.org\n  continued\n"
    assert parse_domain_list(text) == ["example.org", "verify.example.org"]


_KEYS = st.sampled_from(["a@example.org", "b@example.org", "c@example.org", "example.org"])
_VALUES = st.sampled_from(["x@verify.example.org", "smtp:[filter]:10025", "OK", "y,\n  z"])
_LINES = st.one_of(
    st.tuples(_KEYS, st.sampled_from([" ", "\t", "    "]), _VALUES).map(lambda t: "".join(t)),
    st.sampled_from(["# comment", "", "   ", "  # indented comment"]))


@given(st.lists(_LINES, max_size=8), _KEYS, st.one_of(st.none(), _VALUES.filter(
    lambda v: "\n" not in v)), st.booleans())
def test_edit_then_put_back_is_byte_for_byte(lines, key, value, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    parsed = parse_map(text)
    edited = set_entry(text, key, value)
    assert parse_map(edited).lookup(key) == value
    # postmap warns about duplicate keys and ignores the later ones; edits collapse them
    assume(len(parsed.entries) == len(parsed.as_dict()))
    restored = put_back_entry(edited, key, parsed.entry_text(key), parsed.placement(key))
    assert parse_map(restored).as_dict() == parsed.as_dict()
    if parsed.entry(key) is not None or value is None:
        assert restored == text
