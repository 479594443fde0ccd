"""The command line: parse, call the library, render. Every CutoverError becomes one line
`error: ...` on standard error and its exit code; tracebacks only with --debug."""

from __future__ import annotations

import errno
import importlib
import os
import sys
from pathlib import Path

import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_exceptions

from cutover.commands import coercion
from cutover.commands.common import AppState, print_error
from cutover.errors import CutoverError, ValidationFailed

coercion.install()  # plain option values converted without importing pydantic

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
TOP_LEVEL_COMMANDS = {command: "run" for command in
                      ("run", "resume", "status", "log", "rollback", "unlock", "runbook", "init",
                       "demo")}
TOP_LEVEL_COMMANDS["routes"] = "routes"


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


_mounted: set[str] = set()


def mount_commands(only: str | None = None) -> typer.Typer:
    """Import and mount the command modules: all of them, or only the one `only` lives in
    (a run of `cutover mailbox sync` then pays for no other module's imports)."""
    for name in TOP_LEVEL + SUBCOMMANDS:
        if name in _mounted or (only is not None and name != _module_of(only)):
            continue
        module = _command_module(name)
        if module is None:
            continue
        if name in SUBCOMMANDS:  # groups expose `app`; top-level modules `register(app)`
            app.add_typer(module.app, name=name)
        else:
            module.register(app)
        _mounted.add(name)
    return app


def _module_of(command: str) -> str | None:
    if command in SUBCOMMANDS:
        return command
    return TOP_LEVEL_COMMANDS.get(command)


def _command_named(argv: list[str]) -> str | None:
    """The command word of argv, skipping the global options; None when help is asked for or
    the word is unknown (then every command is mounted, so the error names the choices)."""
    words = iter(argv)
    for word in words:
        if word in ("--workspace", "-w"):
            next(words, None)
        elif word.startswith("--workspace="):
            continue
        elif word.startswith("-"):
            if word in ("--help",):
                return None
        else:
            return word if _module_of(word) else None
    return None


INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def main(argv: list[str] | None = None) -> None:
    arguments = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in arguments
    try:
        mount_commands(only=_command_named(arguments))
        result = app(args=argv, standalone_mode=False)
        if result == INTERRUPTED:  # typer turns Ctrl-C in a command into this return value
            raise KeyboardInterrupt
        if isinstance(result, int) and result:  # a command that returns its exit code
            sys.exit(result)
    except CutoverError as exc:
        if debug:
            raise
        lines = exc.lines() if isinstance(exc, ValidationFailed) else [str(exc).splitlines()[0]
                                                                        if str(exc) else
                                                                        type(exc).__name__]
        for line in lines:
            print_error(line)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print_error("aborted")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except click_exceptions.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `cutover` or `cutover plan` alone
            print(exc.ctx.get_help())
            sys.exit(2)
        print_error(exc.format_message())
        sys.exit(2)
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(INTERRUPTED)
    except Exception as exc:
        if debug or os.environ.get("CUTOVER_DEBUG"):
            raise
        known = _environment_failure(exc)
        if known is not None:
            print_error(known)
            sys.exit(2)
        # a bug: still one line unless --debug
        print_error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the "
                    "traceback)")
        sys.exit(1)
    sys.exit(0)


RESUME_HINT = "free some space, then run the command again (an interrupted run continues " \
              "with `cutover resume`)"


def _environment_failure(exc: Exception) -> str | None:
    """The message for a failure of the machine rather than of cutover (a full disk, a
    corrupt state database met after it was opened), or None for a bug."""
    import sqlite3

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"no space left on device{where}: {RESUME_HINT}"
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return f"no space left on device writing the state database: {RESUME_HINT}"
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or "malformed" in str(exc):
            return (f"the state database is corrupt ({exc}): restore it from a backup, or "
                    "move it aside to start afresh")
    return None
