"""Which source folders are synced, and what each is called on the target."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from cutover.connectors.mailstore import INBOX, SEPARATOR, FolderInfo
from cutover.errors import UsageError

#: What a special-use folder is called on a Linux (Dovecot) target when it has none yet.
CANONICAL_NAMES = {"\\Sent": "Sent", "\\Trash": "Trash", "\\Junk": "Junk", "\\Drafts": "Drafts"}


@dataclass(frozen=True)
class FolderRules:
    include: tuple[str, ...] = ()  # globs; empty = every folder
    exclude: tuple[str, ...] = ()
    mapping: dict[str, str] = field(default_factory=dict)  # OLD=NEW, children follow

    @classmethod
    def parse(cls, include: list[str] | None, exclude: list[str] | None,
              mapping: list[str] | dict[str, str] | None) -> FolderRules:
        pairs: dict[str, str] = {}
        if isinstance(mapping, dict):
            pairs = {str(k).strip("/"): str(v).strip("/") for k, v in mapping.items()}
        else:
            for text in mapping or []:
                old, sep, new = text.partition("=")
                if not sep or not old or not new:
                    raise UsageError(f"--map-folder wants OLD=NEW, not {text!r}")
                pairs[old.strip("/")] = new.strip("/")
        return cls(tuple(include or ()), tuple(exclude or ()), pairs)

    def wanted(self, name: str) -> bool:
        if self.include and not any(fnmatchcase(name, g) for g in self.include):
            return False
        return not any(fnmatchcase(name, g) for g in self.exclude)


def plan_folders(source: list[FolderInfo], target: list[FolderInfo],
                 rules: FolderRules) -> dict[str, str]:
    """Source folder name -> target folder name, for every wanted source folder (\\Noselect
    parents included, so the tree is the same)."""
    target_special = {f.special_use: f.name for f in target if f.special_use and f.selectable}
    top_level = {}
    for folder in source:
        if SEPARATOR not in folder.name and folder.special_use in CANONICAL_NAMES:
            use = folder.special_use
            top_level[folder.name] = target_special.get(use, CANONICAL_NAMES[use])
    result: dict[str, str] = {}
    for folder in source:
        if not rules.wanted(folder.name):
            continue
        result[folder.name] = map_name(folder.name, rules.mapping, top_level)
    return result


def map_name(name: str, explicit: dict[str, str], top_level: dict[str, str]) -> str:
    if name == INBOX:
        return explicit.get(INBOX, INBOX)
    for table in (explicit, top_level):
        parts = name.split(SEPARATOR)
        for cut in range(len(parts), 0, -1):
            head = SEPARATOR.join(parts[:cut])
            if head in table:
                return SEPARATOR.join([table[head], *parts[cut:]])
    return name
