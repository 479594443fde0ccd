"""`routes check`: what is wrong with the mail flow, found on `MailFacts` before any mail is sent.

Findings: forwarding loops; dead ends (an address that routes nowhere: a retired host, a
recipient nobody has, a relay domain without a connector); paths that cross a spam filter twice
or enter through one of our systems and cross none; forwarding chains longer than two hops; MX
hosts that do not accept their domain.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from cutover.routes.facts import TENANT_ROUTING_SUFFIX, MailFacts
from cutover.routes.trace import (
    LOCAL_DOMAINS,
    Trace,
    classify_host,
    domain_of,
    trace,
    twin_tenant,
)

MAX_FORWARDS = 2
KINDS = ("loop", "dead-end", "no-filter", "filter-twice", "long-chain", "mx-refuses")


@dataclass(frozen=True)
class RouteFinding:
    kind: str  # one of KINDS
    subject: str  # the address or domain
    problem: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def our_domain(facts: MailFacts, domain: str) -> bool:
    if facts.in_our_zones(domain) or domain.endswith(TENANT_ROUTING_SUFFIX):
        return True
    return any(server.accepts(domain) for server in facts.postfix.values())


def known_addresses(facts: MailFacts) -> list[str]:
    """Every address of ours the systems know: mailboxes, aliases, forwarding sources, tenant
    recipients, Sieve accounts."""
    found: set[str] = set()
    for side in ("linux", "onprem", "cloud"):
        found |= facts.mailboxes_on(side) or set()
    for server in facts.postfix.values():
        found |= {key for key in server.aliases if "@" in key and not key.startswith("@")}
    for system in facts.forwarding.values():
        found |= set(system.forwards)
    for accounts in facts.sieve.values():
        found |= set(accounts)
    tenant = facts.tenant or twin_tenant(facts)
    found |= set(tenant.recipients)
    return sorted(a for a in found if "@" in a and domain_of(a) not in LOCAL_DOMAINS
                  and our_domain(facts, domain_of(a)))


def trace_findings(facts: MailFacts, path: Trace) -> list[RouteFinding]:
    address = path.address
    findings = []
    if path.loop:
        findings.append(RouteFinding("loop", address, path.reason or "forwarding loop"))
    elif path.ends.side == "nowhere":
        findings.append(RouteFinding("dead-end", address, path.reason or "routes nowhere"))
    twice = [(name, count) for name, count in Counter(path.filters).items() if count > 1]
    if twice:
        name, count = twice[0]
        findings.append(RouteFinding("filter-twice", address,
                                     f"crosses the spam filter {name} {count} times"))
    # what enters or ends on a system we model must meet a filter there; the on-premises
    # Exchange's own filtering cannot be seen, so a path that stays on it is not judged
    ours = path.entry in ("linux", "cloud") or path.ends.side in ("linux", "cloud", "pipeline")
    if not path.filters and ours and path.ends.side != "nowhere":
        findings.append(RouteFinding("no-filter", address,
                                     f"enters through {path.entry or 'nowhere'} and reaches "
                                     f"{path.ends.describe()} without crossing a spam filter"))
    if path.forwards > MAX_FORWARDS:
        findings.append(RouteFinding("long-chain", address,
                                     f"forwarded {path.forwards} times (more than "
                                     f"{MAX_FORWARDS}): {path.summary()}"))
    return findings


def mx_findings(facts: MailFacts) -> list[RouteFinding]:
    findings = []
    for domain, mx in sorted(facts.mx.items()):
        for _, host in mx:
            side, system = classify_host(facts, host)
            if side == "linux" and not facts.postfix[system].accepts(domain):
                findings.append(RouteFinding("mx-refuses", domain,
                                             f"MX {host} ({system}) does not accept {domain}: "
                                             "not in its relay_domains or virtual_*_domains"))
            elif side == "cloud" and facts.tenant and facts.tenant.authoritative_source and \
                    domain not in facts.tenant.accepted_domains:
                findings.append(RouteFinding("mx-refuses", domain,
                                             f"MX {host} is Exchange Online, but {domain} is "
                                             "not an accepted domain of the tenant"))
            elif side == "retired":
                findings.append(RouteFinding("mx-refuses", domain,
                                             f"MX {host} is retired ({system})"))
    return findings


def check(facts: MailFacts, addresses: list[str] | None = None) -> list[RouteFinding]:
    """Every finding, MX first, then per address in address order."""
    findings = mx_findings(facts)
    for address in addresses if addresses is not None else known_addresses(facts):
        findings.extend(trace_findings(facts, trace(facts, address)))
    return findings
