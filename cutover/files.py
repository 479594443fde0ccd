"""Writing files so that a crash never leaves half of one: the one `atomic_write`.

Every connector and step that rewrites a file (zone files, Postfix maps, the passwd-file, sieve
scripts, forwarding twins, procmailrc) goes through here, so they share one guarantee: readers
see the old content or the new, never a mix; the new content is on disk (file and directory
entry fsynced) before the call returns; the file keeps its mode and owner.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, content: str | bytes, mode: int | None = None,
                 encoding: str = "utf-8", new_file_mode: int | None = None) -> None:
    """Replace `path` with `content` atomically (text is written as given: no newline
    translation). An existing file's mode and owner are kept unless `mode` is given; a new file
    gets `mode`, else `new_file_mode`, else 0666 less the umask."""
    path = Path(path)
    data = content.encode(encoding) if isinstance(content, str) else content
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        elif existing is not None:
            os.chmod(temporary, existing.st_mode & 0o7777)
        elif new_file_mode is not None:
            os.chmod(temporary, new_file_mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        if existing is not None:
            with contextlib.suppress(PermissionError):  # not root: the owner is ours anyway
                os.chown(temporary, existing.st_uid, existing.st_gid)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
