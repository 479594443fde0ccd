"""What every command shares: the workspace from the global option, the console, JSON output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from cutover.workspace import Workspace


class DeferredConsole:
    """A rich Console built on first use: importing rich costs ~20 ms that a command printing
    only JSON (a no-op `mailbox sync --json`) never needs. Everything else is the Console's."""

    def __init__(self, **options: Any):
        self._options = options
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)


console = DeferredConsole(highlight=False, soft_wrap=True)  # never break paths in messages
err_console = DeferredConsole(stderr=True, highlight=False)


@dataclass
class AppState:
    workspace_dir: Path
    debug: bool = False

    def workspace(self) -> Workspace:
        from cutover.workspace import Workspace  # YAML is loaded only by commands that need it

        return Workspace(self.workspace_dir)


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(Path.cwd())
    return root.obj


def workspace_of(ctx: typer.Context) -> Workspace:
    """The workspace named by `cutover --workspace DIR` (or CUTOVER_WORKSPACE, or the cwd)."""
    return app_state(ctx).workspace()


def print_json(data: Any, compact: bool = False) -> None:
    """JSON on standard output; `compact` (one line, C encoder) for outputs that may hold tens
    of thousands of rows (`status --json` of a big batch): indenting costs seconds there."""
    if compact:
        sys.stdout.write(json.dumps(data, sort_keys=True, default=str,
                                    separators=(",", ":")) + "\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


JSON_OPTION = typer.Option(False, "--json", help="Machine-readable output on standard output.")
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
