"""A real Cyrus IMAP (Debian's 3.6) on loopback, unpacked rather than installed.

Debian's `cyrus-imapd` conflicts with `dovecot-imapd`, so the packages are fetched with
`apt-get download` (with the libraries they need that are not installed), unpacked with
`dpkg-deb -x` into a cache directory and run from there: `master` with its own `cyrus.conf`,
every service with `-C` and its own `imapd.conf`, all state in a temporary directory. Nothing
under /etc, /run or /var/lib is read or written.

The cache is $CUTOVER_CYRUS_CACHE, else /var/cache/cutover/cyrus-imapd when writable (root),
else ~/.cache/cutover/cyrus-imapd. `scripts/setup --test` fills it
(`python -m tests.servers.cyrus fetch`); the fixture fills it too when it is empty.

Layouts (imapd.conf), each its own `master`:

    dot      altnamespace: no, unixhierarchysep: no   "." separator, personal namespace "INBOX."
    slash    altnamespace: no, unixhierarchysep: yes  "/" separator, personal namespace "INBOX/"
    munging  the dot layout with Cyrus's default munge8bit: yes (rewrites 8-bit header bytes)

Users authenticate against a sasldb (saslpasswd2 from the unpacked sasl2-bin), so a wrong
password is refused as on a real server. The admin is `cyrus`; `add_user` creates the user's
INBOX as the admin would (CREATE user.NAME).
"""

from __future__ import annotations

import fcntl
import imaplib
import itertools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient.imap_utf7 import decode as decode_utf7

from tests.servers.ports import free_port, stop, wait_for_port

PASSWORD = "secret"
ADMIN = "cyrus"
REALM = "cutover-test"
#: What the fixture runs; the libraries they need are added by `packages_to_fetch`.
PACKAGES = ("cyrus-common", "cyrus-imapd", "sasl2-bin")
LAYOUTS = {
    "dot": {"altnamespace": "no", "unixhierarchysep": "no", "munge8bit": "no"},
    "slash": {"altnamespace": "no", "unixhierarchysep": "yes", "munge8bit": "no"},
    "munging": {"altnamespace": "no", "unixhierarchysep": "no", "munge8bit": "yes"},
}


class CyrusUnavailable(Exception):
    """The packages could not be fetched or unpacked."""


# --- the unpacked packages -----------------------------------------------------------------

def cache_dir() -> Path:
    if os.environ.get("CUTOVER_CYRUS_CACHE"):
        return Path(os.environ["CUTOVER_CYRUS_CACHE"])
    system = Path("/var/cache/cutover/cyrus-imapd")
    if os.geteuid() == 0:
        return system
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cutover" / \
        "cyrus-imapd"


def _installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True)
    return "install ok installed" in result.stdout


def _library_depends(package: str) -> list[str]:
    """The first alternative of each `lib*` Depends of `package` (apt-cache depends)."""
    result = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests",
                             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                             package], capture_output=True, text=True)
    if result.returncode != 0:
        raise CyrusUnavailable(f"apt-cache depends {package}: {result.stderr.strip()}")
    found = []
    for line in result.stdout.splitlines():
        # "  Depends: libfoo" or "  |Depends: libfoo" (first of alternatives); not "<virtual>"
        head, _, name = line.strip().lstrip("|").partition(" ")
        if head == "Depends:" and name.startswith("lib"):
            found.append(name)
    return found


def packages_to_fetch() -> list[str]:
    """PACKAGES and, transitively, the libraries they depend on that are not installed."""
    wanted, todo = [], list(PACKAGES)
    while todo:
        package = todo.pop(0)
        if package in wanted:
            continue
        wanted.append(package)
        todo += [dep for dep in _library_depends(package)
                 if dep not in wanted and not _installed(dep)]
    return wanted


def unpacked(cache: Path | None = None) -> Path:
    """The root of the unpacked packages, fetching them first when the cache is empty."""
    cache = cache or cache_dir()
    root = cache / "root"
    if (root / "usr/lib/cyrus/bin/master").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest worker may be fetching
        if (root / "usr/lib/cyrus/bin/master").exists():
            return root
        debs = cache / "debs"
        debs.mkdir(exist_ok=True)
        packages = packages_to_fetch()
        fetched = _download(packages, debs)
        if fetched.returncode != 0 and os.geteuid() == 0:
            # a fresh image may have no package lists yet
            subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=900", "update", "-qq"],
                           capture_output=True)
            fetched = _download(packages, debs)
        if fetched.returncode != 0:
            raise CyrusUnavailable(f"apt-get download {' '.join(packages)} failed: "
                                   f"{fetched.stderr.strip()[-500:]}")
        staging = Path(tempfile.mkdtemp(prefix="root.", dir=cache))
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        staging.chmod(0o755)
        staging.rename(root)
    return root


def _download(packages: list[str], into: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "download", *packages], cwd=into, capture_output=True,
                          text=True)


def library_path(root: Path) -> str:
    return ":".join(str(root / sub) for sub in ("usr/lib/x86_64-linux-gnu",
                                                  "lib/x86_64-linux-gnu"))


# --- a running server ----------------------------------------------------------------------

@dataclass
class CyrusServer:
    root: Path  # this instance's config, spool and sockets
    packages: Path  # the unpacked packages
    imap_port: int
    layout: str
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None

    @property
    def separator(self) -> str:
        return "/" if LAYOUTS[self.layout]["unixhierarchysep"] == "yes" else "."

    @property
    def config_file(self) -> Path:
        return self.root / "imapd.conf"

    def environment(self) -> dict[str, str]:
        return {**os.environ, "LD_LIBRARY_PATH": library_path(self.packages)}

    def admin(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.imap_port)
        imap.login(ADMIN, PASSWORD)
        return imap

    def set_password(self, name: str, password: str = PASSWORD) -> None:
        subprocess.run([str(self.packages / "usr/sbin/saslpasswd2"), "-p", "-c",
                        "-f", str(self.root / "sasldb2"), "-u", REALM, name],
                       input=password.encode(), env=self.environment(), check=True)

    def folders(self, user: str) -> dict[str, int]:
        """The server's own folder names (decoded from modified UTF-7) and message counts, as
        any client logged in as `user` reads them."""
        imap = imaplib.IMAP4(self.host, self.imap_port)
        imap.login(user, PASSWORD)
        try:
            counts = {}
            for line in imap.list('""', "*")[1]:
                name = line.rsplit(b' "' + self.separator.encode() + b'" ', 1)[1].strip(b'"')
                status, data = imap.status(b'"' + name + b'"', "(MESSAGES)")
                counts[decode_utf7(name)] = int(data[0].rsplit(b" ", 1)[1].strip(b")"))
            return counts
        finally:
            imap.logout()

    def add_user(self, name: str, password: str = PASSWORD) -> str:
        self.set_password(name, password)
        imap = self.admin()
        try:
            status, detail = imap.create(f"user{self.separator}{name}")
            assert status == "OK", detail
        finally:
            imap.logout()
        return name


def _owner() -> tuple[str, str]:
    if os.geteuid() == 0:
        return "nobody", "nogroup"
    me = pwd.getpwuid(os.getuid())
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    return me.pw_name, group


def _write_config(server: CyrusServer) -> None:
    root, bin_dir = server.root, server.packages / "usr/lib/cyrus/bin"
    user, group = _owner()
    for sub in ("conf", "spool", "run", "sieve"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    options = "\n".join(f"{key}: {value}" for key, value in LAYOUTS[server.layout].items())
    server.config_file.write_text(f"""\
configdirectory: {root}/conf
partition-default: {root}/spool
sievedir: {root}/sieve
servername: {REALM}
admins: {ADMIN}
cyrus_user: {user}
cyrus_group: {group}
{options}
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
idlesocket: {root}/run/idle
notifysocket: {root}/run/notify
lmtpsocket: {root}/run/lmtp
mboxname_lockpath: {root}/run/lock
proc_path: {root}/run/proc
syslog_prefix: cutover-cyrus-{server.imap_port}
""")
    config = f"-C {server.config_file}"
    (root / "cyrus.conf").write_text(f"""\
START {{
  recover cmd="{bin_dir}/ctl_cyrusdb {config} -r"
}}
SERVICES {{
  imap cmd="{bin_dir}/imapd {config}" listen="127.0.0.1:{server.imap_port}" prefork=0 maxchild=100
}}
EVENTS {{
  checkpoint cmd="{bin_dir}/ctl_cyrusdb {config} -c" period=30
}}
""")
    server.set_password(ADMIN)
    if os.geteuid() == 0:
        shutil.chown(root, user, group)
        for path in root.rglob("*"):
            shutil.chown(path, user, group)


def start(layout: str) -> CyrusServer:
    """A fresh Cyrus master in `layout` on a free loopback port (the caller stops it)."""
    try:
        packages = unpacked()
    except (CyrusUnavailable, subprocess.CalledProcessError, OSError) as exc:
        pytest.fail(f"Cyrus IMAP is not available ({exc}); run ./scripts/setup --test",
                    pytrace=False)
    # Not under pytest's tmp (0700): imapd runs as `nobody` when we are root.
    root = Path(tempfile.mkdtemp(prefix=f"cutover-cyrus-{layout}-"))
    root.chmod(0o755)
    server = CyrusServer(root=root, packages=packages, imap_port=free_port(), layout=layout)
    _write_config(server)
    master = packages / "usr/lib/cyrus/bin/master"
    server.process = subprocess.Popen(
        [str(master), "-C", str(server.config_file), "-M", str(root / "cyrus.conf"),
         "-p", str(root / "run/master.pid")],
        env=server.environment(), stdout=subprocess.DEVNULL,
        stderr=(root / "master.log").open("wb"))
    try:
        wait_for_port(server.imap_port, server.process, root / "master.log", b"* OK")
    except BaseException:
        shutdown(server)
        raise
    return server


def shutdown(server: CyrusServer) -> None:
    if server.process is not None:
        stop(server.process)
    shutil.rmtree(server.root, ignore_errors=True)


def _serve(layout: str) -> Iterator[CyrusServer]:
    server = start(layout)
    try:
        yield server
    finally:
        shutdown(server)


@pytest.fixture(scope="session")
def cyrus() -> Iterator[CyrusServer]:
    """Cyrus in the "." / "INBOX." layout (Courier, older Cyrus and UW setups look alike)."""
    yield from _serve("dot")


@pytest.fixture(scope="session")
def cyrus_slash() -> Iterator[CyrusServer]:
    """Cyrus with unixhierarchysep: "/" separator, personal namespace "INBOX/"."""
    yield from _serve("slash")


@pytest.fixture(scope="session")
def cyrus_munging() -> Iterator[CyrusServer]:
    """Cyrus as Debian ships it in one respect: munge8bit rewrites raw 8-bit header bytes."""
    yield from _serve("munging")


_user_numbers = itertools.count(1)


@pytest.fixture
def cyrus_user(cyrus: CyrusServer) -> str:
    return cyrus.add_user(f"user{next(_user_numbers)}-{os.getpid()}")


if __name__ == "__main__":  # scripts/setup --test: python -m tests.servers.cyrus fetch
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m tests.servers.cyrus fetch")
    try:
        print(f"cyrus-imapd unpacked in {unpacked()}")
    except (CyrusUnavailable, subprocess.CalledProcessError, OSError) as exc:
        sys.exit(f"setup: cannot fetch Cyrus IMAP for the tests: {exc}")
