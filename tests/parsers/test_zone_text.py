from __future__ import annotations

import difflib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cutover.dns_model import RRset, wanted_rrset
from cutover.parsers.zone_text import ZoneTextUnsupported, dnspython_rrsets, edit_zone_text
from cutover.sample.zones import old_zone, verify_zone

ZONE = "example.org"

LOWER_TTL = {
    ("@", "MX"): wanted_rrset(ZONE, "@", "MX", 300,
                              ["10 mail.example.org.", "20 mail2.example.org."]),
    ("@", "TXT"): wanted_rrset(ZONE, "@", "TXT", 300, ['"v=spf1 mx ip4:192.0.2.0/24 -all"']),
    ("autodiscover", "CNAME"): wanted_rrset(ZONE, "autodiscover", "CNAME", 300,
                                            ["mail.example.org."]),
}
SWITCH_MX = {
    ("@", "MX"): wanted_rrset(ZONE, "@", "MX", 300, ["0 example-org.mail.protection.outlook.com."]),
    ("@", "TXT"): wanted_rrset(ZONE, "@", "TXT", 300,
                               ['"v=spf1 include:spf.protection.outlook.com -all"']),
    ("autodiscover", "CNAME"): wanted_rrset(ZONE, "autodiscover", "CNAME", 300,
                                            ["autodiscover.outlook.com."]),
}


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm="")
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def restore(text: str, keys) -> dict:
    """The edits a rollback makes: each RRset as it is in `text` (None: absent)."""
    current = dnspython_rrsets(text, ZONE)
    return {key: current.get(key) for key in keys}


def test_lowering_ttls_rewrites_only_the_ttl_fields_and_the_serial():
    before = old_zone()
    after = edit_zone_text(before, ZONE, LOWER_TTL)
    assert changed_lines(before, after) == [
        "-                    2026110101 ; serial",
        "+                    2026110102 ; serial",
        "-@      3600 IN MX   10 mail.example.org.",
        "-@      3600 IN MX   20 mail2.example.org.",
        '-@      3600 IN TXT  "v=spf1 mx ip4:192.0.2.0/24 -all"',
        "+@      300  IN MX   10 mail.example.org.",
        "+@      300  IN MX   20 mail2.example.org.",
        '+@      300  IN TXT  "v=spf1 mx ip4:192.0.2.0/24 -all"',
        "-autodiscover 3600 IN CNAME mail.example.org.",
        "+autodiscover 300  IN CNAME mail.example.org.",
    ]


def test_switched_values_take_the_place_and_layout_of_the_old_lines():
    lowered = edit_zone_text(old_zone(), ZONE, LOWER_TTL)
    switched = edit_zone_text(lowered, ZONE, SWITCH_MX)
    lines = switched.splitlines()
    assert lines[11] == "@      300  IN MX   0 example-org.mail.protection.outlook.com."
    assert lines[12] == '@      300  IN TXT  "v=spf1 include:spf.protection.outlook.com -all"'
    assert "autodiscover 300  IN CNAME autodiscover.outlook.com." in lines
    assert len(lines) == len(lowered.splitlines()) - 1


def test_rollbacks_give_back_the_same_lines_apart_from_the_serial():
    original = old_zone()
    lowered = edit_zone_text(original, ZONE, LOWER_TTL)
    switched = edit_zone_text(lowered, ZONE, SWITCH_MX)
    back_to_lowered = edit_zone_text(switched, ZONE, restore(lowered, SWITCH_MX))
    back_to_original = edit_zone_text(back_to_lowered, ZONE, restore(original, LOWER_TTL))
    assert back_to_lowered == lowered.replace("2026110102", "2026110104")
    assert back_to_original == original.replace("2026110101", "2026110105")


def test_single_line_soa_serial_is_bumped_in_place():
    before = verify_zone()
    after = edit_zone_text(before, "verify.example.org", {})
    assert changed_lines(before, after) == [
        "-                    2026110101 7200 3600 1209600 3600 )",
        "+                    2026110102 7200 3600 1209600 3600 )",
    ]


def test_new_rrset_goes_after_the_records_of_its_owner_in_their_layout():
    zone = "verify.example.org"
    after = edit_zone_text(verify_zone(), zone, {
        ("@", "MX"): wanted_rrset(zone, "@", "MX", 3600, ["10 mx.verify.example.org."]),
    })
    lines = after.splitlines()
    assert lines[5:8] == ["@           IN NS   ns1.example.org.",
                          "@           IN NS   ns2.example.org.",
                          "@           IN MX   10 mx.verify.example.org."]


def test_new_owners_go_at_the_end_with_a_ttl_where_it_differs_from_the_default():
    zone = "verify.example.org"
    after = edit_zone_text(verify_zone(), zone, {
        ("new", "A"): wanted_rrset(zone, "new", "A", 60, ["192.0.2.1"]),
        ("_dmarc", "TXT"): wanted_rrset(zone, "_dmarc", "TXT", 3600, ['"v=DMARC1; p=reject"']),
    })
    assert after.splitlines()[-2:] == ["new      60 IN A    192.0.2.1",
                                       '_dmarc      IN TXT  "v=DMARC1; p=reject"']


HEADER = """\
; example.org, kept by hand
$TTL 3600
@   IN SOA ns1 hostmaster ( 7 ; serial
        3600 600 86400 300 )
    IN NS ns1
"""


def test_continuation_line_gets_the_owner_of_a_removed_line():
    text = HEADER + 'www IN A 192.0.2.1\n    IN TXT "a;b" ; not a comment inside quotes\n'
    after = edit_zone_text(text, ZONE, {("www", "A"): None})
    assert after.splitlines()[-1] == 'www IN TXT "a;b" ; not a comment inside quotes'
    assert dnspython_rrsets(after, ZONE)[("www", "TXT")].values == ('"a;b"',)


def test_record_inheriting_the_last_ttl_keeps_it_when_the_ttl_before_changes():
    text = ("@ 3600 IN SOA ns1 hostmaster 7 3600 600 86400 300\n"
            "  IN NS ns1\n"
            "a 300 IN A 192.0.2.1\n"
            "b     IN A 192.0.2.2\n")
    after = edit_zone_text(text, ZONE, {("a", "A"): RRset("a", "A", 60, ("192.0.2.1",))})
    assert after.splitlines()[2:] == ["a 60  IN A 192.0.2.1", "b 300 IN A 192.0.2.2"]
    assert dnspython_rrsets(after, ZONE)[("b", "A")].ttl == 300


def test_records_under_another_origin_are_written_relative_to_it():
    text = HEADER + "$ORIGIN sub.example.org.\nwww IN A 192.0.2.1\n"
    after = edit_zone_text(text, ZONE, {
        ("www.sub", "A"): RRset("www.sub", "A", 3600, ("192.0.2.9",)),
        ("mx.sub", "A"): RRset("mx.sub", "A", 3600, ("192.0.2.10",)),
    })
    assert after.splitlines()[-2:] == ["www IN A 192.0.2.9", "mx  IN A 192.0.2.10"]


def test_record_spanning_lines_is_replaced_by_one_line():
    text = HEADER + 'sel._domainkey IN TXT ( "v=DKIM1; k=rsa; " ; key below\n  "p=AAAA" )\n'
    after = edit_zone_text(text, ZONE, {
        ("sel._domainkey", "TXT"): RRset("sel._domainkey", "TXT", 3600, ('"v=DKIM1; p=BBBB"',)),
    })
    assert after.endswith('\nsel._domainkey IN TXT "v=DKIM1; p=BBBB"\n')


def test_crlf_line_ends_are_kept():
    text = HEADER.replace("\n", "\r\n") + "www IN A 192.0.2.1\r\n"
    after = edit_zone_text(text, ZONE, {("mail", "A"): RRset("mail", "A", 3600, ("192.0.2.2",))})
    assert after.count("\r\n") == after.count("\n") == text.count("\n") + 1


def test_include_directive_is_not_edited_line_by_line():
    with pytest.raises(ZoneTextUnsupported):
        edit_zone_text(HEADER + "$INCLUDE other.zone\n", ZONE, {})


# --- properties ------------------------------------------------------------------------------

OWNERS = ["@", "www", "mail", "_dmarc", "a.b"]
VALUES = {
    "A": ["192.0.2.1", "192.0.2.2", "192.0.2.3"],
    "TXT": ['"v=spf1 -all"', '"x;y z"', '"token=AbC"'],
    "MX": ["10 mail.example.org.", "20 mail", "30 a.b"],
}
TTLS = [60, 300, 3600]


@st.composite
def zones(draw, strict: bool) -> str:
    """A hand-kept zone: comments, blank lines, optional TTLs, and (unless strict) blank owners
    continuing the previous owner and TTLs inherited from the line before ($TTL absent)."""
    records = draw(st.lists(st.tuples(st.sampled_from(OWNERS), st.sampled_from(sorted(VALUES)),
                                      st.integers(0, 2)), unique=True, max_size=10))
    lines = ["; hand kept", "$TTL 3600" if strict else "",
             "@ 3600 IN SOA ns1 hostmaster ( 5 ; serial", "      3600 600 86400 300 )",
             "        IN NS ns1"]
    previous = "@"
    for owner, rdtype, index in records:
        blank = not strict and owner == previous and draw(st.booleans())
        ttl = f"{draw(st.sampled_from(TTLS))} " if draw(st.booleans()) else ""
        comment = " ; why" if draw(st.booleans()) else ""
        value = VALUES[rdtype][index]
        lines.append(f"{'' if blank else owner}\t{ttl}IN {rdtype} {value}{comment}")
        if draw(st.booleans()):
            lines.append("")
        previous = owner
    return "\n".join(lines) + "\n"


@st.composite
def edits(draw) -> dict:
    keys = draw(st.lists(st.tuples(st.sampled_from(OWNERS), st.sampled_from(sorted(VALUES))),
                         unique=True, max_size=4))
    found = {}
    for owner, rdtype in keys:
        values = draw(st.lists(st.sampled_from(VALUES[rdtype]), unique=True, max_size=3))
        found[(owner, rdtype)] = (wanted_rrset(ZONE, owner, rdtype, draw(st.sampled_from(TTLS)),
                                               values) if values else None)
    return found


def expected_after(text: str, wanted: dict) -> dict:
    expected = dnspython_rrsets(text, ZONE)
    for key, rrset in wanted.items():
        expected.pop(key, None)
        if rrset is not None:
            expected[key] = rrset
    expected.pop(("@", "SOA"))
    return expected


def without_soa(rrsets: dict) -> dict:
    return {key: value for key, value in rrsets.items() if key != ("@", "SOA")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=zones(strict=False), wanted=edits())
def test_edited_text_reads_as_the_intended_rrsets(text, wanted):
    edited = edit_zone_text(text, ZONE, wanted)
    assert without_soa(dnspython_rrsets(edited, ZONE)) == expected_after(text, wanted)
    serial = dnspython_rrsets(edited, ZONE)[("@", "SOA")].values[0].split()[2]
    assert serial == "6"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=zones(strict=True), wanted=edits())
def test_lines_of_other_rrsets_are_untouched(text, wanted):
    edited = edit_zone_text(text, ZONE, wanted)
    untouched = [line for line in text.splitlines()
                 if "serial" not in line and not any(
                     line.startswith(f"{owner}\t") and f"IN {rdtype} " in line
                     for owner, rdtype in wanted)]
    remaining = iter(edited.splitlines())
    assert all(line in remaining for line in untouched)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=zones(strict=False), wanted=edits())
def test_rollback_restores_the_records_exactly(text, wanted):
    edited = edit_zone_text(text, ZONE, wanted)
    restored = edit_zone_text(edited, ZONE, restore(text, wanted))
    assert without_soa(dnspython_rrsets(restored, ZONE)) == without_soa(
        dnspython_rrsets(text, ZONE))
