"""`cutover rules`: convert procmailrc to Sieve, and prove the two behave the same."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cutover.commands.common import JSON_OPTION, console, err_console, print_json
from cutover.errors import CutoverError, Problem, UsageError, ValidationFailed

if TYPE_CHECKING:  # the converter and the verifier are imported by the commands that run them
    from cutover.rules.convert import Conversion
    from cutover.rules.differential import Report

app = typer.Typer(no_args_is_help=True, help="Procmail rules to Sieve: convert and verify.")


class RulesUntranslatable(ValidationFailed):
    """The procmailrc holds rules Sieve cannot express (or syntax errors); exit 2."""


class RulesDisagree(CutoverError):
    """procmail and the Sieve script file some message differently; exit 1."""


HOME_OPTION = typer.Option(None, "--home", help="HOME for INCLUDERC and $HOME (default: the "
                                                "rc file's directory).")
ROOT_OPTION = typer.Option(None, "--maildir-root", help="Mail root the Sieve folder names are "
                                                        "relative to (default: MAILDIR).")
PROGRAMS_OPTION = typer.Option(None, "--programs", help="Where to write the programs the script "
                               "runs for recipes that hand on only the header or the body "
                               "(default: programs/ beside the output script).")


def say(text: str) -> None:
    """One line on standard error, printed verbatim (file:line is never read as markup or an
    emoji code such as `:100:`)."""
    err_console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


def convert_checked(rcfile: Path, home: Path | None, maildir_root: str | None,
                    allow_partial: bool) -> Conversion:
    """Convert, refusing syntax errors always and gaps unless `allow_partial`."""
    from cutover.rules.convert import convert

    if not rcfile.is_file():
        raise UsageError(f"procmailrc not found: {rcfile}")
    if home is not None and not home.is_dir():
        raise UsageError(f"--home is not a directory: {home}")
    conversion = convert(rcfile, home, maildir_root, allow_partial)
    for warning in conversion.warnings:
        say(f"warning: {warning}")
    problems: list[Problem] = list(conversion.syntax_problems)
    if not allow_partial:
        problems += conversion.gaps
    if problems:
        raise RulesUntranslatable(problems)
    return conversion


@app.command("convert")
def convert_command(
    rcfile: Path = typer.Argument(..., help="The procmailrc to convert."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the Sieve script here "
                                                              "(default: standard output)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Convert what can be "
                                       "converted; mark each gap '# UNTRANSLATED file:line'."),
    maildir_root: str = ROOT_OPTION,
    home: Path = HOME_OPTION,
    programs: Path = PROGRAMS_OPTION,
) -> None:
    """Write the Sieve script equivalent to a procmailrc (and the programs it needs).

    Example: cutover rules convert procmail/datarequest@example.org/.procmailrc -o dr.sieve
    """
    conversion = convert_checked(rcfile, home, maildir_root, allow_partial)
    for gap in conversion.gaps:
        say(f"warning: {gap}: not translated")
    if output is None:
        typer.echo(conversion.script, nl=False)
    else:
        output.write_text(conversion.script)
        say(f"wrote {output}")
    if conversion.programs:
        if programs is None and output is None:
            say("warning: the script runs programs cutover writes ("
                + ", ".join(conversion.programs) + "): pass --programs DIR (or -o FILE) to "
                "write them")
            return
        directory = programs or output.parent / "programs"
        for path in write_programs(conversion, directory):
            say(f"wrote {path}")


def write_programs(conversion: Conversion, directory: Path) -> list[Path]:
    """The generated `.head` / `.body` programs, executable, into `directory`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --programs directory {directory}: {exc.strerror}") \
            from None
    written = []
    for name, text in conversion.programs.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o755)
        written.append(path)
    return written


@app.command("verify")
def verify_command(
    rcfile: Path = typer.Argument(..., help="The procmailrc the Sieve script replaces."),
    messages: Path = typer.Option(..., "--messages", help="Directory of sample messages "
                                                           "(files, or a Maildir)."),
    sieve: Path = typer.Option(None, "--sieve", help="Sieve script to check (default: "
                                                      "the converted rc)."),
    home: Path = HOME_OPTION,
    maildir_root: str = ROOT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run every message through the real procmail and the Sieve script (sieve-test) and
    compare where each one ends up. Exit 0 only when all agree.

    Example: cutover rules verify procmail/datarequest@example.org/.procmailrc --messages samples/
    """
    from cutover.rules.differential import message_files, verify

    conversion = convert_checked(rcfile, home, maildir_root, allow_partial=sieve is not None)
    if sieve is not None and not sieve.is_file():
        raise UsageError(f"Sieve script not found: {sieve}")
    script = sieve.read_text() if sieve is not None else conversion.script
    report = verify(conversion, message_files(messages), script)
    if as_json:
        print_json({"agreeing": report.agreeing, "total": len(report.cases),
                    "share": round(report.share(), 1),
                    "cases": [case.to_json() for case in report.cases]})
    else:
        render(report)
    if report.disagreements:
        raise RulesDisagree(f"{len(report.disagreements)} of {len(report.cases)} messages "
                            "are handled differently by procmail and Sieve")


def render(report: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    if report.disagreements:
        table = Table(title="procmail and Sieve disagree")
        for column in ("message", "procmail", "sieve"):
            table.add_column(column)
        for case in report.disagreements:
            # Text cells: names and folders are shown as they are, never as markup or emoji
            table.add_row(Text(case.message), Text(case.procmail.describe()),
                          Text(case.sieve.describe()))
        console.print(table, emoji=False)
    console.print(report.summary(), markup=False, emoji=False)
