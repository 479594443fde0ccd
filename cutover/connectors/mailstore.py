"""The MailStore protocol: what every mail store (IMAP, Maildir, EWS, Graph) offers the engine.

A store is a connector (`mailstores:` in cutover.yaml). It holds only configuration; the one
network seam is `open(user)`, which returns a `MailboxSession` for one account. A session is a
context manager and is used by one thread at a time (the sync engine opens one per worker).

    store = workspace.connector("mailstores", "linux")
    with store.open("datarequest@verify.example.org") as session:
        for folder in session.folders():
            print(folder.name, folder.messages, folder.size_bytes)

Vocabulary shared by every implementation:

- Folder names are unicode paths with "/" as the separator whatever the server uses ("INBOX",
  "Archive/2024", "Entwürfe"); the inbox is always "INBOX". Modified UTF-7, Maildir++ dots and
  EWS folder ids are the implementation's business.
- `special_use` is an RFC 6154 attribute ("\\Sent", "\\Trash", "\\Junk", "\\Drafts",
  "\\Archive", "\\All", "\\Flagged") or None.
- Flags are a frozenset of IMAP flag strings: system flags in canonical case ("\\Seen",
  "\\Answered", "\\Flagged", "\\Draft", "\\Deleted") and keywords as written ("$Label1",
  "$Forwarded"). "\\Recent" is never reported or set.
- INTERNALDATE is a timezone-aware datetime; two dates are equal when they name the same
  instant (Maildir keeps no zone).
- UIDs are positive ints, unique and stable within one (folder, uidvalidity); when uidvalidity
  changes every UID of the folder is void.
- Errors are cutover.errors classes: AuthenticationFailed, ConnectionFailed (after retries),
  NotFound (folder or account missing), CapabilityMissing.

Capabilities (`session.capabilities`) a store may advertise, so the engine can choose fast paths:

    CONDSTORE    FolderInfo.highestmodseq is meaningful: unchanged => no flag changed
    UIDPLUS      append() returns the real UIDs without a second round trip
    MULTIAPPEND  append() sends many messages in one command
    SPECIAL-USE  folders() reports special_use from the server (not guessed from names)
    KEYWORDS     arbitrary keywords ($Label1) are kept
    INTERNALDATE append() keeps the given INTERNALDATE
    EXACT-CONTENT fetch() returns exactly the bytes append() was given, and the same bytes on
                 every read, so copies are matched and verified by content digest. Without it
                 (Graph: Exchange Online rebuilds MIME from MAPI properties; EWS exports are
                 rebuilt too and change with categories) the engine and verify match messages
                 by normalised identity instead (cutover/mailsync/normalised.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

SEPARATOR = "/"
INBOX = "INBOX"

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted")
_SYSTEM_FLAG_CASE = {flag.lower(): flag for flag in SYSTEM_FLAGS}

SPECIAL_USES = ("\\Sent", "\\Trash", "\\Junk", "\\Drafts", "\\Archive", "\\All", "\\Flagged")

#: Folder names that mean a special-use folder when the server does not say so (Exchange and
#: Outlook names first, then Dovecot/Thunderbird/Apple ones). Compared case-insensitively.
SPECIAL_USE_NAMES: dict[str, tuple[str, ...]] = {
    "\\Sent": ("Sent Items", "Sent", "Sent Messages", "Sent Mail"),
    "\\Trash": ("Deleted Items", "Trash", "Deleted Messages", "Bin"),
    "\\Junk": ("Junk E-mail", "Junk", "Junk Email", "Spam"),
    "\\Drafts": ("Drafts",),
    "\\Archive": ("Archive", "Archives"),
}


@dataclass(frozen=True)
class FolderInfo:
    """One folder of an account, with the counters a sync or an inventory needs."""

    name: str  # "/"-separated unicode path; "INBOX" for the inbox
    special_use: str | None = None  # "\\Sent", "\\Trash", ... or None
    selectable: bool = True  # False for \Noselect parents (they hold no messages)
    messages: int = 0
    size_bytes: int = 0  # sum of RFC822.SIZE over the folder's messages
    uidvalidity: int = 0
    uidnext: int = 0  # 0 when unknown
    # CONDSTORE HIGHESTMODSEQ; a store without CONDSTORE may give another change marker
    # (equal values mean nothing changed), or 0 when it cannot tell.
    highestmodseq: int = 0

    @property
    def parent(self) -> str | None:
        head, sep, _ = self.name.rpartition(SEPARATOR)
        return head if sep else None


@dataclass(frozen=True)
class MessageRef:
    """A message as listed, without its content."""

    uid: int
    size: int
    flags: frozenset[str]
    internaldate: datetime  # timezone-aware
    modseq: int = 0  # 0 when the store has no CONDSTORE


@dataclass(frozen=True)
class NewMessage:
    """What append() stores: exact bytes (never altered), flags and INTERNALDATE."""

    content: bytes
    flags: frozenset[str] = field(default_factory=frozenset)
    internaldate: datetime | None = None  # None: the store's "now"


@runtime_checkable
class MailboxSession(Protocol):
    """One open account. Use as a context manager; `close()` is idempotent."""

    user: str
    capabilities: frozenset[str]

    def folders(self) -> list[FolderInfo]:
        """Every folder, parents before children, \\Noselect parents included."""
        ...

    def folder(self, name: str) -> FolderInfo:
        """The current counters of one folder; NotFound if it does not exist."""
        ...

    def list_messages(self, folder: str) -> list[MessageRef]:
        """Every message of `folder` in UID order (flags, size, INTERNALDATE; no content)."""
        ...

    def fetch(self, folder: str, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """Stream (uid, exact bytes) for `uids`; UIDs expunged meanwhile are skipped. Only a
        bounded number of messages is held in memory at once."""
        ...

    def create_folder(self, name: str, special_use: str | None = None) -> None:
        """Create `name` (and missing parents). Idempotent: an existing folder is fine."""
        ...

    def delete_folder(self, name: str) -> None:
        """Remove an (empty or not) folder; a missing folder is fine."""
        ...

    def rename_folder(self, old: str, new: str) -> None:
        """Rename a folder keeping its messages (and, where the store can, their UIDs)."""
        ...

    def append(self, folder: str, items: Iterable[NewMessage]) -> list[int]:
        """Store `items` in order and return their new UIDs, in the same order."""
        ...

    def set_flags(self, folder: str, uids: Sequence[int], flags: frozenset[str]) -> None:
        """Make the flags of each message in `uids` exactly `flags` (system flags and keywords)."""
        ...

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        """Remove these messages for good (IMAP: \\Deleted + UID EXPUNGE)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> MailboxSession: ...

    def __exit__(self, *exc_info: Any) -> None: ...


@runtime_checkable
class MailStore(Protocol):
    """A configured mail system; `open(user)` is the only method that opens a session."""

    connector_kind: str

    def open(self, user: str) -> MailboxSession: ...

    def describe(self, user: str) -> str:
        """A password-free label for messages and reports, e.g. "imap://bob@host:143"."""
        ...


class SessionBase:
    """Context-manager plumbing and defaults shared by the implementations in this package."""

    user: str = ""
    capabilities: frozenset[str] = frozenset()

    def folder(self, name: str) -> FolderInfo:
        from cutover.errors import NotFound

        for info in self.folders():  # type: ignore[attr-defined]
            if info.name == name:
                return info
        raise NotFound(f"folder {name!r} does not exist in {self.user}")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def normalise_flags(flags: Iterable[str | bytes]) -> frozenset[str]:
    """Canonical flag set: system flags in RFC case, keywords as given, \\Recent dropped."""
    result = set()
    for flag in flags:
        text = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
        if not text or text.lower() == "\\recent":
            continue
        result.add(_SYSTEM_FLAG_CASE.get(text.lower(), text))
    return frozenset(result)


def guess_special_use(name: str) -> str | None:
    """The special use a top-level folder name implies ("Sent Items" -> "\\Sent"), else None."""
    lowered = name.lower()
    for use, names in SPECIAL_USE_NAMES.items():
        if lowered in (candidate.lower() for candidate in names):
            return use
    return None


def content_digest(content: bytes) -> str:
    """The identity of a message's bytes (sha256 hex), used to match copies across stores."""
    return hashlib.sha256(content).hexdigest()
