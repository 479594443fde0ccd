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
  UIDs with a per-folder table in the workspace state DB (Migrations set "cutover.graph"):
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    ConfigInvalid,
    NotFound,
    UsageError,
)
from cutover.parsers import graph_json as gj
from cutover.state import State

if TYPE_CHECKING:
    from cutover.workspace import Workspace

from cutover.connectors.m365.graph_client import (  # noqa: F401 - re-exported
    GRAPH_URL,
    LOGIN_URL,
    PAGE_SIZE,
    UPLOAD_CHUNK,
    GraphClient,
    GraphCredentials,
    GraphRequestFailed,
    retry_after_seconds,
    user_path,
)
from cutover.connectors.m365.uid_map import GRAPH_MIGRATIONS, UidMap  # noqa: F401


# --- the store and its sessions ---------------------------------------------------------------
@connector("graph", role="mail-store")
class GraphMailStore:
    """Exchange Online mailboxes through Microsoft Graph; `open(user)` gives a session."""

    capabilities = frozenset({"SPECIAL-USE", "KEYWORDS", "INTERNALDATE"})

    def __init__(self, client: GraphClient, uid_state: State | Path | None,
                 import_mode: str = "received"):
        """`uid_state`: the State that keeps the UID map (the workspace's, handed by the
        runner), or the path of a file of the connector's own (`uid_map:` in cutover.yaml)."""
        if import_mode not in ("received", "draft"):
            raise ConfigInvalid(f"graph import must be received or draft, not {import_mode!r}")
        self.client = client
        self._uid_state = uid_state
        self.import_mode = import_mode
        self.workspace: Workspace | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> GraphMailStore:
        credentials = GraphCredentials.from_config(config, workspace, "mailstores (graph)")
        client = GraphClient(credentials, graph_url=config.get("graph_url", GRAPH_URL),
                             login_url=config.get("login_url", LOGIN_URL))
        own = workspace.path(config["uid_map"]) if config.get("uid_map") else None
        store = cls(client, own, str(config.get("import", "received")))
        store.workspace = workspace
        return store

    def uid_state(self) -> State:
        """Where the UID map lives: a file of this connector's own, else the State the runner
        handed the workspace (a connector never opens the workspace's database)."""
        if isinstance(self._uid_state, Path):
            self._uid_state = State.open(self._uid_state)
        if self._uid_state is None and self.workspace is not None:
            self._uid_state = self.workspace.state
        if self._uid_state is None:
            raise UsageError("the graph mail store keeps its UID map in the workspace state: "
                             "use it through a plan step (or set uid_map: FILE)")
        return self._uid_state

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
            self._uid_map = UidMap(self.store.uid_state(), self.user)
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

