"""`cutover routes`: how mail for every domain travels now, and which addresses forward."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from cutover.commands.common import JSON_OPTION, console, print_json, workspace_of
from cutover.routes.domains import DomainRoute, Routing, compute_routing


def _mx_text(route: DomainRoute) -> str:
    if route.zone is None:
        return "[dim](no configured zone)[/dim]"
    lines = [escape(f"{preference} {host}") for preference, host in route.mx]
    return "\n".join(lines) or "[red](no MX)[/red]"


def _filter_text(route: DomainRoute) -> str:
    if route.filter_hop:
        hop = escape(route.filter_hop)
    else:
        hop = "[red]none[/red]" if route.postfix else "-"
    return hop + (f"\n[dim]postfix {escape(route.postfix)}[/dim]" if route.postfix else "")


def domains_table(routing: Routing) -> Table:
    table = Table(title="Mail routing by domain", show_lines=True)
    table.add_column("Domain", no_wrap=True, style="bold")
    table.add_column("MX", overflow="fold")
    table.add_column("Filter hop", overflow="fold")
    table.add_column("Next hop", overflow="fold")
    table.add_column("Mail store", overflow="fold")
    for route in routing.domains:
        table.add_row(escape(route.domain), _mx_text(route), _filter_text(route),
                      escape(route.next_hop or "-"), escape(route.mail_store or "?"))
    return table


def forwards_table(routing: Routing) -> Table:
    table = Table(title="Forwarded addresses")
    table.add_column("Old address", no_wrap=True)
    table.add_column("New address", overflow="fold")
    table.add_column("Via", overflow="fold")
    for forward in routing.forwards:
        table.add_row(escape(forward.old), escape(forward.new), escape(forward.via))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def routes(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
        """Show how mail for every domain is routed: MX hosts, spam filter hop, next hop, final
        mail store; and every forwarded address, old -> new.

        Example: cutover routes --json
        """
        routing = compute_routing(workspace_of(ctx))
        if as_json:
            print_json(routing.to_json())
            return
        console.print(domains_table(routing))
        if routing.forwards:
            console.print(forwards_table(routing))
        else:
            console.print("no forwarded addresses")
        for note in routing.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
