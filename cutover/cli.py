"""The command line: parse, call the library, render. Every CutoverError becomes one line
`error: ...` on standard error and its exit code; tracebacks only with --debug."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_exceptions

from cutover.commands.common import AppState, err_console
from cutover.errors import CutoverError, ValidationFailed

app = typer.Typer(
    name="cutover",
    help="Carry an organisation through a mail migration: plans run step by step, with "
    "checkpoints, verification, resume and rollback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules in cutover/commands/: groups (`cutover plan check`) and top-level commands.
SUBCOMMANDS = ("plan", "inventory", "report", "mailbox", "dns", "rules")
TOP_LEVEL = ("run", "routes")


@app.callback()
def main_options(
    ctx: typer.Context,
    workspace: Path = typer.Option(
        Path("."), "--workspace", "-w", envvar="CUTOVER_WORKSPACE",
        help="Workspace directory (cutover.yaml, plans/, state/).", show_default=True,
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    ctx.obj = AppState(workspace_dir=workspace, debug=debug)


def _command_module(name: str):
    """cutover.commands.<name>, or None while that group is not built."""
    try:
        return importlib.import_module(f"cutover.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"cutover.commands.{name}":
            return None
        raise


def _mount_commands() -> None:
    # Modules adding top-level commands expose `register(app)`; groups expose `app`.
    for name in TOP_LEVEL:
        module = _command_module(name)
        if module is not None:
            module.register(app)
    for name in SUBCOMMANDS:
        module = _command_module(name)
        if module is not None:
            app.add_typer(module.app, name=name)


_mount_commands()


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=False)
    except CutoverError as exc:
        if debug:
            raise
        lines = exc.lines() if isinstance(exc, ValidationFailed) else [str(exc).splitlines()[0]
                                                                        if str(exc) else
                                                                        type(exc).__name__]
        for line in lines:
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("error: aborted", markup=False)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `cutover` or `cutover plan` alone
            print(exc.ctx.get_help())
            sys.exit(2)
        err_console.print(f"error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("error: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line unless --debug
        if debug or os.environ.get("CUTOVER_DEBUG"):
            raise
        err_console.print(f"error: internal error: {type(exc).__name__}: {exc} "
                          "(run with --debug for the traceback)", markup=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(0)
