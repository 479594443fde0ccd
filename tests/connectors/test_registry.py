"""The connector registry: looking a kind up imports only the module that registers it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import cutover.connectors as package
from cutover.connectors import base


def test_kind_modules_list_every_shipped_kind():
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if module.name != base.__name__:
            importlib.import_module(module.name)
    shipped = {key for key, cls in base.CONNECTORS.items()
               if cls.__module__.startswith(f"{package.__name__}.")}
    assert set(base.KIND_MODULES) == shipped


def test_importing_the_listed_module_registers_the_kind():
    code = ("import importlib; from cutover.connectors import base\n"
            "for key, module in base.KIND_MODULES.items():\n"
            "    if key not in base.CONNECTORS:\n"
            "        importlib.import_module('cutover.connectors.' + module)\n"
            "        assert key in base.CONNECTORS, key\n")
    checked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (checked.returncode, checked.stderr) == (0, "")


def test_looking_up_a_twin_imports_neither_exchange_nor_microsoft_365_modules():
    code = ("import sys; from cutover.connectors.base import connector_class; "
            "assert connector_class('mail-store', 'maildir').__name__; "
            "print(sorted(m for m in sys.modules if m.startswith('cutover.connectors.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert "cutover.connectors.dovecot.maildir" in loaded
    assert "exchange" not in loaded and "m365" not in loaded and "exchangelib" not in loaded


def test_an_unknown_kind_is_none_and_every_kind_is_still_listed():
    assert base.connector_class("mail-store", "no-such-kind") is None
    assert {"maildir", "imap", "ews", "graph"} <= set(base.kinds_for("mail-store"))
    assert "rspamd" in base.registered_kinds()
