"""How mail for each domain travels, read from the workspace's systems (not from state.db).

Per domain: the MX hosts (from the `providers` zones), the spam-filter hop and next hop (from the
`postfix` maps and main.cf content_filter), and the final mail store (`mailstores` Maildirs,
Postfix virtual mailboxes, or Microsoft 365 when the MX says so). Per forwarded address: old
address -> new address, from Postfix virtual alias maps and `forwarding` connectors.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cutover.connectors.postfix.maps import PostfixMapDirectory
from cutover.parsers.postfix_map import parse_domain_list
from cutover.workspace import Workspace

#: Transport names and ports that conventionally lead to a content filter (amavis, spamd...).
FILTER_TRANSPORTS = frozenset({"amavis", "amavisfeed", "smtp-amavis", "lmtp-amavis", "filter",
                               "spamassassin", "spamfilter", "scan", "dfilt", "rspamd"})
FILTER_PORTS = frozenset({"10024", "10025", "10026"})
ALIAS_MAPS = ("virtual", "virtual_alias_maps", "virtual_alias")
DOMAIN_MAPS = ("relay_domains", "virtual_mailbox_domains", "virtual_alias_domains")
MAILBOX_MAPS = ("vmailbox", "virtual_mailbox_maps", "virtual_mailbox")
CLOUD_MX = ".mail.protection.outlook.com"


@dataclass
class DomainRoute:
    domain: str
    mx: list[tuple[int, str]] = field(default_factory=list)
    zone: str | None = None
    postfix: str | None = None
    filter_hop: str | None = None
    next_hop: str | None = None
    mail_store: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["mx"] = [{"preference": p, "host": h} for p, h in self.mx]
        return data


@dataclass(frozen=True)
class ForwardedAddress:
    old: str
    new: str
    via: str


@dataclass
class Routing:
    domains: list[DomainRoute]
    forwards: list[ForwardedAddress]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"domains": [d.to_json() for d in self.domains],
                "forwards": [asdict(f) for f in self.forwards], "notes": self.notes}


def is_filter_hop(transport: str) -> bool:
    name, _, nexthop = transport.partition(":")
    port = nexthop.rpartition(":")[2] if "]" in nexthop or nexthop.count(":") else ""
    return name.lower() in FILTER_TRANSPORTS or port in FILTER_PORTS


def _domain_of(text: str) -> str:
    return text.rpartition("@")[2].lower().strip(".")


def _postfix_servers(workspace: Workspace) -> dict[str, PostfixMapDirectory]:
    servers = {}
    for name in sorted(workspace.section("postfix")):
        server = workspace.connector("postfix", name)
        if isinstance(server, PostfixMapDirectory):
            servers[name] = server
    return servers


def _maildir_mailboxes(workspace: Workspace) -> dict[str, list[str]]:
    """store name -> mailbox addresses, for Maildir stores (`mail/<store>/<address>/`)."""
    stores: dict[str, list[str]] = {}
    for name, config in sorted(workspace.section("mailstores").items()):
        if isinstance(config, dict) and config.get("kind") == "maildir" and config.get("path"):
            root = workspace.path(config["path"])
            stores[name] = sorted(p.name.lower() for p in _subdirectories(root) if "@" in p.name)
    return stores


def _listed_domains(server: PostfixMapDirectory) -> set[str]:
    """Domains in relay_domains-style files, which may be plain lists or maps."""
    return {domain for name in DOMAIN_MAPS
            for domain in parse_domain_list(server.read_source(name) or "")}


def _mailbox_domains(server: PostfixMapDirectory) -> set[str]:
    return {domain for domain in parse_domain_list(server.read_source(
        "virtual_mailbox_domains") or "")}


def _subdirectories(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []


def _known_domains(workspace: Workspace, servers: dict[str, PostfixMapDirectory],
                   stores: dict[str, list[str]]) -> set[str]:
    domains: set[str] = set()
    for name in workspace.section("providers"):
        provider = workspace.connector("providers", name)
        zones = provider.zones() if hasattr(provider, "zones") else []
        for zone in zones:
            domains.add(zone.lower().strip("."))
            for name_, rdtype in provider.read_zone(zone):
                if rdtype == "MX":
                    domains.add(_absolute(name_, zone))
    for server in servers.values():
        domains.update(k.strip(".") for k in server.parsed(server.transport_map).as_dict()
                       if "@" not in k and k != "*")
        domains.update(d.strip(".") for d in _listed_domains(server) if "@" not in d)
        for map_name in ALIAS_MAPS + MAILBOX_MAPS:
            domains.update(_domain_of(k) for k in server.parsed(map_name).as_dict() if "@" in k)
    for addresses in stores.values():
        domains.update(_domain_of(a) for a in addresses)
    return {d for d in domains if d}


def _absolute(name: str, zone: str) -> str:
    zone = zone.lower().strip(".")
    return zone if name in ("@", "") else f"{name.lower().strip('.')}.{zone}"


def _relative(domain: str, zone: str) -> str:
    zone = zone.lower().strip(".")
    return "@" if domain == zone else domain[: -len(zone) - 1]


def _mx(workspace: Workspace, domain: str) -> tuple[str | None, list[tuple[int, str]]]:
    for name in sorted(workspace.section("providers")):
        provider = workspace.connector("providers", name)
        zone = provider.zone_for(domain)
        if zone is None:
            continue
        rrset = provider.read_rrset(zone, _relative(domain, zone), "MX")
        values = rrset.values if rrset else ()
        return f"{name}:{zone}", sorted(_mx_value(v) for v in values)
    return None, []


def _mx_value(value: str) -> tuple[int, str]:
    preference, _, host = value.partition(" ")
    return int(preference), host.strip()


def _postfix_route(route: DomainRoute, servers: dict[str, PostfixMapDirectory]) -> None:
    for name, server in servers.items():
        transport = server.transport_for(route.domain)
        content_filter = server.content_filter()
        relayed = route.domain in _listed_domains(server) | _mailbox_domains(server)
        if not (transport or content_filter or relayed):
            continue
        route.postfix = name
        milters = server.parameter("smtpd_milters") if server.config_dir else None
        if milters and not _mx_is_cloud(route):  # the milter filters what this host receives
            route.filter_hop = f"milter {milters}"
        if content_filter:
            route.filter_hop = content_filter
        if transport and is_filter_hop(transport) and not route.filter_hop:
            route.filter_hop = transport
            route.next_hop = "(reinjected after the filter)"
        elif transport:
            route.next_hop = transport
        return


def _mail_store(route: DomainRoute, servers: dict[str, PostfixMapDirectory],
                stores: dict[str, list[str]]) -> str | None:
    holders = [f"{name} ({sum(1 for a in addresses if _domain_of(a) == route.domain)} mailboxes)"
               for name, addresses in stores.items()
               if any(_domain_of(a) == route.domain for a in addresses)]
    for name, server in servers.items():
        for map_name in MAILBOX_MAPS:
            if any(_domain_of(k) == route.domain for k in server.parsed(map_name).as_dict()):
                holders.append(f"{name} virtual mailboxes")
                break
    if _mx_is_cloud(route):
        # the MX decides: mail stores still holding copies are the migration's sources/twins
        return "Microsoft 365 (Exchange Online)" + (f"; also {', '.join(holders)}"
                                                   if holders else "")
    if holders:
        return ", ".join(holders)
    if route.next_hop and not route.next_hop.startswith("("):
        return f"beyond {_nexthop_host(route.next_hop)}"
    return None


def _mx_is_cloud(route: DomainRoute) -> bool:
    return bool(route.mx) and all(host.rstrip(".").endswith(CLOUD_MX) for _, host in route.mx)


def _nexthop_host(transport: str) -> str:
    match = re.search(r"\[([^\]]+)\]", transport)
    return match.group(1) if match else transport.partition(":")[2] or transport


def _forwards(workspace: Workspace, servers: dict[str, PostfixMapDirectory]
              ) -> list[ForwardedAddress]:
    forwards = []
    for name, server in servers.items():
        for map_name in ALIAS_MAPS:
            for old, new in server.parsed(map_name).as_dict().items():
                if "@" in old and new.lower() != old:
                    forwards.append(ForwardedAddress(old, new, f"postfix {name} {map_name}"))
    for name in sorted(workspace.section("forwarding")):
        source = workspace.connector("forwarding", name)
        for mailbox, forwarding in source.all().items():
            copy = ", keeps a copy" if forwarding.keep_copy else ""
            forwards.append(ForwardedAddress(mailbox, forwarding.address,
                                             f"exchange forwarding {name}{copy}"))
    return _merged(forwards)


def _merged(forwards: list[ForwardedAddress]) -> list[ForwardedAddress]:
    """One row per (old, new): the systems that forward it, joined."""
    vias: dict[tuple[str, str], list[str]] = {}
    for forward in forwards:
        vias.setdefault((forward.old, forward.new), []).append(forward.via)
    return [ForwardedAddress(old, new, "; ".join(sorted(via)))
            for (old, new), via in sorted(vias.items())]


def _conflicts(forwards: list[ForwardedAddress]) -> list[str]:
    targets: dict[str, list[ForwardedAddress]] = {}
    for forward in forwards:
        targets.setdefault(forward.old, []).append(forward)
    return [f"{old} forwards to different addresses: "
            + ", ".join(f"{f.new} ({f.via})" for f in rows)
            for old, rows in sorted(targets.items()) if len(rows) > 1]


def compute_routing(workspace: Workspace) -> Routing:
    servers = _postfix_servers(workspace)
    stores = _maildir_mailboxes(workspace)
    routes = []
    for domain in sorted(_known_domains(workspace, servers, stores)):
        route = DomainRoute(domain)
        route.zone, route.mx = _mx(workspace, domain)
        _postfix_route(route, servers)
        if _mx_is_cloud(route) and not route.filter_hop:
            route.filter_hop = "Exchange Online Protection (the MX)"
        route.mail_store = _mail_store(route, servers, stores)
        routes.append(route)
    forwards = _forwards(workspace, servers)
    notes = [f"{r.domain}: no MX record in any configured zone" for r in routes
             if r.zone is not None and not r.mx]
    return Routing(routes, forwards, notes + _conflicts(forwards))
