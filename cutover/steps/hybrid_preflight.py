"""Step kind `hybrid.preflight`: before a batch is made, every mailbox it will move is checked
against the tenant, and what would not come across is said per mailbox. Changes nothing.

    - id: preflight
      kind: hybrid.preflight
      confirm: false
      params:
        mailboxes: {destination: cloud}     # the inventory's recipients the batch will move
        endpoint: mail.example.org          # the migration endpoint (the hybrid MRS proxy)
        routing_domain: exampleorg.mail.onmicrosoft.com
        quota_gb: 100                       # the target mailbox quota (E3: 100, E1: 50)

Management connectors: `tenant` (Exchange Online) and `onprem` (the Exchange Management Shell).

Per mailbox (a blocker is an error; the step fails with exit 1 and the table of them):
- it is a mailbox on premises (Get-Mailbox) and not already a mailbox in the tenant;
- a mail user in the tenant with the same ExchangeGuid (Get-MailUser: directory
  synchronisation made it; without the GUID, MRS cannot move into it);
- an address in the tenant's routing domain (the RemoteRoutingAddress after the move), and the
  LegacyExchangeDN carried as an X500 address (replies to old mail, Outlook autocomplete);
- a licence for user mailboxes (SKUAssigned; shared and resource mailboxes need none);
- the size (Get-MailboxFolderStatistics) under the target quota;
- what would not come across (warnings): items over the large item size (150 MB, from
  -IncludeAnalysis: the largest item of each folder), and forwarding set on the mailbox (MRS
  carries ForwardingSmtpAddress to the cloud mailbox).

Once for the batch: the migration endpoint answers (Test-MigrationServerAvailability
-Endpoint: the endpoint's stored MRS proxy credentials; the -ExchangeRemoteMove form would need
them again), and the hybrid inbound connector from on-premises exists (an enabled OnPremises
inbound connector: mail from on-premises to moved mailboxes stays internal).

Apply changes nothing; rollback has nothing to undo.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cutover.connectors.exchange_management import management
from cutover.steps.base import Change, Context, Finding, Params, Step, register
from cutover.steps.hybrid_support import planned_mailboxes

GB = 1 << 30
MB = 1 << 20
NEEDS_LICENCE = ("UserMailbox",)


class HybridPreflightParams(Params):
    tenant: str = "tenant"
    onprem: str = "onprem"
    mailboxes: dict[str, str | list[str]] = Field(default_factory=lambda: {
        "destination": "cloud"})
    endpoint: str
    routing_domain: str
    quota_gb: float = 100.0
    large_item_mb: int = 150


@register
class HybridPreflight(Step):
    kind = "hybrid.preflight"
    Params = HybridPreflightParams
    summary = ("Check every mailbox a hybrid batch will move (mail user with its ExchangeGuid, "
               "licence, routing address, X500, size) and say what would not come across.")

    def preview(self, ctx: Context) -> list[Change]:
        params: HybridPreflightParams = ctx.params
        count = len(planned_mailboxes(ctx, params.mailboxes))
        ctx.log(f"checks {count} mailbox(es) against {management(ctx, params.tenant).describe()}"
                " (changes nothing)")
        return []

    def apply(self, ctx: Context, change: Change) -> None:
        return None  # preview never proposes a change

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: HybridPreflightParams = ctx.params
        tenant = management(ctx, params.tenant)
        onprem = management(ctx, params.onprem)
        findings = self._batch_findings(params, tenant)
        for address in planned_mailboxes(ctx, params.mailboxes):
            findings += mailbox_findings(params, tenant, onprem, address)
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        return None

    def _batch_findings(self, params: HybridPreflightParams, tenant: Any) -> list[Finding]:
        findings = []
        test = tenant.test_migration_endpoint(params.endpoint)
        if not test.ok:
            findings.append(Finding(f"endpoint {params.endpoint}", "not reachable: " +
                                    (test.message or "Test-MigrationServerAvailability failed")))
        inbound = [c for c in tenant.connectors() if c.direction == "inbound" and c.enabled
                   and c.connector_type == "OnPremises"]
        if not inbound:
            findings.append(Finding("connectors", "no enabled OnPremises inbound connector: "
                                    "run the Hybrid Configuration Wizard (mail from on-premises "
                                    "to moved mailboxes would arrive as external)"))
        if params.routing_domain not in {d.name for d in tenant.accepted_domains()}:
            findings.append(Finding("accepted domains", f"{params.routing_domain} is not an "
                                    "accepted domain of the tenant"))
        return findings

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Test-MigrationServerAvailability -Endpoint {params.endpoint}",
                "Get-MailUser -Identity <address> | Format-List ExchangeGuid,EmailAddresses,"
                "SKUAssigned   (Exchange Online)",
                "Get-Mailbox -Identity <address> | Format-List ExchangeGuid,LegacyExchangeDN   "
                "(on premises)"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["Nothing to undo: the preflight changes nothing."]


def mailbox_findings(params: HybridPreflightParams, tenant: Any, onprem: Any,
                     address: str) -> list[Finding]:
    source = onprem.mailbox(address)
    if source is None:
        if onprem.remote_mailbox(address) is not None:
            return []  # already moved: a RemoteMailbox on premises
        return [Finding(address, "no mailbox on premises (Get-Mailbox)")]
    if tenant.mailbox(address) is not None:
        return [Finding(address, "already has a mailbox in Exchange Online: a move would "
                                 "fail; remove the cloud mailbox or its licence's Exchange "
                                 "plan, so that it is a mail user again")]
    target = tenant.mail_user(address)
    if target is None:
        return [Finding(address, "no mail user in the tenant: directory synchronisation has "
                                 "not created it (is the mailbox's OU synchronised?)")]
    findings = []
    if target.exchange_guid != source.exchange_guid:
        findings.append(Finding(address, f"the mail user's ExchangeGuid "
                                         f"{target.exchange_guid or '(none)'} is not the "
                                         f"mailbox's {source.exchange_guid}: Set-MailUser "
                                         f"{address} -ExchangeGuid {source.exchange_guid}"))
    if not any(a.endswith(f"@{params.routing_domain}") for a in target.smtp):
        findings.append(Finding(address, f"no address in the routing domain "
                                         f"{params.routing_domain} (the email address policy "
                                         "on premises adds it; then synchronise)"))
    if source.legacy_dn and f"x500:{source.legacy_dn}".lower() not in {
            a.lower() for a in target.x500}:
        findings.append(Finding(address, "the LegacyExchangeDN is not on the mail user as an "
                                         "X500 address: replies to old mail would bounce"))
    if source.recipient_type in NEEDS_LICENCE and target.licensed is False:
        findings.append(Finding(address, "no Exchange Online licence (assign one before "
                                         "completion; the 30-day grace is not a plan)"))
    folders = onprem.folder_statistics(address, analysis=True)
    size = sum(f.size_bytes for f in folders)
    quota = target.quota_bytes or int(params.quota_gb * GB)
    if size > quota:
        findings.append(Finding(address, f"{size / GB:.1f} GB does not fit the target quota "
                                         f"of {quota / GB:.0f} GB"))
    large = [f for f in folders if f.top_item_bytes > params.large_item_mb * MB]
    if large:
        findings.append(Finding(address, f"at least {len(large)} item(s) over "
                                         f"{params.large_item_mb} MB will not come across "
                                         f"(in {', '.join(f.path for f in large)}): the "
                                         "batch's LargeItemLimit must allow them",
                                "warning"))
    if source.forwarding_address:
        findings.append(Finding(address, f"forwards to {source.forwarding_address}: the "
                                         "forwarding moves with the mailbox", "warning"))
    return findings
