"""Step kind `exo.auto_forwarding`: what forwards in the tenant can, and every forwarding target
resolves. Changes nothing.

    - id: forwarding-check
      kind: exo.auto_forwarding
      confirm: false
      params: {tenant: tenant}

Exchange Online blocks automatic forwarding to external domains unless the outbound spam
filter policy allows it (AutoForwardingMode `Automatic` and `Off` block it: the sender gets
5.7.520 Access denied). Verify reads the default policy (Get-HostedOutboundSpamFilterPolicy)
and every mailbox's ForwardingSmtpAddress (Get-Mailbox): a mailbox forwarding outside the
tenant's accepted domains while the policy blocks it is an error (use a mail contact, see
`exo.mail_contact`, or a connector-scoped policy); a forward to an address inside the tenant's
domains that no recipient holds is an error too (it would bounce). Mail contacts and mail users
are routing, not forwarding: their external addresses are reported as information only.
Apply and rollback have nothing to do.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.exchange_management import management
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class AutoForwardingParams(Params):
    tenant: str = "tenant"


@register
class ExoAutoForwarding(Step):
    kind = "exo.auto_forwarding"
    Params = AutoForwardingParams
    summary = ("Check that what forwards in the tenant is allowed to (outbound spam policy) "
               "and that every forwarding target resolves.")

    def preview(self, ctx: Context) -> list[Change]:
        params: AutoForwardingParams = ctx.params
        mode = management(ctx, params.tenant).auto_forwarding_mode()
        ctx.log(f"outbound spam policy: AutoForwardingMode {mode} (changes nothing)")
        return []

    def apply(self, ctx: Context, change: Change) -> None:
        return None

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: AutoForwardingParams = ctx.params
        return forwarding_findings(management(ctx, params.tenant))

    def rollback(self, ctx: Context, change: Change) -> None:
        return None

    def manual_checks(self, params: Any) -> list[str]:
        return ["Get-HostedOutboundSpamFilterPolicy | Format-Table Name,AutoForwardingMode",
                "Get-Mailbox -Filter 'ForwardingSmtpAddress -ne $null' | Format-Table "
                "PrimarySmtpAddress,ForwardingSmtpAddress"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["Nothing to undo: this check changes nothing."]


def forwarding_findings(tenant: Any) -> list[Finding]:
    domains = {d.name for d in tenant.accepted_domains()}
    recipients = tenant.recipients()
    known = {a for r in recipients for a in (r.address, *r.proxy_addresses)}
    allowed = tenant.automatic_forwarding_allowed()
    findings = []
    for recipient in recipients:
        target = recipient.forwarding_address
        if not target:
            continue
        internal = target.rpartition("@")[2] in domains
        if internal and target not in known:
            findings.append(Finding(recipient.address, f"forwards to {target}, which no "
                                                       "recipient of the tenant holds"))
        elif not internal and not allowed:
            findings.append(Finding(recipient.address, f"forwards to {target} outside the "
                                                       "tenant, but the outbound spam policy "
                                                       "blocks automatic forwarding (5.7.520)"))
    return findings
