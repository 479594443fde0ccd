"""Step kind `exchange.forwarding`: set or remove the forwarding of Exchange mailboxes.

    - id: forward-moved-accounts
      kind: exchange.forwarding
      for_each: {class: verification}
      params:
        source: exchange
        mailbox: "{address}"
        forward_to: "{local}@verify.example.org"
        keep_copy: false

`remove: true` instead of `forward_to` takes forwarding off. `before` holds the mailbox's whole
previous forwarding (address and keep-copy flag, or none), which rollback puts back exactly.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from cutover.connectors.exchange.forwarding import Forwarding
from cutover.errors import UsageError
from cutover.item_template import expand
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class ExchangeForwardingParams(Params):
    source: str
    mailbox: str = "{address}"
    forward_to: str | None = None
    remove: bool = False
    keep_copy: bool = False

    @model_validator(mode="after")
    def _forward_or_remove(self) -> ExchangeForwardingParams:
        if (self.forward_to is None) == (not self.remove):
            raise ValueError("give either forward_to or remove: true")
        return self


def _address(text: str, what: str) -> str:
    address = text.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise UsageError(f"{what} {text!r} is not an email address")
    return address


def _describe(forwarding: dict[str, Any] | None) -> str:
    if forwarding is None:
        return "no forwarding"
    copy = " (keeps a copy)" if forwarding["keep_copy"] else ""
    return f"forward to {forwarding['forward_to']}{copy}"


def _json(forwarding: Forwarding | None) -> dict[str, Any] | None:
    return None if forwarding is None else forwarding.to_json()


@register
class ExchangeForwarding(Step):
    kind = "exchange.forwarding"
    Params = ExchangeForwardingParams
    summary = "Set or remove forwarding of Exchange mailboxes (ForwardingSmtpAddress or rule)."

    def preview(self, ctx: Context) -> list[Change]:
        params: ExchangeForwardingParams = ctx.params
        mailbox = _address(expand(params.mailbox, ctx.item), "mailbox")
        wanted = None
        if params.forward_to is not None:
            target = _address(expand(params.forward_to, ctx.item), "forward_to")
            if target == mailbox:
                raise UsageError(f"{mailbox} would forward to itself (a mail loop)")
            wanted = Forwarding(target, params.keep_copy)
        current = ctx.connector("forwarding", params.source).get(mailbox)
        if current == wanted:
            return []
        action = "create" if current is None else "delete" if wanted is None else "update"
        where = {"source": params.source, "mailbox": mailbox}
        before = {**where, "forwarding": _json(current)}
        after = {**where, "forwarding": _json(wanted)}
        return [Change(f"{params.source}/{mailbox}", action, before, after,
                       f"{mailbox}: {_describe(before['forwarding'])} -> "
                       f"{_describe(after['forwarding'])}")]

    def apply(self, ctx: Context, change: Change) -> None:
        source = ctx.connector("forwarding", change.after["source"])
        mailbox = change.after["mailbox"]
        wanted = Forwarding.from_json(change.after["forwarding"])
        if source.get(mailbox) == wanted:
            return
        source.set(mailbox, wanted)  # the runner's gate checked it is still as previewed

    def observe(self, ctx: Context, change: Change) -> Any:
        where = change.after or change.before
        current = ctx.connector("forwarding", where["source"]).get(where["mailbox"])
        return {"source": where["source"], "mailbox": where["mailbox"],
                "forwarding": _json(current)}

    def comparable(self, payload: Any) -> Any:
        return None if payload is None else payload.get("forwarding")

    def describe_state(self, payload: Any) -> str:
        return _describe(self.comparable(payload))

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings = []
        for change in changes:
            source = ctx.connector("forwarding", change.after["source"])
            actual = _json(source.get(change.after["mailbox"]))
            if actual != change.after["forwarding"]:
                findings.append(Finding(change.item, (
                    f"Exchange shows {_describe(actual)}, expected "
                    f"{_describe(change.after['forwarding'])}")))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        source = ctx.connector("forwarding", change.before["source"])
        previous = Forwarding.from_json(change.before["forwarding"])
        if source.get(change.before["mailbox"]) != previous:
            source.set(change.before["mailbox"], previous)

    def manual_checks(self, params: Any) -> list[str]:
        return [f"Get-Mailbox {params.mailbox} | fl ForwardingSmtpAddress,"
                "DeliverToMailboxAndForward   (or Get-InboxRule -Mailbox ...)"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["Set-Mailbox <mailbox> -ForwardingSmtpAddress <previous or $null> "
                "-DeliverToMailboxAndForward <previous> (values in the checkpoint's before)"]
