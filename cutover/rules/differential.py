"""The differential verifier: run each message through the real procmail and through the Sieve
script with Pigeonhole's real sieve-test, normalise both outcomes, compare.

Procmail runs in a sandbox and nothing it runs writes outside it:
- The sandbox holds a copy of the file system the rc files see (`fs/`): HOME is `fs/<home>`,
  and every absolute path an assignment or a folder names is rebased into `fs/` (so an rc file
  with `MAILDIR=/var/tmp/x` delivers into `fs/var/tmp/x`). The directories a real home has (the
  mail root, every MAILDIR, the parents of the folders the rc files name) are created there, as
  procmail does not create them itself.
- Every program is a stub: `| program` records the program's basename and succeeds (so a pipe
  ends delivery as a successful one would), an `f` filter passes the message through unchanged
  (but `formail` asked only to add or remove header fields runs, as editheader does in Sieve),
  `formail -D` says "not seen before", a `?` condition is false, backticks and `VAR=|` give
  nothing. SENDMAIL is a stub that records `!` forwards; LOGFILE, LOCKFILE, TRAP and COMSAT
  are disabled, recipe lock files dropped.
- Where the system allows it (`unshare`, as root or in a user namespace), procmail runs in a
  mount namespace of its own in which every file system but the sandbox is read-only: whatever
  the rewriting misses (`../..` out of MAILDIR, a path built from variables) fails there instead
  of writing.
- Procmail and everything it starts inherit the write end of a pipe: when the read end sees
  end-of-file, every one of them has exited (procmail does not wait for a pipe without `w`).

sieve-test runs without -e against a private config enabling Pigeonhole's extprograms and
editheader; its "Performed actions" and "Implicit keep" sections are read. Filters and
`execute` run even so: the filter programs are pass-through stubs (and the generated
`.head`/`.body` programs around a pass-through), the execute programs record a pipe as procmail's
stub does, except `procmail-match` and `procmail-lines`, which only decide: they run as they are.
A pipe without `:copy` cancels the implicit keep once it succeeds (Pigeonhole does that at
commit, so the printed result still lists the keep): the normaliser applies that rule.
Run as root, sieve-test works as nobody (Dovecot refuses mail access as root): its sandbox is a
directory nobody owns, in TMPDIR when nobody can reach TMPDIR, else in the first of /tmp,
/var/tmp, /dev/shm it can reach (a private 0700 TMPDIR, as libpam-tmpdir makes, is not
reachable).

Outcomes compare as sets of deliveries: `folder:A/B` (see convert.folder_name; the inbox is
`folder:INBOX`), `redirect:addr`, `pipe:program` (`program.head` and `.body` count as
`program`); an empty set means discarded.
"""

from __future__ import annotations

import functools
import os
import posixpath
import pwd
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from cutover.errors import UsageError
from cutover.parsers.procmailrc import Action, Assignment, Condition, Node, Recipe, parse
from cutover.rules import programs as part_programs
from cutover.rules.convert import Conversion, folder_name, header_edits, is_inbox

DEFAULT_SENDER = "sender@example.net"
DEFAULT_RECIPIENT = "account@verify.example.org"
SANDBOX_LOGNAME = "cutover-verify"
TIMEOUT = 30
_NEUTRALISED = frozenset({"SENDMAIL", "LOGFILE", "LOGABSTRACT", "VERBOSE", "LOCKFILE", "TRAP",
                          "COMSAT"})
_NOT_PATHS = frozenset({"PATH", "SHELL", "SHELLMETAS", "SHELLFLAGS", "SENDMAILFLAGS"})
_ABSOLUTE = re.compile(r"""(^|[\s"'=]|:-|:\+)/(?!dev/null\b)""")
_BACKTICKS = re.compile(r"`[^`]*`")


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


# --- waiting for a process and all it started ------------------------------------------------

def run_to_completion(command: list[str], message: bytes, environment: dict[str, str],
                      cwd: Path, timeout: float = TIMEOUT) -> tuple[int | None, str]:
    """Run `command` in a session of its own and wait until it and every process it started
    have exited: each inherits the write end of a pipe, so end-of-file on the read end means
    none is left (no scanning of /proc, which races with exiting processes). None as the exit
    status: killed after `timeout`."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=environment, cwd=cwd,
                                   start_new_session=True, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    deadline = time.monotonic() + timeout
    try:
        try:
            _, stderr = process.communicate(message, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            return None, ""
        if not _wait_for_eof(read_end, deadline):
            _kill_session(process)
            return None, ""
    finally:
        os.close(read_end)
    return process.returncode, stderr.decode(errors="replace")


def _wait_for_eof(fd: int, deadline: float) -> bool:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready and os.read(fd, 4096) == b"":
            return True


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # every process of the session is gone already
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


# --- confinement ---------------------------------------------------------------------------

# Run in a fresh mount namespace: the sandbox stays writable (a bind mount of its own), every
# other mount becomes read-only; refuse to run when "/" did not.
_CONFINE = r"""
sandbox=$1; shift
mount --bind "$sandbox" "$sandbox" || exit 97
awk '{ print $2 }' /proc/self/mounts | sort -u | while read -r target; do
  target=$(printf '%b' "$target")
  [ "$target" = "$sandbox" ] && continue
  mount -o remount,bind,ro "$target" 2>/dev/null || :
done
awk '$2 == "/" { split($4, o, ","); for (i in o) if (o[i] == "ro") ok = 1 } END { exit !ok }' \
  /proc/self/mounts || exit 97
exec "$@"
"""
_CONFINED_EXIT = 97


@functools.cache
def _confinement() -> tuple[str, ...] | None:
    """The unshare prefix that confines a command here, or None when the system allows none."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    prefixes = [(unshare, "--mount", "--propagation", "private")]
    if os.geteuid() != 0:
        prefixes = [(unshare, "--user", "--map-root-user", "--mount", "--propagation",
                     "private")]
    with tempfile.TemporaryDirectory(prefix="cutover-confine-") as probe:
        for prefix in prefixes:
            try:
                result = subprocess.run([*prefix, "/bin/sh", "-c", _CONFINE, "confine", probe,
                                         "/bin/sh", "-c", "touch \"$1/ok\" && ! touch /.cutover-"
                                         "confine-probe 2>/dev/null", "probe", probe],
                                        capture_output=True, timeout=TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if result.returncode == 0 and Path(probe, "ok").exists():
                return prefix
    return None


def confined(command: list[str], sandbox: Path) -> list[str]:
    """`command` run so that it can write only inside `sandbox` (when the system allows)."""
    prefix = _confinement()
    if prefix is None:
        return command
    return [*prefix, "/bin/sh", "-c", _CONFINE, "confine", str(sandbox), *command]


class ConfinedArea:
    """One confined mount namespace for many procmail runs: `root` is the only place they can
    write. Making every mount read-only costs dozens of processes, so a verify of hundreds of
    messages builds the namespace once and enters it (`nsenter`) for each run. Where that is
    not possible (no root, no nsenter), each run is confined on its own as before."""

    def __init__(self) -> None:
        self._temp = tempfile.TemporaryDirectory(prefix="cutover-procmail-")
        self.root = Path(self._temp.name)
        self._holder: subprocess.Popen[bytes] | None = None
        prefix, nsenter = _confinement(), shutil.which("nsenter")
        if prefix is None or nsenter is None or os.geteuid() != 0:
            return
        holder = subprocess.Popen(
            [*prefix, "/bin/sh", "-c", _CONFINE, "confine", str(self.root), "/bin/sh", "-c",
             "echo ready; exec cat >/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        assert holder.stdout is not None
        started, _, _ = select.select([holder.stdout], [], [], TIMEOUT)
        if started and holder.stdout.readline().strip() == b"ready":
            self._holder = holder
            self._nsenter = nsenter
        else:
            _stop(holder)

    @property
    def shared(self) -> bool:
        """Whether the runs share one namespace (else each is confined on its own)."""
        return self._holder is not None

    def command(self, command: list[str], sandbox: Path, cwd: Path) -> list[str]:
        """`command` confined to `sandbox` (a directory under `root`), run in `cwd`."""
        if self._holder is None:
            return confined(command, sandbox)
        return [self._nsenter, f"--mount=/proc/{self._holder.pid}/ns/mnt", f"--wd={cwd}", "--",
                *command]

    def __enter__(self) -> ConfinedArea:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._holder is not None:
            _stop(self._holder)
        self._temp.cleanup()


def _stop(holder: subprocess.Popen[bytes]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()  # its `cat` sees end-of-file: the namespace's last process exits
    try:
        holder.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        holder.kill()
        holder.wait()
    if holder.stdout is not None:
        holder.stdout.close()


# --- procmail --------------------------------------------------------------------------------

def _walk(nodes: list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        if isinstance(node, Recipe) and node.block is not None:
            yield from _walk(node.block)


@dataclass(frozen=True)
class Stubs:
    """The programs that stand in for everything procmail would run."""

    directory: Path
    records: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        records = self.records
        scripts = {
            # procmail run as root scrubs the environment, so the stubs carry their paths
            "pipe": f'#!/bin/sh\necho "pipe:$(basename -- "$1")" >> "{records}"\n'
                    "cat > /dev/null\nexit 0\n",
            "sendmail": "#!/bin/sh\nfor argument in \"$@\"; do\n"
                        f'  case "$argument" in -*) ;; *) echo "redirect:$argument" >> '
                        f'"{records}" ;; esac\ndone\ncat > /dev/null\nexit 0\n',
            "filter": "#!/bin/sh\nexec cat\n",
            "not-seen-before": "#!/bin/sh\ncat > /dev/null\nexit 1\n",
            "false": "#!/bin/sh\ncat > /dev/null 2>&1\nexit 1\n",
            "nothing": "#!/bin/sh\ncat > /dev/null 2>&1\nexit 0\n",
        }
        for name, text in scripts.items():
            (self.directory / name).write_text(text)
            (self.directory / name).chmod(0o755)


def sandbox_rc(text: str, fs: str, stubs: Stubs) -> str:
    """The rc rewritten for the sandbox, line numbers kept (so procmail's own messages still
    point at the right lines): absolute paths rebased under `fs`, programs replaced by stubs,
    LOGFILE/SENDMAIL/locks/TRAP/COMSAT disabled."""
    lines = text.replace("\r\n", "\n").split("\n")
    for node in _walk(parse(text).nodes):
        if isinstance(node, Assignment):
            _rewrite_assignment(lines, node, fs, stubs)
        elif isinstance(node, Recipe):
            if node.lockfile is not None:
                # one message at a time needs no lock, and a lock inside a folder the sandbox
                # has not created would make procmail wait for minutes
                _replace(lines, node.line, node.line, f":0{node.flags}")
            for condition in node.conditions:
                if condition.kind == "program":
                    _replace(lines, condition.line, condition.end_line or condition.line,
                             _stub_condition(condition, stubs))
            if node.action is not None:
                _rewrite_action(lines, node, node.action, fs, stubs)
    return "\n".join(lines)


def _rewrite_assignment(lines: list[str], node: Assignment, fs: str, stubs: Stubs) -> None:
    if node.inline:
        return
    end = node.end_line or node.line
    if node.name in _NEUTRALISED:
        _replace(lines, node.line, end, "# (cutover verify) assignment disabled")
        return
    original = "\n".join(lines[node.line - 1:end])
    name_end = original.index("=") + 1 if "=" in original else len(original)
    value = original[name_end:]
    value = _BACKTICKS.sub(f"`{stubs.path('nothing')}`", value)
    if node.name not in _NOT_PATHS:
        value = _ABSOLUTE.sub(lambda m: m.group(1) + fs + "/", value)
    rewritten = original[:name_end] + value
    if rewritten != original:
        new_lines = rewritten.split("\n")
        new_lines += [""] * (end - node.line + 1 - len(new_lines))
        lines[node.line - 1:end] = new_lines


def _stub_condition(condition: Condition, stubs: Stubs) -> str:
    prefix = "!" if condition.negated else ""
    weight = f"{condition.weight[0]}^{condition.weight[1]} " if condition.weight else ""
    return f"* {prefix}{weight}? {stubs.path('false')}"


def _rewrite_action(lines: list[str], recipe: Recipe, action: Action, fs: str,
                    stubs: Stubs) -> None:
    end = action.end_line or action.line
    if action.kind == "pipe":
        words = action.text.split()
        program = words[0] if words else "unknown"
        if "f" in recipe.flags and _is_formail(program) and _plain_header_edits(action.text):
            return  # formail only edits the header (editheader in Sieve): it runs for real
        if "f" in recipe.flags:
            stub = stubs.path("filter")
        elif _is_formail(program) and "-D" in " ".join(words[1:2]):
            stub = stubs.path("not-seen-before")
        else:
            stub = f"{stubs.path('pipe')} {program}"
        _replace(lines, action.line, end, f"| {stub}")
    elif action.kind == "capture":
        _replace(lines, action.line, end, f"{action.variable}=| {stubs.path('nothing')}")
    elif action.kind == "folder":
        text = " ".join(lines[action.line - 1:end])
        rebased = _ABSOLUTE.sub(lambda m: m.group(1) + fs + "/", text)
        if rebased != text:
            _replace(lines, action.line, end, rebased.strip())


def _is_formail(program: str) -> bool:
    return program.rsplit("/", 1)[-1] in ("formail", "$FORMAIL", "${FORMAIL}")


def _plain_header_edits(text: str) -> bool:
    """formail asked only to add, rename or remove header fields (nothing that runs or writes
    elsewhere), with no variable in the fields but the score `$=`, which procmail decides from
    the message alone."""
    text = text.replace("$=", "0")
    if re.search(r"[|;&<>`$()]", text.split(None, 1)[1] if " " in text.strip() else ""):
        return False
    try:
        return bool(header_edits(shlex.split(text)[1:]))
    except ValueError:
        return False


def _replace(lines: list[str], first: int, last: int, replacement: str) -> None:
    index = first - 1
    if not 0 <= index < len(lines):
        return
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines[index] = indent + replacement
    for other in range(first, min(last, len(lines))):
        lines[other] = ""


@dataclass
class ProcmailSandbox:
    """A throwaway copy of the rc files' world where procmail runs with stubs for everything
    that would leave it."""

    conversion: Conversion
    area: ConfinedArea | None = None

    def run(self, message: bytes, sender: str) -> Outcome:
        procmail = require_tool("procmail", "procmail")
        area = self.area
        with tempfile.TemporaryDirectory(prefix="cutover-procmail-",
                                         dir=area.root if area else None) as temp:
            sandbox = Path(temp)
            fs = sandbox / "fs"
            stubs = Stubs(sandbox / "stubs", sandbox / "records")
            rc = self._populate(fs, stubs)
            home = _inside(fs, self.conversion.home)
            system_mailbox = _inside(fs, f"/var/mail/{SANDBOX_LOGNAME}")
            ignore = set(_files(fs))
            before = {path: path.stat().st_size for path in ignore}
            environment = {"HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh",
                           "LOGNAME": SANDBOX_LOGNAME}
            command = [procmail, "-f", sender, f"HOME={home}", f"LOGNAME={SANDBOX_LOGNAME}",
                       "COMSAT=no", f"SENDMAIL={stubs.path('sendmail')}",
                       f"DEFAULT={system_mailbox}", f"ORGMAIL={system_mailbox}",
                       f"LOGFILE={sandbox / 'procmail.log'}", str(rc)]
            command = area.command(command, sandbox, home) if area else \
                confined(command, sandbox)
            returncode, stderr = run_to_completion(command, message, environment, home)
            if returncode is None:
                return Outcome(frozenset(), "procmail timed out")
            if returncode == _CONFINED_EXIT and _confinement() is not None:
                raise UsageError("could not make the file system read-only around procmail; "
                                 "the verifier does not run it unconfined")
            deliveries = set(_records(stubs.records))
            deliveries.update(self._stored(fs, before))
            error = "" if returncode == 0 else f"procmail exit {returncode}: {stderr[:200]}"
            return Outcome(frozenset(deliveries), error)

    def _populate(self, fs: Path, stubs: Stubs) -> Path:
        stubs.write()
        conversion = self.conversion
        for directory in [*conversion.directories, conversion.home, "/var/mail",
                          "/var/spool/mail"]:
            _inside(fs, directory).mkdir(parents=True, exist_ok=True)
        main = None
        for original in conversion.files:
            copy = _inside(fs, os.path.abspath(original))
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(sandbox_rc(Path(original).read_text(errors="replace"), str(fs),
                                       stubs))
            copy.chmod(0o644)
            main = main or copy
        if main is None:
            raise UsageError("nothing to verify: the conversion read no rc file")
        return main

    def _stored(self, fs: Path, before: dict[Path, int]) -> set[str]:
        folders: set[str] = set()
        for path in _files(fs):
            if path.name.endswith(".lock") or before.get(path) == path.stat().st_size:
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
            folders.add("folder:" + self._folder_of("/" + folder.relative_to(fs).as_posix()))
        return folders

    def _folder_of(self, original: str) -> str:
        conversion = self.conversion
        if is_inbox(original, set(conversion.inbox_paths)):
            return "INBOX"
        relative = posixpath.relpath(original, conversion.maildir_root)
        if relative == ".." or relative.startswith("../"):
            return original
        return folder_name("" if relative == "." else relative)


def _inside(fs: Path, absolute: str) -> Path:
    return fs / absolute.lstrip("/")


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _records(records: Path) -> list[str]:
    if not records.exists():
        return []
    return [line.strip() for line in records.read_text().splitlines() if line.strip()]


# --- sieve-test ------------------------------------------------------------------------------

def _nobody() -> tuple[int, int] | None:
    """The user sieve-test works as when run by root (Dovecot refuses mail access as root)."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _reachable(directory: Path, uid: int, gid: int) -> bool:
    """Whether `uid` may enter `directory` and every directory above it."""
    for path in [directory, *directory.parents]:
        try:
            info = path.stat()
        except OSError:
            return False
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def sieve_sandbox(user: tuple[int, int] | None) -> Path:
    """A fresh directory sieve-test can use: in TMPDIR, or, when `user` (nobody) cannot reach
    TMPDIR, in the first common temporary directory it can; owned by `user`, mode 0700."""
    if user is None:
        return Path(tempfile.mkdtemp(prefix="cutover-sieve-"))
    candidates = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    for base in candidates:
        if base.is_dir() and _reachable(base, *user):
            directory = Path(tempfile.mkdtemp(prefix="cutover-sieve-", dir=base))
            os.chown(directory, *user)
            return directory
    raise UsageError("sieve-test runs as nobody, who can enter none of "
                     f"{', '.join(str(c) for c in candidates)}: make one of them traversable")


def _sieve_config(directory: Path, user: tuple[int, int] | None) -> Path:
    lines = []
    if user is not None:
        lines += ["first_valid_uid = 1", "first_valid_gid = 1",
                  f"mail_uid = {user[0]}", f"mail_gid = {user[1]}"]
    lines += [f"base_dir = {directory}/run", "log_path = /dev/stderr", "plugin {",
              "  sieve_plugins = sieve_extprograms",
              "  sieve_extensions = +vnd.dovecot.pipe +vnd.dovecot.filter "
              "+vnd.dovecot.execute +editheader",
              f"  sieve_pipe_bin_dir = {directory}/pipe-bin",
              f"  sieve_filter_bin_dir = {directory}/filter-bin",
              f"  sieve_execute_bin_dir = {directory}/execute-bin", "}"]
    config = directory / "sieve-test.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o644)
    return config


_PROGRAM_USE = re.compile(r'\b(filter|execute :pipe(?: :output "[^"]+")?|pipe(?: :copy)?)\s+'
                          r'"([^"]+)"')


class SieveTester:
    """Pigeonhole's sieve-test with a private config: what would the script do?"""

    def __init__(self, script: str):
        self.script = script

    def __enter__(self) -> SieveTester:
        self.binary = require_tool("sieve-test", "dovecot-sieve")
        self.user = _nobody()
        self.directory = sieve_sandbox(self.user)
        for sub in ("run", "pipe-bin", "filter-bin", "execute-bin", "Maildir", "messages"):
            (self.directory / sub).mkdir(mode=0o755)
            if self.user is not None:
                os.chown(self.directory / sub, *self.user)
        self.records = self.directory / "records"
        self._write_programs()
        self.config = _sieve_config(self.directory, self.user)
        self.script_path = self.directory / "script.sieve"
        self.script_path.write_text(self.script)
        self.script_path.chmod(0o644)
        if self.user is not None:
            os.chown(self.script_path, *self.user)  # sieve-test saves the compiled script
        return self

    def _write_programs(self) -> None:
        """Stand-ins for the programs the script runs even without -e: filters pass the
        message through, execute programs record a pipe as procmail's stub does."""
        for use, name in set(_PROGRAM_USE.findall(self.script)):
            base = name
            for suffix in part_programs.SUFFIXES:
                base = base.removesuffix(suffix)
            part = name[len(base) + 1:]
            if use == "filter":
                path = self.directory / "filter-bin" / name
                text = part_programs.part_program(part, "filter", "cat") \
                    if part else "#!/bin/sh\nexec /bin/cat\n"
            elif use.startswith("execute") and name in part_programs.DECIDING_PROGRAMS:
                path = self.directory / "execute-bin" / name
                text = part_programs.DECIDING_PROGRAMS[name]()  # decides, does nothing else
            elif use.startswith("execute"):
                path = self.directory / "execute-bin" / name
                text = (f"#!/bin/sh\n/bin/cat > /dev/null\nprintf 'pipe:%s\\n' '{base}' >> "
                        f"'{self.records}'\nexit 0\n")
            else:
                continue  # pipes do not run without -e
            path.write_text(text)
            path.chmod(0o755)

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def run(self, message: bytes, sender: str, recipient: str = DEFAULT_RECIPIENT) -> Outcome:
        message_path = self.directory / "messages" / "message.eml"
        message_path.write_bytes(message)
        message_path.chmod(0o644)
        self.records.write_bytes(b"")
        if self.user is not None:
            os.chown(self.records, *self.user)
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
        outcome = parse_sieve_test(result.stdout)
        executed = set(_records(self.records))
        if executed:
            return Outcome(outcome.deliveries | frozenset(executed), outcome.error)
        return outcome


_ACTION = re.compile(r"^ \* (.*)$")


def _program(name: str) -> str:
    for suffix in part_programs.SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


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
            deliveries.add("pipe:" + _program(program.group(1) if program else text))
            pending_pipe, current_pipe_keeps = True, False
        elif text.startswith(("discard", "add header", "delete header", "track duplicate")):
            continue
        else:
            deliveries.add("other:" + text)
    return Outcome(frozenset(deliveries))


# --- both ------------------------------------------------------------------------------------

def verify(conversion: Conversion, messages: list[Path], script: str | None = None) -> Report:
    """Run every message through procmail (the rc files the conversion read) and the Sieve
    script (default: the converted one); one Case per message."""
    report = Report()
    with SieveTester(conversion.script if script is None else script) as sieve, \
            ConfinedArea() as area:
        sandbox = ProcmailSandbox(conversion, area)
        for path in messages:
            # an MTA hands procmail LF line ends; mail fetched over IMAP or EWS has CRLF, and
            # procmail would not even find the blank line ending the header in it
            message = path.read_bytes().replace(b"\r\n", b"\n")
            sender = envelope_sender(message)
            report.cases.append(Case(path.name, sandbox.run(message, sender),
                                     sieve.run(message, sender)))
    return report
