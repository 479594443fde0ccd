"""Moved to cutover.connectors.tenant_model (the routing facts are a role's vocabulary, shared
by the Exchange Online connectors and the routing model); this name stays for imports."""

from cutover.connectors.tenant_model import (  # noqa: F401
    AcceptedDomain,
    DomainType,
    MailConnector,
    TenantRecipient,
    TenantRouting,
)
