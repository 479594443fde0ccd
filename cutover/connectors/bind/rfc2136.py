"""Rfc2136Zone: a zone on a real DNS server, read with plain queries (and AXFR, signed with the
TSIG key) and changed with RFC 2136 UPDATE messages signed with TSIG, each carrying
prerequisites so that an RRset changed by someone else since the preview makes the update fail
instead of being overwritten.

    providers:
      lab-bind:
        kind: rfc2136
        server: 127.0.0.1:15353            # host:port, port 53 by default
        tsig_key_file: keys/update.key     # as written by tsig-keygen (BIND syntax)
        nameservers: [127.0.0.1:15353, 127.0.0.1:15354]   # optional; default: the zone's NS
        timeout: 5                         # optional, seconds per exchange

Only `_exchange` talks to the network.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone

from cutover.connectors.base import connector
from cutover.connectors.dns_zone import (
    Edit,
    ServerError,
    View,
    changed_message,
    safety_settings,
)
from cutover.dns_model import (
    RRset,
    absolute_name,
    fqdn,
    parse_value,
    relative_text,
    rrset_from_rdataset,
    same_rrset,
    zone_origin,
    zone_text,
)
from cutover.errors import (
    AuthenticationFailed,
    CapabilityMissing,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    StepFailed,
    WorldChanged,
)
from cutover.parsers.bind_key import KeyFileInvalid, TsigKey, parse_key_file

if TYPE_CHECKING:
    from cutover.workspace import Workspace

DEFAULT_PORT = 53
DEFAULT_TIMEOUT = 5.0
#: Update rcodes that mean "a prerequisite failed": the world is not what the preview saw.
PREREQUISITE_RCODES = frozenset({dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN,
                                 dns.rcode.YXDOMAIN})


@dataclass(frozen=True)
class Address:
    """A server as configured (`label`) and where packets go (`ip`, `port`)."""

    label: str
    ip: str
    port: int

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class Transfer:
    """An AXFR request for `zone` (the other kind of exchange besides a single message)."""

    zone: str


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """`host`, `host:port`, `[v6]:port` -> Address, resolving a host name to an IP."""
    text = str(text).strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else port
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ConfigInvalid(f"invalid server address {text!r}: the port must be a number")
        port = int(port_text)
    try:
        ip = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except (socket.gaierror, UnicodeError):
        raise ConnectionFailed(f"cannot resolve DNS server host {host!r}") from None
    label = text if ":" in text else f"{text}:{port}"
    return Address(label, ip, port)


@connector("rfc2136", role="dns-zone")
class Rfc2136Zone:
    def __init__(self, server: str, key: TsigKey, nameservers: list[str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, safety: dict[str, Any] | None = None):
        self.server_text = server
        self.key = key
        self.nameserver_texts = nameservers
        self.timeout = timeout
        self.safety = safety or {}
        self.keyring = dns.tsigkeyring.from_text({key.name: (key.algorithm, key.secret)})

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> Rfc2136Zone:
        for required in ("server", "tsig_key_file"):
            if not config.get(required):
                raise ConfigInvalid(f"cutover.yaml: an rfc2136 provider needs {required}")
        key_path = workspace.path(config["tsig_key_file"])
        try:
            key = parse_key_file(key_path.read_text())
        except OSError as exc:
            raise ConfigInvalid(f"cannot read TSIG key file {key_path}: {exc.strerror}") from None
        except KeyFileInvalid as exc:
            raise ConfigInvalid(f"{key_path}: {exc}") from None
        nameservers = config.get("nameservers")
        if nameservers is not None and not isinstance(nameservers, list):
            raise ConfigInvalid("cutover.yaml: rfc2136 nameservers must be a list of host:port")
        return cls(str(config["server"]), key, nameservers,
                   float(config.get("timeout", DEFAULT_TIMEOUT)), safety_settings(config))

    @property
    def server(self) -> Address:
        return parse_address(self.server_text)

    # --- the network seam ------------------------------------------------------------------
    def _exchange(self, where: Address, request: dns.message.Message | Transfer) -> Any:
        """Send one message over TCP (or run one AXFR) and return the response (or zone).
        Every transport and TSIG failure becomes one CutoverError naming the server."""
        try:
            if isinstance(request, Transfer):
                return dns.zone.from_xfr(dns.query.xfr(
                    where.ip, request.zone, port=where.port, keyring=self.keyring,
                    keyname=self.key.name, lifetime=self.timeout), relativize=True)
            return dns.query.tcp(request, where.ip, port=where.port, timeout=self.timeout)
        except dns.tsig.PeerBadKey:
            raise AuthenticationFailed(f"{where} does not know TSIG key {self.key.name}") from None
        except (dns.tsig.PeerError, dns.tsig.BadSignature):
            raise AuthenticationFailed(f"{where} rejected the signature of TSIG key "
                                       f"{self.key.name} (wrong secret?)") from None
        except dns.xfr.TransferError as exc:
            raise CapabilityMissing(f"{where} refused a zone transfer of {request.zone} to key "
                                    f"{self.key.name}: {dns.rcode.to_text(exc.rcode)}") from None
        except dns.exception.Timeout:
            raise ConnectionFailed(f"DNS server {where} did not answer (timed out)") from None
        except ConnectionRefusedError:
            raise ConnectionFailed(f"DNS server {where} refused the connection") from None
        except (OSError, EOFError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ConnectionFailed(f"DNS server {where}: {reason}") from None
        except dns.exception.DNSException as exc:
            raise ConnectionFailed(f"DNS server {where}: {exc}") from None

    # --- reading ---------------------------------------------------------------------------
    def _query(self, where: Address, qname: dns.name.Name, rdtype: str) -> dns.message.Message:
        query = dns.message.make_query(qname, rdtype)
        query.flags &= ~dns.flags.RD  # ask the authority, never a cache
        return self._exchange(where, query)

    def _authoritative(self, where: Address, zone: str, rdtype: str, name: str
                       ) -> dns.message.Message:
        response = self._query(where, absolute_name(zone, name), rdtype)
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not (
                response.flags & dns.flags.AA):
            raise NotFound(f"{where} does not serve zone {zone_text(zone)} "
                           f"({dns.rcode.to_text(rcode)})")
        return response

    def _rrset_at(self, where: Address, zone: str, name: str, rdtype: str) -> RRset | None:
        response = self._authoritative(where, zone, rdtype, name)
        owner = absolute_name(zone, name)
        for rrset in response.answer:
            if rrset.name == owner and rrset.rdtype == dns.rdatatype.from_text(rdtype):
                return rrset_from_rdataset(zone, name, rrset)
        return None

    def read_rrset(self, zone: str, name: str, rdtype: str) -> RRset | None:
        return self._rrset_at(self.server, zone, name, rdtype)

    def read_zone(self, zone: str) -> dict[tuple[str, str], RRset]:
        where = self.server
        self._authoritative(where, zone, "SOA", "@")
        loaded = self._exchange(where, Transfer(zone_text(zone)))
        origin = zone_origin(zone)
        found: dict[tuple[str, str], RRset] = {}
        for name, rdataset in loaded.iterate_rdatasets():
            rrset = rrset_from_rdataset(zone, relative_text(origin, name.derelativize(origin)),
                                        rdataset)
            found[rrset.key] = rrset
        return found

    def zone_for(self, name: str) -> str | None:
        """Ask the server which of its zones holds `name` (the SOA owner it answers with)."""
        response = self._query(self.server, zone_origin(name), "SOA")
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not (
                response.flags & dns.flags.AA):
            return None
        for section in (response.answer, response.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return rrset.name.to_text(omit_final_dot=True).lower()
        return None

    def serial(self, zone: str) -> int:
        soa = self._rrset_at(self.server, zone, "@", "SOA")
        if soa is None:
            raise NotFound(f"{self.server} serves no SOA for {zone_text(zone)}")
        return int(soa.values[0].split()[2])

    # --- every authoritative server -------------------------------------------------------
    def nameservers(self, zone: str) -> list[Address]:
        if self.nameserver_texts:
            return [parse_address(text) for text in self.nameserver_texts]
        ns = self.read_rrset(zone, "@", "NS")
        if ns is None:
            raise NotFound(f"zone {zone_text(zone)} has no NS records to verify against")
        return [parse_address(value.rstrip(".")) for value in ns.values]

    def views(self, zone: str, name: str, rdtype: str) -> dict[str, View]:
        found: dict[str, View] = {}
        for where in self.nameservers(zone):
            try:
                found[str(where)] = self._rrset_at(where, zone, name, rdtype)
            except (ConnectionFailed, NotFound, AuthenticationFailed) as exc:
                found[str(where)] = ServerError(str(exc))
        return found

    def serials(self, zone: str) -> dict[str, int | ServerError]:
        found: dict[str, int | ServerError] = {}
        for where in self.nameservers(zone):
            try:
                soa = self._rrset_at(where, zone, "@", "SOA")
                found[str(where)] = (int(soa.values[0].split()[2]) if soa else
                                     ServerError(f"{where} serves no SOA"))
            except (ConnectionFailed, NotFound, AuthenticationFailed) as exc:
                found[str(where)] = ServerError(str(exc))
        return found

    # --- writing ---------------------------------------------------------------------------
    def update(self, zone: str, edits: list[Edit]) -> None:
        where = self.server
        # RFC 2136 prerequisites ignore TTLs; compare them first so a TTL changed by someone
        # else is not overwritten either. The prerequisites then close the race window.
        for edit in edits:
            current = self._rrset_at(where, zone, edit.name, edit.type)
            if not same_rrset(current, edit.before):
                raise WorldChanged(changed_message(zone, edit, current, str(where)))
        response = self._exchange(where, self._update_message(zone, edits))
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode in PREREQUISITE_RCODES:
            names = ", ".join(f"{e.type} {fqdn(zone, e.name)}" for e in edits)
            raise WorldChanged(f"{where} refused the update of {names}: a prerequisite failed "
                               f"({dns.rcode.to_text(rcode)}); someone changed it since the "
                               "preview; nothing was written")
        if rcode in (dns.rcode.NOTAUTH, dns.rcode.NOTZONE):
            raise NotFound(f"{where} is not the primary for zone {zone_text(zone)} "
                           f"({dns.rcode.to_text(rcode)})")
        if rcode == dns.rcode.REFUSED:
            raise AuthenticationFailed(f"{where} refused the update: TSIG key {self.key.name} "
                                       f"may not update zone {zone_text(zone)}")
        raise StepFailed(f"{where} rejected the update of {zone_text(zone)}: "
                         f"{dns.rcode.to_text(rcode)}")

    def _update_message(self, zone: str, edits: list[Edit]) -> dns.update.UpdateMessage:
        message = dns.update.UpdateMessage(zone_origin(zone), keyring=self.keyring,
                                           keyname=self.key.name)
        for edit in edits:
            owner = absolute_name(zone, edit.name)
            if edit.before is None:
                message.absent(owner, edit.type)
            else:
                message.present(owner, _rdataset(zone, edit.type, edit.before, ttl=0))
        for edit in edits:
            owner = absolute_name(zone, edit.name)
            if edit.after is None:
                message.delete(owner, edit.type)
            else:
                message.replace(owner, _rdataset(zone, edit.type, edit.after))
        return message


def _rdataset(zone: str, rdtype: str, rrset: RRset, ttl: int | None = None
              ) -> dns.rdataset.Rdataset:
    """The RRset as dnspython data; prerequisites carry TTL 0 (RFC 2136 section 2.4.2)."""
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    for value in rrset.values:
        rdataset.add(parse_value(zone, rdtype, value), rrset.ttl if ttl is None else ttl)
    return rdataset

