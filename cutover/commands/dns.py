"""`cutover dns ...`: look at a domain's mail DNS."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cutover.commands.common import JSON_OPTION, console, print_json, workspace_of

if TYPE_CHECKING:  # the checks (dnspython) are imported when a check runs, not for --help
    from cutover.checks.mail_dns import LintFinding

app = typer.Typer(no_args_is_help=True, help="Mail DNS: lint a domain's MX, SPF, DMARC, DKIM "
                                             "and autodiscover records.")

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


@app.command()
def check(
    ctx: typer.Context,
    domain: str = typer.Argument(..., help="The mail domain, e.g. example.org."),
    server: str = typer.Option(None, "--server", help="Ask this DNS server (HOST:PORT) "
                               "instead of the system resolver."),
    provider: str = typer.Option(None, "--provider", help="Read the zones of this cutover.yaml "
                                 "provider (names outside its zones are not checked)."),
    dkim_selector: list[str] = typer.Option([], "--dkim-selector", help="A DKIM selector that "
                                            "must publish a valid key (repeatable)."),
    json_output: bool = JSON_OPTION,
) -> None:
    """Lint the mail DNS of DOMAIN: MX targets resolve, exactly one SPF record within the
    10-lookup limit, DMARC present and parseable, DKIM keys valid, autodiscover published.
    Exit 1 when an error is found, 0 otherwise (warnings do not fail).

    Example: cutover dns check example.org --provider dns --dkim-selector selector1
    """
    from cutover.checks.mail_dns import MailDnsBroken, check_domain, has_errors

    workspace = workspace_of(ctx)
    findings, source = check_domain(workspace, domain, server, provider, dkim_selector)
    failed = has_errors(findings)
    if json_output:
        print_json({"domain": domain, "source": source, "ok": not failed,
                    "findings": [f.to_json() for f in findings]})
    else:
        _render(domain, source, findings)
    if failed:
        errors = sum(1 for f in findings if f.severity == "error")
        raise MailDnsBroken(f"mail DNS of {domain}: {errors} error(s) found")


def _render(domain: str, source: str, findings: list[LintFinding]) -> None:
    from rich.table import Table
    from rich.text import Text

    if not findings:
        console.print(f"mail DNS of {domain} ({source}): no problems found", markup=False)
        return
    table = Table(title=Text(f"mail DNS of {domain} ({source})"), title_justify="left")
    for column in ("severity", "check", "name", "finding"):
        table.add_column(column, overflow="fold")
    order = {"error": 0, "warning": 1, "info": 2}
    for finding in sorted(findings, key=lambda f: order[f.severity]):
        table.add_row(f"[{_STYLE[finding.severity]}]{finding.severity}[/]", Text(finding.check),
                      Text(finding.name), Text(finding.message))  # the zone's text, as written
    console.print(table)
