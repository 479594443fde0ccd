"""The interface both Sieve script stores share: ManageSieve (managesieve.py) on a real server,
and a directory of scripts per account (sievedir.py), its file-backed twin.

    sieve:
      linux: {kind: sievedir, path: sieve/}
      # linux: {kind: managesieve, host: 127.0.0.1, port: 4190, user: "{address}",
      #         password: env/SIEVE_PASSWORD,
      #         pipe_bin_dir: /mnt/mail/sieve-pipe}   # Dovecot's sieve_pipe_bin_dir, as
      #                                               # this host reaches it

`account` is the mail address of the account whose scripts are meant; a connector maps it to
its own notion (a directory, a login name).

Besides scripts, a store says which extensions a personal script may `require` there
(`extensions`) and where the programs a script runs through Pigeonhole's extprograms live
(`program_directory`): ManageSieve cannot upload programs, so they are files in the
directory Dovecot's `sieve_pipe_bin_dir` / `sieve_filter_bin_dir` / `sieve_execute_bin_dir`
names, written by cutover as a local or mounted directory (`ProgramDirectory`). This module
also reads the little of a script's text that deploying it needs (`required_extensions`,
`program_uses`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Protocol

from cutover.errors import ConfigInvalid, UsageError
from cutover.files import atomic_write

_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")


class SieveScriptRejected(UsageError):
    """The server refused a script (it does not compile there) or a script name is invalid."""


class SieveStore(Protocol):
    def scripts(self, account: str) -> list[str]: ...

    def get(self, account: str, name: str) -> str | None: ...

    def put(self, account: str, name: str, content: str) -> None: ...

    def activate(self, account: str, name: str | None) -> None:
        """Make `name` the active script; None leaves no script active."""

    def active(self, account: str) -> str | None: ...

    def delete(self, account: str, name: str) -> None: ...

    def extensions(self, account: str) -> frozenset[str] | None:
        """The extensions a personal script of `account` may require (ManageSieve's SIEVE
        capability); None when the store cannot tell."""

    def program_directory(self, kind: str) -> Path | None:
        """Where the programs a script runs with `kind` ("pipe", "filter" or "execute") live,
        as this host writes them; None when the connector is not told."""


def check_name(name: str) -> str:
    if not _SCRIPT_NAME.match(name) or name.endswith(".sieve"):
        raise SieveScriptRejected(f"invalid Sieve script name {name!r}: letters, digits, "
                                  "'.', '_', '+', '-', without the .sieve suffix")
    return name


def account_fields(account: str) -> dict[str, str]:
    """Template fields for a connector's user/path templates."""
    local, _, domain = account.partition("@")
    return {"address": account, "local": local, "domain": domain}


def normalised(script: str | None) -> str | None:
    """Script text as stores hand it back: LF line ends, one final newline."""
    return None if script is None else script.replace("\r\n", "\n").rstrip("\n") + "\n"


def restore_script(store: SieveStore, account: str, name: str, script: str | None,
                   active: str | None) -> None:
    """Put one script and the account's activation back as recorded: `script` None means the
    script did not exist; `active` None means no script was active. Idempotent."""
    if script is not None and normalised(store.get(account, name)) != normalised(script):
        store.put(account, name, script)
    if store.active(account) != active:
        store.activate(account, active)
    if script is None and name in store.scripts(account):
        store.delete(account, name)


# --- programs run through Pigeonhole's extprograms (vnd.dovecot.pipe / filter / execute) ------

PROGRAM_KINDS = ("pipe", "filter", "execute")
#: the extension each kind of program call needs; they come with sieve_plugins = sieve_extprograms
PROGRAM_EXTENSIONS = {kind: f"vnd.dovecot.{kind}" for kind in PROGRAM_KINDS}
#: tags of the three commands that take a string argument (execute :input "data" :output "var")
_TAGS_WITH_ARGUMENT = frozenset({":input", ":output"})
_PROGRAM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$")
MANIFEST = ".cutover-programs.json"

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*|/\*.*?\*/)
  | (?P<multiline>text:[ \t]*(?:\#[^\n]*)?\r?\n.*?^\.\r?$)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<tag>:[A-Za-z_][A-Za-z0-9_]*)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>[^\s])
""", re.S | re.M | re.X)


def _tokens(script: str) -> list[tuple[str, str]]:
    """(kind, value) of a script's tokens without comments; quoted strings unescaped."""
    tokens = []
    for match in _TOKEN.finditer(script):
        kind = match.lastgroup or "other"
        value = match.group()
        if kind == "comment":
            continue
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.S)
        elif kind == "multiline":
            kind, value = "string", value.split("\n", 1)[1].rsplit("\n", 1)[0]
        tokens.append((kind, value))
    return tokens


def required_extensions(script: str) -> list[str]:
    """Every capability the script's `require` commands name, sorted."""
    tokens = _tokens(script)
    names: set[str] = set()
    for index, (kind, value) in enumerate(tokens):
        if kind != "word" or value != "require":
            continue
        for kind_after, value_after in tokens[index + 1:]:
            if kind_after == "string":
                names.add(value_after)
            elif value_after == ";":
                break
    return sorted(names)


def program_uses(script: str) -> dict[str, set[str]]:
    """Program name -> how the script runs it ({"pipe", "filter", "execute"}): the first
    string argument after the tags of each `pipe`, `filter` and `execute` (command or test).
    A name built from variables is left out: it is only known when the script runs."""
    tokens = _tokens(script)
    uses: dict[str, set[str]] = {}
    for index, (kind, value) in enumerate(tokens):
        if kind != "word" or value not in PROGRAM_KINDS:
            continue
        position = index + 1
        while position < len(tokens) and tokens[position][0] == "tag":
            position += 2 if tokens[position][1] in _TAGS_WITH_ARGUMENT else 1
        if position < len(tokens) and tokens[position][0] == "string" \
                and "${" not in tokens[position][1]:
            uses.setdefault(tokens[position][1], set()).add(value)
    return uses


def program_dirs(config: dict[str, Any], workspace: Any) -> dict[str, Path]:
    """`pipe_bin_dir`, `filter_bin_dir`, `execute_bin_dir` of a sieve connector's config."""
    dirs = {}
    for kind in PROGRAM_KINDS:
        value = config.get(f"{kind}_bin_dir")
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ConfigInvalid(f"sieve connector setting {kind}_bin_dir must be a directory")
        dirs[kind] = workspace.path(value)
    return dirs


def check_program_name(name: str) -> str:
    """A program name as Pigeonhole looks it up in a bin directory: one plain file name."""
    if not _PROGRAM_NAME.match(name):
        raise UsageError(f"invalid Sieve program name {name!r}: one file name of letters, "
                         "digits, '.', '_', '+', '-'")
    return name


def content_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ProgramDirectory:
    """One of Pigeonhole's program directories as this host reaches it. Beside the programs
    it keeps `.cutover-programs.json`: for each name, the digest of every content cutover
    wrote there with the account it wrote it for (`written`), and the accounts whose deployed
    scripts run it now (`users`). So a program someone else put there is recognised, one
    cutover installed for another account's rules too, and a program two accounts share
    stays until the last of them is rolled back."""

    def __init__(self, path: Path):
        self.path = path

    def file(self, name: str) -> Path:
        return self.path / check_program_name(name)

    def read(self, name: str) -> tuple[bytes, int] | None:
        """A program's bytes and mode, or None when there is no such file."""
        path = self.file(name)
        if not path.is_file():
            return None
        return path.read_bytes(), path.stat().st_mode & 0o7777

    def written_for(self, name: str, data: bytes) -> str | None:
        """The account cutover wrote this content under this name for; None when cutover
        did not write it."""
        return self._manifest()["written"].get(name, {}).get(content_digest(data))

    def users(self, name: str) -> list[str]:
        return list(self._manifest()["users"].get(name, []))

    def install(self, name: str, data: bytes, account: str, mode: int = 0o755) -> None:
        """Write the program atomically (a delivery never runs half a program), recording
        first that cutover wrote this content for `account`, which now runs it."""
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = self._manifest()
        manifest["written"].setdefault(name, {})[content_digest(data)] = account
        self._add_user(manifest, name, account)
        self._save(manifest)
        atomic_write(self.file(name), data, mode=mode)

    def use(self, name: str, account: str) -> None:
        """`account`'s script runs the program that is already there."""
        manifest = self._manifest()
        if account not in manifest["users"].get(name, []):
            self._add_user(manifest, name, account)
            self._save(manifest)

    def release(self, name: str, account: str) -> list[str]:
        """`account`'s script no longer runs the program: the accounts that still do."""
        manifest = self._manifest()
        users = manifest["users"].get(name, [])
        if account in users:
            users.remove(account)
            self._save(manifest)
        return list(users)

    def restore(self, name: str, data: bytes | None, mode: int | None) -> None:
        """Put back what was there: `data` None means no such file. Idempotent."""
        path = self.file(name)
        if data is None:
            if path.is_file() or path.is_symlink():
                path.unlink()
            return
        if self.read(name) != (data, mode):
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data, mode=mode)

    @staticmethod
    def _add_user(manifest: dict[str, Any], name: str, account: str) -> None:
        users = manifest["users"].setdefault(name, [])
        if account not in users:
            users.append(account)
            users.sort()

    def _save(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True)
                     + "\n", mode=0o644)

    def _manifest(self) -> dict[str, Any]:
        try:
            loaded = json.loads((self.path / MANIFEST).read_text())
        except (FileNotFoundError, ValueError):
            loaded = {}
        if not isinstance(loaded, dict):
            loaded = {}
        written, users = loaded.get("written"), loaded.get("users")
        return {"written": written if isinstance(written, dict) else {},
                "users": users if isinstance(users, dict) else {}}
