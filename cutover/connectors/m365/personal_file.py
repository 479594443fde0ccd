"""The twin of the `personal:` section (role personal-data): a mailbox's contacts and inbox
rules as JSON files, in Microsoft Graph's shapes, kind `personal-file`.

    personal:
      cloud: {kind: personal-file, path: cloud/personal/, mailstore: cloud}
      exchange: {kind: personal-file, path: exchange/personal/}

One file per mailbox, `<path>/<mailbox>.json`: `{"contacts": [...], "messageRules": [...]}`,
each entry with the `id` the twin gave it. A folder a rule names is looked up in the mail store
named by `mailstore` (its folder path is the folder's id); without one, only the inbox exists.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover.connectors.base import connector
from cutover.connectors.m365.graph_carry import match_folder
from cutover.errors import ConfigInvalid, NotFound, UsageError
from cutover.files import atomic_write

if TYPE_CHECKING:
    from cutover.workspace import Workspace

#: well-known folder names (EWS distinguished ids) -> the special use of the folder
SPECIAL_USE = {"deleteditems": "\\Trash", "junkemail": "\\Junk", "sentitems": "\\Sent",
               "drafts": "\\Drafts", "archive": "\\Archive"}


@connector("personal-file", role="personal-data")
class PersonalDataFile:
    def __init__(self, path: Path, mailstore: str | None = None,
                 workspace: Workspace | None = None):
        self.path = path
        self.mailstore = mailstore
        self.workspace = workspace

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> PersonalDataFile:
        if not config.get("path"):
            raise ConfigInvalid("cutover.yaml: personal (personal-file) needs a path")
        return cls(workspace.path(config["path"]), config.get("mailstore"), workspace)

    def describe(self) -> str:
        return f"personal data files in {self.path}"

    def _file(self, mailbox: str) -> Path:
        return self.path / f"{mailbox.lower()}.json"

    def _load(self, mailbox: str) -> dict[str, Any]:
        try:
            data = json.loads(self._file(mailbox).read_text())
        except FileNotFoundError:
            return {"contacts": [], "messageRules": []}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self._file(mailbox)}: not readable JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self._file(mailbox)}: expected an object with contacts and "
                             "messageRules")
        return data

    def _save(self, mailbox: str, data: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self._file(mailbox), json.dumps(data, indent=2, sort_keys=True) + "\n")

    def _add(self, mailbox: str, section: str, entry: dict[str, Any]) -> dict[str, Any]:
        data = self._load(mailbox)
        created = {**entry, "id": uuid.uuid4().hex}
        data.setdefault(section, []).append(created)
        self._save(mailbox, data)
        return created

    def _remove(self, mailbox: str, section: str, entry_id: str) -> None:
        data = self._load(mailbox)
        kept = [e for e in data.get(section) or [] if e.get("id") != entry_id]
        if len(kept) != len(data.get(section) or []):
            data[section] = kept
            self._save(mailbox, data)

    def contacts(self, mailbox: str) -> list[dict[str, Any]]:
        return list(self._load(mailbox).get("contacts") or [])

    def create_contact(self, mailbox: str, contact: dict[str, Any]) -> dict[str, Any]:
        return self._add(mailbox, "contacts", contact)

    def delete_contact(self, mailbox: str, contact_id: str) -> None:
        self._remove(mailbox, "contacts", contact_id)

    def message_rules(self, mailbox: str) -> list[dict[str, Any]]:
        return list(self._load(mailbox).get("messageRules") or [])

    def create_message_rule(self, mailbox: str, rule: dict[str, Any]) -> dict[str, Any]:
        return self._add(mailbox, "messageRules", {"hasError": False, "isReadOnly": False,
                                                   **rule})

    def delete_message_rule(self, mailbox: str, rule_id: str) -> None:
        self._remove(mailbox, "messageRules", rule_id)

    def folder_id(self, mailbox: str, folder: str) -> str | None:
        if folder.lower() == "inbox":
            return "INBOX"
        if self.mailstore is None or self.workspace is None:
            return None
        session = self.workspace.connector("mail-store", self.mailstore).open(mailbox)
        try:
            folders = session.folders()
        except NotFound:
            return None  # no mailbox yet (the copy makes it): no folder either
        finally:
            session.close()
        use = SPECIAL_USE.get(folder.lower())
        if use is not None:
            return next((f.name for f in folders if f.special_use == use), None)
        return match_folder({f.name: f.name for f in folders}, folder)
