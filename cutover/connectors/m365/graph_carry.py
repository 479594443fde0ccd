"""A mailbox's contacts and inbox rules in Exchange Online, through Microsoft Graph (v1.0):
kind `graph` in the `personal:` section (role personal-data).

    personal:
      cloud:
        kind: graph
        tenant_id: 0f3c7a52-6d2e-4b7e-9d7a-2a4c1e9b8f10
        client_id: 6731de76-14a6-49ae-97bc-6eba6914391e
        client_secret: env/CUTOVER_GRAPH_SECRET      # or certificate: {...}, as for mailstores

The app needs the application permissions Contacts.ReadWrite (contacts) and
MailboxSettings.ReadWrite (inbox rules), granted by an administrator. Requests:
- contacts of the default contacts folder: GET/POST /users/{id}/contacts, DELETE .../{id};
- inbox rules: GET/POST /users/{id}/mailFolders/inbox/messageRules, DELETE .../{id};
- a folder a rule moves or copies to: GET /users/{id}/mailFolders/{well-known name}, else the
  folder tree (GET mailFolders, then childFolders), matched by path or by a unique name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cutover.connectors.base import connector
from cutover.connectors.m365.graph_client import (
    GRAPH_URL,
    LOGIN_URL,
    GraphClient,
    GraphCredentials,
    user_path,
)
from cutover.errors import NotFound
from cutover.parsers import graph_carry as gc
from cutover.parsers import graph_json as gj

if TYPE_CHECKING:
    from cutover.workspace import Workspace

#: Graph's well-known mail folder names a rule may name (EWS distinguished folder ids).
WELL_KNOWN = frozenset({"inbox", "deleteditems", "junkemail", "sentitems", "drafts", "archive",
                        "outbox", "conversationhistory", "clutter"})
CONTACT_SELECT = ",".join(("id", *gc.CONTACT_FIELDS))
PERMISSIONS = "Contacts.ReadWrite and MailboxSettings.ReadWrite"


@connector("graph", role="personal-data")
class GraphPersonalData:
    """Contacts and messageRules of Exchange Online mailboxes."""

    def __init__(self, client: GraphClient):
        self.client = client

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> GraphPersonalData:
        credentials = GraphCredentials.from_config(config, workspace, "personal (graph)")
        return cls(GraphClient(credentials, graph_url=config.get("graph_url", GRAPH_URL),
                               login_url=config.get("login_url", LOGIN_URL),
                               permission=PERMISSIONS))

    def describe(self) -> str:
        return f"Microsoft 365 tenant {self.client.credentials.tenant_id}"

    # --- contacts ----------------------------------------------------------------------
    def contacts(self, mailbox: str) -> list[dict[str, Any]]:
        return list(self.client.collection(f"{user_path(mailbox)}/contacts",
                                           {"$top": 100, "$select": CONTACT_SELECT}))

    def create_contact(self, mailbox: str, contact: dict[str, Any]) -> dict[str, Any]:
        response = self.client.send("POST", f"{user_path(mailbox)}/contacts",
                                    json=gc.contact_body(contact))
        return gj.loads(response.content)

    def delete_contact(self, mailbox: str, contact_id: str) -> None:
        try:
            self.client.send("DELETE", f"{user_path(mailbox)}/contacts/{contact_id}")
        except NotFound:
            pass  # gone already: a rollback is idempotent

    # --- inbox rules -------------------------------------------------------------------
    def _rules_path(self, mailbox: str) -> str:
        return f"{user_path(mailbox)}/mailFolders/inbox/messageRules"

    def message_rules(self, mailbox: str) -> list[dict[str, Any]]:
        return list(self.client.collection(self._rules_path(mailbox)))

    def create_message_rule(self, mailbox: str, rule: dict[str, Any]) -> dict[str, Any]:
        return gj.loads(self.client.send("POST", self._rules_path(mailbox), json=rule).content)

    def delete_message_rule(self, mailbox: str, rule_id: str) -> None:
        try:
            self.client.send("DELETE", f"{self._rules_path(mailbox)}/{rule_id}")
        except NotFound:
            pass

    # --- folders a rule names ----------------------------------------------------------
    def folder_id(self, mailbox: str, folder: str) -> str | None:
        if folder.lower() in WELL_KNOWN:
            try:
                found = self.client.get_json(f"{user_path(mailbox)}/mailFolders/"
                                             f"{folder.lower()}", {"$select": "id"})
            except NotFound:
                return None
            return str(found["id"])
        return match_folder(self._tree(mailbox), folder)

    def _tree(self, mailbox: str) -> dict[str, str]:
        """path -> id of every mail folder (display names joined by "/")."""
        base = user_path(mailbox)
        params = {"$top": 100, "$select": "id,displayName,childFolderCount"}
        tree: dict[str, str] = {}
        queue: list[tuple[str, str]] = [(f"{base}/mailFolders", "")]
        while queue:
            url, parent = queue.pop(0)
            for item in self.client.collection(url, params):
                path = f"{parent}/{item['displayName']}" if parent else str(item["displayName"])
                tree[path] = str(item["id"])
                if item.get("childFolderCount"):
                    queue.append((f"{base}/mailFolders/{item['id']}/childFolders", path))
        return tree


def match_folder(tree: dict[str, str], folder: str) -> str | None:
    """The id of `folder` (a path, or a name that only one folder has), case-insensitively."""
    wanted = folder.strip("/").lower()
    by_path = {path.lower(): folder_id for path, folder_id in tree.items()}
    if wanted in by_path:
        return by_path[wanted]
    leaves = [folder_id for path, folder_id in tree.items()
              if path.rpartition("/")[2].lower() == wanted]
    return leaves[0] if len(leaves) == 1 else None
