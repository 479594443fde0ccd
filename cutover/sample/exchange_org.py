"""The sample organisation as its Exchange shells see it: the on-premises organisation
(`exchange-file` twin, exchange/management/) and the Exchange Online tenant in hybrid with it
(`exo-file` twin, tenant/), as they stand before phase 2.

The Hybrid Configuration Wizard has run: the migration endpoint (the MRS proxy on
mail.example.org) and the inbound connector from on-premises exist; there is no outbound
connector back to on-premises, and example.org is Authoritative. Directory synchronisation
made a mail user for every mailbox that moves (people, shared mailboxes, rooms), with its
ExchangeGuid, the X500 of its LegacyExchangeDN and its routing-domain address; people are
licensed. The mailboxes that stay (service accounts, unknown, the discovery mailbox) and the
verification accounts that went to Linux in phase 1 are not synchronised (their OUs are out of
scope), so the tenant has no recipient for them.

Two mailboxes have what real stores have: sean.obrien@ 2 corrupt items (bad items MRS skips
within the plan's BadItemLimit, and that fail the mailbox above it), julia.wagner@ one item of
163 MB (a large item, within the plan's LargeItemLimit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cutover.connectors.exchange.shell_file import by_address, write_json
from cutover.sample.org import OLD_DOMAIN, SampleRecipient

ROUTING_DOMAIN = "exampleorg.mail.onmicrosoft.com"
INITIAL_DOMAIN = "exampleorg.onmicrosoft.com"
ONPREM_HOST = "mail.example.org"
LEGACY_DN = "/o=Agency/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn="
MOVES = ("person", "shared", "resource")
STORE = {"sean.obrien@example.org": {"corrupt_items": 2},
         "julia.wagner@example.org": {"large_items": [{"folder": "/Inbox",
                                                       "size_bytes": 171_337_216}]}}


def onprem_mailbox(r: SampleRecipient) -> dict[str, Any]:
    """Get-Mailbox of one recipient, as ConvertTo-Json writes it."""
    addresses = [f"SMTP:{r.address}"] + [f"smtp:{a}" for a in r.aliases]
    if r.role in MOVES:  # the email address policy of the synchronised OUs
        addresses.append(f"smtp:{r.local}@{ROUTING_DOMAIN}")
    return {"Name": r.local, "Alias": r.local, "DisplayName": r.display_name,
            "Identity": f"{OLD_DOMAIN}/Users/{r.display_name}",
            "PrimarySmtpAddress": r.address, "RecipientTypeDetails": r.recipient_type,
            "ExchangeGuid": r.guid, "LegacyExchangeDN": LEGACY_DN + r.local,
            "Database": "DB01", "EmailAddresses": addresses,
            "ProhibitSendReceiveQuota": "Unlimited", "ForwardingSmtpAddress": None}


def tenant_mail_user(r: SampleRecipient) -> dict[str, Any]:
    """Get-MailUser / Get-Recipient of a synchronised mailbox, before it moves."""
    addresses = [f"SMTP:{r.address}"] + [f"smtp:{a}" for a in r.aliases] + [
        f"smtp:{r.local}@{ROUTING_DOMAIN}", f"X500:{LEGACY_DN}{r.local}"]
    return {"Name": r.local, "Alias": r.local, "DisplayName": r.display_name,
            "Identity": r.local, "PrimarySmtpAddress": r.address,
            "RecipientType": "MailUser", "RecipientTypeDetails": "MailUser",
            "ExternalEmailAddress": f"SMTP:{r.address}", "ExchangeGuid": r.guid,
            "EmailAddresses": addresses, "SKUAssigned": r.role == "person",
            "ProhibitSendReceiveQuota": "100 GB (107,374,182,400 bytes)"}


def _domain(name: str, default: bool = False, initial: bool = False) -> dict[str, Any]:
    return {"Name": name, "DomainName": name, "Identity": name, "DomainType": "Authoritative",
            "Default": default, "InitialDomain": initial}


def write_exchange_management(target: Path, org: list[SampleRecipient]) -> None:
    onprem = target / "exchange" / "management"
    write_json(onprem / "mailboxes.json", by_address([onprem_mailbox(r) for r in org]))
    write_json(onprem / "remote-mailboxes.json", [])
    write_json(onprem / "store.json", STORE)
    tenant = target / "tenant"
    write_json(tenant / "recipients.json",
               by_address([tenant_mail_user(r) for r in org if r.role in MOVES]))
    write_json(tenant / "accepted-domains.json",
               [_domain(OLD_DOMAIN, default=True), _domain(INITIAL_DOMAIN, initial=True),
                _domain(ROUTING_DOMAIN)])
    write_json(tenant / "inbound-connectors.json", [{
        "Name": "Inbound from 7f3e5c2a-1b9d-4e0f-a6c8-2d4b9e1f0a37",
        "Identity": "Inbound from 7f3e5c2a-1b9d-4e0f-a6c8-2d4b9e1f0a37",
        "ConnectorType": "OnPremises", "ConnectorSource": "HybridWizard", "Enabled": True,
        "SenderDomains": ["smtp:*;1"], "SenderIPAddresses": [], "RequireTls": True,
        "TlsSenderCertificateName": ONPREM_HOST}])
    write_json(tenant / "outbound-connectors.json", [])
    write_json(tenant / "migration-endpoints.json", [{
        "Identity": ONPREM_HOST, "EndpointType": "ExchangeRemoteMove",
        "RemoteServer": ONPREM_HOST, "MaxConcurrentMigrations": 20,
        "MaxConcurrentIncrementalSyncs": 10}])
    write_json(tenant / "policies.json", {"HostedOutboundSpamFilterPolicy": [
        {"Identity": "Default", "Name": "Default", "IsDefault": True,
         "AutoForwardingMode": "Automatic"}]})
    write_json(tenant / "migration" / "batches.json", {})
    write_json(tenant / "migration" / "move-requests.json", [])
