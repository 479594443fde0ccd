"""EWS SOAP for the inventory: request bodies out, response XML in, plain values back. Pure.

Operations: GetSearchableMailboxes (every mailbox the account may search: the Discovery
Management role), ResolveNames (display name, mailbox type, proxy addresses), FindFolder deep
from msgfolderroot with PR_MESSAGE_SIZE_EXTENDED (0x0E08) per folder, FindItem for the newest
INBOX item, GetInboxRules (forward/redirect actions), GetDelegate. Plus the POX Autodiscover
response. A response whose ResponseCode is ErrorServerBusy becomes ServerBusy with the
BackOffMilliseconds hint Exchange sends.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

NS = {"s": "http://schemas.xmlsoap.org/soap/envelope/",
      "m": "http://schemas.microsoft.com/exchange/services/2006/messages",
      "t": "http://schemas.microsoft.com/exchange/services/2006/types"}
AD_NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
         "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
SIZE_TAG = "0x0e08"


class EwsResponseError(Exception):
    """A response message with a ResponseCode other than NoError."""

    def __init__(self, code: str, text: str):
        super().__init__(f"{code}: {text}")
        self.code = code


class ServerBusy(EwsResponseError):
    def __init__(self, code: str, text: str, back_off_ms: int):
        super().__init__(code, text)
        self.back_off_ms = back_off_ms


def envelope(body: str, impersonate: str | None = None, version: str = "Exchange2013_SP1") -> str:
    header = f'<t:RequestServerVersion Version="{version}"/>'
    if impersonate:
        header += ("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
                   f"{escape(impersonate)}</t:PrimarySmtpAddress></t:ConnectingSID>"
                   "</t:ExchangeImpersonation>")
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:m="{NS["m"]}" xmlns:t="{NS["t"]}">'
            f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>")


def get_searchable_mailboxes() -> str:
    return ("<m:GetSearchableMailboxes><m:ExpandGroupMembership>false"
            "</m:ExpandGroupMembership></m:GetSearchableMailboxes>")


def resolve_names(address: str) -> str:
    return ('<m:ResolveNames ReturnFullContactData="true" SearchScope="ActiveDirectory">'
            f"<m:UnresolvedEntry>smtp:{escape(address)}</m:UnresolvedEntry></m:ResolveNames>")


def find_folders(address: str) -> str:
    return ('<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape>'
            '<t:AdditionalProperties><t:FieldURI FieldURI="folder:ParentFolderId"/>'
            f'<t:ExtendedFieldURI PropertyTag="{SIZE_TAG}" PropertyType="Long"/>'
            "</t:AdditionalProperties></m:FolderShape><m:ParentFolderIds>"
            '<t:DistinguishedFolderId Id="msgfolderroot"><t:Mailbox><t:EmailAddress>'
            f"{escape(address)}</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"
            "</m:ParentFolderIds></m:FindFolder>")


def find_newest_item(address: str) -> str:
    return ('<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
            '<t:AdditionalProperties><t:FieldURI FieldURI="item:DateTimeReceived"/>'
            '</t:AdditionalProperties></m:ItemShape><m:IndexedPageItemView '
            'MaxEntriesReturned="1" Offset="0" BasePoint="Beginning"/><m:SortOrder>'
            '<t:FieldOrder Order="Descending"><t:FieldURI FieldURI="item:DateTimeReceived"/>'
            '</t:FieldOrder></m:SortOrder><m:ParentFolderIds><t:DistinguishedFolderId '
            f'Id="inbox"><t:Mailbox><t:EmailAddress>{escape(address)}</t:EmailAddress>'
            "</t:Mailbox></t:DistinguishedFolderId></m:ParentFolderIds></m:FindItem>")


def get_inbox_rules(address: str) -> str:
    return (f"<m:GetInboxRules><m:MailboxSmtpAddress>{escape(address)}</m:MailboxSmtpAddress>"
            "</m:GetInboxRules>")


def get_delegates(address: str) -> str:
    return ('<m:GetDelegate IncludePermissions="true"><m:Mailbox><t:EmailAddress>'
            f"{escape(address)}</t:EmailAddress></m:Mailbox></m:GetDelegate>")


def autodiscover_request(address: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.'
            'microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request>'
            f"<EMailAddress>{escape(address)}</EMailAddress><AcceptableResponseSchema>"
            f'{AD_NS["o"]}</AcceptableResponseSchema></Request></Autodiscover>')


# --- responses ---------------------------------------------------------------------------------

def _text(element: ET.Element | None, path: str) -> str | None:
    if element is None:
        return None
    found = element.find(path, NS)
    return found.text if found is not None and found.text is not None else None


def response_messages(xml: str | bytes) -> list[ET.Element]:
    """The response messages of a SOAP body; raises the first error (ServerBusy included)."""
    root = ET.fromstring(xml)
    fault = root.find(".//s:Fault", NS)
    if fault is not None:
        raise EwsResponseError("SOAPFault", fault.findtext("faultstring") or "SOAP fault")
    messages = [m for m in root.iter() if m.get("ResponseClass") is not None]
    for message in messages:
        code = _text(message, "m:ResponseCode") or "NoError"
        if code == "NoError" or (code == "ErrorNameResolutionMultipleResults"):
            continue
        text = _text(message, "m:MessageText") or code
        if code == "ErrorServerBusy":
            back_off = 0
            for value in message.iterfind("m:MessageXml/t:Value", NS):
                if value.get("Name") == "BackOffMilliseconds" and value.text:
                    back_off = int(value.text)
            raise ServerBusy(code, text, back_off)
        raise EwsResponseError(code, text)
    return messages


def parse_searchable_mailboxes(xml: str | bytes) -> list[dict[str, Any]]:
    result = []
    for message in response_messages(xml):
        for box in message.iterfind(".//t:SearchableMailbox", NS):
            if (_text(box, "t:IsExternalMailbox") or "false") == "true":
                continue
            result.append({"address": (_text(box, "t:PrimarySmtpAddress") or "").lower(),
                           "display_name": _text(box, "t:DisplayName") or "",
                           "guid": _text(box, "t:Guid"),
                           "group": (_text(box, "t:IsMembershipGroup") or "false") == "true"})
    return result


def parse_resolution(xml: str | bytes) -> dict[str, Any]:
    messages = response_messages(xml)
    resolution = messages[0].find(".//t:Resolution", NS) if messages else None
    if resolution is None:
        return {}
    addresses = [e.text for e in resolution.iterfind("t:Contact/t:EmailAddresses/t:Entry", NS)
                 if e.text]
    return {"display_name": _text(resolution, "t:Mailbox/t:Name") or "",
            "mailbox_type": _text(resolution, "t:Mailbox/t:MailboxType"),
            "proxy_addresses": addresses}


def parse_folders(xml: str | bytes) -> list[dict[str, Any]]:
    folders = []
    for message in response_messages(xml):
        for folder in message.iterfind(".//t:Folders/*", NS):
            size = 0
            for prop in folder.iterfind("t:ExtendedProperty", NS):
                uri = prop.find("t:ExtendedFieldURI", NS)
                if uri is not None and int(uri.get("PropertyTag", "0"), 16) == int(SIZE_TAG, 16):
                    size = int(_text(prop, "t:Value") or 0)
            folders.append({"name": _text(folder, "t:DisplayName") or "",
                            "class": _text(folder, "t:FolderClass"),
                            "messages": int(_text(folder, "t:TotalCount") or 0),
                            "size_bytes": size})
    return folders


def parse_newest_item(xml: str | bytes) -> str | None:
    for message in response_messages(xml):
        received = _text(message, ".//t:Items/*/t:DateTimeReceived")
        if received:
            return received
    return None


def _recipients(rule: ET.Element, action: str) -> list[str]:
    return [a.text.lower() for a in rule.iterfind(
        f"t:Actions/t:{action}/t:Address/t:EmailAddress", NS) if a.text]


def parse_inbox_rules(xml: str | bytes) -> list[dict[str, Any]]:
    rules = []
    for message in response_messages(xml):
        for rule in message.iterfind(".//m:InboxRules/t:Rule", NS):
            forward = _recipients(rule, "ForwardToRecipients") + _recipients(
                rule, "ForwardAsAttachmentToRecipients")
            redirect = _recipients(rule, "RedirectToRecipients")
            rules.append({"kind": "inbox-rule", "name": _text(rule, "t:DisplayName") or "",
                          "enabled": (_text(rule, "t:IsEnabled") or "true") == "true",
                          "forward_to": sorted(set(forward + redirect)),
                          "redirect": bool(redirect)})
    return rules


def parse_delegates(xml: str | bytes) -> list[dict[str, Any]]:
    delegates = []
    messages = response_messages(xml)
    for message in messages[:1]:  # the outer response holds every DelegateUser
        for user in message.iterfind(".//m:DelegateUser", NS):
            permissions = user.find("t:DelegatePermissions", NS)
            delegates.append({
                "address": (_text(user, "t:UserId/t:PrimarySmtpAddress") or "").lower(),
                "permissions": {p.tag.split("}")[1]: p.text for p in permissions}
                if permissions is not None else {}})
    return delegates


def parse_autodiscover(xml: str | bytes) -> dict[str, str | None]:
    """EwsUrl (internal EXCH first, then EXPR) or a redirect address."""
    root = ET.fromstring(xml)
    redirect = root.findtext(".//o:Account/o:RedirectAddr", namespaces=AD_NS)
    urls = {p.findtext("o:Type", namespaces=AD_NS): p.findtext("o:EwsUrl", namespaces=AD_NS)
            for p in root.iterfind(".//o:Account/o:Protocol", AD_NS)}
    error = root.findtext(".//a:Error/a:Message", namespaces=AD_NS)
    return {"ews_url": urls.get("EXCH") or urls.get("EXPR"), "redirect": redirect,
            "error": error}
