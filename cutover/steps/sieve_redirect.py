"""Step kind `sieve.redirect`: keep an address working by redirecting its mail in Sieve.

    - id: keep-old-address
      kind: sieve.redirect
      for_each: {class: verification}
      params:
        sieve: linux                               # cutover.yaml sieve connector
        account: "{local}@verify.example.org"      # whose active script gets the redirect
        to: "{address}"                            # where mail goes
        copy: true                                 # keep a copy in the account too

The redirect goes right after the `require` lines of the account's active script, marked with a
comment naming the target, so the rest of the script still runs. Without `copy` it is
`redirect "to"; stop;` (the account keeps nothing); with `copy` it is `redirect :copy "to";`.
When no script is active, a script `script` (default "redirect") holding only the redirect is
created and activated. `before` records the previously active script's name and the exact text
of the script edited (or null), so rollback restores both exactly.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import ConfigDict, Field

from cutover.connectors.sieve_store import SieveStore, check_name, normalised, restore_script
from cutover.errors import UsageError
from cutover.item_template import expand
from cutover.rules.convert import sieve_string
from cutover.steps.base import Change, Context, Finding, Params, Step, register

_PREAMBLE = re.compile(r"\A(?:\s*(?:#[^\n]*\n|require\s+(?:\[[^\]]*\]|\"[^\"]*\")\s*;))*")


class SieveRedirectParams(Params):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sieve: str
    to: str
    account: str = "{address}"
    keep_copy: bool = Field(default=False, alias="copy")  # `copy` in plans; BaseModel has .copy
    script: str = "redirect"


def marker(target: str) -> str:
    return f"# cutover sieve.redirect to {target}"


def with_redirect(script: str | None, target: str, copy: bool) -> str:
    """`script` with the redirect block inserted after its require lines."""
    block = [marker(target)]
    if copy:
        block += ['require "copy";', f"redirect :copy {sieve_string(target)};"]
    else:
        block += [f"redirect {sieve_string(target)};", "stop;"]
    text = "\n".join(block) + "\n"
    if not script:
        return text
    end = _PREAMBLE.match(script).end()
    head, tail = script[:end], script[end:]
    if head and not head.endswith("\n"):
        head += "\n"
    return head + text + tail.lstrip("\n")


@register
class SieveRedirect(Step):
    kind = "sieve.redirect"
    Params = SieveRedirectParams
    summary = "Redirect an account's mail from its active Sieve script"

    def preview(self, ctx: Context) -> list[Change]:
        params: SieveRedirectParams = ctx.params
        address = expand(params.account, ctx.item)
        target = expand(params.to, ctx.item).strip()
        if "@" not in target or any(c.isspace() or c == '"' for c in target):
            raise UsageError(f"sieve.redirect: {target!r} is not a mail address")
        store: SieveStore = ctx.connector("sieve", params.sieve)
        active = store.active(address)
        name = active or check_name(params.script)
        current = store.get(address, name)
        if active and current is not None and marker(target) in current:
            return []
        after_script = with_redirect(current if active else None, target, params.keep_copy)
        before = {"account": address, "active": active, "script_name": name, "script": current}
        after = {"account": address, "active": name, "script_name": name,
                 "script": after_script}
        how = "a copy of its mail" if params.keep_copy else "its mail"
        return [Change(address, "update" if active else "create", before, after,
                       f"{address}: Sieve script {name} redirects {how} to {target}")]

    def apply(self, ctx: Context, change: Change) -> None:
        state = change.after
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        address, name = state["account"], state["script_name"]
        if normalised(store.get(address, name)) != normalised(state["script"]):
            store.put(address, name, state["script"])
        if store.active(address) != name:
            store.activate(address, name)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        findings = []
        for change in changes:
            state = change.after
            address, name = state["account"], state["script_name"]
            active = store.active(address)
            if active != state["active"]:
                findings.append(Finding(address, f"active Sieve script is {active!r}, "
                                                 f"expected {state['active']!r}"))
            if normalised(store.get(address, name)) != normalised(state["script"]):
                findings.append(Finding(address, f"Sieve script {name!r} is not as recorded"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        state = change.after or change.before
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        return {"active": store.active(state["account"]),
                "script": store.get(state["account"], state["script_name"])}

    def comparable(self, payload: Any) -> Any:
        if payload is None:
            return None
        return {"active": payload.get("active"), "script": normalised(payload.get("script"))}

    def describe_state(self, payload: Any) -> str:
        now = self.comparable(payload) or {}
        text = now.get("script")
        digest = hashlib.sha256(text.encode()).hexdigest()[:12] if text else "absent"
        return f"active Sieve script {now.get('active')!r} (text sha256 {digest})"

    def rollback(self, ctx: Context, change: Change) -> None:
        state = change.before
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        restore_script(store, state["account"], state["script_name"], state["script"],
                       state["active"])

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"remove the block after '{marker(params.to)}' from the account's active "
                "Sieve script, or reactivate the previous script"]
