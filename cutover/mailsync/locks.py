"""One copy into a target account at a time, whichever process, workspace or state DB runs it.

The identity map only knows the copies recorded in its own state DB, so two copies into the
same account at once (two `mailbox sync`, or one beside `run`) would each append everything.
A copy (and a rollback removing copies) holds the target's lock for its whole run:

- a store that can lock an account itself offers `copy_lock(user)` (the Maildir twin flocks
  the account's own `tmp/` directory: every process reaching that Maildir sees it, and it
  leaves no file behind);
- any other store (IMAP, Graph, EWS) is locked through a file in a lock directory shared by
  every cutover process of this host (`CUTOVER_LOCK_DIR`, default /tmp/cutover-locks), keyed
  by the password-free label of the target account (`imap://bob@host:143`).

A copy from another host is not seen by either: the engine's content match (a target that
already holds a message gets no second copy) covers that case.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cutover.connectors.mailstore import MailStore
from cutover.errors import WorkspaceLocked

DEFAULT_LOCK_DIR = "/tmp/cutover-locks"


def lock_dir() -> Path:
    return Path(os.environ.get("CUTOVER_LOCK_DIR") or DEFAULT_LOCK_DIR)


@contextmanager
def target_locks(targets: list[tuple[MailStore, str]], command: str,
                 create: bool = True) -> Iterator[None]:
    """Hold the copy lock of every distinct target account (in a fixed order); refuse with
    WorkspaceLocked (exit 2) naming the holder when another copy holds one. `create`: a
    store that locks the account itself may create a missing account to lock it (a copy);
    without it (a rollback) a missing account is left alone."""
    distinct: dict[str, tuple[MailStore, str]] = {}
    for store, user in targets:
        distinct.setdefault(store.describe(user), (store, user))
    with ExitStack() as stack:
        for label in sorted(distinct):
            store, user = distinct[label]
            own_lock = getattr(store, "copy_lock", None)
            if own_lock is not None:
                stack.enter_context(own_lock(user, create=create))
            else:
                stack.enter_context(_shared_lock(label, command))
        yield


@contextmanager
def _shared_lock(label: str, command: str) -> Iterator[None]:
    path = _lock_file(label)
    if path is None:
        yield  # no usable lock directory: the content match still prevents duplicates
        return
    writable = True
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file: locking needs only read access
        fd, writable = os.open(path, os.O_RDONLY), False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            raise WorkspaceLocked(f"another cutover copy into {label} is running ({holder}); "
                                  "wait for it to finish") from None
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}: {command}".encode(), 0)
        try:
            yield
        finally:
            if writable:
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock


def _lock_file(label: str) -> Path | None:
    directory = lock_dir()
    try:
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o1777)  # every user's cutover locks here, each its own files
    except OSError:
        return None
    name = hashlib.sha256(label.encode()).hexdigest()[:32] + ".lock"
    path = directory / name
    if not path.exists() and not os.access(directory, os.W_OK):
        return None
    return path
