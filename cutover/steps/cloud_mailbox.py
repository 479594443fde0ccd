"""Step kind `cloud.mailbox`: each person moving to Microsoft 365 has a cloud mailbox.

    - id: cloud-mailboxes-exist
      kind: cloud.mailbox
      for_each: {destination: cloud}
      params:
        directory: m365          # cutover.yaml `directory: {m365: {kind: graph-directory, ...}}`
        user: "{address}"        # the address to look up (mail, UPN or any smtp: proxy)

cutover does not create users or assign licences: an administrator provisions mailboxes in the
Microsoft 365 admin centre (or with New-MgUser / Set-MgUserLicense). This step is the gate
before mail is copied:

- preview lists every person whose mailbox is missing (nothing listed: all mailboxes exist);
- apply re-reads the directory: when the administrator has created the mailbox since the
  preview, it records that it exists (the item is marked done); otherwise it fails, naming the
  address, so the run stops before copying mail and can be resumed once the mailbox exists;
- verify fails for each mailbox that is (still) missing;
- rollback changes nothing: cutover never deletes a mailbox it did not create, so verifying a
  rollback accepts a mailbox that still exists.

This is the gate of the Graph path (plans/phase2-cloud-graph.yaml, for tenants without Exchange
hybrid). Its preview says, per mailbox, what that path does not carry, from the inventory item:
calendars and tasks (mail folders are copied by `mailbox.sync`, contacts and the inbox rules
Graph can express by `cloud.carry`), the inventoried rules Graph cannot express as messageRules
(and rules that are not Exchange inbox rules), the X500 addresses (replies to old mail and
Outlook autocomplete), forwarding, delegates and FullAccess/SendAs permissions, and the Outlook
profile (it keeps opening the old mailbox). The hybrid path (`cloud.migration_batch`) carries
all of these.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.m365.directory import has_mailbox
from cutover.errors import StepFailed
from cutover.inventory.graph_path import not_carried
from cutover.item_template import expand
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class CloudMailboxParams(Params):
    directory: str
    user: str = "{address}"


def _missing(address: str) -> str:
    return (f"no Microsoft 365 mailbox for {address}: create the user and assign an Exchange "
            "Online licence in the Microsoft 365 admin centre")


@register
class CloudMailbox(Step):
    kind = "cloud.mailbox"
    Params = CloudMailboxParams
    summary = "Check that each person has a Microsoft 365 mailbox before mail is copied."

    def preview(self, ctx: Context) -> list[Change]:
        params: CloudMailboxParams = ctx.params
        address = expand(params.user, ctx.item).strip().lower()
        if ctx.item is not None:
            ctx.log(f"{address}: the Graph copy does not carry {not_carried(ctx.item)}")
        directory = ctx.connector("directory", params.directory)
        if has_mailbox(directory.find(address)):
            ctx.log(f"{address}: mailbox exists in {directory.describe()}")
            return []
        where = {"directory": params.directory, "address": address}
        return [Change(f"{params.directory}/{address}", "create", {**where, "mailbox": None},
                       {**where, "mailbox": True},
                       f"{address}: missing in Microsoft 365, to be provisioned by an "
                       "administrator")]

    def apply(self, ctx: Context, change: Change) -> None:
        directory = ctx.connector("directory", change.after["directory"])
        user = directory.find(change.after["address"])
        if not has_mailbox(user):
            raise StepFailed(_missing(change.after["address"]))
        ctx.log(f"{change.after['address']}: mailbox {user.user_principal_name} exists")

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings = []
        for change in changes:
            if change.after is None or not change.after.get("mailbox"):
                continue  # a rollback never removes a mailbox (see the module docstring)
            directory = ctx.connector("directory", change.after["directory"])
            if not has_mailbox(directory.find(change.after["address"])):
                findings.append(Finding(change.item, _missing(change.after["address"])))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        return None  # cutover created nothing; the mailbox stays as the administrator made it

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-EXOMailbox -Identity {params.user}   (or the Microsoft 365 admin centre, "
                "Users > Active users: the user has an Exchange Online licence)"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["Nothing to undo: cutover does not create or delete Microsoft 365 mailboxes."]
