"""Which target message is the copy of which source message, when the target cannot keep bytes.

Exchange Online (the `graph` store) keeps MAPI properties and rebuilds MIME on every read, so a
copy never has the source's content digest. A store that does keep bytes advertises
EXACT-CONTENT (see cutover/connectors/mailstore.py); for the others a message is known by:

1. its Message-ID (unfolded, without angle brackets, lower-case), else
2. a digest of a few headers normalised the way a rebuild cannot change them: Date as a UTC
   instant to the second, the From address (lower-case, no display name), the decoded Subject
   with whitespace collapsed, and a coarse bucket of the body text size (4x wide: a rebuild
   re-encodes and re-wraps the body, it does not double it).

Exchange gives a message without Message-ID one of its own, so matching is two passes: equal
Message-IDs first, then the messages left over (source ones without Message-ID, target ones
whose Message-ID the source does not know) by the header digest.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import TypeVar

from cutover.connectors.mailstore import MailboxSession

EXACT_CONTENT = "EXACT-CONTENT"

#: The system flags every store keeps; \\Draft is read-only in Exchange Online and \\Deleted
#: means "about to go", so neither takes part in a normalised comparison.
COMPARED_SYSTEM_FLAGS = frozenset({"\\Seen", "\\Flagged", "\\Answered"})

_WHITESPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")

T = TypeVar("T")


@dataclass(frozen=True)
class MessageIdentity:
    message_id: str | None  # normalised; None when the message has none
    headers: str  # sha256 of the normalised Date, From, Subject and body size bucket


def keeps_exact_content(*sessions: MailboxSession) -> bool:
    """True when digests can be compared: every session returns the bytes it was given."""
    return all(EXACT_CONTENT in session.capabilities for session in sessions)


def compared_flags(flags: Iterable[str]) -> frozenset[str]:
    """The flags a normalised comparison looks at: \\Seen \\Flagged \\Answered and keywords."""
    return frozenset(f for f in flags if f in COMPARED_SYSTEM_FLAGS or not f.startswith("\\"))


def message_identity(content: bytes) -> MessageIdentity:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(content)
    fields = (_date(headers.get("Date")), _sender(headers.get("From")),
              _subject(headers.get("Subject")), str(body_size_bucket(content)))
    digest = hashlib.sha256("\n".join(fields).encode("utf-8", "replace")).hexdigest()
    return MessageIdentity(_message_id(headers.get("Message-ID")), digest)


def body_size_bucket(content: bytes) -> int:
    """0 for an empty body, else grows by one each time the body text is 4x longer."""
    characters = _body_characters(content)
    return characters.bit_length() // 2 + 1 if characters else 0


def _message_id(value: object) -> str | None:
    text = _unfold(value)
    if not text:
        return None
    found = re.search(r"<([^<>]+)>", text)
    return (found.group(1) if found else text).strip().lower() or None


def _date(value: object) -> str:
    text = _unfold(value)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return text  # unreadable: compared as written
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp()))


def _sender(value: object) -> str:
    text = _decoded(value)
    addresses = [address for _, address in getaddresses([text]) if address]
    return addresses[0].lower() if addresses else text.lower()


def _subject(value: object) -> str:
    return _decoded(value)


def _decoded(value: object) -> str:
    text = _unfold(value)
    try:
        text = str(make_header(decode_header(text)))
    except (LookupError, ValueError, UnicodeError):
        pass  # an unknown charset: keep the encoded words as they are
    return _WHITESPACE.sub(" ", text).strip()


def _unfold(value: object) -> str:
    if value is None:
        return ""
    return _WHITESPACE.sub(" ", str(value)).strip()


def _body_characters(content: bytes) -> int:
    """Non-whitespace characters of the main text (plain preferred, HTML without tags)."""
    try:
        message = message_from_bytes(content, policy=policy.default)
        part = message.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
        if part is None:
            return 0
        text = part.get_content()
        if part.get_content_subtype() == "html":
            text = _TAG.sub("", text)
    except Exception:  # noqa: BLE001 - malformed MIME fails in assorted ways: use raw bytes
        _, _, raw = content.partition(b"\r\n\r\n")
        text = raw.decode("utf-8", "replace")
    return len(_WHITESPACE.sub("", text))


def pair_up(left: Sequence[tuple[MessageIdentity, T]],
            right: Sequence[tuple[MessageIdentity, T]]) -> list[tuple[list[T], list[T]]]:
    """Group both sides into (left items, right items) that are the same message (several on a
    side when duplicated). A group with one side empty is a missing or an extra message."""
    left_ids = {identity.message_id for identity, _ in left if identity.message_id}
    by_id: dict[str, tuple[list[T], list[T]]] = defaultdict(lambda: ([], []))
    by_headers: dict[str, tuple[list[T], list[T]]] = defaultdict(lambda: ([], []))
    for identity, item in left:
        if identity.message_id:
            by_id[identity.message_id][0].append(item)
        else:
            by_headers[identity.headers][0].append(item)
    for identity, item in right:
        if identity.message_id in left_ids:
            by_id[identity.message_id][1].append(item)
        else:  # no Message-ID, or one the target made up for a source message without one
            by_headers[identity.headers][1].append(item)
    return [*by_id.values(), *by_headers.values()]


class IdentityPool:
    """Target messages waiting to be claimed by the source message they copy (re-matching
    after an interrupted run): by Message-ID, else by the header digest."""

    def __init__(self, entries: Iterable[tuple[MessageIdentity, int]]):
        self.by_id: dict[str, list[int]] = defaultdict(list)
        self.by_headers: dict[str, list[int]] = defaultdict(list)
        self.taken: set[int] = set()
        for identity, uid in entries:
            if identity.message_id:
                self.by_id[identity.message_id].append(uid)
            self.by_headers[identity.headers].append(uid)

    def take(self, identity: MessageIdentity) -> int | None:
        candidates = self.by_id.get(identity.message_id or "") if identity.message_id \
            else self.by_headers.get(identity.headers)
        for uid in candidates or []:
            if uid not in self.taken:
                self.taken.add(uid)
                return uid
        return None
