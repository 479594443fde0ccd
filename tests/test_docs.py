"""Every command explains itself: help text with an example, and the README names it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from cutover.cli import mount_commands

app = mount_commands()

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(typer_app: typer.Typer, prefix: str = ""):
    for info in typer_app.registered_commands:
        yield f"{prefix}{info.name or info.callback.__name__.replace('_', '-')}", info.callback
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, f"{prefix}{group.name} ")


COMMANDS = sorted(_commands(app), key=lambda pair: pair[0])


@pytest.mark.parametrize("name, callback", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_command_has_help_with_an_example(name, callback):
    doc = callback.__doc__ or ""
    assert doc.strip(), f"`cutover {name}` has no help text"
    assert "Example:" in doc, f"`cutover {name}` help shows no example"


@pytest.mark.parametrize("name", sorted({name.split()[0] for name, _ in COMMANDS}))
def test_readme_mentions_every_command(name):
    assert f"cutover {name}" in README


@pytest.mark.parametrize("name, render", [("step-kinds.md", "step_kinds_markdown"),
                                          ("connectors.md", "connectors_markdown")])
def test_reference_docs_are_generated_from_the_current_code(name, render):
    import cutover.reference as reference

    path = Path(__file__).resolve().parent.parent / "docs" / name
    assert path.read_text() == getattr(reference, render)(), (
        f"regenerate docs/{name}: python -c 'from cutover.reference import *; "
        f"open(\"docs/{name}\", \"w\").write({render}())'")


def test_every_step_kind_documents_a_plan_example_and_its_params():
    from cutover.reference import step_kinds

    for kind in step_kinds():
        assert f"kind: {kind['kind']}" in kind["doc"], kind["kind"]
        assert kind["summary"], kind["kind"]
