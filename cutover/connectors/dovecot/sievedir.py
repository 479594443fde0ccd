"""Sieve scripts in a directory per account: the file-backed twin of ManageSieve.

    sieve:
      linux: {kind: sievedir, path: sieve/}

Layout: `sieve/<address>/<name>.sieve`, and `sieve/<address>/active`, a file holding the active
script's name (a symlink `active -> <name>.sieve`, as Dovecot's own layout has, is read too).
No `active` means no active script.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.sieve_store import check_name
from cutover.errors import ConfigInvalid, NotFound
from cutover.files import atomic_write

ACTIVE = "active"
SUFFIX = ".sieve"


@connector("sievedir", role="sieve-store")
class SieveDirectory:
    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> SieveDirectory:
        if not isinstance(config.get("path"), str):
            raise ConfigInvalid("sieve connector of kind sievedir needs path: DIR")
        return cls(workspace.path(config["path"]))

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
