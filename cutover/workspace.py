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

    def connector(self, section: str, name: str) -> Any:
        """Build (once) the connector cutover.yaml configures under `section: {name: ...}`."""
        key = (section, name)
        if key not in self._connectors:
            from cutover.connectors.base import load_all

            entries = self.section(section)
            if name not in entries:
                known = ", ".join(sorted(entries)) or "none"
                raise NotFound(f"cutover.yaml has no {section}.{name} (configured: {known})")
            config = entries[name]
            if not isinstance(config, dict) or "kind" not in config:
                raise ConfigInvalid(f"cutover.yaml: {section}.{name} needs a kind")
            kinds = load_all()
            if config["kind"] not in kinds:
                raise ConfigInvalid(f"cutover.yaml: {section}.{name}: unknown kind "
                                    f"{config['kind']!r} (known: {', '.join(sorted(kinds))})")
            self._connectors[key] = kinds[config["kind"]].from_config(config, self)
        return self._connectors[key]

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
        if not self.root.is_dir():
            raise UsageError(f"workspace does not exist: {self.root}")
        for probe in (self.state_path, self.state_path.parent, self.root):
            if probe.exists():
                no_write_bits = not probe.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP |
                                                             stat.S_IWOTH)
                if no_write_bits or not os.access(probe, os.W_OK):
                    raise UsageError(f"workspace is read-only: {probe} is not writable")
                if probe.is_dir():
                    break
