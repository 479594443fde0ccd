"""The one fault-injection hook: tests (and operators rehearsing a failure) kill cutover at a
named point to prove that resume and re-runs are exact.

    CUTOVER_CRASH_AT=move-mail:mid-apply      the runner, at a step's point (exit 137)
    CUTOVER_CRASH_AT=append:20                the copy engine, the 20th time it appends
                                              (SIGKILL, as kill -9)

A point is a name; `count` makes the N-th time it is reached fatal. Nothing happens when the
variable is unset, so the hook costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import defaultdict

VARIABLE = "CUTOVER_CRASH_AT"
#: the copy engine's older name for the same hook, still read
LEGACY_VARIABLES = ("CUTOVER_MAILSYNC_CRASH_AT",)

_lock = threading.Lock()
_reached: dict[str, int] = defaultdict(int)


def _wanted() -> str:
    for name in (VARIABLE, *LEGACY_VARIABLES):
        value = os.environ.get(name)
        if value:
            return value
    return ""


def crash_if_asked(point: str, *, counted: bool = False, hard: bool = False) -> None:
    """Die at `point` when CUTOVER_CRASH_AT names it. `counted`: the value is POINT:N and the
    N-th arrival dies. `hard`: SIGKILL (no cleanup at all) instead of exit status 137."""
    wanted = _wanted()
    if not wanted:
        return
    if counted:
        name, _, count = wanted.rpartition(":")
        if name != point:
            return
        with _lock:
            _reached[point] += 1
            if _reached[point] != int(count or 1):
                return
    elif wanted != point:
        return
    if hard:
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)
