"""Where a message from an external sender to one address goes, hop by hop, on `MailFacts`.

The walk follows what each system would do: the MX decides who receives it; a Postfix instance
runs its milters and content_filter, rewrites with its virtual alias map, picks a transport
(a filter hop, a relay to another host, or local delivery to Dovecot), and Sieve may redirect,
file or pipe; the on-premises Exchange may forward; Exchange Online checks the accepted domain,
finds the recipient (a mailbox, a mail user or contact that points elsewhere, a forwarding
address) or hands the message to an outbound connector. A message that comes back to a system
it already passed with the same address is a loop; one that nobody accepts ends `nowhere`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cutover.routes.facts import (
    EOP_SUFFIX,
    TENANT_ROUTING_SUFFIX,
    MailFacts,
    PostfixFacts,
    TenantFacts,
    is_cloud_host,
    nexthop_host,
)
from cutover.routes.sieve_actions import unconditional

#: Transport names and ports that conventionally lead to a content filter (amavis, spamd...).
FILTER_TRANSPORTS = frozenset({"amavis", "amavisfeed", "smtp-amavis", "lmtp-amavis", "filter",
                               "spamassassin", "spamfilter", "scan", "dfilt", "rspamd"})
FILTER_PORTS = frozenset({"10024", "10025", "10026"})
LOCAL_TRANSPORTS = frozenset({"lmtp", "dovecot", "virtual", "local", "maildrop"})
LOCAL_DOMAINS = frozenset({"localhost", "localhost.localdomain"})
EOP = "Exchange Online Protection"
EXO = "Exchange Online"
MAX_HOPS = 40  # far beyond any sane path: a guard against a walk that never ends


@dataclass(frozen=True)
class Hop:
    kind: str  # mx, milter, content_filter, filter, alias, transport, relay, forward, sieve,
    #            accepted-domain, recipient, connector, deliver, reject, loop
    host: str
    cause: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "host": self.host, "cause": self.cause}


@dataclass(frozen=True)
class End:
    side: str  # linux | cloud | onprem | pipeline | external | nowhere
    mailbox: str | None
    system: str = ""
    folder: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "mailbox": self.mailbox}

    def describe(self) -> str:
        where = self.mailbox or "(no mailbox)"
        folder = f" folder {self.folder}" if self.folder else ""
        system = f" ({self.system})" if self.system else ""
        return f"{self.side}: {where}{folder}{system}"


@dataclass
class Trace:
    address: str
    hops: list[Hop] = field(default_factory=list)
    ends: End = field(default_factory=lambda: End("nowhere", None))
    #: ends of copies kept on the way (forwarding that keeps a copy, redirect :copy)
    copies: list[End] = field(default_factory=list)
    #: identities of the spam filters crossed, in order
    filters: list[str] = field(default_factory=list)
    #: forwarding steps (alias to another address, forward, redirect) taken
    forwards: int = 0
    loop: bool = False
    #: why the message ends `nowhere`, when it does
    reason: str = ""
    #: the side of the system that first receives it from outside (its MX)
    entry: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "hops": [h.to_json() for h in self.hops],
                "ends": self.ends.to_json()}

    def summary(self) -> str:
        return " -> ".join([self.address, *(f"{h.kind} {h.host}" for h in self.hops),
                            self.ends.describe()])


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def is_filter_transport(transport: str) -> bool:
    name, _, nexthop = transport.partition(":")
    port = nexthop.rpartition(":")[2] if "]" in nexthop or nexthop.count(":") else ""
    return name.lower() in FILTER_TRANSPORTS or port in FILTER_PORTS


def transport_keys(address: str) -> list[str]:
    _, at, domain = address.lower().rpartition("@")
    keys = [address.lower()] if at else []
    keys.append(domain)
    labels = domain.split(".")
    keys.extend("." + ".".join(labels[i:]) for i in range(1, len(labels)))
    keys.append("*")
    return keys


def classify_host(facts: MailFacts, host: str) -> tuple[str, str]:
    """(side, system) of a mail host: linux (the Postfix instance's name), cloud, onprem,
    retired (with why) or external."""
    return _Walk(facts, "").classify(host)


def trace(facts: MailFacts, address: str) -> Trace:
    """The path of a message from an external sender to `address`."""
    walk = _Walk(facts, address.strip().lower())
    walk.from_outside(walk.trace.address)
    return walk.trace


class _Stop(Exception):  # noqa: N818 - control flow inside a walk
    pass


class _Walk:
    def __init__(self, facts: MailFacts, address: str):
        self.facts = facts
        self.trace = Trace(address)
        self.visited: set[tuple[str, str]] = set()

    # --- recording -----------------------------------------------------------------------
    def hop(self, kind: str, host: str, cause: str) -> None:
        if len(self.trace.hops) >= MAX_HOPS:
            self.end_nowhere("loop", host, f"more than {MAX_HOPS} hops: the path never ends")
        self.trace.hops.append(Hop(kind, host, cause))

    def end(self, end: End) -> None:
        self.trace.ends = end
        raise _Stop

    def end_nowhere(self, kind: str, host: str, reason: str) -> None:
        self.trace.hops.append(Hop(kind, host, reason))
        self.trace.reason = reason
        self.end(End("nowhere", None, host))

    def enter(self, system: str, address: str) -> None:
        key = (system, address)
        if key in self.visited:
            self.trace.loop = True
            self.end_nowhere("loop", system, f"{address} comes back to {system}: a forwarding "
                                             "loop")
        self.visited.add(key)

    def forwarded(self) -> None:
        self.trace.forwards += 1

    # --- entry: the MX ------------------------------------------------------------------------
    def from_outside(self, address: str) -> None:
        try:
            self._from_outside(address)
        except _Stop:
            pass

    def _from_outside(self, address: str) -> None:
        domain = domain_of(address)
        mx = self.facts.mx.get(domain)
        if mx:
            preference, host = mx[0]
            backups = ", ".join(h for _, h in mx[1:])
            self.hop("mx", host, f"MX {preference} of {domain}"
                     + (f" (backup: {backups})" if backups else ""))
            self.arrive_at_host(host, address)
            return
        if domain.endswith(TENANT_ROUTING_SUFFIX):
            self.hop("mx", f"{domain.partition('.')[0]}{EOP_SUFFIX}",
                     f"{domain} is the tenant's routing domain")
            self.trace.entry = self.trace.entry or "cloud"
            self.cloud(address)
            return
        if self.facts.in_our_zones(domain) or domain in LOCAL_DOMAINS:
            self.end_nowhere("mx", domain, f"no MX record for {domain} in our zones")
        self.end(End("external", address, domain))

    def arrive_at_host(self, host: str, address: str) -> None:
        side, system = self.classify(host)
        self.trace.entry = self.trace.entry or side
        if side == "linux":
            self.postfix(self.facts.postfix[system], address, from_smtp=True)
        elif side == "cloud":
            self.cloud(address)
        elif side == "onprem":
            self.onprem(address, host)
        elif side == "retired":
            self.end_nowhere("reject", host, f"{host} is retired ({system})")
        else:
            self.end(End("external", address, host))

    def classify(self, host: str) -> tuple[str, str]:
        """(side, system) of a mail host: linux (a Postfix instance's name), cloud, onprem,
        retired (with why) or external."""
        host = host.lower().rstrip(".")
        facts = self.facts
        if host in facts.retired_hosts:
            return "retired", "cutover.yaml routes.retired"
        declared = facts.declared_hosts.get(host)
        if declared in facts.postfix:
            return "linux", declared
        if declared in ("cloud", "onprem", "external"):
            return declared, host
        if is_cloud_host(host):
            return "cloud", EXO
        for name, server in sorted(facts.postfix.items()):
            if host in server.hosts:
                return "linux", name
        if facts.in_our_zones(host) and host not in facts.addressed_hosts:
            return "retired", "no address record in our zones"
        if host in facts.onprem_hosts:
            return "onprem", host
        if facts.in_our_zones(host):
            if facts.mailboxes_on("onprem") is not None or any(
                    f.side == "onprem" for f in facts.forwarding.values()):
                return "onprem", host
            return "retired", "a host of ours that no configured system answers as"
        return "external", host

    # --- Postfix ------------------------------------------------------------------------------
    def postfix(self, server: PostfixFacts, address: str, from_smtp: bool) -> None:
        self.enter(f"postfix {server.name}", address)
        if from_smtp:
            self.smtpd_filters(server, address)
        domain = domain_of(address)
        if "@" not in address or domain in LOCAL_DOMAINS:
            self.hop("deliver", server.name, f"local delivery of {address} on {server.name}")
            self.end(End("linux", address, server.name))
        if from_smtp and not server.accepts(domain) and not self._alias_of(server, address):
            self.end_nowhere("reject", server.name, f"{server.name} does not accept {domain} "
                                                    "(not in relay_domains or virtual_*_domains)")
        self.rewrite(server, address)

    def smtpd_filters(self, server: PostfixFacts, address: str) -> None:
        domain = domain_of(address)
        for milter in server.milters:
            spamfilter = next((f for f in self.facts.spamfilters.values()
                               if _same_endpoint(f.milter, milter)), None)
            name = spamfilter.name if spamfilter else milter
            policy = spamfilter.policies.get(domain) if spamfilter else None
            how = ""
            if policy is not None:
                how = (f"; {domain}: spam is " + ("rejected" if policy.reject else "marked")
                       + (f" and filed into {policy.quarantine_folder}"
                          if policy.quarantine_folder else "")
                       + (f", {len(policy.known_senders)} known sender(s) never rejected or "
                          "greylisted" if policy.known_senders else ""))
            self.hop("milter", name, f"smtpd_milters on {server.name}: {milter}{how}")
            self.trace.filters.append(f"milter {name}")
        if server.content_filter:
            host = nexthop_host(server.content_filter) or server.content_filter
            self.hop("content_filter", host,
                     f"content_filter on {server.name}: {server.content_filter}")
            self.trace.filters.append(f"content_filter {server.content_filter}")

    def _alias_of(self, server: PostfixFacts, address: str) -> str | None:
        value = server.aliases.get(address) or server.aliases.get("@" + domain_of(address))
        if value is None:
            return None
        targets = [t.strip().lower() for t in value.replace(",", " ").split() if t.strip()]
        return ",".join(targets) if targets and targets != [address] else None

    def rewrite(self, server: PostfixFacts, address: str) -> None:
        aliased = self._alias_of(server, address)
        if aliased is None:
            self.route(server, address)
            return
        targets = aliased.split(",")
        map_name = server.map_roles.get("aliases", "virtual")
        self.hop("alias", server.name, f"{map_name}: {address} -> {aliased}")
        if address in targets:  # `a -> a, b`: a is delivered as is, b gets a copy
            primary, others = address, [t for t in targets if t != address]
        else:
            primary, others = targets[0], targets[1:]
        for other in others:
            self.copy_to(other, lambda walk, to=other: walk.postfix(server, to, False))
        if primary == address:
            self.route(server, address)
            return
        self.forwarded()
        self.postfix(server, primary, from_smtp=False)

    def route(self, server: PostfixFacts, address: str) -> None:
        key, transport = next(((k, server.transport[k]) for k in transport_keys(address)
                               if k in server.transport), (None, None))
        if transport is not None and is_filter_transport(transport):
            host = nexthop_host(transport) or transport
            self.hop("filter", host, f"transport: {key} {transport}")
            self.trace.filters.append(f"transport {transport}")
            self.hop("transport", server.name, "reinjected into Postfix after the filter")
            self.deliver_or_relay(server, address, after_filter=True)
            return
        if transport is not None:
            self.follow_transport(server, address, key or "", transport)
            return
        self.deliver_or_relay(server, address, after_filter=False)

    def follow_transport(self, server: PostfixFacts, address: str, key: str,
                         transport: str) -> None:
        name = transport.partition(":")[0].lower()
        if name == "error" or name == "retry":
            self.end_nowhere("reject", server.name, f"transport: {key} {transport}")
        if name == "discard":
            self.end_nowhere("reject", server.name, f"transport: {key} {transport} (discarded)")
        if name in LOCAL_TRANSPORTS and (":" not in transport or "unix:" in transport
                                         or nexthop_host(transport) in (None, "127.0.0.1",
                                                                        "localhost")):
            self.deliver_local(server, address, f"transport: {key} {transport}")
        host = nexthop_host(transport)
        if host is None:  # `smtp:`: the MX of the recipient's domain
            self.hop("transport", server.name, f"transport: {key} {transport} (MX lookup)")
            self.outbound(address, server.name)
            return
        self.hop("relay", host, f"transport on {server.name}: {key} {transport}")
        self.arrive_at_host(host, address)

    def deliver_or_relay(self, server: PostfixFacts, address: str, after_filter: bool) -> None:
        domain = domain_of(address)
        if domain in server.mailbox_domains:
            self.deliver_local(server, address, "virtual_mailbox_domains")
        if domain in server.relay_domains:
            self.hop("relay", server.name, f"relay_domains: {domain}, to its MX")
            self.outbound(address, server.name)
            return
        if after_filter:
            self.deliver_local(server, address, "after the filter")
        self.hop("relay", server.name, f"{domain} is not local to {server.name}: to its MX")
        self.outbound(address, server.name)

    def deliver_local(self, server: PostfixFacts, address: str, why: str) -> None:
        known = self.facts.mailboxes_on("linux")
        if known is not None and address not in known:
            self.end_nowhere("reject", server.name, f"no mailbox {address} on {server.name} "
                                                    f"({why}): rejected as unknown user")
        self.hop("deliver", server.name, f"mailbox {address} ({why})")
        self.sieve(server, address)

    def outbound(self, address: str, sender: str) -> None:
        """A system sends `address` on by its domain's MX."""
        domain = domain_of(address)
        mx = self.facts.mx.get(domain)
        if mx:
            host = mx[0][1]
            self.hop("mx", host, f"{sender} looks up the MX of {domain}")
            self.arrive_at_host(host, address)
            return
        self._from_outside(address)

    # --- Sieve (Dovecot) ----------------------------------------------------------------------
    def sieve(self, server: PostfixFacts, address: str) -> None:
        domain = domain_of(address)
        for spamfilter in self.facts.spamfilters.values():
            policy = spamfilter.policies.get(domain)
            if policy and policy.quarantine_folder:
                self.hop("sieve", spamfilter.name, f"spam (X-Spam: Yes) is filed into "
                                                   f"{policy.quarantine_folder}")
        for store_name, accounts in sorted(self.facts.sieve.items()):
            actions = accounts.get(address)
            if not actions:
                continue
            for action in actions:
                if action.conditional and action.action in ("redirect", "fileinto", "pipe"):
                    self.hop("sieve", store_name, f"may {action.action} "
                                                  f"{action.argument} (conditional rule)")
            for action in unconditional(actions):
                if action.action == "redirect":
                    self.hop("sieve", store_name, f"redirect{' :copy' if action.copy else ''}"
                                                  f" to {action.argument}")
                    if action.copy:
                        self.copy_to(action.argument,
                                     lambda walk, to=action.argument: walk.postfix(
                                         server, to, False))
                        continue
                    self.forwarded()
                    self.postfix(server, action.argument.lower(), from_smtp=False)
                if action.action == "fileinto":
                    self.hop("sieve", store_name, f"fileinto {action.argument}")
                    self.end(End("linux", address, server.name, action.argument))
                if action.action == "pipe":
                    self.hop("sieve", store_name, f"pipe to {action.argument}")
                    self.end(End("pipeline", action.argument, server.name))
                if action.action == "discard":
                    self.end_nowhere("sieve", store_name, "discarded by Sieve")
        self.end(End("linux", address, server.name))

    # --- the on-premises Exchange -------------------------------------------------------------
    def onprem(self, address: str, host: str) -> None:
        self.enter("onprem", address)
        forwarding = self.facts.forwarding_of("onprem", address)
        if forwarding is not None:
            target, keep, name = forwarding
            self.hop("forward", host, f"Exchange forwarding ({name}) to {target}"
                     + (", keeps a copy" if keep else ""))
            if keep:
                self.trace.copies.append(End("onprem", address, host))
            self.forwarded()
            self.outbound(target, host)
            return
        known = self.facts.mailboxes_on("onprem")
        if known is not None and address not in known:
            self.end_nowhere("reject", host, f"no mailbox {address} on the on-premises "
                                             "Exchange")
        self.end(End("onprem", address, host))

    # --- Exchange Online ----------------------------------------------------------------------
    def cloud(self, address: str, filtered: bool = False) -> None:
        self.enter("cloud", address)
        tenant = self.facts.tenant or twin_tenant(self.facts)
        domain = domain_of(address)
        if not filtered:
            self.hop("filter", EOP, f"Exchange Online Protection filters mail for {domain}")
            self.trace.filters.append("eop")
        accepted = tenant.accepted_domains.get(domain)
        domain_type = accepted.domain_type if accepted else "Authoritative"
        if accepted is None and tenant.authoritative_source and \
                not domain.endswith(TENANT_ROUTING_SUFFIX):
            self.end_nowhere("reject", EXO, f"{domain} is not an accepted domain of the tenant "
                                            f"({tenant.source})")
        self.hop("accepted-domain", EXO, f"{domain}: {domain_type}"
                 + ("" if accepted else " (assumed: no tenant connector describes it)"))
        recipient = tenant.recipient(address)
        if recipient is not None:
            self.cloud_recipient(tenant, address, recipient)
            return
        if domain_type in ("InternalRelay", "ExternalRelay"):
            self.cloud_connector(tenant, address, domain_type)
            return
        self.end_nowhere("reject", EXO, f"no recipient {address} in Exchange Online and "
                                        f"{domain} is Authoritative (NDR 550 5.4.1)")

    def cloud_recipient(self, tenant: TenantFacts, address: str, recipient: Any) -> None:
        if recipient.forwarding_address:
            target = recipient.forwarding_address.lower()
            self.hop("forward", EXO, f"{recipient.recipient_type} {address}: "
                                     f"ForwardingSmtpAddress {target}")
            self.forwarded()
            if not tenant.automatic_forwarding and not self._inside_tenant(tenant, target):
                self.end_nowhere("reject", EXO, "the outbound spam policy blocks automatic "
                                                f"forwarding to {target}")
            self.cloud_outbound(tenant, target)
            return
        if recipient.external_address:
            target = recipient.external_address.lower()
            target = target[5:] if target.startswith("smtp:") else target
            self.hop("recipient", EXO, f"{recipient.recipient_type} {address} -> {target}")
            self.forwarded()
            self.cloud_outbound(tenant, target)
            return
        self.hop("recipient", EXO, f"{recipient.recipient_type} {recipient.address}")
        self.end(End("cloud", recipient.address, EXO))

    def _inside_tenant(self, tenant: TenantFacts, address: str) -> bool:
        return tenant.recipient(address) is not None

    def cloud_connector(self, tenant: TenantFacts, address: str, domain_type: str) -> None:
        domain = domain_of(address)
        for connector in tenant.connectors:
            if connector.direction != "outbound" or not connector.enabled:
                continue
            if domain in connector.domains or "*" in connector.domains:
                host = connector.hosts[0] if connector.hosts else "(MX of the domain)"
                self.hop("connector", host, f"{domain_type}: outbound connector "
                                            f"{connector.name} ({connector.connector_type})")
                if connector.hosts:
                    self.arrive_at_host(host, address)
                else:
                    self.outbound(address, EXO)
                return
        self.end_nowhere("reject", EXO, f"{domain} is {domain_type} but no outbound connector "
                                        f"sends {address} on (a dead end)")

    def cloud_outbound(self, tenant: TenantFacts, address: str) -> None:
        """Exchange Online sends on: to its own recipient inside the tenant, else through an
        outbound connector for the domain, else to the domain's MX."""
        if self._inside_tenant(tenant, address):
            self.cloud(address, filtered=True)
            return
        domain = domain_of(address)
        for connector in tenant.connectors:
            if connector.direction == "outbound" and connector.enabled and connector.hosts \
                    and domain in connector.domains:
                self.hop("connector", connector.hosts[0],
                         f"outbound connector {connector.name} for {domain}")
                self.arrive_at_host(connector.hosts[0], address)
                return
        self.outbound(address, EXO)

    # --- copies -------------------------------------------------------------------------------
    def copy_to(self, address: str, walk_on: Any) -> None:
        """Follow a copy on a side walk (its end is recorded, its hops are not)."""
        side = _Walk(self.facts, address)
        side.visited = set(self.visited)
        try:
            walk_on(side)
        except _Stop:
            pass
        self.trace.copies.append(side.trace.ends)
        self.trace.copies.extend(side.trace.copies)
        if side.trace.loop:
            self.trace.loop = True
            self.trace.reason = side.trace.reason


def _same_endpoint(a: str, b: str) -> bool:
    return "".join(a.split()).lower() == "".join(b.split()).lower()


def twin_tenant(facts: MailFacts) -> TenantFacts:
    """Exchange Online as the cloud twins describe it (no TenantRouting connector): mailboxes of
    cloud stores and the directory, mailboxes forwarding by the cloud forwarding connectors;
    accepted domains unknown (every domain counts as Authoritative)."""
    from cutover.connectors.tenant_model import TenantRecipient

    recipients: dict[str, TenantRecipient] = {}
    for store in facts.stores.values():
        if store.side == "cloud" and store.addresses:
            for address in store.addresses:
                recipients[address] = TenantRecipient(address, "UserMailbox")
    for system in facts.forwarding.values():
        if system.side == "cloud":
            for address, (target, _keep) in system.forwards.items():
                recipients[address] = TenantRecipient(address, "UserMailbox",
                                                       forwarding_address=target)
    return TenantFacts(source="the cloud twins", recipients=recipients)
