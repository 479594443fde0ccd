"""Step kind `cloud.carry`: the Graph copy path carries what Graph can besides mail, a
person's contacts and inbox rules.

    - id: carry-contacts-and-rules
      kind: cloud.carry
      for_each: {destination: cloud}
      params:
        source: exchange          # cutover.yaml `personal:` entry: the on-premises contacts
        target: cloud             # cutover.yaml `personal:` entry: Exchange Online (graph)
        mailbox: "{address}"      # the on-premises mailbox
        target_mailbox: "{address}"
        contacts: true            # default; false: rules only
        rules: true               # default; false: contacts only

For tenants without Exchange hybrid (plans/phase2-cloud-graph.yaml), after the mail is copied:

- contacts: the person's on-premises contacts (EWS, the default Contacts folder) are created in
  the Exchange Online mailbox's default contacts folder (Graph POST /users/{id}/contacts). A
  contact already there (a shared email address, or the same name when it has none) is never
  created twice, on a re-run or after a crash;
- inbox rules: the rules the inventory recorded for the mailbox (EWS GetInboxRules) become
  Graph messageRules (POST .../mailFolders/inbox/messageRules), when every condition,
  exception and action has a Graph equivalent (cutover/parsers/graph_carry.py); the others are
  listed, per rule, with why. A rule of the same name already in the cloud mailbox is left as
  it is (listed when it differs).

Preview: one change per mailbox for its missing contacts, one for its missing rules; nothing
listed means everything Graph can carry is there. Verify reads the cloud mailbox back: each
created contact holds what was sent, each rule does what was asked. Rollback removes exactly
the contacts and rules this step created (matched on everything it sent), and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from cutover.errors import UsageError
from cutover.item_template import expand
from cutover.parsers import graph_carry as gc
from cutover.steps.base import Change, Context, Finding, JSONValue, Params, Step, register

#: messageRule actions that send mail on to others (blocked by EOP's default outbound policy)
FORWARDING_ACTIONS = ("forwardTo", "forwardAsAttachmentTo", "redirectTo")


class CloudCarryParams(Params):
    source: str
    target: str
    mailbox: str = "{address}"
    target_mailbox: str = "{address}"
    contacts: bool = True
    rules: bool = True


def carried_rules(item: dict[str, Any] | None, folder_id: gc.FolderLookup
                  ) -> tuple[list[dict[str, Any]], list[tuple[str, list[str]]]]:
    """The messageRules an inventory item's rules become, and (name, why) for those that
    cannot become one."""
    carried, left = [], []
    for rule in (item or {}).get("rules") or []:
        body, why = gc.message_rule(rule, folder_id)
        if body is None:
            left.append((gc.rule_name(rule) or rule.get("path") or "(unnamed)", why))
        else:
            carried.append(body)
    return carried, left


def _unique_contacts(contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique: list[dict[str, Any]] = []
    for contact in contacts:
        body = gc.contact_body(contact)
        if body and not any(gc.same_person(body, seen) for seen in unique):
            unique.append(body)
    return unique


def _rule_named(rules: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rules if str(r.get("displayName", "")).lower() == name.lower()),
                None)


def _sent_contact_present(sent: dict[str, Any], existing: list[dict[str, Any]]
                          ) -> dict[str, Any] | None:
    return next((e for e in existing if gc.same_contact(sent, e)), None)


def _sent_rule_present(sent: dict[str, Any], existing: list[dict[str, Any]]
                       ) -> dict[str, Any] | None:
    found = _rule_named(existing, sent["displayName"])
    return found if found and gc.comparable_rule(found) == gc.comparable_rule(sent) else None


@register
class CloudCarry(Step):
    kind = "cloud.carry"
    Params = CloudCarryParams
    summary = ("Carry each person's contacts and inbox rules to Exchange Online through Graph "
               "(rules Graph cannot express are listed, with why).")

    def preview(self, ctx: Context) -> list[Change]:
        params: CloudCarryParams = ctx.params
        if not params.contacts and not params.rules:
            raise UsageError("cloud.carry: contacts and rules are both false: nothing to carry")
        source_box = expand(params.mailbox, ctx.item).strip().lower()
        box = expand(params.target_mailbox, ctx.item).strip().lower()
        target = ctx.connector("personal", params.target)
        changes = []
        if params.contacts:
            wanted = _unique_contacts(ctx.connector("personal", params.source)
                                      .contacts(source_box))
            existing = target.contacts(box)
            missing = [c for c in wanted if not any(gc.same_person(c, e) for e in existing)]
            ctx.log(f"{box}: {len(wanted)} on-premises contact(s), {len(wanted) - len(missing)}"
                    " already in Exchange Online")
            if missing:
                changes.append(Change(
                    f"contacts {box}", "create", {"mailbox": box, "contacts": []},
                    {"mailbox": box, "contacts": missing},
                    f"{box}: create {len(missing)} contact(s) in Exchange Online"))
        if params.rules:
            changes += self._preview_rules(ctx, target, box)
        return changes

    def _preview_rules(self, ctx: Context, target: Any, box: str) -> list[Change]:
        carried, left = carried_rules(ctx.item, lambda folder: target.folder_id(box, folder))
        for name, why in left:
            ctx.log(f"{box}: rule {name!r} not carried: {'; '.join(why)}")
        for body in carried:
            targets = sorted({r["emailAddress"]["address"] for key in FORWARDING_ACTIONS
                              for r in body["actions"].get(key) or []})
            if targets:
                ctx.log(f"{box}: rule {body['displayName']!r} forwards to "
                        f"{', '.join(targets)}: Exchange Online's outbound spam policy blocks "
                        "automatic forwarding to other domains unless it allows it "
                        "(exo.auto_forwarding checks the setting)")
        existing = target.message_rules(box)
        missing: list[dict[str, Any]] = []
        for body in carried:
            there = _rule_named(existing, body["displayName"])
            if _rule_named(missing, body["displayName"]) is not None:
                ctx.log(f"{box}: rule {body['displayName']!r} not carried: another rule of that "
                        "name is carried already (cutover tells rules apart by name: rename one "
                        "on premises and collect the inventory again)")
            elif there is None:
                missing.append(body)
            elif gc.comparable_rule(there) != gc.comparable_rule(body):
                ctx.log(f"{box}: rule {body['displayName']!r} not carried: a different rule "
                        "of that name is already in Exchange Online (left as it is)")
        if not missing:
            return []
        names = ", ".join(r["displayName"] for r in missing)
        return [Change(f"rules {box}", "create", {"mailbox": box, "rules": []},
                       {"mailbox": box, "rules": missing},
                       f"{box}: create inbox rule(s) {names}"
                       + (f"; {len(left)} rule(s) not carried (see the log)" if left else ""))]

    def apply(self, ctx: Context, change: Change) -> None:
        params: CloudCarryParams = ctx.params
        target = ctx.connector("personal", params.target)
        box = change.after["mailbox"]
        if "contacts" in change.after:
            existing = target.contacts(box)
            for contact in change.after["contacts"]:
                if not any(gc.same_person(contact, e) for e in existing):
                    existing.append(target.create_contact(box, contact))
        else:
            existing = target.message_rules(box)
            for rule in change.after["rules"]:
                if _rule_named(existing, rule["displayName"]) is None:
                    existing.append(target.create_message_rule(box, rule))

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        params: CloudCarryParams = ctx.params
        target = ctx.connector("personal", params.target)
        findings = []
        for change in changes:
            payload = change.after or change.before
            box, section = payload["mailbox"], _section(payload)
            existing = target.contacts(box) if section == "contacts" \
                else target.message_rules(box)
            present = _sent_contact_present if section == "contacts" else _sent_rule_present
            wanted = (change.after or {}).get(section) or []
            gone = [e for e in (change.before or {}).get(section) or [] if e not in wanted]
            for entry in wanted:
                if present(entry, existing) is None:
                    findings.append(Finding(change.item, f"{_label(entry)} is not in Exchange "
                                            "Online as created"))
            for entry in gone:
                if present(entry, existing) is not None:
                    findings.append(Finding(change.item, f"{_label(entry)} is still in "
                                            "Exchange Online after the rollback"))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        params: CloudCarryParams = ctx.params
        target = ctx.connector("personal", params.target)
        box, section = change.after["mailbox"], _section(change.after)
        kept = (change.before or {}).get(section) or []
        created = [e for e in change.after[section] if e not in kept]
        if section == "contacts":
            for contact in created:
                found = _sent_contact_present(contact, target.contacts(box))
                if found is not None:
                    target.delete_contact(box, found["id"])
        else:
            for rule in created:
                found = _sent_rule_present(rule, target.message_rules(box))
                if found is not None:
                    target.delete_message_rule(box, found["id"])

    # --- the safety gate ----------------------------------------------------------------
    def observe(self, ctx: Context, change: Change) -> JSONValue:
        """The contacts (rules) this change is about, as Exchange Online holds them now, in
        the shape they were sent: an edit since shows as a difference."""
        params: CloudCarryParams = ctx.params
        target = ctx.connector("personal", params.target)
        payload = change.after or change.before
        box, section = payload["mailbox"], _section(payload)
        entries = [*(change.before or {}).get(section, []), *(change.after or {}).get(section, [])]
        found = []
        if section == "contacts":
            existing = target.contacts(box)
            for sent in entries:
                match = next((e for e in existing if gc.same_person(sent, e)), None)
                if match is not None and gc.contact_as_sent(sent, match) not in found:
                    found.append(gc.contact_as_sent(sent, match))
        else:
            existing = target.message_rules(box)
            for sent in entries:
                match = _rule_named(existing, sent["displayName"])
                if match is not None and match not in found:
                    found.append(match)
        return {"mailbox": box, section: found}

    def comparable(self, payload: JSONValue) -> JSONValue:
        if not isinstance(payload, dict):
            return payload
        section = _section(payload)
        normal = gc.comparable_rule if section == "rules" else gc.contact_key
        return {"mailbox": payload.get("mailbox"), section: sorted(
            json.dumps(normal(e), sort_keys=True) for e in payload.get(section) or [])}

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-InboxRule -Mailbox {params.target_mailbox}   (Exchange Online PowerShell)",
                f"Get-MgUserContact -UserId {params.target_mailbox} -All | Select DisplayName,"
                "EmailAddresses   (Microsoft Graph PowerShell)"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"Remove-InboxRule -Mailbox {params.target_mailbox} -Identity '<name>' for each "
                "rule cutover created (the step's checkpoint lists them)",
                f"Remove-MgUserContact -UserId {params.target_mailbox} -ContactId <id> for each "
                "contact cutover created"]


def _section(payload: dict[str, Any]) -> str:
    return "contacts" if "contacts" in payload else "rules"


def _label(entry: dict[str, Any]) -> str:
    if "actions" in entry:
        return f"rule {entry.get('displayName')!r}"
    addresses = sorted(gc.contact_addresses(entry))
    return f"contact {entry.get('displayName') or (addresses[0] if addresses else '?')!r}"
