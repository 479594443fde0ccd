"""What every command shares: the workspace from the global option, the console, JSON output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cutover.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from cutover.workspace import Workspace


class DeferredConsole:
    """A rich Console built on first use: importing rich costs ~20 ms that a command printing
    only JSON (a no-op `mailbox sync --json`) never needs. Everything else is the Console's;
    what rich itself is handed (a progress bar's console) must be `.real`: rich enters it as a
    context manager and compares it by identity."""

    def __init__(self, **options: Any):
        self._options = options
        self._console: Console | None = None

    @property
    def real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> Console:
        return self.real.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.real.__exit__(*exc)


# Operator text (addresses, paths, messages, passwd lines) is printed as written: no emoji
# codes (":x:" in "root:x:0" is not an emoji), no highlighting; markup only where a command
# writes it itself, with operator text escaped (rich.markup.escape) or passed as Text.
console = DeferredConsole(highlight=False, soft_wrap=True, emoji=False)  # never break paths
err_console = DeferredConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def escape(text: str) -> str:
    """rich.markup.escape (operator text inside markup a command writes), imported on use."""
    from rich.markup import escape as escape_markup

    return escape_markup(text)


def print_error(line: str) -> None:
    """One `error: ...` line on standard error, verbatim: plain text, not through rich (no
    markup, emoji or wrapping); only control characters are shown escaped, so a hostile
    folder name cannot drive the terminal."""
    sys.stderr.write(f"error: {_printable(line)}\n")
    sys.stderr.flush()


def _printable(text: str) -> str:
    return "".join(char if char == "\t" or not _is_control(char) else repr(char)[1:-1]
                   for char in text)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0


@dataclass
class AppState:
    workspace_dir: Path
    debug: bool = False

    def workspace(self, must_exist: bool = True) -> Workspace:
        """The workspace; UsageError (exit 2) when `must_exist` and the directory is missing or
        not a directory: a mistyped --workspace must not look like an empty workspace."""
        from cutover.workspace import Workspace  # YAML is loaded only by commands that need it

        workspace = Workspace(self.workspace_dir)
        if must_exist and not workspace.root.is_dir():
            what = "is not a directory" if workspace.root.exists() else "does not exist"
            raise UsageError(f"workspace {self.workspace_dir} {what}")
        return workspace


def app_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState(Path.cwd())
    return root.obj


#: commands that create their workspace
CREATES_WORKSPACE = frozenset({"init"})


def workspace_of(ctx: typer.Context) -> Workspace:
    """The workspace named by `cutover --workspace DIR` (or CUTOVER_WORKSPACE, or the cwd),
    which must exist unless the command creates it."""
    return app_state(ctx).workspace(must_exist=ctx.info_name not in CREATES_WORKSPACE)


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
