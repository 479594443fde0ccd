"""The command line contract of the runner: exit codes, one-line errors, JSON shapes."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

import tests.runner.filestep  # noqa: F401 - registers test.files
from cutover.cli import main
from cutover.state import State

PLAN = """\
    name: files
    steps:
      - {id: first, kind: test.files, params: {files: {a.txt: "A"}}}
      - {id: second, kind: test.files, requires: [first], params: {files: {b.txt: "B"}}}
    """


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "cutover.yaml").write_text("name: t\n")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "files.yaml").write_text(textwrap.dedent(PLAN))
    return tmp_path


def cutover(ws, *args, capsys=None):
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(ws), *args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return exited.value.code, out, err


def test_run_then_status_json_lists_every_step(ws, capsys):
    code, _, _ = cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    assert code == 0
    code, out, _ = cutover(ws, "status", "--json", capsys=capsys)
    report = json.loads(out)
    [plan] = report["plans"]
    assert plan["name"] == "files"
    assert [(s["id"], s["status"]) for s in plan["steps"]] == [("first", "done"),
                                                               ("second", "done")]


def test_plan_path_is_tried_relative_to_the_workspace(ws, capsys, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    code, _, err = cutover(ws, "plan", "check", "plans/files.yaml", capsys=capsys)
    assert code == 0, err


def test_missing_plan_is_one_line_exit_2(ws, capsys):
    code, _, err = cutover(ws, "run", "plans/nope.yaml", "--yes", capsys=capsys)
    assert code == 2
    assert err == "error: plan not found: plans/nope.yaml\n"


@pytest.mark.parametrize("text, fragment", [
    ("name: [broken\n", "invalid YAML"),
    ("name: x\nsteps:\n  - {id: a, kind: no.such, params: {}}\n", "unknown step kind"),
    ("name: x\nsteps:\n  - {id: a, kind: test.files, requires: [b], params: {files: {}}}\n"
     "  - {id: b, kind: test.files, requires: [a], params: {files: {}}}\n", "cycle"),
])
def test_bad_plans_exit_2_with_file_and_line(ws, capsys, text, fragment):
    (ws / "plans" / "bad.yaml").write_text(text)
    code, _, err = cutover(ws, "plan", "check", "plans/bad.yaml", capsys=capsys)
    assert code == 2
    lines = err.splitlines()
    assert lines and all(line.startswith(f"error: {ws / 'plans' / 'bad.yaml'}:") or
                         line.startswith("error: plans/bad.yaml:") for line in lines)
    assert fragment in err and "Traceback" not in err


def test_foreign_state_database_is_refused(ws, capsys):
    (ws / "state").mkdir()
    import sqlite3

    foreign = sqlite3.connect(ws / "state" / "cutover.db")
    foreign.execute("CREATE TABLE invoices (id INTEGER)")
    foreign.commit()
    foreign.close()
    code, _, err = cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    assert code == 2 and err.startswith("error: ") and "not a cutover state database" in err
    assert not (ws / "a.txt").exists()


def test_corrupt_state_database_is_refused(ws, capsys):
    (ws / "state").mkdir()
    (ws / "state" / "cutover.db").write_bytes(b"this is not sqlite" * 100)
    code, _, err = cutover(ws, "status", capsys=capsys)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1


def test_read_only_workspace_is_refused_before_any_change(ws, capsys):
    os.chmod(ws, 0o555)
    try:
        code, _, err = cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    finally:
        os.chmod(ws, 0o755)
    assert code == 2 and "read-only" in err
    assert not (ws / "a.txt").exists() and not (ws / "state").exists()


def test_rollback_of_a_step_that_never_ran_exits_2(ws, capsys):
    code, _, err = cutover(ws, "rollback", "first", "--yes", capsys=capsys)
    assert code == 2 and err == "error: step first has never run in this workspace\n"


def test_rollback_blocked_by_dependents_names_them_and_changes_nothing(ws, capsys):
    cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    code, _, err = cutover(ws, "rollback", "first", "--yes", capsys=capsys)
    assert code == 2 and "second" in err
    assert (ws / "a.txt").read_text() == "A"
    code, out, _ = cutover(ws, "rollback", "first", "--cascade", "--yes", capsys=capsys)
    assert code == 0 and not (ws / "a.txt").exists() and not (ws / "b.txt").exists()


def test_a_held_lock_refuses_a_second_run(ws, capsys):
    state = State.open(ws / "state" / "cutover.db")
    state.db["lock"].insert({"id": 1, "pid": 1, "host": __import__("socket").gethostname(),
                             "command": "run plans/files.yaml", "acquired": "now"})
    code, _, err = cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    assert code == 2 and "locked" in err
    assert not (ws / "a.txt").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(ws, capsys):
    state = State.open(ws / "state" / "cutover.db")
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    state.db["lock"].insert({"id": 1, "pid": int(dead),
                             "host": __import__("socket").gethostname(),
                             "command": "run", "acquired": "then"})
    code, _, err = cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    assert code == 0, err


def test_runbook_without_output_prints_markdown(ws, capsys):
    code, out, _ = cutover(ws, "runbook", "plans/files.yaml", capsys=capsys)
    assert code == 0
    assert out.startswith("# Runbook: files") and "cutover rollback first" in out


def test_log_json_has_who_when_what(ws, capsys):
    cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)
    code, out, _ = cutover(ws, "log", "--json", capsys=capsys)
    events = json.loads(out)
    applied = [e for e in events if e["event"] == "applied"]
    assert applied[0]["item"] == "a.txt" and applied[0]["after"] == "A"
    assert applied[0]["user"] and applied[0]["at"]


def test_unknown_option_is_a_usage_error(ws, capsys):
    code, _, err = cutover(ws, "run", "plans/files.yaml", "--bogus", capsys=capsys)
    assert code == 2 and err.startswith("error: ")
