"""Inventory source: Exchange on-premises through EWS (read-only).

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
and Discovery Management (GetSearchableMailboxes). Per mailbox: ResolveNames, FindFolder (deep,
with sizes), FindItem (newest INBOX item), GetInboxRules, GetDelegate. ErrorServerBusy is
retried after the BackOffMilliseconds Exchange asks for (tenacity). EWS has no mailbox
forwarding attribute (that is Get-Mailbox's ForwardingSmtpAddress): forwarding here comes from
inbox rules; EWS cannot tell user from shared mailboxes either, so combine with the CSV source
for types when that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import requests
import tenacity

from cutover.connectors.base import connector
from cutover.errors import AuthenticationFailed, ConfigInvalid, ConnectionFailed
from cutover.parsers import ews_inventory_soap as soap

ATTEMPTS = 5
TIMEOUT_S = 60
MAILBOX_TYPES = {"Mailbox": "user", "PublicDL": "group", "PrivateDL": "group",
                 "Contact": "contact", "PublicFolder": "public-folder", "GroupMailbox":
                 "group-mailbox", "LinkedMailbox": "user"}


def _wait_for_back_off(retry_state: tenacity.RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, soap.ServerBusy) and exc.back_off_ms:
        return exc.back_off_ms / 1000
    return min(2 ** retry_state.attempt_number, 30)


@connector("ews-inventory")
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
        self._session: requests.Session | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> EwsInventory:
        if not config.get("username") or not config.get("password"):
            raise ConfigInvalid("cutover.yaml: an ews-inventory source needs username and "
                                "password: env/NAME or file/PATH")
        if not config.get("server") and not config.get("autodiscover_email"):
            raise ConfigInvalid("cutover.yaml: an ews-inventory source needs server or "
                                "autodiscover_email")
        reference = config["password"]
        return cls(str(config["username"]), lambda: workspace.secret(reference),
                   config.get("server"), config.get("autodiscover_email"),
                   str(config.get("auth", "ntlm")), config.get("mailboxes"))

    # --- the one network seam -------------------------------------------------------------
    def _open(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            if self.auth == "basic":
                session.auth = (self.username, self._password())
            else:
                from requests_ntlm import HttpNtlmAuth

                session.auth = HttpNtlmAuth(self.username, self._password())
            session.headers["Content-Type"] = "text/xml; charset=utf-8"
            self._session = session
            if self.ews_url is None:
                self.ews_url = self._autodiscover(session)
        return self._session

    def _autodiscover(self, session: requests.Session) -> str:
        """POX Autodiscover: autodiscover.DOMAIN first, then DOMAIN, following redirectAddr."""
        email = str(self.autodiscover_email)
        for _ in range(3):
            domain = email.partition("@")[2]
            for url in (f"https://autodiscover.{domain}/autodiscover/autodiscover.xml",
                        f"https://{domain}/autodiscover/autodiscover.xml"):
                try:
                    response = session.post(url, data=soap.autodiscover_request(email),
                                            timeout=TIMEOUT_S)
                except requests.RequestException:
                    continue
                if response.status_code != 200:
                    continue
                answer = soap.parse_autodiscover(response.content)
                if answer["ews_url"]:
                    return answer["ews_url"]
                if answer["redirect"]:
                    email = answer["redirect"]
                    break
            else:
                break
        raise ConnectionFailed(f"autodiscover found no EWS URL for {self.autodiscover_email}")

    def _call(self, body: str, impersonate: str | None = None) -> bytes:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((soap.ServerBusy, _Transient)),
            wait=_wait_for_back_off, stop=tenacity.stop_after_attempt(ATTEMPTS),
            sleep=self.sleep, reraise=True)
        try:
            return retrying(self._post, body, impersonate)
        except soap.ServerBusy as exc:
            raise ConnectionFailed(f"EWS at {self.ews_url} stayed busy after {ATTEMPTS} "
                                   f"attempts ({exc})") from None
        except _Transient as exc:
            raise ConnectionFailed(str(exc)) from None

    def _post(self, body: str, impersonate: str | None) -> bytes:
        session = self._open()
        try:
            response = session.post(str(self.ews_url), data=soap.envelope(body, impersonate),
                                    timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise _Transient(f"EWS at {self.ews_url}: {exc}") from None
        if response.status_code == 401:
            raise AuthenticationFailed(f"EWS at {self.ews_url} refused {self.username}")
        if response.status_code in (502, 503, 504):
            raise _Transient(f"EWS at {self.ews_url}: HTTP {response.status_code}")
        soap.response_messages(response.content)  # raises ServerBusy for the retry
        return response.content

    # --- the inventory ----------------------------------------------------------------------
    def collect(self, warnings: list[str]) -> Iterator[dict[str, Any]]:
        if self.mailboxes:
            boxes = [{"address": a, "display_name": "", "guid": None, "group": False}
                     for a in self.mailboxes]
        else:
            boxes = soap.parse_searchable_mailboxes(self._call(soap.get_searchable_mailboxes()))
        for box in boxes:
            if box["group"]:
                continue
            try:
                yield self._mailbox(box, warnings)
            except soap.EwsResponseError as exc:
                warnings.append(f"{box['address']}: skipped: {exc}")

    def _optional(self, parse, body: str, address: str, what: str, warnings: list[str]):
        try:
            return parse(self._call(body, address))
        except soap.EwsResponseError as exc:
            warnings.append(f"{address}: {what} not readable: {exc}")
            return None

    def _mailbox(self, box: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
        address = box["address"]
        resolved = soap.parse_resolution(self._call(soap.resolve_names(address)))
        folders = soap.parse_folders(self._call(soap.find_folders(address), address))
        newest = self._optional(soap.parse_newest_item, soap.find_newest_item(address),
                                address, "newest item", warnings)
        rules = self._optional(soap.parse_inbox_rules, soap.get_inbox_rules(address), address,
                               "inbox rules", warnings) or []
        delegates = self._optional(soap.parse_delegates, soap.get_delegates(address), address,
                                   "delegates", warnings) or []
        proxies = resolved.get("proxy_addresses") or []
        aliases = sorted({p.partition(":")[2].lower() for p in proxies
                          if p.lower().startswith("smtp:")} - {address})
        local, _, domain = address.partition("@")
        return {
            "address": address, "local": local, "domain": domain, "aliases": aliases,
            "display_name": resolved.get("display_name") or box["display_name"],
            "type": MAILBOX_TYPES.get(resolved.get("mailbox_type") or "Mailbox", "other"),
            "type_detail": resolved.get("mailbox_type"), "guid": box.get("guid"),
            "forwarding": [{"via": f"inbox rule {r['name']}", "to": t, "keep_copy": not
                            r["redirect"]} for r in rules if r["enabled"]
                           for t in r["forward_to"]],
            "rules": rules, "delegates": delegates,
            "folders": folders, "size_bytes": sum(f["size_bytes"] for f in folders),
            "items": sum(f["messages"] for f in folders), "newest_item": newest,
            "origin": f"ews:{self.ews_url}",
        }

    def describe(self) -> str:
        return f"ews:{self.ews_url or self.autodiscover_email}"


class _Transient(ConnectionFailed):
    """A network hiccup worth retrying."""

