"""Step kind `route.probe`: prove a routing step with real mail, then check the whole path.

    - id: probe-old-addresses
      kind: route.probe
      requires: [forward-from-exchange]
      for_each: {class: verification}
      confirm: false
      params:
        address: "{address}"                          # where the canary is sent
        expect: "linux:{local}@verify.example.org"     # side:mailbox it must arrive in
        check: addresses                               # addresses | all | none
        timeout: 60

One Change per address ("send a canary"). Apply sends it through the real path (see
`cutover.routes.probe`: SMTP to the entry system, or through the twins in the demo), waits for
it where `expect` says (default: where the routing model says the address ends), removes it,
and fails naming where it was last seen. Verify is `routes check`: the address's trace must end
in `expect`, and it must have no finding (loop, dead end, no filter or the same filter twice,
chain longer than two hops, an MX that refuses the domain); `check: all` checks every address
of the workspace, `none` only the end. Rollback has nothing to undo: the canary is gone.
"""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from cutover.errors import UsageError
from cutover.item_template import expand
from cutover.routes.check import check, mx_findings, trace_findings
from cutover.routes.facts import MailFacts, read_facts
from cutover.routes.probe import DEFAULT_TIMEOUT_S, ProbeFailed, probe
from cutover.routes.trace import End, domain_of, trace
from cutover.steps.base import Change, Context, Finding, Params, Step, register

SIDES = ("linux", "cloud", "onprem", "pipeline", "external")
CHECK_SCOPES = ("addresses", "all", "none")


class RouteProbeParams(Params):
    address: str
    expect: str | None = None
    check: str = "addresses"
    timeout: float = DEFAULT_TIMEOUT_S

    @field_validator("check")
    @classmethod
    def _scope(cls, value: str) -> str:
        if value not in CHECK_SCOPES:
            raise ValueError(f"check must be one of {', '.join(CHECK_SCOPES)}")
        return value

    @field_validator("expect")
    @classmethod
    def _expect(cls, value: str | None) -> str | None:
        if value is not None and value.partition(":")[0] not in SIDES:
            raise ValueError(f"expect is SIDE:MAILBOX, SIDE one of {', '.join(SIDES)}")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("timeout must be more than 0 seconds")
        return value


#: the routing facts of the step being run: (workspace, state, step id, facts)
_read_for: list[tuple[Any, Any, str, MailFacts]] = []


def _facts(ctx: Context) -> MailFacts:
    """The workspace's routing facts, read once per run of this step: a probe sends mail and
    changes no routing, so its items need not read every zone, map and script again. (The
    workspace and state are kept with the facts, so their ids cannot be reused meanwhile.)"""
    if ctx.state is None:  # not run by the runner: nothing says which run this is
        return read_facts(ctx.workspace)
    for workspace, state, step_id, facts in _read_for:
        if workspace is ctx.workspace and state is ctx.state and step_id == ctx.step_id:
            return facts
    facts = read_facts(ctx.workspace)
    _read_for[:] = [(ctx.workspace, ctx.state, ctx.step_id, facts)]
    return facts


def expected_end(text: str | None) -> End | None:
    """`linux:a@b.org`, `linux:a@b.org/Quarantine`, `pipeline:ims-gateway`."""
    if text is None:
        return None
    side, _, rest = text.partition(":")
    mailbox, _, folder = rest.partition("/") if side != "pipeline" else (rest, "", "")
    return End(side, mailbox.strip().lower() or None, folder=folder or None)


def _address(ctx: Context) -> str:
    address = expand(ctx.params.address, ctx.item).strip().lower()
    if "@" not in address:
        raise UsageError(f"route.probe: {address!r} is not a mail address")
    return address


def _expect(ctx: Context) -> str | None:
    return expand(ctx.params.expect, ctx.item).strip() if ctx.params.expect else None


def _matches(end: End, wanted: End) -> bool:
    return end.side == wanted.side and (wanted.mailbox is None or end.mailbox == wanted.mailbox) \
        and (wanted.folder is None or end.folder == wanted.folder)


@register
class RouteProbe(Step):
    kind = "route.probe"
    Params = RouteProbeParams
    summary = ("Send a tagged canary through the real path, confirm it arrives where "
               "expected, and check the routes (loops, dead ends, filters).")

    def preview(self, ctx: Context) -> list[Change]:
        address, expect = _address(ctx), _expect(ctx)
        where = expect or "where `routes trace` says it ends"
        return [Change(f"probe {address}", "create", None,
                       {"address": address, "expect": expect},
                       f"send a tagged canary to {address}; expect it in {where}")]

    def apply(self, ctx: Context, change: Change) -> None:
        after = change.after
        facts = _facts(ctx)
        result = probe(ctx.workspace, facts, after["address"], timeout=ctx.params.timeout,
                       expect=expected_end(after["expect"]))
        if not result.arrived:
            raise ProbeFailed(result.describe())
        ctx.log(result.describe())

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        facts = _facts(ctx)
        findings: list[Finding] = []
        addresses = []
        for change in changes:
            if change.after is None:
                continue  # a rollback's inverse: a probe leaves nothing to restore or check
            address = change.after["address"]
            addresses.append(address)
            path = trace(facts, address)
            wanted = expected_end(change.after["expect"])
            if wanted is not None and not _matches(path.ends, wanted):
                findings.append(Finding(address, f"routes to {path.ends.describe()}, not "
                                                 f"{wanted.describe()}: {path.summary()}"))
            if ctx.params.check == "addresses":
                findings += [Finding(f.subject, f"{f.kind}: {f.problem}")
                             for f in trace_findings(facts, path)]
        if not addresses:
            return findings
        if ctx.params.check == "addresses":
            domains = {domain_of(a) for a in addresses}
            findings += [Finding(f.subject, f"{f.kind}: {f.problem}")
                         for f in mx_findings(facts) if f.subject in domains]
        elif ctx.params.check == "all":
            findings += [Finding(f.subject, f"{f.kind}: {f.problem}") for f in check(facts)]
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        """Nothing to restore: the canary was removed where it arrived."""

    def manual_checks(self, params: Any) -> list[str]:
        return [f"cutover routes trace {params.address}", "cutover routes check",
                f"cutover routes probe {params.address}"]
