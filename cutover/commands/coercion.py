"""Option values converted without pydantic where that gives the same result.

typer (0.2x) converts every option value through a pydantic TypeAdapter, so each `cutover`
process imports pydantic (~50 ms, a third of a no-op `mailbox sync`) just to turn "4" into 4.
For the plain types our commands use (str, bool, Path, int, float, lists of str) and the plain
values a command line carries, the result is known without pydantic; anything else (a value
that would fail, a bound, a sign, an exponent) goes through typer's own conversion, so the
values and error messages stay exactly typer's. tests/commands/test_coercion.py holds every
option of every command to that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

DIGITS = re.compile(r"(0|[1-9][0-9]{0,17})")  # no sign, spaces, underscores or leading zeros
DECIMAL = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?")

#: the annotations converted here; everything else is typer's
_SCALARS = (str, Path, int, float, bool)


def install() -> None:
    """Route typer's conversion of the plain annotations through `_Plain`. A typer without
    the hook (another version) keeps its own conversion: slower, never different."""
    try:
        from typer import _coercion, core
    except ImportError:  # pragma: no cover - another typer layout
        return
    original = getattr(core, "build_runtime_param", None)
    runtime_param = getattr(_coercion, "RuntimeParam", None)
    if original is None or runtime_param is None or getattr(original, "plain", False):
        return

    @dataclass(frozen=True)
    class _Plain(runtime_param):
        """A plain value converted here; any other through typer's (built on first need)."""

        descriptor: Any = None
        built: dict = None  # type: ignore[assignment] - the typer RuntimeParam, once built

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            converted = _convert(self.annotation, self.parameter_info, value, param, ctx)
            if converted is not _TYPERS:
                return converted
            if "param" not in self.built:
                self.built["param"] = original(self.descriptor)
            return self.built["param"]._coerce_value(value, param=param, ctx=ctx)

    def build(descriptor: Any) -> Any:
        if not _handled(descriptor):
            return original(descriptor)
        return _Plain(parameter_info=descriptor.parameter_info,
                      annotation=descriptor.annotation, descriptor=descriptor, built={})

    build.plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build


_TYPERS = object()  # "not converted here: ask typer"


def _handled(descriptor: Any) -> bool:
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None or \
            getattr(info, "click_type", None) is not None:
        return False
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        return get_args(annotation) == (str,)
    if annotation is Path:
        return getattr(info, "path_type", None) is None
    return annotation in _SCALARS


def _convert(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """The value typer's pydantic conversion would return, or _TYPERS when not sure."""
    if get_origin(annotation) is list:
        if isinstance(value, list | tuple) and all(type(item) is str for item in value):
            return list(value)
        return _TYPERS
    if annotation is str:
        return value if type(value) is str else _TYPERS
    if annotation is bool:
        return value if type(value) is bool else _TYPERS
    if annotation is Path:
        return _path(info, value, param, ctx)
    if getattr(info, "clamp", False):
        return _TYPERS
    if annotation is int:
        number = value if type(value) is int else \
            int(value) if type(value) is str and DIGITS.fullmatch(value) else None
    else:  # float
        number = value if type(value) is float else \
            float(value) if type(value) is str and DECIMAL.fullmatch(value) else None
    if number is None or (info.min is not None and number < info.min) or \
            (info.max is not None and number > info.max):
        return _TYPERS  # typer's own words for what is wrong with it
    return number


def _path(info: Any, value: Any, param: Any, ctx: Any) -> Any:
    from typer._param_types import coerce_cli_path

    if type(value) is str and value and "\x00" not in value:
        value = Path(value)  # what pydantic makes of a plain path string
    if not isinstance(value, Path):
        return _TYPERS
    try:  # the checks (exists, file_okay...) are typer's own, given a Path
        return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
    except Exception:  # noqa: BLE001 - typer says what is wrong, in its words
        return _TYPERS
