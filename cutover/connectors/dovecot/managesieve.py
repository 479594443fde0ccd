"""Sieve scripts on a real server over ManageSieve (RFC 5804), with sievelib.

    sieve:
      linux:
        kind: managesieve
        host: 127.0.0.1
        port: 4190
        user: "{address}"              # login template over the account: address, local, domain
        password: env/SIEVE_PASSWORD   # a reference (env/NAME or file/PATH), never the secret
        tls: auto                      # auto | starttls | implicit | none
        tls_verify: true               # false for a self-signed lab
        # optional: Dovecot's sieve_pipe_bin_dir, sieve_filter_bin_dir and
        # sieve_execute_bin_dir as this host writes them (local, or mounted), for the
        # programs converted Procmail rules run (rules.replace installs them there)
        pipe_bin_dir: /srv/dovecot/sieve-pipe
        filter_bin_dir: /srv/dovecot/sieve-filter
        execute_bin_dir: /srv/dovecot/sieve-execute

The password never crosses the network in clear: `tls: auto` (the default) logs in after
STARTTLS and refuses (exit 2, before AUTHENTICATE is sent) a server that does not offer it,
except on loopback; `tls: starttls` requires it on loopback too, `tls: none` allows a plain
login anywhere and every preview says so. Certificates are verified unless `tls_verify: false`
(the rule is `cutover/connectors/imap/tls.py`, shared with IMAP). The older `starttls: true`
means `tls: starttls`; `starttls: false` no longer allows a plain login off loopback.

ManageSieve cannot upload programs: the programs a converted script runs through
Pigeonhole's extprograms are written into the `*_bin_dir` directories (see
`cutover.connectors.sieve_store.ProgramDirectory`); a script that needs one while its
directory is not configured is refused at preview. `extensions` is the server's SIEVE
capability: what Dovecot's `sieve_extensions` enables for personal scripts (extensions only in
`sieve_global_extensions` are not announced and not usable by them).

Each call opens one session for the account in `_session` (the only method that connects),
does its work and logs out.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sievelib.managesieve import Client
from sievelib.managesieve import Error as ManageSieveError

from cutover.connectors.base import connector
from cutover.connectors.imap.tls import (
    client_context,
    refusal,
    starttls_required,
    tls_failure,
    tls_mode,
)
from cutover.connectors.sieve_store import (
    SieveScriptRejected,
    account_fields,
    check_name,
    program_dirs,
)
from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    UsageError,
)


class _SecuredClient(Client):
    """sievelib's client with our TLS rule: its STARTTLS step (a private method, overridden
    by its mangled name) refuses before authenticating when TLS is required and not offered,
    goes on in plain text only where the rule allows it, and wraps with our SSL context."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, required: bool):
        super().__init__(host, port)
        self.context = context
        self.required = required

    def _Client__starttls(self, **kwargs: Any) -> bool:
        if not self.has_tls_support():
            if self.required:
                raise refusal("ManageSieve", f"{self.srvaddr}:{self.srvport}")
            return True  # loopback, or tls: none
        return Client._Client__starttls(self, **kwargs)

    def _Client__enable_ssl(self, keyfile: str | None = None,
                            certfile: str | None = None) -> None:
        try:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.srvhostname)
        except ssl.SSLError as exc:
            raise ConnectionFailed(tls_failure(f"{self.srvaddr}:{self.srvport}", exc)) from None


@connector("managesieve", role="sieve-store")
class ManageSieveStore:
    def __init__(self, host: str, port: int, user: str, password: str, tls: str = "auto",
                 tls_verify: bool = True, program_dirs: dict[str, Path] | None = None):
        self.host = host
        self.port = port
        self.user_template = user
        self._password = password
        self.tls = tls
        self.tls_verify = tls_verify
        self.program_dirs = dict(program_dirs or {})

    @property
    def transport_warning(self) -> str | None:
        """What every preview shows when this store logs in in plain text."""
        if self.tls != "none":
            return None
        return (f"ManageSieve {self.host}:{self.port} logs in WITHOUT TLS (tls: none): "
                f"passwords cross the network in clear")

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ManageSieveStore:
        missing = [key for key in ("host", "password") if not config.get(key)]
        if missing:
            raise ConfigInvalid(f"sieve connector of kind managesieve needs {', '.join(missing)}")
        try:
            port = int(config.get("port", 4190))
        except (TypeError, ValueError):
            raise ConfigInvalid("managesieve port must be a number") from None
        tls = config.get("tls")
        if tls is None and config.get("starttls") is True:
            tls = "starttls"
        try:
            mode = tls_mode(tls, False, "managesieve")
        except UsageError as exc:
            raise ConfigInvalid(str(exc)) from None
        return cls(str(config["host"]), port, str(config.get("user", "{address}")),
                   workspace.secret(config["password"]), mode,
                   bool(config.get("tls_verify", True)), program_dirs(config, workspace))

    def login_of(self, account: str) -> str:
        try:
            return self.user_template.format_map(account_fields(account))
        except (KeyError, ValueError) as exc:
            raise ConfigInvalid(f"managesieve user template {self.user_template!r}: {exc}") \
                from None

    @contextmanager
    def _session(self, account: str) -> Iterator[Client]:
        client = _SecuredClient(self.host, self.port, client_context(self.tls_verify),
                                starttls_required(self.tls, self.host))
        login = self.login_of(account)
        try:
            with warnings.catch_warnings():
                # plain text happens only where tls.py allows it (loopback, tls: none)
                warnings.simplefilter("ignore")
                connected = client.connect(login, self._password,
                                           starttls=self.tls in ("auto", "starttls"),
                                           ssl=self.tls == "implicit", authmech="PLAIN")
        except ConnectionFailed:  # TlsRequired, an untrusted certificate
            _close(client)
            raise
        except (TimeoutError, ManageSieveError, OSError) as exc:
            _close(client)
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

    def extensions(self, account: str) -> frozenset[str]:
        """The SIEVE capability the server announces to this account's login."""
        with self._session(account) as client:
            try:
                announced = client.get_sieve_capabilities()
            except KeyError:  # no SIEVE capability at all
                announced = []
        return frozenset(announced or [])

    def program_directory(self, kind: str) -> Path | None:
        return self.program_dirs.get(kind)

    def delete(self, account: str, name: str) -> None:
        with self._session(account) as client:
            active, others = client.listscripts() or (None, [])
            if name == active:
                client.setactive("")
            if name in others or name == active:
                client.deletescript(check_name(name))


def _close(client: Client) -> None:
    if client.sock is not None:
        try:
            client.sock.close()
        except OSError:
            pass
