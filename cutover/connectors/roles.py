"""Connector roles: what a step can ask the workspace for, and the interface each role promises.

A role is one job an external system can do for cutover (hold mailboxes, serve a DNS zone,
forward an address...). `cutover.yaml` has one section per role; each entry there names a
`kind`, which is named after the system (`ews` is the on-premises Exchange whether it is a mail
store, an inventory source or a forwarding target). When the workspace loads, every configured
class is checked against its role's protocol, so a step that asks for a role gets a connector
that has every method of it (no `hasattr` probing in steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from cutover.connectors.dns_zone import DnsZone
from cutover.connectors.mailstore import MailStore
from cutover.connectors.sieve_store import SieveStore


@runtime_checkable
class InventorySource(Protocol):
    """Raw recipients, streamed, read only (Get-Mailbox CSV, EWS, a mail store)."""

    def collect(self, warnings: list[str]) -> Any: ...


@runtime_checkable
class Forwarding(Protocol):
    """Where a mailbox forwards its mail (Exchange ForwardingSmtpAddress or an inbox rule)."""

    def get(self, mailbox: str) -> Any: ...

    def set(self, mailbox: str, forwarding: Any) -> None: ...

    def all(self) -> dict[str, Any]: ...


@runtime_checkable
class MtaMaps(Protocol):
    """An MTA's lookup tables (Postfix virtual, transport, relay_domains...)."""

    def read_source(self, name: str) -> str | None: ...

    def write_source(self, name: str, text: str | None) -> None: ...

    def lookup(self, name: str, key: str) -> str | None: ...

    def compile_if_stale(self, name: str) -> None: ...

    def map_path(self, name: str) -> Any: ...

    def route(self, destination: str) -> Any: ...


@runtime_checkable
class Accounts(Protocol):
    """Login accounts on the Linux mail host (Dovecot passwd-file, Postfix maps, Maildir)."""

    def state(self, address: str) -> dict[str, Any]: ...

    def wanted(self, address: str) -> dict[str, Any]: ...

    def ensure(self, address: str) -> None: ...

    def remove(self, address: str, before: dict[str, Any]) -> None: ...


@runtime_checkable
class Directory(Protocol):
    """The cloud directory: users and whether they have a mailbox."""

    def find(self, address: str) -> Any: ...

    def describe(self) -> str: ...


@runtime_checkable
class SpamFilter(Protocol):
    """A spam filter's per-domain settings (rspamd's local.d settings, its quarantine Sieve)."""

    def read_settings(self) -> str: ...

    def write_settings(self, text: str) -> None: ...

    def read_quarantine(self) -> str: ...

    def write_quarantine(self, text: str) -> None: ...

    def policies(self) -> dict[str, Any]: ...


@runtime_checkable
class PersonalData(Protocol):
    """A mailbox's contacts and inbox rules, in Microsoft Graph's shapes (`contact`,
    `messageRule`): what a copy of mail folders leaves behind. A source that can only be read
    (on-premises EWS) raises CapabilityMissing on writes."""

    def contacts(self, mailbox: str) -> list[dict[str, Any]]: ...

    def create_contact(self, mailbox: str, contact: dict[str, Any]) -> dict[str, Any]: ...

    def delete_contact(self, mailbox: str, contact_id: str) -> None: ...

    def message_rules(self, mailbox: str) -> list[dict[str, Any]]: ...

    def create_message_rule(self, mailbox: str, rule: dict[str, Any]) -> dict[str, Any]: ...

    def delete_message_rule(self, mailbox: str, rule_id: str) -> None: ...

    def folder_id(self, mailbox: str, folder: str) -> str | None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Role:
    name: str
    #: where cutover.yaml configures it: a top-level section, or a dotted path into one
    section: str
    protocol: type | None


ROLES: dict[str, Role] = {role.name: role for role in (
    Role("mail-store", "mailstores", MailStore),
    Role("dns-zone", "providers", DnsZone),
    Role("forwarding", "forwarding", Forwarding),
    Role("inventory-source", "inventory.sources", InventorySource),
    Role("sieve-store", "sieve", SieveStore),
    Role("mta-maps", "postfix", MtaMaps),
    Role("accounts", "accounts", Accounts),
    Role("directory", "directory", Directory),
    Role("spam-filter", "spamfilter", SpamFilter),
    Role("personal-data", "personal", PersonalData),
    # the Exchange management shells (on premises and Exchange Online): cmdlets through pwsh
    Role("exchange-management", "management", None),
)}

ROLE_OF_SECTION: dict[str, str] = {role.section: role.name for role in ROLES.values()}


def role_named(name: str) -> Role:
    """A role by its name or by its cutover.yaml section ("mailstores" is "mail-store")."""
    if name in ROLES:
        return ROLES[name]
    if name in ROLE_OF_SECTION:
        return ROLES[ROLE_OF_SECTION[name]]
    raise KeyError(name)


def missing_methods(cls: type, role: Role) -> list[str]:
    """The methods of the role's protocol that `cls` lacks (empty: it fits)."""
    if role.protocol is None:
        return []
    wanted = [name for name in dir(role.protocol) if not name.startswith("_")
              and callable(getattr(role.protocol, name, None))]
    return [name for name in wanted if not callable(getattr(cls, name, None))]
