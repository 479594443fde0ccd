"""Real BIND 9 for the DNS tests: a primary with TSIG-enabled dynamic zones and a secondary that
follows it by NOTIFY/IXFR, both on 127.0.0.1 with free ports, in a tmp directory.

`bind_pair(zones)` starts a fresh pair for one test (a named starts in well under a second), so
tests never see each other's updates. Ports are polled, never slept on; only our own pids are
stopped.
"""

from __future__ import annotations

import base64
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import yaml

from cutover.workspace import Workspace
from tests.servers.ports import require_binary

KEY_NAME = "update-key"
PACKAGE = "bind9"
START_TIMEOUT = 20.0


def named_binary() -> str:
    return require_binary("named", PACKAGE)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def key_file_text(name: str = KEY_NAME, secret: str | None = None) -> str:
    """A key file exactly as `tsig-keygen -a hmac-sha256 NAME` writes it."""
    secret = secret or base64.b64encode(secrets.token_bytes(32)).decode()
    return f'key "{name}" {{\n\talgorithm hmac-sha256;\n\tsecret "{secret}";\n}};\n'


@dataclass
class NamedProcess:
    directory: Path
    port: int
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class BindPair:
    """A running primary and secondary; `key_file` holds the TSIG key allowed to update."""

    primary: NamedProcess
    secondary: NamedProcess
    key_file: Path
    zones: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.secondary.stop()
        self.primary.stop()

    def provider_config(self, key_file: str | Path | None = None) -> dict:
        return {"kind": "rfc2136", "server": self.primary.address,
                "tsig_key_file": str(key_file or self.key_file),
                "nameservers": [self.primary.address, self.secondary.address]}


def _options(directory: Path, port: int, extra: str = "") -> str:
    return f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify-delay 0;
    {extra}
}};
controls {{ }};
"""


def _primary_conf(directory: Path, port: int, secondary_port: int, zones: list[str],
                  key_file: Path) -> str:
    conf = _options(directory, port) + f'include "{key_file}";\n'
    for zone in zones:
        conf += f"""
zone "{zone}" {{
    type primary;
    file "{zone}.db";
    allow-update {{ key {KEY_NAME}; }};
    allow-transfer {{ 127.0.0.1; key {KEY_NAME}; }};
    notify explicit;
    also-notify {{ 127.0.0.1 port {secondary_port}; }};
}};
"""
    return conf


def _secondary_conf(directory: Path, port: int, primary_port: int, zones: list[str]) -> str:
    conf = _options(directory, port, "notify no;")
    for zone in zones:
        conf += f"""
zone "{zone}" {{
    type secondary;
    file "{zone}.bk";
    primaries {{ 127.0.0.1 port {primary_port}; }};
    allow-notify {{ 127.0.0.1; }};
}};
"""
    return conf


def _start(named: NamedProcess, conf: str) -> None:
    conf_path = named.directory / "named.conf"
    conf_path.write_text(conf)
    log = (named.directory / "named.log").open("w")
    named.process = subprocess.Popen([named_binary(), "-g", "-c", str(conf_path)],
                                     cwd=named.directory, stdout=log, stderr=subprocess.STDOUT)


def serves(address: tuple[str, int], zone: str) -> bool:
    """True once the server answers the zone's SOA authoritatively."""
    query = dns.message.make_query(zone, "SOA")
    try:
        response = dns.query.udp(query, address[0], port=address[1], timeout=0.5)
    except (OSError, dns.exception.Timeout):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


def _wait_serving(named: NamedProcess, zones: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(zones)
    while pending:
        if named.process is not None and named.process.poll() is not None:
            log = (named.directory / "named.log").read_text()[-2000:]
            pytest.fail(f"named exited with {named.process.returncode}:\n{log}")
        if time.monotonic() > deadline:
            log = (named.directory / "named.log").read_text()[-2000:]
            pytest.fail(f"named did not serve {pending} on port {named.port}:\n{log}")
        if serves(("127.0.0.1", named.port), pending[0]):
            pending.pop(0)


def start_pair(root: Path, zones: dict[str, str]) -> BindPair:
    """Start a primary serving `zones` ({name: zone text}) and a secondary following it."""
    named_binary()
    primary_dir, secondary_dir = root / "primary", root / "secondary"
    for directory in (primary_dir, secondary_dir):
        directory.mkdir(parents=True, exist_ok=True)
    key_file = root / "update.key"
    key_file.write_text(key_file_text())
    for name, text in zones.items():
        (primary_dir / f"{name}.db").write_text(text)
    primary = NamedProcess(primary_dir, free_port())
    secondary = NamedProcess(secondary_dir, free_port())
    names = list(zones)
    pair = BindPair(primary, secondary, key_file, names)
    try:
        _start(primary, _primary_conf(primary_dir, primary.port, secondary.port, names, key_file))
        _wait_serving(primary, names)
        _start(secondary, _secondary_conf(secondary_dir, secondary.port, primary.port, names))
        _wait_serving(secondary, names)
    except BaseException:
        pair.stop()
        raise
    return pair


SAMPLE_ZONE = """$TTL 3600
@       IN SOA  ns1 hostmaster 2026010101 3600 600 86400 300
@       IN NS   ns1
@       IN NS   ns2
ns1     IN A    127.0.0.1
ns2     IN A    127.0.0.1
@       IN MX   10 mx1
mx1     IN A    192.0.2.10
mx2     IN A    192.0.2.11
@       IN TXT  "v=spf1 mx -all"
_dmarc  IN TXT  "v=DMARC1; p=none; rua=mailto:dmarc@example.org"
autodiscover IN CNAME mx1
www     IN A    192.0.2.80
"""


@dataclass
class ZoneLab:
    """A workspace whose cutover.yaml configures provider `dns` for `zone`: a real BIND pair
    (kind rfc2136) or a zone file (kind zonefile), with the same records."""

    kind: str
    root: Path
    zone: str
    pair: BindPair | None = None

    @property
    def workspace(self) -> Workspace:
        return Workspace(self.root)

    def provider(self):
        return self.workspace.connector("providers", "dns")

    def records(self) -> dict:
        """Every RRset except the SOA, as the primary (or the file) holds it now."""
        return {key: rrset for key, rrset in self.provider().read_zone(self.zone).items()
                if key[1] != "SOA"}


def make_lab(kind: str, root: Path, zones: dict[str, str], start: Callable[..., BindPair],
             extra_config: dict | None = None) -> ZoneLab:
    root.mkdir(parents=True, exist_ok=True)
    zone = next(iter(zones))
    if kind == "rfc2136":
        pair = start(zones)
        (root / "keys").mkdir()
        (root / "keys" / "update.key").write_text(pair.key_file.read_text())
        provider = pair.provider_config("keys/update.key")
    else:
        pair = None
        (root / "zones").mkdir()
        for name, text in zones.items():
            (root / "zones" / name).write_text(text)
        provider = {"kind": "zonefile", "path": "zones/"}
    provider.update(extra_config or {})
    (root / "cutover.yaml").write_text(yaml.safe_dump({"providers": {"dns": provider}}))
    return ZoneLab(kind, root, zone, pair)


@pytest.fixture
def bind_pair(tmp_path_factory) -> Iterator[Callable[..., BindPair]]:
    """Factory: `bind_pair({"example.org": SAMPLE_ZONE})` starts a fresh primary + secondary."""
    started: list[BindPair] = []

    def start(zones: dict[str, str] | None = None) -> BindPair:
        root = tmp_path_factory.mktemp("bind")
        pair = start_pair(root, zones or {"example.org": SAMPLE_ZONE})
        started.append(pair)
        return pair

    yield start
    for pair in started:
        pair.stop()


@pytest.fixture(params=["rfc2136", "zonefile"])
def zone_lab(request, bind_pair, tmp_path) -> Callable[..., ZoneLab]:
    """Factory over both DNS connectors: `zone_lab({"example.org": text})` (default: the
    sample zone) returns a ZoneLab whose provider `dns` is the real server or its twin."""
    def build(zones: dict[str, str] | None = None, extra_config: dict | None = None) -> ZoneLab:
        return make_lab(request.param, tmp_path / "workspace", zones or
                        {"example.org": SAMPLE_ZONE}, bind_pair, extra_config)

    return build

