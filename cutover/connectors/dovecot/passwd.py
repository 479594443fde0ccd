"""Linux mail accounts (kind `dovecot-passwd`): a Dovecot passwd-file entry, the Postfix virtual
mailbox map entries and the Maildir root. The same files are written in the demo and on a real
mail host; only `postmap` (compiling the maps) is limited to where it is configured.

    accounts:
      linux:
        kind: dovecot-passwd
        passwd_file: dovecot/users                          # Dovecot passdb+userdb passwd-file
        virtual_mailbox_maps: postfix/virtual_mailbox_maps  # "address  address/"
        virtual_mailbox_domains: postfix/virtual_mailbox_domains   # "domain  OK"
        mail_root: mail/linux                               # Maildirs: <root>/<address>/
        credentials_dir: credentials/                       # <address>.txt, mode 0600
        uid: vmail            # optional (name or number): owner of the Maildirs; default: the
        gid: vmail            # owner of mail_root
        postmap: false        # true: run `postmap` on both maps after each change

The passwd-file line is `address:{SSHA512}hash:uid:gid::<mail_root>/<address>::userdb_mail=
maildir:<mail_root>/<address>:LAYOUT=fs`, so Dovecot and the Maildir twin (`mailstores: linux:
{kind: maildir, path: mail/linux}`) read the same directory. A random password is generated when
the account is created; its cleartext goes only to the operator's 0600 credentials file.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import ConfigInvalid, UsageError
from cutover.files import atomic_write

_MAILDIR_DIRS = ("cur", "new", "tmp")
_DOMAIN_MARK = "# added by cutover linux.account: "


def ssha512(password: str) -> str:
    """Dovecot's {SSHA512}: base64(sha512(password + salt) + salt)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


def check_ssha512(password: str, stored: str) -> bool:
    raw = base64.b64decode(stored.removeprefix("{SSHA512}"))
    digest, salt = raw[:64], raw[64:]
    return hashlib.sha512(password.encode() + salt).digest() == digest


def _id(value: Any, lookup, fallback: int) -> int:
    if value is None:
        return fallback
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return lookup(str(value))
    except KeyError:
        raise ConfigInvalid(f"cutover.yaml: accounts: no such user/group {value!r}") from None


@connector("dovecot-passwd", role="accounts")
class DovecotPasswdAccounts:
    def __init__(self, passwd_file: Path, mailbox_maps: Path, mailbox_domains: Path,
                 mail_root: Path, credentials_dir: Path, uid: Any = None, gid: Any = None,
                 postmap: bool = False):
        self.passwd_file = passwd_file
        self.mailbox_maps = mailbox_maps
        self.mailbox_domains = mailbox_domains
        self.mail_root = mail_root
        self.credentials_dir = credentials_dir
        self._uid, self._gid = uid, gid
        self.postmap = postmap

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> DovecotPasswdAccounts:
        missing = [k for k in ("passwd_file", "virtual_mailbox_maps", "virtual_mailbox_domains",
                               "mail_root", "credentials_dir") if not config.get(k)]
        if missing:
            raise ConfigInvalid(f"cutover.yaml: a dovecot-passwd accounts entry needs "
                                f"{', '.join(missing)}")
        return cls(workspace.path(config["passwd_file"]),
                   workspace.path(config["virtual_mailbox_maps"]),
                   workspace.path(config["virtual_mailbox_domains"]),
                   workspace.path(config["mail_root"]), workspace.path(config["credentials_dir"]),
                   config.get("uid"), config.get("gid"), bool(config.get("postmap", False)))

    # --- what exists ------------------------------------------------------------------------
    def maildir(self, address: str) -> Path:
        _check_address(address)
        return self.mail_root / address

    def credentials_file(self, address: str) -> Path:
        return self.credentials_dir / f"{address}.txt"

    def state(self, address: str) -> dict[str, Any]:
        """What exists for `address` now (no secrets): the payload of Change.before/after."""
        _check_address(address)
        domain = address.rpartition("@")[2]
        return {
            "passwd": _find_line(self.passwd_file, address, ":") is not None,
            "mailbox_map": _map_value(self.mailbox_maps, address),
            "domain": _map_value(self.mailbox_domains, domain) is not None,
            "maildir": (self.maildir(address) / "cur").is_dir(),
            "credentials": self.credentials_file(address).exists(),
        }

    def wanted(self, address: str) -> dict[str, Any]:
        return {"passwd": True, "mailbox_map": f"{address}/", "domain": True, "maildir": True,
                "credentials": True}

    # --- changes ----------------------------------------------------------------------------
    def ensure(self, address: str) -> None:
        """Create whatever is missing; an existing password is never replaced."""
        now = self.state(address)
        domain = address.rpartition("@")[2]
        if not now["maildir"]:
            self._make_maildir(address)
        if not now["passwd"]:
            password = secrets.token_urlsafe(18)
            self._write_credentials(address, password)
            uid, gid = self._owner()
            home = self.maildir(address)
            _append_line(self.passwd_file, f"{address}:{ssha512(password)}:{uid}:{gid}::{home}::"
                                           f"userdb_mail=maildir:{home}:LAYOUT=fs")
            del password
        if now["mailbox_map"] is None:
            _append_line(self.mailbox_maps, f"{address} {address}/")
        if not now["domain"]:
            # The marker lets whichever account is rolled back last remove the domain.
            _append_line(self.mailbox_domains, f"{_DOMAIN_MARK}{domain}\n{domain} OK")
        self._compile()

    def remove(self, address: str, before: dict[str, Any]) -> None:
        """Remove exactly what was absent in `before`."""
        domain = address.rpartition("@")[2]
        if not before.get("passwd"):
            _remove_line(self.passwd_file, address, ":")
        if before.get("mailbox_map") is None:
            _remove_line(self.mailbox_maps, address, None)
        marker = f"{_DOMAIN_MARK}{domain}"
        ours = not before.get("domain") or (self.mailbox_domains.exists() and marker in
                                            self.mailbox_domains.read_text().splitlines())
        if ours and not self._domain_in_use(domain):
            _remove_line(self.mailbox_domains, domain, None)
            _remove_exact(self.mailbox_domains, marker)
        if not before.get("credentials"):
            self.credentials_file(address).unlink(missing_ok=True)
        if not before.get("maildir"):
            self._remove_maildir(address)
        self._compile()

    # --- helpers ----------------------------------------------------------------------------
    def _owner(self) -> tuple[int, int]:
        self.mail_root.mkdir(parents=True, exist_ok=True)
        info = self.mail_root.stat()
        return (_id(self._uid, lambda n: pwd.getpwnam(n).pw_uid, info.st_uid),
                _id(self._gid, lambda n: grp.getgrnam(n).gr_gid, info.st_gid))

    def _make_maildir(self, address: str) -> None:
        uid, gid = self._owner()
        root = self.maildir(address)
        for sub in _MAILDIR_DIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        for path in (root, *(root / s for s in _MAILDIR_DIRS)):
            path.chmod(0o700)
            if os.geteuid() == 0:
                os.chown(path, uid, gid)

    def _remove_maildir(self, address: str) -> None:
        root = self.maildir(address)
        if not root.exists():
            return
        held = [p for s in _MAILDIR_DIRS if (root / s).is_dir() for p in (root / s).iterdir()]
        folders = [p for p in root.iterdir() if p.is_dir() and p.name not in _MAILDIR_DIRS]
        if held or folders:
            raise UsageError(f"{root} holds mail now: roll back the mail copy first, or remove "
                             "it by hand")
        shutil.rmtree(root)

    def _write_credentials(self, address: str, password: str) -> None:
        self.credentials_dir.mkdir(parents=True, exist_ok=True)
        path = self.credentials_file(address)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"login: {address}\npassword: {password}\n")
        path.chmod(0o600)

    def _domain_in_use(self, domain: str) -> bool:
        if not self.mailbox_maps.exists():
            return False
        return any(line.split()[0].endswith("@" + domain)
                   for line in self.mailbox_maps.read_text().splitlines()
                   if line.strip() and not line.startswith("#"))

    def _compile(self) -> None:
        if not self.postmap:
            return
        binary = shutil.which("postmap") or "/usr/sbin/postmap"
        for path in (self.mailbox_maps, self.mailbox_domains):
            result = subprocess.run([binary, str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                raise UsageError(f"postmap {path} failed: {result.stderr.strip()}")


def _check_address(address: str) -> None:
    if "@" not in address or "/" in address or ":" in address or address.strip() != address:
        raise UsageError(f"not a mailbox address: {address!r}")


def _find_line(path: Path, key: str, separator: str | None) -> str | None:
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        fields = line.split(separator, 1) if separator else line.split(None, 1)
        if fields and fields[0] == key and not line.startswith("#"):
            return line
    return None


def _map_value(path: Path, key: str) -> str | None:
    line = _find_line(path, key, None)
    if line is None:
        return None
    parts = line.split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    _replace(path, text + line + "\n")


def _remove_line(path: Path, key: str, separator: str | None) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for line in lines:
        fields = line.split(separator, 1) if separator else line.split(None, 1)
        if not (fields and fields[0] == key and not line.startswith("#")):
            kept.append(line)
    if len(kept) != len(lines):
        _replace(path, "".join(kept))


def _remove_exact(path: Path, text: str) -> None:
    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.rstrip("\n") != text]
        if len(kept) != len(lines):
            _replace(path, "".join(kept))


def _replace(path: Path, text: str) -> None:
    """Write atomically, keeping the file's mode (a passwd-file must stay unreadable to others)."""
    atomic_write(path, text, new_file_mode=0o640)
