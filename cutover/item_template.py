"""Expand plan templates such as "{local}@verify.example.org" over a for_each inventory item.

Only plain `{name}` fields of the item are allowed (no attribute access or indexing), and a
template naming a field the item lacks is an error that names the field.
"""

from __future__ import annotations

import string
from typing import Any

from cutover.errors import UsageError

_FORMATTER = string.Formatter()


class TemplateInvalid(UsageError):
    """A params template names a field the for_each item does not have, or is malformed."""


def expand(template: str, item: dict[str, Any] | None) -> str:
    """`template` with `{field}` replaced from `item`; unchanged when there is no item."""
    try:
        fields = [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]
    except ValueError as exc:
        raise TemplateInvalid(f"template {template!r}: {exc}") from None
    if not fields:
        return template.replace("{{", "{").replace("}}", "}")
    if item is None:
        raise TemplateInvalid(f"template {template!r} needs a for_each item")
    for name in fields:
        if not name.isidentifier():
            raise TemplateInvalid(f"template {template!r}: use plain {{field}} names only")
        if name not in item:
            known = ", ".join(sorted(item))
            raise TemplateInvalid(f"template {template!r}: the item has no field {name!r} "
                                  f"(fields: {known})")
    return template.format_map({name: "" if item[name] is None else item[name]
                                for name in fields})
