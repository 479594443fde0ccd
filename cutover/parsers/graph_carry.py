"""What the Graph copy path carries besides mail: a mailbox's contacts and its inbox rules, as
Microsoft Graph (v1.0) JSON. Pure: inventory values and Graph payloads in, Graph payloads out.

Inbox rules. The EWS inventory keeps each rule's Conditions, Exceptions and Actions under their
EWS element names (cutover/connectors/exchange/ews_inventory.py::rule_summary). Graph's
`messageRule` (POST /users/{id}/mailFolders/inbox/messageRules) has a predicate for most EWS
conditions (messageRulePredicates) and an action for most EWS actions (messageRuleActions);
those without one are listed per rule, with why. A rule is carried only when ALL of it maps:
a rule without one of its conditions would match more mail than it did (a "delete" rule would
delete mail it never touched), and one without one of its actions would silently do less.

Contacts. A contact is written in Graph's `contact` shape (POST /users/{id}/contacts, the
default contacts folder). Two contacts are the same person when they share an email address
(or, without any, the same display name): a re-run matches the ones already there and never
creates a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# --- inbox rules ----------------------------------------------------------------------------
#: EWS condition (RulePredicatesType) -> Graph messageRulePredicates property; the value kind
#: says how the value converts ("strings", "bool", "recipients", or a special one).
PREDICATES: dict[str, tuple[str, str]] = {
    "Categories": ("categories", "strings"),
    "ContainsBodyStrings": ("bodyContains", "strings"),
    "ContainsHeaderStrings": ("headerContains", "strings"),
    "ContainsRecipientStrings": ("recipientContains", "strings"),
    "ContainsSenderStrings": ("senderContains", "strings"),
    "ContainsSubjectOrBodyStrings": ("bodyOrSubjectContains", "strings"),
    "ContainsSubjectStrings": ("subjectContains", "strings"),
    "FlaggedForAction": ("messageActionFlag", "flag"),
    "FromAddresses": ("fromAddresses", "recipients"),
    "HasAttachments": ("hasAttachments", "bool"),
    "Importance": ("importance", "lower"),
    "IsApprovalRequest": ("isApprovalRequest", "bool"),
    "IsAutomaticForward": ("isAutomaticForward", "bool"),
    "IsAutomaticReply": ("isAutomaticReply", "bool"),
    "IsEncrypted": ("isEncrypted", "bool"),
    "IsMeetingRequest": ("isMeetingRequest", "bool"),
    "IsMeetingResponse": ("isMeetingResponse", "bool"),
    "IsNDR": ("isNonDeliveryReport", "bool"),
    "IsPermissionControlled": ("isPermissionControlled", "bool"),
    "IsReadReceipt": ("isReadReceipt", "bool"),
    "IsSigned": ("isSigned", "bool"),
    "IsVoicemail": ("isVoicemail", "bool"),
    "NotSentToMe": ("notSentToMe", "bool"),
    "SentCcMe": ("sentCcMe", "bool"),
    "SentOnlyToMe": ("sentOnlyToMe", "bool"),
    "SentToAddresses": ("sentToAddresses", "recipients"),
    "SentToMe": ("sentToMe", "bool"),
    "SentToOrCcMe": ("sentToOrCcMe", "bool"),
    "Sensitivity": ("sensitivity", "lower"),
    "WithinSizeRange": ("withinSizeRange", "size"),
}
#: EWS conditions Graph has no predicate for, and what that means for the operator.
UNMAPPED_PREDICATES: dict[str, str] = {
    "FromConnectedAccounts": "mail fetched from a connected account: Exchange Online has no "
                             "connected accounts",
    "ItemClasses": "the message class (ItemClasses): Graph has no message-class predicate",
    "MessageClassifications": "a message classification: Graph has no classification "
                              "predicate",
    "WithinDateRange": "a date range: Graph has no date predicate",
}
#: EWS action (ActionsType) -> Graph messageRuleActions property and value kind.
ACTIONS: dict[str, tuple[str, str]] = {
    "AssignCategories": ("assignCategories", "strings"),
    "CopyToFolder": ("copyToFolder", "folder"),
    "Delete": ("delete", "bool"),
    "ForwardAsAttachmentToRecipients": ("forwardAsAttachmentTo", "recipients"),
    "ForwardToRecipients": ("forwardTo", "recipients"),
    "MarkAsRead": ("markAsRead", "bool"),
    "MarkImportance": ("markImportance", "lower"),
    "MoveToFolder": ("moveToFolder", "folder"),
    "PermanentDelete": ("permanentDelete", "bool"),
    "RedirectToRecipients": ("redirectTo", "recipients"),
    "StopProcessingRules": ("stopProcessingRules", "bool"),
}
UNMAPPED_ACTIONS: dict[str, str] = {
    "SendSMSAlertToRecipients": "an SMS alert: Graph has no text-message action",
    "ServerReplyWithMessage": "a reply with a stored message (a template item in the "
                              "on-premises mailbox): Graph has no reply action",
}
#: EWS FlaggedForAction values -> Graph messageActionFlag values.
FLAGS = {"Any": "any", "Call": "call", "DoNotForward": "doNotForward", "FollowUp": "followUp",
         "FYI": "fyi", "Forward": "forward", "NoResponseNecessary": "noResponseNecessary",
         "Read": "read", "Reply": "reply", "ReplyToAll": "replyToAll", "Review": "review"}

#: resolves a folder as the inventory names it (a well-known name or a display name) to the id
#: of that folder in the target mailbox, or None when it is not there
FolderLookup = Callable[[str], str | None]


def rule_name(rule: dict[str, Any]) -> str:
    return str(rule.get("name") or rule.get("displayName") or "")


def message_rule(rule: dict[str, Any], folder_id: FolderLookup
                 ) -> tuple[dict[str, Any] | None, list[str]]:
    """An inventoried rule as the body of a Graph messageRule create request, or None and
    every reason it cannot be one."""
    kind = rule.get("kind", "inbox-rule")
    if kind != "inbox-rule":
        return None, [f"a {kind} rule, not an Exchange inbox rule (phase 1 carries those)"]
    if "actions" not in rule:
        return None, ["the inventory holds no conditions or actions for it (collect the "
                      "inventory again with the ews source)"]
    if not rule_name(rule):
        return None, ["it has no name (Graph needs a displayName)"]
    why: list[str] = []
    conditions = _predicates(rule.get("conditions") or {}, "condition", why)
    exceptions = _predicates(rule.get("exceptions") or {}, "exception", why)
    actions: dict[str, Any] = {}
    for name, value in sorted((rule.get("actions") or {}).items()):
        if name in UNMAPPED_ACTIONS:
            why.append(f"action {name}: {UNMAPPED_ACTIONS[name]}")
        elif name not in ACTIONS:
            why.append(f"action {name}: unknown to cutover")
        else:
            graph_name, kind_of = ACTIONS[name]
            converted = _value(kind_of, value, folder_id)
            if converted is None and kind_of == "folder":
                why.append(f"action {name}: folder {value!r} is not in the cloud mailbox "
                           "(the mail copy creates it: preview again after it)")
            elif converted is not None:
                actions[graph_name] = converted
    if not actions and not why:
        why.append("no action that Graph can carry out")
    if why:
        return None, why
    body: dict[str, Any] = {"displayName": rule_name(rule),
                            "sequence": max(1, int(rule.get("priority") or 1)),
                            "isEnabled": rule.get("enabled", True) is not False,
                            "actions": actions}
    if conditions:
        body["conditions"] = conditions
    if exceptions:
        body["exceptions"] = exceptions
    return body, []


def _predicates(given: dict[str, Any], what: str, why: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in sorted(given.items()):
        if name in UNMAPPED_PREDICATES:
            why.append(f"{what} {name}: {UNMAPPED_PREDICATES[name]}")
        elif name not in PREDICATES:
            why.append(f"{what} {name}: unknown to cutover")
        else:
            graph_name, kind_of = PREDICATES[name]
            converted = _value(kind_of, value, None)
            if converted is None and kind_of == "flag":
                why.append(f"{what} {name}: flag {value!r} has no Graph value")
            elif converted is not None:
                result[graph_name] = converted
    return result


def _value(kind: str, value: Any, folder_id: FolderLookup | None) -> Any:
    if value in (None, [], "", False):
        return None  # an empty or false EWS predicate is no predicate at all
    if kind == "strings":
        return [str(v) for v in value]
    if kind == "bool":
        return bool(value)
    if kind == "lower":
        return str(value)[:1].lower() + str(value)[1:]
    if kind == "flag":
        return FLAGS.get(str(value))
    if kind == "recipients":
        return [_recipient(v) for v in value]
    if kind == "size":
        size = {}
        if value.get("MinimumSize") is not None:
            size["minimumSize"] = int(value["MinimumSize"])
        if value.get("MaximumSize") is not None:
            size["maximumSize"] = int(value["MaximumSize"])
        return size or None
    if kind == "folder":
        return folder_id(str(value)) if folder_id is not None else None
    raise ValueError(kind)


def _recipient(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        address = {"address": str(value.get("address", "")).lower()}
        if value.get("name"):
            address["name"] = str(value["name"])
        return {"emailAddress": address}
    return {"emailAddress": {"address": str(value).lower()}}


def comparable_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The part of a messageRule that says what it does, normalised the way Exchange Online
    stores it: strings compare case-insensitively (it upper-cases some), recipients by
    address, and read-only or empty properties are left out."""
    return {"displayName": str(rule.get("displayName", "")),
            "sequence": rule.get("sequence"), "isEnabled": rule.get("isEnabled", True),
            **{part: _normalised(rule.get(part) or {}) for part in
               ("conditions", "exceptions", "actions")}}


def _normalised(predicates: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in predicates.items():
        if value in (None, [], False, {}) or name.startswith("@"):
            continue
        if isinstance(value, list):
            result[name] = sorted(
                str((v.get("emailAddress") or {}).get("address", "")).lower()
                if isinstance(v, dict) else str(v).lower() for v in value)
        elif isinstance(value, str):
            result[name] = value if name.endswith("Folder") else value.lower()
        else:
            result[name] = value
    return result


# --- contacts -------------------------------------------------------------------------------
#: The contact properties carried (Graph's names), strings, string lists or structures.
CONTACT_FIELDS = ("displayName", "givenName", "middleName", "surname", "nickName", "title",
                  "initials", "generation", "fileAs", "companyName", "department", "jobTitle",
                  "officeLocation", "profession", "manager", "assistantName", "birthday",
                  "businessHomePage", "emailAddresses", "imAddresses", "businessPhones",
                  "homePhones", "mobilePhone", "businessAddress", "homeAddress",
                  "otherAddress", "personalNotes", "categories")


def contact_body(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as the body of a create request: only carried, non-empty properties."""
    body = {}
    for name in CONTACT_FIELDS:
        value = contact.get(name)
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None, "")}
        if value in (None, "", [], {}):
            continue
        if name == "emailAddresses":
            value = [{k: v for k, v in {"name": a.get("name"),
                                         "address": str(a.get("address", "")).lower()}.items()
                      if v} for a in value if a.get("address")]
        body[name] = value
    return body


def contact_addresses(contact: dict[str, Any]) -> set[str]:
    return {str(a.get("address", "")).lower() for a in contact.get("emailAddresses") or []
            if a.get("address")}


def same_person(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Two contacts stand for the same person: a shared address, or, when neither has one,
    the same display name."""
    mine, theirs = contact_addresses(one), contact_addresses(other)
    if mine or theirs:
        return bool(mine & theirs)
    return str(one.get("displayName", "")).strip().lower() == \
        str(other.get("displayName", "")).strip().lower() != ""


def contact_as_sent(sent: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """`found` (as Graph returns it) reduced to the properties `sent` set, in `sent`'s shape:
    equal to `sent` when the contact holds what was created."""
    return contact_body({name: found.get(name) for name in sent}) if found else {}


def same_contact(sent: dict[str, Any], found: dict[str, Any]) -> bool:
    return contact_key(contact_as_sent(sent, found)) == contact_key(sent)


def contact_key(contact: dict[str, Any]) -> dict[str, Any]:
    key = dict(contact)
    if "emailAddresses" in key:  # Exchange fills a missing name with the address
        key["emailAddresses"] = sorted(contact_addresses(contact))
    if key.get("birthday"):  # Exchange keeps a birthday at its own time of day (11:59)
        key["birthday"] = str(key["birthday"])[:10]
    return key
