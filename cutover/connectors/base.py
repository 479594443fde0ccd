"""Connector registry and the small shared vocabulary of connectors.

A connector is one external system (an IMAP server, a zone served over RFC 2136, a Postfix map
directory). Each real connector has a file-backed twin behind the same interface, named after its
format (MaildirMailStore beside ImapMailStore, ZoneFile beside Rfc2136Zone), so that the same
plans run in the demo and against real servers: cutover.yaml picks the `kind`.

    mailstores:
      linux: {kind: maildir, path: mail/linux}      # the twin
      # linux: {kind: imap, url: "imap://{user}@127.0.0.1:10143", password: env/LINUX_PW}

Each connector module registers its classes with `@connector("kind")`; a class provides
`from_config(config: dict, workspace) -> instance`. Only one method per connector opens the
network session (the seam tests and twins rely on).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cutover.workspace import Workspace


class Connector(Protocol):
    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace) -> Any: ...


CONNECTOR_KINDS: dict[str, type] = {}


def connector(kind: str):
    """Class decorator: `kind` is what cutover.yaml writes to choose this class."""

    def register(cls: type) -> type:
        if kind in CONNECTOR_KINDS and CONNECTOR_KINDS[kind] is not cls:
            raise RuntimeError(f"connector kind {kind!r} registered twice")
        CONNECTOR_KINDS[kind] = cls
        cls.connector_kind = kind
        return cls

    return register


def load_all() -> dict[str, type]:
    """Import every connector module (once) so their kinds are registered."""
    import cutover.connectors as package

    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if module.name != f"{package.__name__}.base":
            importlib.import_module(module.name)
    return CONNECTOR_KINDS
