"""Step kind `exo.mail_contact`: an old address keeps reaching its new home through a mail
contact in the tenant.

    - id: verification-contacts
      kind: exo.mail_contact
      for_each: {class: verification}
      params:
        name: "{local} (verification)"
        external_address: "{local}@verify.example.org"   # where mail goes
        addresses: ["{address}"]                         # old addresses that must resolve
        accounts: linux          # optional: the accounts connector that must hold the target

Management connector: `tenant`. Once MX points at Exchange Online Protection, mail for a
verification account's old address (datarequest@example.org) arrives at the tenant, which has
no recipient for it. A mail contact with that address as a proxy address resolves it and routes
it to its ExternalEmailAddress on the Linux domain. That is recipient resolution, not automatic
forwarding, so the outbound spam policy's block on external forwarding (5.7.520) does not apply
(`exo.auto_forwarding` checks what does forward).

Before anything forwards to it, the target is checked to resolve: with `accounts`, the Linux
account must exist (phase 1 made it), else the preview fails. An old address held by another
recipient of the tenant fails the preview too, naming it. Apply: New-MailContact and
Set-MailContact -EmailAddresses @{Add=...}; verify reads the contact back; rollback removes a
contact the step created (or puts back the one it replaced).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cutover.connectors.exchange_management import management
from cutover.errors import StepFailed, UsageError
from cutover.item_template import expand
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class MailContactParams(Params):
    name: str
    external_address: str
    addresses: list[str] = Field(default_factory=list)
    accounts: str | None = None
    tenant: str = "tenant"


def _wanted(ctx: Context) -> dict[str, Any]:
    params: MailContactParams = ctx.params
    return {"name": expand(params.name, ctx.item),
            "external_address": expand(params.external_address, ctx.item).lower(),
            "addresses": sorted(expand(a, ctx.item).lower() for a in params.addresses)}


def _as_json(contact: Any) -> dict[str, Any]:
    return {"name": contact.identity, "external_address": contact.target_address,
            "addresses": sorted(a for a in contact.smtp if a != contact.target_address)}


@register
class ExoMailContact(Step):
    kind = "exo.mail_contact"
    Params = MailContactParams
    summary = ("A mail contact in the tenant resolves an old address (a verification "
               "account's) and routes it to its new home; the target is checked first.")

    def preview(self, ctx: Context) -> list[Change]:
        params: MailContactParams = ctx.params
        wanted = _wanted(ctx)
        self._check_target(ctx, params, wanted["external_address"])
        tenant = management(ctx, params.tenant)
        current = tenant.mail_contact(wanted["name"])
        before = _as_json(current) if current else None
        for address in wanted["addresses"]:
            holder = next((r for r in tenant.recipients() if address in r.proxy_addresses or
                           r.address == address), None)
            if holder is not None and (current is None or holder.address != current.address):
                raise UsageError(f"{address} already belongs to {holder.address} "
                                 f"({holder.recipient_type}) in the tenant: a contact cannot "
                                 "take it")
        if before == wanted:
            ctx.log(f"{wanted['name']}: routes {', '.join(wanted['addresses'])} to "
                    f"{wanted['external_address']}")
            return []
        return [Change(f"contact {wanted['name']}", "create" if before is None else "update",
                       before, wanted,
                       f"{', '.join(wanted['addresses']) or wanted['name']} -> "
                       f"{wanted['external_address']} (mail contact)")]

    def _check_target(self, ctx: Context, params: MailContactParams, target: str) -> None:
        if params.accounts is None:
            return
        state = ctx.connector("accounts", params.accounts).state(target)
        if not state.get("passwd"):
            raise StepFailed(f"{target} does not resolve: no account on "
                             f"{params.accounts} yet (phase 1 creates it); nothing forwards "
                             "to it")

    def apply(self, ctx: Context, change: Change) -> None:
        params: MailContactParams = ctx.params
        tenant = management(ctx, params.tenant)
        current = tenant.mail_contact(change.after["name"])
        if current is not None and _as_json(current) == change.after:
            return
        if current is not None:
            tenant.remove_mail_contact(change.after["name"])
        tenant.new_mail_contact(change.after["name"], change.after["external_address"],
                                change.after["addresses"])

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: MailContactParams = ctx.params
        tenant = management(ctx, params.tenant)
        findings = []
        expected = [c.after for c in changes] if changes else [_wanted(ctx)]
        names = [c.after["name"] if c.after else c.before["name"] for c in changes] or \
            [_wanted(ctx)["name"]]
        for name, after in zip(names, expected, strict=True):
            current = tenant.mail_contact(name)
            found = _as_json(current) if current else None
            if found != after:
                findings.append(Finding(f"contact {name}", f"reads back as {found}"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        params: MailContactParams = ctx.params
        current = management(ctx, params.tenant).mail_contact(
            (change.after or change.before)["name"])
        return _as_json(current) if current else None

    def rollback(self, ctx: Context, change: Change) -> None:
        params: MailContactParams = ctx.params
        tenant = management(ctx, params.tenant)
        name = (change.after or change.before)["name"]
        current = tenant.mail_contact(name)
        if current is not None and (change.before is None or
                                    _as_json(current) != change.before):
            tenant.remove_mail_contact(name)
        if change.before is not None and (current is None or
                                          _as_json(current) != change.before):
            tenant.new_mail_contact(change.before["name"], change.before["external_address"],
                                    change.before["addresses"])

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-MailContact -Identity '{params.name}' | Format-List "
                "ExternalEmailAddress,EmailAddresses"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"Remove-MailContact -Identity '{params.name}' (if cutover created it)"]
