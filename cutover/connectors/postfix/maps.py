"""A directory of Postfix lookup tables (`virtual`, `transport`, `relay_domains`...).

    postfix:
      linux-mx:
        kind: postfix-maps
        path: postfix/                 # the map sources, one file per map
        postmap: auto                  # auto | true | false
        reload: false                  # run `postfix reload` after an edit
        config_directory: /etc/postfix # the instance's main.cf: `-c` for postmap, postconf and
                                       # postfix, and where content_filter is read

With `postmap: true` (or `auto` when /usr/sbin/postmap exists) every edit is compiled with
`postmap type:file` and lookups go through `postmap -q`, so verification sees what Postfix sees.
With `postmap: false` (or `auto` without the binary) the source text is the truth: that is the
file-backed twin used by the demo. Only `_run` starts Postfix programs.

Without `config_directory` nothing reads the host's /etc/postfix: postmap runs with a private
empty main.cf (Postfix's built-in defaults), which is all compiling and querying a map needs, so
a machine whose Postfix was installed with "No configuration" works too. A real mail host names
its config directory, so that postmap sees its main.cf and the routing model its content_filter.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import CapabilityMissing, ConfigInvalid, UsageError
from cutover.files import atomic_write
from cutover.parsers.postfix_map import MapFile, parse_main_cf, parse_map

POSTMAP_MODES = ("auto", "true", "false")
DATABASE_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".db"}
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class PostfixCommandFailed(UsageError):
    """postmap or postfix exited with an error; its first message line says what to fix."""


@dataclass(frozen=True)
class Route:
    """Where Postfix sends mail for one address or domain, as far as the maps say."""

    destination: str
    transport: str | None
    content_filter: str | None

    def hops(self) -> list[str]:
        return [hop for hop in (self.content_filter, self.transport) if hop]

    def includes(self, hop: str) -> bool:
        wanted = _normalise_hop(hop)
        return any(wanted in (_normalise_hop(h), _normalise_hop(_nexthop(h))) for h in self.hops())


def _normalise_hop(hop: str) -> str:
    return "".join(hop.split()).lower()


def _nexthop(transport_value: str) -> str:
    """`smtp:[filter]:10025` -> `[filter]:10025` (the part after the transport name)."""
    name, colon, rest = transport_value.partition(":")
    return rest if colon and not name.startswith("[") else transport_value


def _find_program(name: str, configured: str | None) -> str | None:
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    return next((f"{d}/{name}" for d in SBIN_DIRS if os.access(f"{d}/{name}", os.X_OK)), None)


def _bool_option(config: dict[str, Any], key: str, where: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise ConfigInvalid(f"cutover.yaml: {where}.{key} must be true or false")
    return value


@connector("postfix", role="mta-maps", aliases=("postfix-maps",))
class PostfixMapDirectory:
    """Map sources in one directory, compiled with postmap when available or required."""

    def __init__(self, directory: Path, *, postmap: str | None, postfix: str | None,
                 reload: bool = False, config_dir: Path | None = None, map_type: str = "hash",
                 transport_map: str = "transport"):
        self.directory = directory
        self.postmap = postmap
        self.postfix = postfix
        self.reload_after_edit = reload
        self.config_dir = config_dir
        self.map_type = map_type
        self.transport_map = transport_map

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace) -> PostfixMapDirectory:
        where = "postfix"
        mode = str(config.get("postmap", "auto")).lower()
        if mode not in POSTMAP_MODES:
            raise ConfigInvalid(f"cutover.yaml: {where}: postmap must be auto, true or false")
        map_type = str(config.get("map_type", "hash"))
        if map_type not in DATABASE_SUFFIX:
            raise ConfigInvalid(f"cutover.yaml: {where}: unknown map_type {map_type!r} "
                                f"(known: {', '.join(DATABASE_SUFFIX)})")
        postmap = None
        if mode != "false":
            postmap = _find_program("postmap", config.get("postmap_command"))
            if postmap is None and mode == "true":
                raise CapabilityMissing("postmap not found: install the postfix package or set "
                                        "postmap: false")
        reload = _bool_option(config, "reload", where)
        postfix = _find_program("postfix", config.get("postfix_command")) if reload else None
        if reload and postfix is None:
            raise CapabilityMissing("reload: true but the postfix program is not installed")
        # `postfix_config_dir` is the name this setting had before
        config_dir = config.get("config_directory", config.get("postfix_config_dir"))
        if config_dir is not None and not isinstance(config_dir, str):
            raise ConfigInvalid(f"cutover.yaml: {where}: config_directory must be a path")
        return cls(workspace.path(config.get("path", "postfix/")), postmap=postmap,
                   postfix=postfix, reload=reload,
                   config_dir=workspace.path(config_dir) if config_dir else None,
                   map_type=map_type, transport_map=str(config.get("transport_map", "transport")))

    # --- the one seam that runs Postfix programs ----------------------------------------------
    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        directory = self._config_directory_for(program)
        config = ["-c", str(directory)] if directory is not None else []
        try:
            result = subprocess.run([program, *config, *args], capture_output=True, text=True,
                                    timeout=60, check=False)
        except OSError as exc:
            raise PostfixCommandFailed(f"cannot run {program}: {exc.strerror}") from None
        if check and result.returncode != 0:
            fallback = f"exit status {result.returncode} (details in the mail log)"
            message = (result.stderr.strip().splitlines() or [fallback])[-1]
            raise PostfixCommandFailed(f"{Path(program).name} {' '.join(args)}: {message}")
        return result

    def _config_directory_for(self, program: str) -> Path | None:
        """The named instance; else postmap gets Postfix's defaults, and `postfix reload` no
        `-c` at all: the instance Postfix itself was built to run (`postconf -d
        config_directory`), the one a host without config_directory runs."""
        if self.config_dir is not None:
            return self.config_dir
        if Path(program).name == "postfix":
            return None
        return defaults_config_directory()

    # --- map sources ----------------------------------------------------------------------------
    @property
    def compiles(self) -> bool:
        """True when edits are compiled with postmap and lookups use `postmap -q`."""
        return self.postmap is not None

    def map_path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise UsageError(f"map name must be a file name in the map directory, not {name!r}")
        return self.directory / name

    def read_source(self, name: str) -> str | None:
        """The exact text of a map source (None when the file does not exist)."""
        path = self.map_path(name)
        try:
            return path.read_bytes().decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None

    def parsed(self, name: str) -> MapFile:
        return parse_map(self.read_source(name) or "", str(self.map_path(name)))

    def write_source(self, name: str, text: str | None) -> None:
        """Replace a map source atomically (None removes it), then compile and reload."""
        path = self.map_path(name)
        if text is None:
            path.unlink(missing_ok=True)
            self.database_path(name).unlink(missing_ok=True)
        else:
            _atomic_write(path, text.encode("utf-8", errors="surrogateescape"))
            self.compile(name)
        self.reload()

    def database_path(self, name: str) -> Path:
        path = self.map_path(name)
        return path.with_name(path.name + DATABASE_SUFFIX[self.map_type])

    def compile(self, name: str) -> None:
        """Run postmap on one map source (nothing to do for the text twin)."""
        if self.compiles and self.map_path(name).exists():
            self._run(self.postmap, f"{self.map_type}:{self.map_path(name)}")

    def compile_if_stale(self, name: str) -> None:
        """Compile when the database is missing or older than its source (after a crash
        between the write and postmap); otherwise leave it untouched."""
        source, database = self.map_path(name), self.database_path(name)
        if not self.compiles or not source.exists():
            return
        if not database.exists() or database.stat().st_mtime_ns < source.stat().st_mtime_ns:
            self.compile(name)

    def reload(self) -> None:
        if self.reload_after_edit and self.postfix:
            self._run(self.postfix, "reload")

    # --- lookups --------------------------------------------------------------------------------
    def lookup(self, name: str, key: str) -> str | None:
        """What Postfix returns for `key` in map `name`: `postmap -q`, or the source text."""
        if not self.map_path(name).exists():
            return None
        if not self.compiles:
            return self.parsed(name).lookup(key)
        result = self._run(self.postmap, "-q", key, f"{self.map_type}:{self.map_path(name)}",
                           check=False)
        if result.returncode == 1 and not result.stderr.strip():
            return None
        if result.returncode != 0:
            message = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
            raise PostfixCommandFailed(f"postmap -q {key} {name}: {message}")
        return result.stdout.rstrip("\n")

    def content_filter(self) -> str | None:
        """The global content_filter of main.cf (None without config_directory or when unset)."""
        if self.config_dir is None:
            return None
        main_cf = self.config_dir / "main.cf"
        try:
            text = main_cf.read_text()
        except OSError:
            return None
        return parse_main_cf(text).get("content_filter") or None

    # --- main.cf parameters ---------------------------------------------------------------------
    @property
    def main_cf(self) -> Path:
        if self.config_dir is None:
            raise UsageError("cutover.yaml: this postfix-maps entry has no config_directory, "
                             "so its main.cf is unknown")
        return self.config_dir / "main.cf"

    def parameter(self, name: str) -> str | None:
        """A parameter as main.cf writes it (None when main.cf does not set it)."""
        try:
            text = self.main_cf.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot read {self.main_cf}: {exc.strerror}") from None
        return parse_main_cf(text).get(name)

    def set_parameter(self, name: str, value: str | None) -> None:
        """Set (or, with None, remove) one main.cf parameter: `postconf -e` / `postconf -X`
        when Postfix is installed, else the same edit on the text (the twin); then reload."""
        if not name.replace("_", "").isalnum():
            raise UsageError(f"not a Postfix parameter name: {name!r}")
        postconf = _find_program("postconf", None) if self.compiles else None
        if postconf is not None and self.main_cf.exists():
            if value is None:
                self._run(postconf, "-X", name)
            else:
                self._run(postconf, "-e", f"{name} = {value}")
        else:
            text = self.main_cf.read_text() if self.main_cf.exists() else ""
            edited = set_main_cf_parameter(text, name, value)
            if not edited and not text:
                return  # nothing set, nothing to remove: no empty main.cf left behind
            self.main_cf.parent.mkdir(parents=True, exist_ok=True)
            if edited:
                atomic_write(self.main_cf, edited)
            else:
                self.main_cf.unlink()  # the twin's main.cf held only what cutover set
        self.reload()

    def transport_for(self, destination: str) -> str | None:
        """The transport(5) entry Postfix uses for an address or domain: the address, then the
        domain, then `.parent` domains, then `*`."""
        for key in transport_keys(destination):
            value = self.lookup(self.transport_map, key)
            if value is not None:
                return value
        return None

    def route(self, destination: str) -> Route:
        return Route(destination, self.transport_for(destination), self.content_filter())

    def map_names(self) -> list[str]:
        """Map sources in the directory (compiled databases and hidden files left out)."""
        if not self.directory.is_dir():
            return []
        suffixes = tuple(set(DATABASE_SUFFIX.values()))
        return sorted(p.name for p in self.directory.iterdir()
                      if p.is_file() and not p.name.startswith(".")
                      and not p.name.endswith(suffixes) and not p.name.endswith(".cf"))


@functools.cache
def defaults_config_directory() -> Path:
    """A private config directory holding an empty main.cf: Postfix programs run with it use
    the built-in defaults instead of whatever the host's /etc/postfix holds (or lacks)."""
    directory = Path(tempfile.mkdtemp(prefix="cutover-postfix-defaults-"))
    (directory / "main.cf").write_text("# Postfix built-in defaults (cutover)\n")
    atexit.register(shutil.rmtree, directory, True)
    return directory


def set_main_cf_parameter(text: str, name: str, value: str | None) -> str:
    """main.cf text with `name` set in place (continuation lines replaced), appended when new,
    or removed; every other line as it was (what `postconf -e` / `-X` do)."""
    lines = text.splitlines(keepends=True)
    result: list[str] = []
    skipping = False
    done = False
    for line in lines:
        if skipping and line[:1] in (" ", "\t") and line.strip():
            continue
        skipping = False
        left, equals, _ = line.partition("=")
        if equals and not line.startswith(("#", " ", "\t")) and left.strip() == name:
            skipping = True
            if value is not None and not done:
                result.append(f"{name} = {value}\n")
            done = True
            continue
        result.append(line)
    if value is not None and not done:
        if result and not result[-1].endswith("\n"):
            result[-1] += "\n"
        result.append(f"{name} = {value}\n")
    return "".join(result)


def transport_keys(destination: str) -> list[str]:
    _, at, domain = destination.lower().rpartition("@")
    domain = domain.rstrip(".")
    keys = [destination.lower()] if at else []
    keys.append(domain)
    labels = domain.split(".")
    keys.extend("." + ".".join(labels[i:]) for i in range(1, len(labels)))
    keys.append("*")
    return keys


def _atomic_write(path: Path, data: bytes) -> None:
    """Postfix never reads half a map (cutover.files.atomic_write: the old file's mode kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, new_file_mode=0o644)


__all__ = ["PostfixCommandFailed", "PostfixMapDirectory", "Route",
           "defaults_config_directory", "set_main_cf_parameter", "transport_keys"]
