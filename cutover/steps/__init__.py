"""Step kinds: one module per kind ("dns.records" -> dns_records.py). Importing this package
imports every module in it, which registers each kind with `base.register`."""

import importlib
import pkgutil

from cutover.steps.base import STEP_KINDS, Change, Context, Finding, Step, register

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STEP_KINDS", "Change", "Context", "Finding", "Step", "register"]
