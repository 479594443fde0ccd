"""What Exchange Online knows about mail flow, as plain values (the tenant's routing facts).

The Exchange Online management connectors (`exo` through pwsh, the `exo-file` twin) read these
from Get-AcceptedDomain, Get-OutboundConnector / Get-InboundConnector and Get-Recipient; the
routing model (`cutover.routes`) reads them through the `TenantRouting` protocol to trace where
mail for an address goes once MX points at Exchange Online Protection.

Field values follow the cmdlets' output (DomainType "Authoritative" / "InternalRelay" /
"ExternalRelay"; RecipientTypeDetails "UserMailbox", "MailUser", "MailContact",
"RemoteUserMailbox", ...), so a recorded `ConvertTo-Json` maps onto them one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

DomainType = Literal["Authoritative", "InternalRelay", "ExternalRelay"]


@dataclass(frozen=True)
class AcceptedDomain:
    name: str  # DomainName, lower case
    domain_type: DomainType
    default: bool = False


@dataclass(frozen=True)
class MailConnector:
    """An Exchange Online connector. `direction` says which cmdlet it came from."""

    name: str
    direction: Literal["outbound", "inbound"]
    enabled: bool = True
    #: outbound: RecipientDomains ("*" = all); inbound: SenderDomains
    domains: tuple[str, ...] = ()
    #: outbound: SmartHosts (host names or IPs); inbound: SenderIPAddresses
    hosts: tuple[str, ...] = ()
    #: "OnPremises" or "Partner" (ConnectorType)
    connector_type: str = "OnPremises"


@dataclass(frozen=True)
class TenantRecipient:
    """One recipient of the tenant: where mail to `address` ends inside Exchange Online."""

    address: str  # PrimarySmtpAddress, lower case
    recipient_type: str  # RecipientTypeDetails
    #: ExternalEmailAddress of a MailUser/MailContact (mail leaves the tenant to it), "" if none
    external_address: str = ""
    #: ForwardingSmtpAddress of a mailbox, "" if none
    forwarding_address: str = ""
    proxy_addresses: tuple[str, ...] = field(default=())


@runtime_checkable
class TenantRouting(Protocol):
    """The tenant's mail-flow facts, read only."""

    def accepted_domains(self) -> list[AcceptedDomain]: ...

    def connectors(self) -> list[MailConnector]: ...

    def recipients(self) -> list[TenantRecipient]: ...

    def automatic_forwarding_allowed(self) -> bool:
        """The outbound anti-spam policy's AutoForwardingMode is On (not Automatic/Off)."""
        ...
