"""Where each person's mailbox is after phase 2, and whether anything was left behind.

`mailbox_locations` asks the Exchange shells (a mailbox in the tenant, a RemoteMailbox on
premises, or still a mailbox on premises) and compares, per mailbox, the messages of the
on-premises mail store with those of the tenant's: what is missing is "left behind", to be set
against the items MRS reported it skipped (corrupt items within the BadItemLimit, large items
within the LargeItemLimit), as watched into the state DB by the batch steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cutover.connectors.exchange_management import management
from cutover.steps import migration_state


@dataclass(frozen=True)
class MailboxLocation:
    address: str
    location: str  # "Exchange Online", "on premises", "unknown"
    messages_onprem: int
    messages_cloud: int
    skipped_by_mrs: int  # SkippedItemCount reported for the move

    @property
    def left_behind(self) -> int:
        return max(0, self.messages_onprem - self.messages_cloud)

    @property
    def unexplained(self) -> int:
        """Messages left behind that MRS did not report: these would be lost mail."""
        return max(0, self.left_behind - self.skipped_by_mrs)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "location": self.location,
                "messages_onprem": self.messages_onprem, "messages_cloud": self.messages_cloud,
                "skipped_by_mrs": self.skipped_by_mrs, "left_behind": self.left_behind,
                "unexplained": self.unexplained}


class _Clockless:
    """The little of a step context `management()` needs outside a run."""

    def __init__(self, workspace: Any, state: Any):
        self.workspace = workspace
        self.state = state

    def connector(self, section: str, name: str) -> Any:
        return self.workspace.connector(section, name)

    def now(self) -> Any:
        return self.state.now()

    def log(self, message: str) -> None:
        """Outside a run a report reads only: no script waits on an operator here."""


def _messages(store: Any, address: str) -> int:
    with store.open(address) as session:
        return sum(folder.messages for folder in session.folders() if folder.selectable)


def mailbox_locations(workspace: Any, state: Any, addresses: list[str], *,
                      tenant: str = "tenant", onprem: str = "onprem",
                      source_store: str = "exchange", target_store: str = "cloud"
                      ) -> list[MailboxLocation]:
    ctx = _Clockless(workspace, state)
    cloud, onpremises = management(ctx, tenant), management(ctx, onprem)
    source = workspace.connector("mailstores", source_store)
    target = workspace.connector("mailstores", target_store)
    skipped: dict[str, int] = {}
    for batch in migration_state.progress(state).values():
        for row in batch["mailboxes"]:
            skipped[row["address"]] = max(skipped.get(row["address"], 0),
                                          row["items_skipped"] or 0)
    result = []
    for address in addresses:
        if cloud.mailbox(address) is not None and onpremises.remote_mailbox(address):
            location = "Exchange Online"
        elif onpremises.mailbox(address) is not None:
            location = "on premises"
        else:
            location = "unknown"
        in_cloud = _messages(target, address) if location == "Exchange Online" else 0
        result.append(MailboxLocation(address, location, _messages(source, address), in_cloud,
                                      skipped.get(address, 0)))
    return result
