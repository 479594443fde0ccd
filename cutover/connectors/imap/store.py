"""IMAP mail store (kind `imap`): any IMAP4rev1 server (Dovecot, Cyrus, Courier...).

    mailstores:
      linux:
        kind: imap
        url: "imap://{user}@mail.verify.example.org:143"   # STARTTLS, required; imaps:// too
                                                           # (or host: H, port: 993, ssl: true)
        password: env/LINUX_IMAP_PASSWORD                  # or file/PATH; one password for all
        login: "{user}*cutover"                            # optional: a Dovecot master user
        tls: auto                                          # auto | starttls | implicit | none
        tls_verify: true                                   # false for a self-signed lab
        # oauth2_token: env/TOKEN                          # XOAUTH2 instead of LOGIN

Passwords never cross the network in clear. `tls: auto` (the default) logs in over implicit
TLS for imaps://, else after STARTTLS, and refuses (exit 2, before any LOGIN or AUTHENTICATE is
sent) a server that does not offer STARTTLS; only a loopback host (127.0.0.0/8, ::1,
localhost) may log in in plain text when it offers no STARTTLS. `tls: starttls` requires
STARTTLS on loopback too (so does the environment variable CUTOVER_TLS_LOOPBACK_EXEMPT=0, for
every store). `tls: none` logs in in plain text, even to a remote host: the store then says
so in every preview (`imap://USER@HOST:143?tls=none` asks the same on the command line).
Certificates are verified (system CAs, host name) unless `tls_verify: false`.

Every server's folder dialect is learned once per store, at the first login, and shared by
every session of the pool: the hierarchy separator and the personal namespace (NAMESPACE,
RFC 2342; `LIST "" ""` without it), so `Archive/2024` is `INBOX.Archive.2024` on a Courier or
Cyrus server with an `INBOX.` namespace (`cutover/connectors/imap/names.py`). A folder level
holding the server's separator (`Lists/ops.example.org` on a "." server) is stored with a
look-alike in its place (U+2024 ONE DOT LEADER), said in a `note:` of `mailbox sync` and in
the preview, and reads back as written, so re-runs and `verify` agree; a name that could not
be told apart afterwards is refused by name. Folders outside the personal namespace (other
users', shared) are not listed. Creating or deleting a folder checks with
LIST whether it is there, whatever response code the server sends.

Some servers rewrite what they store (Cyrus's default `munge8bit` replaces raw 8-bit header
bytes). The first appended messages of each kind (plain, 8-bit header, 8-bit body, bare line
endings, NUL) are read back and compared byte for byte; a difference removes the altered copy
and stops the copy with an error naming the cause (exit 2).

A message of 256 KB or more goes from the source's FETCH literal into the target's APPEND in
chunks (STREAMED_APPEND: LITERAL+ and MULTIAPPEND), so memory never holds it whole.

Fast paths are used when the server advertises them: CONDSTORE (HIGHESTMODSEQ in STATUS, so an
unchanged folder costs one round trip), UIDPLUS (APPENDUID), MULTIAPPEND (one APPEND command for
a batch), STATUS=SIZE. A dropped connection is re-opened with exponential back-off (tenacity);
idempotent commands are retried transparently, an interrupted APPEND raises TransferInterrupted
so the engine re-checks by digest what arrived.
"""

from __future__ import annotations

import hashlib
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from imapclient import IMAPClient
from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.response_parser import parse_fetch_response

from cutover.connectors.base import connector
from cutover.connectors.imap.names import Dialect, FolderNameRefused, dialect_from_namespace
from cutover.connectors.imap.tls import (
    TlsRequired,
    client_context,
    refusal,
    starttls_required,
    tls_failure,
    tls_mode,
)
from cutover.connectors.mailstore import (
    INBOX,
    SEPARATOR,
    FolderInfo,
    MessageRef,
    NewMessage,
    SessionBase,
    content_digest,
    guess_special_use,
    normalise_flags,
)
from cutover.errors import (
    AuthenticationFailed,
    CapabilityMissing,
    ConfigInvalid,
    ConnectionFailed,
    CutoverError,
    NotFound,
    UsageError,
)
from cutover.faults import crash_if_asked

#: How much message content one FETCH may bring back (a message bigger than this comes alone).
FETCH_BATCH_BYTES = 256 * 1024  # held in memory per worker (twice: one read ahead)
FETCH_BATCH_COUNT = 250
#: How much one MULTIAPPEND may carry.
APPEND_BATCH_BYTES = 1024 * 1024
APPEND_BATCH_COUNT = 100
#: ... when messages are streamed (LITERAL+): the server commits each APPEND command as one
#: transaction, and fewer, larger ones cost it markedly less CPU; memory holds one message.
STREAM_APPEND_BYTES = 32 * 1024 * 1024
STREAM_APPEND_COUNT = 2000
#: A message at least this big is streamed from the source's FETCH literal into the target's
#: APPEND literal in chunks (never held whole: 5-10 MB messages exist), when the target
#: streams its APPENDs (STREAMED_APPEND).
STREAM_MESSAGE_BYTES = 256 * 1024  # 1 MB: peak RSS +3.5 MB, no faster (measured)
STREAM_CHUNK_BYTES = 128 * 1024
#: pseudo-capability of a session whose append() takes StreamedBody contents
STREAMED_APPEND = "STREAMED-APPEND"
RECONNECT_ATTEMPTS = 6
TIMEOUT_S = 60.0
#: How many appended messages of each kind (see `message_kinds`) are read back and compared
#: byte for byte, per store: enough to catch a server that rewrites what it stores.
CHECK_PER_KIND = 10

_TRANSIENT = (OSError, imaplib.IMAP4.abort, socket.timeout, EOFError)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", re.I)
_THROTTLED = re.compile(r"\[(UNAVAILABLE|LIMIT|INUSE)\]|throttl", re.I)


class TransferInterrupted(ConnectionFailed):
    """The connection dropped during an APPEND: some of the batch may have arrived."""


class ServerRewritesMessages(CapabilityMissing):
    """The server stored other bytes than it was given: fix its configuration (Cyrus:
    `munge8bit: no`) before copying; what it altered was removed."""


class AppendRefused(CutoverError):
    """The server refused an APPEND (a quota, a size limit, a message it will not store)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # "implicit" (imaps), "starttls", "none" or "auto" (see the module doc)

    def label(self, user: str) -> str:
        """Also the identity of the account in the copy state: it never depends on `tls`, so
        changing how the connection is secured never makes a copy start again."""
        scheme = "imaps" if self.security == "implicit" else "imap"
        return f"{scheme}://{user}@{self.host}:{self.port}"

    def starttls_required(self) -> bool:
        """Must this (non-imaps) connection switch to TLS before logging in?"""
        return starttls_required(self.security, self.host)


def parse_endpoint(url: str, tls: str | None = None) -> tuple[Endpoint, str | None]:
    """`imap://USER@HOST:PORT[?tls=MODE]` or `imaps://...` -> (endpoint, user or None)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise UsageError(f"not an IMAP URL: {url} (imap://USER@HOST:PORT or imaps://...)")
    if parts.password:
        raise UsageError("put no password in the URL: use CUTOVER_*_PASSWORD or a password file")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise UsageError(f"bad port in {url}") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"tls"})
    if unknown:
        raise UsageError(f"{url}: unknown URL parameter {unknown[0]!r} (only tls=)")
    if tls is None and query.get("tls"):
        tls = query["tls"][-1]
    security = tls_mode(tls, parts.scheme == "imaps", url.split("?")[0])
    user = unquote(parts.username) if parts.username else None
    return Endpoint(parts.hostname, port, security), user


@connector("imap", role="mail-store")
class ImapMailStore:
    """An IMAP server; `open(user)` logs in as `user` (or the configured login template)."""

    def __init__(self, endpoint: Endpoint, password: Callable[[], str] | None,
                 login: str = "{user}", oauth2_token: Callable[[], str] | None = None,
                 tls_verify: bool = True, timeout: float = TIMEOUT_S):
        self.endpoint = endpoint
        self._password = password
        self._oauth2_token = oauth2_token
        self.login = login
        self.tls_verify = tls_verify
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        self._ssl_lock = threading.Lock()
        # Learned at the first login, shared by every session of the pool.
        self._dialect: Dialect | None = None
        self._dialect_lock = threading.Lock()
        self.stored_check = StoredCheck()
        #: cleared when a FETCH literal's size differed from the listed RFC822.SIZE: big
        #: messages are then read whole (a streamed APPEND announces the size first)
        self.streams_fetch = True

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ImapMailStore:
        url = str(config.get("url", "")).replace("{user}", "user")
        implicit = bool(config.get("ssl")) or config.get("tls") == "implicit"
        if not url and config.get("host"):  # host/port/ssl spelled out instead of a URL
            scheme = "imaps" if implicit else "imap"
            port = config.get("port", 993 if implicit else 143)
            url = f"{scheme}://user@{config['host']}:{port}"
        if not url:
            raise ConfigInvalid("an imap mailstore needs url: imap://{user}@HOST:PORT "
                                "(or host, port, ssl)")
        tls = config.get("tls")
        try:
            endpoint, _ = parse_endpoint(url, None if tls is None else str(tls))
        except UsageError as exc:
            raise ConfigInvalid(f"imap mailstore: {exc}") from None
        password_ref = config.get("password")
        token_ref = config.get("oauth2_token")
        if not password_ref and not token_ref:
            raise ConfigInvalid("an imap mailstore needs password: env/NAME or file/PATH")
        return cls(
            endpoint,
            password=(lambda: workspace.secret(password_ref)) if password_ref else None,
            login=str(config.get("login", "{user}")),
            oauth2_token=(lambda: workspace.secret(token_ref)) if token_ref else None,
            tls_verify=bool(config.get("tls_verify", True)),
        )

    def describe(self, user: str) -> str:
        return self.endpoint.label(user)

    @property
    def transport_warning(self) -> str | None:
        """What every preview shows when this store logs in in plain text."""
        if self.endpoint.security != "none":
            return None
        return (f"imap://{self.endpoint.host}:{self.endpoint.port} logs in WITHOUT TLS "
                f"(tls: none): passwords cross the network in clear")

    def open(self, user: str) -> ImapSession:
        """The one network seam: connect, TLS as configured or offered, log in."""
        return ImapSession(self, user)

    # --- used by ImapSession; kept here so the session never sees the password twice ------
    def _ssl_context(self) -> ssl.SSLContext:
        """One context per store, built on first use: loading the CA bundle costs tens of ms,
        which a plain connection that is never offered STARTTLS should not pay."""
        with self._ssl_lock:
            if self._ssl is None:
                self._ssl = client_context(self.tls_verify)
            return self._ssl

    def _connect(self, user: str) -> IMAPClient:
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        implicit_tls = self.endpoint.security == "implicit"
        client = None
        try:
            client = IMAPClient(self.endpoint.host, self.endpoint.port, ssl=implicit_tls,
                                ssl_context=self._ssl_context() if implicit_tls else None,
                                timeout=self.timeout)
            self._secure(client, where)
            login = self.login.replace("{user}", user)
            if self._oauth2_token is not None:
                client.oauth2_login(login, self._oauth2_token())
            else:
                client.login(login, self._password() if self._password else "")
        except TlsRequired:
            _abandon(client)
            raise
        except socket.gaierror:
            raise ConnectionFailed(f"cannot resolve IMAP host {self.endpoint.host}") from None
        except LoginError:
            raise AuthenticationFailed(f"IMAP login refused for {user} at {where}") from None
        except ssl.SSLError as exc:
            _abandon(client)
            raise ConnectionFailed(tls_failure(where, exc)) from None
        except ConnectionRefusedError:
            raise ConnectionFailed(f"IMAP connection to {where} refused") from None
        except _TRANSIENT as exc:
            raise _Transient(f"IMAP connection to {where} failed: {exc}") from None
        client.normalise_times = False
        # imapclient turns imaplib's debug level to 5, which formats every response, each
        # message literal included, with %r before the logger drops it: 3x the message in
        # memory and much CPU. Nothing of ours reads that log.
        client._imap.debug = 0
        return client

    def _secure(self, client: IMAPClient, where: str) -> None:
        """Switch to TLS before any credential is sent, or refuse when TLS is required and
        the server does not offer it."""
        if self.endpoint.security in ("implicit", "none"):
            return
        if client.has_capability("STARTTLS"):
            client.starttls(self._ssl_context())
        elif self.endpoint.starttls_required():
            raise refusal("IMAP", where)

    def dialect(self, client: IMAPClient) -> Dialect:
        """The server's separator and personal namespace, asked once per store."""
        with self._dialect_lock:
            if self._dialect is None:
                self._dialect = _ask_dialect(client)
            return self._dialect


def _abandon(client: IMAPClient | None) -> None:
    if client is not None:
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001 - the socket may already be gone
            pass


def _ask_dialect(client: IMAPClient) -> Dialect:
    others: tuple = ()
    if client.has_capability("NAMESPACE"):
        namespaces = client.namespace()
        others = tuple(namespaces.other or ()) + tuple(namespaces.shared or ())
        if namespaces.personal:
            return dialect_from_namespace(namespaces.personal, others)
    listing = client.list_folders("", "")
    delimiter = listing[0][1] if listing else SEPARATOR
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode()
    return dialect_from_namespace(None, others, delimiter or "")  # NIL: no hierarchy


class _Transient(ConnectionFailed):
    """A failure worth retrying (reset, timeout, throttling)."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (_Transient, *_TRANSIENT)):
        return not isinstance(exc, (ConnectionRefusedError, socket.gaierror))
    return isinstance(exc, IMAPClientError) and bool(_THROTTLED.search(str(exc)))


def _retried(call: Callable[[], Any]) -> Any:
    """call(), retried with exponential back-off while it fails transiently, RECONNECT_ATTEMPTS
    times in all. tenacity is imported only once something failed (~8 ms a run otherwise)."""
    try:
        return call()
    except Exception as exc:
        if not _is_transient(exc):
            raise
    import tenacity

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_transient),
        wait=tenacity.wait_exponential(multiplier=0.2, max=10),
        before=lambda state: time.sleep(0.2) if state.attempt_number == 1 else None,
        stop=tenacity.stop_after_attempt(RECONNECT_ATTEMPTS - 1),
        reraise=True,
    )(call)


def uid_set(uids: Iterable[int]) -> str:
    """Compact UID set: [1,2,3,7] -> "1:3,7"."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    start = prev = None
    for uid in ordered:
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def _expand_uid_set(text: bytes) -> list[int]:
    result: list[int] = []
    for part in text.decode().split(","):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        step = 1 if last >= first else -1
        result.extend(range(first, last + step, step))
    return result


class ImapSession(SessionBase):
    def __init__(self, store: ImapMailStore, user: str):
        self.store = store
        self.user = user
        self._client: IMAPClient | None = None
        self._selected: tuple[str, bool] | None = None
        self._sizes: dict[tuple[str, int], int] = {}
        self._reconnect()

    # --- connection ------------------------------------------------------------------------
    def _reconnect(self) -> None:
        self._drop()
        self._client = _retried(lambda: self.store._connect(self.user))
        self.dialect = self.store.dialect(self._client)
        caps = {c.decode().upper() for c in self._client.capabilities()}
        self.capabilities = frozenset(
            c for c in ("CONDSTORE", "QRESYNC", "UIDPLUS", "MULTIAPPEND", "SPECIAL-USE",
                        "STATUS=SIZE", "LITERAL+", "MOVE") if c in caps
        ) | {"KEYWORDS", "INTERNALDATE", "EXACT-CONTENT"}
        if {"LITERAL+", "MULTIAPPEND"} <= self.capabilities:
            self.capabilities |= {STREAMED_APPEND}
        if "CONDSTORE" in caps:
            self._client.enable("CONDSTORE") if "ENABLE" in caps else None
        self._selected = None

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.shutdown()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.logout()
            except Exception:  # noqa: BLE001 - closing a dead connection is fine
                pass
        self._client = None

    def _run(self, operation: Callable[[], Any]) -> Any:
        """Run an idempotent operation, reconnecting on a dropped connection."""
        def attempt() -> Any:
            try:
                if self._client is None:
                    self._reconnect()
                return operation()
            except _TRANSIENT:
                self._drop()
                raise
        return _retried(attempt)

    # --- names ------------------------------------------------------------------------------
    def _wire(self, name: str) -> str:
        return self.dialect.to_wire(name)

    def name_note(self, name: str) -> str | None:
        """How this server's users will see `name` when it cannot be stored as written (the
        engine reports it); raises FolderNameRefused for a name that cannot be stored."""
        shown = self.dialect.renamed(name)
        if shown is None:
            return None
        return (f"folder {name!r} is stored as {shown!r} in {self.store.describe(self.user)}: "
                f"{self.dialect.separator!r} separates folder levels there (it reads back as "
                f"{name!r}, so re-runs and verify agree)")

    def _listed(self, wire: str) -> set[str] | None:
        """The LIST attributes (lowercased) of exactly this server folder, or None when the
        server does not list it (a name with * or % matches others: compared exactly)."""
        for flags, _, name in self._client.list_folders("", wire):
            name = name if isinstance(name, str) else name.decode()
            if name == wire or (wire.upper() == INBOX and name.upper() == INBOX):
                attrs = {(f.decode() if isinstance(f, bytes) else str(f)).lower()
                         for f in flags}
                return None if "\\nonexistent" in attrs else attrs
        return None

    def _leave_selected(self) -> None:
        """Leave the selected folder before renaming or deleting one (Dovecot answers STATUS
        of a renamed folder still selected from its old name). Never CLOSE a folder opened
        read-write: that would expunge the messages flagged \\Deleted."""
        if self._selected is None:
            return
        if self._client.has_capability("UNSELECT"):
            self._client.unselect_folder()
        elif self._selected[1]:
            self._client.close_folder()
        else:
            self._client.select_folder(INBOX, readonly=True)
            self._selected = (INBOX, True)
            return
        self._selected = None

    def _select(self, folder: str, readonly: bool) -> dict:
        if self._selected == (folder, readonly):
            return {}
        try:
            info = self._client.select_folder(self._wire(folder), readonly=readonly)
        except IMAPClientError as exc:
            if _THROTTLED.search(str(exc)):
                raise
            raise NotFound(f"folder {folder!r} does not exist in {self.user}") from None
        self._selected = (folder, readonly)
        return info

    # --- reading ----------------------------------------------------------------------------
    def folders(self) -> list[FolderInfo]:
        return self._run(self._folders)

    def _folders(self) -> list[FolderInfo]:
        listing = self._client.list_folders()
        result = []
        for flags, _, name in listing:
            name = name if isinstance(name, str) else name.decode()
            path = self.dialect.to_neutral(name)
            if path is None:
                continue  # another user's, a shared folder, or the namespace prefix itself
            attrs = {f.decode() if isinstance(f, bytes) else str(f) for f in flags}
            lowered = {a.lower() for a in attrs}
            selectable = not ({"\\noselect", "\\nonexistent"} & lowered)
            if path == INBOX and name.upper() != INBOX:
                if selectable:  # "INBOX.INBOX" on an "INBOX." server
                    raise FolderNameRefused(f"server folder {name!r} of {self.user} reads as "
                                            f"the INBOX: rename it on the server")
                continue
            special = next((a for a in attrs if a.lower() in {
                "\\sent", "\\trash", "\\junk", "\\drafts", "\\archive", "\\all", "\\flagged"}),
                None)
            if special is None and SEPARATOR not in path:
                special = guess_special_use(path)
            result.append(self._status(path, special, selectable))
        result.sort(key=lambda f: (f.name != INBOX, f.name.split(SEPARATOR)))
        return result

    def _status(self, path: str, special: str | None, selectable: bool) -> FolderInfo:
        if not selectable:
            return FolderInfo(path, special, False)
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
        if "CONDSTORE" in self.capabilities:
            items.append("HIGHESTMODSEQ")
        if "STATUS=SIZE" in self.capabilities:
            items.append("SIZE")
        status = self._client.folder_status(self._wire(path), items)
        size = status.get(b"SIZE")
        if size is None:
            size = self._folder_size(path, status.get(b"MESSAGES", 0))
        return FolderInfo(
            name=path, special_use=special, selectable=True,
            messages=status.get(b"MESSAGES", 0), size_bytes=size,
            uidvalidity=status.get(b"UIDVALIDITY", 0), uidnext=status.get(b"UIDNEXT", 0),
            highestmodseq=status.get(b"HIGHESTMODSEQ", 0),
        )

    def _folder_size(self, path: str, count: int) -> int:
        if not count:
            return 0
        self._select(path, readonly=True)
        data = self._fetch_all(["RFC822.SIZE"])
        return sum(item.get(b"RFC822.SIZE", 0) for item in data.values())

    def _fetch_all(self, items: list[str], uids: str = "1:*") -> dict[int, dict]:
        """UID FETCH over a UID set string (imapclient's fetch() wants explicit ints)."""
        return parse_fetch_response(self._fetch_raw(items, uids), False, True)

    def _fetch_raw(self, items: list[str], uids: str = "1:*") -> list[Any]:
        """The untagged FETCH responses of a UID FETCH, as imaplib read them."""
        imap = self._client._imap
        tag = imap._command("UID", "FETCH", uids, "(" + " ".join(items) + ")")
        typ, data = imap._command_complete("FETCH", tag)
        self._client._checkok("fetch", typ, data)
        typ, data = imap._untagged_response(typ, data, "FETCH")
        return data

    def folder(self, name: str) -> FolderInfo:
        def status() -> FolderInfo:
            try:
                return self._status(name, None, True)
            except IMAPClientError as exc:
                if _THROTTLED.search(str(exc)):
                    raise
                raise NotFound(f"folder {name!r} does not exist in {self.user}") from None
        return self._run(status)

    def list_messages(self, folder: str) -> list[MessageRef]:
        def listing() -> list[MessageRef]:
            info = self._select(folder, readonly=True)
            if info and not info.get(b"EXISTS"):
                return []
            items = ["UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE"]
            if "CONDSTORE" in self.capabilities:
                items.append("MODSEQ")
            raw = self._fetch_raw(items)
            refs = listing_refs(raw)  # the usual shape, without a parser's per-token work
            if refs is not None:
                for ref in refs:
                    self._sizes[(folder, ref.uid)] = ref.size
                return refs
            data = parse_fetch_response(raw, False, True)
            refs = []
            for uid, item in data.items():
                self._sizes[(folder, uid)] = item[b"RFC822.SIZE"]
                modseq = item.get(b"MODSEQ", (0,))
                refs.append(MessageRef(
                    uid=uid, size=item[b"RFC822.SIZE"], flags=normalise_flags(item[b"FLAGS"]),
                    internaldate=_aware(item[b"INTERNALDATE"]),
                    modseq=modseq[0] if isinstance(modseq, tuple) else modseq))
            refs.sort(key=lambda r: r.uid)
            return refs
        return self._run(listing)

    def fetch(self, folder: str, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        for batch in self._fetch_batches(folder, uids):
            data = self._run(lambda b=batch: self._fetch_batch(folder, b))
            for uid in batch:
                content = data.pop(uid, None)
                if content is not None:
                    yield uid, content
            del data

    def fetch_streaming(self, folder: str, uids: Sequence[int]
                        ) -> Iterator[tuple[int, bytes | StreamedBody]]:
        """As fetch(), except that a message of STREAM_MESSAGE_BYTES or more (by its listed
        size) comes as a StreamedBody, read only when the target's APPEND sends it: the caller
        must let it finish (or abandon it) before asking for the next message, which reads
        from the same connection."""
        batch: list[int] = []
        for uid in uids:
            size = self._sizes.get((folder, uid), 0)
            if size < STREAM_MESSAGE_BYTES or not self.store.streams_fetch:
                batch.append(uid)
                continue
            if batch:
                yield from self.fetch(folder, batch)
                batch = []
            yield uid, StreamedBody(self, folder, uid, size)
        if batch:
            yield from self.fetch(folder, batch)

    def _fetch_batches(self, folder: str, uids: Sequence[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        size = 0
        for uid in uids:
            expected = self._sizes.get((folder, uid), 64 * 1024)
            if batch and (size + expected > FETCH_BATCH_BYTES or len(batch) >= FETCH_BATCH_COUNT):
                yield batch
                batch, size = [], 0
            batch.append(uid)
            size += expected
        if batch:
            yield batch

    def _fetch_batch(self, folder: str, batch: list[int]) -> dict[int, bytes]:
        self._select(folder, readonly=True)
        raw = self._fetch_raw(["BODY.PEEK[]"], uid_set(batch))
        bodies = fetched_bodies(raw)
        if bodies is not None:
            return bodies
        data = parse_fetch_response(raw, False, True)
        return {uid: item[b"BODY[]"] for uid, item in data.items() if b"BODY[]" in item}

    # --- writing ----------------------------------------------------------------------------
    def create_folder(self, name: str, special_use: str | None = None) -> None:
        """Idempotent whatever the server answers: LIST says whether the folder is there
        (servers differ in the response codes, if any, of a refused CREATE)."""
        wire = self._wire(name)

        def create() -> None:
            attrs = self._listed(wire)
            if attrs is not None and "\\noselect" not in attrs:
                return
            try:
                self._client.create_folder(wire)
            except IMAPClientError as exc:
                if _THROTTLED.search(str(exc)):
                    raise
                after = self._listed(wire)
                if after is None or "\\noselect" in after:
                    raise UsageError(f"cannot create folder {name!r} ({wire!r} on the server) "
                                     f"in {self.user}: {_text(exc)}") from None
        self._run(create)

    def delete_folder(self, name: str) -> None:
        wire = self._wire(name)

        def delete() -> None:
            if self._listed(wire) is None:
                return
            self._leave_selected()
            try:
                self._client.delete_folder(wire)
            except IMAPClientError as exc:
                if _THROTTLED.search(str(exc)):
                    raise
                if self._listed(wire) is not None:
                    raise UsageError(f"cannot delete folder {name!r} ({wire!r} on the server) "
                                     f"in {self.user}: {_text(exc)}") from None
        self._run(delete)

    def rename_folder(self, old: str, new: str) -> None:
        def rename() -> None:
            self._leave_selected()
            self._client.rename_folder(self._wire(old), self._wire(new))
        self._run(rename)

    def append(self, folder: str, items: Iterable[NewMessage]) -> list[int]:
        if self._client is None:
            self._run(lambda: None)
        if {"LITERAL+", "MULTIAPPEND"} <= self.capabilities:
            return self._append_streamed(folder, iter(items))
        uids: list[int] = []
        batch: list[NewMessage] = []
        size = 0
        for item in items:
            if batch and (size + len(item.content) > APPEND_BATCH_BYTES
                          or len(batch) >= APPEND_BATCH_COUNT):
                uids.extend(self._append_batch(folder, batch))
                batch, size = [], 0
            batch.append(item)
            size += len(item.content)
        if batch:
            uids.extend(self._append_batch(folder, batch))
        return uids

    def _append_batch(self, folder: str, batch: list[NewMessage]) -> list[int]:
        refusal = self.store.stored_check.failure
        if refusal:  # another session of this store found the server altering messages
            raise ServerRewritesMessages(refusal)
        uids = self._send_append(folder, batch)
        self._check_stored(folder, batch, uids)
        return uids

    def _send_append(self, folder: str, batch: list[NewMessage]) -> list[int]:
        if self._client is None:
            self._run(lambda: None)
        try:
            if "LITERAL+" in self.capabilities and (
                    len(batch) == 1 or "MULTIAPPEND" in self.capabilities):
                text = self._append_literal_plus(folder, batch)
            elif "MULTIAPPEND" in self.capabilities and len(batch) > 1:
                response = self._client.multiappend(self._wire(folder), [
                    {"msg": m.content, "flags": sorted(m.flags),
                     **({"date": m.internaldate} if m.internaldate else {})} for m in batch])
                text = response if isinstance(response, bytes) else b" ".join(
                    r for r in response if isinstance(r, bytes))
            else:
                text = b""
                for m in batch:
                    text = self._client.append(self._wire(folder), m.content, sorted(m.flags),
                                               m.internaldate)
        except _TRANSIENT as exc:
            self._drop()
            raise TransferInterrupted(f"connection lost during APPEND to {folder!r}: "
                                      f"{exc or type(exc).__name__}") from None
        except IMAPClientError as exc:
            if "TRYCREATE" in str(exc).upper():
                raise NotFound(f"folder {folder!r} does not exist in {self.user}") from None
            if _THROTTLED.search(str(exc)):
                raise
            raise AppendRefused(f"{self.store.describe(self.user)} refused to store "
                                f"{len(batch)} message(s) in {folder!r}: {_text(exc)}") from None
        match = _APPENDUID.search(text if isinstance(text, bytes) else str(text).encode())
        if match:
            found = _expand_uid_set(match.group(2))
            if len(found) == len(batch):
                return found
        return self._uids_after_append(folder, len(batch))

    def _append_streamed(self, folder: str, items: Iterator[NewMessage]) -> list[int]:
        """MULTIAPPEND with LITERAL+, each message sent as soon as `items` yields it (never
        held with the others): a command carries up to STREAM_APPEND_BYTES, one transaction
        on the server however large, while memory holds one message. The command stays open
        while the caller produces the next message; if that fails, the connection is dropped
        so the server discards the unfinished command (nothing of it is stored)."""
        uids: list[int] = []
        message = next(items, None)
        while message is not None:
            refusal = self.store.stored_check.failure
            if refusal:  # another session of this store found the server altering messages
                raise ServerRewritesMessages(refusal)
            imap = self._client._imap
            tag = imap._new_tag()
            count = size = 0
            # the few messages read back afterwards (the first of each kind): only these are
            # kept once sent
            to_check: list[tuple[int, bytes]] = []
            try:
                imap.send(tag + b" APPEND " + self._client._normalise_folder(self._wire(folder)))
                while message is not None and (not count or (
                        size + len(message.content) <= STREAM_APPEND_BYTES
                        and count < STREAM_APPEND_COUNT)):
                    content = message.content
                    if isinstance(content, StreamedBody):  # from the source as it is sent
                        content.open()
                        imap.send(_append_header(message))
                        for index, chunk in enumerate(content.chunks()):
                            imap.send(chunk)
                            if not index:  # test hook: kill -9 with half a message sent
                                crash_if_asked("mid-stream", counted=True, hard=True)
                        if self.store.stored_check.wanted_kinds(content.kinds):
                            to_check.append((count, content.digest))
                    else:
                        if self.store.stored_check.wanted(content):
                            to_check.append((count, content))
                        imap.send(_append_header(message))
                        imap.send(content)
                    count += 1
                    size += len(message.content)
                    message = next(items, None)
                imap.send(b"\r\n")
                typ, data = imap._command_complete("APPEND", tag)
            except _TRANSIENT as exc:
                self._drop()
                raise TransferInterrupted(f"connection lost during APPEND to {folder!r}: "
                                          f"{exc or type(exc).__name__}") from None
            except BaseException:
                self._drop()  # a half-sent command: only a closed connection discards it
                raise
            text = b" ".join(d for d in data if isinstance(d, bytes))
            if typ != "OK":
                if b"TRYCREATE" in text.upper():
                    raise NotFound(f"folder {folder!r} does not exist in {self.user}")
                raise IMAPClientError(f"APPEND failed: {text.decode(errors='replace')}")
            match = _APPENDUID.search(text)
            found = _expand_uid_set(match.group(2)) if match else []
            appended = found if len(found) == count else self._uids_after_append(folder, count)
            uids.extend(appended)
            self._compare_stored(folder, {appended[index]: content
                                          for index, content in to_check})
        return uids

    def _append_literal_plus(self, folder: str, batch: list[NewMessage]) -> bytes:
        """One (MULTI)APPEND with LITERAL+: each message is sent as its own buffer, never
        concatenated with anything, so a 10 MB message costs 10 MB once."""
        imap = self._client._imap
        tag = imap._new_tag()
        imap.send(tag + b" APPEND " + self._client._normalise_folder(self._wire(folder)))
        for message in batch:
            flags = b" ".join(f.encode() for f in sorted(message.flags))
            date = (b' "' + datetime_to_INTERNALDATE(message.internaldate).encode() + b'"'
                    if message.internaldate else b"")
            imap.send(b" (" + flags + b")" + date + b" {%d+}\r\n" % len(message.content))
            imap.send(message.content)
        imap.send(b"\r\n")
        typ, data = imap._command_complete("APPEND", tag)
        text = b" ".join(d for d in data if isinstance(d, bytes))
        if typ != "OK":
            raise IMAPClientError(f"APPEND failed: {text.decode(errors='replace')}")
        return text

    def _check_stored(self, folder: str, batch: list[NewMessage], uids: list[int]) -> None:
        """Read back the first appended messages of each kind and compare them byte for
        byte; an altered copy is removed and the copy stops, naming the cause."""
        chosen = {uid: m.content for uid, m in zip(uids, batch, strict=True)
                  if self.store.stored_check.wanted(m.content)}
        self._compare_stored(folder, chosen)

    def _compare_stored(self, folder: str, chosen: dict[int, bytes | str]) -> None:
        """Fetch `chosen` (uid -> what was sent, or its digest when it was streamed) back and
        stop the copy if any differs."""
        if not chosen:
            return
        stored = dict(self.fetch(folder, sorted(chosen)))
        altered = {uid: sent for uid, sent in chosen.items() if uid in stored and
                   content_digest(stored[uid]) != (sent if isinstance(sent, str)
                                                   else content_digest(sent))}
        if not altered:
            return
        uid, sent = next(iter(altered.items()))
        why = (f"{len(stored[uid])} bytes stored, other than the ones sent"
               if isinstance(sent, str) else explain_rewrite(sent, stored[uid]))
        cause = (f"{self.store.describe(self.user)} stored {len(altered)} message(s) in "
                 f"{folder!r} differently from what it was sent: {why}")
        self.store.stored_check.fail(cause)
        self.delete(folder, sorted(altered))
        raise ServerRewritesMessages(f"{cause}; the altered copies were removed")

    def _uids_after_append(self, folder: str, count: int) -> list[int]:
        """Without UIDPLUS: the highest `count` UIDs of the folder are ours (best effort)."""
        def highest() -> list[int]:
            self._selected = None
            self._select(folder, readonly=True)
            return sorted(self._fetch_all(["UID"]))[-count:]
        return self._run(highest)

    def set_flags(self, folder: str, uids: Sequence[int], flags: frozenset[str]) -> None:
        if not uids:
            return

        def store() -> None:
            self._select(folder, readonly=False)
            for chunk in _chunks(list(uids), 500):
                self._client.set_flags(uid_set(chunk), sorted(flags), silent=True)
        self._run(store)

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        if not uids:
            return

        def expunge() -> None:
            self._select(folder, readonly=False)
            for chunk in _chunks(list(uids), 500):
                self._client.add_flags(uid_set(chunk), ["\\Deleted"], silent=True)
                if "UIDPLUS" in self.capabilities:
                    self._client.uid_expunge(uid_set(chunk))
                else:
                    self._client.expunge()
        self._run(expunge)


class StoredCheck:
    """Which appended messages a store reads back (the first CHECK_PER_KIND of each kind),
    and the failure once one came back altered. Shared by the sessions of one store."""

    def __init__(self, per_kind: int = CHECK_PER_KIND):
        self.per_kind = per_kind
        self.checked: dict[str, int] = {}
        self.failure: str | None = None
        self._lock = threading.Lock()

    def wanted(self, content: bytes) -> bool:
        """Whether to read `content` back once appended: it is of a kind not yet checked
        CHECK_PER_KIND times. Only the kinds still open are looked for (each test reads the
        whole message; once the common kinds are done, most messages need only two)."""
        with self._lock:
            open_kinds = {kind for kind in KINDS
                          if self.checked.get(kind, 0) < self.per_kind}
        if not open_kinds:
            return False
        return self.wanted_kinds(message_kinds(content, open_kinds))

    def wanted_kinds(self, kinds: set[str]) -> bool:
        """wanted() of a message whose kinds are known (a streamed one)."""
        with self._lock:
            kinds = {kind for kind in kinds if self.checked.get(kind, 0) < self.per_kind}
            for kind in kinds:
                self.checked[kind] = self.checked.get(kind, 0) + 1
            return bool(kinds)

    def fail(self, cause: str) -> None:
        with self._lock:
            self.failure = self.failure or cause


KINDS = ("any", "8-bit header", "8-bit body", "bare line ending", "NUL")


def message_kinds(content: bytes, among: Iterable[str] = KINDS) -> set[str]:
    """What a server might rewrite in this message, of the kinds `among` (the others are not
    looked for). Each test runs at C speed over the message, without copying it."""
    among = set(among)
    kinds = {"any"} & among
    end = content.find(b"\r\n\r\n")
    end = content.find(b"\n\n") if end < 0 else end
    header_ascii = content.isascii() if end < 0 else content[:end].isascii()
    if "8-bit header" in among and not header_ascii:
        kinds.add("8-bit header")
    if "8-bit body" in among and end >= 0 and not content.isascii() and (
            header_ascii or not content[end:].isascii()):  # the copy: 8-bit headers are rare
        kinds.add("8-bit body")
    if "bare line ending" in among:
        crlf = content.count(b"\r\n")
        if content.count(b"\n") != crlf or content.count(b"\r") != crlf:
            kinds.add("bare line ending")
    if "NUL" in among and b"\0" in content:
        kinds.add("NUL")
    return kinds


class SourceChanged(ConnectionFailed):
    """A streamed message did not come as listed (expunged meanwhile, another size): the
    target's unfinished APPEND is dropped (nothing of it is stored) and the folder re-run."""


_LITERAL = re.compile(rb"BODY\[\] \{(\d+)\}$")


class StreamedBody:
    """A source message read from its FETCH literal in chunks while the target's APPEND sends
    them, so a 10 MB message is never held whole. Computes, as the chunks pass, what the
    engine and the read-back check need of the whole: its digest and its kinds."""

    def __init__(self, session: ImapSession, folder: str, uid: int, size: int):
        self.session, self.folder, self.uid, self.size = session, folder, uid, size
        self.finished = threading.Event()  # the source connection is free again
        self.digest: str | None = None
        self.kinds: set[str] = set()
        self._tag: bytes | None = None

    def __len__(self) -> int:
        return self.size

    def open(self) -> None:
        """Send the FETCH and read up to its literal: raises (before any of the message is
        sent on) when the source no longer has it or has it with another size."""
        session = self.session
        session._run(lambda: session._select(self.folder, readonly=True))
        imap = session._client._imap
        self._tag = imap._new_tag()
        try:
            imap.send(self._tag + b" UID FETCH %d (BODY.PEEK[])\r\n" % self.uid)
            while True:
                line = imap._get_line()
                if line.startswith(self._tag + b" "):
                    raise SourceChanged(f"message UID {self.uid} of {self.folder!r} is no "
                                        f"longer in the source")
                found = _LITERAL.search(line)
                if found:
                    break
                if line.endswith(b"}") and b"{" in line:  # another literal: not ours
                    imap.read(int(line[line.rindex(b"{") + 1:-1]))
        except BaseException:
            self.abandon()
            raise
        if int(found.group(1)) != self.size:
            session.store.streams_fetch = False  # read whole from now on
            self.abandon()
            raise SourceChanged(f"message UID {self.uid} of {self.folder!r} has another size "
                                f"than listed")

    def chunks(self) -> Iterator[bytes]:
        """The message, chunk by chunk (open() first); then the FETCH is read to its end."""
        imap = self.session._client._imap
        digest = hashlib.sha256()
        counter = _KindCounter()
        left = self.size
        try:
            while left:
                chunk = imap.read(min(STREAM_CHUNK_BYTES, left))
                if not chunk:
                    raise imaplib.IMAP4.abort("connection closed inside a literal")
                left -= len(chunk)
                digest.update(chunk)
                counter.add(chunk)
                yield chunk
            while not imap._get_line().startswith(self._tag + b" "):
                pass  # the rest of the FETCH response (")"), then its tagged OK
        except BaseException:
            self.abandon()
            raise
        self.digest, self.kinds = digest.hexdigest(), counter.kinds()
        self.finished.set()

    def read_all(self) -> bytes:
        """The whole message (when it must be compared before it is sent)."""
        self.open()
        return b"".join(self.chunks())

    def abandon(self) -> None:
        """Never read (or not to the end): the connection is mid-response, so it is dropped
        (the session reconnects when next used)."""
        if not self.finished.is_set():
            self.session._drop()
            self.finished.set()


class _KindCounter:
    """message_kinds() of a message seen chunk by chunk."""

    def __init__(self):
        self.header: bytes | None = None  # the first chunk's header part, once found
        self.body_ascii = True
        self.nul = False
        self.lf = self.cr = self.crlf = 0
        self.last = b""

    def add(self, chunk: bytes) -> None:
        if self.header is None:
            end = chunk.find(b"\r\n\r\n")
            end = chunk.find(b"\n\n") if end < 0 else end
            end = len(chunk) if end < 0 else end  # a header longer than a chunk: the chunk
            self.header = chunk[:end]
            self.body_ascii = chunk.isascii() or (
                not self.header.isascii() and chunk[end:].isascii())
        elif self.body_ascii:
            self.body_ascii = chunk.isascii()
        self.nul = self.nul or b"\0" in chunk
        self.lf += chunk.count(b"\n")
        self.cr += chunk.count(b"\r")
        self.crlf += chunk.count(b"\r\n") + (self.last == b"\r" and chunk[:1] == b"\n")
        self.last = chunk[-1:]

    def kinds(self) -> set[str]:
        kinds = {"any"}
        if self.header is not None and not self.header.isascii():
            kinds.add("8-bit header")
        if not self.body_ascii:
            kinds.add("8-bit body")
        if self.lf != self.crlf or self.cr != self.crlf:
            kinds.add("bare line ending")
        if self.nul:
            kinds.add("NUL")
        return kinds


def explain_rewrite(sent: bytes, stored: bytes) -> str:
    """Why a stored message differs from what was sent, in the operator's terms."""
    end = sent.find(b"\r\n\r\n")
    header_end = len(sent) if end < 0 else end
    if len(sent) == len(stored):
        changed = [i for i, (a, b) in enumerate(zip(sent, stored, strict=True)) if a != b]
        if changed and all(i < header_end and sent[i] > 127 for i in changed):
            return ("it replaced raw 8-bit bytes in the header (Cyrus IMAP's munge8bit: set "
                    "`munge8bit: no` in imapd.conf)")
    if stored == sent.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n"):
        return "it changed bare line endings to CRLF"
    first = next((i for i, (a, b) in enumerate(zip(sent, stored, strict=False)) if a != b),
                 min(len(sent), len(stored)))
    return f"{len(stored)} bytes stored for {len(sent)} sent, first difference at byte {first}"


def _text(exc: BaseException) -> str:
    """A server's answer as one line (imapclient quotes bytes)."""
    text = str(exc)
    match = re.search(r"\[b'(.*)'\]$|b'(.*)'", text)
    return (match.group(1) or match.group(2)) if match else text


# --- FETCH responses in their usual shape, read without a general parser ----------------------
# A copy lists every message of both accounts and reads every body: imapclient's parser works
# token by token (~80 µs a message). These read the shape servers send for our own requests;
# anything else (a literal where an atom was expected, an item missing) returns None and the
# caller falls back to the general parser.
_UID = re.compile(rb"[( ]UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
_MONTHS = {m.encode(): n for n, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_flag_sets: dict[bytes, frozenset[str]] = {}
_zones: dict[bytes, timezone] = {}


def listing_refs(data: list[Any]) -> list[MessageRef] | None:
    """MessageRefs (UID order) from `UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE
    [MODSEQ])` responses, or None when one is not in the usual one-line shape."""
    refs = []
    for line in data:
        if line is None:  # imaplib's "no FETCH response at all"
            continue
        if not isinstance(line, bytes):
            return None
        uid, size, flags, date = (_UID.search(line), _SIZE.search(line), _FLAGS.search(line),
                                  _DATE.search(line))
        if not (uid and size and flags and date):
            return None
        moment = internaldate(date.group(1))
        if moment is None:
            return None
        modseq = _MODSEQ.search(line)
        refs.append(MessageRef(int(uid.group(1)), int(size.group(1)),
                               _flag_set(flags.group(1)), moment,
                               int(modseq.group(1)) if modseq else 0))
    refs.sort(key=lambda r: r.uid)
    return refs


def fetched_bodies(data: list[Any]) -> dict[int, bytes] | None:
    """{uid: content} from `UID FETCH ... (BODY.PEEK[])` responses (`N FETCH (UID u BODY[]
    {size}` + the literal, then `)`), or None when one is shaped otherwise."""
    bodies = {}
    for item in data:
        if item is None:  # imaplib's "no FETCH response at all" (UIDs expunged meanwhile)
            continue
        if isinstance(item, tuple):
            head, content = item
            uid = _UID.search(head)
            if uid is None or not head.endswith(b"}") or b"BODY[]" not in head:
                return None
            bodies[int(uid.group(1))] = content
        elif item != b")":
            if b"BODY[" in item:  # a body sent another way (quoted, NIL)
                return None
            # else an unsolicited update of another item (FLAGS): nothing to read here
    return bodies


def internaldate(text: bytes) -> datetime | None:
    """`" 2-Jan-2020 03:04:05 -0700"` -> an aware datetime (None when it is not one)."""
    try:
        day, month, rest = text.strip().split(b"-", 2)
        year, clock, zone = rest.split(b" ")
        hours, minutes, seconds = clock.split(b":")
        return datetime(int(year), _MONTHS[month], int(day), int(hours), int(minutes),
                        int(seconds), tzinfo=_zone(zone))
    except (ValueError, KeyError):
        return None


def _zone(text: bytes) -> timezone:
    found = _zones.get(text)
    if found is None:
        if len(text) != 5 or text[:1] not in b"+-" or not text[1:].isdigit():
            raise ValueError(text)
        offset = timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
        found = _zones[text] = timezone(-offset if text[:1] == b"-" else offset)
    return found


def _flag_set(text: bytes) -> frozenset[str]:
    found = _flag_sets.get(text)
    if found is None:
        found = _flag_sets[text] = normalise_flags(text.split())
    return found


def _append_header(message: NewMessage) -> bytes:
    """` (FLAGS) "INTERNALDATE" {SIZE+}` CRLF: what precedes a message in a LITERAL+ APPEND."""
    flags = b" ".join(f.encode() for f in sorted(message.flags))
    date = (b' "' + datetime_to_INTERNALDATE(message.internaldate).encode() + b'"'
            if message.internaldate else b"")
    return b" (" + flags + b")" + date + b" {%d+}\r\n" % len(message.content)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
