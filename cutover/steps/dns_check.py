"""dns.check: lint a domain's mail DNS as a plan step, e.g. before and after an MX switch.

    - id: check-after-mx-switch
      kind: dns.check
      requires: [switch-mx]
      params:
        domain: example.org
        provider: dns            # or server: 192.0.2.53:53 (live DNS); default provider "dns"
        dkim_selectors: [selector1]
        allow: [dmarc]           # checks whose errors only warn (known issues, fixed later)

The step changes nothing. Preview always shows one informational change ("check mail DNS of
...") so that the runner applies (a no-op) and then verifies: verify runs the linter and turns
its errors into findings, which fail the step. Rolling the step back is a no-op, and verifying
that rollback checks nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from cutover.checks.mail_dns import check_domain, open_lookup
from cutover.steps.base import Change, Context, Finding, Params, Step, register

CHECKS = ("mx", "spf", "dmarc", "dkim", "autodiscover")


class DnsCheckParams(Params):
    domain: str
    provider: str | None = "dns"
    server: str | None = None
    dkim_selectors: list[str] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_checks(self) -> DnsCheckParams:
        unknown = sorted(set(self.allow) - set(CHECKS))
        if unknown:
            raise ValueError(f"allow: unknown check(s) {', '.join(unknown)} "
                             f"(known: {', '.join(CHECKS)})")
        return self


@register
class DnsCheck(Step):
    kind = "dns.check"
    Params = DnsCheckParams
    summary = "Lint the mail DNS of a domain (MX, SPF, DMARC, DKIM, autodiscover)."

    def preview(self, ctx: Context) -> list[Change]:
        # Fail here (exit 2) when the source cannot answer, rather than as a verify finding.
        open_lookup(ctx.workspace, ctx.params.domain, *_source(ctx.params))
        domain = ctx.params.domain.rstrip(".").lower()
        return [Change(f"mail DNS {domain}", "update", None,
                       {"domain": domain, "check": "mail-dns"},
                       f"check the mail DNS of {domain} (changes nothing)")]

    def apply(self, ctx: Context, change: Change) -> None:
        return None  # a check changes nothing; verify does the work

    def rollback(self, ctx: Context, change: Change) -> None:
        return None

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        if changes and all(change.after is None for change in changes):
            return []  # verifying a rollback of a check: nothing was changed
        params: DnsCheckParams = ctx.params
        findings, _ = check_domain(ctx.workspace, params.domain, *_source(params),
                                   dkim_selectors=params.dkim_selectors)
        result = []
        for finding in findings:
            if finding.severity == "info":
                ctx.log(f"{finding.name}: {finding.message}")
                continue
            severity = ("warning" if finding.check in params.allow else finding.severity)
            result.append(Finding(f"{finding.check} {finding.name}", finding.message,
                                  severity))  # type: ignore[arg-type]
        return result

    def manual_checks(self, params: Any) -> list[str]:
        where = f"--server {params.server}" if params.server else f"--provider {params.provider}"
        return [f"cutover dns check {params.domain} {where}"]


def _source(params: DnsCheckParams) -> tuple[str | None, str | None]:
    """(server, provider): a server, when given, wins over the default provider."""
    return (params.server, None) if params.server else (None, params.provider)
