"""Microsoft Graph (v1.0) JSON for mail: pure parsing and building, strings in and values out.

The connector (cutover/connectors/graph.py) does the HTTP; everything that reads or writes a
Graph payload lives here so it can be tested with strings.

Mapping between the MailStore vocabulary and Graph:

- `\\Seen` is `isRead`; `\\Flagged` is `flag.flagStatus == "flagged"`; `\\Draft` is `isDraft`
  (read-only in Graph: fixed when a message is created).
- `\\Answered` and `$Forwarded` are MAPI's PR_LAST_VERB_EXECUTED (`Integer 0x1081`):
  102 reply to sender, 103 reply to all, 104 forward (what Outlook shows as the reply icon).
- Every other keyword (`$Label1`, `$Junk`, `Important`) is an Outlook category of that name.
- `\\Deleted` has no Graph counterpart: it is never reported and is ignored when set.
- INTERNALDATE is PR_MESSAGE_DELIVERY_TIME (`SystemTime 0x0E06`, Graph's receivedDateTime), the
  size is PR_MESSAGE_SIZE (`Integer 0x0E08`).
- A message created with PR_MESSAGE_FLAGS (`Integer 0x0E07`) without MSGFLAG_UNSENT (8) is a
  received message, not a draft; MSGFLAG_READ (1) marks it read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

# --- MAPI properties, in Graph's "{type} {tag}" notation -------------------------------------
PR_CLIENT_SUBMIT_TIME = "SystemTime 0x0039"
PR_TRANSPORT_MESSAGE_HEADERS = "String 0x007D"
PR_MESSAGE_DELIVERY_TIME = "SystemTime 0x0E06"
PR_MESSAGE_FLAGS = "Integer 0x0E07"
PR_MESSAGE_SIZE = "Integer 0x0E08"
PR_MESSAGE_SIZE_EXTENDED = "Long 0x0E08"  # on folders: total size of the folder's messages
PR_LAST_VERB_EXECUTED = "Integer 0x1081"

MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8

VERB_REPLY_TO_SENDER = 102
VERB_REPLY_TO_ALL = 103
VERB_FORWARD = 104

FORWARDED = "$Forwarded"

#: Graph's well-known folder names and the RFC 6154 special use each one stands for.
WELL_KNOWN_FOLDERS: dict[str, str | None] = {
    "inbox": None,  # the inbox is named "INBOX" rather than given a special use
    "sentitems": "\\Sent",
    "deleteditems": "\\Trash",
    "junkemail": "\\Junk",
    "drafts": "\\Drafts",
    "archive": "\\Archive",
}
SPECIAL_USE_FOLDERS = {use: name for name, use in WELL_KNOWN_FOLDERS.items() if use}

#: JSON create requests above this size go through an attachment-by-attachment upload instead.
INLINE_LIMIT = 3 * 1024 * 1024


class GraphPayloadError(ValueError):
    """A payload is not the JSON Graph documents (truncated, HTML error page, wrong shape)."""


# --- values -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphError:
    """The `error` object of a failed Graph call (`code` like "ErrorInvalidUser")."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class GraphFolder:
    id: str
    display_name: str
    parent_id: str
    child_count: int
    total_items: int
    size_bytes: int
    hidden: bool = False


@dataclass(frozen=True)
class GraphMessage:
    id: str
    internet_message_id: str | None
    size: int
    flags: frozenset[str]
    received: datetime
    is_draft: bool


@dataclass(frozen=True)
class Page:
    """One page of a collection and the link to the next one (None on the last page)."""

    values: list[dict[str, Any]]
    next_link: str | None


@dataclass(frozen=True)
class BatchResponse:
    id: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_principal_name: str
    mail: str | None
    addresses: frozenset[str]  # every SMTP address, lower-case (mail, UPN, proxyAddresses)
    enabled: bool = True


# --- generic --------------------------------------------------------------------------------------
def loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        raise GraphPayloadError("response is not JSON") from None


def parse_page(text: str | bytes) -> Page:
    data = loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise GraphPayloadError("collection response without a value list")
    return Page(data["value"], data.get("@odata.nextLink"))


def parse_error(status: int, text: str | bytes) -> GraphError:
    """The error of a failed call; tolerant of bodies that are not Graph JSON (proxies)."""
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return GraphError(status, str(error.get("code", "")), str(error.get("message", "")))
    if isinstance(error, str):  # the token endpoint's OAuth shape
        return GraphError(status, error, str(data.get("error_description", "")))
    return GraphError(status, "", "")


def aadsts_code(description: str) -> str:
    """The "AADSTS7000215" code at the start of an Entra ID error description, or ""."""
    head = description.split(":", 1)[0].strip()
    return head if head.startswith("AADSTS") else ""


def parse_datetime(text: str) -> datetime:
    """Graph's UTC timestamps ("2024-03-01T09:30:00Z", 7 fractional digits at times)."""
    cleaned = text.strip().replace("Z", "+00:00")
    head, dot, rest = cleaned.partition(".")
    if dot:  # Python accepts at most 6 fractional digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        cleaned = f"{head}.{digits[:6]}{zone}"
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def property_tag(property_id: str) -> tuple[str, int]:
    """("integer", 0xe07) for "Integer 0x0E07" or Graph's echo "Integer 0xe07"."""
    kind, _, tag = property_id.strip().partition(" ")
    return kind.lower(), int(tag, 16)


def extended_properties(item: dict[str, Any]) -> dict[tuple[str, int], str]:
    return {property_tag(prop["id"]): prop.get("value")
            for prop in item.get("singleValueExtendedProperties") or []
            if isinstance(prop, dict) and "id" in prop}


def extended_value(item: dict[str, Any], property_id: str) -> str | None:
    return extended_properties(item).get(property_tag(property_id))


def expand_properties(*property_ids: str) -> str:
    """The `$expand` value that returns these single-value extended properties."""
    condition = " or ".join(f"id eq '{pid}'" for pid in property_ids)
    return f"singleValueExtendedProperties($filter={condition})"


# --- folders ----------------------------------------------------------------------------------
def parse_folder(item: dict[str, Any]) -> GraphFolder:
    try:
        size = extended_value(item, PR_MESSAGE_SIZE_EXTENDED)
        return GraphFolder(
            id=str(item["id"]), display_name=str(item["displayName"]),
            parent_id=str(item.get("parentFolderId") or ""),
            child_count=int(item.get("childFolderCount") or 0),
            total_items=int(item.get("totalItemCount") or 0),
            size_bytes=int(size) if size is not None else 0,
            hidden=bool(item.get("isHidden", False)))
    except (KeyError, TypeError, ValueError):
        raise GraphPayloadError("mailFolder without id or displayName") from None


def folder_create_body(display_name: str) -> dict[str, Any]:
    return {"displayName": display_name, "isHidden": False}


# --- messages ---------------------------------------------------------------------------------
MESSAGE_SELECT = "id,internetMessageId,isRead,isDraft,flag,categories,receivedDateTime"
MESSAGE_EXPAND = expand_properties(PR_MESSAGE_SIZE, PR_LAST_VERB_EXECUTED)


def message_flags(item: dict[str, Any]) -> frozenset[str]:
    flags: set[str] = {category for category in item.get("categories") or [] if category}
    if item.get("isRead"):
        flags.add("\\Seen")
    if item.get("isDraft"):
        flags.add("\\Draft")
    if (item.get("flag") or {}).get("flagStatus") == "flagged":
        flags.add("\\Flagged")
    verb = extended_value(item, PR_LAST_VERB_EXECUTED)
    if verb is not None and int(verb) in (VERB_REPLY_TO_SENDER, VERB_REPLY_TO_ALL):
        flags.add("\\Answered")
    elif verb is not None and int(verb) == VERB_FORWARD:
        flags.add(FORWARDED)
    return frozenset(flags)


def parse_message(item: dict[str, Any]) -> GraphMessage:
    try:
        size = extended_value(item, PR_MESSAGE_SIZE)
        delivered = extended_value(item, PR_MESSAGE_DELIVERY_TIME) or item["receivedDateTime"]
        return GraphMessage(
            id=str(item["id"]), internet_message_id=item.get("internetMessageId"),
            size=int(size) if size is not None else 0, flags=message_flags(item),
            received=parse_datetime(delivered), is_draft=bool(item.get("isDraft", False)))
    except (KeyError, TypeError, ValueError):
        raise GraphPayloadError("message without id or receivedDateTime") from None


def _keywords(flags: frozenset[str]) -> list[str]:
    return sorted(flag for flag in flags if not flag.startswith("\\"))


def _verb(flags: frozenset[str]) -> int | None:
    if "\\Answered" in flags:
        return VERB_REPLY_TO_SENDER
    if FORWARDED in flags:
        return VERB_FORWARD
    return None


def _categories(flags: frozenset[str]) -> list[str]:
    """Keywords kept as categories: $Forwarded only when the verb already says "answered"."""
    verb = _verb(flags)
    return [k for k in _keywords(flags) if not (k == FORWARDED and verb == VERB_FORWARD)]


def flag_patch(flags: frozenset[str]) -> dict[str, Any]:
    """The PATCH body that makes a message's state exactly `flags` (\\Draft cannot change)."""
    body: dict[str, Any] = {
        "isRead": "\\Seen" in flags,
        "flag": {"flagStatus": "flagged" if "\\Flagged" in flags else "notFlagged"},
        "categories": _categories(flags),
    }
    verb = _verb(flags)
    # 0 clears the reply icon: the property is an integer, Graph cannot delete it by PATCH
    body["singleValueExtendedProperties"] = [
        {"id": PR_LAST_VERB_EXECUTED, "value": str(verb if verb is not None else 0)}]
    return body


def received_state_properties(flags: frozenset[str], internaldate: datetime,
                              sent: datetime | None = None) -> list[dict[str, str]]:
    """Extended properties that make a created message a received one, dated `internaldate`.
    PR_MESSAGE_FLAGS is honoured only at creation (later it is read-only)."""
    message_flags_value = MSGFLAG_READ if "\\Seen" in flags else 0
    props = [
        {"id": PR_MESSAGE_FLAGS, "value": str(message_flags_value)},
        {"id": PR_MESSAGE_DELIVERY_TIME, "value": format_datetime(internaldate)},
        {"id": PR_CLIENT_SUBMIT_TIME, "value": format_datetime(sent or internaldate)},
    ]
    verb = _verb(flags)
    if verb is not None:
        props.append({"id": PR_LAST_VERB_EXECUTED, "value": str(verb)})
    return props


def mime_request_body(content: bytes) -> bytes:
    """The body of a MIME create request (`Content-Type: text/plain`): base64 of the bytes."""
    return base64.b64encode(content)


def mime_followup_patch(flags: frozenset[str], internaldate: datetime | None) -> dict[str, Any]:
    """After a MIME create (always a draft): flags, categories and the delivery time."""
    body = flag_patch(flags)
    if internaldate is not None:
        body["singleValueExtendedProperties"].append(
            {"id": PR_MESSAGE_DELIVERY_TIME, "value": format_datetime(internaldate)})
    return body


# --- MIME -> Graph message JSON -----------------------------------------------------------------
def _recipients(message: EmailMessage, header: str) -> list[dict[str, Any]]:
    values = [str(v) for v in message.get_all(header, [])]
    result = []
    for name, address in getaddresses(values):
        if address:
            entry: dict[str, Any] = {"address": address}
            if name:
                entry["name"] = name
            result.append({"emailAddress": entry})
    return result


def _header_block(content: bytes) -> str:
    end = content.find(b"\r\n\r\n")
    if end < 0:
        end = content.find(b"\n\n")
    head = content if end < 0 else content[:end]
    return head.decode("utf-8", "replace").replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n"


def _body(message: EmailMessage) -> dict[str, str]:
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None:
        return {"contentType": "text", "content": ""}
    try:
        text = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    content_type = "html" if part.get_content_subtype() == "html" else "text"
    return {"contentType": content_type, "content": text if isinstance(text, str) else ""}


def _attachments(message: EmailMessage) -> list[dict[str, Any]]:
    result = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        if payload is None:  # an attached message (message/rfc822): keep its bytes
            inner = part.get_payload()
            payload = inner[0].as_bytes() if isinstance(inner, list) and inner else b""
        entry: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": part.get_filename() or ("message.eml" if part.get_content_type() ==
                                            "message/rfc822" else "attachment"),
            "contentType": part.get_content_type(),
            "contentBytes": base64.b64encode(payload).decode("ascii"),
            "isInline": (part.get("Content-Disposition") or "").lower().startswith("inline"),
        }
        content_id = part.get("Content-ID")
        if content_id:
            entry["contentId"] = content_id.strip().strip("<>")
        result.append(entry)
    return result


def message_create_body(content: bytes, flags: frozenset[str],
                        internaldate: datetime | None, now: datetime) -> dict[str, Any]:
    """A JSON message built from MIME bytes, created as received (not a draft), with the
    original header block kept in PR_TRANSPORT_MESSAGE_HEADERS (Outlook's "Internet headers")."""
    message = message_from_bytes(content, policy=policy.default)
    sent = None
    if message.get("Date"):
        try:
            sent = parsedate_to_datetime(str(message["Date"]))
        except (TypeError, ValueError):
            sent = None
        if sent is not None and sent.tzinfo is None:
            sent = sent.replace(tzinfo=UTC)
    delivered = internaldate or sent or now
    body: dict[str, Any] = {
        "subject": str(message.get("Subject", "")),
        "body": _body(message),
        "toRecipients": _recipients(message, "To"),
        "ccRecipients": _recipients(message, "Cc"),
        "bccRecipients": _recipients(message, "Bcc"),
        "replyTo": _recipients(message, "Reply-To"),
        "isRead": "\\Seen" in flags,
        "flag": {"flagStatus": "flagged" if "\\Flagged" in flags else "notFlagged"},
        "categories": _categories(flags),
        "singleValueExtendedProperties": received_state_properties(flags, delivered, sent) + [
            {"id": PR_TRANSPORT_MESSAGE_HEADERS, "value": _header_block(content)}],
    }
    sender = _recipients(message, "From")
    if sender:
        body["from"] = sender[0]
        body["sender"] = (_recipients(message, "Sender") or sender)[0]
    message_id = message.get("Message-ID")
    if message_id:
        body["internetMessageId"] = str(message_id).strip()
    attachments = _attachments(message)
    if attachments:
        body["attachments"] = attachments
    return body


def split_attachments(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(message without attachments, attachments) for bodies too large for one request."""
    rest = {key: value for key, value in body.items() if key != "attachments"}
    return rest, list(body.get("attachments") or [])


def encoded_size(body: dict[str, Any]) -> int:
    return len(json.dumps(body).encode())


# --- $batch -------------------------------------------------------------------------------------
def batch_request(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON batch body; each request is {id, method, url[, body]} with a relative url."""
    if len(requests) > 20:
        raise ValueError("a Graph JSON batch holds at most 20 requests")
    prepared = []
    for request in requests:
        entry = dict(request)
        if "body" in entry:
            entry.setdefault("headers", {"Content-Type": "application/json"})
        prepared.append(entry)
    return {"requests": prepared}


def parse_batch_response(text: str | bytes) -> dict[str, BatchResponse]:
    data = loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("responses"), list):
        raise GraphPayloadError("batch response without a responses list")
    result = {}
    for item in data["responses"]:
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        result[str(item["id"])] = BatchResponse(str(item["id"]), int(item["status"]), headers,
                                                item.get("body"))
    return result


# --- directory ----------------------------------------------------------------------------------
USER_SELECT = "id,mail,userPrincipalName,proxyAddresses,accountEnabled"


def parse_user(item: dict[str, Any]) -> DirectoryUser:
    try:
        upn = str(item["userPrincipalName"])
    except KeyError:
        raise GraphPayloadError("user without userPrincipalName") from None
    addresses = {upn.lower()}
    mail = item.get("mail")
    if mail:
        addresses.add(str(mail).lower())
    for proxy in item.get("proxyAddresses") or []:
        scheme, _, address = str(proxy).partition(":")
        if scheme.lower() == "smtp" and address:
            addresses.add(address.lower())
    return DirectoryUser(id=str(item.get("id") or upn), user_principal_name=upn,
                         mail=str(mail) if mail else None, addresses=frozenset(addresses),
                         enabled=bool(item.get("accountEnabled", True)))
