"""Sieve scripts in a directory per account: the file-backed twin of ManageSieve.

    sieve:
      linux: {kind: sievedir, path: sieve/}

Layout: `sieve/<address>/<name>.sieve`, and `sieve/<address>/active`, a file holding the active
script's name (a symlink `active -> <name>.sieve`, as Dovecot's own layout has, is read too).
No `active` means no active script.

The programs a script runs through Pigeonhole's extprograms live in the twin's own directory,
`sieve/.programs/pipe/`, `.../filter/`, `.../execute/` (no address starts with a dot), unless
`pipe_bin_dir`, `filter_bin_dir` or `execute_bin_dir` name another, as for `managesieve`.
`extensions: [fileinto, vnd.dovecot.pipe, ...]` makes the twin a server that enables just
those for personal scripts (its `sieve_extensions`); without it the twin does not say, and
nothing is refused for an extension.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.sieve_store import PROGRAM_KINDS, check_name, program_dirs
from cutover.errors import ConfigInvalid, NotFound
from cutover.files import atomic_write

ACTIVE = "active"
SUFFIX = ".sieve"
PROGRAMS = ".programs"


@connector("sievedir", role="sieve-store")
class SieveDirectory:
    def __init__(self, root: Path, program_dirs: dict[str, Path] | None = None,
                 extensions: frozenset[str] | None = None):
        self.root = root
        self.program_dirs = {kind: root / PROGRAMS / kind for kind in PROGRAM_KINDS}
        self.program_dirs.update(program_dirs or {})
        self.enabled = extensions

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> SieveDirectory:
        if not isinstance(config.get("path"), str):
            raise ConfigInvalid("sieve connector of kind sievedir needs path: DIR")
        extensions = config.get("extensions")
        if extensions is not None and (not isinstance(extensions, list) or not all(
                isinstance(name, str) for name in extensions)):
            raise ConfigInvalid("sievedir extensions must be a list of extension names")
        return cls(workspace.path(config["path"]), program_dirs(config, workspace),
                   None if extensions is None else frozenset(extensions))

    def extensions(self, account: str) -> frozenset[str] | None:
        return self.enabled

    def program_directory(self, kind: str) -> Path | None:
        return self.program_dirs.get(kind)

    def _account_dir(self, account: str) -> Path:
        if "/" in account or account.startswith("."):
            raise NotFound(f"not an account address: {account!r}")
        return self.root / account.lower()

    def _script(self, account: str, name: str) -> Path:
        return self._account_dir(account) / (check_name(name) + SUFFIX)

    def scripts(self, account: str) -> list[str]:
        directory = self._account_dir(account)
        if not directory.is_dir():
            return []
        return sorted(path.name[: -len(SUFFIX)] for path in directory.glob(f"*{SUFFIX}"))

    def get(self, account: str, name: str) -> str | None:
        path = self._script(account, name)
        return path.read_text() if path.is_file() else None

    def put(self, account: str, name: str, content: str) -> None:
        path = self._script(account, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, content)  # readers never see half a script

    def activate(self, account: str, name: str | None) -> None:
        marker = self._account_dir(account) / ACTIVE
        if name is None:
            if marker.is_symlink() or marker.exists():
                marker.unlink()
            return
        if not self._script(account, name).is_file():
            raise NotFound(f"no Sieve script {name!r} for {account}")
        if marker.is_symlink():
            marker.unlink()
        atomic_write(marker, name + "\n")

    def active(self, account: str) -> str | None:
        marker = self._account_dir(account) / ACTIVE
        if marker.is_symlink():
            target = os.readlink(marker)
            name = Path(target).name
            return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        if not marker.is_file():
            return None
        name = marker.read_text().strip()
        return name or None

    def delete(self, account: str, name: str) -> None:
        if self.active(account) == name:
            self.activate(account, None)
        path = self._script(account, name)
        if path.exists():
            path.unlink()
