"""Inventory source: the accounts of a configured mail store (IMAP or Maildir, the Linux side).

    inventory:
      sources:
        linux:
          kind: mailstore
          store: linux                 # a `mailstores:` entry (kind imap or maildir)
          accounts: [datarequest@verify.example.org, bulletin@verify.example.org]
          # without accounts, a Maildir store lists its account directories
          sample: 50                   # newest INBOX headers sampled for traits (0: none)

Each account becomes a recipient of type `mailbox` with per-folder counts and sizes, the newest
INBOX date and traits. IMAP cannot list accounts, so IMAP stores need `accounts`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import ConfigInvalid, CutoverError
from cutover.inventory.traits import parse_headers, traits_from_headers


@connector("mailstore", role="inventory-source")
class MailStoreInventory:
    def __init__(self, mailstore: Any, store_name: str, accounts: list[str], sample: int):
        self.mailstore = mailstore
        self.store_name = store_name
        self.accounts = accounts
        self.sample = sample

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> MailStoreInventory:
        name = config.get("store")
        if not name:
            raise ConfigInvalid("cutover.yaml: an inventory source of kind mailstore needs "
                                "store: NAME (a mailstores entry)")
        mailstore = workspace.connector("mailstores", name)
        accounts = [str(a).lower() for a in config.get("accounts") or []]
        if not accounts:
            accounts = _maildir_accounts(mailstore)
        if not accounts:
            raise ConfigInvalid(f"cutover.yaml: inventory source on mailstore {name} needs "
                                "accounts: [...] (only a Maildir store can list its accounts)")
        return cls(mailstore, name, accounts, int(config.get("sample", 50)))

    def collect(self, warnings: list[str]) -> Iterator[dict[str, Any]]:
        for address in self.accounts:
            try:
                yield self._account(address)
            except CutoverError as exc:
                warnings.append(f"{self.mailstore.describe(address)}: skipped: {exc}")

    def _account(self, address: str) -> dict[str, Any]:
        local, _, domain = address.partition("@")
        with self.mailstore.open(address) as session:
            folders = [{"name": f.name, "messages": f.messages, "size_bytes": f.size_bytes,
                        "special_use": f.special_use} for f in session.folders() if f.selectable]
            headers, newest = [], None
            if any(f["name"] == "INBOX" and f["messages"] for f in folders):
                refs = session.list_messages("INBOX")
                if refs:
                    newest = max(r.internaldate for r in refs).isoformat()
                chosen = refs[-self.sample:] if self.sample > 0 else []
                headers = [parse_headers(content) for _uid, content
                           in session.fetch("INBOX", [r.uid for r in chosen])]
        return {
            "address": address, "local": local, "domain": domain, "aliases": [],
            "display_name": "", "type": "mailbox", "type_detail": self.store_name,
            "forwarding": [], "rules": [], "folders": folders,
            "size_bytes": sum(f["size_bytes"] for f in folders),
            "items": sum(f["messages"] for f in folders),
            "newest_item": newest, "traits": traits_from_headers(headers),
            "origin": self.mailstore.describe(address),
        }


def _maildir_accounts(mailstore: Any) -> list[str]:
    """Account directories of a Maildir store (`<root>/<address>/`), if it has a root."""
    root = getattr(mailstore, "root", None) or getattr(mailstore, "path", None)
    if root is None or not Path(root).is_dir():
        return []
    return sorted(p.name.lower() for p in Path(root).iterdir() if p.is_dir() and "@" in p.name)
