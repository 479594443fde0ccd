"""Mailbox URLs of the command line -> (store, user).

    imap://USER@HOST:PORT    STARTTLS, required unless the host is loopback
                             (?tls=starttls requires it there too; ?tls=none allows a plain
                             login anywhere: cutover/connectors/imap/tls.py)
    imaps://USER@HOST:PORT   implicit TLS
    maildir:///abs/path      one account's Maildir (Dovecot LAYOUT=fs); maildir:rel/path too
    ews://USER@HOST          Exchange Web Services (source only), https://HOST/EWS/Exchange.asmx

Secrets never come from the URL: the caller passes a function that returns the password
(from CUTOVER_SOURCE_PASSWORD / CUTOVER_TARGET_PASSWORD or a password file) or an OAuth2 token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cutover.connectors.mailstore import MailStore
from cutover.errors import UsageError


def store_for_url(url: str, password: Callable[[], str] | None,
                  token: Callable[[], str] | None = None, base: Path | None = None,
                  tls_verify: bool = True) -> tuple[MailStore, str]:
    scheme = url.partition(":")[0].lower()
    if scheme in ("imap", "imaps"):
        from cutover.connectors.imap.store import ImapMailStore, parse_endpoint

        endpoint, user = parse_endpoint(url)
        if not user:
            raise UsageError(f"name the account in the URL: {scheme}://USER@HOST:PORT")
        if password is None and token is None:
            raise UsageError("no password")
        return ImapMailStore(endpoint, password, oauth2_token=token,
                             tls_verify=tls_verify), user
    if scheme == "maildir":
        from cutover.connectors.dovecot.maildir import MaildirMailStore

        rest = url[len("maildir:"):]
        path = Path(rest[2:] if rest.startswith("//") else rest)
        if not path.is_absolute() and base is not None:
            path = base / path
        path = Path(str(path).rstrip("/") or "/")
        if not path.name:
            raise UsageError(f"not a Maildir URL: {url}")
        return MaildirMailStore(path.parent), path.name
    if scheme == "ews":
        from cutover.connectors.exchange.ews_store import EwsMailStore

        parts = urlsplit(url)
        if not parts.hostname or not parts.username:
            raise UsageError(f"not an EWS URL: {url} (ews://USER@HOST)")
        if parts.password:
            raise UsageError("put no password in the URL: use CUTOVER_*_PASSWORD")
        if password is None and token is None:
            raise UsageError("no password")
        # On the command line the mailbox logs in as itself (no impersonation account).
        return EwsMailStore(parts.hostname, password, token=token, access="delegate",
                            tls_verify=tls_verify), unquote(parts.username)
    raise UsageError(f"unsupported mailbox URL {url!r}: use imap://, imaps://, maildir:, ews://")
