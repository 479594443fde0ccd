from __future__ import annotations

import pytest

from cutover.dns_model import (
    RecordInvalid,
    RRset,
    canonical_values,
    fqdn,
    relative_name,
    same_rrset,
)


@pytest.mark.parametrize(("name", "relative"), [
    ("@", "@"), ("", "@"), ("example.org.", "@"), ("WWW", "www"),
    ("www.example.org.", "www"), ("_dmarc", "_dmarc"), ("a.b", "a.b"),
])
def test_names_are_relative_to_the_zone(name, relative):
    assert relative_name("example.org", name) == relative


def test_absolute_name_outside_the_zone_is_rejected():
    with pytest.raises(RecordInvalid, match="not inside zone example.org"):
        relative_name("example.org", "www.example.net.")


def test_values_become_canonical_absolute_sorted_and_unique():
    assert canonical_values("example.org", "MX", ["20 MX2", "10 mx1.example.org.", "10 mx1"]) \
        == ("10 mx1.example.org.", "20 mx2.example.org.")


def test_txt_case_is_kept_and_quoting_required_with_spaces():
    assert canonical_values("example.org", "TXT", ['"V=spf1 -all"']) == ('"V=spf1 -all"',)
    assert canonical_values("example.org", "TXT", ["token=AbC"]) == ('"token=AbC"',)
    with pytest.raises(RecordInvalid, match="must be quoted"):
        canonical_values("example.org", "TXT", ["v=spf1 -all"])


def test_same_rrset_compares_ttl_and_values():
    mx = RRset("@", "MX", 300, ("10 mx1.example.org.",))
    assert same_rrset(mx, RRset("@", "MX", 300, ("10 mx1.example.org.",)))
    assert not same_rrset(mx, RRset("@", "MX", 3600, ("10 mx1.example.org.",)))
    assert not same_rrset(mx, None) and same_rrset(None, None)


def test_rrset_json_round_trip():
    mx = RRset("@", "MX", 300, ("10 mx1.example.org.",))
    assert RRset.from_json(mx.to_json()) == mx
    assert fqdn("example.org", "@") == "example.org"
