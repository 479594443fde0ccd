"""No password in clear: IMAP and ManageSieve require TLS off loopback, verify certificates, and
log in in plain text only with `tls: none`, which previews show. Proved against real Dovecot on
loopback with the loopback exemption taken away (CUTOVER_TLS_LOOPBACK_EXEMPT=0), reading the
server's own log (auth_debug logs every AUTHENTICATE a client sends)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cutover.connectors.dovecot.managesieve import ManageSieveStore
from cutover.connectors.imap.store import ImapMailStore, parse_endpoint
from cutover.connectors.imap.tls import LOOPBACK_EXEMPT_ENV, TlsRequired, starttls_required
from cutover.errors import ConfigInvalid, ConnectionFailed, UsageError
from cutover.steps.base import Context
from cutover.workspace import Workspace

PASSWORD = "Tls-Rule-4711"
NO_AUTH = "no auth attempts"
AUTH_SENT = "client in: AUTH"


class ServerLog:
    """What a Dovecot logged since this object was made."""

    def __init__(self, server):
        self.server = server
        self.start = len(server.log_text())

    def new(self) -> str:
        return self.server.log_text()[self.start:]

    def wait_for(self, text: str, deadline_s: float = 15.0) -> str:
        """Poll until `text` is logged (Dovecot logs a disconnect after the client is gone)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if text in self.new():
                return self.new()
            time.sleep(0.05)  # polling interval, not a timing assumption
        pytest.fail(f"{text!r} never logged; log since the test started:\n{self.new()}")


def cli(*args: str, cwd: Path, exempt: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env["CUTOVER_SOURCE_PASSWORD"] = PASSWORD
    if not exempt:
        env[LOOPBACK_EXEMPT_ENV] = "0"
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(cwd), "mailbox",
                           *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


@pytest.fixture
def not_exempt(monkeypatch):
    monkeypatch.setenv(LOOPBACK_EXEMPT_ENV, "0")


def _url(server, user: str, query: str = "") -> str:
    return f"imap://{user}@{server.host}:{server.imap_port}{query}"


# --- IMAP ------------------------------------------------------------------------------------

def test_imap_server_without_starttls_fails_in_one_line_before_any_login(dovecot_no_starttls,
                                                                         tmp_path):
    user = dovecot_no_starttls.add_user(f"nostarttls-{tmp_path.name}", PASSWORD)
    log = ServerLog(dovecot_no_starttls)
    result = cli("sync", _url(dovecot_no_starttls, user), "maildir:mail/out", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "does not offer STARTTLS" in line
    logged = log.wait_for(NO_AUTH)
    assert AUTH_SENT not in logged and user not in logged


def test_imap_plain_login_happens_only_with_tls_none(dovecot_no_starttls, tmp_path):
    user = dovecot_no_starttls.add_user(f"tlsnone-{tmp_path.name}", PASSWORD)
    log = ServerLog(dovecot_no_starttls)
    result = cli("sync", _url(dovecot_no_starttls, user, "?tls=none"), "maildir:mail/out",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    logged = log.wait_for(f"Login: user=<{user}>")
    assert AUTH_SENT in logged  # the same log does show a login when one is sent
    assert PASSWORD not in result.stdout + result.stderr + logged


def test_imap_self_signed_certificate_is_refused_unless_verification_is_off(dovecot_starttls,
                                                                            tmp_path):
    user = dovecot_starttls.add_user(f"selfsigned-{tmp_path.name}", PASSWORD)
    log = ServerLog(dovecot_starttls)
    refused = cli("sync", _url(dovecot_starttls, user), "maildir:mail/out", cwd=tmp_path)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: ") and "certificate" in line and "not trusted" in line
    assert AUTH_SENT not in log.new()
    accepted = cli("sync", _url(dovecot_starttls, user), "maildir:mail/out", "--no-tls-verify",
                   cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    logged = log.wait_for(f"Login: user=<{user}>")
    assert "TLS" in logged.split(f"Login: user=<{user}>")[1].splitlines()[0]


def test_loopback_logs_in_plain_only_while_exempt(dovecot_no_starttls, tmp_path):
    user = dovecot_no_starttls.add_user(f"exempt-{tmp_path.name}", PASSWORD)
    result = cli("sync", _url(dovecot_no_starttls, user), "maildir:mail/out", cwd=tmp_path,
                 exempt=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode, host, required", [
    ("auto", "mail.example.org", True),
    ("auto", "192.0.2.7", True),
    ("auto", "127.0.0.1", False),
    ("auto", "::1", False),
    ("auto", "localhost", False),
    ("starttls", "127.0.0.1", True),
    ("none", "mail.example.org", False),
])
def test_starttls_is_required_everywhere_but_loopback(mode, host, required):
    assert starttls_required(mode, host) is required


def test_loopback_exemption_can_be_taken_away(not_exempt):
    assert starttls_required("auto", "127.0.0.1")


@pytest.mark.parametrize("url", ["imaps://bob@mail.example.org?tls=none",
                                 "imaps://bob@mail.example.org?tls=starttls",
                                 "imap://bob@mail.example.org?tls=maybe",
                                 "imap://bob@mail.example.org?verify=no"])
def test_contradictory_or_unknown_tls_settings_are_usage_errors(url):
    with pytest.raises(UsageError):
        parse_endpoint(url)


def test_imap_config_with_bad_tls_is_config_invalid(tmp_path):
    config = {"kind": "imap", "url": "imap://{user}@mail.example.org:143",
              "password": "env/X", "tls": "sometimes"}
    with pytest.raises(ConfigInvalid, match="tls must be one of"):
        ImapMailStore.from_config(config, Workspace(tmp_path))


# --- ManageSieve -------------------------------------------------------------------------------

def _sieve(server, tmp_path: Path, **options) -> tuple[ManageSieveStore, str]:
    user = server.add_user(f"sieve-{tmp_path.name}", PASSWORD)
    return ManageSieveStore(server.host, server.managesieve_port, "{address}", PASSWORD,
                            **options), user


def test_managesieve_without_starttls_fails_in_one_line_before_authenticate(
        dovecot_no_starttls, tmp_path, not_exempt):
    store, user = _sieve(dovecot_no_starttls, tmp_path)
    log = ServerLog(dovecot_no_starttls)
    with pytest.raises(TlsRequired) as refused:
        store.scripts(user)
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)
    logged = log.wait_for(NO_AUTH)
    assert "managesieve-login" in logged and AUTH_SENT not in logged


def test_a_plan_step_over_managesieve_without_starttls_exits_2_before_authenticate(
        dovecot_no_starttls, tmp_path):
    user = dovecot_no_starttls.add_user(f"plan-{tmp_path.name}", PASSWORD)
    (tmp_path / "plans").mkdir()
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"sieve": {"linux": {
        "kind": "managesieve", "host": dovecot_no_starttls.host,
        "port": dovecot_no_starttls.managesieve_port, "password": "env/CUTOVER_SOURCE_PASSWORD"}}}))
    (tmp_path / "plans" / "keep.yaml").write_text(yaml.safe_dump({"name": "keep", "steps": [{
        "id": "keep-address", "kind": "sieve.redirect",
        "params": {"sieve": "linux", "account": user, "to": "bob@cloud.example.org"}}]}))
    log = ServerLog(dovecot_no_starttls)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update({"CUTOVER_SOURCE_PASSWORD": PASSWORD, LOOPBACK_EXEMPT_ENV: "0"})
    result = subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(tmp_path), "run",
                             "plans/keep.yaml", "--yes"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ManageSieve server") and "does not offer STARTTLS" in line
    logged = log.wait_for(NO_AUTH)
    assert "managesieve-login" in logged and AUTH_SENT not in logged


def test_managesieve_verifies_certificates_and_logs_in_over_tls(dovecot_starttls, tmp_path,
                                                                not_exempt):
    store, user = _sieve(dovecot_starttls, tmp_path)
    log = ServerLog(dovecot_starttls)
    with pytest.raises(ConnectionFailed, match="certificate .* not trusted"):
        store.scripts(user)
    assert AUTH_SENT not in log.new()
    store, _ = _sieve(dovecot_starttls, tmp_path, tls_verify=False)
    assert store.scripts(user) == []
    logged = log.wait_for(f"Login: user=<{user}>")
    assert "TLS" in logged.split(f"Login: user=<{user}>")[1].splitlines()[0]


def test_managesieve_default_is_no_longer_plain_text_off_loopback(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTOVER_TEST_SIEVE_PW", "x")
    workspace = Workspace(tmp_path)
    store = ManageSieveStore.from_config({"kind": "managesieve", "host": "mail.example.org",
                                          "password": "env/CUTOVER_TEST_SIEVE_PW",
                                          "starttls": False}, workspace)
    assert (store.tls, store.tls_verify) == ("auto", True)
    assert starttls_required(store.tls, store.host)


# --- previews ----------------------------------------------------------------------------------

def test_a_plain_text_store_is_named_once_in_the_preview(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTOVER_TEST_PW", "x")
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({
        "mailstores": {"old": {"kind": "imap", "url": "imap://{user}@mail.example.org:143",
                               "password": "env/CUTOVER_TEST_PW", "tls": "none"},
                       "new": {"kind": "imap", "url": "imap://{user}@mail.example.org:143",
                               "password": "env/CUTOVER_TEST_PW"}},
        "sieve": {"linux": {"kind": "managesieve", "host": "mail.example.org",
                            "password": "env/CUTOVER_TEST_PW", "tls": "none"}}}))
    notes: list[str] = []
    context = Context(Workspace(tmp_path), "plan", "step", params=None, log=notes.append)
    for section, name in [("mailstores", "old"), ("mailstores", "old"), ("mailstores", "new"),
                          ("sieve", "linux")]:
        context.connector(section, name)
    assert notes == [
        "WARNING mailstores.old: imap://mail.example.org:143 logs in WITHOUT TLS (tls: none): "
        "passwords cross the network in clear",
        "WARNING sieve.linux: ManageSieve mail.example.org:4190 logs in WITHOUT TLS "
        "(tls: none): passwords cross the network in clear"]
