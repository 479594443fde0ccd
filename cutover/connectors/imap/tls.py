"""When a connector may send a password: the TLS rule shared by IMAP and ManageSieve.

    tls: auto       implicit TLS for imaps://, else STARTTLS; a server that does not offer
                    STARTTLS is refused before any credential is sent, unless it is on loopback
    tls: starttls   STARTTLS required, on loopback too
    tls: implicit   TLS from the first byte (imaps://, ManageSieve over TLS)
    tls: none       plain text, even to a remote host: only when written out, and every label
                    and preview of the connector says so

Loopback is a literal address in 127.0.0.0/8 or ::1, or the name `localhost`; other names are
never resolved to decide. CUTOVER_TLS_LOOPBACK_EXEMPT=0 in the environment takes the exemption
away (loopback is then treated as any remote host: a lab that wants to prove the rule holds).
Certificates are verified against the system CAs and the host name unless `tls_verify: false`.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from typing import Any

from cutover.errors import ConnectionFailed, UsageError

TLS_MODES = ("auto", "starttls", "implicit", "none")
LOOPBACK_EXEMPT_ENV = "CUTOVER_TLS_LOOPBACK_EXEMPT"


class TlsRequired(ConnectionFailed):
    """The server offers no TLS, and a password is never sent in clear (to a remote host)."""


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_mode(value: Any, implicit: bool, where: str) -> str:
    """A `tls:` setting checked against the scheme (imaps:// is always implicit TLS)."""
    mode = "auto" if value in (None, "") else str(value).lower()
    if mode not in TLS_MODES:
        raise UsageError(f"{where}: tls must be one of {', '.join(TLS_MODES)}, not {value!r}")
    if implicit:
        if mode in ("starttls", "none"):
            raise UsageError(f"{where}: implicit TLS (imaps://) contradicts tls: {mode}")
        return "implicit"
    return mode


def starttls_required(mode: str, host: str) -> bool:
    """Must a connection in `mode` to `host` switch to TLS before it logs in?"""
    if mode == "starttls":
        return True
    exempt = is_loopback(host) and os.environ.get(LOOPBACK_EXEMPT_ENV, "1") != "0"
    return mode == "auto" and not exempt


def refusal(protocol: str, where: str) -> TlsRequired:
    return TlsRequired(f"{protocol} server {where} does not offer STARTTLS: no password is sent "
                       f"in clear (use a server with TLS; tls: none allows a plain login)")


def client_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def tls_failure(where: str, exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the TLS certificate of {where} is not trusted: {exc.verify_message} "
                f"(no password was sent; tls_verify: false accepts it in a lab)")
    return f"TLS with {where} failed: {exc.reason} (no password was sent)"
