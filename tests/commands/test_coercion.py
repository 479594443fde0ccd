"""Option values converted without pydantic (cutover/commands/coercion.py) come out exactly as
typer's own conversion makes them: the same value of the same type, or the same error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer import core
from typer._click import Context

from cutover.cli import app, mount_commands
from cutover.commands import coercion

SAMPLES = ["4", "0", "1", "-1", "+3", " 5", "007", "1_000", "12345678901234567890", "1.5",
           "0.25", "1e3", "inf", "nan", "", "abc", "a b", "x/y.yaml", "/", ".", "-", "true",
           "no", "\x00", ("a", "b"), ["x"], (), 4, 0, 2.5, True, False, Path("."),
           Path("/tmp")]


def _parameters() -> list[tuple[str, typer.core.click.Parameter]]:
    mount_commands()
    root = typer.main.get_command(app)
    found = []

    def walk(command, path):
        for param in command.params:
            found.append((f"{path} {param.name}".strip(), command, param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(root, "")
    return found


PARAMETERS = _parameters()


def _outcome(runtime, command, param, value):
    ctx = Context(command, info_name="cutover")
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - the error is the outcome compared
        return ("error", type(exc).__name__, str(exc))
    return ("value", type(result).__name__, repr(result))  # repr: nan equals nan


def test_every_option_of_every_command_is_checked():
    assert len(PARAMETERS) > 50
    assert {type(p.type_descriptor.annotation).__name__ for _, _, p in PARAMETERS} >= {"type"}


@pytest.mark.parametrize("where,command,param", PARAMETERS, ids=[p[0] for p in PARAMETERS])
def test_an_option_value_converts_exactly_as_typer_converts_it(where, command, param):
    from typer._coercion import build_runtime_param as typers

    coercion.install()
    assert getattr(core.build_runtime_param, "plain", False)
    ours, theirs = core.build_runtime_param(param.type_descriptor), \
        typers(param.type_descriptor)
    for value in SAMPLES + [param.default]:
        assert _outcome(ours, command, param, value) == \
            _outcome(theirs, command, param, value), (where, value)


def test_a_no_op_command_line_does_not_import_pydantic(tmp_path):
    # `cutover log` of an empty workspace parses a Path, a bool and a str option
    code = ("import sys; from cutover.cli import main\n"
            "try:\n    main(['--workspace', sys.argv[1], 'log', '--plan', 'x'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
            "print('pydantic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
