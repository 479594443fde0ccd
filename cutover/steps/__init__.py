"""Step kinds: one module per kind ("dns.records" -> dns_records.py), each registering its class
with `base.register`. The modules are imported on demand (`load_all`, called by the plan loader
through `base.iter_kinds`), so a command that needs no step kind (`cutover status`) pays for
none."""

from __future__ import annotations

import importlib
import pkgutil

_loaded = False


def load_all() -> None:
    """Import every step kind module once, registering its kind."""
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base", "__init__"):
            importlib.import_module(f"{__name__}.{module.name}")
    _loaded = True
