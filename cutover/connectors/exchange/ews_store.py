"""Exchange Web Services mail store (kind `ews`), a source: read folders, flags and the exact MIME
of every message of an on-premises Exchange mailbox (exchangelib).

    mailstores:
      exchange:
        kind: ews
        server: mail.example.org              # https://SERVER/EWS/Exchange.asmx
        # service_endpoint: https://mail.example.org/EWS/Exchange.asmx
        username: EXAMPLE\\svc-cutover         # has ApplicationImpersonation
        password: env/EXCHANGE_PASSWORD
        auth: ntlm                            # or basic
        access: impersonation                 # or delegate (FullAccess on each mailbox)
        autodiscover: false                   # true: find the endpoint from each address
        tls_verify: true

How Exchange maps onto the MailStore vocabulary:
- folders are the mail folders under the message-folder root ("Top of Information Store"),
  "/"-separated; the Inbox is "INBOX"; Sent Items, Deleted Items, Junk E-mail and Drafts carry
  \\Sent, \\Trash, \\Junk, \\Drafts (the engine maps them to Sent, Trash, Junk, Drafts).
- content is the item's MIME export (GetItem with IncludeMimeContent), byte for byte.
- flags: \\Seen from IsRead; \\Draft from PR_MESSAGE_FLAGS bit MSGFLAG_UNSENT (0x8); \\Flagged
  from the follow-up flag (PR_FLAG_STATUS 2); \\Answered and $Forwarded from
  PR_LAST_VERB_EXECUTED (102/103 reply, 104 forward); categories become keywords.
- INTERNALDATE is DateTimeReceived.
- UIDs: Exchange has none, so a UID is a stable 62-bit hash of the ItemId and UIDVALIDITY one of
  the FolderId; an item moved to another folder gets a new ItemId, hence a new UID, as in IMAP.
The store is read-only: every write raises CapabilityMissing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

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
    CapabilityMissing,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
)

MIME_BATCH = 25  # items per GetItem with MIME content
MSGFLAG_UNSENT = 0x8
FOLLOWUP_FLAGGED = 2  # PR_FLAG_STATUS: 0 none, 1 complete, 2 flagged
_VERB_FLAGS = {102: "\\Answered", 103: "\\Answered", 104: "$Forwarded"}
_DISTINGUISHED = {"inbox": None, "sentitems": "\\Sent", "deleteditems": "\\Trash",
                  "junkemail": "\\Junk", "drafts": "\\Drafts"}
_KEYWORD_UNSAFE = re.compile(r"[^A-Za-z0-9$_.\-]")


def stable_id(text: str) -> int:
    """A positive 62-bit integer for an EWS id (UIDs and UIDVALIDITY must be ints)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 2 or 1


def flags_from_item(is_read: bool | None, message_flags: int | None, flag_status: int | None,
                    last_verb: int | None, categories: Iterable[str] | None) -> frozenset[str]:
    flags = []
    if is_read:
        flags.append("\\Seen")
    if message_flags and message_flags & MSGFLAG_UNSENT:
        flags.append("\\Draft")
    if flag_status == FOLLOWUP_FLAGGED:
        flags.append("\\Flagged")
    if last_verb in _VERB_FLAGS:
        flags.append(_VERB_FLAGS[last_verb])
    flags.extend(_KEYWORD_UNSAFE.sub("_", c) for c in categories or () if c)
    return normalise_flags(flags)


def _register_properties() -> None:
    from exchangelib import Message
    from exchangelib.extended_properties import ExtendedProperty

    class MessageFlags(ExtendedProperty):
        property_tag = 0x0E07  # PR_MESSAGE_FLAGS
        property_type = "Integer"

    class LastVerbExecuted(ExtendedProperty):
        property_tag = 0x1081  # PR_LAST_VERB_EXECUTED
        property_type = "Integer"

    class FlagStatus(ExtendedProperty):
        property_tag = 0x1090  # PR_FLAG_STATUS (the follow-up flag)
        property_type = "Integer"

    for name, cls in (("pr_message_flags", MessageFlags),
                      ("pr_last_verb_executed", LastVerbExecuted),
                      ("pr_flag_status", FlagStatus)):
        try:
            Message.register(name, cls)
        except ValueError:
            pass  # registered by an earlier store in this process


@connector("ews", role="mail-store")
class EwsMailStore:
    def __init__(self, server: str | None, password: Callable[[], str] | None,
                 username: str | None = None, token: Callable[[], str] | None = None,
                 auth: str = "ntlm", access: str = "impersonation", autodiscover: bool = False,
                 service_endpoint: str | None = None, tls_verify: bool = True,
                 version: str | None = "Exchange2016"):
        self.server = server
        self.service_endpoint = service_endpoint or (
            f"https://{server}/EWS/Exchange.asmx" if server else None)
        self._password = password
        self._token = token
        self.username = username
        self.auth = auth
        self.access = access
        self.autodiscover = autodiscover
        self.tls_verify = tls_verify
        self.version = version

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> EwsMailStore:
        if not config.get("server") and not config.get("service_endpoint") and not config.get(
                "autodiscover"):
            raise ConfigInvalid("an ews mailstore needs server, service_endpoint or "
                                "autodiscover: true")
        if not config.get("password"):
            raise ConfigInvalid("an ews mailstore needs password: env/NAME or file/PATH")
        reference = config["password"]
        return cls(config.get("server"), lambda: workspace.secret(reference),
                   username=config.get("username"), auth=str(config.get("auth", "ntlm")),
                   access=str(config.get("access", "impersonation")),
                   autodiscover=bool(config.get("autodiscover", False)),
                   service_endpoint=config.get("service_endpoint"),
                   tls_verify=bool(config.get("tls_verify", True)),
                   version=config.get("version", "Exchange2016"))

    def describe(self, user: str) -> str:
        return f"ews://{user}@{self.server or 'autodiscover'}"

    def open(self, user: str) -> EwsSession:
        """The one network seam: an exchangelib Account for `user`."""
        return EwsSession(self, user, self._account(user))

    def _account(self, user: str):
        from exchangelib import (
            BASIC,
            DELEGATE,
            IMPERSONATION,
            NTLM,
            OAUTH2,
            Account,
            Build,
            Configuration,
            Credentials,
            Version,
        )
        from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter

        _register_properties()
        if not self.tls_verify:
            BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter
        username = self.username or user
        if self._token is not None:
            from exchangelib import OAuth2AuthorizationCodeCredentials

            credentials = OAuth2AuthorizationCodeCredentials(access_token={
                "access_token": self._token(), "token_type": "Bearer"})
            auth_type = OAUTH2
        else:
            credentials = Credentials(username, self._password() if self._password else "")
            auth_type = BASIC if self.auth == "basic" else NTLM
        builds = {"Exchange2013": Build(15, 0), "Exchange2016": Build(15, 1),
                  "Exchange2019": Build(15, 2)}
        version = Version(build=builds[self.version]) if self.version in builds else None
        access = DELEGATE if self.access == "delegate" else IMPERSONATION
        try:
            if self.autodiscover:
                return Account(user, credentials=credentials, autodiscover=True,
                               access_type=access)
            config = Configuration(service_endpoint=self.service_endpoint,
                                   credentials=credentials, auth_type=auth_type, version=version)
            return Account(user, config=config, autodiscover=False, access_type=access)
        except Exception as exc:  # exchangelib raises many types; keep one line, no secrets
            raise _translate(exc, self.describe(user)) from None


def _translate(exc: Exception, where: str) -> Exception:
    from exchangelib.errors import (
        ErrorNonExistentMailbox,
        TransportError,
        UnauthorizedError,
    )

    name = type(exc).__name__
    if isinstance(exc, UnauthorizedError) or "Unauthorized" in name:
        return AuthenticationFailed(f"EWS refused the credentials for {where}")
    if isinstance(exc, ErrorNonExistentMailbox) or "NonExistentMailbox" in name:
        return NotFound(f"no such mailbox: {where}")
    if isinstance(exc, (TransportError, OSError)) or "Connection" in name:
        return ConnectionFailed(f"cannot reach EWS for {where}: {name}")
    if "Impersonat" in name or "AccessDenied" in name:
        return AuthenticationFailed(f"EWS refused access to {where} ({name})")
    return ConnectionFailed(f"EWS failed for {where}: {name}: {str(exc)[:200]}")


class EwsSession(SessionBase):
    # No EXACT-CONTENT: Exchange rebuilds the MIME export from MAPI properties on each read
    # (categories show up as a Keywords: header), so its digest is not a stable identity.
    capabilities = frozenset({"KEYWORDS"})

    def __init__(self, store: EwsMailStore, user: str, account: Any):
        self.store = store
        self.user = user
        self.account = account
        self._folders: dict[str, tuple[Any, FolderInfo]] | None = None
        self._ids: dict[str, dict[int, tuple[str, str]]] = {}

    def _call(self, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except (NotFound, CapabilityMissing):
            raise
        except Exception as exc:  # noqa: BLE001 - see _translate
            raise _translate(exc, self.store.describe(self.user)) from None

    # --- folders ------------------------------------------------------------------------------
    def folders(self) -> list[FolderInfo]:
        return [info for _, info in self._folder_map().values()]

    def _folder_map(self) -> dict[str, tuple[Any, FolderInfo]]:
        if self._folders is None:
            self._folders = self._call(self._walk)
        return self._folders

    def _walk(self) -> dict[str, tuple[Any, FolderInfo]]:
        """One FindFolder (deep) under the message-folder root; special folders are known by
        the DistinguishedFolderId Exchange returns with them."""
        from exchangelib.folders import FolderCollection

        root = self.account.msg_folder_root
        result: dict[str, tuple[Any, FolderInfo]] = {}
        names: dict[str, str] = {root.id: ""}
        found = [f for f in FolderCollection(account=self.account, folders=[root])
                 .find_folders(depth="Deep") if not isinstance(f, Exception)]
        by_id = {f.id: f for f in found}
        for folder in sorted(found, key=lambda f: _depth(f, by_id)):
            parent = folder.parent_folder_id.id if folder.parent_folder_id else root.id
            if parent not in names:
                continue  # under a skipped (non-mail) folder
            cls = folder.folder_class or "IPF.Note"
            if cls != "IPF.Note" and not cls.startswith("IPF.Note."):
                continue
            distinguished = _distinguished(folder)
            label = folder.name.replace(SEPARATOR, "_")
            name = INBOX if distinguished == "inbox" else (
                f"{names[parent]}{SEPARATOR}{label}" if names[parent] else label)
            names[folder.id] = name
            result[name] = (folder, FolderInfo(
                name=name, special_use=_DISTINGUISHED.get(distinguished or ""), selectable=True,
                messages=folder.total_count or 0, size_bytes=0,
                uidvalidity=stable_id(folder.id)))
        return dict(sorted(result.items(), key=lambda kv: (kv[0] != INBOX, kv[0].split("/"))))

    def folder(self, name: str) -> FolderInfo:
        folders = self._folder_map()
        if name not in folders:
            raise NotFound(f"folder {name!r} does not exist in {self.user}")
        return folders[name][1]

    # --- messages -----------------------------------------------------------------------------
    def list_messages(self, folder: str) -> list[MessageRef]:
        if folder not in self._folder_map():
            raise NotFound(f"folder {folder!r} does not exist in {self.user}")
        ews_folder = self._folder_map()[folder][0]

        def listing() -> list[MessageRef]:
            refs, ids = [], {}
            query = ews_folder.all().only(
                "id", "changekey", "size", "datetime_received", "is_read", "categories",
                "pr_message_flags", "pr_last_verb_executed", "pr_flag_status")
            for item in query:
                if not hasattr(item, "datetime_received"):
                    continue
                uid = stable_id(item.id)
                ids[uid] = (item.id, item.changekey)
                refs.append(MessageRef(
                    uid=uid, size=item.size or 0,
                    flags=flags_from_item(item.is_read, getattr(item, "pr_message_flags", None),
                                          getattr(item, "pr_flag_status", None),
                                          getattr(item, "pr_last_verb_executed", None),
                                          item.categories),
                    internaldate=_aware(item.datetime_received)))
            self._ids[folder] = ids
            refs.sort(key=lambda r: r.uid)
            return refs
        return self._call(listing)

    def fetch(self, folder: str, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        if folder not in self._ids:
            self.list_messages(folder)
        ids = self._ids[folder]
        wanted = [u for u in uids if u in ids]
        for start in range(0, len(wanted), MIME_BATCH):
            batch = wanted[start:start + MIME_BATCH]
            items = self._call(lambda b=batch: list(self.account.fetch(
                ids=[ids[u] for u in b], only_fields=["mime_content"])))
            for uid, item in zip(batch, items, strict=True):
                content = getattr(item, "mime_content", None)
                if content is not None:  # an error object: the item went away meanwhile
                    yield uid, content if isinstance(content, bytes) else content.encode()

    # --- a source only ------------------------------------------------------------------------
    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise CapabilityMissing("the ews mail store is a source only; copy to imap or maildir")

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        self._read_only()

    def delete_folder(self, name: str) -> None:
        self._read_only()

    def rename_folder(self, old: str, new: str) -> None:
        self._read_only()

    def append(self, folder: str, items: Iterable[NewMessage]) -> list[int]:
        return self._read_only()

    def set_flags(self, folder: str, uids: Sequence[int], flags: frozenset[str]) -> None:
        self._read_only()

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        self._read_only()

    def close(self) -> None:
        try:
            self.account.protocol.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _distinguished(folder: Any) -> str | None:
    value = getattr(folder, "_distinguished_id", None)
    return getattr(value, "id", value) if value else None


def _depth(folder: Any, by_id: dict[str, Any]) -> int:
    depth, seen = 0, set()
    while folder.parent_folder_id and folder.parent_folder_id.id in by_id and depth < 64:
        if folder.id in seen:
            break
        seen.add(folder.id)
        folder = by_id[folder.parent_folder_id.id]
        depth += 1
    return depth


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
