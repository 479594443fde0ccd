"""The differential verifier: run each message through the real procmail and through the Sieve
script with Pigeonhole's real sieve-test, normalise both outcomes, compare.

Procmail runs in a sandbox: a temporary HOME holding copies of the rc files, MAILDIR and DEFAULT
under it, SENDMAIL replaced by a stub that records `!` forwards, every `| program` action
rewritten to a recording stub (the stub notes the program's basename, reads the message and
succeeds, so a pipe ends delivery as a successful one would), LOGFILE assignments disabled.
Nothing leaves the machine.

sieve-test runs without -e (nothing is executed) against a private config enabling
vnd.dovecot.pipe; its "Performed actions" and "Implicit keep" sections are read. A pipe without
`:copy` cancels the implicit keep once it succeeds (Pigeonhole does that at commit, so the
printed result still lists the keep): the normaliser applies that rule.

Outcomes compare as sets of deliveries: `folder:A/B` (see convert.folder_name), `redirect:addr`,
`pipe:program`; an empty set means discarded.
"""

from __future__ import annotations

import os
import posixpath
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from cutover.errors import UsageError
from cutover.parsers.procmailrc import Action, Assignment, Node, Recipe, parse
from cutover.rules.convert import folder_name

DEFAULT_SENDER = "sender@example.net"
DEFAULT_RECIPIENT = "account@verify.example.org"
TIMEOUT = 30
_NEUTRALISED = frozenset({"SENDMAIL", "LOGFILE", "LOGABSTRACT", "VERBOSE", "LOCKFILE"})


class ToolMissing(UsageError):
    """procmail or sieve-test is not installed."""


class SieveScriptInvalid(UsageError):
    """sieve-test could not compile the Sieve script."""


@dataclass(frozen=True)
class Outcome:
    deliveries: frozenset[str]
    error: str = ""

    def describe(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if not self.deliveries:
            return "discarded"
        return ", ".join(sorted(self.deliveries))


@dataclass(frozen=True)
class Case:
    message: str
    procmail: Outcome
    sieve: Outcome

    @property
    def agrees(self) -> bool:
        return self.procmail == self.sieve and not self.procmail.error

    def to_json(self) -> dict[str, object]:
        return {"message": self.message, "agrees": self.agrees,
                "procmail": self.procmail.describe(), "sieve": self.sieve.describe()}


@dataclass
class Report:
    cases: list[Case] = field(default_factory=list)

    @property
    def agreeing(self) -> int:
        return sum(1 for case in self.cases if case.agrees)

    @property
    def disagreements(self) -> list[Case]:
        return [case for case in self.cases if not case.agrees]

    def share(self) -> float:
        return 100.0 * self.agreeing / len(self.cases) if self.cases else 100.0

    def summary(self) -> str:
        return (f"{self.agreeing} of {len(self.cases)} cases agree ({self.share():.1f}%)")


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                  else None)
    if path is None:
        raise ToolMissing(f"{name} is not installed (apt-get install {package})")
    return path


def message_files(directory: Path) -> list[Path]:
    """The messages of DIR: plain files, or a Maildir's new/ and cur/ files, sorted."""
    if not directory.is_dir():
        raise UsageError(f"messages directory not found: {directory}")
    files = [path for path in sorted(directory.rglob("*"))
             if path.is_file() and not path.name.startswith(".")
             and "tmp" not in path.relative_to(directory).parts[:-1]]
    if not files:
        raise UsageError(f"no messages in {directory}")
    return files


def envelope_sender(message: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(message)
    value = headers.get("Return-Path", "") or ""
    match = re.search(r"<([^>]*)>", value)
    address = (match.group(1) if match else value).strip()
    return address or DEFAULT_SENDER


# --- procmail --------------------------------------------------------------------------------

def _walk(nodes: list[Node]):
    for node in nodes:
        yield node
        if isinstance(node, Recipe) and node.block is not None:
            yield from _walk(node.block)


def sandbox_rc(text: str) -> str:
    """The rc with pipe actions aimed at the recording stub, LOGFILE/SENDMAIL/locks disabled
    (line numbers kept, so procmail's own messages still point at the right lines)."""
    lines = text.replace("\r\n", "\n").split("\n")
    parsed = parse(text)
    for node in _walk(parsed.nodes):
        if isinstance(node, Assignment) and node.name in _NEUTRALISED:
            _blank(lines, node.line, "# (cutover verify) assignment disabled")
        if isinstance(node, Recipe) and node.lockfile is not None:
            # one message at a time needs no lock, and a lock inside a folder the sandbox has
            # not created yet would make procmail wait for minutes
            _blank(lines, node.line, f":0{node.flags}")
        if isinstance(node, Recipe) and isinstance(node.action, Action) \
                and node.action.kind == "pipe":
            words = node.action.text.split()
            program = words[0] if words else "unknown"
            _blank(lines, node.action.line, f"| $CUTOVER_PIPE_STUB {program}")
    return "\n".join(lines)


def _blank(lines: list[str], line: int, replacement: str) -> None:
    index = line - 1
    if not 0 <= index < len(lines):
        return
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    continued = lines[index].endswith("\\")
    lines[index] = indent + replacement
    while continued and index + 1 < len(lines):
        index += 1
        continued = lines[index].endswith("\\")
        lines[index] = ""


# procmail run as root scrubs the environment, so the stubs carry their paths written in
_PIPE_STUB = """#!/bin/sh
echo "pipe:$(basename -- "$1")" >> "{records}"
cat > /dev/null
exit 0
"""
_SENDMAIL_STUB = """#!/bin/sh
for argument in "$@"; do
  case "$argument" in -*) ;; *) echo "redirect:$argument" >> "{records}" ;; esac
done
cat > /dev/null
exit 0
"""


@dataclass
class ProcmailSandbox:
    """A throwaway HOME where procmail runs with stubs for everything that would leave it."""

    rcfile: Path
    home: Path
    files: list[str]
    maildir_root: str

    def run(self, message: bytes, sender: str) -> Outcome:
        procmail = require_tool("procmail", "procmail")
        with tempfile.TemporaryDirectory(prefix="cutover-procmail-") as temp:
            sandbox = Path(temp)
            home = sandbox / "home"
            records = sandbox / "records"
            rc = self._populate(sandbox, home, records)
            root = home / posixpath.relpath(self.maildir_root, str(self.home))
            root.mkdir(parents=True, exist_ok=True)
            before = _snapshot(home)
            environment = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh",
                           "LOGNAME": "cutover-verify"}
            command = [procmail, "-f", sender, f"HOME={home}",
                       f"CUTOVER_PIPE_STUB={sandbox / 'pipe-stub'}",
                       f"SENDMAIL={sandbox / 'sendmail-stub'}", f"DEFAULT={root}/",
                       f"ORGMAIL={root}/", f"LOGFILE={sandbox / 'procmail.log'}", str(rc)]
            returncode, stderr = _run_in_own_group(command, message, environment, home)
            if returncode is None:
                return Outcome(frozenset(), "procmail timed out")
            deliveries = set(_records(records))
            deliveries.update(_stored(home, root, before, {rc}))
            error = "" if returncode == 0 else f"procmail exit {returncode}: {stderr[:200]}"
            return Outcome(frozenset(deliveries), error)

    def _populate(self, sandbox: Path, home: Path, records: Path) -> Path:
        home.mkdir(parents=True)
        for name, stub in (("pipe-stub", _PIPE_STUB), ("sendmail-stub", _SENDMAIL_STUB)):
            (sandbox / name).write_text(stub.replace("{records}", str(records)))
            (sandbox / name).chmod(0o755)
        main = None
        for original in self.files:
            relative = os.path.relpath(original, self.home)
            if relative.startswith(".."):
                raise UsageError(f"{original} is outside --home {self.home}; the verifier "
                                 "can only sandbox rc files under HOME")
            copy = home / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(sandbox_rc(Path(original).read_text(errors="replace")))
            copy.chmod(0o644)
            main = main or copy
        assert main is not None
        return main


def _run_in_own_group(command: list[str], message: bytes, environment: dict[str, str],
                      cwd: Path) -> tuple[int | None, str]:
    """Run procmail in a process group of its own and wait until every program it started
    has finished too: without the `w` flag procmail does not wait for a pipe or sendmail."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=environment, cwd=cwd,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(message, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None, ""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and _group_running(process.pid):
        time.sleep(0.005)  # polling for the stubs to exit, not timing anything
    return process.returncode, stderr.decode(errors="replace")


def _group_running(group: int) -> bool:
    """Whether a process of `group` still runs (zombies left for init to reap do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(group) and fields[0] != "Z":
            return True
    return False


def _snapshot(home: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in home.rglob("*") if path.is_file()}


def _records(records: Path) -> list[str]:
    if not records.exists():
        return []
    return [line.strip() for line in records.read_text().splitlines() if line.strip()]


def _stored(home: Path, root: Path, before: dict[Path, int], ignore: set[Path]) -> set[str]:
    folders: set[str] = set()
    for path in home.rglob("*"):
        if not path.is_file() or path in ignore or path.name.endswith(".lock"):
            continue
        if before.get(path) == path.stat().st_size:
            continue
        parent = path.parent
        if parent.name == "tmp":
            continue
        if parent.name in ("new", "cur"):
            folder = parent.parent
        elif path.name.isdigit():  # MH folder: numbered files
            folder = parent
        else:
            folder = path  # mbox file
        folders.add("folder:" + _folder_of(folder, root, home))
    return folders


def _folder_of(folder: Path, root: Path, home: Path) -> str:
    relative = os.path.relpath(folder, root)
    if relative.startswith(".."):
        return "~/" + os.path.relpath(folder, home)
    return folder_name("" if relative == "." else relative)


# --- sieve-test ------------------------------------------------------------------------------

def _sieve_config(directory: Path, pipe_bin: Path) -> Path:
    lines = []
    if os.geteuid() == 0:
        # Dovecot refuses mail access as root; sieve-test then works as nobody
        nobody = pwd.getpwnam("nobody")
        lines += ["first_valid_uid = 1", "first_valid_gid = 1",
                  f"mail_uid = {nobody.pw_uid}", f"mail_gid = {nobody.pw_gid}"]
    lines += [f"base_dir = {directory}/run", "log_path = /dev/stderr", "plugin {",
              "  sieve_plugins = sieve_extprograms",
              "  sieve_extensions = +vnd.dovecot.pipe",
              f"  sieve_pipe_bin_dir = {pipe_bin}", "}"]
    config = directory / "sieve-test.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


class SieveTester:
    """Pigeonhole's sieve-test with a private config: what would the script do?"""

    def __init__(self, script: str):
        self.script = script

    def __enter__(self) -> SieveTester:
        self.binary = require_tool("sieve-test", "dovecot-sieve")
        self.directory = Path(tempfile.mkdtemp(prefix="cutover-sieve-"))
        self.directory.chmod(0o777)  # sieve-test may run as nobody (see _sieve_config)
        for sub in ("run", "pipe-bin", "Maildir", "messages"):
            (self.directory / sub).mkdir(mode=0o777)
            (self.directory / sub).chmod(0o777)
        self.config = _sieve_config(self.directory, self.directory / "pipe-bin")
        self.script_path = self.directory / "script.sieve"
        self.script_path.write_text(self.script)
        self.script_path.chmod(0o644)
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def run(self, message: bytes, sender: str, recipient: str = DEFAULT_RECIPIENT) -> Outcome:
        message_path = self.directory / "messages" / "message.eml"
        message_path.write_bytes(message)
        message_path.chmod(0o644)
        command = [self.binary, "-c", str(self.config), "-l",
                   f"maildir:{self.directory / 'Maildir'}", "-f", sender, "-a", recipient,
                   "-r", recipient, str(self.script_path), str(message_path)]
        environment = {"HOME": str(self.directory), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(command, capture_output=True, text=True, env=environment,
                                timeout=TIMEOUT)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines()
                      if "rror" in line or "Fatal" in line]
            detail = "; ".join(errors[:3]) or result.stderr.strip()[:300]
            if "compile" in result.stderr or "script" in detail:
                raise SieveScriptInvalid(f"sieve-test cannot compile the script: {detail}")
            return Outcome(frozenset(), f"sieve-test exit {result.returncode}: {detail}")
        return parse_sieve_test(result.stdout)


_ACTION = re.compile(r"^ \* (.*)$")


def parse_sieve_test(output: str) -> Outcome:
    """sieve-test's printed result -> normalised deliveries."""
    deliveries: set[str] = set()
    section = ""
    keep_cancelled = False
    current_pipe_keeps = False
    pending_pipe = False
    for line in output.splitlines():
        if line.startswith("Performed actions:"):
            section = "actions"
            continue
        if line.startswith("Implicit keep:"):
            if pending_pipe and not current_pipe_keeps:
                keep_cancelled = True
            section, pending_pipe = "keep", False
            continue
        action = _ACTION.match(line)
        if action is None:
            if "preserve implicit keep" in line and pending_pipe:
                current_pipe_keeps = True
            continue
        if pending_pipe and not current_pipe_keeps:
            keep_cancelled = True
        pending_pipe = False
        text = action.group(1)
        if section == "keep" and keep_cancelled:
            continue
        if text.startswith("store message in folder:"):
            deliveries.add("folder:" + folder_name(text.split(":", 1)[1].strip()))
        elif text.startswith("redirect message to:"):
            deliveries.add("redirect:" + text.split(":", 1)[1].strip().strip("<>"))
        elif text.startswith("pipe message to external program"):
            program = re.search(r"'([^']*)'", text)
            deliveries.add("pipe:" + (program.group(1) if program else text))
            pending_pipe, current_pipe_keeps = True, False
        elif text.startswith("discard"):
            continue
        else:
            deliveries.add("other:" + text)
    return Outcome(frozenset(deliveries))


# --- both ------------------------------------------------------------------------------------

def verify(rcfile: Path, messages: list[Path], script: str, home: Path, files: list[str],
           maildir_root: str) -> Report:
    """Run every message through procmail and the Sieve script; one Case per message."""
    sandbox = ProcmailSandbox(rcfile, home.resolve(), files, maildir_root)
    report = Report()
    with SieveTester(script) as sieve:
        for path in messages:
            # an MTA hands procmail LF line ends; mail fetched over IMAP or EWS has CRLF, and
            # procmail would not even find the blank line ending the header in it
            message = path.read_bytes().replace(b"\r\n", b"\n")
            sender = envelope_sender(message)
            report.cases.append(Case(path.name, sandbox.run(message, sender),
                                     sieve.run(message, sender)))
    return report
