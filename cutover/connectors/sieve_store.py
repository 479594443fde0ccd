"""The interface both Sieve script stores share: ManageSieve (managesieve.py) on a real server,
and a directory of scripts per account (sievedir.py), its file-backed twin.

    sieve:
      linux: {kind: sievedir, path: sieve/}
      # linux: {kind: managesieve, host: 127.0.0.1, port: 4190, user: "{address}",
      #         password: env/SIEVE_PASSWORD}

`account` is the mail address of the account whose scripts are meant; a connector maps it to
its own notion (a directory, a login name).
"""

from __future__ import annotations

import re
from typing import Protocol

from cutover.errors import UsageError

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
