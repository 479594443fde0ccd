from __future__ import annotations

import pytest

from cutover.parsers.mail_records import (
    RecordSyntaxError,
    parse_dkim,
    parse_dmarc,
    parse_spf,
)


def test_spf_terms_and_lookup_terms():
    record = parse_spf("v=spf1 ip4:192.0.2.0/24 -a:mail.example.org/24 mx "
                       "include:spf.protection.outlook.com redirect=_spf.example.org ~all")
    assert [t.name for t in record.lookup_terms] == ["a", "mx", "include", "redirect"]
    assert record.terms[1].qualifier == "-" and record.terms[1].target == "mail.example.org"
    assert record.modifiers == {"redirect": "_spf.example.org"}


@pytest.mark.parametrize(("text", "message"), [
    ("v=spf2 -all", "v=spf1"),
    ("v=spf1 include -all", "include needs :domain"),
    ("v=spf1 ip4:2001:db8::1 -all", "not an ip4"),
    ("v=spf1 ip6 -all", "needs an address"),
    ("v=spf1 all:x", "all takes no argument"),
    ("v=spf1 a/99x -all", "invalid CIDR length"),
    ("v=spf1 redirect=a redirect=b", "appears twice"),
    ("v=spf1 spam -all", "unknown term 'spam'"),
])
def test_spf_syntax_errors(text, message):
    with pytest.raises(RecordSyntaxError, match=message):
        parse_spf(text)


def test_dmarc_tags():
    tags = parse_dmarc("v=DMARC1; p=quarantine; sp=reject; pct=50; "
                       "rua=mailto:a@example.org,mailto:b@example.net!10m; adkim=s")
    assert (tags["p"], tags["sp"], tags["pct"]) == ("quarantine", "reject", "50")


@pytest.mark.parametrize(("text", "message"), [
    ("p=reject; v=DMARC1", "must start with v=DMARC1"),
    ("v=DMARC1; p=reject; pct=101", "pct=101"),
    ("v=DMARC1; p=reject; aspf=x", "aspf=x"),
    ("v=DMARC1; p=reject; p=none", "appears twice"),
    ("v=DMARC1; reject", "not tag=value"),
])
def test_dmarc_syntax_errors(text, message):
    with pytest.raises(RecordSyntaxError, match=message):
        parse_dmarc(text)


def test_dkim_key_with_spaces_in_p_and_default_type():
    key = parse_dkim("v=DKIM1; p=AAAA BBBB")
    assert (key.key_type, key.public_key) == ("rsa", bytes.fromhex("000000041041"))


def test_dkim_without_p_is_an_error():
    with pytest.raises(RecordSyntaxError, match="p= public key is missing"):
        parse_dkim("v=DKIM1; k=rsa")
