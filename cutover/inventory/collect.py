"""Collection: sources -> routing files and traits -> classification -> one snapshot.

Sources are connectors (each `collect(warnings)` streams raw recipient dicts) configured under

    inventory:
      sources:
        exchange-csv: {kind: getmailbox-csv, path: inventory/Get-Mailbox.csv, mailstore: exchange}
      routing: {procmail: procmail/, sieve: sieve/, postfix: postfix/}
      classification: {...}            # see cutover.inventory.classify
      throughput_mb_per_s: 20

`mailstore: NAME` (a `mailstores:` entry) lets a source sample recent message headers of each
account for the trait conditions; `sample: 50` sets how many (0 turns sampling off).
Collection reads only; storing happens in `cutover.inventory.store` in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cutover.errors import ConfigInvalid, CutoverError, NotFound
from cutover.inventory import forked, store
from cutover.inventory.account_rules import RoutingIndex
from cutover.inventory.classify import Classifier
from cutover.inventory.traits import parse_headers, traits_from_headers

DEFAULT_SAMPLE = 50


class InventorySource(Protocol):
    """What every inventory connector offers: raw recipients, streamed, read-only."""

    def collect(self, warnings: list[str]) -> Iterator[dict[str, Any]]: ...


def inventory_config(workspace: Any) -> dict[str, Any]:
    config = workspace.config.get("inventory") or {}
    if not isinstance(config, dict):
        raise ConfigInvalid("cutover.yaml: inventory must be a mapping")
    return config


def source_configs(workspace: Any) -> dict[str, dict[str, Any]]:
    sources = inventory_config(workspace).get("sources") or {}
    if not isinstance(sources, dict) or not sources:
        raise ConfigInvalid("cutover.yaml: inventory.sources names no source (e.g. exchange-csv: "
                            "{kind: getmailbox-csv, path: inventory/Get-Mailbox.csv})")
    return sources


def build_source(workspace: Any, name: str) -> InventorySource:
    source_configs(workspace)  # the section must name at least one source
    return workspace.connector("inventory-source", name)


@dataclass
class Collection:
    """A collection in progress: iterate `recipients()` once, then read `warnings`."""

    workspace: Any
    names: list[str]
    now: datetime
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "+".join(self.names)

    def recipients(self) -> Iterator[dict[str, Any]]:
        config = inventory_config(self.workspace)
        classifier = Classifier.from_config(config.get("classification"), now=self.now)
        seen: set[str] = set()
        for name in self.names:
            source_config = source_configs(self.workspace)[name]
            source = build_source(self.workspace, name)
            routing = RoutingIndex(self.workspace,
                                   source_config.get("routing", config.get("routing")))
            sampler = _sampler(self.workspace, source_config, self.warnings)
            merged = len(self.names) > 1
            annotate, classify = routing.annotate, classifier.classify_in_place
            for raw in source.collect(self.warnings):
                if merged:  # an earlier source may have described it already
                    if raw["address"] in seen:
                        continue
                    seen.add(raw["address"])
                raw.setdefault("source", name)
                annotate(raw)
                if sampler is not None:
                    sampler(raw)
                yield classify(raw)  # the source's dict is handed on, not kept


def collection(workspace: Any, source: str | None = None,
               now: datetime | None = None) -> Collection:
    names = [source] if source else list(source_configs(workspace))
    if source:
        source_configs(workspace)  # the section must exist
        if source not in source_configs(workspace):
            build_source(workspace, source)  # raises NotFound naming the configured ones
    return Collection(workspace, names, now or datetime.now(UTC))


def collect_and_store(workspace: Any, state: Any, source: str | None = None,
                      created_by: str | None = None, now: datetime | None = None) -> int:
    """Collect (read-only) and store one complete snapshot; returns its id. With a second
    core the recipients are read in a forked child while this process stores them
    (`cutover.inventory.forked`); a child that fails is followed by a collection here, which
    raises what went wrong as it always did."""
    run = collection(workspace, source, now)
    if forked.available():
        try:
            made = store.SnapshotRows()
            with forked.forked_rows(run) as read:
                rows = (made.row(recipient, line) for recipient, line in read)
                return store.store_rows(state, run.label, rows, made.totals, run.warnings,
                                        created_by=created_by, taken_at=now)
        except forked.ChildFailed:
            run = Collection(run.workspace, run.names, run.now)  # the same run, afresh
    return store.store_snapshot(state, run.label, run.recipients(), run.warnings,
                                created_by=created_by, taken_at=now)


def _sampler(workspace: Any, config: dict[str, Any], warnings: list[str]):
    """A function adding `traits` (and missing sizes) from the configured mail store."""
    name = config.get("mailstore")
    size = int(config.get("sample", DEFAULT_SAMPLE))
    if not name or size <= 0:
        return None
    mailstore = workspace.connector("mailstores", name)
    listed = listed_accounts(mailstore)
    # addresses are case-insensitive, directory names are not: DiscoverySearchMailbox{...}@
    accounts = None if listed is None else {name.lower(): name for name in listed}

    def sample(recipient: dict[str, Any]) -> None:
        if recipient.get("type") in ("group", "contact", "mailuser"):
            return
        account = recipient["address"]
        if accounts is not None:
            account = accounts.get(account)
            if account is None:
                return  # no mailbox in this store: nothing to sample, and nothing to create
        try:
            traits, folders = sample_mailbox(mailstore, account, size)
        except NotFound:
            return  # not in this store: no traits, no warning (contacts, new mailboxes)
        except CutoverError as exc:
            warnings.append(f"{recipient['address']}: traits not sampled: {exc}")
            return
        recipient["traits"] = traits
        if recipient.get("size_bytes") is None:
            recipient["size_bytes"] = sum(f["size_bytes"] for f in folders)
            recipient["items"] = sum(f["messages"] for f in folders)

    return sample


def sample_mailbox(mailstore: Any, user: str,
                   size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Traits from the headers of the newest `size` INBOX messages, and per-folder counters."""
    with mailstore.open(user) as session:
        folders = [{"name": f.name, "messages": f.messages, "size_bytes": f.size_bytes}
                   for f in session.folders() if f.selectable]
        inbox = [f for f in folders if f["name"] == "INBOX"]
        headers: list[dict[str, str]] = []
        if inbox and inbox[0]["messages"]:
            refs = session.list_messages("INBOX")[-size:]
            for _uid, content in session.fetch("INBOX", [r.uid for r in refs]):
                headers.append(parse_headers(content))
    return traits_from_headers(headers), folders


def listed_accounts(mailstore: Any) -> frozenset[str] | None:
    """The accounts a store holds, when it can list them cheaply (a Maildir store: the
    directory names under its root, as written); None when it cannot (IMAP, EWS, Graph).
    Opening a Maildir account that is not there would create it, so an inventory must ask
    this first rather than open every address it knows."""
    root = getattr(mailstore, "root", None)
    if root is None:
        return None
    try:
        with os.scandir(root) as entries:
            return frozenset(entry.name for entry in entries if entry.is_dir())
    except FileNotFoundError:
        return frozenset()
    except OSError:
        return None
