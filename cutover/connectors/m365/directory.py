"""Who has a Microsoft 365 mailbox: the tenant's users, read through Microsoft Graph.

Phase 2 copies mail only into mailboxes that exist; provisioning (a user with an Exchange
Online licence) is done by an administrator in the Microsoft 365 admin centre, never by cutover.
The `cloud.mailbox` step asks a directory whether each person's mailbox is there.

    directory:
      m365:
        kind: graph-directory                  # reads GET /users (User.Read.All, application)
        tenant_id: 0f3c7a52-6d2e-4b7e-9d7a-2a4c1e9b8f10
        client_id: 6731de76-14a6-49ae-97bc-6eba6914391e
        client_secret: env/CUTOVER_GRAPH_SECRET
      # the twin, for the demo: a JSON list of users in Graph's shape
      # m365: {kind: directory-file, path: directory/users.json}

A user "has a mailbox" when it is enabled and mail-enabled (its `mail` is set); addresses are
matched against `mail`, `userPrincipalName` and every `smtp:` proxy address, case-insensitively.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cutover.connectors.base import connector
from cutover.connectors.m365.graph import GRAPH_URL, LOGIN_URL, GraphClient, GraphCredentials
from cutover.errors import ConfigInvalid, NotFound, UsageError
from cutover.parsers import graph_json as gj

if TYPE_CHECKING:
    from cutover.workspace import Workspace


class UserDirectory(Protocol):
    def find(self, address: str) -> gj.DirectoryUser | None:
        """The user owning `address` (any of its SMTP addresses), or None."""
        ...

    def describe(self) -> str: ...


def has_mailbox(user: gj.DirectoryUser | None) -> bool:
    return user is not None and user.enabled and bool(user.mail)


class _IndexedUsers:
    """Shared lookup: every address of every user, lower-case."""

    _index: dict[str, gj.DirectoryUser] | None = None

    def _load(self) -> list[gj.DirectoryUser]:
        raise NotImplementedError

    def users(self) -> list[gj.DirectoryUser]:
        return list({user.id: user for user in self._indexed().values()}.values())

    def _indexed(self) -> dict[str, gj.DirectoryUser]:
        if self._index is None:
            self._index = {address: user for user in self._load() for address in user.addresses}
        return self._index

    def find(self, address: str) -> gj.DirectoryUser | None:
        return self._indexed().get(address.strip().lower())

    def refresh(self) -> None:
        self._index = None


@connector("graph", role="directory", aliases=("graph-directory",))
class GraphDirectory(_IndexedUsers):
    """The tenant's users through `GET /users` (paged, read once per run and cached)."""

    def __init__(self, client: GraphClient):
        self.client = client

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> GraphDirectory:
        credentials = GraphCredentials.from_config(config, workspace, "directory (graph)")
        return cls(GraphClient(credentials, graph_url=config.get("graph_url", GRAPH_URL),
                               login_url=config.get("login_url", LOGIN_URL),
                               permission="User.Read.All"))

    def _load(self) -> list[gj.DirectoryUser]:
        params = {"$select": gj.USER_SELECT, "$top": 999}
        return [gj.parse_user(item) for item in self.client.collection("users", params)]

    def describe(self) -> str:
        return f"Microsoft 365 tenant {self.client.credentials.tenant_id}"


@connector("directory-file", role="directory")
class UserDirectoryFile(_IndexedUsers):
    """The twin: a JSON file holding a list of users as Graph returns them (or a saved
    `/users` response with its `value`). Re-read on every lookup so edits show at once."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> UserDirectoryFile:
        if not config.get("path"):
            raise ConfigInvalid("cutover.yaml: directory (directory-file) needs a path")
        return cls(workspace.path(config["path"]))

    def _load(self) -> list[gj.DirectoryUser]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise NotFound(f"directory file {self.path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"directory file {self.path} is not readable JSON: {exc}") from None
        items = data.get("value") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise UsageError(f"directory file {self.path}: expected a JSON list of users")
        try:
            return [gj.parse_user(item) for item in items]
        except gj.GraphPayloadError as exc:
            raise UsageError(f"directory file {self.path}: {exc}") from None

    def find(self, address: str) -> gj.DirectoryUser | None:
        self.refresh()
        return super().find(address)

    def describe(self) -> str:
        return f"directory file {self.path}"
