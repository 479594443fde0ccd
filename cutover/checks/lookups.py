"""Where the mail-DNS linter looks records up (the `Lookup` of cutover.checks.mail_dns).

- ResolverLookup: live DNS, through the system resolver or one server (`--server HOST:PORT`).
  A name the server will not answer for (REFUSED, SERVFAIL: an authoritative server asked
  about another zone) is unknowable (None), as is a CNAME chain leaving the server's zones.
- ProviderLookup: the zones of a cutover.yaml provider (a zone-file directory, or the zones an
  RFC 2136 primary serves, read by zone transfer). Names inside one of its zones are answered
  from the zone data, CNAMEs followed inside the zones; names outside every zone of the
  provider are unknowable (None) and so never reported as errors, only as "not checked".
"""

from __future__ import annotations

import socket
from typing import Any

import dns.exception
import dns.flags
import dns.name
import dns.rdatatype
import dns.resolver

from cutover.dns_model import RRset, parse_value, relative_name
from cutover.errors import ConnectionFailed, UsageError

MAX_CNAME_HOPS = 8  # a CNAME chain longer than this is a loop, or as good as one

Values = list[str] | None


def record_values(rdtype: str, rdatas: Any) -> list[str]:
    """TXT as the joined string of each record; others as absolute presentation text."""
    if rdtype == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in rdatas]
    return [r.to_text().lower() for r in rdatas]


class ResolverLookup:
    def __init__(self, server: str | None = None, timeout: float = 5.0):
        self.label = server or "the system resolver"
        self.address = None
        if server is None:
            self.resolver = dns.resolver.Resolver()
        else:
            from cutover.connectors.bind.rfc2136 import parse_address

            address = parse_address(server)
            self.address = address
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [address.ip]
            self.resolver.port = address.port
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout

    def __call__(self, name: str, rdtype: str) -> Values:
        try:
            answer = self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.resolver.NoNameservers, dns.resolver.YXDOMAIN):
            return None
        except dns.exception.Timeout:
            raise ConnectionFailed(f"DNS server {self.label} did not answer (timed out)") from None
        except dns.exception.DNSException as exc:
            raise UsageError(f"cannot look up {name} {rdtype}: {exc}") from None
        if answer.rrset is not None:
            return record_values(rdtype, answer.rrset)
        if rdtype != "CNAME" and any(r.rdtype == dns.rdatatype.CNAME
                                     for r in answer.response.answer):
            return None  # the CNAME chain leaves what this server knows
        return []

    def exists(self, name: str) -> bool | None:
        """False when the name does not exist (NXDOMAIN), None when the server will not say."""
        self._probe()
        try:
            self.resolver.resolve(name, "SOA", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.resolver.NoNameservers:
            return None
        except dns.exception.Timeout:
            raise ConnectionFailed(f"DNS server {self.label} did not answer (timed out)"
                                   ) from None
        return True


    def _probe(self) -> None:
        """Fail fast, naming the server, when nothing listens (UDP would only time out)."""
        if self.address is None:
            return
        try:
            socket.create_connection((self.address.ip, self.address.port),
                                     timeout=self.resolver.timeout).close()
        except ConnectionRefusedError:
            raise ConnectionFailed(f"DNS server {self.label} refused the connection") from None
        except OSError as exc:
            raise ConnectionFailed(f"DNS server {self.label}: {exc.strerror or exc}") from None


class ProviderLookup:
    def __init__(self, provider: Any):
        self.provider = provider
        self._zones: dict[str, dict[tuple[str, str], RRset]] = {}

    def _zone_of(self, name: str) -> str | None:
        zone = self.provider.zone_for(name)
        if zone is not None and zone not in self._zones:
            self._zones[zone] = self.provider.read_zone(zone)
        return zone

    def __call__(self, name: str, rdtype: str) -> Values:
        name = name.rstrip(".").lower()
        for _ in range(MAX_CNAME_HOPS):
            zone = self._zone_of(name)
            if zone is None:
                return None
            records = self._zones[zone]
            relative = relative_name(zone, name + ".")
            rrset = records.get((relative, rdtype))
            if rrset is not None:
                return record_values(rdtype, [parse_value(zone, rdtype, v)
                                              for v in rrset.values])
            cname = records.get((relative, "CNAME"))
            if cname is None or rdtype == "CNAME":
                return []
            name = cname.values[0].rstrip(".").lower()
        return None

    def exists(self, name: str) -> bool | None:
        name = name.rstrip(".").lower()
        zone = self._zone_of(name)
        if zone is None:
            return None
        relative = relative_name(zone, name + ".")
        return relative == "@" or any(key[0] == relative or key[0].endswith("." + relative)
                                      for key in self._zones[zone])



def lookup_for(workspace: Any, server: str | None = None, provider: str | None = None
               ) -> tuple[ResolverLookup | ProviderLookup, str]:
    """The lookup to lint through, and a label saying where it looks."""
    if server and provider:
        raise UsageError("give --server or --provider, not both")
    if provider:
        return ProviderLookup(workspace.connector("providers", provider)), f"provider {provider}"
    return ResolverLookup(server), server or "the system resolver"
