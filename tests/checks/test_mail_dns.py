"""The mail-DNS linter on crafted zones (read through the zone-file provider) and on records
given directly."""

from __future__ import annotations

import base64
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from cutover.checks.lookups import ProviderLookup
from cutover.checks.mail_dns import has_errors, lint_mail_dns
from cutover.connectors.bind.zonefile import ZoneFile

HEADER = """$TTL 3600
@ SOA ns1 hostmaster 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
"""


@cache
def rsa_key(bits: int) -> str:
    if bits < 1024:  # cryptography will not generate weak keys; any odd modulus loads
        key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0xABCDEF).public_key()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def dkim_txt(text: str) -> str:
    """A DKIM TXT value split into 255-byte strings, as zone files hold long keys."""
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))


def clean_records() -> dict[str, str]:
    return {
        "mx": "@ MX 10 mx1\nmx1 A 192.0.2.10",
        "spf": '@ TXT "v=spf1 mx include:_spf.example.org -all"\n'
               '_spf TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"',
        "dmarc": '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"',
        "dkim": f"selector1._domainkey TXT {dkim_txt('v=DKIM1; k=rsa; p=' + rsa_key(2048))}",
        "autodiscover": "autodiscover CNAME mx1",
    }


def lint(tmp_path, domain="example.org", selectors=(), **overrides):
    records = {**clean_records(), **overrides}
    (tmp_path / "zones").mkdir(exist_ok=True)
    (tmp_path / "zones" / "example.org").write_text(HEADER + "\n".join(records.values()) + "\n")
    return lint_mail_dns(domain, ProviderLookup(ZoneFile(tmp_path / "zones")), selectors)


def summary(findings) -> list[tuple[str, str, str]]:
    return [(f.severity, f.check, f.message) for f in findings]


def test_a_clean_domain_has_no_findings(tmp_path):
    assert lint(tmp_path) == []


CASES = {
    "no MX": ({"mx": "mx1 A 192.0.2.10"}, "error", "mx", "no MX record"),
    "MX target without address": ({"mx": "@ MX 10 mx9"}, "error", "mx",
                                  "MX target mx9.example.org does not resolve"),
    "MX target is a CNAME": ({"mx": "@ MX 10 mail\nmail CNAME mx1\nmx1 A 192.0.2.10"},
                             "warning", "mx", "is a CNAME"),
    "null MX": ({"mx": "@ MX 0 .\nmx1 A 192.0.2.10"}, "warning", "mx", "null MX"),
    "MX outside every zone": ({"mx": "@ MX 0 example-org.mail.protection.outlook.com.\n"
                                     "mx1 A 192.0.2.10"}, "info",
                              "mx", "not checked"),
    "no SPF": ({"spf": '@ TXT "google-site-verification=abc"'}, "error", "spf",
               "no SPF record"),
    "two SPF records": ({"spf": '@ TXT "v=spf1 mx -all"\n@ TXT "v=spf1 a -all"'}, "error",
                        "spf", "2 SPF records"),
    "SPF syntax": ({"spf": '@ TXT "v=spf1 mx foo:bar -all"'}, "error", "spf",
                   "SPF syntax error: unknown term 'foo:bar'"),
    "SPF bad ip4": ({"spf": '@ TXT "v=spf1 ip4:300.1.1.1 -all"'}, "error", "spf",
                    "not an ip4 address"),
    "SPF +all": ({"spf": '@ TXT "v=spf1 mx +all"'}, "error", "spf", "+all lets every host"),
    "SPF without all": ({"spf": '@ TXT "v=spf1 mx"'}, "warning", "spf", "no 'all' term"),
    "SPF include without SPF": ({"spf": '@ TXT "v=spf1 include:nothing.example.org -all"'},
                                "error", "spf", "include:nothing.example.org has no SPF"),
    "SPF include loop": ({"spf": '@ TXT "v=spf1 include:a.example.org -all"\n'
                                 'a TXT "v=spf1 include:example.org -all"'},
                         "error", "spf", "include loop"),
    "SPF include outside": ({"spf": '@ TXT "v=spf1 include:spf.protection.outlook.com -all"'},
                            "info", "spf", "not followed: spf.protection.outlook.com"),
    "SPF over 10 lookups": ({"spf": '@ TXT "v=spf1 mx a include:s1.example.org -all"\n' +
                                    's1 TXT "v=spf1 a mx exists:x.example.org '
                                    'include:s2.example.org -all"\n'
                                    's2 TXT "v=spf1 a mx ptr a:h.example.org '
                                    'mx:m.example.org -all"'},
                            "error", "spf", "SPF needs 12 DNS lookups (limit 10)"),
    "no DMARC": ({"dmarc": '_dmarc TXT "hello"'}, "error", "dmarc", "no DMARC record"),
    "DMARC bad policy": ({"dmarc": '_dmarc TXT "v=DMARC1; p=maybe"'}, "error", "dmarc",
                         "p=maybe: expected none, quarantine or reject"),
    "DMARC without policy": ({"dmarc": '_dmarc TXT "v=DMARC1; rua=mailto:a@example.org"'},
                             "error", "dmarc", "p= policy is missing"),
    "DMARC bad rua": ({"dmarc": '_dmarc TXT "v=DMARC1; p=reject; rua=dmarc@example.org"'},
                      "error", "dmarc", "is not a mailto: address"),
    "DMARC p=none": ({"dmarc": '_dmarc TXT "v=DMARC1; p=none"'}, "warning", "dmarc",
                     "p=none only monitors"),
    "two DMARC": ({"dmarc": '_dmarc TXT "v=DMARC1; p=none"\n_dmarc TXT "v=DMARC1; p=reject"'},
                  "error", "dmarc", "2 DMARC records"),
    "DKIM not base64": ({"dkim": 'selector1._domainkey TXT "v=DKIM1; k=rsa; p=@@@@"'},
                        "error", "dkim", "p= is not base64"),
    "DKIM not a key": ({"dkim": 'selector1._domainkey TXT "v=DKIM1; k=rsa; p=AAAA"'},
                       "error", "dkim", "p= is not an RSA public key"),
    "DKIM revoked": ({"dkim": 'selector1._domainkey TXT "v=DKIM1; p="'}, "warning", "dkim",
                     "revoked"),
    "DKIM unknown type": ({"dkim": 'selector1._domainkey TXT "v=DKIM1; k=dsa; p=AAAA"'},
                          "error", "dkim", "k=dsa"),
    "no DKIM key at all": ({"dkim": ""}, "warning", "dkim", "no DKIM key under the usual"),
    "no autodiscover": ({"autodiscover": ""}, "warning", "autodiscover",
                        "no autodiscover record"),
    "autodiscover CNAME to nothing": ({"autodiscover": "autodiscover CNAME gone"}, "error",
                                      "autodiscover", "target gone.example.org does not resolve"),
    "autodiscover SRV to nothing": ({"autodiscover": "_autodiscover._tcp SRV 0 0 443 gone"},
                                    "error", "autodiscover", "SRV target gone.example.org"),
}


@pytest.mark.parametrize(("overrides", "severity", "check", "message"), CASES.values(),
                         ids=CASES.keys())
def test_finding_on_crafted_zone(tmp_path, overrides, severity, check, message):
    findings = lint(tmp_path, **overrides)
    assert [f for f in findings if f.check == check and f.severity == severity and
            message in f.message], summary(findings)
    assert has_errors(findings) == (severity == "error")


def test_small_rsa_key_is_an_error_and_1024_bits_a_warning(tmp_path):
    weak = lint(tmp_path, dkim=f"selector1._domainkey TXT \"v=DKIM1; p={rsa_key(512)}\"")
    assert summary(weak) == [("error", "dkim", "RSA key of 512 bits: receivers reject keys "
                                                "under 1024 bits")]
    short = lint(tmp_path, dkim=f"selector1._domainkey TXT \"v=DKIM1; p={rsa_key(1024)}\"")
    assert summary(short) == [("warning", "dkim", "RSA key of 1024 bits; use 2048")]


def test_ed25519_key_is_valid(tmp_path):
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = base64.b64encode(raw).decode()
    assert lint(tmp_path, dkim=f'k1._domainkey TXT "v=DKIM1; k=ed25519; p={key}"') == []


def test_named_selector_without_key_is_an_error(tmp_path):
    findings = lint(tmp_path, selectors=["s2026"])
    assert summary(findings) == [("error", "dkim",
                                  "selector s2026 publishes no DKIM key")]


def test_named_selector_delegated_outside_is_not_checked(tmp_path):
    findings = lint(tmp_path, selectors=["selector2"], dkim="selector2._domainkey CNAME "
                    "selector2-example-org._domainkey.example.onmicrosoft.com.")
    assert summary(findings) == [("info", "dkim", "DKIM key not checked (published outside "
                                  "the zones visible from here)")]


def test_subdomain_without_own_dmarc_inherits_the_parent_policy(tmp_path):
    verify = ("verify MX 10 mx1\nverify TXT \"v=spf1 mx -all\"\n"
              "autodiscover.verify CNAME mx1")
    findings = lint(tmp_path, domain="verify.example.org", selectors=["selector1"],
                    autodiscover=f"autodiscover CNAME mx1\n{verify}",
                    dkim=clean_records()["dkim"].replace("selector1._domainkey",
                                                         "selector1._domainkey.verify"))
    assert summary(findings) == [("info", "dmarc", "no own DMARC record; the policy of "
                                  "_dmarc.example.org applies (sp/p=reject)")]


def test_lookups_given_directly_need_no_zone():
    records = {("example.org", "MX"): ["10 mx.example.net."], ("mx.example.net", "A"): [],
               ("mx.example.net", "AAAA"): []}

    def lookup(name, rdtype):
        return records.get((name, rdtype), [])

    findings = lint_mail_dns("example.org", lookup, default_selectors=())
    assert ("error", "mx", "MX target mx.example.net does not resolve (no A or AAAA)") in \
        summary(findings)
