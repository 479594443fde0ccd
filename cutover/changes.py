"""Changes and findings: the values a step's preview, verify and the safety gate exchange.

They live below every layer that reads them (steps, the runner, the routing model, renderers),
so none of those needs to import another to speak of a change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

JSONValue = Any
Action = Literal["create", "update", "delete"]

_INVERSE_ACTION: dict[str, Action] = {"create": "delete", "delete": "create", "update": "update"}


@dataclass(frozen=True)
class Change:
    """One item of a step's work: what it is now (`before`) and what it will be (`after`)."""

    item: str
    action: Action
    before: JSONValue | None
    after: JSONValue | None
    summary: str = ""

    def inverse(self) -> Change:
        return Change(self.item, _INVERSE_ACTION[self.action], self.after, self.before,
                      f"restore {self.item}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(**data)

    def describe(self) -> str:
        return self.summary or f"{self.action} {self.item}"


def changes_digest(changes: list[Change]) -> str:
    """A stable hash of a preview, kept in the checkpoint: what is applied is what was reviewed."""
    payload = json.dumps([c.to_json() for c in changes], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Finding:
    """Something verify (or a check) found wrong. `severity` "warning" does not fail a step."""

    item: str
    problem: str
    severity: Literal["error", "warning"] = "error"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


