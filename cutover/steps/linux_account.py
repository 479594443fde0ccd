"""Step kind `linux.account`: provision each moved account on the Linux mail host.

    - id: accounts
      kind: linux.account
      for_each: {class: verification}
      params:
        accounts: linux                         # cutover.yaml accounts name (dovecot-passwd)
        address: "{local}@verify.example.org"

One Change per account: the Dovecot passwd-file entry (random password, hashed; the cleartext
only in the operator's 0600 credentials file), the Postfix virtual_mailbox_maps entry, the
virtual_mailbox_domains entry, the Maildir root. `before` says which of these existed, so a
rollback removes exactly what the step added (the domain only when no other account uses it).
No secret is ever in the Change.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.roles import Accounts
from cutover.item_template import expand
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class LinuxAccountParams(Params):
    accounts: str = "linux"
    address: str = "{local}@verify.example.org"


def _connector(ctx: Context) -> Accounts:
    # the workspace checked the entry against the accounts role's protocol
    return ctx.connector("accounts", ctx.params.accounts)


def _address(ctx: Context) -> str:
    return expand(ctx.params.address, ctx.item).strip().lower()


@register
class LinuxAccount(Step):
    kind = "linux.account"
    Params = LinuxAccountParams
    summary = "Create each account on the Linux mail host (Dovecot, Postfix, Maildir)."

    def preview(self, ctx: Context) -> list[Change]:
        accounts, address = _connector(ctx), _address(ctx)
        before, after = accounts.state(address), accounts.wanted(address)
        if before == after:
            return []
        missing = [k for k in after if before[k] != after[k]]
        return [Change(address, "create" if not any(before.values()) else "update", before,
                       after, summary=f"create {address}: {', '.join(missing)}")]

    def apply(self, ctx: Context, change: Change) -> None:
        _connector(ctx).ensure(change.item)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        accounts = _connector(ctx)
        findings = []
        for change in changes:
            now = accounts.state(change.item)
            for key, wanted in (change.after or {}).items():
                if now.get(key) != wanted:
                    findings.append(Finding(change.item, f"{key} is {now.get(key)!r}, "
                                                         f"expected {wanted!r}"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        return _connector(ctx).state(change.item)

    def comparable(self, payload: Any) -> Any:
        # the domain entry is shared by every account of the domain: the first one adds it
        return None if payload is None else {k: v for k, v in payload.items() if k != "domain"}

    def rollback(self, ctx: Context, change: Change) -> None:
        _connector(ctx).remove(change.item, change.before or {})

    def manual_checks(self, params: Any) -> list[str]:
        return ["doveadm auth test ADDRESS PASSWORD (password in the credentials file)",
                "postmap -q ADDRESS virtual_mailbox_maps"]

    def manual_rollback(self, params: Any) -> list[str]:
        return ["Remove the ADDRESS line from the passwd-file and virtual_mailbox_maps, the "
                "empty Maildir root and the credentials file."]
