"""A real Postfix instance on loopback with its own config directory, and the mail lab around it.

`postfix_instance(root, ...)` writes main.cf and master.cf into ROOT/etc (never /etc/postfix),
its own queue and data directories, `inet_interfaces = loopback-only` and an SMTP listener on a
free port, then `postfix -c ROOT/etc start`; `stop()` is `postfix -c ROOT/etc stop`. Run as
root, as Postfix must: its daemons run as `mail_owner` (postfix), and `postfix check`, which
`start` runs, creates the queue directories with the ownership post-install wants; the data
directory is handed to mail_owner here. The instance reads the package's own files from
/etc/postfix only as meta_directory (postfix-files, dynamicmaps.cf): package data, no
configuration.

The session fixture `mail_lab` is one Postfix + rspamd + Dovecot for every lab test:

    Internet (the test) -> Postfix smtpd :PORT -> rspamd milter -> virtual alias / transport
        -> LMTP -> Dovecot (Pigeonhole; sieve_before = the quarantine script) -> IMAP

and a cutover workspace describing it (zone twin with MX records pointing at the lab host,
`postfix-maps` on the lab's map directory with `config_directory`, `smtp:` and `maillog:`,
`rspamd` spamfilter entry, an IMAP mail store). Tests that change it restore what they changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.servers.dovecot import DovecotServer
from tests.servers.dovecot import _write_config as write_dovecot_config
from tests.servers.ports import free_port, require_binary, stop, wait_for_port
from tests.servers.rspamd import RspamdServer

PACKAGE = "postfix"
LAB_HOST = "mx.verify.example.org"
DOMAINS = ("verify.example.org", "example.org")
PASSWORD = "secret"
LAB_ZONES = {
    "example.org": f"""\
$ORIGIN example.org.
$TTL 300
@    IN SOA ns1.example.org. hostmaster.example.org. 2026120101 3600 600 86400 300
@    IN NS  ns1.example.org.
@    IN MX  10 {LAB_HOST}.
ns1  IN A   127.0.0.1
""",
    "verify.example.org": """\
$ORIGIN verify.example.org.
$TTL 300
@    IN SOA ns1.example.org. hostmaster.example.org. 2026120101 3600 600 86400 300
@    IN NS  ns1.example.org.
@    IN MX  10 mx.verify.example.org.
mx   IN A   127.0.0.1
""",
}

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


@dataclass
class PostfixInstance:
    root: Path
    smtp_port: int

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maps_dir(self) -> Path:
        return self.root / "maps"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def postfix(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([require_binary("postfix", PACKAGE), "-c", str(self.config_dir),
                               *args], capture_output=True, text=True, timeout=60)

    def log_text(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def stop(self) -> None:
        self.postfix("stop")


def _main_cf(instance: PostfixInstance, lmtp: str, milter: str | None) -> str:
    maps = instance.maps_dir
    return f"""\
compatibility_level = 3.6
queue_directory = {instance.root}/queue
data_directory = {instance.root}/data
meta_directory = /etc/postfix
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = {LAB_HOST}
mydestination =
# the test talks to the lab as an outside sender would: loopback is not a trusted network
mynetworks = 192.0.2.255/32
alias_maps =
alias_database =
maillog_file = {instance.maillog}
maillog_file_prefixes = {instance.root}
smtputf8_enable = no
virtual_mailbox_domains = hash:{maps}/virtual_mailbox_domains
virtual_mailbox_maps = hash:{maps}/virtual_mailbox_maps
virtual_alias_maps = hash:{maps}/virtual
transport_maps = hash:{maps}/transport
relay_domains = hash:{maps}/relay_domains
virtual_transport = {lmtp}
smtpd_milters = {milter or ""}
milter_default_action = tempfail
"""


def postfix_instance(root: Path, lmtp: str, milter: str | None = None,
                     mailboxes: tuple[str, ...] = (),
                     transport: dict[str, str] | None = None) -> PostfixInstance:
    """Write and start one instance; the caller stops it."""
    if os.geteuid() != 0:
        pytest.fail("the Postfix lab must run as root (Postfix's master needs it)",
                    pytrace=False)
    postmap = require_binary("postmap", PACKAGE)
    require_binary("postfix", PACKAGE)
    instance = PostfixInstance(root, free_port())
    for sub in ("etc", "queue", "data", "maps"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "data", "postfix")
    (instance.config_dir / "main.cf").write_text(_main_cf(instance, lmtp, milter))
    (instance.config_dir / "master.cf").write_text(MASTER_CF.format(port=instance.smtp_port))
    sources = {"virtual_mailbox_domains": "".join(f"{d} OK\n" for d in DOMAINS),
               "virtual_mailbox_maps": "".join(f"{m} {m}/\n" for m in mailboxes),
               "virtual": "# old address -> new address\n",
               "transport": "# next hops\n" + "".join(f"{k} {v}\n"
                                                      for k, v in (transport or {}).items()),
               "relay_domains": "# none\n"}
    for name, text in sources.items():
        (instance.maps_dir / name).write_text(text)
        subprocess.run([postmap, "-c", str(instance.config_dir),
                        f"hash:{instance.maps_dir / name}"], check=True)
    started = instance.postfix("start")
    if started.returncode != 0:
        pytest.fail(f"postfix -c {instance.config_dir} start failed: {started.stderr}",
                    pytrace=False)
    master = _MasterWatch(instance)
    wait_for_port(instance.smtp_port, master, instance.maillog, b"220")
    return instance


class _MasterWatch:
    """What wait_for_port needs of a process: `poll()` is None while master runs."""

    def __init__(self, instance: PostfixInstance):
        self.instance = instance

    def poll(self) -> int | None:
        status = self.instance.postfix("status")
        return None if status.returncode == 0 else status.returncode


# --- the lab ------------------------------------------------------------------------------------

@dataclass
class MailLab:
    root: Path
    postfix: PostfixInstance
    rspamd: RspamdServer
    dovecot: DovecotServer
    workspace: Path
    mailboxes: tuple[str, ...]
    quarantine_sieve: Path
    extra: dict = field(default_factory=dict)

    @property
    def smtp(self) -> tuple[str, int]:
        return "127.0.0.1", self.postfix.smtp_port


LAB_MAILBOXES = ("datarequest@verify.example.org", "datarequest@example.org",
                 "bulletin@verify.example.org", "station-log@verify.example.org")
#: a mailbox whose transport leads to a port where nothing listens: Postfix defers its mail
GHOST_MAILBOX = "ghost@verify.example.org"


def _lab_dovecot(root: Path, quarantine: Path) -> DovecotServer:
    binary = require_binary("dovecot", "dovecot-imapd dovecot-lmtpd dovecot-sieve")
    server = DovecotServer(root=root, imap_port=free_port(), lmtp_port=free_port(),
                           managesieve_port=free_port())
    write_dovecot_config(server)
    with server.config_file.open("a") as config:
        # the quarantine script runs before every account's own Sieve script
        config.write(f"plugin {{\n  sieve_before = {quarantine}\n}}\n")
    server.process = subprocess.Popen([binary, "-F", "-c", str(server.config_file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_port(server.imap_port, server.process, root / "dovecot.log", b"* OK")
    wait_for_port(server.lmtp_port, server.process, root / "dovecot.log")
    return server


def lab_workspace(lab_root: Path, instance: PostfixInstance, rspamd: RspamdServer,
                  dovecot: DovecotServer, quarantine: Path) -> Path:
    workspace = lab_root / "workspace"
    (workspace / "zones").mkdir(parents=True)
    for zone, text in LAB_ZONES.items():
        (workspace / "zones" / zone).write_text(text)
    (workspace / "cutover.yaml").write_text(yaml.safe_dump({
        "name": "mail lab",
        "providers": {"dns": {"kind": "zonefile", "path": "zones/"}},
        "postfix": {"linux-mx": {
            "kind": "postfix-maps", "path": str(instance.maps_dir), "postmap": True,
            "reload": True,  # `postfix -c DIR reload` after each edit, as on a real host
            "config_directory": str(instance.config_dir), "smtp":
            f"127.0.0.1:{instance.smtp_port}", "maillog": str(instance.maillog)}},
        "spamfilter": {"linux-mx": {
            "kind": "rspamd", "local_confdir": str(rspamd.root), "milter": rspamd.milter,
            "reload": True, "pid_file": str(rspamd.pid_file),
            "quarantine_sieve": str(quarantine)}},
        "mailstores": {"linux": {"kind": "imap",
                                 "url": f"imap://{{user}}@127.0.0.1:{dovecot.imap_port}",
                                 "password": "env/CUTOVER_LAB_IMAP_PASSWORD"}},
    }, sort_keys=False))
    return workspace


@pytest.fixture(scope="session")
def mail_lab(rspamd: RspamdServer):
    root = Path(tempfile.mkdtemp(prefix="cutover-lab-"))
    root.chmod(0o755)
    quarantine = root / "sieve-before" / "quarantine.sieve"
    quarantine.parent.mkdir()
    quarantine.write_text('require ["envelope", "fileinto", "mailbox"];\n')
    quarantine.parent.chmod(0o755)
    dovecot = _lab_dovecot(root / "dovecot", quarantine)
    instance = None
    try:
        for mailbox in (*LAB_MAILBOXES, GHOST_MAILBOX):
            dovecot.add_user(mailbox)
        instance = postfix_instance(root / "postfix", f"lmtp:inet:127.0.0.1:{dovecot.lmtp_port}",
                                    rspamd.milter, (*LAB_MAILBOXES, GHOST_MAILBOX),
                                    {GHOST_MAILBOX: f"smtp:[127.0.0.1]:{free_port()}"})
        workspace = lab_workspace(root, instance, rspamd, dovecot, quarantine)
        previous = os.environ.get("CUTOVER_LAB_IMAP_PASSWORD")
        os.environ["CUTOVER_LAB_IMAP_PASSWORD"] = PASSWORD
        try:
            yield MailLab(root, instance, rspamd, dovecot, workspace, LAB_MAILBOXES, quarantine)
        finally:
            if previous is None:
                os.environ.pop("CUTOVER_LAB_IMAP_PASSWORD", None)
            else:
                os.environ["CUTOVER_LAB_IMAP_PASSWORD"] = previous
    finally:
        if instance is not None:
            instance.stop()
        stop(dovecot.process)
        shutil.rmtree(root, ignore_errors=True)
