"""The one credential reader. Every secret cutover uses comes through here: references in
cutover.yaml (`env/NAME`, `file/PATH`), the `--*-password-file` options of the command line.

A credential file must be readable by its owner only (mode 0600, as ssh keys), whoever names it;
the value is never echoed in an error message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cutover.errors import SecretUnavailable

REFERENCE_SCHEMES = ("env", "file")


def is_reference(value: object) -> bool:
    return isinstance(value, str) and value.startswith(tuple(f"{s}/" for s in REFERENCE_SCHEMES))


def resolve_secret(reference: str, base: Path | None = None) -> str:
    """The secret `env/NAME` or `file/PATH` names; a relative PATH is taken from `base`."""
    scheme, target = _split(reference)
    if scheme == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretUnavailable(f"environment variable {target} is not set")
        return value
    return read_secret_file(_file_path(target, base))


def check_secret(reference: str, base: Path | None = None) -> None:
    """Raise SecretUnavailable when `reference` could not be resolved now, without reading the
    secret itself (validation before a run: the value stays out of memory until it is used)."""
    scheme, target = _split(reference)
    if scheme == "env":
        if target not in os.environ:
            raise SecretUnavailable(f"environment variable {target} is not set")
        return
    path = _file_path(target, base)
    try:
        _check_private(path, path.stat())
    except OSError as exc:
        raise SecretUnavailable(f"cannot read credential file {path}: {exc.strerror}") from None
    if not os.access(path, os.R_OK):
        raise SecretUnavailable(f"cannot read credential file {path}: Permission denied")


def read_secret_file(path: Path, label: str = "credential file") -> str:
    """The first line's worth of a private file (surrounding whitespace stripped). `label` says
    where the operator named it ("--source-password-file")."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            _check_private(path, os.fstat(stream.fileno()))  # the file we read, not a swap
            raw = stream.read()
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {label} {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretUnavailable(f"{label} {path} is not UTF-8 text") from None
    if not text:
        raise SecretUnavailable(f"{label} {path} is empty")
    return text


def _split(reference: object) -> tuple[str, str]:
    if not isinstance(reference, str) or "/" not in reference:
        raise SecretUnavailable("a credential must be a reference: env/NAME or file/PATH")
    scheme, _, target = reference.partition("/")
    if scheme not in REFERENCE_SCHEMES:
        raise SecretUnavailable(f"unknown credential reference {scheme}/...: use env/NAME or "
                                "file/PATH")
    if not target:
        raise SecretUnavailable(f"credential reference {scheme}/ names nothing")
    return scheme, target


def _file_path(target: str, base: Path | None) -> Path:
    path = Path(target).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _check_private(path: Path, status: os.stat_result) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise SecretUnavailable(f"credential file {path} is a directory")
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretUnavailable(f"{path} is readable by others: chmod 600 {path}")
