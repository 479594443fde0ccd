"""A workspace: a directory with cutover.yaml (the environment), plans/ and state/cutover.db.

cutover.yaml says which connector backs each logical system; plans name only the logical
systems ("linux", "exchange", "dns"), so the same plans run in the demo and against real servers.
Credentials appear only as references (`env/NAME` or `file/PATH`) and are resolved late, when a
connector is built; they are never logged or stored.
"""

from __future__ import annotations

import os
import stat
from functools import cached_property
from pathlib import Path
from typing import Any

from cutover.errors import ConfigInvalid, NotFound, UsageError
from cutover.secrets import resolve_secret

CONFIG_NAME = "cutover.yaml"
STATE_DIR = "state"
STATE_NAME = "cutover.db"


class Workspace:
    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self._connectors: dict[tuple[str, str], Any] = {}
        #: the State the runner (or a command) works with, handed to connectors that keep a
        #: table in it (the Graph UID map); never opened by a connector itself
        self.state: Any = None

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def state_path(self) -> Path:
        return self.root / STATE_DIR / STATE_NAME

    @cached_property
    def config(self) -> dict[str, Any]:
        """cutover.yaml, checked as a whole (cutover.environment): every problem of the file
        at once as `cutover.yaml:LINE: ...`, before any connector is built."""
        from cutover import environment  # YAML and pydantic only for commands that need them

        try:
            raw = self.config_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigInvalid(f"cannot read {self.config_path}: {exc.strerror}") from None
        return environment.parse(raw, CONFIG_NAME)

    def path(self, relative: str | Path) -> Path:
        """A path from cutover.yaml or a plan, relative to the workspace unless absolute."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.root / path

    def relative(self, path: Path) -> str:
        """How the state records a path: relative to the workspace when inside it, so a moved
        or copied workspace still finds its own files (read back with `path()`)."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(Path(path).resolve())

    def secret(self, reference: str) -> str:
        return resolve_secret(reference, self.root)

    def section(self, section: str) -> dict[str, Any]:
        value = self.config.get(section) or {}
        if not isinstance(value, dict):
            raise ConfigInvalid(f"cutover.yaml: {section} must be a mapping of names")
        return value

    def entries(self, role_name: str) -> dict[str, Any]:
        """The entries cutover.yaml configures for a role (by role or section name)."""
        from cutover.connectors.roles import role_named

        role = role_named(role_name)
        head, _, rest = role.section.partition(".")
        value: Any = self.section(head)
        if rest:
            value = value.get(rest) or {}
            if not isinstance(value, dict):
                raise ConfigInvalid(f"cutover.yaml: {role.section} must be a mapping of names")
        return value

    def connector(self, role_name: str, name: str) -> Any:
        """Build (once) the connector cutover.yaml configures for `role_name` (a role, e.g.
        "mail-store", or its section, e.g. "mailstores") under `name`. The class is checked
        against the role's protocol, so the caller gets every method the role promises."""
        from cutover.connectors.roles import role_named

        role = role_named(role_name)
        key = (role.name, name)
        if key not in self._connectors:
            cls, config = self._connector_class(role.name, name)
            self._connectors[key] = cls.from_config(config, self)
        return self._connectors[key]

    def _connector_class(self, role_name: str, name: str) -> tuple[type, dict[str, Any]]:
        from cutover.connectors.base import connector_class, kinds_for
        from cutover.connectors.roles import ROLES, missing_methods

        role = ROLES[role_name]
        entries = self.entries(role_name)
        if name not in entries:
            known = ", ".join(sorted(entries)) or "none"
            raise NotFound(f"cutover.yaml has no {role.section}.{name} (configured: {known})")
        config = entries[name]
        if not isinstance(config, dict) or "kind" not in config:
            raise ConfigInvalid(f"cutover.yaml: {role.section}.{name} needs a kind")
        cls = connector_class(role.name, str(config["kind"]))
        if cls is None:
            raise ConfigInvalid(f"cutover.yaml: {role.section}.{name}: unknown kind "
                                f"{config['kind']!r} for {role.name} (known: "
                                f"{', '.join(kinds_for(role.name))})")
        missing = missing_methods(cls, role)
        if missing:
            raise ConfigInvalid(f"cutover.yaml: {role.section}.{name}: kind {config['kind']!r} "
                                f"cannot serve as {role.name} (lacks {', '.join(missing)})")
        return cls, config

    def validate(self) -> None:
        """Check the whole environment before any step previews or applies: cutover.yaml
        reads, and every connector entry of every role names a kind that serves that role.
        Credentials are not resolved here (they are read late, when a connector is built)."""
        from cutover.connectors.roles import ROLES

        self.config  # noqa: B018 - parse and check the file itself
        for role in ROLES.values():
            for name in self.entries(role.name):
                self._connector_class(role.name, name)

    def check_exists(self) -> None:
        """The workspace directory exists (a command that only reads still needs it)."""
        if not self.root.exists():
            raise UsageError(f"workspace does not exist: {self.root}")
        if not self.root.is_dir():
            raise UsageError(f"workspace is not a directory: {self.root}")

    def display(self, path: Path) -> str:
        """A path as the operator reads it: relative to the workspace when inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def resolve_plan(self, plan: str | Path) -> Path:
        """A PLAN argument: as given (relative to the cwd), then relative to the workspace."""
        given = Path(plan)
        for candidate in (given, self.root / given):
            if candidate.is_file():
                return candidate  # as the operator wrote it: error lines name this path
        raise UsageError(f"plan not found: {plan}")

    def check_writable(self) -> None:
        """Refuse early, before any change, when the state cannot be written. Write bits are
        checked too: root may write anywhere, but a workspace made read-only (chmod a-w) is
        the operator saying "do not change this"."""
        self.check_exists()
        for probe in (self.state_path, self.state_path.parent, self.root):
            if probe.exists():
                no_write_bits = not probe.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP |
                                                             stat.S_IWOTH)
                if no_write_bits or not os.access(probe, os.W_OK):
                    raise UsageError(f"workspace is read-only: {probe} is not writable")
                if probe.is_dir():
                    break
