"""One list of changes, several renderings: a rich table, JSON, and the Markdown runbook."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported by the tables (a JSON preview needs none)
    from rich.table import Table

    from cutover.plan import Plan
    from cutover.steps.base import Change, Finding

MAX_CELL = 60


def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def describe_change(change: Change) -> str:
    """One line per change: the step kind's summary, or item with before -> after."""
    if change.summary:
        return change.summary
    return f"{change.item}: {_short(change.before)} -> {_short(change.after)}"


def changes_table(title: str, changes: list[Change], limit: int = 50) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", show_lines=False)
    table.add_column("action")
    table.add_column("change", overflow="fold")
    for change in changes[:limit]:
        # Text, not markup: "[filter.example.org]" is a next hop, not a style
        table.add_row(change.action, Text(describe_change(change)))
    if len(changes) > limit:
        table.add_row("…", f"{len(changes) - limit} more (cutover plan show --json lists all)")
    return table


def findings_table(title: str, findings: list[Finding]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for column in ("severity", "item", "problem"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        table.add_row(finding.severity, Text(finding.item), Text(finding.problem))
    return table


def changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [change.to_json() for change in changes]


def runbook_markdown(plan: Plan, plan_argument: str) -> str:
    """An operator runbook: per step what it does, how to preview it, verify it by hand and
    roll it back."""
    lines = [f"# Runbook: {plan.name}", ""]
    if plan.description:
        lines += [plan.description.strip(), ""]
    lines += [
        "Every step runs through `cutover`, which writes a checkpoint before changing anything.",
        "",
        "```sh",
        *_commented([(f"cutover plan check {plan_argument}", "validate the plan"),
                     (f"cutover plan show {plan_argument}", "preview every step, no side effects"),
                     (f"cutover run {plan_argument}", "run step by step, confirming each"),
                     ("cutover status", "where the run stands"),
                     ("cutover resume", "after a crash or an interruption")]),
        "```",
        "",
        "## Steps",
        "",
    ]
    for number, step in enumerate(plan.ordered(), start=1):
        lines += _step_section(number, step, plan_argument)
    return "\n".join(lines).rstrip() + "\n"


def _commented(commands: list[tuple[str, str]]) -> list[str]:
    width = max(len(command) for command, _ in commands) + 2
    return [f"{command.ljust(width)}# {comment}" for command, comment in commands]


def _step_section(number: int, step, plan_argument: str) -> list[str]:
    instance = step.kind()
    spec = step.spec
    lines = [f"### {number}. `{spec.id}` ({spec.kind})", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    if step.kind.summary:
        lines += [f"*What the step kind does:* {step.kind.summary}", ""]
    facts = []
    if spec.requires:
        facts.append("requires " + ", ".join(f"`{r}`" for r in spec.requires))
    if spec.for_each:
        selector = ", ".join(f"{k}={v}" for k, v in spec.for_each.items())
        facts.append(f"runs once per inventory recipient with {selector}")
    if not spec.confirm:
        facts.append("runs without asking for confirmation")
    if facts:
        lines += ["- " + fact for fact in facts] + [""]
    params = json.dumps(step.params.model_dump(mode="json"), indent=2, sort_keys=True)
    lines += ["Parameters:", "", "```json", params, "```", ""]
    lines += ["**Preview**", "", "```sh",
              f"cutover run {plan_argument} --step {spec.id} --dry-run", "```", ""]
    lines += ["**Apply** exactly what was reviewed (the preview prints its hash; if the world "
              "changed since, the step is refused and nothing changes):", "", "```sh",
              f"cutover run {plan_argument} --step {spec.id} --expect-hash HASH", "```", ""]
    checks = instance.manual_checks(step.params)
    lines += ["**Verify by hand**", ""]
    lines += [f"- `{check}`" if not check.startswith("-") else check for check in checks]
    if not checks:
        lines += ["- `cutover status` shows the step `done` only after its verification passed."]
    lines += [""]
    lines += ["**Roll back**", "", "```sh", f"cutover rollback {spec.id}", "```", ""]
    manual = instance.manual_rollback(step.params)
    if manual:
        lines += ["By hand, if cutover is unavailable:", ""] + [f"- {m}" for m in manual] + [""]
    return lines
