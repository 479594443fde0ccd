"""Sieve scripts on a real server over ManageSieve (RFC 5804), with sievelib.

    sieve:
      linux:
        kind: managesieve
        host: 127.0.0.1
        port: 4190
        user: "{address}"              # login template over the account: address, local, domain
        password: env/SIEVE_PASSWORD   # a reference (env/NAME or file/PATH), never the secret
        starttls: false                # loopback labs only; use true elsewhere

Each call opens one session for the account in `_session` (the only method that connects),
does its work and logs out.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sievelib.managesieve import Client
from sievelib.managesieve import Error as ManageSieveError

from cutover.connectors.base import connector
from cutover.connectors.sieve_store import SieveScriptRejected, account_fields, check_name
from cutover.errors import AuthenticationFailed, ConfigInvalid, ConnectionFailed, NotFound


@connector("managesieve", role="sieve-store")
class ManageSieveStore:
    def __init__(self, host: str, port: int, user: str, password: str, starttls: bool = False):
        self.host = host
        self.port = port
        self.user_template = user
        self._password = password
        self.starttls = starttls

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ManageSieveStore:
        missing = [key for key in ("host", "password") if not config.get(key)]
        if missing:
            raise ConfigInvalid(f"sieve connector of kind managesieve needs {', '.join(missing)}")
        try:
            port = int(config.get("port", 4190))
        except (TypeError, ValueError):
            raise ConfigInvalid("managesieve port must be a number") from None
        return cls(str(config["host"]), port, str(config.get("user", "{address}")),
                   workspace.secret(config["password"]), bool(config.get("starttls", False)))

    def login_of(self, account: str) -> str:
        try:
            return self.user_template.format_map(account_fields(account))
        except (KeyError, ValueError) as exc:
            raise ConfigInvalid(f"managesieve user template {self.user_template!r}: {exc}") \
                from None

    @contextmanager
    def _session(self, account: str) -> Iterator[Client]:
        client = Client(self.host, self.port)
        login = self.login_of(account)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # plain text on loopback is the operator's call
                connected = client.connect(login, self._password, starttls=self.starttls,
                                           authmech="PLAIN")
        except (TimeoutError, ManageSieveError, OSError) as exc:
            raise ConnectionFailed(f"ManageSieve {self.host}:{self.port}: {exc}") from None
        if not connected:
            raise AuthenticationFailed(f"ManageSieve {self.host}:{self.port} refused the "
                                       f"login for {login}")
        try:
            yield client
        finally:
            try:
                client.logout()
            except (ManageSieveError, OSError):
                pass

    def scripts(self, account: str) -> list[str]:
        with self._session(account) as client:
            listing = client.listscripts()
        if listing is None:
            raise ConnectionFailed(f"ManageSieve LISTSCRIPTS failed for {account}")
        active, others = listing
        return sorted(others + ([active] if active else []))

    def get(self, account: str, name: str) -> str | None:
        check_name(name)
        with self._session(account) as client:
            content = client.getscript(name)
        # sievelib joins the lines with "\n" and drops the final line break
        return None if content is None else content + "\n"

    def put(self, account: str, name: str, content: str) -> None:
        check_name(name)
        with self._session(account) as client:
            if not client.putscript(name, content):
                detail = client.errmsg.decode(errors="replace") if client.errmsg else ""
                raise SieveScriptRejected(f"the server refused script {name!r} for {account}: "
                                          f"{detail}")

    def activate(self, account: str, name: str | None) -> None:
        with self._session(account) as client:
            if not client.setactive(check_name(name) if name else ""):
                raise NotFound(f"no Sieve script {name!r} for {account}")

    def active(self, account: str) -> str | None:
        with self._session(account) as client:
            listing = client.listscripts()
        if listing is None:
            raise ConnectionFailed(f"ManageSieve LISTSCRIPTS failed for {account}")
        return listing[0] or None

    def delete(self, account: str, name: str) -> None:
        with self._session(account) as client:
            active, others = client.listscripts() or (None, [])
            if name == active:
                client.setactive("")
            if name in others or name == active:
                client.deletescript(check_name(name))
