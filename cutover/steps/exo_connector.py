"""Step kind `exo.connector`: an Exchange Online connector exists with these settings.

    - id: outbound-to-onprem
      kind: exo.connector
      params:
        name: To on-premises (cutover)
        direction: outbound                # outbound | inbound
        domains: [example.org]             # outbound: RecipientDomains; inbound: SenderDomains
        hosts: [mail.example.org]          # outbound: SmartHosts; inbound: SenderIPAddresses
        tls: CertificateValidation         # outbound: TlsSettings; inbound: RequireTls
    - id: inbound-from-linux
      kind: exo.connector
      params: {name: From the Linux relay (cutover), direction: inbound,
               domains: [example.org, verify.example.org], hosts: [192.0.2.25],
               tls: RequireTls}

Management connector: `tenant`. Outbound to on-premises is what an InternalRelay domain
needs for the mailboxes that stay (New-OutboundConnector -ConnectorType OnPremises
-UseMXRecord $false); inbound from the Linux relay and from on-premises keeps their mail
internal rather than anonymous internet mail (New-InboundConnector -ConnectorType
OnPremises). Preview compares with Get-*Connector; verify reads it back; rollback removes a
connector the step created, or sets back the settings it had.
"""

from __future__ import annotations

from typing import Any, Literal

from cutover.connectors.exchange_management import ConnectorSettings, management
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class ConnectorParams(Params):
    name: str
    direction: Literal["outbound", "inbound"]
    domains: list[str]
    hosts: list[str]
    connector_type: Literal["OnPremises", "Partner"] = "OnPremises"
    tls: str = ""
    enabled: bool = True
    comment: str = "managed by cutover"
    tenant: str = "tenant"


def wanted(params: ConnectorParams) -> ConnectorSettings:
    return ConnectorSettings(params.name, params.direction, params.connector_type,
                             params.enabled, tuple(d.lower() for d in params.domains),
                             tuple(h.lower() for h in params.hosts), params.tls,
                             params.comment)


@register
class ExoConnector(Step):
    kind = "exo.connector"
    Params = ConnectorParams
    summary = ("An Exchange Online inbound or outbound connector exists with these settings "
               "(to on-premises, from the Linux relay).")

    def preview(self, ctx: Context) -> list[Change]:
        params: ConnectorParams = ctx.params
        current = management(ctx, params.tenant).mail_connector(params.name, params.direction)
        target = wanted(params)
        item = f"{params.direction} connector {params.name}"
        if current is None:
            return [Change(item, "create", None, target.to_json(),
                           f"new {params.direction} connector {params.name}: "
                           f"{', '.join(target.domains)} via {', '.join(target.hosts)}")]
        if current == target:
            ctx.log(f"{item}: as wanted")
            return []
        return [Change(item, "update", current.to_json(), target.to_json(),
                       f"{item}: settings differ, set them")]

    def apply(self, ctx: Context, change: Change) -> None:
        params: ConnectorParams = ctx.params
        tenant = management(ctx, params.tenant)
        target = ConnectorSettings.from_json(change.after)
        target = ConnectorSettings(**{**target.__dict__, "comment": params.comment})
        current = tenant.mail_connector(target.name, target.direction)
        if current is None:
            tenant.new_mail_connector(target)
        elif current != target:
            tenant.set_mail_connector(target)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: ConnectorParams = ctx.params
        current = management(ctx, params.tenant).mail_connector(params.name, params.direction)
        findings = []
        for change in changes:
            expected = ConnectorSettings.from_json(change.after) if change.after else None
            if expected != current:
                findings.append(Finding(change.item, "reads back as " + (
                    "absent" if current is None else str(current.to_json()))))
        if not changes and current != wanted(params):
            findings.append(Finding(params.name, "differs from the plan"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        params: ConnectorParams = ctx.params
        current = management(ctx, params.tenant).mail_connector(params.name, params.direction)
        return None if current is None else current.to_json()

    def describe_state(self, payload: Any) -> str:
        if payload is None:
            return "(no connector)"
        enabled = "" if payload.get("enabled", True) else " (disabled)"
        return (f"{', '.join(payload.get('domains') or ['*'])} -> "
                f"{', '.join(payload.get('hosts') or ['(MX)'])}{enabled}")

    def rollback(self, ctx: Context, change: Change) -> None:
        params: ConnectorParams = ctx.params
        tenant = management(ctx, params.tenant)
        current = tenant.mail_connector(params.name, params.direction)
        if change.before is None:
            if current is not None:
                tenant.remove_mail_connector(params.name, params.direction)
        elif current != ConnectorSettings.from_json(change.before):
            tenant.set_mail_connector(ConnectorSettings.from_json(change.before))

    def manual_checks(self, params: Any) -> list[str]:
        cmdlet = "Get-OutboundConnector" if params.direction == "outbound" else \
            "Get-InboundConnector"
        return [f"{cmdlet} -Identity '{params.name}' | Format-List"]

    def manual_rollback(self, params: Any) -> list[str]:
        cmdlet = "Remove-OutboundConnector" if params.direction == "outbound" else \
            "Remove-InboundConnector"
        return [f"{cmdlet} -Identity '{params.name}' (if cutover created it)"]
