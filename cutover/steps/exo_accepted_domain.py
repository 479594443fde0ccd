"""Step kind `exo.accepted_domain`: an accepted domain of the tenant is InternalRelay while any
recipient of the domain stays on premises, Authoritative once none does.

    - id: internal-relay
      kind: exo.accepted_domain
      params:
        domain: example.org
        domain_type: auto          # auto | InternalRelay | Authoritative

Management connectors: `tenant`, and `onprem` for `auto`. Once MX points at Exchange Online
Protection, an Authoritative domain rejects mail for any address the tenant does not know
(550 5.4.1): the mailboxes that stay on premises (service accounts, the discovery mailbox,
anything not synchronised) would lose their inbound mail. With `auto`, the preview names the
on-premises mailboxes of the domain (Get-Mailbox) and wants InternalRelay while there is one;
verify reads the domain back and warns when no enabled outbound connector relays the domain
to on-premises (see `exo.connector`). Rollback sets the type it had.
"""

from __future__ import annotations

from typing import Any, Literal

from cutover.connectors.exchange_management import management
from cutover.errors import NotFound
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class AcceptedDomainParams(Params):
    domain: str
    domain_type: Literal["auto", "InternalRelay", "Authoritative"] = "auto"
    tenant: str = "tenant"
    onprem: str = "onprem"


def staying_on_premises(ctx: Context, params: AcceptedDomainParams) -> list[str]:
    """Primary addresses of the on-premises mailboxes holding an address of the domain."""
    onprem = management(ctx, params.onprem)
    suffix = f"@{params.domain.lower()}"
    return sorted(mailbox.address for mailbox in onprem.mailboxes()
                  if any(address.endswith(suffix) for address in mailbox.smtp))


@register
class ExoAcceptedDomain(Step):
    kind = "exo.accepted_domain"
    Params = AcceptedDomainParams
    summary = ("Make the tenant relay a domain to on-premises (InternalRelay) while any of its "
               "mailboxes stays there, Authoritative once none does.")

    def _current(self, ctx: Context, params: AcceptedDomainParams) -> str:
        tenant = management(ctx, params.tenant)
        for domain in tenant.accepted_domains():
            if domain.name == params.domain.lower():
                return domain.domain_type
        raise NotFound(f"{params.domain} is not an accepted domain of "
                       f"{tenant.describe()}")

    def preview(self, ctx: Context) -> list[Change]:
        params: AcceptedDomainParams = ctx.params
        current = self._current(ctx, params)
        wanted, why = params.domain_type, "as the plan says"
        if wanted == "auto":
            staying = staying_on_premises(ctx, params)
            wanted = "InternalRelay" if staying else "Authoritative"
            names = ", ".join(address.split("@")[0] + "@" for address in staying[:5])
            why = (f"{len(staying)} mailbox(es) stay on premises ({names}"
                   f"{', ...' if len(staying) > 5 else ''}): with Authoritative, Exchange "
                   "Online Protection would reject their mail" if staying else
                   "no mailbox of the domain is left on premises")
        if wanted == current:
            ctx.log(f"{params.domain} is {current} ({why})")
            return []
        return [Change(f"accepted domain {params.domain}", "update",
                       {"domain": params.domain, "domain_type": current},
                       {"domain": params.domain, "domain_type": wanted},
                       f"{params.domain}: {current} -> {wanted}; {why}")]

    def apply(self, ctx: Context, change: Change) -> None:
        params: AcceptedDomainParams = ctx.params
        if self._current(ctx, params) != change.after["domain_type"]:
            management(ctx, params.tenant).set_accepted_domain(change.after["domain"],
                                                               change.after["domain_type"])

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: AcceptedDomainParams = ctx.params
        current = self._current(ctx, params)
        findings = [Finding(c.item, f"is {current}, not {c.after['domain_type']}")
                    for c in changes if c.after and c.after["domain_type"] != current]
        if current == "InternalRelay" and not any(
                c.direction == "outbound" and c.enabled and
                (params.domain.lower() in c.domains or "*" in c.domains)
                for c in management(ctx, params.tenant).connectors()):
            findings.append(Finding(f"accepted domain {params.domain}", "InternalRelay, but "
                                    "no enabled outbound connector relays it to on-premises "
                                    "(exo.connector): mail would loop or go to MX",
                                    "warning"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        where = change.after or change.before
        return {"domain": where["domain"], "domain_type": self._current(ctx, ctx.params)}

    def comparable(self, payload: Any) -> Any:
        return None if payload is None else payload.get("domain_type")

    def describe_state(self, payload: Any) -> str:
        return str(self.comparable(payload))

    def rollback(self, ctx: Context, change: Change) -> None:
        params: AcceptedDomainParams = ctx.params
        if change.before and self._current(ctx, params) != change.before["domain_type"]:
            management(ctx, params.tenant).set_accepted_domain(change.before["domain"],
                                                               change.before["domain_type"])

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-AcceptedDomain {params.domain} | Format-List DomainName,DomainType"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"Set-AcceptedDomain -Identity {params.domain} -DomainType <the type before>"]
