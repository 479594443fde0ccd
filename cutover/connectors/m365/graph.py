"""Microsoft 365 / Exchange Online mailboxes through Microsoft Graph (v1.0), kind `graph`.

Exchange Online's EWS is being retired, so the cloud side of phase 2 speaks Graph:

    mailstores:
      cloud:
        kind: graph
        tenant_id: 0f3c7a52-6d2e-4b7e-9d7a-2a4c1e9b8f10   # or example.onmicrosoft.com
        client_id: 6731de76-14a6-49ae-97bc-6eba6914391e
        client_secret: env/CUTOVER_GRAPH_SECRET            # or certificate: {...} below
        # certificate: {private_key: file/keys/cutover-app.pem, thumbprint: "A1B2..."}
        # import: received        # default; "draft" = Graph's own MIME import (see below)

The app registration needs the *application* permission Mail.ReadWrite (and User.Read.All for
the directory connector), granted by an administrator. Tokens come from MSAL's client-credentials
flow and stay in MSAL's in-memory cache: never logged, never written anywhere.

Design choices (see also cutover/parsers/graph_json.py for the flag mapping):

- HTTP: `GraphClient._create_session()` is the only method that opens the network session (and
  the MSAL application, whose construction already talks to Entra ID). Throttling (429, 503, 504)
  is retried with tenacity honouring Retry-After; the wait function is injectable (`sleep=`).
- UIDs: Graph message ids are long strings. Each session maps them to the protocol's integer
  UIDs with a per-folder table in the workspace state DB (Migrations set "cutover.step_graph"):
  a folder's row number is its UIDVALIDITY, UIDs are handed out in increasing order as
  messages are first seen, so "UID > last seen" still means "new". Ids are requested as
  ImmutableId (`Prefer: IdType="ImmutableId"`), so they survive moves between folders.
- Import: Graph's documented MIME import (POST .../messages with `Content-Type: text/plain`
  and the base64 MIME) always creates a *draft*, and PR_MESSAGE_FLAGS cannot be changed later.
  Migrated mail must look received, so by default (`import: received`) a message is created
  as JSON built from its MIME (subject, body, addresses, attachments, Message-ID), with
  PR_MESSAGE_FLAGS (not MSGFLAG_UNSENT), PR_MESSAGE_DELIVERY_TIME (INTERNALDATE),
  PR_CLIENT_SUBMIT_TIME and PR_TRANSPORT_MESSAGE_HEADERS (the original header block) set in the
  create request. Messages flagged \\Draft, or every message with `import: draft`, go through
  the MIME import, then one PATCH sets flags, categories and the delivery time.
- Exactness: Exchange Online stores MAPI properties, not MIME; the MIME it returns
  (`/messages/{id}/$value`) is regenerated, so a Graph copy is not byte-for-byte. Verification
  against a Graph target compares counts, Message-IDs, flags and dates, not digests.
"""

from __future__ import annotations

import base64
import email.utils
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msal
import requests
from sqlite_utils.migrations import Migrations
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cutover.connectors.base import connector
from cutover.connectors.mailstore import (
    INBOX,
    SEPARATOR,
    FolderInfo,
    MessageRef,
    NewMessage,
    SessionBase,
    normalise_flags,
)
from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    StepFailed,
)
from cutover.parsers import graph_json as gj

if TYPE_CHECKING:
    from cutover.workspace import Workspace

GRAPH_URL = "https://graph.microsoft.com/v1.0"
LOGIN_URL = "https://login.microsoftonline.com"
SCOPES = ["https://graph.microsoft.com/.default"]
THROTTLE_STATUSES = frozenset({429, 503, 504})
NOT_FOUND_CODES = frozenset({"ErrorInvalidUser", "ResourceNotFound", "Request_ResourceNotFound",
                             "MailboxNotEnabledForRESTAPI", "ErrorItemNotFound",
                             "ErrorNonExistentMailbox"})
PAGE_SIZE = 250
UPLOAD_CHUNK = 320 * 1024 * 10  # upload sessions want multiples of 320 KiB


class GraphRequestFailed(StepFailed):
    """Graph answered a request with an unexpected error (the message names code and call)."""


class _Throttled(Exception):  # noqa: N818 - internal retry signal
    def __init__(self, retry_after: float | None):
        super().__init__("throttled")
        self.retry_after = retry_after


class _Unreachable(Exception):  # noqa: N818 - internal retry signal
    pass


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: "7" or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


# --- credentials --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphCredentials:
    """Where the client credential comes from; the secret itself is read only when needed."""

    tenant_id: str
    client_id: str
    load_credential: Callable[[], str | dict[str, str]] = field(repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace,
                    where: str) -> GraphCredentials:
        missing = [key for key in ("tenant_id", "client_id") if not config.get(key)]
        if missing:
            raise ConfigInvalid(f"cutover.yaml: {where} needs {' and '.join(missing)}")
        secret_ref = config.get("client_secret")
        certificate = config.get("certificate")
        if bool(secret_ref) == bool(certificate):
            raise ConfigInvalid(f"cutover.yaml: {where} needs exactly one of client_secret "
                                "(env/NAME or file/PATH) and certificate")
        if secret_ref:
            return cls(str(config["tenant_id"]), str(config["client_id"]),
                       lambda: workspace.secret(secret_ref))
        if not isinstance(certificate, dict) or not certificate.get("private_key") \
                or not certificate.get("thumbprint"):
            raise ConfigInvalid(f"cutover.yaml: {where}.certificate needs private_key "
                                "(file/PATH or env/NAME) and thumbprint")
        key_ref = str(certificate["private_key"])
        if not key_ref.startswith(("env/", "file/")):
            raise ConfigInvalid(f"cutover.yaml: {where}.certificate.private_key: write a "
                                "reference (env/NAME or file/PATH), not the key itself")
        thumbprint = str(certificate["thumbprint"]).replace(":", "")
        return cls(str(config["tenant_id"]), str(config["client_id"]),
                   lambda: {"private_key": workspace.secret(key_ref), "thumbprint": thumbprint})


# --- the HTTP layer -------------------------------------------------------------------------------
class GraphClient:
    """Token, retries, paging and batching for Graph calls. Thread-safe enough for one session
    per worker: MSAL's cache is shared, each call is independent."""

    def __init__(self, credentials: GraphCredentials, *, graph_url: str = GRAPH_URL,
                 login_url: str = LOGIN_URL, timeout: float = 60.0, max_attempts: int = 6,
                 sleep: Callable[[float], None] = time.sleep,
                 permission: str = "Mail.ReadWrite"):
        self.credentials = credentials
        self.permission = permission  # named when Graph answers 403
        self.graph_url = graph_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._http: requests.Session | None = None
        self._app: msal.ConfidentialClientApplication | None = None

    # The seam: the only place that opens the network session.
    def _create_session(self) -> tuple[requests.Session, msal.ConfidentialClientApplication]:
        http = requests.Session()
        http.headers["Prefer"] = 'IdType="ImmutableId"'
        tenant = self.credentials.tenant_id
        try:
            app = msal.ConfidentialClientApplication(
                self.credentials.client_id, client_credential=self.credentials.load_credential(),
                authority=f"{self.login_url}/{tenant}", http_client=http, timeout=self.timeout,
                token_cache=msal.TokenCache(),  # memory only
                # no cross-cloud alias lookups: the authority is named in full
                instance_discovery=False)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {self.login_url}: "
                                   f"{type(exc).__name__}") from None
        except ValueError:
            # MSAL's tenant discovery failed: the tenant does not exist (or is misspelt)
            raise NotFound(f"Entra ID tenant {tenant!r} not found at {self.login_url}") from None
        return http, app

    def connect(self) -> None:
        if self._http is None:
            self._http, self._app = self._create_session()
            self._token()  # fail early (and once) on bad credentials

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = self._app = None

    def _token(self) -> str:
        assert self._app is not None
        try:
            result = self._app.acquire_token_for_client(scopes=SCOPES)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {self.login_url}: "
                                   f"{type(exc).__name__}") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            return token
        error = str(result.get("error", "")) if isinstance(result, dict) else ""
        code = gj.aadsts_code(str(result.get("error_description", ""))) \
            if isinstance(result, dict) else ""
        # the description can quote request details; only the codes are shown
        raise AuthenticationFailed(
            f"Entra ID refused the credentials of client {self.credentials.client_id} in tenant "
            f"{self.credentials.tenant_id}: {error or 'no token'}" + (f" ({code})" if code else ""))

    # --- requests ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.graph_url}/{path.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled) and exc.retry_after is not None:
            return exc.retry_after
        return float(min(2 ** state.attempt_number, 60))

    def _send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        assert self._http is not None
        headers = dict(kwargs.pop("headers", None) or {})
        if url.startswith(self.graph_url):
            headers["Authorization"] = f"Bearer {self._token()}"
        try:
            response = self._http.request(method, url, headers=headers, timeout=self.timeout,
                                          **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Unreachable(type(exc).__name__) from None
        if response.status_code in THROTTLE_STATUSES:
            raise _Throttled(retry_after_seconds(response.headers.get("Retry-After")))
        return response

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with retries; raises the cutover error a failure means."""
        self.connect()
        url = self.url(path)
        retrying = Retrying(retry=retry_if_exception_type((_Throttled, _Unreachable)),
                            wait=self._wait, stop=stop_after_attempt(self.max_attempts),
                            sleep=self.sleep, reraise=True)
        try:
            response = retrying(self._send_once, method, url, **kwargs)
        except _Throttled:
            raise ConnectionFailed(f"Microsoft Graph is still throttling after {self.max_attempts}"
                                   f" attempts ({method} {_short(url)})") from None
        except _Unreachable as exc:
            raise ConnectionFailed(f"cannot reach {_host(url)}: {exc}") from None
        if response.status_code >= 400:
            raise self.error(method, url, response.status_code, response.content)
        return response

    def error(self, method: str, url: str, status: int, content: Any) -> Exception:
        text = content if isinstance(content, str | bytes) else json.dumps(content or {})
        failure = gj.parse_error(status, text)
        what = f"{failure.code or status}: {failure.message}".rstrip(": ")
        if status == 401:
            return AuthenticationFailed(f"Microsoft Graph refused the token of client "
                                        f"{self.credentials.client_id} ({failure.code or 401})")
        if status == 403:
            return AuthenticationFailed(f"Microsoft Graph denied {method} {_short(url)} "
                                        f"({failure.code or 403}): grant the app {self.permission} "
                                        "(application permission) with admin consent")
        if status == 404 or failure.code in NOT_FOUND_CODES:
            return NotFound(f"not found in Microsoft 365: {_short(url)} ({what})")
        return GraphRequestFailed(f"Microsoft Graph failed {method} {_short(url)} ({what})")

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return gj.loads(self.send("GET", path, params=params).content)

    def collection(self, path: str, params: dict[str, Any] | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink (which carries the query)."""
        page = gj.parse_page(self.send("GET", path, params=params).content)
        yield from page.values
        while page.next_link:
            page = gj.parse_page(self.send("GET", page.next_link).content)
            yield from page.values

    def batch(self, requests_: list[dict[str, Any]]) -> dict[str, gj.BatchResponse]:
        """Run requests in JSON batches of 20; throttled members are retried after the largest
        Retry-After of the round, the others are returned as answered."""
        results: dict[str, gj.BatchResponse] = {}
        for start in range(0, len(requests_), 20):
            pending = requests_[start:start + 20]
            for attempt in range(1, self.max_attempts + 1):
                response = self.send("POST", "$batch", json=gj.batch_request(pending))
                answers = gj.parse_batch_response(response.content)
                throttled = [r for r in pending
                             if answers.get(r["id"]) and answers[r["id"]].status in
                             THROTTLE_STATUSES]
                results.update({key: value for key, value in answers.items()
                                if value.status not in THROTTLE_STATUSES})
                if not throttled:
                    break
                if attempt == self.max_attempts:
                    raise ConnectionFailed("Microsoft Graph is still throttling batched "
                                           f"requests after {self.max_attempts} attempts")
                waits = [retry_after_seconds(answers[r["id"]].headers.get("retry-after"))
                         for r in throttled]
                self.sleep(max([w for w in waits if w is not None] or [2.0 ** attempt]))
                pending = throttled
        return results

    def check_batch(self, answers: dict[str, gj.BatchResponse], method: str,
                    ignore_not_found: bool = False) -> None:
        for answer in answers.values():
            if answer.status < 400 or (ignore_not_found and answer.status == 404):
                continue
            raise self.error(method, f"$batch#{answer.id}", answer.status, answer.body)


def _short(url: str) -> str:
    """A URL for messages: path only, no query (which may be long), never a token."""
    path = url.split("?", 1)[0]
    return path.replace(GRAPH_URL, "") or path


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


def user_path(user: str) -> str:
    return f"users/{quote(user, safe='@')}"


# --- the UID map --------------------------------------------------------------------------------
GRAPH_MIGRATIONS = Migrations("cutover.step_graph")


@GRAPH_MIGRATIONS()
def m001_uid_map(db: Any) -> None:
    db["graph_folders"].create({"id": int, "mailbox": str, "folder_id": str}, pk="id")
    db["graph_folders"].create_index(["mailbox", "folder_id"], unique=True)
    db["graph_uids"].create({"folder": int, "uid": int, "message_id": str},
                            pk=("folder", "uid"))
    db["graph_uids"].create_index(["folder", "message_id"], unique=True)


class UidMap:
    """Graph ids <-> (UIDVALIDITY, UID), persisted in the workspace state DB."""

    def __init__(self, path: Path, mailbox: str):
        from cutover.state import State

        state = State.open(path)  # checks the file is ours, WAL, migrations
        try:
            state.migrate(GRAPH_MIGRATIONS)
        finally:
            state.close()
        # The sync engine's session pool hands a session from thread to thread (one at a
        # time), so this connection must not be tied to the thread that opened it.
        self.conn: sqlite3.Connection = sqlite3.connect(
            str(path), timeout=10, isolation_level=None, check_same_thread=False)
        self.mailbox = mailbox.lower()

    def close(self) -> None:
        self.conn.close()

    def uidvalidity(self, folder_id: str) -> int:
        row = self.conn.execute("SELECT id FROM graph_folders WHERE mailbox = ? AND folder_id = ?",
                                (self.mailbox, folder_id)).fetchone()
        if row:
            return int(row[0])
        cursor = self.conn.execute("INSERT OR IGNORE INTO graph_folders (mailbox, folder_id) "
                                   "VALUES (?, ?)", (self.mailbox, folder_id))
        if cursor.lastrowid and cursor.rowcount:
            return int(cursor.lastrowid)
        return self.uidvalidity(folder_id)

    def uidnext(self, folder_id: str) -> int:
        row = self.conn.execute("SELECT MAX(uid) FROM graph_uids WHERE folder = ?",
                                (self.uidvalidity(folder_id),)).fetchone()
        return int(row[0] or 0) + 1

    def uids(self, folder_id: str, message_ids: Sequence[str]) -> dict[str, int]:
        """The UID of each id, giving new ids the next UIDs in the order given."""
        folder = self.uidvalidity(folder_id)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            known = dict(self.conn.execute(
                "SELECT message_id, uid FROM graph_uids WHERE folder = ?", (folder,)).fetchall())
            row = self.conn.execute("SELECT MAX(uid) FROM graph_uids WHERE folder = ?",
                                    (folder,)).fetchone()
            next_uid = int(row[0] or 0) + 1
            for message_id in message_ids:
                if message_id not in known:
                    known[message_id] = next_uid
                    self.conn.execute("INSERT INTO graph_uids (folder, uid, message_id) "
                                      "VALUES (?, ?, ?)", (folder, next_uid, message_id))
                    next_uid += 1
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return {message_id: known[message_id] for message_id in message_ids}

    def message_ids(self, folder_id: str, uids: Sequence[int]) -> dict[int, str]:
        folder = self.uidvalidity(folder_id)
        rows = self.conn.execute("SELECT uid, message_id FROM graph_uids WHERE folder = ?",
                                 (folder,)).fetchall()
        wanted = set(uids)
        return {int(uid): str(mid) for uid, mid in rows if uid in wanted}

    def forget(self, folder_id: str, uids: Iterable[int]) -> None:
        folder = self.uidvalidity(folder_id)
        self.conn.executemany("DELETE FROM graph_uids WHERE folder = ? AND uid = ?",
                              [(folder, uid) for uid in uids])


# --- the store and its sessions ---------------------------------------------------------------
@connector("graph", role="mail-store")
class GraphMailStore:
    """Exchange Online mailboxes through Microsoft Graph; `open(user)` gives a session."""

    capabilities = frozenset({"SPECIAL-USE", "KEYWORDS", "INTERNALDATE"})

    def __init__(self, client: GraphClient, uid_map_path: Path, import_mode: str = "received"):
        if import_mode not in ("received", "draft"):
            raise ConfigInvalid(f"graph import must be received or draft, not {import_mode!r}")
        self.client = client
        self.uid_map_path = uid_map_path
        self.import_mode = import_mode

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> GraphMailStore:
        credentials = GraphCredentials.from_config(config, workspace, "mailstores (graph)")
        client = GraphClient(credentials, graph_url=config.get("graph_url", GRAPH_URL),
                             login_url=config.get("login_url", LOGIN_URL))
        uid_map = workspace.path(config["uid_map"]) if config.get("uid_map") \
            else workspace.state_path
        return cls(client, uid_map, str(config.get("import", "received")))

    def open(self, user: str) -> GraphSession:
        self.client.connect()
        session = GraphSession(self, user)
        session.check_mailbox()
        return session

    def describe(self, user: str) -> str:
        return f"graph://{user}@{self.client.credentials.tenant_id}"


@dataclass
class _Folder:
    id: str
    path: str
    special_use: str | None
    info: gj.GraphFolder


FOLDER_SELECT = "id,displayName,parentFolderId,childFolderCount,totalItemCount,isHidden"
FOLDER_EXPAND = gj.expand_properties(gj.PR_MESSAGE_SIZE_EXTENDED)


class GraphSession(SessionBase):
    """One Exchange Online mailbox. Folder paths are display names joined by "/"; the inbox
    is "INBOX" and well-known folders carry their special use."""

    def __init__(self, store: GraphMailStore, user: str):
        self.store = store
        self.client = store.client
        self.user = user
        self.capabilities = store.capabilities
        self.base = user_path(user)
        self._tree: dict[str, _Folder] | None = None
        self._uid_map: UidMap | None = None

    @property
    def uid_map(self) -> UidMap:
        if self._uid_map is None:
            self._uid_map = UidMap(self.store.uid_map_path, self.user)
        return self._uid_map

    def close(self) -> None:
        if self._uid_map is not None:
            self._uid_map.close()
            self._uid_map = None

    def check_mailbox(self) -> None:
        try:
            self.client.get_json(f"{self.base}/mailFolders/inbox", {"$select": "id"})
        except NotFound:
            raise NotFound(f"no Exchange Online mailbox for {self.user}") from None

    # --- folders -----------------------------------------------------------------------
    def _well_known(self) -> dict[str, str]:
        """folder id -> well-known name (inbox, sentitems, ...), in one batch."""
        names = [*gj.WELL_KNOWN_FOLDERS, "outbox"]
        answers = self.client.batch([
            {"id": name, "method": "GET", "url": f"/{self.base}/mailFolders/{name}?$select=id"}
            for name in names])
        self.client.check_batch(answers, "GET", ignore_not_found=True)
        return {answer.body["id"]: key for key, answer in answers.items()
                if answer.status == 200 and isinstance(answer.body, dict)}

    def _children(self, parent_id: str | None) -> Iterator[gj.GraphFolder]:
        path = f"{self.base}/mailFolders" if parent_id is None \
            else f"{self.base}/mailFolders/{parent_id}/childFolders"
        params = {"$top": 100, "$select": FOLDER_SELECT, "$expand": FOLDER_EXPAND}
        for item in self.client.collection(path, params):
            yield gj.parse_folder(item)

    def _load_tree(self) -> dict[str, _Folder]:
        well_known = self._well_known()
        tree: dict[str, _Folder] = {}
        queue: list[tuple[str | None, str | None]] = [(None, None)]  # (parent id, parent path)
        while queue:
            parent_id, parent_path = queue.pop(0)
            for folder in self._children(parent_id):
                known = well_known.get(folder.id)
                if known == "outbox":
                    continue  # mail in transit, not content to migrate
                name = INBOX if known == "inbox" else folder.display_name
                path = f"{parent_path}{SEPARATOR}{name}" if parent_path else name
                special = gj.WELL_KNOWN_FOLDERS.get(known) if known else None
                tree[path] = _Folder(folder.id, path, special, folder)
                if folder.child_count:
                    queue.append((folder.id, path))
        return tree

    def _folders(self, refresh: bool = False) -> dict[str, _Folder]:
        if self._tree is None or refresh:
            self._tree = self._load_tree()
        return self._tree

    def _resolve(self, name: str) -> _Folder:
        for refresh in (False, True):
            folder = self._folders(refresh).get(name)
            if folder is not None:
                return folder
        raise NotFound(f"folder {name!r} does not exist in {self.user}")

    def folders(self) -> list[FolderInfo]:
        tree = self._folders(refresh=True)
        result = []
        for path, folder in tree.items():
            result.append(FolderInfo(
                name=path, special_use=folder.special_use, selectable=True,
                messages=folder.info.total_items, size_bytes=folder.info.size_bytes,
                uidvalidity=self.uid_map.uidvalidity(folder.id),
                uidnext=self.uid_map.uidnext(folder.id)))
        return sorted(result, key=lambda info: info.name.split(SEPARATOR))

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        tree = self._folders(refresh=True)
        if name in tree:
            return
        if special_use and any(f.special_use == special_use for f in tree.values()):
            return  # Exchange has it already, under its own (localised) name
        parent_path, _, leaf = name.rpartition(SEPARATOR)
        if parent_path and parent_path not in tree:
            self.create_folder(parent_path)
            tree = self._folders()
        path = f"{self.base}/mailFolders/{tree[parent_path].id}/childFolders" if parent_path \
            else f"{self.base}/mailFolders"
        try:
            created = gj.loads(self.client.send("POST", path,
                                                json=gj.folder_create_body(leaf)).content)
        except GraphRequestFailed as exc:
            if "ErrorFolderExists" not in str(exc):
                raise
            self._folders(refresh=True)
            return
        info = gj.parse_folder(created)
        tree[name] = _Folder(info.id, name, None, info)

    def delete_folder(self, name: str) -> None:
        try:
            folder = self._resolve(name)
        except NotFound:
            return
        try:
            self.client.send("POST", f"{self.base}/mailFolders/{folder.id}/permanentDelete")
        except NotFound:
            pass
        self._tree = None

    def rename_folder(self, old: str, new: str) -> None:
        folder = self._resolve(old)
        old_parent, _, _ = old.rpartition(SEPARATOR)
        new_parent, _, leaf = new.rpartition(SEPARATOR)
        if new_parent != old_parent:
            if new_parent:
                self.create_folder(new_parent)
            destination = self._resolve(new_parent).id if new_parent else "msgfolderroot"
            moved = gj.loads(self.client.send(
                "POST", f"{self.base}/mailFolders/{folder.id}/move",
                json={"destinationId": destination}).content)
            folder = _Folder(str(moved.get("id", folder.id)), old, None, folder.info)
        if leaf != folder.info.display_name:
            self.client.send("PATCH", f"{self.base}/mailFolders/{folder.id}",
                             json={"displayName": leaf})
        self._tree = None

    # --- messages -----------------------------------------------------------------------
    def _messages(self, folder: _Folder) -> list[gj.GraphMessage]:
        params = {"$top": PAGE_SIZE, "$select": gj.MESSAGE_SELECT, "$expand": gj.MESSAGE_EXPAND}
        return [gj.parse_message(item) for item in
                self.client.collection(f"{self.base}/mailFolders/{folder.id}/messages", params)]

    def list_messages(self, folder: str) -> list[MessageRef]:
        target = self._resolve(folder)
        messages = sorted(self._messages(target), key=lambda m: (m.received, m.id))
        uids = self.uid_map.uids(target.id, [m.id for m in messages])
        refs = [MessageRef(uid=uids[m.id], size=m.size, flags=m.flags, internaldate=m.received)
                for m in messages]
        return sorted(refs, key=lambda ref: ref.uid)

    def fetch(self, folder: str, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        target = self._resolve(folder)
        ids = self.uid_map.message_ids(target.id, uids)
        for uid in uids:
            if uid not in ids:
                continue
            try:
                response = self.client.send("GET", f"{self.base}/messages/{ids[uid]}/$value")
            except NotFound:
                continue  # removed meanwhile
            yield uid, response.content

    def append(self, folder: str, items: Iterable[NewMessage]) -> list[int]:
        target = self._resolve(folder)
        created = [self._import(target, item) for item in items]
        uids = self.uid_map.uids(target.id, created)
        return [uids[message_id] for message_id in created]

    def _import(self, folder: _Folder, item: NewMessage) -> str:
        flags = normalise_flags(item.flags)
        if "\\Draft" in flags or self.store.import_mode == "draft":
            return self._import_mime(folder, item.content, flags, item.internaldate)
        try:
            body = gj.message_create_body(item.content, flags, item.internaldate,
                                          datetime.now(UTC))
        except Exception:  # noqa: BLE001 - the email package fails in assorted ways on
            # malformed MIME; Exchange's own MIME parser is the better judge (as a draft)
            return self._import_mime(folder, item.content, flags, item.internaldate)
        path = f"{self.base}/mailFolders/{folder.id}/messages"
        if gj.encoded_size(body) <= gj.INLINE_LIMIT:
            return str(gj.loads(self.client.send("POST", path, json=body).content)["id"])
        message, attachments = gj.split_attachments(body)
        message_id = str(gj.loads(self.client.send("POST", path, json=message).content)["id"])
        for attachment in attachments:
            self._attach(message_id, attachment)
        return message_id

    def _import_mime(self, folder: _Folder, content: bytes, flags: frozenset[str],
                     internaldate: datetime | None) -> str:
        created = gj.loads(self.client.send(
            "POST", f"{self.base}/mailFolders/{folder.id}/messages",
            data=gj.mime_request_body(content), headers={"Content-Type": "text/plain"}).content)
        message_id = str(created["id"])
        self.client.send("PATCH", f"{self.base}/messages/{message_id}",
                         json=gj.mime_followup_patch(flags, internaldate))
        return message_id

    def _attach(self, message_id: str, attachment: dict[str, Any]) -> None:
        raw = base64.b64decode(attachment["contentBytes"])
        path = f"{self.base}/messages/{message_id}/attachments"
        if len(raw) <= gj.INLINE_LIMIT:
            self.client.send("POST", path, json=attachment)
            return
        session = gj.loads(self.client.send("POST", f"{path}/createUploadSession", json={
            "AttachmentItem": {"attachmentType": "file", "name": attachment["name"],
                               "size": len(raw), "contentType": attachment["contentType"],
                               "isInline": attachment.get("isInline", False)}}).content)
        upload_url = session["uploadUrl"]  # pre-authenticated: no Authorization header
        for start in range(0, len(raw), UPLOAD_CHUNK):
            chunk = raw[start:start + UPLOAD_CHUNK]
            end = start + len(chunk) - 1
            self.client.send("PUT", upload_url, data=chunk, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{end}/{len(raw)}"})

    def set_flags(self, folder: str, uids: Sequence[int], flags: frozenset[str]) -> None:
        target = self._resolve(folder)
        ids = self.uid_map.message_ids(target.id, uids)
        body = gj.flag_patch(normalise_flags(flags))
        answers = self.client.batch([
            {"id": str(uid), "method": "PATCH", "url": f"/{self.base}/messages/{message_id}",
             "body": body} for uid, message_id in ids.items()])
        self.client.check_batch(answers, "PATCH")

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        target = self._resolve(folder)
        ids = self.uid_map.message_ids(target.id, uids)
        # permanentDelete, not DELETE: DELETE only moves the message to Deleted Items
        answers = self.client.batch([
            {"id": str(uid), "method": "POST",
             "url": f"/{self.base}/messages/{message_id}/permanentDelete"}
            for uid, message_id in ids.items()])
        self.client.check_batch(answers, "POST", ignore_not_found=True)
        self.uid_map.forget(target.id, ids)
