"""The mail flow after a plan: each step's preview, applied to a copy of `MailFacts`.

Nothing is applied to any system: a step kind's Change `after` says what the world will hold
(an RRset, a map entry, a forwarding, an active Sieve script, an account, a spam filter policy)
and the matching function below writes that into the facts. Steps whose kind does not change
mail routing (a mailbox copy, a DNS check) leave the facts alone.

Previews are taken against the world as it is now, not as the earlier steps of the plan will
leave it; steps that cannot be previewed yet (no inventory, say) are reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cutover.changes import Change
from cutover.connectors.tenant_model import AcceptedDomain, MailConnector, TenantRecipient
from cutover.routes.facts import (
    MAP_ROLES,
    DomainPolicy,
    ForwardingFacts,
    MailFacts,
    PostfixFacts,
    StoreFacts,
    TenantFacts,
    infer_hosts,
)
from cutover.routes.sieve_actions import sieve_actions
from cutover.routes.trace import twin_tenant


@dataclass
class StepPreview:
    """One step of a plan as previewed: its changes, or why it has none."""

    step_id: str
    kind: str
    changes: list[Change] = field(default_factory=list)
    note: str | None = None  # "done", or why the preview failed


def _dns_records(facts: MailFacts, change: Change) -> None:
    data = change.after or change.before
    zone = data["zone"].lower().rstrip(".")
    name = data["name"]
    owner = zone if name in ("@", "") else f"{name.lower().rstrip('.')}.{zone}"
    values = change.after["values"] if change.after else []
    if data["type"] == "MX":
        if values:
            facts.mx[owner] = sorted((int(v.split()[0]), v.split()[1].lower().rstrip("."))
                                     for v in values)
        else:
            facts.mx.pop(owner, None)
    elif data["type"] in ("A", "AAAA", "CNAME"):
        if values:
            facts.addressed_hosts.add(owner)
        else:
            facts.addressed_hosts.discard(owner)


def _postfix_maps(facts: MailFacts, change: Change) -> None:
    after = change.after or {}
    server = facts.postfix.get(after.get("server", ""))
    if server is None:
        return
    map_name, key, value = after["map"], after["key"].lower(), after["value"]
    role = map_role(server, map_name)
    if role in ("aliases", "transport"):
        table = server.aliases if role == "aliases" else server.transport
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    elif role is not None:
        keys = {"relay_domains": server.relay_domains, "mailbox_domains": server.mailbox_domains,
                "alias_domains": server.alias_domains, "mailboxes": server.mailboxes}[role]
        (keys.discard if value is None else keys.add)(key)


def map_role(server: PostfixFacts, map_name: str) -> str | None:
    """Which role a map file plays on this server: what main.cf says, else its usual name."""
    for role, file_name in server.map_roles.items():
        if file_name == map_name:
            return role
    if map_name == "transport":
        return "transport"
    return next((role for role, (_, names) in MAP_ROLES.items() if map_name in names), None)


def _forwarding(facts: MailFacts, change: Change) -> None:
    after = change.after or {}
    system = facts.forwarding.get(after.get("source", ""))
    if system is None:
        side = "cloud" if "cloud" in after.get("source", "") else "onprem"
        system = facts.forwarding.setdefault(after["source"],
                                             ForwardingFacts(after["source"], side))
    mailbox = after["mailbox"].lower()
    forwarding = after.get("forwarding")
    if forwarding is None:
        system.forwards.pop(mailbox, None)
    else:
        system.forwards[mailbox] = (forwarding["forward_to"].lower(),
                                    bool(forwarding["keep_copy"]))


def _active_script(facts: MailFacts, change: Change, store: str) -> None:
    after = change.after or {}
    account = after["account"].lower()
    script = after.get("script") if after.get("active") else None
    accounts = facts.sieve.setdefault(store, {})
    if script:
        accounts[account] = sieve_actions(script)
    else:
        accounts.pop(account, None)


def _linux_account(facts: MailFacts, change: Change) -> None:
    if not change.after:
        return
    address = change.item.lower()
    store = facts.stores.setdefault("accounts", StoreFacts("accounts", "linux", set()))
    store.addresses = (store.addresses or set()) | {address}
    for server in facts.postfix.values():  # the Linux host's Postfix delivers its accounts
        server.mailbox_domains.add(address.rpartition("@")[2])
        server.mailboxes.add(address)


def _cloud_mailbox(facts: MailFacts, change: Change) -> None:
    if change.after and change.after.get("mailbox"):
        store = facts.stores.setdefault("provisioned", StoreFacts("provisioned", "cloud", set()))
        store.addresses = (store.addresses or set()) | {change.after["address"].lower()}


def _spamfilter_domain(facts: MailFacts, change: Change) -> None:
    after = change.after or change.before or {}
    part = after.get("part")
    spamfilter = facts.spamfilters.get(after.get("spamfilter", ""))
    if part == "policy" and spamfilter is not None:
        policy = (change.after or {}).get("policy")
        if policy is None:
            spamfilter.policies.pop(after["domain"], None)
        else:
            spamfilter.policies[policy["domain"]] = DomainPolicy(
                policy["domain"], tuple(policy.get("known_senders", ())),
                bool(policy["reject"]), policy.get("quarantine_folder"))
    server = facts.postfix.get(after.get("server", ""))
    if part == "milter" and server is not None and change.after:
        server.milters = list(change.after.get("milters", []))


def _tenant(facts: MailFacts) -> TenantFacts:
    if facts.tenant is None:  # the twins describe it until a step says more
        facts.tenant = twin_tenant(facts)
    return facts.tenant


def _exo_accepted_domain(facts: MailFacts, change: Change) -> None:
    if not change.after:
        return
    tenant = _tenant(facts)
    name = change.after["domain"].lower()
    known = tenant.accepted_domains.get(name)
    tenant.accepted_domains[name] = AcceptedDomain(name, change.after["domain_type"],
                                                   known.default if known else False)


def _exo_connector(facts: MailFacts, change: Change) -> None:
    tenant = _tenant(facts)
    data = change.after or change.before
    tenant.connectors = [c for c in tenant.connectors
                         if (c.name, c.direction) != (data["name"], data["direction"])]
    if change.after:
        after = change.after
        tenant.connectors.append(MailConnector(
            after["name"], after["direction"], bool(after.get("enabled", True)),
            tuple(d.lower() for d in after.get("domains") or ()), tuple(after.get("hosts") or ()),
            after.get("connector_type", "OnPremises")))


def _exo_mail_contact(facts: MailFacts, change: Change) -> None:
    tenant = _tenant(facts)
    for address in (change.before or {}).get("addresses", []):
        tenant.recipients.pop(address.lower(), None)
    if change.after:
        addresses = tuple(a.lower() for a in change.after["addresses"])
        for address in addresses:
            tenant.recipients[address] = TenantRecipient(
                address, "MailContact", external_address=change.after["external_address"],
                proxy_addresses=addresses)


APPLY: dict[str, Callable[[MailFacts, Change], None]] = {
    "dns.records": _dns_records,
    "postfix.maps": _postfix_maps,
    "exchange.forwarding": _forwarding,
    "linux.account": _linux_account,
    "cloud.mailbox": _cloud_mailbox,
    "spamfilter.domain": _spamfilter_domain,
    "exo.accepted_domain": _exo_accepted_domain,
    "exo.connector": _exo_connector,
    "exo.mail_contact": _exo_mail_contact,
}


def facts_after(facts: MailFacts, previews: list[StepPreview],
                sieve_stores: dict[str, str] | None = None) -> tuple[MailFacts, list[str]]:
    """A copy of `facts` with every previewed change applied, in plan order, and notes about
    steps that could not be previewed. `sieve_stores`: step id -> its sieve connector name
    (sieve.redirect, rules.replace)."""
    after = facts.copy()
    notes = []
    for preview in previews:
        if preview.note and preview.note != "done":
            notes.append(f"step {preview.step_id} ({preview.kind}): {preview.note}")
        for change in preview.changes:
            if preview.kind in ("sieve.redirect", "rules.replace"):
                store = (sieve_stores or {}).get(preview.step_id, "linux")
                _active_script(after, change, store)
            elif preview.kind in APPLY:
                APPLY[preview.kind](after, change)
    infer_hosts(after)
    return after, notes
