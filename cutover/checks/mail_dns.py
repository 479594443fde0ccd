"""Lint the mail DNS of a domain: MX, SPF, DMARC, DKIM, autodiscover.

The checks are pure functions of a `Lookup`: `lookup(name, type)` returns the record values
(TXT as the joined string of each record, other types in presentation syntax, names absolute),
`[]` when the name or type does not exist, or `None` when the answer cannot be known from where
we look (a name outside every zone a provider holds, a server that refuses to answer for it).
An unknowable answer is never an error: it is reported as "not checked" (severity info).

Severities: "error" (mail is lost, rejected or spoofable: the check fails, exit 1), "warning"
(worth fixing, does not fail), "info" (what was not checked, and why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from cutover.checks.lookups import lookup_for
from cutover.errors import CutoverError, NotFound
from cutover.parsers.mail_records import (
    SPF_LOOKUP_LIMIT,
    RecordSyntaxError,
    dkim_key_bits,
    is_dmarc,
    is_spf,
    parse_dkim,
    parse_dmarc,
    parse_spf,
)

Lookup = Callable[[str, str], "list[str] | None"]
Severity = Literal["error", "warning", "info"]

#: Selectors tried when none are named (Microsoft 365, Google, common MTA defaults).
DEFAULT_DKIM_SELECTORS = ("selector1", "selector2", "default", "dkim", "google", "mail", "s1",
                          "s2", "k1")


@dataclass(frozen=True)
class LintFinding:
    check: str          # mx, spf, dmarc, dkim, autodiscover
    name: str           # the DNS name concerned
    message: str
    severity: Severity = "error"

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def lint_mail_dns(domain: str, lookup: Lookup, dkim_selectors: Iterable[str] = (),
                  default_selectors: Iterable[str] = DEFAULT_DKIM_SELECTORS
                  ) -> list[LintFinding]:
    domain = domain.strip().rstrip(".").lower()
    return [*check_mx(domain, lookup), *check_spf(domain, lookup), *check_dmarc(domain, lookup),
            *check_dkim(domain, lookup, list(dkim_selectors), list(default_selectors)),
            *check_autodiscover(domain, lookup)]


def has_errors(findings: Iterable[LintFinding]) -> bool:
    return any(f.severity == "error" for f in findings)


def _bare(name: str) -> str:
    return name.rstrip(".").lower()


def resolves(name: str, lookup: Lookup) -> bool | None:
    """Does `name` have an address? None when that cannot be known from here."""
    answers = [lookup(name, "A"), lookup(name, "AAAA")]
    if any(answers):
        return True
    return None if None in answers else False


# --- MX ---------------------------------------------------------------------------------------

def check_mx(domain: str, lookup: Lookup) -> list[LintFinding]:
    mx = lookup(domain, "MX")
    if mx is None:
        return [LintFinding("mx", domain, "MX not checked: the domain is not visible from "
                            "here", "info")]
    if not mx:
        return [LintFinding("mx", domain, "no MX record: mail goes to the A record, or bounces")]
    targets = [value.split()[1] for value in mx if len(value.split()) == 2]
    if targets == ["."]:
        return [LintFinding("mx", domain, "null MX (0 .): the domain accepts no mail",
                            "warning")]
    findings = []
    for target in targets:
        findings += _check_host("mx", f"MX target {_bare(target)}", target, lookup)
    return findings


def _check_host(check: str, label: str, target: str, lookup: Lookup) -> list[LintFinding]:
    name = _bare(target)
    found = resolves(name, lookup)
    if found is None:
        return [LintFinding(check, name, f"{label} not checked (outside the zones visible "
                            "from here)", "info")]
    if not found:
        return [LintFinding(check, name, f"{label} does not resolve (no A or AAAA)")]
    if check == "mx" and lookup(name, "CNAME"):
        return [LintFinding(check, name, f"{label} is a CNAME; MX must name a host "
                            "(RFC 2181 10.3)", "warning")]
    return []


# --- SPF --------------------------------------------------------------------------------------

def spf_records(values: list[str]) -> list[str]:
    return [value for value in values if is_spf(value)]


def check_spf(domain: str, lookup: Lookup) -> list[LintFinding]:
    txt = lookup(domain, "TXT")
    if txt is None:
        return [LintFinding("spf", domain, "SPF not checked: the domain is not visible from "
                            "here", "info")]
    records = spf_records(txt)
    if not records:
        return [LintFinding("spf", domain, "no SPF record (v=spf1)")]
    if len(records) > 1:
        return [LintFinding("spf", domain, f"{len(records)} SPF records: receivers treat this "
                            "as a permanent error; publish exactly one")]
    try:
        record = parse_spf(records[0])
    except RecordSyntaxError as exc:
        return [LintFinding("spf", domain, f"SPF syntax error: {exc}")]
    findings = _spf_policy_findings(domain, record)
    count = _SpfCounter(lookup)
    count.walk(domain, record)
    findings += [LintFinding("spf", domain, problem) for problem in count.problems]
    if count.lookups > SPF_LOOKUP_LIMIT:
        findings.append(LintFinding("spf", domain, f"SPF needs {count.lookups} DNS lookups "
                                    f"(limit {SPF_LOOKUP_LIMIT}): receivers fail it"))
    elif count.unchecked:
        findings.append(LintFinding("spf", domain, f"SPF needs at least {count.lookups} DNS "
                                    f"lookup(s); not followed: {', '.join(count.unchecked)}",
                                    "info"))
    return findings


def _spf_policy_findings(domain: str, record) -> list[LintFinding]:
    findings = []
    names = [t.name for t in record.terms]
    all_terms = [t for t in record.terms if t.name == "all"]
    if any(t.qualifier in ("", "+") for t in all_terms):
        findings.append(LintFinding("spf", domain, "+all lets every host on the internet send "
                                    "as this domain"))
    if all_terms and names.index("all") != len(names) - 1:
        findings.append(LintFinding("spf", domain, "terms after 'all' are never evaluated",
                                    "warning"))
    if not all_terms and "redirect" not in record.modifiers:
        findings.append(LintFinding("spf", domain, "no 'all' term: mail from other hosts "
                                    "gets a neutral result", "warning"))
    if "ptr" in names:
        findings.append(LintFinding("spf", domain, "the ptr mechanism is deprecated "
                                    "(RFC 7208 5.5)", "warning"))
    return findings


class _SpfCounter:
    """Counts the DNS lookups an SPF evaluation costs, following include and redirect."""

    def __init__(self, lookup: Lookup):
        self.lookup = lookup
        self.lookups = 0
        self.problems: list[str] = []
        self.unchecked: list[str] = []
        self._seen: set[str] = set()

    def walk(self, domain: str, record) -> None:
        self._seen.add(domain)
        for term in record.lookup_terms:
            self.lookups += 1
            if term.name not in ("include", "redirect"):
                continue
            if term.name == "redirect" and any(t.name == "all" for t in record.terms):
                continue  # redirect is ignored when an all mechanism is present
            self._follow(term.target, term.has_macro)

    def _follow(self, target: str, has_macro: bool) -> None:
        if has_macro:
            self.unchecked.append(f"{target} (macro)")
            return
        if target in self._seen:
            self.problems.append(f"SPF include loop through {target}")
            return
        txt = self.lookup(target, "TXT")
        if txt is None:
            self.unchecked.append(target)
            return
        records = spf_records(txt)
        if len(records) != 1:
            self.problems.append(f"include:{target} has {len(records) or 'no'} SPF record"
                                 f"{'s' if len(records) > 1 else ''}: a permanent error")
            return
        try:
            self.walk(target, parse_spf(records[0]))
        except RecordSyntaxError as exc:
            self.problems.append(f"included SPF of {target} is invalid: {exc}")


# --- DMARC ------------------------------------------------------------------------------------

def check_dmarc(domain: str, lookup: Lookup) -> list[LintFinding]:
    name = f"_dmarc.{domain}"
    txt = lookup(name, "TXT")
    if txt is None:
        return [LintFinding("dmarc", name, "DMARC not checked: not visible from here", "info")]
    records = [value for value in txt if is_dmarc(value)]
    if not records:
        return _inherited_dmarc(domain, lookup) or [
            LintFinding("dmarc", name, "no DMARC record (v=DMARC1)")]
    if len(records) > 1:
        return [LintFinding("dmarc", name, f"{len(records)} DMARC records: receivers ignore "
                            "them all")]
    try:
        tags = parse_dmarc(records[0])
    except RecordSyntaxError as exc:
        return [LintFinding("dmarc", name, f"DMARC syntax error: {exc}")]
    if tags["p"].lower() == "none":
        return [LintFinding("dmarc", name, "p=none only monitors; spoofed mail is delivered",
                            "warning")]
    return []


def _inherited_dmarc(domain: str, lookup: Lookup) -> list[LintFinding]:
    """Receivers fall back to the organisational domain's record (RFC 7489 6.6.3)."""
    labels = domain.split(".")
    for start in range(1, len(labels) - 1):
        parent = ".".join(labels[start:])
        txt = lookup(f"_dmarc.{parent}", "TXT") or []
        records = [value for value in txt if is_dmarc(value)]
        if len(records) == 1:
            try:
                tags = parse_dmarc(records[0])
            except RecordSyntaxError:
                return []
            policy = tags.get("sp", tags["p"])
            return [LintFinding("dmarc", f"_dmarc.{domain}", f"no own DMARC record; the policy "
                                f"of _dmarc.{parent} applies (sp/p={policy})", "info")]
    return []


# --- DKIM -------------------------------------------------------------------------------------

def check_dkim(domain: str, lookup: Lookup, selectors: list[str],
               defaults: list[str]) -> list[LintFinding]:
    findings: list[LintFinding] = []
    published = 0
    for selector in dict.fromkeys([*selectors, *defaults]):
        named = selector in selectors
        name = f"{selector}._domainkey.{domain}"
        txt = lookup(name, "TXT")
        if txt is None:
            if named:
                findings.append(LintFinding("dkim", name, "DKIM key not checked (published "
                                            "outside the zones visible from here)", "info"))
                published += 1
            continue
        keys = [value for value in txt if "p=" in value]
        if not keys:
            if named:
                findings.append(LintFinding("dkim", name, f"selector {selector} publishes no "
                                            "DKIM key"))
            continue
        published += 1
        findings += _check_dkim_key(name, keys)
    if not selectors and not published:
        findings.append(LintFinding("dkim", domain, "no DKIM key under the usual selectors "
                                    f"({', '.join(defaults)}); name yours with "
                                    "--dkim-selector", "warning"))
    return findings


def _check_dkim_key(name: str, keys: list[str]) -> list[LintFinding]:
    if len(keys) > 1:
        return [LintFinding("dkim", name, f"{len(keys)} DKIM key records: verification fails")]
    try:
        key = parse_dkim(keys[0])
        if key.revoked:
            return [LintFinding("dkim", name, "the key is revoked (empty p=)", "warning")]
        bits = dkim_key_bits(key)
    except RecordSyntaxError as exc:
        return [LintFinding("dkim", name, f"invalid DKIM key: {exc}")]
    if key.key_type == "rsa" and bits < 1024:
        return [LintFinding("dkim", name, f"RSA key of {bits} bits: receivers reject keys "
                            "under 1024 bits")]
    if key.key_type == "rsa" and bits < 2048:
        return [LintFinding("dkim", name, f"RSA key of {bits} bits; use 2048", "warning")]
    return []


# --- autodiscover -----------------------------------------------------------------------------

def check_autodiscover(domain: str, lookup: Lookup) -> list[LintFinding]:
    host, srv_name = f"autodiscover.{domain}", f"_autodiscover._tcp.{domain}"
    cname, srv = lookup(host, "CNAME"), lookup(srv_name, "SRV")
    address = resolves(host, lookup)
    if cname is None and srv is None and address is None:
        return [LintFinding("autodiscover", host, "autodiscover not checked: not visible from "
                            "here", "info")]
    findings: list[LintFinding] = []
    for target in cname or []:
        findings += _check_host("autodiscover", f"autodiscover CNAME target {_bare(target)}",
                                target, lookup)
    for value in srv or []:
        parts = value.split()
        if len(parts) == 4:
            findings += _check_host("autodiscover", f"autodiscover SRV target "
                                    f"{_bare(parts[3])}", parts[3], lookup)
    if not cname and not srv and not address:
        findings.append(LintFinding("autodiscover", host, "no autodiscover record (CNAME, A or "
                                    "_autodiscover._tcp SRV): Outlook cannot find the mailbox "
                                    "server", "warning"))
    return findings


class MailDnsBroken(CutoverError):
    """`cutover dns check` found errors in a domain's mail DNS (exit 1)."""


def check_domain(workspace, domain: str, server: str | None = None,
                 provider: str | None = None, dkim_selectors: Iterable[str] = ()
                 ) -> tuple[list[LintFinding], str]:
    """Lint `domain` through a server, a provider or the system resolver: (findings, source).
    A domain that does not exist, or that the source will not answer for, is an error (exit 2)
    rather than a list of findings."""
    lookup, source = open_lookup(workspace, domain, server, provider)
    return lint_mail_dns(domain.strip().rstrip(".").lower(), lookup, dkim_selectors), source


def open_lookup(workspace, domain: str, server: str | None = None, provider: str | None = None):
    """The lookup for `domain`, once its source has shown it can answer for it (else NotFound,
    ConnectionFailed, AuthenticationFailed...: exit 2)."""
    lookup, source = lookup_for(workspace, server, provider)
    domain = domain.strip().rstrip(".").lower()
    exists = lookup.exists(domain)
    if exists is False:
        raise NotFound(f"{domain} does not exist (NXDOMAIN at {source})")
    if exists is None:
        raise NotFound(f"{source} does not answer for {domain}: not one of its zones")
    return lookup, source
