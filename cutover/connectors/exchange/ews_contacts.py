"""A mailbox's contacts on premises, read through EWS (exchangelib): kind `ews` in the
`personal:` section (role personal-data), read only.

    personal:
      exchange: {kind: ews, server: mail.example.org, username: EXAMPLE\\svc-cutover,
                 password: env/EXCHANGE_PASSWORD}     # the settings of an ews mail store

The service account needs ApplicationImpersonation, as for the ews mail store (this connector
opens its sessions through one). Contacts come from the default Contacts folder (FindItem, then
GetItem for the properties FindItem cannot return), in Microsoft Graph's `contact` shape:
EmailAddress1-3 become emailAddresses, BusinessPhone(2) businessPhones, HomePhone(2)
homePhones, MobilePhone mobilePhone, the Business/Home/Other physical addresses
businessAddress/homeAddress/otherAddress, the body personalNotes. Distribution lists (personal
groups) have no Graph counterpart and are skipped. Inbox rules are not read here: they come
from the inventory (ews inventory source), where they were recorded with the mailbox.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.exchange.ews_store import EwsMailStore, _translate
from cutover.errors import CapabilityMissing, CutoverError

CONTACT_FIELDS = ("display_name", "given_name", "middle_name", "surname", "nickname",
                  "initials", "generation", "file_as", "company_name", "department",
                  "job_title", "office", "profession", "manager", "assistant_name", "birthday",
                  "business_homepage", "email_addresses", "im_addresses", "phone_numbers",
                  "physical_addresses", "categories", "body")
#: exchangelib field -> Graph contact property, for the plain text ones
TEXT_FIELDS = {"display_name": "displayName", "given_name": "givenName",
               "middle_name": "middleName", "surname": "surname", "nickname": "nickName",
               "initials": "initials", "generation": "generation", "file_as": "fileAs",
               "company_name": "companyName", "department": "department",
               "job_title": "jobTitle", "office": "officeLocation", "profession": "profession",
               "manager": "manager", "assistant_name": "assistantName",
               "business_homepage": "businessHomePage"}
PHONE_LISTS = {"BusinessPhone": "businessPhones", "BusinessPhone2": "businessPhones",
               "HomePhone": "homePhones", "HomePhone2": "homePhones"}
ADDRESSES = {"Business": "businessAddress", "Home": "homeAddress", "Other": "otherAddress"}


@connector("ews", role="personal-data")
class EwsPersonalData:
    """On-premises contacts through EWS; a source only."""

    def __init__(self, store: EwsMailStore):
        self.store = store

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> EwsPersonalData:
        return cls(EwsMailStore.from_config(config, workspace))

    def describe(self) -> str:
        return f"ews://{self.store.server or 'autodiscover'}"

    def contacts(self, mailbox: str) -> list[dict[str, Any]]:
        session = self.store.open(mailbox)
        try:
            from exchangelib import Contact

            items = session.account.contacts.all().only(*CONTACT_FIELDS)
            return [graph_contact(item) for item in items if isinstance(item, Contact)]
        except CutoverError:
            raise
        except Exception as exc:  # noqa: BLE001 - exchangelib raises many types; one line
            raise _translate(exc, self.store.describe(mailbox)) from None
        finally:
            session.close()

    def _read_only(self) -> Any:
        raise CapabilityMissing("the ews personal data connector is a source only: contacts "
                                "and rules are written to Exchange Online through graph")

    def create_contact(self, mailbox: str, contact: dict[str, Any]) -> dict[str, Any]:
        return self._read_only()

    def delete_contact(self, mailbox: str, contact_id: str) -> None:
        self._read_only()

    def message_rules(self, mailbox: str) -> list[dict[str, Any]]:
        return self._read_only()

    def create_message_rule(self, mailbox: str, rule: dict[str, Any]) -> dict[str, Any]:
        return self._read_only()

    def delete_message_rule(self, mailbox: str, rule_id: str) -> None:
        self._read_only()

    def folder_id(self, mailbox: str, folder: str) -> str | None:
        return None


def graph_contact(item: Any) -> dict[str, Any]:
    """An exchangelib Contact in Graph's contact shape (pure; empty values left out)."""
    contact: dict[str, Any] = {graph: str(value) for field, graph in TEXT_FIELDS.items()
                               if (value := getattr(item, field, None))}
    emails = sorted((e for e in item.email_addresses or [] if e.email),
                    key=lambda e: e.label or "")
    if emails:
        name = contact.get("displayName")
        contact["emailAddresses"] = [{"address": e.email.lower(), **({"name": name} if name
                                                                      else {})}
                                     for e in emails]
    for phone in sorted(item.phone_numbers or [], key=lambda p: p.label or ""):
        if not phone.phone_number:
            continue
        if phone.label in PHONE_LISTS:
            contact.setdefault(PHONE_LISTS[phone.label], []).append(phone.phone_number)
        elif phone.label == "MobilePhone":
            contact["mobilePhone"] = phone.phone_number
    for address in item.physical_addresses or []:
        if address.label in ADDRESSES:
            value = {"street": address.street, "city": address.city, "state": address.state,
                     "countryOrRegion": address.country, "postalCode": address.zipcode}
            value = {k: v for k, v in value.items() if v}
            if value:
                contact[ADDRESSES[address.label]] = value
    ims = [im.im_address for im in sorted(item.im_addresses or [], key=lambda i: i.label or "")
           if im.im_address]
    if ims:
        contact["imAddresses"] = ims
    if item.birthday:
        contact["birthday"] = f"{item.birthday.isoformat()}T00:00:00Z"
    if item.categories:
        contact["categories"] = list(item.categories)
    if item.body:
        contact["personalNotes"] = str(item.body)
    return contact
