"""The mail-flow facts of a workspace, read once from its systems into plain values.

Everything the routing model needs (MX records, Postfix maps and main.cf, the spam filter's
per-domain settings, mailboxes per side, Exchange and Exchange Online forwarding, Sieve actions,
the tenant's accepted domains, connectors and recipients) is read here into `MailFacts`, a value:
`trace` and `check` then work on it without touching a system, and `--after PLAN` changes a copy
of it with the `after` of each step's preview (`cutover.routes.after`).

Which side a connector stands for (the Linux host, the on-premises Exchange, the cloud) comes
from its `side:` in cutover.yaml when written, else from its kind (`ews*` on-premises, `graph*`
and `exo*` cloud, `imap`, `postfix-maps`, `dovecot-*` Linux), else for a twin from its name
(`exchange` / `onprem` on-premises, `cloud` / `m365` / `exo` cloud, anything else Linux).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cutover.connectors.rspamd.settings import DomainPolicy
from cutover.connectors.tenant_model import (
    AcceptedDomain,
    MailConnector,
    TenantRecipient,
    TenantRouting,
)
from cutover.errors import CutoverError
from cutover.parsers.postfix_map import parse_domain_list, parse_main_cf, parse_map
from cutover.routes.sieve_actions import SieveAction, sieve_actions
from cutover.workspace import Workspace

Side = Literal["linux", "cloud", "onprem", "pipeline", "external", "nowhere"]
SIDES = ("linux", "cloud", "onprem")

EOP_SUFFIX = ".mail.protection.outlook.com"
TENANT_ROUTING_SUFFIX = ".mail.onmicrosoft.com"
CLOUD_HOST_SUFFIXES = (EOP_SUFFIX, ".outlook.com", ".onmicrosoft.com")

#: The conventional map file names when main.cf does not say (the sample and most hosts).
ALIAS_MAPS = ("virtual", "virtual_alias_maps", "virtual_alias")
RELAY_DOMAIN_MAPS = ("relay_domains",)
MAILBOX_DOMAIN_MAPS = ("virtual_mailbox_domains",)
ALIAS_DOMAIN_MAPS = ("virtual_alias_domains",)
MAILBOX_MAPS = ("vmailbox", "virtual_mailbox_maps", "virtual_mailbox")

_KIND_SIDES = {"ews": "onprem", "ews-inventory": "onprem", "ews-forwarding": "onprem",
               "getmailbox-csv": "onprem", "graph": "cloud", "graph-directory": "cloud",
               "exo": "cloud", "exo-file": "cloud", "directory-file": "cloud", "imap": "linux",
               "postfix-maps": "linux", "dovecot-passwd": "linux", "managesieve": "linux",
               "sievedir": "linux", "rspamd": "linux"}
_NAME_SIDES = (("onprem", "onprem"), ("exchange", "onprem"), ("on-prem", "onprem"),
               ("cloud", "cloud"), ("m365", "cloud"), ("exo", "cloud"), ("online", "cloud"))


def side_of(name: str, config: dict[str, Any]) -> str:
    """The side a configured connector stands for (see the module docstring)."""
    written = config.get("side")
    if written in SIDES:
        return written
    by_kind = _KIND_SIDES.get(str(config.get("kind", "")))
    if by_kind and config.get("kind") not in ("maildir", "forwarding-file"):
        return by_kind
    lowered = name.lower()
    return next((side for word, side in _NAME_SIDES if word in lowered), "linux")


@dataclass
class PostfixFacts:
    """One Postfix instance as its maps and main.cf describe it."""

    name: str
    hosts: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    transport: dict[str, str] = field(default_factory=dict)
    relay_domains: set[str] = field(default_factory=set)
    mailbox_domains: set[str] = field(default_factory=set)
    alias_domains: set[str] = field(default_factory=set)
    mailboxes: set[str] = field(default_factory=set)
    content_filter: str | None = None
    milters: list[str] = field(default_factory=list)
    #: where a probe hands mail to this instance (host:port), when cutover.yaml says
    smtp: str | None = None
    #: the map file behind each role, as cutover edits it (`virtual`, `transport`...)
    map_roles: dict[str, str] = field(default_factory=dict)

    def accepts(self, domain: str) -> bool:
        return domain in self.mailbox_domains | self.alias_domains | self.relay_domains


@dataclass
class SpamFilterFacts:
    name: str
    milter: str  # as smtpd_milters names it: inet:127.0.0.1:11332
    policies: dict[str, DomainPolicy] = field(default_factory=dict)


@dataclass
class StoreFacts:
    name: str
    side: str
    #: the mailbox addresses the store lists (None: the store cannot list them, e.g. IMAP)
    addresses: set[str] | None = None


@dataclass
class ForwardingFacts:
    name: str
    side: str
    #: mailbox -> (address, keep_copy)
    forwards: dict[str, tuple[str, bool]] = field(default_factory=dict)


@dataclass
class TenantFacts:
    """Exchange Online, from a TenantRouting connector or, in the demo, from the twins."""

    source: str
    accepted_domains: dict[str, AcceptedDomain] = field(default_factory=dict)
    connectors: list[MailConnector] = field(default_factory=list)
    recipients: dict[str, TenantRecipient] = field(default_factory=dict)
    automatic_forwarding: bool = True
    #: False when only twins describe the tenant: accepted domains are then unknown
    authoritative_source: bool = False

    def recipient(self, address: str) -> TenantRecipient | None:
        found = self.recipients.get(address)
        if found is None and address.rpartition("@")[2].endswith(TENANT_ROUTING_SUFFIX):
            # every cloud mailbox also answers at alias@tenant.mail.onmicrosoft.com
            local = address.rpartition("@")[0]
            found = next((r for a, r in sorted(self.recipients.items())
                          if a.rpartition("@")[0] == local), None)
        return found


@dataclass
class MailFacts:
    mx: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    zones: set[str] = field(default_factory=set)
    #: host names with an address record in one of our zones
    addressed_hosts: set[str] = field(default_factory=set)
    postfix: dict[str, PostfixFacts] = field(default_factory=dict)
    spamfilters: dict[str, SpamFilterFacts] = field(default_factory=dict)
    stores: dict[str, StoreFacts] = field(default_factory=dict)
    forwarding: dict[str, ForwardingFacts] = field(default_factory=dict)
    #: sieve store name -> account -> its active script's actions
    sieve: dict[str, dict[str, list[SieveAction]]] = field(default_factory=dict)
    tenant: TenantFacts | None = None
    #: host names the on-premises Exchange answers as (routes.hosts, transport next hops)
    onprem_hosts: set[str] = field(default_factory=set)
    #: host name -> side, as `routes: {hosts: ...}` in cutover.yaml says
    declared_hosts: dict[str, str] = field(default_factory=dict)
    retired_hosts: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def copy(self) -> MailFacts:
        return copy.deepcopy(self)

    def in_our_zones(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return any(name == zone or name.endswith("." + zone) for zone in self.zones)

    def mailboxes_on(self, side: str) -> set[str] | None:
        """Every mailbox address known on a side (None when no store of that side can list)."""
        found: set[str] = set()
        listed = False
        for store in self.stores.values():
            if store.side == side and store.addresses is not None:
                found |= store.addresses
                listed = True
        if side == "linux":
            for server in self.postfix.values():
                found |= server.mailboxes
                listed = listed or bool(server.mailboxes)
        return found if listed else None

    def forwarding_of(self, side: str, address: str) -> tuple[str, bool, str] | None:
        for name, system in sorted(self.forwarding.items()):
            if system.side == side and address in system.forwards:
                target, keep = system.forwards[address]
                return target, keep, name
        return None


# --- reading the workspace ---------------------------------------------------------------------

def read_facts(workspace: Workspace) -> MailFacts:
    facts = MailFacts()
    _read_zones(workspace, facts)
    _read_postfix(workspace, facts)
    _read_spamfilters(workspace, facts)
    _read_stores(workspace, facts)
    _read_forwarding(workspace, facts)
    _read_sieve(workspace, facts)
    _read_tenant(workspace, facts)
    _read_declared_hosts(workspace, facts)
    infer_hosts(facts)
    return facts


def _read_zones(workspace: Workspace, facts: MailFacts) -> None:
    for name in sorted(workspace.section("providers")):
        provider = workspace.connector("providers", name)
        zones = provider.zones() if hasattr(provider, "zones") else []
        for zone in zones:
            zone = zone.lower().rstrip(".")
            facts.zones.add(zone)
            for record_name, rdtype in provider.read_zone(zone):
                owner = _absolute(record_name, zone)
                if rdtype in ("A", "AAAA", "CNAME"):
                    facts.addressed_hosts.add(owner)
                if rdtype == "MX":
                    rrset = provider.read_rrset(zone, record_name, "MX")
                    facts.mx[owner] = sorted(_mx_value(v) for v in (rrset.values if rrset
                                                                    else ()))


def _absolute(name: str, zone: str) -> str:
    return zone if name in ("@", "") else f"{name.lower().rstrip('.')}.{zone}"


def _mx_value(value: str) -> tuple[int, str]:
    preference, _, host = value.partition(" ")
    return int(preference), host.strip().lower().rstrip(".")


def _read_postfix(workspace: Workspace, facts: MailFacts) -> None:
    from cutover.connectors.postfix.maps import PostfixMapDirectory

    for name, config in sorted(workspace.section("postfix").items()):
        server = workspace.connector("postfix", name)
        if not isinstance(server, PostfixMapDirectory):
            continue
        facts.postfix[name] = postfix_facts(name, server, config)


def postfix_facts(name: str, server: Any, config: dict[str, Any]) -> PostfixFacts:
    main_cf = _main_cf(server.config_dir)
    roles = _map_roles(server, main_cf)
    server_facts = PostfixFacts(name=name, map_roles=roles,
                                content_filter=main_cf.get("content_filter") or None,
                                milters=_words(main_cf.get("smtpd_milters", "")),
                                smtp=config.get("smtp"))
    server_facts.hosts = {h.lower().rstrip(".") for h in config.get("hosts", []) or []}
    if main_cf.get("myhostname"):
        server_facts.hosts.add(main_cf["myhostname"].lower().rstrip("."))
    read = server.read_source
    server_facts.aliases = _map_dict(read, roles.get("aliases"))
    server_facts.transport = _map_dict(read, roles.get("transport"))
    server_facts.mailboxes = {k for k in _map_dict(read, roles.get("mailboxes")) if "@" in k}
    for role, target in (("relay_domains", server_facts.relay_domains),
                         ("mailbox_domains", server_facts.mailbox_domains),
                         ("alias_domains", server_facts.alias_domains)):
        target.update(_domains(read, roles.get(role), main_cf.get(MAP_ROLES[role][0], "")))
    return server_facts


MAP_ROLES = {"aliases": ("virtual_alias_maps", ALIAS_MAPS),
               "transport": ("transport_maps", ()),
               "relay_domains": ("relay_domains", RELAY_DOMAIN_MAPS),
               "mailbox_domains": ("virtual_mailbox_domains", MAILBOX_DOMAIN_MAPS),
               "alias_domains": ("virtual_alias_domains", ALIAS_DOMAIN_MAPS),
               "mailboxes": ("virtual_mailbox_maps", MAILBOX_MAPS)}


def _main_cf(config_dir: Path | None) -> dict[str, str]:
    if config_dir is None:
        return {}
    try:
        return parse_main_cf((config_dir / "main.cf").read_text())
    except OSError:
        return {}


def _words(value: str) -> list[str]:
    return [w for w in value.replace(",", " ").split() if w]


def _map_roles(server: Any, main_cf: dict[str, str]) -> dict[str, str]:
    """role -> map file name in the connector's directory: what main.cf names there, else the
    conventional names."""
    present = set(server.map_names())
    roles: dict[str, str] = {}
    for role, (parameter, conventional) in MAP_ROLES.items():
        named = [Path(word.partition(":")[2]).name for word in _words(main_cf.get(parameter, ""))
                 if ":" in word and Path(word.partition(":")[2]).parent == server.directory]
        candidates = named or [n for n in conventional if n in present]
        if role == "transport":
            candidates = named or [server.transport_map]
        if candidates:
            roles[role] = candidates[0]
    return roles


def _map_dict(read: Any, name: str | None) -> dict[str, str]:
    if not name:
        return {}
    return parse_map(read(name) or "").as_dict()


def _domains(read: Any, name: str | None, parameter_value: str) -> set[str]:
    domains = {d.rstrip(".") for d in parse_domain_list(read(name) or "")} if name else set()
    # literal domains written in main.cf itself (`relay_domains = example.org`)
    domains |= {w.lower() for w in _words(parameter_value) if ":" not in w and "/" not in w
                and not w.startswith("$")}
    return {d for d in domains if d and "@" not in d}


def _read_spamfilters(workspace: Workspace, facts: MailFacts) -> None:
    for name in sorted(workspace.section("spamfilter")):
        connector = workspace.connector("spamfilter", name)
        if hasattr(connector, "policies"):
            facts.spamfilters[name] = SpamFilterFacts(name, connector.milter,
                                                      dict(connector.policies()))


def _read_stores(workspace: Workspace, facts: MailFacts) -> None:
    for name, config in sorted(workspace.section("mailstores").items()):
        if not isinstance(config, dict):
            continue
        addresses = None
        if config.get("kind") == "maildir" and config.get("path"):
            root = workspace.path(config["path"])
            addresses = {p.name.lower() for p in _subdirectories(root) if "@" in p.name}
        facts.stores[name] = StoreFacts(name, side_of(name, config), addresses)
    for name, config in sorted(workspace.section("directory").items()):
        directory = workspace.connector("directory", name)
        if hasattr(directory, "users"):
            from cutover.connectors.m365.directory import has_mailbox

            addresses = {a for user in directory.users() if has_mailbox(user)
                         for a in user.addresses}
            facts.stores[f"directory:{name}"] = StoreFacts(f"directory:{name}",
                                                            side_of(name, config), addresses)


def _subdirectories(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []


def _read_forwarding(workspace: Workspace, facts: MailFacts) -> None:
    for name, config in sorted(workspace.section("forwarding").items()):
        source = workspace.connector("forwarding", name)
        if not hasattr(source, "all"):
            continue  # a connector that cannot list (EWS rules): read per address, not here
        forwards = {mailbox.lower(): (f.address.lower(), f.keep_copy)
                    for mailbox, f in source.all().items()}
        facts.forwarding[name] = ForwardingFacts(name, side_of(name, config), forwards)


def _read_sieve(workspace: Workspace, facts: MailFacts) -> None:
    for name in sorted(workspace.section("sieve")):
        store = workspace.connector("sieve", name)
        root = getattr(store, "root", None)
        if not isinstance(root, Path):
            continue  # ManageSieve cannot list accounts; the directory twin can
        accounts: dict[str, list[SieveAction]] = {}
        for account in sorted(p.name for p in _subdirectories(root) if "@" in p.name):
            active = store.active(account)
            script = store.get(account, active) if active else None
            if script:
                accounts[account.lower()] = sieve_actions(script)
        facts.sieve[name] = accounts


def _read_tenant(workspace: Workspace, facts: MailFacts) -> None:
    """Exchange Online from any `management:` connector that speaks TenantRouting; without one,
    the cloud twins (cloud mail stores, cloud forwarding, the directory) stand in for it."""
    for name in sorted(workspace.section("management")):
        try:
            connector = workspace.connector("management", name)
        except CutoverError as exc:  # say so: the twins would stand in for the tenant
            facts.notes.append(f"management {name}: cannot read the tenant: {exc}")
            continue
        if isinstance(connector, TenantRouting):
            facts.tenant = tenant_facts(name, connector)
            return


def tenant_facts(name: str, tenant: TenantRouting) -> TenantFacts:
    return TenantFacts(
        source=f"management {name}",
        accepted_domains={d.name.lower(): d for d in tenant.accepted_domains()},
        connectors=list(tenant.connectors()),
        recipients=_recipients_by_address(tenant.recipients()),
        automatic_forwarding=tenant.automatic_forwarding_allowed(),
        authoritative_source=True)


def _recipients_by_address(recipients: list[TenantRecipient]) -> dict[str, TenantRecipient]:
    """Every SMTP address of every recipient; a contact's or mail user's external address is
    where its mail goes, not an address of the tenant."""
    found: dict[str, TenantRecipient] = {}
    for recipient in recipients:
        external = _bare(recipient.external_address)
        for address in (recipient.address, *recipient.proxy_addresses):
            address = _bare(address)
            if address and address != external:
                found.setdefault(address, recipient)
    return found


def _bare(address: str) -> str:
    address = address.strip().lower()
    return address[5:] if address.startswith("smtp:") else address


def _read_declared_hosts(workspace: Workspace, facts: MailFacts) -> None:
    """`routes: {hosts: {mail.example.org: onprem}, retired: [old-mx.example.org]}`."""
    section = workspace.config.get("routes") or {}
    if not isinstance(section, dict):
        return
    for host, side in (section.get("hosts") or {}).items():
        facts.declared_hosts[str(host).lower().rstrip(".")] = str(side)
    facts.retired_hosts = {str(h).lower().rstrip(".") for h in section.get("retired") or []}


def infer_hosts(facts: MailFacts) -> None:
    """Host names of each side, where cutover.yaml does not name them: a Postfix instance is
    the MX of the domains it holds mailboxes or aliases for; the on-premises Exchange is the
    next hop Postfix relays a domain to, and the MX of domains whose mailboxes it holds."""
    for server in facts.postfix.values():
        for domain in server.mailbox_domains | server.alias_domains:
            server.hosts |= {host for _, host in facts.mx.get(domain, [])
                             if not is_cloud_host(host)}
    linux_hosts = {h for s in facts.postfix.values() for h in s.hosts}
    onprem_mailboxes = facts.mailboxes_on("onprem") or set()
    onprem_domains = {a.rpartition("@")[2] for a in onprem_mailboxes}
    for server in facts.postfix.values():
        for key, value in server.transport.items():
            host = nexthop_host(value)
            if host and not is_cloud_host(host) and host not in linux_hosts and \
                    key.lstrip(".") in onprem_domains:
                facts.onprem_hosts.add(host)
    for domain in onprem_domains:
        facts.onprem_hosts |= {host for _, host in facts.mx.get(domain, [])
                               if not is_cloud_host(host) and host not in linux_hosts}
    for host, side in facts.declared_hosts.items():
        if side == "onprem":
            facts.onprem_hosts.add(host)


def is_cloud_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host.endswith(suffix) for suffix in CLOUD_HOST_SUFFIXES)


def nexthop_host(transport_value: str) -> str | None:
    """`smtp:[mail.example.org]:25` -> mail.example.org; `lmtp:unix:private/dovecot` -> None."""
    name, _, rest = transport_value.partition(":")
    if rest.startswith(("unix:", "inet:")):
        rest = rest.partition(":")[2]
    if rest.startswith("["):
        return rest[1:].partition("]")[0].lower().rstrip(".")
    host = rest.rpartition(":")[0] if rest.count(":") == 1 else rest
    return host.lower().rstrip(".") or None
