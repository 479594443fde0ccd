"""Folder names between cutover and one IMAP server's dialect (pure: strings in, strings out).

cutover names folders with "/" between levels and "INBOX" for the inbox, whatever the store
(`cutover.connectors.mailstore`). An IMAP server has its own hierarchy separator ("/" for
Dovecot, "." for Courier and Cyrus without `unixhierarchysep`) and may put every personal
folder under a personal-namespace prefix (RFC 2342 NAMESPACE: "INBOX." on Courier and Cyrus
without `altnamespace`). A `Dialect` holds both and maps names each way:

    Dialect(".", "INBOX.")   "Archive/2024"          <-> "INBOX.Archive.2024"
                             "INBOX"                 <-> "INBOX"
                             "INBOX/Station Reports" <-> "INBOX.INBOX.Station Reports"

A level of a cutover name may contain the server's separator ("ops.example.org" on a "."
server): it cannot be stored as written, so the separator is replaced by a look-alike that is
not a separator (U+2024 ONE DOT LEADER for ".") and the server's folder reads back as the
original name. The rule is fixed, so every run, re-run and `verify` map the name the same way;
`Dialect.renamed` says when a name is stored differently. A name that already contains the
look-alike could not be told apart after the round trip and is refused by name, as is a name
that cannot be stored at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from cutover.connectors.mailstore import INBOX, SEPARATOR
from cutover.errors import UsageError

#: What stands for a server separator inside one level of a name.
LOOK_ALIKES = {".": "\u2024", "\\": "\u29f5", ":": "\u2236"}
#: What stands for "/" inside one level of a server's name (on servers whose separator is not
#: "/", a folder may be called "a/b" without being nested).
SLASH_LOOK_ALIKE = "\u2215"


class FolderNameRefused(UsageError):
    """A folder name cannot be stored on this server without becoming another folder's name:
    rename or exclude (--exclude / --map-folder) the folder."""


@dataclass(frozen=True)
class Dialect:
    """One server's way of naming folders."""

    separator: str = SEPARATOR  # "" when the server has no hierarchy (LIST answers NIL)
    prefix: str = ""  # the personal namespace ("INBOX." or ""), ends with the separator
    others: tuple[str, ...] = ()  # other users' and shared namespace prefixes

    @property
    def label(self) -> str:
        return f"separator {self.separator or 'none'!r}, personal namespace {self.prefix!r}"

    # --- cutover -> server ----------------------------------------------------------------
    def to_wire(self, name: str) -> str:
        if name == INBOX:
            return INBOX
        levels = name.split(SEPARATOR)
        if self.separator == SEPARATOR:
            return self.prefix + name
        if not self.separator and len(levels) > 1:
            raise FolderNameRefused(f"folder {name!r}: the server has no folder hierarchy")
        return self.prefix + self.separator.join(self._level_to_wire(name, level)
                                                 for level in levels)

    def _level_to_wire(self, name: str, level: str) -> str:
        look_alike = LOOK_ALIKES.get(self.separator)
        if look_alike and look_alike in level:
            raise FolderNameRefused(
                f"folder {name!r} contains {look_alike!r}, which stands for "
                f"{self.separator!r} on this server: rename or exclude it")
        if self.separator and self.separator in level:
            if look_alike is None:
                raise FolderNameRefused(f"folder {name!r} contains the server's separator "
                                        f"{self.separator!r}: rename or exclude it")
            level = level.replace(self.separator, look_alike)
        return level.replace(SLASH_LOOK_ALIKE, SEPARATOR)

    def renamed(self, name: str) -> str | None:
        """The name as the server's users will see it, when it differs from `name` beyond
        the separator and prefix (a separator inside a level was replaced), else None."""
        wire = self.to_wire(name)
        if self.separator in (SEPARATOR, "") or not any(self.separator in level
                                                         for level in name.split(SEPARATOR)):
            return None
        shown = wire[len(self.prefix):] if name != INBOX else wire
        return shown.replace(self.separator, SEPARATOR)

    # --- server -> cutover ----------------------------------------------------------------
    def to_neutral(self, wire: str) -> str | None:
        """cutover's name for a server folder; None for a folder outside the personal
        namespace (another user's, a shared one) or for the prefix itself."""
        if wire.upper() == INBOX:
            return INBOX
        if self.prefix:
            if wire[:len(self.prefix)].upper() != self.prefix.upper():
                return None
            rest = wire[len(self.prefix):]
        else:
            if any(other and wire.startswith(other) for other in self.others):
                return None
            rest = wire
        if not rest:
            return None
        if self.separator == SEPARATOR:
            return rest
        levels = rest.split(self.separator) if self.separator else [rest]
        return SEPARATOR.join(self._level_to_neutral(wire, level) for level in levels)

    def _level_to_neutral(self, wire: str, level: str) -> str:
        if SLASH_LOOK_ALIKE in level:
            raise FolderNameRefused(f"server folder {wire!r} contains {SLASH_LOOK_ALIKE!r}, "
                                    f"which stands for '/' in cutover's names: rename it on "
                                    f"the server")
        look_alike = LOOK_ALIKES.get(self.separator)
        if look_alike:
            level = level.replace(look_alike, self.separator)
        return level.replace(SEPARATOR, SLASH_LOOK_ALIKE)


def dialect_from_namespace(personal: tuple[tuple[str, str | None], ...] | None,
                           others: tuple[tuple[str, str | None], ...] = (),
                           delimiter: str | None = None) -> Dialect:
    """A Dialect from a NAMESPACE answer (its first personal namespace), else from the
    delimiter `LIST "" ""` gave."""
    other_prefixes = tuple(prefix for prefix, _ in others if prefix)
    if personal:
        prefix, separator = personal[0]
        return Dialect(separator or "", prefix or "", other_prefixes)
    return Dialect(delimiter if delimiter is not None else SEPARATOR, "", other_prefixes)
