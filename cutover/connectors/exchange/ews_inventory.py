"""Inventory source: Exchange on-premises through EWS (read-only, exchangelib).

    inventory:
      sources:
        exchange-ews:
          kind: ews-inventory
          server: mail.example.org           # or autodiscover_email: svc-inventory@example.org
          username: EXAMPLE\\svc-inventory
          password: env/EWS_PASSWORD          # a reference, never the secret
          auth: ntlm                          # ntlm (default) or basic
          mailboxes: []                       # default: GetSearchableMailboxes (all reachable)

The service account needs ApplicationImpersonation (folders, rules, newest item, delegates)
and Discovery Management (GetSearchableMailboxes). Requests, all through exchangelib with the
server version pinned to Exchange 2016 (no version-guessing round trip):
- `Protocol.get_searchable_mailboxes()` once, unless `mailboxes:` lists them;
- per mailbox, impersonated: GetFolder root and msgfolderroot, then one deep FindFolder with
  TotalCount and PR_MESSAGE_SIZE_EXTENDED (0x0E08) per folder; FindItem for the newest item of
  the Inbox; `Account.rules` (GetInboxRules) and `Account.delegates` (GetDelegate);
- `Protocol.resolve_names()` (ResolveNames, Active Directory) for display name, mailbox type
  and proxy addresses; a mailbox hidden from the address book keeps what
  GetSearchableMailboxes said, with a warning.
With `autodiscover_email`, exchangelib's SOAP Autodiscover finds the EWS URL once.
ErrorServerBusy is retried after the BackOffMilliseconds Exchange asks for (tenacity;
exchangelib runs with FailFast so that it never sleeps on its own). EWS has no mailbox
forwarding attribute (that is Get-Mailbox's ForwardingSmtpAddress): forwarding here comes from
inbox rules; EWS cannot tell user from shared mailboxes either, so combine with the CSV source
for types when that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import tenacity

from cutover.connectors.base import connector
from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    CutoverError,
    NotFound,
)

ATTEMPTS = 5
EXCHANGE_2016 = (15, 1)
SIZE_PROPERTY = "pr_message_size_extended"
MAILBOX_TYPES = {"Mailbox": "user", "PublicDL": "group", "PrivateDL": "group",
                 "Contact": "contact", "PublicFolder": "public-folder", "GroupMailbox":
                 "group-mailbox", "LinkedMailbox": "user"}
T = TypeVar("T")


class MailboxSkipped(CutoverError):
    """EWS answered with an error for one mailbox; the inventory goes on without it."""


def _register_size_property() -> None:
    """PR_MESSAGE_SIZE_EXTENDED as a Folder field (exchangelib registers on the Folder class)."""
    from exchangelib.extended_properties import ExtendedProperty
    from exchangelib.folders import Folder

    class MessageSizeExtended(ExtendedProperty):
        property_tag = 0x0E08
        property_type = "Long"

    try:
        Folder.register(SIZE_PROPERTY, MessageSizeExtended)
    except ValueError:
        pass  # registered by an earlier source in this process


def _wait_for_back_off(retry_state: tenacity.RetryCallState) -> float:
    """The BackOffMilliseconds hint (exchangelib gives it in seconds), else exponential."""
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    back_off = getattr(exc, "back_off", None)
    if back_off:
        return float(back_off)
    return float(min(2 ** retry_state.attempt_number, 30))


def _is_server_busy(exc: BaseException) -> bool:
    from exchangelib.errors import ErrorServerBusy

    return isinstance(exc, ErrorServerBusy)


@connector("ews", role="inventory-source", aliases=("ews-inventory",))
class EwsInventory:
    def __init__(self, username: str, password: Callable[[], str], server: str | None,
                 autodiscover_email: str | None, auth: str = "ntlm",
                 mailboxes: list[str] | None = None,
                 sleep: Callable[[float], None] = tenacity.nap.sleep):
        self.username = username
        self._password = password
        self.server = server
        self.autodiscover_email = autodiscover_email
        self.auth = auth
        self.mailboxes = [m.lower() for m in mailboxes or []]
        self.sleep = sleep  # tests replace it: no real waiting for back-off hints
        self.ews_url: str | None = f"https://{server}/EWS/Exchange.asmx" if server else None
        self._config: Any = None

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> EwsInventory:
        if not config.get("username") or not config.get("password"):
            raise ConfigInvalid("cutover.yaml: an ews-inventory source needs username and "
                                "password: env/NAME or file/PATH")
        if not config.get("server") and not config.get("autodiscover_email"):
            raise ConfigInvalid("cutover.yaml: an ews-inventory source needs server or "
                                "autodiscover_email")
        if str(config.get("auth", "ntlm")) not in ("ntlm", "basic"):
            raise ConfigInvalid("cutover.yaml: an ews-inventory source's auth is ntlm or basic")
        reference = config["password"]
        return cls(str(config["username"]), lambda: workspace.secret(reference),
                   config.get("server"), config.get("autodiscover_email"),
                   str(config.get("auth", "ntlm")), config.get("mailboxes"))

    # --- the one network seam -------------------------------------------------------------
    def _configuration(self) -> Any:
        """exchangelib's Configuration: the EWS URL (autodiscovered once if not given), the
        credentials, the pinned version and FailFast (tenacity does the waiting)."""
        if self._config is not None:
            return self._config
        from exchangelib import BASIC, NTLM, Build, Configuration, Credentials, FailFast, Version

        _register_size_property()
        credentials = Credentials(self.username, self._password())
        auth_type = BASIC if self.auth == "basic" else NTLM
        if self.ews_url is None:
            self.ews_url = self._autodiscover(credentials, auth_type)
        self._config = Configuration(
            service_endpoint=self.ews_url, credentials=credentials, auth_type=auth_type,
            version=Version(build=Build(*EXCHANGE_2016)), retry_policy=FailFast())
        return self._config

    def _autodiscover(self, credentials: Any, auth_type: str) -> str:
        from exchangelib import FailFast
        from exchangelib.autodiscover import discover

        try:
            _, protocol = discover(str(self.autodiscover_email), credentials=credentials,
                                   auth_type=auth_type, retry_policy=FailFast())
        except Exception as exc:  # noqa: BLE001 - exchangelib raises many types; one line
            raise ConnectionFailed(f"autodiscover found no EWS URL for "
                                   f"{self.autodiscover_email} ({type(exc).__name__})") from None
        return str(protocol.service_endpoint)

    def _protocol(self) -> Any:
        from exchangelib.protocol import Protocol

        return Protocol(config=self._configuration())

    def _account(self, address: str) -> Any:
        from exchangelib import IMPERSONATION, Account

        return Account(address, config=self._configuration(), autodiscover=False,
                       access_type=IMPERSONATION)

    def _call(self, operation: Callable[[], T], mailbox: str | None = None) -> T:
        """One exchangelib call, retried while Exchange is busy; errors become one line."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_server_busy), wait=_wait_for_back_off,
            stop=tenacity.stop_after_attempt(ATTEMPTS), sleep=self.sleep, reraise=True)
        try:
            return retrying(operation)
        except CutoverError:
            raise
        except Exception as exc:  # noqa: BLE001 - exchangelib raises many types; see _translate
            raise self._translate(exc, mailbox) from None

    def _translate(self, exc: Exception, mailbox: str | None) -> CutoverError:
        from exchangelib.errors import (
            ErrorAccessDenied,
            ErrorImpersonateUserDenied,
            ErrorNonExistentMailbox,
            ErrorServerBusy,
            ErrorTimeoutExpired,
            ResponseMessageError,
            UnauthorizedError,
        )
        from requests import RequestException

        where = f"EWS at {self.ews_url}"
        if isinstance(exc, UnauthorizedError):
            return AuthenticationFailed(f"{where} refused {self.username}")
        if isinstance(exc, ErrorServerBusy):
            return ConnectionFailed(f"{where} stayed busy after {ATTEMPTS} attempts ({exc})")
        if isinstance(exc, (ErrorTimeoutExpired, RequestException, OSError)):
            # exchangelib re-raises connection errors as ErrorTimeoutExpired
            return ConnectionFailed(f"{where} cannot be reached ({str(exc)[:200]})")
        if isinstance(exc, ErrorNonExistentMailbox):
            return NotFound(f"{where} has no mailbox {mailbox}")
        if isinstance(exc, (ErrorAccessDenied, ErrorImpersonateUserDenied)):
            return AuthenticationFailed(f"{where} refused {self.username} access to "
                                        f"{mailbox} ({type(exc).__name__})")
        if isinstance(exc, ResponseMessageError) and mailbox:
            return MailboxSkipped(f"{type(exc).__name__}: {str(exc)[:200]}")
        return ConnectionFailed(f"{where}: {type(exc).__name__}: {str(exc)[:200]}")

    # --- the inventory ----------------------------------------------------------------------
    def collect(self, warnings: list[str]) -> Iterator[dict[str, Any]]:
        if self.mailboxes:
            boxes = [{"address": a, "display_name": "", "guid": None} for a in self.mailboxes]
        else:
            boxes = self._searchable_mailboxes()
        for box in boxes:
            try:
                yield self._mailbox(box, warnings)
            except NotFound:
                if self.mailboxes:
                    raise  # the operator named it: a typo must not pass silently
                warnings.append(f"{box['address']}: skipped: no such mailbox")
            except MailboxSkipped as exc:
                warnings.append(f"{box['address']}: skipped: {exc}")

    def _searchable_mailboxes(self) -> list[dict[str, Any]]:
        from exchangelib.properties import SearchableMailbox

        found = self._call(lambda: self._protocol().get_searchable_mailboxes())
        return [{"address": (m.primary_smtp_address or "").lower(),
                 "display_name": m.display_name or "", "guid": m.guid}
                for m in found if isinstance(m, SearchableMailbox)
                and not m.is_external and not m.is_membership_group]

    def _optional(self, operation: Callable[[], T], address: str, what: str,
                  warnings: list[str]) -> T | None:
        try:
            return self._call(operation, address)
        except MailboxSkipped as exc:
            warnings.append(f"{address}: {what} not readable: {exc}")
            return None

    def _mailbox(self, box: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
        address = box["address"]
        account = self._account(address)
        folders = self._call(lambda: self._folders(account), address)
        inbox = next((f for f in folders if _is_inbox(f)), None)
        newest = None if inbox is None else self._optional(
            lambda: _newest_received(inbox), address, "newest item", warnings)
        rules = self._optional(lambda: account.rules, address, "inbox rules", warnings) or []
        delegates = self._optional(lambda: account.delegates, address, "delegates",
                                   warnings) or []
        resolved = self._resolve(address, warnings)
        summaries = [folder_summary(f) for f in folders]
        folder_names = {f.id: _folder_label(f) for f in folders if getattr(f, "id", None)}
        rule_summaries = [rule_summary(r, folder_names) for r in rules]
        local, _, domain = address.partition("@")
        return {
            "address": address, "local": local, "domain": domain,
            "aliases": aliases(resolved.get("proxy_addresses") or [], address),
            "display_name": resolved.get("display_name") or box["display_name"],
            "type": MAILBOX_TYPES.get(resolved.get("mailbox_type") or "Mailbox", "other"),
            "type_detail": resolved.get("mailbox_type"), "guid": box.get("guid"),
            "forwarding": forwarding(rule_summaries), "rules": rule_summaries,
            "delegates": [delegate_summary(d) for d in delegates],
            "folders": summaries, "size_bytes": sum(f["size_bytes"] for f in summaries),
            "items": sum(f["messages"] for f in summaries), "newest_item": newest,
            "origin": f"ews:{self.ews_url}",
        }

    def _folders(self, account: Any) -> list[Any]:
        """One deep FindFolder under the message-folder root, sizes included. The FindFolder
        service is called directly: FolderCollection.find_folders refuses extended properties,
        which EWS itself accepts in FindFolder (GetFolder per folder would cost a round trip)."""
        from exchangelib.fields import FieldPath
        from exchangelib.folders import Folder
        from exchangelib.services import FindFolder

        fields = {FieldPath(field=Folder.get_field_by_fieldname(name)) for name in (
            "name", "folder_class", "total_count", "_distinguished_id", SIZE_PROPERTY)}
        found = FindFolder(account=account).call(
            folders=[account.msg_folder_root], additional_fields=fields, restriction=None,
            shape="IdOnly", depth="Deep", max_items=None, offset=0)
        return [f for f in found if not isinstance(f, Exception)]

    def _resolve(self, address: str, warnings: list[str]) -> dict[str, Any]:
        found = self._optional(lambda: self._protocol().resolve_names(
            [address], return_full_contact_data=True, search_scope="ActiveDirectory"),
            address, "address book entry", warnings)
        if found is None:
            return {}
        for entry in found:
            if isinstance(entry, tuple) and entry[0] is not None and (
                    (entry[0].email_address or "").lower() == address):
                return resolution(*entry)
        warnings.append(f"{address}: not in the address book (hidden?): no aliases, type "
                        "from GetSearchableMailboxes")
        return {}

    def describe(self) -> str:
        return f"ews:{self.ews_url or self.autodiscover_email}"


# --- exchangelib objects -> inventory values (pure) ------------------------------------------

def _is_inbox(folder: Any) -> bool:
    """Exchange 2016 names distinguished folders in FindFolder; the name may be localised."""
    from exchangelib.folders import Inbox

    distinguished = getattr(folder, "_distinguished_id", None)
    return getattr(distinguished, "id", None) == "inbox" or isinstance(folder, Inbox)


def _newest_received(folder: Any) -> str | None:
    """FindItem, newest first, one item: its DateTimeReceived in UTC."""
    for item in folder.all().order_by("-datetime_received").only("datetime_received")[:1]:
        received = getattr(item, "datetime_received", None)
        if received is not None:
            # EWSDateTime.astimezone() only takes EWSTimeZone: go through the timestamp
            moment = datetime.fromtimestamp(received.timestamp(), UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def folder_summary(folder: Any) -> dict[str, Any]:
    return {"name": folder.name or "", "class": folder.folder_class,
            "messages": folder.total_count or 0,
            "size_bytes": int(getattr(folder, SIZE_PROPERTY, None) or 0)}


def resolution(mailbox: Any, contact: Any) -> dict[str, Any]:
    """What ResolveNames says: the GAL name, MailboxType and proxy addresses (`SMTP:...`)."""
    proxies = [e.email for e in (getattr(contact, "email_addresses", None) or []) if e.email]
    return {"display_name": mailbox.name or getattr(contact, "display_name", None) or "",
            "mailbox_type": mailbox.mailbox_type, "proxy_addresses": proxies}


def aliases(proxy_addresses: list[str], primary: str) -> list[str]:
    """Secondary SMTP addresses (`smtp:` proxies), lower-case, without the primary."""
    return sorted({p.partition(":")[2].lower() for p in proxy_addresses
                   if p.lower().startswith("smtp:")} - {primary})


def _addresses(recipients: Any) -> list[str]:
    return [r.email_address.lower() for r in recipients or [] if r.email_address]


def rule_summary(rule: Any, folder_names: dict[str, str] | None = None) -> dict[str, Any]:
    """Name, state and where the rule sends mail; `delete`: the rule also removes the message
    from the mailbox (Delete or PermanentDelete action). `priority`, `conditions`,
    `exceptions` and `actions` keep the whole rule under its EWS element names, so that the
    Graph path can recreate it (cutover/parsers/graph_carry.py); a folder of a Move/Copy
    action is named by its well-known name or display name (`folder_names`: id -> name)."""
    actions = rule.actions
    forward = _addresses(getattr(actions, "forward_to_recipients", None)) + _addresses(
        getattr(actions, "forward_as_attachment_to_recipients", None))
    redirect = _addresses(getattr(actions, "redirect_to_recipients", None))
    delete = bool(getattr(actions, "delete", None) or getattr(actions, "permanent_delete", None))
    names = folder_names or {}
    return {"kind": "inbox-rule", "name": rule.display_name or "",
            "enabled": rule.is_enabled is not False,
            "forward_to": sorted(set(forward + redirect)), "redirect": bool(redirect),
            "delete": delete, "priority": rule.priority,
            "conditions": _rule_part(rule.conditions, names),
            "exceptions": _rule_part(rule.exceptions, names),
            "actions": _rule_part(actions, names)}


def _rule_part(element: Any, folder_names: dict[str, str]) -> dict[str, Any]:
    """A Conditions, Exceptions or Actions element as JSON, keyed by EWS element name; unset
    and false values are left out (EWS treats them as absent)."""
    if element is None:
        return {}
    part: dict[str, Any] = {}
    for field in element.FIELDS:
        value = getattr(element, field.name, None)
        # `in (None, [], ...)` would call an EWS element's __eq__, which hashes the list
        if value is None or value is False or (isinstance(value, list | str) and not value):
            continue
        name = field.field_uri or getattr(value, "ELEMENT_NAME", field.name)
        part[name] = _rule_value(value, folder_names)
    return part


def _rule_value(value: Any, folder_names: dict[str, str]) -> Any:
    from exchangelib.properties import CopyToFolder, WithinDateRange, WithinSizeRange

    if isinstance(value, list):
        return [{"address": (v.email_address or "").lower(), **(
            {"name": v.name} if getattr(v, "name", None) else {})}
            if hasattr(v, "email_address") else str(v) for v in value]
    if isinstance(value, CopyToFolder):  # MoveToFolder too
        if value.distinguished_folder_id is not None:
            return value.distinguished_folder_id.id
        folder_id = value.folder_id.id if value.folder_id is not None else ""
        return folder_names.get(folder_id, folder_id)
    if isinstance(value, WithinSizeRange):
        return {"MinimumSize": value.minimum_size, "MaximumSize": value.maximum_size}
    if isinstance(value, WithinDateRange):
        return {"StartDateTime": value.start_date_time.isoformat(),
                "EndDateTime": value.end_date_time.isoformat()}
    if isinstance(value, bool | int | str):
        return value
    return True  # an item reference (ServerReplyWithMessage's template): present, not portable


def _folder_label(folder: Any) -> str:
    distinguished = getattr(folder, "_distinguished_id", None)
    return getattr(distinguished, "id", None) or folder.name or ""


def forwarding(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Enabled forward/redirect rules. Forwarding and redirecting both leave the message in the
    mailbox; only a delete action in the same rule removes it (as ews-forwarding reads it)."""
    return [{"via": f"inbox rule {r['name']}", "to": to, "keep_copy": not r["delete"]}
            for r in rules if r["enabled"] for to in r["forward_to"]]


def delegate_summary(delegate: Any) -> dict[str, Any]:
    """Address and the permission levels that are not None, named as EWS names them."""
    permissions = delegate.delegate_permissions
    levels = {} if permissions is None else {
        f.field_uri: getattr(permissions, f.name) for f in permissions.FIELDS
        if getattr(permissions, f.name) not in (None, "None")}
    user = delegate.user_id
    return {"address": ((user.primary_smtp_address if user else None) or "").lower(),
            "permissions": levels}
