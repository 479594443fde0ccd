"""Compare two accounts: same folder tree, per folder the same multiset of messages byte for
byte, with the same flags/keywords and INTERNALDATE (to the second).

Byte for byte needs both stores to keep content exactly (capability EXACT-CONTENT). When one
does not (Exchange Online through Graph rebuilds MIME; an EWS export is rebuilt from MAPI too),
messages are matched by their normalised identity (cutover/mailsync/normalised.py: Message-ID,
else Date/From/Subject/body size), still counted as a multiset per folder, and compared on
\\Seen \\Flagged \\Answered, keywords as the stores report them, and INTERNALDATE to the second.
The result names the comparison used.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from cutover.connectors.mailstore import MailboxSession, MessageRef, content_digest
from cutover.mailsync.folders import FolderRules, plan_folders
from cutover.mailsync.identity import counters_key
from cutover.mailsync.normalised import (
    compared_flags,
    keeps_exact_content,
    message_identity,
    pair_up,
)

BY_CONTENT = "content-digest"
BY_IDENTITY = "normalised-identity"
METHOD_DESCRIPTIONS = {
    BY_CONTENT: "messages compared byte for byte (content digest), all flags",
    BY_IDENTITY: "messages compared by normalised identity (Message-ID, else Date/From/"
                 "Subject/body size), \\Seen \\Flagged \\Answered and keywords: a store "
                 "does not keep content exactly",
}

Entry = tuple[tuple[str, ...], int]  # (sorted flags, INTERNALDATE in whole seconds)


@dataclass
class FolderDiff:
    source: str
    target: str
    missing: int = 0  # in the source, not in the target
    extra: int = 0  # in the target, not in the source
    flags: int = 0
    dates: int = 0
    problem: str = ""  # folder-level: missing folder, \\Noselect mismatch

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.flags or self.dates or self.problem)

    def describe(self) -> str:
        if self.problem:
            return f"{self.source}: {self.problem}"
        parts = [f"{n} {what}" for n, what in ((self.missing, "missing"),
                 (self.extra, "extra"), (self.flags, "with other flags"),
                 (self.dates, "with another INTERNALDATE")) if n]
        return f"{self.source} -> {self.target}: " + ", ".join(parts)


@dataclass
class Comparison:
    folders: int = 0
    messages: int = 0
    differences: list[FolderDiff] = field(default_factory=list)
    method: str = BY_CONTENT  # BY_CONTENT or BY_IDENTITY
    #: (source folder, target folder, strict, counters) of each folder found equal, to be
    #: remembered; strict: extra target messages were not allowed
    verified: list[tuple[str, str, bool, str]] = field(default_factory=list)
    unchanged: int = 0  # folders found equal by their counters alone

    @property
    def equal(self) -> bool:
        return not self.differences

    def describe_method(self) -> str:
        return METHOD_DESCRIPTIONS[self.method]

    def to_json(self) -> dict[str, Any]:
        return {"equal": self.equal, "folders": self.folders, "messages": self.messages,
                "comparison": self.method, "comparison_description": self.describe_method(),
                "differences": [dict(d.__dict__, description=d.describe())
                                for d in self.differences]}


#: per source folder: (target folder, strict, counters) of its last equal comparison
Known = dict[str, tuple[str, bool, str]]


def compare(src: MailboxSession, dst: MailboxSession, rules: FolderRules | None = None,
            delete: bool = True, known: Known | None = None) -> Comparison:
    """`delete=False` accepts extra target messages (a sync without --delete keeps them), but
    not more copies of a source message than the source holds: a sync never makes those.

    `known`: folders an earlier comparison found equal, with both sides' counters then. A
    folder whose counters have not moved since is equal without reading its messages (IMAP
    messages never change; any flag change moves HIGHESTMODSEQ, and a Maildir's change marker
    moves with any file); the others are compared message by message."""
    rules = rules or FolderRules()
    known = known or {}
    src_folders, dst_folders = src.folders(), dst.folders()
    mapping = plan_folders(src_folders, dst_folders, rules)
    dst_by_name = {f.name: f for f in dst_folders}
    method = BY_CONTENT if keeps_exact_content(src, dst) else BY_IDENTITY
    result = Comparison(method=method)
    for info in src_folders:
        if info.name not in mapping:
            continue
        target = mapping[info.name]
        result.folders += 1
        other = dst_by_name.get(target)
        if other is None:
            result.differences.append(FolderDiff(info.name, target, problem="missing on target"))
            continue
        if not info.selectable:
            continue
        if not other.selectable:
            result.differences.append(FolderDiff(info.name, target,
                                                 problem="not selectable on target"))
            continue
        result.messages += info.messages
        counters = counters_key(info, other)
        earlier = known.get(info.name)
        if counters and earlier and earlier[0] == target and earlier[2] == counters \
                and (earlier[1] or not delete):
            result.unchanged += 1
            result.verified.append((info.name, target, earlier[1], counters))
            continue
        diff = _compare_folder(src, dst, info.name, target, delete, method)
        if not diff.equal:
            result.differences.append(diff)
        elif counters:
            result.verified.append((info.name, target, delete, counters))
    return result


def _snapshot(session: MailboxSession, folder: str) -> dict[str, list[Entry]]:
    refs: dict[int, MessageRef] = {m.uid: m for m in session.list_messages(folder)}
    by_digest: dict[str, list[Entry]] = defaultdict(list)
    for uid, content in session.fetch(folder, sorted(refs)):
        ref = refs[uid]
        by_digest[content_digest(content)].append(
            (tuple(sorted(ref.flags)), int(ref.internaldate.timestamp())))
    return by_digest


def _identities(session: MailboxSession, folder: str) -> list[tuple[Any, Entry]]:
    refs: dict[int, MessageRef] = {m.uid: m for m in session.list_messages(folder)}
    return [(message_identity(content),
             (tuple(sorted(compared_flags(refs[uid].flags))),
              int(refs[uid].internaldate.timestamp())))
            for uid, content in session.fetch(folder, sorted(refs))]


def _compare_folder(src: MailboxSession, dst: MailboxSession, name: str, target: str,
                    delete: bool, method: str = BY_CONTENT) -> FolderDiff:
    diff = FolderDiff(name, target)
    if method == BY_CONTENT:
        left, right = _snapshot(src, name), _snapshot(dst, target)
        groups = [(left.get(d, []), right.get(d, [])) for d in set(left) | set(right)]
    else:
        groups = pair_up(_identities(src, name), _identities(dst, target))
    for a, b in groups:
        _compare_group(diff, a, b, delete)
    return diff


def _compare_group(diff: FolderDiff, a: list[Entry], b: list[Entry], delete: bool) -> None:
    """One message on both sides (a list each: duplicates are counted)."""
    if len(a) > len(b):
        diff.missing += len(a) - len(b)
    elif len(b) > len(a) and (delete or a):  # a duplicated copy is extra even without delete
        diff.extra += len(b) - len(a)
    common = min(len(a), len(b))
    if not common:
        return
    if Counter(f for f, _ in a) != Counter(f for f, _ in b) and len(a) == len(b):
        diff.flags += sum((Counter(f for f, _ in a) - Counter(f for f, _ in b)).values())
    if Counter(d for _, d in a) != Counter(d for _, d in b) and len(a) == len(b):
        diff.dates += sum((Counter(d for _, d in a) - Counter(d for _, d in b)).values())
    if len(a) != len(b):
        pairs_a, pairs_b = sorted(a)[:common], sorted(b)[:common]
        diff.flags += sum(1 for x, y in zip(pairs_a, pairs_b, strict=True) if x[0] != y[0])
