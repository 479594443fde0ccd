"""The command line in a real terminal (a pseudo-terminal, where rich draws progress bars and
typer asks questions): the path an administrator takes first."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect  # a test dependency (requirements-test.lock)
import pytest

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# cutover with the runner's test step kind registered
WITH_TEST_STEPS = ("import sys, tests.runner.filestep; from cutover.cli import main; "
                   "main(sys.argv[1:])")


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CUTOVER_", "COLUMNS", "LINES", "NO_COLOR", "FORCE_"))}
    env.update(TERM="xterm-256color", PYTHONPATH=str(REPO))
    return env


def spawn(args: list[str], columns: int = 80, cwd: Path | None = None):
    return pexpect.spawn(sys.executable, ["-c", WITH_TEST_STEPS, *args], cwd=cwd,
                         env=environment(), dimensions=(40, columns), encoding="utf-8",
                         timeout=120, preexec_fn=_interruptible)


def _interruptible() -> None:
    """Ctrl-C reaches cutover as it does in a terminal, even when the suite itself was started
    in the background (a shell without job control starts it with SIGINT ignored, and an
    ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(child) -> tuple[int, str]:
    """Wait for the end; the exit status and everything the terminal showed."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def screen_lines(output: str) -> list[str]:
    """What was drawn, line by line (carriage returns start a line again), without colours."""
    return [line for line in re.split(r"\r\n|\r|\n", ANSI.sub("", output)) if line]


def make_maildir(root: Path, messages: int, body_size: int) -> Path:
    """A real Maildir of `messages` seen messages of about `body_size` bytes."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for number in range(messages):
        content = (f"From: station@example.org\r\nTo: bob@example.org\r\nSubject: report "
                   f"{number}\r\nMessage-ID: <{number}.report@example.org>\r\n\r\n").encode()
        (root / "cur" / f"{1_700_000_000 + number}.M{number}P1.lab:2,S").write_bytes(
            content + b"x" * body_size + b"\r\n")
    return root


def count_messages(maildir: Path) -> int:
    return sum(1 for sub in ("cur", "new") for _ in (maildir / sub).iterdir()) \
        if maildir.exists() else 0


# --- mailbox sync ----------------------------------------------------------------------------

@pytest.mark.parametrize("columns", [80, 200], ids=["narrow", "wide"])
@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_mailbox_sync_in_a_terminal_draws_progress_then_the_summary(tmp_path, columns, debug):
    source = make_maildir(tmp_path / "src" / "bob", 300, 50_000)
    child = spawn([*debug, "mailbox", "sync", f"maildir://{source}",
                   f"maildir://{tmp_path}/dst/bob", "--state", str(tmp_path / "s.db")],
                  columns)
    status, output = finish(child)
    lines = screen_lines(output)
    assert status == 0, output
    assert "Traceback" not in output and "lost sys.stderr" not in output
    # counts, bytes and time left on the progress line
    assert any(re.search(r"300/300 msgs +15\.\d/15\.\d MB .* \d+:\d\d:\d\d", line)
               for line in lines), lines
    # the summary: every column named in full, nothing wider than the terminal
    header = next(line for line in lines if line.startswith("account"))
    assert header.split() == ["account", "folders", "unchanged", "copied", "MB", "flags",
                              "deleted", "renamed", "rematched"]
    assert [line for line in lines if line.startswith("bob")][-1].split()[:4] == \
        ["bob", "1", "0", "300"]
    assert max(len(line) for line in lines) <= columns
    assert count_messages(tmp_path / "dst" / "bob") == 300


def test_ctrl_c_during_a_copy_is_a_clean_interruption_and_a_rerun_adds_no_duplicate(tmp_path):
    source = make_maildir(tmp_path / "src" / "bob", 1500, 20_000)
    target = tmp_path / "dst" / "bob"
    arguments = ["mailbox", "sync", f"maildir://{source}", f"maildir://{target}", "--state",
                 str(tmp_path / "s.db")]
    child = spawn(arguments)
    child.expect(r"[1-9]\d*/1500 msgs")  # copying has begun
    child.sendintr()
    status, output = finish(child)
    assert status == 130
    # the terminal itself echoes ^C where the cursor was: what cutover drew follows it
    assert screen_lines(output)[-1].removeprefix("^C") == "error: interrupted"
    assert "Traceback" not in output

    rerun = subprocess.run([sys.executable, "-m", "cutover", *arguments, "--json"],
                           env=environment(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert count_messages(target) == 1500
    verify = subprocess.run([sys.executable, "-m", "cutover", "mailbox", "verify",
                             f"maildir://{source}", f"maildir://{target}"],
                            env=environment(), capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_ctrl_c_stops_the_copy_before_it_completes(tmp_path):
    source = make_maildir(tmp_path / "src" / "bob", 1500, 20_000)
    target = tmp_path / "dst" / "bob"
    child = spawn(["mailbox", "sync", f"maildir://{source}", f"maildir://{target}",
                   "--state", str(tmp_path / "s.db")])
    child.expect(r"[1-9]\d*/1500 msgs")
    child.sendintr()
    assert finish(child)[0] == 130
    assert count_messages(target) < 1500


# --- confirmation prompts --------------------------------------------------------------------

PLAN = """\
    name: files
    steps:
      - {id: first, kind: test.files, params: {files: {a.txt: "A"}}}
    """


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "plans").mkdir()
    (tmp_path / "cutover.yaml").write_text("name: t\n")
    (tmp_path / "plans" / "files.yaml").write_text(textwrap.dedent(PLAN))
    return tmp_path


def files_of(root: Path) -> dict[str, bytes]:
    """The workspace's files outside its state database."""
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*")
            if path.is_file() and path.parts[len(root.parts)] != "state"}


@pytest.mark.parametrize("answer", ["n", "ctrl-c", "ctrl-d", ""],
                         ids=["no", "ctrl-c", "ctrl-d", "enter"])
def test_anything_but_yes_at_the_prompt_is_a_no_that_changes_nothing(ws, answer):
    before = files_of(ws)
    child = spawn(["--workspace", str(ws), "run", "plans/files.yaml"], cwd=ws)
    child.expect(re.escape("Apply 1 change(s) of step first? [y/N]: "))
    if answer == "ctrl-c":
        child.sendintr()
    elif answer == "ctrl-d":
        child.sendeof()
    else:
        child.sendline(answer)
    status, output = finish(child)
    assert status == 2
    assert screen_lines(output)[-1].endswith("error: step first was not confirmed; nothing "
                                             "changed")
    assert files_of(ws) == before
    assert not (ws / "a.txt").exists()


def test_yes_at_the_prompt_applies_the_step(ws):
    child = spawn(["--workspace", str(ws), "run", "plans/files.yaml"], cwd=ws)
    child.expect(re.escape("[y/N]: "))
    child.sendline("y")
    status, output = finish(child)
    assert status == 0, output
    assert "plan files: 1 step(s) applied" in output
    assert (ws / "a.txt").read_text() == "A"
