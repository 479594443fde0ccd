"""Maildir mail store (kind `maildir`): the file-backed twin of ImapMailStore.

    mailstores:
      linux: {kind: maildir, path: mail/linux}    # one Maildir per user: mail/linux/<user>/

The on-disk format is exactly what Dovecot writes with `mail_location =
maildir:~/Maildir:LAYOUT=fs`, so a real Dovecot can serve a twin's directory and the twin can read
a Dovecot Maildir:

- layout "fs": INBOX is the user directory itself (cur/ new/ tmp/), folder "Archive/2024" is
  `<user>/Archive/2024/`; directory names are modified UTF-7 (as Dovecot stores them); a
  directory without cur/ is a \\Noselect parent.
- messages are stored with LF line endings (Dovecot's mail_save_crlf=no) and read back in the
  CRLF form an IMAP server presents, so digests match across stores. The file name carries
  `,S=<bytes on disk>,W=<RFC822.SIZE>` and the info suffix `:2,<flags>`: D Draft, F Flagged,
  R Answered, S Seen, T Deleted, and a-z for keywords numbered in `dovecot-keywords`.
- INTERNALDATE is the file's mtime, as Dovecot does.
- UIDs and UIDVALIDITY live in `dovecot-uidlist` (version 3 format), one per folder.

Writers take an flock on the folder directory, so threads and processes of cutover can share a
Maildir; do not let a running Dovecot write the same directory at the same time. A copy into an
account holds an flock on the account's `tmp/` directory for its whole run (`copy_lock`).

An account is its directory: reading one that does not exist raises NotFound (a misspelt path
or user never reads as an empty mailbox, and nothing is created by reading); `create_folder`
creates the account's Maildir when needed. Deleting a folder first moves its `cur/` out of the
tree in one rename, so a deletion cut short leaves a \\Noselect directory that the next
deletion finishes, never a folder half readable.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imapclient import imap_utf7

from cutover.connectors.base import connector
from cutover.connectors.mailstore import (
    INBOX,
    SEPARATOR,
    FolderInfo,
    MessageRef,
    NewMessage,
    SessionBase,
    guess_special_use,
    normalise_flags,
)
from cutover.errors import NotFound, UsageError, WorkspaceLocked

UIDLIST = "dovecot-uidlist"
KEYWORDS = "dovecot-keywords"
_FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                 "\\Deleted": "T"}
_LETTER_FLAGS = {letter: flag for flag, letter in _FLAG_LETTERS.items()}
_MAILDIR_DIRS = ("cur", "new", "tmp")
_counter = itertools.count()
_TRASH = ".cutover-deleted-"
_HOST = socket.gethostname().replace("/", "_").replace(":", "_") or "localhost"


def to_crlf(content: bytes) -> bytes:
    return content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(content: bytes) -> bytes:
    return content.replace(b"\r\n", b"\n")


@connector("maildir", role="mail-store")
class MaildirMailStore:
    """A directory of Maildirs, one per user at `<path>/<user>/`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> MaildirMailStore:
        if "path" not in config:
            raise UsageError("a maildir mailstore needs path: DIR")
        return cls(workspace.path(config["path"]))

    def describe(self, user: str) -> str:
        return f"maildir://{self.user_dir(user)}"

    def user_dir(self, user: str) -> Path:
        if not user or "/" in user or user in (".", ".."):
            raise UsageError(f"not a usable mailbox name: {user!r}")
        return self.root / user

    def open(self, user: str) -> MaildirSession:
        return MaildirSession(self.user_dir(user), user)

    @contextmanager
    def copy_lock(self, user: str, create: bool = True) -> Iterator[None]:
        """Hold the account's copy lock: an flock on its `tmp/` directory, seen by every
        process using this Maildir and leaving no file behind. With `create`, a missing
        account is created first (a copy creates it anyway); without, a missing account
        (nothing to take back from) is not locked."""
        root = self.user_dir(user)
        if not (root / "tmp").is_dir():
            if not create:
                yield
                return
            _make_maildir(root)
        fd = os.open(root / "tmp", os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WorkspaceLocked(f"another cutover copy into {self.describe(user)} is "
                                      "running; wait for it to finish") from None
            yield
        finally:
            os.close(fd)


@dataclass
class _Entry:
    uid: int
    base: str  # file name without the ":2," info suffix
    path: Path


class MaildirSession(SessionBase):
    capabilities = frozenset({"UIDPLUS", "MULTIAPPEND", "KEYWORDS", "INTERNALDATE",
                              "EXACT-CONTENT"})

    def __init__(self, root: Path, user: str):
        self.root = root
        self.user = user

    def _missing(self) -> NotFound:
        return NotFound(f"mailbox {self.user} does not exist (no Maildir at {self.root})")

    # --- paths ------------------------------------------------------------------------------
    def _dir(self, folder: str) -> Path:
        if folder == INBOX:
            return self.root
        parts = folder.split(SEPARATOR)
        if any(p in ("", ".", "..", *_MAILDIR_DIRS) for p in parts):
            raise UsageError(f"not a usable folder name: {folder!r}")
        return self.root.joinpath(*(imap_utf7.encode(p).decode("ascii") for p in parts))

    def _existing(self, folder: str) -> Path:
        path = self._dir(folder)
        if not (path / "cur").is_dir():
            if not (self.root / "cur").is_dir():
                raise self._missing()
            raise NotFound(f"folder {folder!r} does not exist in {self.user}")
        return path

    # --- reading ----------------------------------------------------------------------------
    def folders(self) -> list[FolderInfo]:
        if not (self.root / "cur").is_dir():
            raise self._missing()
        result = [self._info(INBOX, self.root)]
        for directory, names, _ in os.walk(self.root):
            names[:] = sorted(n for n in names if n not in _MAILDIR_DIRS)
            for name in names:
                path = Path(directory) / name
                rel = path.relative_to(self.root).parts
                folder = SEPARATOR.join(imap_utf7.decode(p.encode("ascii")) for p in rel)
                if folder == INBOX:
                    continue  # holds INBOX's children (INBOX itself is the root), as in Dovecot
                try:
                    result.append(self._info(folder, path))
                except NotFound:  # no cur/ (a parent, or a deletion cut short): \\Noselect
                    result.append(FolderInfo(folder, None, False))
        result.sort(key=lambda f: (f.name != INBOX, f.name.split(SEPARATOR)))
        return result

    def folder(self, name: str) -> FolderInfo:
        return self._info(name, self._existing(name))

    def _info(self, folder: str, path: Path) -> FolderInfo:
        with _locked(path):
            entries, validity, next_uid = self._sync(path)
        size = sum(_rfc822_size(e.path) for e in entries)
        special = guess_special_use(folder) if SEPARATOR not in folder else None
        return FolderInfo(folder, special, True, len(entries), size, validity, next_uid,
                          _change_marker(path, len(entries)))

    def list_messages(self, folder: str) -> list[MessageRef]:
        path = self._existing(folder)
        with _locked(path):
            entries, _, _ = self._sync(path)
        keywords = _read_keywords(path)
        refs = []
        for entry in entries:
            try:
                mtime = entry.path.stat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile
            refs.append(MessageRef(entry.uid, _rfc822_size(entry.path),
                                   _flags_of(entry.path.name, keywords),
                                   datetime.fromtimestamp(int(mtime), UTC)))
        return refs

    def fetch(self, folder: str, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        path = self._existing(folder)
        with _locked(path):
            entries, _, _ = self._sync(path)
        by_uid = {e.uid: e for e in entries}
        for uid in uids:
            entry = by_uid.get(uid)
            if entry is None:
                continue
            try:
                yield uid, to_crlf(entry.path.read_bytes())
            except FileNotFoundError:
                continue

    # --- writing ----------------------------------------------------------------------------
    def create_folder(self, name: str, special_use: str | None = None) -> None:
        path = self._dir(name)  # checks the name before anything is created
        if not (self.root / "cur").is_dir():
            _make_maildir(self.root)  # the account itself
        if name != INBOX:
            _make_maildir(path)

    def delete_folder(self, name: str) -> None:
        if name == INBOX:
            raise UsageError("INBOX cannot be deleted")
        path = self._dir(name)
        if not path.is_dir():
            return
        # cur/ leaves first, in one rename: from then on the folder is a \\Noselect directory
        # whatever happens, and the next deletion finishes the job. Sub-folders stay (as in
        # IMAP, the folder becomes a \\Noselect parent).
        trash = self._trash()
        parts = sorted((c for c in path.iterdir() if c.name in _MAILDIR_DIRS or not c.is_dir()),
                       key=lambda c: c.name != "cur")
        for child in parts:
            os.rename(child, trash / child.name)
        try:
            path.rmdir()
        except OSError:
            pass  # sub-folders (or someone's file) stay
        self._empty_trash()

    def _trash(self) -> Path:
        """A fresh directory under the account's tmp/ (never listed as a folder, and on the
        same file system, so a rename moves a folder's parts out of the tree at once)."""
        trash = self.root / "tmp" / f"{_TRASH}{os.getpid()}.{next(_counter)}"
        trash.mkdir(parents=True)
        return trash

    def _empty_trash(self) -> None:
        """Remove this process's trash and what a deletion cut short (its process gone) left."""
        tmp = self.root / "tmp"
        if not tmp.is_dir():
            return
        for leftover in tmp.glob(f"{_TRASH}*"):
            pid = leftover.name[len(_TRASH):].partition(".")[0]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue  # another process is deleting right now
            shutil.rmtree(leftover, ignore_errors=True)

    def rename_folder(self, old: str, new: str) -> None:
        source, target = self._existing(old), self._dir(new)
        if target.exists():
            raise UsageError(f"cannot rename {old!r}: {new!r} exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)

    def append(self, folder: str, items: Iterable[NewMessage]) -> list[int]:
        path = self._existing(folder)
        uids = []
        with _locked(path):
            entries, validity, next_uid = self._sync(path)
            lines = _read_uidlist_lines(path)
            keywords = _read_keywords(path)
            for item in items:
                name = self._deliver(path, item, keywords)
                lines.append(f"{next_uid} :{name.split(':2,')[0]}")
                uids.append(next_uid)
                next_uid += 1
            _write_uidlist(path, validity, next_uid, lines)
        return uids

    def _deliver(self, path: Path, item: NewMessage, keywords: list[str]) -> str:
        content = to_lf(item.content)
        now = time.time()
        base = (f"{int(now)}.M{int(now * 1e6) % 1000000}P{os.getpid()}Q{next(_counter)}.{_HOST}"
                f",S={len(content)},W={len(to_crlf(item.content))}")
        name = f"{base}:2,{_info_letters(item.flags, keywords, path)}"
        temp = path / "tmp" / base
        with open(temp, "wb") as handle:
            handle.write(content)
        moment = (item.internaldate or datetime.now(UTC)).timestamp()
        os.utime(temp, (moment, moment))
        os.rename(temp, path / "cur" / name)
        return name

    def set_flags(self, folder: str, uids: Sequence[int], flags: frozenset[str]) -> None:
        path = self._existing(folder)
        with _locked(path):
            entries, _, _ = self._sync(path)
            by_uid = {e.uid: e for e in entries}
            keywords = _read_keywords(path)
            letters = _info_letters(flags, keywords, path)
            for uid in uids:
                entry = by_uid.get(uid)
                if entry is not None:
                    entry.path.rename(path / "cur" / f"{entry.base}:2,{letters}")

    def delete(self, folder: str, uids: Sequence[int]) -> None:
        path = self._existing(folder)
        gone = set(uids)
        with _locked(path):
            entries, validity, next_uid = self._sync(path)
            for entry in entries:
                if entry.uid in gone:
                    entry.path.unlink(missing_ok=True)
            kept = [f"{e.uid} :{e.base}" for e in entries if e.uid not in gone]
            _write_uidlist(path, validity, next_uid, kept)

    # --- the uidlist -------------------------------------------------------------------------
    def _sync(self, path: Path) -> tuple[list[_Entry], int, int]:
        """Match files to UIDs; new files get the next UIDs (the caller holds the lock)."""
        files: dict[str, Path] = {}
        for sub in ("cur", "new"):
            try:
                with os.scandir(path / sub) as scan:
                    for item in scan:
                        if not item.name.startswith("."):
                            files[item.name.split(":2,")[0]] = Path(item.path)
            except FileNotFoundError:
                if sub == "cur":  # the folder went away meanwhile
                    raise NotFound(f"folder at {path} does not exist in {self.user}") from None
                # no new/ (a deletion cut short, or a hand-made Maildir): nothing new in it
        validity, next_uid, known = _read_uidlist(path)
        entries = [_Entry(uid, base, files.pop(base)) for uid, base in known if base in files]
        if files or len(entries) != len(known) or not validity:
            validity = validity or self._new_validity()
            for base in sorted(files, key=_delivery_order):
                entries.append(_Entry(next_uid, base, files[base]))
                next_uid += 1
            _write_uidlist(path, validity, next_uid, [f"{e.uid} :{e.base}" for e in entries])
        return entries, validity, next_uid

    def _new_validity(self) -> int:
        taken = set()
        for uidlist in self.root.rglob(UIDLIST):
            taken.add(_read_uidlist(uidlist.parent)[0])
        validity = int(time.time())
        while validity in taken:
            validity += 1
        return validity


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _make_maildir(path: Path) -> None:
    for sub in _MAILDIR_DIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFound(f"no Maildir folder at {path}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_uidlist(path: Path) -> tuple[int, int, list[tuple[int, str]]]:
    try:
        text = (path / UIDLIST).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0, 1, []
    lines = text.splitlines()
    validity, next_uid = 0, 1
    if lines:
        for field in lines[0].split()[1:]:
            if field[:1] == "V":
                validity = int(field[1:])
            elif field[:1] == "N":
                next_uid = int(field[1:])
    known = []
    for line in lines[1:]:
        uid, _, rest = line.partition(" ")
        base = rest.rpartition(":")[2] if ":" in rest else rest
        if uid.isdigit() and base:
            known.append((int(uid), base))
            next_uid = max(next_uid, int(uid) + 1)
    return validity, next_uid, known


def _read_uidlist_lines(path: Path) -> list[str]:
    _, _, known = _read_uidlist(path)
    return [f"{uid} :{base}" for uid, base in known]


def _write_uidlist(path: Path, validity: int, next_uid: int, lines: list[str]) -> None:
    temp = path / f"{UIDLIST}.cutover-tmp"
    temp.write_text(f"3 V{validity} N{next_uid}\n" + "".join(f"{line}\n" for line in lines))
    os.replace(temp, path / UIDLIST)


def _read_keywords(path: Path) -> list[str]:
    names: list[str] = [""] * 26
    try:
        for line in (path / KEYWORDS).read_text(encoding="utf-8").splitlines():
            index, _, name = line.partition(" ")
            if index.isdigit() and int(index) < 26:
                names[int(index)] = name
    except FileNotFoundError:
        pass
    return names


def _info_letters(flags: frozenset[str], keywords: list[str], path: Path) -> str:
    letters = sorted(_FLAG_LETTERS[f] for f in flags if f in _FLAG_LETTERS)
    added = False
    for keyword in sorted(f for f in flags if not f.startswith("\\")):
        if keyword not in keywords:
            if "" not in keywords:
                raise UsageError(f"more than 26 keywords in {path}")
            keywords[keywords.index("")] = keyword
            added = True
        letters.append(chr(ord("a") + keywords.index(keyword)))
    if added:
        text = "".join(f"{i} {k}\n" for i, k in enumerate(keywords) if k)
        (path / f"{KEYWORDS}.cutover-tmp").write_text(text)
        os.replace(path / f"{KEYWORDS}.cutover-tmp", path / KEYWORDS)
    return "".join(sorted(letters))


def _flags_of(name: str, keywords: list[str]) -> frozenset[str]:
    _, sep, info = name.partition(":2,")
    if not sep:
        return frozenset()
    flags = []
    for letter in info:
        if letter in _LETTER_FLAGS:
            flags.append(_LETTER_FLAGS[letter])
        elif "a" <= letter <= "z" and keywords[ord(letter) - ord("a")]:
            flags.append(keywords[ord(letter) - ord("a")])
    return normalise_flags(flags)


def _rfc822_size(path: Path) -> int:
    for field in path.name.split(":2,")[0].split(","):
        if field.startswith("W=") and field[2:].isdigit():
            return int(field[2:])
    try:
        return len(to_crlf(path.read_bytes()))
    except FileNotFoundError:
        return 0


def _delivery_order(base: str) -> tuple[int, str]:
    head = base.split(".", 1)[0]
    return (int(head) if head.isdigit() else 0, base)


def _change_marker(path: Path, count: int) -> int:
    """Not a MODSEQ: equal markers mean no file was added, removed or renamed (flags)."""
    stamps = [count]
    for name in ("cur", "new", UIDLIST, KEYWORDS):
        try:
            stamps.append((path / name).stat().st_mtime_ns)
        except FileNotFoundError:
            stamps.append(0)
    return hash(tuple(stamps)) & 0x7FFF_FFFF_FFFF_FFFF or 1
