"""A real Dovecot (IMAP, LMTP, ManageSieve, Pigeonhole Sieve with vnd.dovecot.pipe) on loopback.

Everything lives in a temporary directory: config, passwd-file, sockets, log and Maildirs.
Nothing under /etc, /run or /var is read or written, so a system Dovecot is not touched.
Run as root, mail is owned by `nobody` (Dovecot refuses uid 0 for mail access).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.ports import free_port, require_binary, stop, wait_for_port

PASSWORD = "secret"


@dataclass
class DovecotServer:
    root: Path
    imap_port: int
    lmtp_port: int
    managesieve_port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    _uid: int = field(default_factory=os.getuid)
    _gid: int = field(default_factory=os.getgid)

    @property
    def passwd_file(self) -> Path:
        """A shared passwd-file also consulted by passdb/userdb, for code under test that manages
        accounts itself (linux.account). Dovecot re-reads it at most once a second."""
        return self.root / "passwd"

    @property
    def sieve_pipe_bin_dir(self) -> Path:
        return self.root / "sieve-pipe"

    @property
    def sieve_filter_bin_dir(self) -> Path:
        """Configured only by `dovecot_extprograms`."""
        return self.root / "sieve-filter"

    @property
    def sieve_execute_bin_dir(self) -> Path:
        """Configured only by `dovecot_extprograms`."""
        return self.root / "sieve-execute"

    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def maildir(self, user: str) -> Path:
        return self.home(user) / "Maildir"

    def add_user(self, name: str, password: str = PASSWORD) -> str:
        home = self.home(name)
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, self._uid, self._gid)
        home.chmod(0o700)
        # One passwd-file per user: Dovecot re-reads a passwd-file at most once a second, so a
        # user appended to a shared file right after a login could stay unseen for a second.
        entry = self.root / "users" / name
        entry.write_text(f"{name}:{{PLAIN}}{password}:{self._uid}:{self._gid}::{home}::\n")
        entry.chmod(0o644)
        return name

    def deliver(self, user: str, message: bytes, sender: str = "sender@example.net") -> None:
        with smtplib.LMTP(self.host, self.lmtp_port) as lmtp:
            lmtp.sendmail(sender, [user], message)

    def doveadm(self, *args: str) -> str:
        result = subprocess.run([require_binary("doveadm", "dovecot-core"), "-c",
                                 str(self.config_file), *args], capture_output=True, text=True,
                                check=True)
        return result.stdout

    def log_text(self) -> str:
        log = self.root / "dovecot.log"
        return log.read_text(errors="replace") if log.exists() else ""


def _mail_owner() -> tuple[int, int, str, str, str]:
    """uid, gid for mail and the login/internal users: as root, Dovecot's privilege separation
    with `nobody` owning mail; otherwise everything runs as the current user."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid, "dovenull", "dovecot", "dovecot"
    me = pwd.getpwuid(os.getuid())
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name, group


def _write_config(server: DovecotServer) -> None:
    uid, gid, login_user, internal_user, internal_group = _mail_owner()
    server._uid, server._gid = uid, gid
    root = server.root
    for sub in ("run", "state", "home", "sieve-pipe", "users"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / "home").chmod(0o755)
    server.passwd_file.touch()
    server.passwd_file.chmod(0o644)
    rootless = "" if os.geteuid() == 0 else (
        "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
        "service managesieve-login {\n  chroot =\n}\n")
    server.config_file.write_text(f"""\
instance_name = cutover-test-{server.imap_port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp sieve
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
first_valid_gid = 1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_max_userip_connections = 200
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {server.passwd_file}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {server.passwd_file}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {server.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {server.lmtp_port}
  }}
}}
service managesieve-login {{
  inet_listener sieve {{
    address = 127.0.0.1
    port = {server.managesieve_port}
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_plugins = sieve_extprograms
  sieve_extensions = +vnd.dovecot.pipe
  sieve_pipe_bin_dir = {server.sieve_pipe_bin_dir}
}}
{rootless}""")


_user_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory):
    binary = require_binary("dovecot", "dovecot-imapd dovecot-lmtpd dovecot-managesieved "
                                       "dovecot-sieve")
    # Not under pytest's tmp (0700): Dovecot's unprivileged processes must reach the files.
    root = Path(tempfile.mkdtemp(prefix="cutover-dovecot-"))
    server = DovecotServer(root=root, imap_port=free_port(), lmtp_port=free_port(),
                           managesieve_port=free_port())
    _write_config(server)
    server.process = subprocess.Popen([binary, "-F", "-c", str(server.config_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(server.imap_port, server.process, root / "dovecot.log", b"* OK")
        wait_for_port(server.managesieve_port, server.process, root / "dovecot.log")
        wait_for_port(server.lmtp_port, server.process, root / "dovecot.log")
        yield server
    finally:
        stop(server.process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot_user(dovecot: DovecotServer) -> str:
    return dovecot.add_user(f"user{next(_user_numbers)}-{os.getpid()}")


# --- instances for the TLS rule (cutover/connectors/imap/tls.py) -------------------------------
# Their own Dovecot each, so that their log holds only the connections of the tests that use
# them: `auth_debug` logs every AUTHENTICATE a client sends ("client in: AUTH"), so a test can
# prove from the server's side that no credential arrived.

AUTH_LOGGING = "auth_verbose = yes\nauth_debug = yes\n"


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that no CA vouches for."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run([require_binary("openssl", "openssl"), "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o644)  # read by Dovecot's login processes; a throwaway test key
    return cert, key


def _extra_dovecot(prefix: str, settings: str | Callable[[DovecotServer], str],
                   certificate: bool = False):
    """A Dovecot like the `dovecot` fixture's, with `settings` (or what it makes of the
    server) appended to its config (a later setting overrides an earlier one) and, if asked,
    root/server.crt and root/server.key."""
    binary = require_binary("dovecot", "dovecot-imapd dovecot-managesieved")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = DovecotServer(root=root, imap_port=free_port(), lmtp_port=free_port(),
                           managesieve_port=free_port())
    _write_config(server)
    if callable(settings):
        settings = settings(server)
    if certificate:
        cert, key = _self_signed_certificate(root)
        settings += f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
    with server.config_file.open("a") as config:
        config.write(settings)
    server.process = subprocess.Popen([binary, "-F", "-c", str(server.config_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(server.imap_port, server.process, root / "dovecot.log", b"* OK")
        wait_for_port(server.managesieve_port, server.process, root / "dovecot.log")
        wait_for_port(server.lmtp_port, server.process, root / "dovecot.log")
        yield server
    finally:
        stop(server.process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_no_starttls():
    """Dovecot offering no STARTTLS (ssl = no), logging every authentication attempt."""
    yield from _extra_dovecot("cutover-dovecot-plain-", AUTH_LOGGING)


@pytest.fixture(scope="session")
def dovecot_starttls():
    """Dovecot offering STARTTLS on IMAP and ManageSieve with a self-signed certificate
    (`.root / "server.crt"`), logging every authentication attempt."""
    yield from _extra_dovecot("cutover-dovecot-tls-", AUTH_LOGGING, certificate=True)


# --- an instance with every extprograms extension a converted script may use ------------------

def _extprograms_settings(server: DovecotServer) -> str:
    for directory in (server.sieve_filter_bin_dir, server.sieve_execute_bin_dir):
        directory.mkdir(parents=True, exist_ok=True)
    return f"""\
plugin {{
  sieve_extensions = +vnd.dovecot.pipe +vnd.dovecot.filter +editheader
  sieve_global_extensions = +vnd.dovecot.execute
  sieve_filter_bin_dir = {server.sieve_filter_bin_dir}
  sieve_execute_bin_dir = {server.sieve_execute_bin_dir}
}}
"""


@pytest.fixture(scope="session")
def dovecot_extprograms():
    """Dovecot enabling vnd.dovecot.pipe, vnd.dovecot.filter and editheader for personal
    scripts, with `sieve_filter_bin_dir` and `sieve_execute_bin_dir` (beside the usual
    `sieve_pipe_bin_dir`); vnd.dovecot.execute only in sieve_global_extensions, which personal
    scripts cannot use."""
    yield from _extra_dovecot("cutover-dovecot-extprograms-", _extprograms_settings)
