"""The shape every step kind shares: preview, apply, verify, rollback.

A step kind fills in the four verbs; only the runner orders them (safety check, committed
checkpoint, apply one change and mark it done, verify). See docs/runner.md.

Contract for implementers:
- `preview` reads only and returns the differences between the world and the wanted state.
  An empty list means "already applied". It raises CapabilityMissing/UnsafeChange before any
  change is made, never later.
- `apply` performs exactly one Change and is idempotent: applying it twice changes nothing the
  second time (the runner re-applies the in-flight item after a crash).
- `verify` checks the *world* (servers, files) shows each change's `after` (`None` = absent)
  and returns findings; an empty list means verified. The runner also calls it with
  `Change.inverse()` changes after a rollback, to verify the restore.
- `rollback` restores `change.before` exactly, using only what the Change holds (it comes from
  the checkpoint, possibly in a new process). It is idempotent too.
- `before`/`after` are JSON values and never hold a secret.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from pydantic import BaseModel, ConfigDict

from cutover.changes import (  # the values every layer shares, re-exported for step kinds
    Action,
    Change,
    Finding,
    JSONValue,
    changes_digest,
)
from cutover.safety import UNOBSERVED

if TYPE_CHECKING:
    from cutover.connectors.dns_zone import DnsZone
    from cutover.connectors.mailstore import MailStore
    from cutover.connectors.roles import Accounts, Directory, Forwarding, MtaMaps
    from cutover.connectors.sieve_store import SieveStore
    from cutover.workspace import Workspace


__all__ = ["Action", "Change", "Finding", "JSONValue", "changes_digest"]


class Params(BaseModel):
    """Base for every step kind's params: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Waiting(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a step that may not proceed before `until` (a DNS TTL still running, say)."""

    def __init__(self, until: datetime, reason: str):
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass
class Context:
    """What a step sees while it runs: the workspace, its params, its for_each item, options."""

    workspace: Workspace
    plan_name: str
    step_id: str
    params: Any
    item: dict[str, Any] | None = None
    force: bool = False
    dry_run: bool = False
    clock: Callable[[], datetime] = field(default=datetime.now)
    log: Callable[[str], None] = field(default=lambda message: None)
    holds: Any = None  # cutover.state.Holds: persisted "not before" times (TTL waits)
    #: the runner's one State (cutover.state.State): steps borrow it, never open the DB by path.
    #: A preview gets a read-only view (an in-memory State when the workspace has none yet).
    state: Any = None

    def now(self) -> datetime:
        return self.clock()

    @overload
    def connector(self, section: Literal["mail-store", "mailstores"], name: str
                  ) -> MailStore: ...

    @overload
    def connector(self, section: Literal["dns-zone", "providers"], name: str) -> DnsZone: ...

    @overload
    def connector(self, section: Literal["sieve-store", "sieve"], name: str) -> SieveStore: ...

    @overload
    def connector(self, section: Literal["forwarding"], name: str) -> Forwarding: ...

    @overload
    def connector(self, section: Literal["mta-maps", "postfix"], name: str) -> MtaMaps: ...

    @overload
    def connector(self, section: Literal["accounts"], name: str) -> Accounts: ...

    @overload
    def connector(self, section: Literal["directory"], name: str) -> Directory: ...

    @overload
    def connector(self, section: str, name: str) -> Any: ...

    def connector(self, section: str, name: str) -> Any:
        """The connector the workspace configures for a role (its name, "mail-store", or its
        section, "mailstores") under `name`, checked against the role's protocol when built.
        One that logs in without TLS (`tls: none`) says so, once, wherever it is first used."""
        built = self.workspace.connector(section, name)
        warning = getattr(built, "transport_warning", None)
        if warning and not getattr(built, "transport_warning_shown", False):
            built.transport_warning_shown = True
            self.log(f"WARNING {section}.{name}: {warning}")
        return built

    def hold_until(self, key: str, until: datetime, reason: str) -> None:
        """Record that work on `key` must wait until `until`; survives restarts."""
        if self.holds is not None and not self.dry_run:
            self.holds.set(key, until, reason)

    def wait_for(self, key: str) -> None:
        """Raise Waiting if a hold on `key` has not expired yet."""
        if self.holds is None:
            return
        hold = self.holds.get(key)
        if hold is not None and hold[0] > self.now():
            raise Waiting(hold[0], hold[1])


class Step(ABC):
    """A step kind. Subclasses set `kind` and `Params` and implement the four verbs, and may
    tell the runner's one safety gate (cutover.safety) why a change is unsafe:

    - `unsafe_reasons(ctx, changes)`: reasons to refuse a whole preview (a threshold crossed,
      rules that disagree), checked between preview and confirm;
    - `observe(ctx, change)` (with `comparable`): the item as the world shows it now, so the
      gate can refuse to apply over, or roll back over, what someone changed since.
    Only `--force` passes the gate, the same way for every kind.
    """

    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = Params
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Short operator-facing description for the runbook.
    summary: ClassVar[str] = ""

    @abstractmethod
    def preview(self, ctx: Context) -> list[Change]: ...

    @abstractmethod
    def apply(self, ctx: Context, change: Change) -> None: ...

    @abstractmethod
    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]: ...

    @abstractmethod
    def rollback(self, ctx: Context, change: Change) -> None: ...

    # --- the safety gate's questions (cutover.safety asks them; --force passes) ------------
    def unsafe_reasons(self, ctx: Context, changes: list[Change]) -> list[str]:
        """Why applying this whole preview would be unsafe; [] when it is not."""
        return []

    def observe(self, ctx: Context, change: Change) -> JSONValue:
        """The item `change` is about, as the world shows it now, in the shape of
        `change.before`/`change.after` (compared through `comparable`); UNOBSERVED when this
        kind cannot tell."""
        return UNOBSERVED

    def comparable(self, payload: JSONValue) -> JSONValue:
        """The part of a `before`/`after` (or an observation) that says what the world holds:
        two payloads the gate should treat as the same state compare equal through this."""
        return payload

    def describe_state(self, payload: JSONValue) -> str:
        """An observation as the operator reads it in a refusal."""
        value = self.comparable(payload)
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 120 else text[:119] + "…"

    # --- runbook hooks: plain text for operators; override to be specific ---------------
    def manual_checks(self, params: Any) -> list[str]:
        """Commands or checks an operator can run by hand to verify this step."""
        return []

    def manual_rollback(self, params: Any) -> list[str]:
        """What an operator does by hand to undo this step if cutover is unavailable."""
        return []


STEP_KINDS: dict[str, type[Step]] = {}


def register(cls: type[Step]) -> type[Step]:
    """Class decorator: make a step kind available to plans under `cls.kind`."""
    if cls.kind in STEP_KINDS and STEP_KINDS[cls.kind] is not cls:
        raise RuntimeError(f"step kind {cls.kind!r} registered twice")
    STEP_KINDS[cls.kind] = cls
    return cls


def iter_kinds() -> Iterator[str]:
    from cutover.steps import load_all

    load_all()  # importing the kinds' modules registers every kind
    yield from sorted(STEP_KINDS)
