"""`cutover plan check|show`: validate a plan, preview every step without side effects."""

from __future__ import annotations

import typer

from cutover import operations
from cutover.commands.common import JSON_OPTION, console, print_json, workspace_of
from cutover.render import changes_json

app = typer.Typer(no_args_is_help=True, help="Validate and preview plans.")


@app.command()
def check(ctx: typer.Context, plan: str = typer.Argument(..., help="Plan file.")) -> None:
    """Validate a plan: YAML, keys, step kinds, params, requires (every problem at once), and
    the environment it needs: the whole of cutover.yaml, every connector a step names.

    Example: cutover plan check plans/phase1-segregate.yaml
    """
    from cutover.environment import check_for_plan
    from cutover.plan import load_plan

    workspace = workspace_of(ctx)
    path = workspace.resolve_plan(plan)
    loaded = load_plan(path)
    check_for_plan(workspace, loaded, str(path))  # the plan's steps name connectors that exist
    workspace.validate()  # and every connector entry serves its role
    console.print(f"plan {loaded.name}: {len(loaded.steps)} step(s), valid")


@app.command()
def show(ctx: typer.Context, plan: str = typer.Argument(..., help="Plan file."),
         json_output: bool = JSON_OPTION) -> None:
    """Preview every step of a plan; changes nothing (state included).

    Example: cutover plan show plans/phase2-cloud.yaml
    """
    from cutover.commands.run import ConsoleOutput

    loaded, result = operations.preview(workspace_of(ctx), plan,
                                        ConsoleOutput(quiet=json_output))
    if json_output:
        print_json({"plan": loaded.name, "steps": [
            {"id": step.id, "kind": step.spec.kind,
             "changes": changes_json(result.previews.get(step.id, [])),
             "preview_hash": result.preview_hashes.get(step.id),
             "note": result.preview_errors.get(step.id) or
             ("done" if step.id in result.skipped else None)}
            for step in loaded.ordered()]})


@app.command()
def kinds(json_output: bool = JSON_OPTION) -> None:
    """List the step kinds a plan can use, with what each does (docs/step-kinds.md has their
    params and examples).

    Example: cutover plan kinds
    """
    from rich.table import Table

    from cutover.reference import step_kinds

    found = step_kinds()
    if json_output:
        print_json([{key: k[key] for key in ("kind", "summary")} |
                    {"params": [{"name": n, "type": t, "default": d} for n, t, d in k["params"]]}
                    for k in found])
        return
    table = Table(title="step kinds", title_justify="left")
    table.add_column("kind")
    table.add_column("what it does")
    for k in found:
        table.add_row(k["kind"], k["summary"])
    console.print(table)
