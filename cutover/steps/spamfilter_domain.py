"""Step kind `spamfilter.domain`: one domain's own spam filtering, with rspamd as Postfix's milter.

    - id: spam-filter
      kind: spamfilter.domain
      params:
        spamfilter: linux-mx            # cutover.yaml spamfilter entry (kind rspamd)
        server: linux-mx                # postfix entry whose smtpd_milters get rspamd's milter
        domain: verify.example.org
        known_senders: ["@stations.example.net", "@partners.example.com"]
        reject: false                   # spam is marked (X-Spam: Yes), never rejected
        quarantine_folder: Quarantine   # marked spam is filed there by Sieve (null: no filing)

Three changes, each its own item: the domain's rspamd settings (known senders are never
rejected or greylisted; with `reject: false` nobody's mail is rejected, only marked), the
quarantine rule in Dovecot's sieve_before script, and rspamd's milter in the Postfix instance's
`smtpd_milters` (with `milter_default_action = accept`, so mail still flows when rspamd is down:
data that cannot wait must not be refused for a filter outage). `before` keeps each file's whole
prior text (or the parameter's prior value): rollback puts it back byte for byte when nobody
edited it since, else restores just this domain's block. Verify reads back what rspamd, Dovecot
and Postfix will use.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from cutover.connectors.postfix.maps import PostfixMapDirectory
from cutover.connectors.rspamd.settings import (
    QUARANTINE_REQUIRE,
    DomainPolicy,
    RspamdSettings,
    block_text,
    quarantine_block,
    settings_block,
    with_block,
)
from cutover.errors import UsageError, WorldChanged
from cutover.steps.base import Change, Context, Finding, Params, Step, register

MILTER_DEFAULT_ACTION = "accept"


class SpamfilterDomainParams(Params):
    spamfilter: str
    server: str
    domain: str
    known_senders: list[str] = Field(default_factory=list)
    reject: bool = True
    quarantine_folder: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or "@" in value or any(c.isspace() or c in '"{};' for c in value):
            raise ValueError("domain must be a domain name")
        return value

    @field_validator("known_senders")
    @classmethod
    def _senders(cls, value: list[str]) -> list[str]:
        for sender in value:
            if "@" not in sender or any(c.isspace() or c in '"{};' for c in sender):
                raise ValueError(f"{sender!r}: write an address or @domain")
        return [s.lower() for s in value]

    @field_validator("quarantine_folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or '"' in value or "\n" in value):
            raise ValueError("quarantine_folder must be a folder name")
        return value


def _filter(ctx: Context, name: str) -> RspamdSettings:
    spamfilter = ctx.connector("spamfilter", name)
    if not isinstance(spamfilter, RspamdSettings):
        raise UsageError(f"cutover.yaml: spamfilter.{name} is not an rspamd connector")
    return spamfilter


def _postfix(ctx: Context, name: str) -> PostfixMapDirectory:
    server = ctx.connector("postfix", name)
    if not isinstance(server, PostfixMapDirectory):
        raise UsageError(f"cutover.yaml: postfix.{name} is not a postfix-maps connector")
    return server


def _policy(params: SpamfilterDomainParams) -> DomainPolicy:
    return DomainPolicy(params.domain, tuple(params.known_senders), params.reject,
                        params.quarantine_folder)


def _policy_json(policy: DomainPolicy) -> dict[str, Any]:
    return {"domain": policy.domain, "known_senders": list(policy.known_senders),
            "reject": policy.reject, "quarantine_folder": policy.quarantine_folder}


def _milters_with(current: str | None, milter: str) -> str:
    words = [w for w in (current or "").replace(",", " ").split() if w]
    return " ".join(words if milter in words else [*words, milter])


@register
class SpamfilterDomain(Step):
    kind = "spamfilter.domain"
    Params = SpamfilterDomainParams
    summary = ("Give a domain its own spam filtering: rspamd milter settings (known senders "
               "never rejected or greylisted), spam marked and quarantined by Sieve.")

    def preview(self, ctx: Context) -> list[Change]:
        params: SpamfilterDomainParams = ctx.params
        spamfilter, server = _filter(ctx, params.spamfilter), _postfix(ctx, params.server)
        policy = _policy(params)
        common = {"spamfilter": params.spamfilter, "server": params.server,
                  "domain": params.domain}
        changes = []
        settings = spamfilter.read_settings()
        wanted = settings_block(policy)
        if block_text(settings, params.domain) != wanted:
            current = spamfilter.policies().get(params.domain)
            changes.append(Change(
                f"rspamd {params.spamfilter} {params.domain}", "update" if current else "create",
                {**common, "part": "policy", "block": block_text(settings, params.domain),
                 "file": settings, "policy": _policy_json(current) if current else None},
                {**common, "part": "policy", "block": wanted, "policy": _policy_json(policy)},
                f"rspamd settings for {params.domain}: "
                + ("spam rejected" if policy.reject else "spam marked, never rejected")
                + f"; {len(policy.known_senders)} known sender(s) never rejected or "
                  "greylisted"))
        changes += self._quarantine_change(spamfilter, params, common)
        milters = server.parameter("smtpd_milters")
        default_action = server.parameter("milter_default_action")
        wanted_milters = _milters_with(milters, spamfilter.milter)
        if milters != wanted_milters or default_action != MILTER_DEFAULT_ACTION:
            changes.append(Change(
                f"postfix {params.server} smtpd_milters", "update" if milters else "create",
                {**common, "part": "milter", "smtpd_milters": milters,
                 "milter_default_action": default_action},
                {**common, "part": "milter", "smtpd_milters": wanted_milters,
                 "milter_default_action": MILTER_DEFAULT_ACTION,
                 "milters": wanted_milters.split()},
                f"main.cf of {params.server}: smtpd_milters = {wanted_milters}"))
        return changes

    @staticmethod
    def _quarantine_change(spamfilter: RspamdSettings, params: SpamfilterDomainParams,
                           common: dict[str, Any]) -> list[Change]:
        if params.quarantine_folder is None and spamfilter.quarantine_sieve is None:
            return []
        script = spamfilter.read_quarantine()
        wanted = (quarantine_block(params.domain, params.quarantine_folder)
                  if params.quarantine_folder else None)
        current = block_text(script, params.domain)
        if current == wanted:
            return []
        if spamfilter.quarantine_sieve is None:
            raise UsageError(f"quarantine_folder needs quarantine_sieve on cutover.yaml "
                             f"spamfilter.{params.spamfilter} (Dovecot's sieve_before script)")
        action = "create" if current is None else "delete" if wanted is None else "update"
        return [Change(f"quarantine sieve {params.domain}", action,
                       {**common, "part": "quarantine", "block": current, "file": script},
                       {**common, "part": "quarantine", "block": wanted},
                       f"Sieve files {params.domain}'s spam into "
                       f"{params.quarantine_folder}" if wanted else
                       f"Sieve no longer files {params.domain}'s spam")]

    def apply(self, ctx: Context, change: Change) -> None:
        after = change.after
        part = after["part"]
        if part == "milter":
            server = _postfix(ctx, after["server"])
            for name in ("smtpd_milters", "milter_default_action"):
                if server.parameter(name) != after[name]:
                    self._refuse_if_changed(ctx, name, server.parameter(name),
                                            change.before[name], after[name])
                    server.set_parameter(name, after[name])
            return
        spamfilter = _filter(ctx, after["spamfilter"])
        text = spamfilter.read_settings() if part == "policy" else spamfilter.read_quarantine()
        current = block_text(text, after["domain"])
        if current == after["block"]:
            return
        self._refuse_if_changed(ctx, f"{part} block", current, change.before["block"],
                                after["block"])
        if part == "policy":
            spamfilter.write_settings(with_block(text, after["domain"], after["block"]))
        else:
            spamfilter.write_quarantine(with_block(text, after["domain"], after["block"],
                                                   header=QUARANTINE_REQUIRE))

    @staticmethod
    def _refuse_if_changed(ctx: Context, what: str, current: Any, before: Any,
                           after: Any) -> None:
        if current not in (before, after) and not ctx.force:
            raise WorldChanged(f"{what} is now {current!r}, not {before!r} as previewed; "
                               "preview again")

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings = []
        for change in changes:
            after = change.after
            if after["part"] == "milter":
                server = _postfix(ctx, after["server"])
                for name in ("smtpd_milters", "milter_default_action"):
                    actual = server.parameter(name)
                    if actual != after[name]:
                        findings.append(Finding(change.item, f"main.cf has {name} = "
                                                             f"{actual or '(unset)'}, expected "
                                                             f"{after[name] or '(unset)'}"))
                continue
            spamfilter = _filter(ctx, after["spamfilter"])
            text = (spamfilter.read_settings() if after["part"] == "policy"
                    else spamfilter.read_quarantine())
            if block_text(text, after["domain"]) != after["block"]:
                where = (spamfilter.settings_path if after["part"] == "policy"
                         else spamfilter.quarantine_sieve)
                findings.append(Finding(change.item, f"{where} does not hold the "
                                                     f"{after['part']} block written for "
                                                     f"{after['domain']}"))
        return findings

    def observe(self, ctx: Context, change: Change) -> Any:
        where = change.after or change.before
        if where["part"] == "milter":
            server = _postfix(ctx, where["server"])
            return {"part": "milter", "smtpd_milters": server.parameter("smtpd_milters"),
                    "milter_default_action": server.parameter("milter_default_action")}
        spamfilter = _filter(ctx, where["spamfilter"])
        text = spamfilter.read_settings() if where["part"] == "policy" else \
            spamfilter.read_quarantine()
        return {"part": where["part"], "block": block_text(text, where["domain"])}

    def comparable(self, payload: Any) -> Any:
        if payload is None:
            return None
        if payload["part"] == "milter":
            return [payload.get("smtpd_milters"), payload.get("milter_default_action")]
        return payload.get("block")

    def rollback(self, ctx: Context, change: Change) -> None:
        before = change.before
        if before["part"] == "milter":
            server = _postfix(ctx, before["server"])
            for name in ("milter_default_action", "smtpd_milters"):
                if server.parameter(name) != before[name]:
                    server.set_parameter(name, before[name])
            return
        spamfilter = _filter(ctx, before["spamfilter"])
        policy = before["part"] == "policy"
        text = spamfilter.read_settings() if policy else spamfilter.read_quarantine()
        restored = _restored(text, before, "" if policy else QUARANTINE_REQUIRE)
        if restored == text:
            return
        if policy:
            spamfilter.write_settings(restored)
        else:
            spamfilter.write_quarantine(restored)

    def manual_checks(self, params: Any) -> list[str]:
        return [f"rspamadm configdump settings | grep -A8 cutover_{params.domain}",
                "postconf -h smtpd_milters milter_default_action",
                f"send mail to an address of {params.domain} and look for X-Spamd-Result "
                "in its headers"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"remove the `# BEGIN cutover spamfilter.domain {params.domain}` block from "
                "local.d/settings.conf and the quarantine script, then reload rspamd",
                "restore smtpd_milters from the checkpoint and `postfix reload`"]


def _restored(text: str, before: dict[str, Any], header: str = "") -> str:
    """The whole prior file when only this domain's block (and the header cutover adds to a
    new file) differs, else the current file with just the block put back as it was."""
    domain = before["domain"]
    original = before["file"]
    rest = with_block(text, domain, None)
    if rest == with_block(original, domain, None) or (not original and rest == header):
        return original
    return with_block(text, domain, before["block"])
