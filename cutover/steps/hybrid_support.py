"""What the hybrid step kinds share: which mailboxes a step is for, waiting while MRS works,
and completion windows.

A batch step selects its mailboxes from the latest inventory snapshot, like `for_each` does,
but as one step: a migration batch is one object holding them all, and its preview shows the
batch and each mailbox as items of that one step.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cutover.errors import NotFound, UsageError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def selected(recipients: list[dict[str, Any]], selector: dict[str, Any]) -> list[dict[str, Any]]:
    """Recipients whose fields equal the selector's values (a list value: any of them)."""
    def matches(recipient: dict[str, Any]) -> bool:
        return all(recipient.get(key) in (wanted if isinstance(wanted, list) else [wanted])
                   for key, wanted in selector.items())

    return [r for r in recipients if matches(r)]


def planned_mailboxes(ctx: Any, selector: dict[str, Any]) -> list[str]:
    """Primary addresses (lower case, sorted) of the inventory's recipients `selector` picks."""
    from cutover.inventory.store import latest_recipients

    recipients = latest_recipients(ctx.state) if ctx.state is not None else []
    if not recipients:
        raise NotFound(f"step {ctx.step_id} moves the mailboxes the inventory selects, but no "
                       "inventory snapshot exists: run `cutover inventory collect` first")
    return sorted({r["address"].lower() for r in selected(recipients, selector)})


def simulated(ctx: Any) -> bool:
    return ctx.workspace.config.get("clock") == "simulated"


def pause(ctx: Any, seconds: float, reason: str) -> None:
    """Let time pass while a service works: sleep, or on the demo's simulated clock move the
    clock (recorded in the audit log like the runner's skipped waits)."""
    if simulated(ctx) and ctx.state is not None:
        ctx.state.advance_clock(seconds)
        ctx.state.record_event("clock-advanced", ctx.plan_name, ctx.step_id,
                               message=f"simulated clock moved {seconds:.0f} s: {reason}")
        return
    time.sleep(seconds)


class Window(BaseModel):
    """A recurring completion window, in the organisation's time zone:

        window: {days: [sat], start: "06:00", end: "10:00", timezone: Europe/Vienna}
    """

    model_config = ConfigDict(extra="forbid")

    days: list[str] = Field(default_factory=lambda: list(DAYS))
    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [day.lower()[:3] for day in value]
        unknown = [day for day in days if day not in DAYS]
        if unknown or not days:
            raise ValueError(f"days must be among {', '.join(DAYS)}")
        return days

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str) -> str:
        try:
            datetime.strptime(value, "%H:%M")
        except ValueError:
            raise ValueError("write times as HH:MM") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def _bounds(self, day: datetime) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.timezone)
        start = datetime.combine(day.date(), datetime.strptime(self.start, "%H:%M").time(), zone)
        end = datetime.combine(day.date(), datetime.strptime(self.end, "%H:%M").time(), zone)
        if end <= start:
            end += timedelta(days=1)  # a window over midnight
        return start, end

    def open_at(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The window (start, end) that `moment` falls in, or None."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        for back in (0, 1):
            day = local - timedelta(days=back)
            if DAYS[day.weekday()] in self.days:
                start, end = self._bounds(day)
                if start <= moment < end:
                    return start, end
        return None

    def next_start(self, moment: datetime) -> datetime:
        local = moment.astimezone(ZoneInfo(self.timezone))
        for ahead in range(0, 8):
            day = local + timedelta(days=ahead)
            if DAYS[day.weekday()] in self.days:
                start, _ = self._bounds(day)
                if start > moment:
                    return start
        raise UsageError("the completion window never opens")  # pragma: no cover

    def describe(self) -> str:
        return f"{','.join(self.days)} {self.start}-{self.end} {self.timezone}"
