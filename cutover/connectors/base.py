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


#: (role, kind) -> class; role None: a connector usable in any role's section
CONNECTORS: dict[tuple[str | None, str], type] = {}
#: kind -> class, for listings (the reference docs); the last registered wins on a shared kind
CONNECTOR_KINDS: dict[str, type] = {}


def connector(kind: str, role: str | None = None, aliases: tuple[str, ...] = ()):
    """Class decorator: `kind` is what cutover.yaml writes to choose this class in the
    section of `role` (see cutover.connectors.roles); `aliases` are older names still read."""

    def register(cls: type) -> type:
        for name in (kind, *aliases):
            key = (role, name)
            if key in CONNECTORS and CONNECTORS[key] is not cls:
                raise RuntimeError(f"connector kind {name!r} registered twice for role {role}")
            CONNECTORS[key] = cls
        CONNECTOR_KINDS.setdefault(kind, cls)
        cls.connector_kind = kind
        cls.connector_role = role
        return cls

    return register


#: (role, kind) -> the module (under cutover.connectors) whose import registers it, so that a
#: lookup imports one module instead of all of them (exchangelib, msal... cost a process about
#: half a second); tests/connectors/test_registry.py keeps it equal to what load_all registers
KIND_MODULES: dict[tuple[str | None, str], str] = {
    ("accounts", "dovecot-passwd"): "dovecot.passwd",
    ("directory", "directory-file"): "m365.directory",
    ("directory", "graph"): "m365.directory",
    ("directory", "graph-directory"): "m365.directory",
    ("dns-zone", "rfc2136"): "bind.rfc2136",
    ("dns-zone", "zonefile"): "bind.zonefile",
    ("exchange-management", "exchange-file"): "exchange.shell_file",
    ("exchange-management", "exchange-shell"): "exchange.shell",
    ("exchange-management", "exo"): "m365.exo",
    ("exchange-management", "exo-file"): "m365.exo_file",
    ("forwarding", "ews"): "exchange.forwarding",
    ("forwarding", "ews-forwarding"): "exchange.forwarding",
    ("forwarding", "forwarding-file"): "exchange.forwarding",
    ("inventory-source", "ews"): "exchange.ews_inventory",
    ("inventory-source", "ews-inventory"): "exchange.ews_inventory",
    ("inventory-source", "getmailbox-csv"): "exchange.getmailbox_csv",
    ("inventory-source", "mailstore"): "mailstore_inventory",
    ("mail-store", "ews"): "exchange.ews_contacts",
    ("mail-store", "graph"): "m365.directory",
    ("mail-store", "imap"): "imap.store",
    ("mail-store", "maildir"): "dovecot.maildir",
    ("mta-maps", "postfix"): "postfix.maps",
    ("mta-maps", "postfix-maps"): "postfix.maps",
    ("personal-data", "ews"): "exchange.ews_contacts",
    ("personal-data", "graph"): "m365.graph_carry",
    ("personal-data", "personal-file"): "m365.personal_file",
    ("sieve-store", "managesieve"): "dovecot.managesieve",
    ("sieve-store", "sievedir"): "dovecot.sievedir",
    ("spam-filter", "rspamd"): "rspamd.settings",
}


def connector_class(role: str, kind: str) -> type | None:
    """The class that serves `role` for `kind`, or None."""
    if (role, kind) not in CONNECTORS and (None, kind) not in CONNECTORS:
        module = KIND_MODULES.get((role, kind)) or KIND_MODULES.get((None, kind))
        if module is None:
            load_all()  # not a shipped kind: whatever registers it, or nothing does
        else:
            importlib.import_module(f"{__name__.rsplit('.', 1)[0]}.{module}")
    return CONNECTORS.get((role, kind)) or CONNECTORS.get((None, kind))


def registered_kinds() -> set[str]:
    """Every kind name cutover ships or something registered (aliases included), without
    importing the connector modules."""
    return {kind for _, kind in KIND_MODULES} | {kind for _, kind in CONNECTORS}


def kinds_for(role: str) -> list[str]:
    load_all()
    return sorted({kind for (r, kind) in CONNECTORS if r in (role, None)})


_loaded = False


def load_all() -> dict[str, type]:
    """Import every connector module (once) so their kinds are registered."""
    global _loaded
    if not _loaded:
        import cutover.connectors as package

        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name != f"{package.__name__}.base":
                importlib.import_module(module.name)
        _loaded = True
    return CONNECTOR_KINDS
