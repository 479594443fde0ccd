"""The Exchange management role: what steps ask of an Exchange organisation's shell.

    management:
      onprem:                     # the on-premises Exchange Management Shell
        kind: exchange-shell      # or exchange-file, its twin
        ...
      tenant:                     # Exchange Online PowerShell
        kind: exo                 # or exo-file, its twin
        ...

Steps get them with `ctx.connector("management", name)` (see `management()` below, which also
hands a twin the runner's clock). Two protocols share one base: `OnPremisesManagement` (the
mailboxes to move, their folder statistics, the RemoteMailbox they become) and
`TenantManagement` (the mail users they arrive as, migration batches, the offboarding move back,
and mail flow: accepted domains, connectors, mail contacts, the outbound spam policy); the
tenant also speaks `TenantRouting` (cutover.connectors.tenant_model), which the routing
model reads.

Values are the cmdlets' output parsed by cutover.parsers.exchange_objects; a method that looks
something up returns None (or []) when Exchange says it does not exist, and raises
`CmdletFailed` for any other error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cutover.connectors.tenant_model import TenantRouting
from cutover.parsers.exchange_objects import (
    ConnectorSettings,
    EndpointTest,
    FolderStatistics,
    MigrationBatch,
    MigrationUserStatistics,
    MoveRequest,
    Recipient,
)

__all__ = ["ConnectorSettings", "EndpointTest", "ExchangeManagement", "FolderStatistics",
           "MigrationBatch", "MigrationUserStatistics", "MoveRequest", "OnPremisesManagement",
           "Recipient", "TenantManagement", "management"]

Clock = Callable[[], datetime]


@runtime_checkable
class ExchangeManagement(Protocol):
    """What both shells answer."""

    def describe(self) -> str: ...

    def use_clock(self, clock: Clock) -> None:
        """The runner's clock (a twin moves its simulated MRS along it; a shell ignores it)."""
        ...

    def use_log(self, log: Callable[[str], None]) -> None:
        """Where render mode shows each script it wants run (the console); others ignore it."""
        ...

    def mailbox(self, identity: str) -> Recipient | None:
        """Get-Mailbox -Identity: None if there is no such mailbox here."""
        ...

    def mailboxes(self) -> list[Recipient]:
        """Get-Mailbox -ResultSize Unlimited."""
        ...

    def folder_statistics(self, identity: str, analysis: bool = False) -> list[FolderStatistics]:
        """Get-MailboxFolderStatistics (-IncludeAnalysis: the largest item per folder)."""
        ...


@runtime_checkable
class OnPremisesManagement(ExchangeManagement, Protocol):
    def remote_mailbox(self, identity: str) -> Recipient | None:
        """Get-RemoteMailbox: what a moved mailbox is on premises once the move completed."""
        ...


@runtime_checkable
class TenantManagement(ExchangeManagement, TenantRouting, Protocol):
    # --- recipients ---
    def mail_user(self, identity: str) -> Recipient | None: ...

    def mail_contact(self, identity: str) -> Recipient | None: ...

    def new_mail_contact(self, name: str, external_address: str,
                         extra_addresses: list[str]) -> Recipient: ...

    def remove_mail_contact(self, identity: str) -> None: ...

    # --- migration ---
    def test_migration_endpoint(self, endpoint: str) -> EndpointTest: ...

    def migration_batch(self, name: str) -> MigrationBatch | None: ...

    def new_migration_batch(self, name: str, users: list[str], *, source_endpoint: str,
                            target_delivery_domain: str, bad_item_limit: int | None,
                            large_item_limit: int | None, complete_after: datetime | None,
                            auto_start: bool) -> MigrationBatch: ...

    def add_migration_users(self, name: str, users: list[str]) -> None: ...

    def set_migration_batch_limits(self, name: str, bad_item_limit: int | None,
                                   large_item_limit: int | None) -> None: ...

    def start_migration_batch(self, name: str) -> None: ...

    def stop_migration_batch(self, name: str) -> None: ...

    def complete_migration_batch(self, name: str) -> None: ...

    def remove_migration_batch(self, name: str) -> None: ...

    def migration_users(self, batch: str) -> list[MigrationUserStatistics]: ...

    def move_request(self, identity: str) -> MoveRequest | None: ...

    def new_outbound_move_request(self, identity: str, *, remote_host: str,
                                  target_database: str, target_delivery_domain: str,
                                  bad_item_limit: int | None) -> None: ...

    def remove_move_request(self, identity: str) -> None: ...

    # --- mail flow ---
    def set_accepted_domain(self, name: str, domain_type: str) -> None: ...

    def mail_connector(self, name: str, direction: str) -> ConnectorSettings | None: ...

    def new_mail_connector(self, settings: ConnectorSettings) -> None: ...

    def set_mail_connector(self, settings: ConnectorSettings) -> None: ...

    def remove_mail_connector(self, name: str, direction: str) -> None: ...

    def auto_forwarding_mode(self) -> str:
        """AutoForwardingMode of the default outbound spam filter policy."""
        ...


def management(ctx: Any, name: str) -> Any:
    """The `management:` connector `name`, told the runner's clock and log (steps call this)."""
    connector = ctx.connector("management", name)
    connector.use_clock(ctx.now)
    connector.use_log(ctx.log)
    return connector


def migration_csv(users: list[str]) -> bytes:
    """The CSV New-MigrationBatch takes for a remote move: one EmailAddress column."""
    return ("EmailAddress\r\n" + "".join(f"{user}\r\n" for user in users)).encode()
