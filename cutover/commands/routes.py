"""`cutover routes`: where mail goes. Alone, the per-domain table (MX, filter hop, next hop,
mail store) and every forwarded address; `trace`, `check`, `graph` and `probe` below it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cutover.commands.common import JSON_OPTION, console, escape, print_json, workspace_of
from cutover.errors import UsageError

if TYPE_CHECKING:  # what reads the routes is imported by the commands that read them
    from rich.table import Table

    from cutover.routes.domains import DomainRoute, Routing
    from cutover.workspace import Workspace

AFTER_OPTION = typer.Option(None, "--after", metavar="PLAN",
                            help="The flow after this plan, from its steps' previews "
                                 "(nothing is applied).")
AT_OPTION = typer.Option(None, "--at", metavar="STEP",
                         help="The flow after the plan's steps up to STEP (PLAN:STEP, or a "
                              "step id found in one plan of the workspace).")


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
    from rich.table import Table

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
    from rich.table import Table

    table = Table(title="Forwarded addresses")
    table.add_column("Old address", no_wrap=True)
    table.add_column("New address", overflow="fold")
    table.add_column("Via", overflow="fold")
    for forward in routing.forwards:
        table.add_row(escape(forward.old), escape(forward.new), escape(forward.via))
    return table


def trace_table(path: Any, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title or f"Route of {escape(path.address)}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Hop", no_wrap=True)
    table.add_column("Host", overflow="fold")
    table.add_column("Cause", overflow="fold")
    for number, hop in enumerate(path.hops, 1):
        table.add_row(str(number), hop.kind, escape(hop.host), escape(hop.cause))
    style = "red" if path.ends.side == "nowhere" else "green"
    table.add_row("", f"[{style}]ends[/{style}]", escape(path.ends.side),
                  escape(path.ends.describe()))
    return table


def before_after_table(before: dict[str, Any], after: dict[str, Any]) -> Table:
    """Where mail for each address went before and where it goes now (the demo's ending)."""
    from rich.table import Table

    from cutover.routes.story import before_after, path_text

    table = Table(title="Where mail goes, before and after", show_lines=True,
                  title_justify="left")
    table.add_column("Address", no_wrap=True, style="bold")
    table.add_column("Before", overflow="fold")
    table.add_column("After", overflow="fold")
    for row in before_after(before, after):
        table.add_row(escape(row.address), escape(path_text(row.before)),
                      escape(path_text(row.after)))
    return table


def findings_table(findings: list[Any]) -> Table:
    from rich.table import Table

    table = Table(title=f"{len(findings)} routing finding(s)", title_justify="left")
    table.add_column("Kind", no_wrap=True)
    table.add_column("Address or domain", overflow="fold")
    table.add_column("Problem", overflow="fold")
    for finding in findings:
        table.add_row(finding.kind, escape(finding.subject), escape(finding.problem))
    return table


# --- the flow after a plan ----------------------------------------------------------------------

def _plan_and_step(workspace: Workspace, after: str | None, at: str | None
                   ) -> tuple[str | None, str | None]:
    if at is None or after is not None:
        return after, at
    if ":" in at:
        plan, _, step = at.rpartition(":")
        return plan, step
    from cutover.plan import load_plan

    holders = []
    for path in sorted((workspace.root / "plans").glob("*.yaml")):
        plan = load_plan(path)
        if plan.has_step(at):
            holders.append(path)
    if len(holders) != 1:
        where = ", ".join(str(p.relative_to(workspace.root)) for p in holders) or "no plan"
        raise UsageError(f"--at {at}: the step is in {where}; write --at PLAN:{at} or "
                         "--after PLAN --at STEP")
    return str(holders[0]), at


def _plan_previews(workspace: Workspace, plan_argument: str, until: str | None):
    """Every step's preview through the runner's dry run (reads only, state included)."""
    from cutover.plan import load_plan
    from cutover.routes.after import StepPreview
    from cutover.runner import Runner, RunOptions
    from cutover.state import State

    plan = load_plan(workspace.resolve_plan(plan_argument))
    state = State.open(workspace.state_path, create=False) if workspace.state_path.exists() \
        else State.open(":memory:")
    result = Runner(workspace, state, plan).run(RunOptions(dry_run=True, until=until))
    steps = [s for s in plan.ordered() if s.id in result.previews or
             s.id in result.preview_errors or s.id in result.skipped]
    previews = [StepPreview(step.id, step.spec.kind, result.previews.get(step.id, []),
                            result.preview_errors.get(step.id) or
                            ("done" if step.id in result.skipped else None)) for step in steps]
    sieve_stores = {step.id: getattr(step.params, "sieve", "linux") for step in steps}
    return previews, sieve_stores


def facts_for(workspace: Workspace, after: str | None, at: str | None):
    """The facts now, or after a plan (with the notes of steps that could not be previewed)."""
    from cutover.routes.after import facts_after
    from cutover.routes.facts import read_facts

    facts = read_facts(workspace)
    plan, step = _plan_and_step(workspace, after, at)
    if plan is None:
        return facts, list(facts.notes)
    previews, sieve_stores = _plan_previews(workspace, plan, step)
    changed, notes = facts_after(facts, previews, sieve_stores)
    return changed, [*facts.notes, *notes]


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")


# --- commands ----------------------------------------------------------------------------------

app = typer.Typer(help="Where mail goes: per domain, per address, as a graph, and proved by "
                       "live probes.", no_args_is_help=False, invoke_without_command=True)


@app.callback(invoke_without_command=True)
def routes(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """Show how mail for every domain is routed: MX hosts, spam filter hop, next hop, final
    mail store; and every forwarded address, old -> new.

    Example: cutover routes --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from cutover.routes.domains import compute_routing

    routing = compute_routing(workspace_of(ctx))
    if as_json:
        print_json(routing.to_json())
        return
    console.print(domains_table(routing))
    if routing.forwards:
        console.print(forwards_table(routing))
    else:
        console.print("no forwarded addresses")
    _print_notes(routing.notes)


@app.command("trace")
def trace_command(ctx: typer.Context,
                  address: str = typer.Argument(..., help="The recipient address."),
                  after: str | None = AFTER_OPTION, at: str | None = AT_OPTION,
                  as_json: bool = JSON_OPTION) -> None:
    """The hop-by-hop path of a message from an external sender to ADDRESS: MX, filters, maps
    and rules that rewrite or forward, and where it ends.

    Example: cutover routes trace datarequest@example.org --after plans/phase2-cloud.yaml
    """
    from cutover.routes.trace import trace

    if "@" not in address:
        raise UsageError(f"not a mail address: {address!r}")
    facts, notes = facts_for(workspace_of(ctx), after, at)
    path = trace(facts, address)
    if as_json:
        print_json(path.to_json())
        return
    console.print(trace_table(path))
    _print_notes(notes)


@app.command("check")
def check_command(ctx: typer.Context, after: str | None = AFTER_OPTION,
                  at: str | None = AT_OPTION, as_json: bool = JSON_OPTION) -> int:
    """Find forwarding loops, dead ends, paths that cross a spam filter twice or not at all,
    forwarding chains longer than two hops and MX hosts that refuse their domain. Exit 1 when
    something is found.

    Example: cutover routes check --after plans/phase1-segregate.yaml
    """
    from cutover.routes.check import check

    facts, notes = facts_for(workspace_of(ctx), after, at)
    findings = check(facts)
    if as_json:
        print_json({"findings": [f.to_json() for f in findings], "notes": notes})
    elif findings:
        console.print(findings_table(findings))
    else:
        console.print("routes check: no loops, dead ends, filter or MX problems")
    if not as_json:
        _print_notes(notes)
    return 1 if findings else 0


@app.command("graph")
def graph_command(ctx: typer.Context,
                  fmt: str = typer.Option("mermaid", "--format",
                                          help="mermaid, dot or svg."),
                  domain: str | None = typer.Option(None, "--domain",
                                                    help="Only mail for this domain."),
                  after: str | None = AFTER_OPTION,
                  diff: bool = typer.Option(False, "--diff",
                                            help="Before and after the plan, changed edges "
                                                 "marked (needs --after)."),
                  output: Path | None = typer.Option(None, "--output", "-o",
                                                     help="Write to this file.")) -> None:
    """The mail flow as a diagram (Mermaid, Graphviz DOT or SVG).

    Example: cutover routes graph --format svg --after plans/phase2-cloud.yaml --diff -o flow.svg
    """
    from cutover.routes.facts import read_facts
    from cutover.routes.graph import FORMATS, flow_graph, render
    from cutover.routes.graph import diff as graph_diff

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if diff and after is None:
        raise UsageError("--diff compares before and after a plan: give --after PLAN")
    workspace = workspace_of(ctx)
    facts, notes = facts_for(workspace, after, None)
    graph = flow_graph(facts, domain)
    if diff:
        graph = graph_diff(flow_graph(read_facts(workspace), domain), graph)
    text = render(graph, fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")
    for note in notes:
        typer.echo(f"note: {note}", err=True)


@app.command("probe")
def probe_command(ctx: typer.Context,
                  addresses: list[str] = typer.Argument(..., help="Recipient addresses."),
                  timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for "
                                                                      "each canary."),
                  as_json: bool = JSON_OPTION) -> int:
    """Send a tagged canary to each ADDRESS through the real path and confirm it arrives where
    the routing model says (exit 1 naming where it was last seen when it does not); each hop's
    latency from the Received headers. Canaries are removed.

    Example: cutover routes probe datarequest@example.org --timeout 30
    """
    from cutover.routes.facts import read_facts
    from cutover.routes.probe import ProbeFailed, probe

    if timeout <= 0:
        raise UsageError("--timeout must be more than 0 seconds")
    workspace = workspace_of(ctx)
    facts = read_facts(workspace)
    results = []
    for address in addresses:
        try:
            results.append(probe(workspace, facts, address, timeout=timeout))
        except ProbeFailed as exc:
            from cutover.routes.probe import ProbeResult
            from cutover.routes.trace import trace

            refused = ProbeResult(address, "", trace(facts, address).ends, "smtp")
            refused.last_seen = str(exc)
            results.append(refused)
    if as_json:
        print_json({"probes": [r.to_json() for r in results]})
    else:
        for result in results:
            style = "green" if result.arrived else "red"
            console.print(f"[{style}]{escape(result.describe())}[/{style}]")
            for hop in result.latencies:
                seconds = "?" if hop.seconds is None else f"{hop.seconds:.0f} s"
                console.print(f"  by {escape(hop.by)} from {escape(hop.received_from)}: "
                              f"{seconds}")
    return 0 if all(r.arrived for r in results) else 1


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="routes")
