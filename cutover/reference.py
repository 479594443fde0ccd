"""Reference documentation generated from the code: every step kind (its summary, module
docstring with the YAML a plan writes, and its params) and every connector kind. The rendered
files live in docs/ and a test keeps them current."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from pydantic import BaseModel

from cutover.connectors.base import CONNECTORS, load_all
from cutover.connectors.roles import ROLES
from cutover.steps.base import STEP_KINDS, iter_kinds


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")


def params_rows(model: type[BaseModel]) -> list[tuple[str, str, str]]:
    rows = []
    for name, info in model.model_fields.items():
        default = "required" if info.is_required() else repr(info.get_default(
            call_default_factory=True))
        rows.append((name, _type_name(info.annotation), default))
    return rows


def step_kinds() -> list[dict[str, Any]]:
    kinds = []
    for kind in iter_kinds():
        cls = STEP_KINDS[kind]
        if cls.__module__.startswith("cutover.steps."):
            module = sys.modules[cls.__module__]
            kinds.append({"kind": kind, "summary": cls.summary, "module": cls.__module__,
                          "doc": inspect.cleandoc(module.__doc__ or ""),
                          "params": params_rows(cls.Params)})
    return kinds


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def step_kinds_markdown() -> str:
    lines = ["# Step kinds", "",
             "Generated from the code (`cutover/reference.py`); every kind has the same four "
             "verbs: preview, apply, verify, rollback (see [runner.md](runner.md)).", "",
             "| kind | what it does |", "| --- | --- |"]
    kinds = step_kinds()
    lines += [f"| [`{k['kind']}`](#{k['kind'].replace('.', '')}) | {_cell(k['summary'])} |"
              for k in kinds]
    for k in kinds:
        lines += ["", f"## {k['kind']}", "", f"`{k['module']}`", "", k["doc"], "",
                  "| param | type | default |", "| --- | --- | --- |"]
        lines += [f"| `{name}` | `{_cell(kind)}` | `{_cell(default)}` |"
                  for name, kind, default in k["params"]]
    return "\n".join(lines).rstrip() + "\n"


def connectors_markdown() -> str:
    lines = ["# Connector kinds", "",
             "Generated from the code (`cutover/reference.py`). `cutover.yaml` chooses one per "
             "logical system; each real connector has a file-backed twin behind the same "
             "interface.", ""]
    load_all()
    by_class: dict[type, list[str]] = {}
    for (role, kind), cls in CONNECTORS.items():
        if kind == cls.connector_kind:
            by_class.setdefault(cls, []).append(role or "any role")
    for cls, roles in sorted(by_class.items(),
                             key=lambda entry: (entry[0].connector_kind, entry[1])):
        module = sys.modules[cls.__module__]
        section = ", ".join(f"{role} (`{ROLES[role].section}:`)" if role in ROLES else role
                            for role in sorted(roles))
        lines += [f"## `{cls.connector_kind}`: {cls.__name__}", "", f"`{cls.__module__}`; "
                  f"role: {section}", "", inspect.cleandoc(module.__doc__ or ""), ""]
    return "\n".join(lines).rstrip() + "\n"
