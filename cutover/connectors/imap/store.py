"""IMAP mail store (kind `imap`): any IMAP4rev1 server, Dovecot first.

    mailstores:
      linux:
        kind: imap
        url: "imap://{user}@mail.verify.example.org:143"   # STARTTLS when offered; imaps:// too
                                                           # (or host: H, port: 993, ssl: true)
        password: env/LINUX_IMAP_PASSWORD                  # or file/PATH; one password for all
        login: "{user}*cutover"                            # optional: a Dovecot master user
        tls_verify: true                                   # false for a self-signed lab
        # oauth2_token: env/TOKEN                          # XOAUTH2 instead of LOGIN

Fast paths are used when the server advertises them: CONDSTORE (HIGHESTMODSEQ in STATUS, so an
unchanged folder costs one round trip), UIDPLUS (APPENDUID), MULTIAPPEND (one APPEND command for
a batch), STATUS=SIZE. A dropped connection is re-opened with exponential back-off (tenacity);
idempotent commands are retried transparently, an interrupted APPEND raises TransferInterrupted
so the engine re-checks by digest what arrived.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import tenacity
from imapclient import IMAPClient
from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.response_parser import parse_fetch_response

from cutover.connectors.base import connector
from cutover.connectors.mailstore import (
    INBOX,
    SEPARATOR,
    FolderInfo,
    MessageRef,
    NewMessage,
    SessionBase,
    guess_special_use,
    normalise_flags,
)
from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    UsageError,
)

#: How much message content one FETCH may bring back (a message bigger than this comes alone).
FETCH_BATCH_BYTES = 512 * 1024  # held in memory per worker (twice: one read ahead)
FETCH_BATCH_COUNT = 250
#: How much one MULTIAPPEND may carry.
APPEND_BATCH_BYTES = 1024 * 1024
APPEND_BATCH_COUNT = 100
#: ... when messages are streamed (LITERAL+): the server commits each APPEND command as one
#: transaction, and fewer, larger ones cost it markedly less CPU; memory holds one message.
STREAM_APPEND_BYTES = 32 * 1024 * 1024
STREAM_APPEND_COUNT = 2000
RECONNECT_ATTEMPTS = 6
TIMEOUT_S = 60.0

_TRANSIENT = (OSError, imaplib.IMAP4.abort, socket.timeout, EOFError)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([0-9:,]+)\]", re.I)
_THROTTLED = re.compile(r"\[(UNAVAILABLE|LIMIT|INUSE)\]|throttl", re.I)


class TransferInterrupted(ConnectionFailed):
    """The connection dropped during an APPEND: some of the batch may have arrived."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    security: str  # "imaps" (implicit TLS) or "starttls-if-offered"

    def label(self, user: str) -> str:
        scheme = "imaps" if self.security == "imaps" else "imap"
        return f"{scheme}://{user}@{self.host}:{self.port}"


def parse_endpoint(url: str) -> tuple[Endpoint, str | None]:
    """`imap://USER@HOST:PORT` or `imaps://...` -> (endpoint, user or None)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise UsageError(f"not an IMAP URL: {url} (imap://USER@HOST:PORT or imaps://...)")
    if parts.password:
        raise UsageError("put no password in the URL: use CUTOVER_*_PASSWORD or a password file")
    try:
        port = parts.port or (993 if parts.scheme == "imaps" else 143)
    except ValueError:
        raise UsageError(f"bad port in {url}") from None
    security = "imaps" if parts.scheme == "imaps" else "starttls-if-offered"
    user = unquote(parts.username) if parts.username else None
    return Endpoint(parts.hostname, port, security), user


@connector("imap")
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

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ImapMailStore:
        url = str(config.get("url", "")).replace("{user}", "user")
        if not url and config.get("host"):  # host/port/ssl spelled out instead of a URL
            scheme = "imaps" if config.get("ssl") else "imap"
            port = config.get("port", 993 if config.get("ssl") else 143)
            url = f"{scheme}://user@{config['host']}:{port}"
        if not url:
            raise ConfigInvalid("an imap mailstore needs url: imap://{user}@HOST:PORT "
                                "(or host, port, ssl)")
        endpoint, _ = parse_endpoint(url)
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

    def open(self, user: str) -> ImapSession:
        """The one network seam: connect, TLS as configured or offered, log in."""
        return ImapSession(self, user)

    # --- used by ImapSession; kept here so the session never sees the password twice ------
    def _ssl_context(self) -> ssl.SSLContext:
        """One context per store, built on first use: loading the CA bundle costs tens of ms,
        which a plain connection that is never offered STARTTLS should not pay."""
        with self._ssl_lock:
            if self._ssl is None:
                context = ssl.create_default_context()
                if not self.tls_verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._ssl = context
            return self._ssl

    def _connect(self, user: str) -> IMAPClient:
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        implicit_tls = self.endpoint.security == "imaps"
        try:
            client = IMAPClient(self.endpoint.host, self.endpoint.port, ssl=implicit_tls,
                                ssl_context=self._ssl_context() if implicit_tls else None,
                                timeout=self.timeout)
            if self.endpoint.security != "imaps" and client.has_capability("STARTTLS"):
                client.starttls(self._ssl_context())
            login = self.login.replace("{user}", user)
            if self._oauth2_token is not None:
                client.oauth2_login(login, self._oauth2_token())
            else:
                client.login(login, self._password() if self._password else "")
        except socket.gaierror:
            raise ConnectionFailed(f"cannot resolve IMAP host {self.endpoint.host}") from None
        except LoginError:
            raise AuthenticationFailed(f"IMAP login refused for {user} at {where}") from None
        except ssl.SSLError as exc:
            raise ConnectionFailed(f"TLS with {where} failed: {exc.reason}") from None
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


class _Transient(ConnectionFailed):
    """A failure worth retrying (reset, timeout, throttling)."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (_Transient, *_TRANSIENT)):
        return not isinstance(exc, (ConnectionRefusedError, socket.gaierror))
    return isinstance(exc, IMAPClientError) and bool(_THROTTLED.search(str(exc)))


def _retrying() -> tenacity.Retrying:
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_transient),
        wait=tenacity.wait_exponential(multiplier=0.2, max=10),
        stop=tenacity.stop_after_attempt(RECONNECT_ATTEMPTS),
        reraise=True,
    )


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
        self._delimiter = SEPARATOR
        self._reconnect()

    # --- connection ------------------------------------------------------------------------
    def _reconnect(self) -> None:
        self._drop()
        for attempt in _retrying():
            with attempt:
                self._client = self.store._connect(self.user)
        caps = {c.decode().upper() for c in self._client.capabilities()}
        self.capabilities = frozenset(
            c for c in ("CONDSTORE", "QRESYNC", "UIDPLUS", "MULTIAPPEND", "SPECIAL-USE",
                        "STATUS=SIZE", "LITERAL+", "MOVE") if c in caps
        ) | {"KEYWORDS", "INTERNALDATE", "EXACT-CONTENT"}
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
        for attempt in _retrying():
            with attempt:
                try:
                    if self._client is None:
                        self._reconnect()
                    return operation()
                except _TRANSIENT:
                    self._drop()
                    raise

    # --- names ------------------------------------------------------------------------------
    def _wire(self, name: str) -> str:
        return name if self._delimiter == SEPARATOR else name.replace(SEPARATOR, self._delimiter)

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
        for flags, delimiter, name in listing:
            if delimiter:
                self._delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
            name = name if isinstance(name, str) else name.decode()
            path = name.replace(self._delimiter, SEPARATOR) if self._delimiter else name
            if path.upper() == INBOX:
                path = INBOX
            attrs = {f.decode() if isinstance(f, bytes) else str(f) for f in flags}
            lowered = {a.lower() for a in attrs}
            selectable = not ({"\\noselect", "\\nonexistent"} & lowered)
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
        def create() -> None:
            existing = {f.name for f in self._folders()}
            if name in existing:
                return
            try:
                self._client.create_folder(self._wire(name))
            except IMAPClientError as exc:
                if "ALREADYEXISTS" not in str(exc).upper():
                    raise UsageError(f"cannot create folder {name!r}: {exc}") from None
        self._run(create)

    def delete_folder(self, name: str) -> None:
        def delete() -> None:
            if self._selected is not None:
                self._client.close_folder()
                self._selected = None
            try:
                self._client.delete_folder(self._wire(name))
            except IMAPClientError as exc:
                if "NONEXISTENT" not in str(exc).upper():
                    raise UsageError(f"cannot delete folder {name!r}: {exc}") from None
        self._run(delete)

    def rename_folder(self, old: str, new: str) -> None:
        def rename() -> None:
            self._selected = None
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
            raise
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
            imap = self._client._imap
            tag = imap._new_tag()
            count = size = 0
            try:
                imap.send(tag + b" APPEND " + self._client._normalise_folder(self._wire(folder)))
                while message is not None and (not count or (
                        size + len(message.content) <= STREAM_APPEND_BYTES
                        and count < STREAM_APPEND_COUNT)):
                    imap.send(_append_header(message))
                    imap.send(message.content)
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
            uids.extend(found if len(found) == count
                        else self._uids_after_append(folder, count))
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
