"""Collecting on a second core: a forked child reads, annotates and classifies the recipients
(and renders each one's line of the CSV report) while this process encodes, digests, sums and
inserts them, so the two halves of `inventory collect`, about equal, overlap instead of taking
turns.

The child only reads (exports, routing files, the sampled mail store) and hands its results
over a pipe, a batch at a time; the pipe holds little, so memory stays flat. It never touches
the state database it inherited and leaves with `os._exit`, so nothing of this process (its
SQLite connection, buffered output) is closed or flushed twice.

A child that does not finish (a bad export, an unreadable store, anything) carries no error
over: `ChildFailed` tells the caller to collect again in this process, where the error is
raised as it always was (and the transaction holding the rows received so far rolls back).
The forked path can make a collection faster, never different.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cutover.inventory.report import csv_line

BATCH = 200  # recipients per message (about 200 KB pickled)
PIPE_BUFFER = 1 << 20  # bytes the pipe holds: a few batches


class ChildFailed(Exception):
    """The collecting child stopped before its end: collect again in this process."""


def available() -> bool:
    """Whether forking pays and is safe: POSIX fork, a second core, and no other thread in
    this process (a fork copies only the calling thread, and the locks others may hold)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return cores > 1


@contextmanager
def forked_rows(run: Any) -> Iterator[Iterator[tuple[dict[str, Any], str]]]:
    """(recipient, its CSV report line) for every recipient of `run` (a Collection), read in
    a forked child; once they are all consumed, `run.warnings` holds the child's warnings.
    Iterating raises ChildFailed when the child did not finish."""
    read_end, write_end = os.pipe()
    _widen(write_end)
    try:
        pid = os.fork()
    except OSError as exc:  # out of processes or memory: collect in this process instead
        os.close(read_end)
        os.close(write_end)
        raise ChildFailed(f"cannot fork: {exc.strerror}") from None
    if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
        os.close(read_end)
        _child(run, write_end)
    os.close(write_end)
    finished = False
    try:
        with os.fdopen(read_end, "rb", buffering=PIPE_BUFFER) as stream:
            rows = _receive(stream, run.warnings)
            yield rows
            finished = rows.gi_frame is None  # the generator ran to its end
    finally:
        if not finished:
            _kill(pid)
        os.waitpid(pid, 0)


def _widen(pipe: int) -> None:
    """Let the pipe hold a few batches (Linux: 64 KiB by default, a fraction of one), so the
    child reads ahead while this process stores, and the two do not wait on each other for
    every 64 KiB when the machine is busy."""
    try:
        import fcntl

        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BUFFER)
    except (ImportError, AttributeError, OSError):  # not Linux, or above pipe-max-size
        pass


def _child(run: Any, write_end: int) -> None:  # pragma: no cover - runs in the child
    # What was there before the fork is never garbage here: the collector leaves it alone
    # (and the pages stay shared with the parent instead of being copied by the visits).
    gc.freeze()
    code = 1
    try:
        with os.fdopen(write_end, "wb", buffering=PIPE_BUFFER) as out:
            batch: list[tuple[dict[str, Any], str]] = []
            for recipient in run.recipients():
                batch.append((recipient, csv_line(recipient)))
                if len(batch) >= BATCH:
                    pickle.dump(("rows", batch), out, pickle.HIGHEST_PROTOCOL)
                    out.flush()  # to the parent now, not when a megabyte has gathered
                    batch = []
            pickle.dump(("rows", batch), out, pickle.HIGHEST_PROTOCOL)
            pickle.dump(("end", list(run.warnings)), out, pickle.HIGHEST_PROTOCOL)
        code = 0
    except BaseException:  # noqa: BLE001, S110 - the parent collects again and reports it
        pass
    finally:
        os._exit(code)


def _receive(stream: Any, warnings: list[str]) -> Iterator[tuple[dict[str, Any], str]]:
    load = pickle.load
    while True:
        try:
            kind, payload = load(stream)
        except (EOFError, pickle.UnpicklingError):
            raise ChildFailed("the collecting child stopped before its end") from None
        if kind == "end":
            warnings.extend(payload)
            return
        yield from payload


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # it only reads: nothing is left half-written
    except ProcessLookupError:  # pragma: no cover - it had exited already
        pass
