"""A real rspamd (Debian's package) on loopback, with its own config, state and log directories.

Its proxy worker runs in milter mode with self-scan (the milter Postfix calls), its controller
answers `rspamc`. Its whole configuration is the fixture's own: CONFDIR, LOCAL_CONFDIR, DBDIR,
RUNDIR and LOGDIR are a temporary directory, so neither a system rspamd nor a host's /etc/rspamd
(absent where the package was never configured) plays a part; the package's Lua rules and
plugins come from /usr/share/rspamd, the program's compiled-in RULESDIR and PLUGINSDIR. Only
the modules the lab uses are configured (multimap, milter_headers, settings); those that need
the network or Redis (RBLs, SPF, DKIM, fuzzy, greylisting, Bayes...) are switched off: the lab
must not wait on DNS timeouts. A multimap rule gives the lab a way
to make a message score as spam: a body containing SPAM_MARKER scores 20 (reject is 15).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.ports import free_port, require_binary, wait_for_port

PACKAGE = "rspamd"
SPAM_MARKER = "cutover-lab-spam-marker"
START_TIMEOUT_S = 120.0  # first start compiles the TLD list and regexp caches
OFFLINE_MODULES = ("fuzzy_check", "rbl", "spf", "dkim", "dmarc", "phishing", "asn", "emails",
                   "mx_check", "url_redirector", "neural", "rspamd_update", "reputation",
                   "hfilter", "dcc", "surbl", "bimi", "dkim_signing", "arc", "greylist",
                   "ratelimit", "history_redis", "replies", "clickhouse", "elastic",
                   "metadata_exporter", "antivirus", "external_services")
LAB_MODULES = ("multimap", "milter_headers", "settings")


@dataclass
class RspamdServer:
    root: Path
    milter_port: int
    controller_port: int
    process: subprocess.Popen | None = None

    @property
    def milter(self) -> str:
        """As Postfix's smtpd_milters names it."""
        return f"inet:127.0.0.1:{self.milter_port}"

    @property
    def pid_file(self) -> Path:
        return self.root / "run" / "rspamd.pid"

    @property
    def log(self) -> Path:
        return self.root / "log" / "rspamd.log"

    def scan(self, message: bytes, sender: str, recipient: str) -> str:
        """rspamc's verdict (the `Action:` line) for a message, through the controller."""
        rspamc = require_binary("rspamc", PACKAGE)
        result = subprocess.run([rspamc, "-h", f"127.0.0.1:{self.controller_port}", "-F",
                                 sender, "-r", recipient], input=message, capture_output=True,
                                check=True)
        return next((line.split(":", 1)[1].strip() for line in result.stdout.decode().splitlines()
                     if line.startswith("Action:")), "")


def _owner() -> tuple[str | None, str | None]:
    if os.geteuid() != 0:
        return None, None
    try:
        pwd.getpwnam("_rspamd")
    except KeyError:
        pytest.fail(f"user _rspamd is missing: apt-get install {PACKAGE}", pytrace=False)
    return "_rspamd", "_rspamd"


def _write_config(server: RspamdServer) -> None:
    root = server.root
    for sub in ("local.d", "override.d", "db", "run", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    disabled = "".join(f"{module} {{ enabled = false; }}\n" for module in OFFLINE_MODULES)
    # as the package's modules.conf does: each module reads its local.d file (settings.conf is
    # where cutover's spamfilter connector writes its per-domain policies)
    configured = "".join(f'{module} {{ .include(try=true; priority=1; duplicate=merge) '
                         f'"$LOCAL_CONFDIR/local.d/{module}.conf" }}\n'
                         for module in LAB_MODULES)
    (root / "rspamd.conf").write_text(f"""\
lua = "$RULESDIR/rspamd.lua"
actions {{ reject = 15; add_header = 6; greylist = 4; }}
modules {{ path = "${{PLUGINSDIR}}"; }}
{disabled}{configured}options {{
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$LOCAL_CONFDIR/local.d/options.inc"
}}
logging {{
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    level = "info";
}}
worker "rspamd_proxy" {{
    bind_socket = "127.0.0.1:{server.milter_port}";
    milter = yes;
    timeout = 120s;
    upstream "local" {{ default = yes; self_scan = yes; }}
    count = 1;
    spam_header = "X-Spam";
}}
worker "controller" {{
    bind_socket = "127.0.0.1:{server.controller_port}";
    count = 1;
    secure_ip = "127.0.0.1";
}}
""")
    (root / "local.d" / "options.inc").write_text(
        'dns { nameserver = ["127.0.0.1:9"]; timeout = 0.1s; retransmits = 1; }\n'
        "map_watch_interval = 1d;\n"
        # PCRE instead of compiling Hyperscan databases, and a short public suffix list instead
        # of the 10 000 suffixes rspamd compiles at start: a lab start in seconds, not a minute
        "disable_hyperscan = true;\n"
        f'url_tld = "{root}/public-suffixes.dat";\n')
    (root / "public-suffixes.dat").write_text("com\nnet\norg\ninvalid\nexample\ntest\n")
    (root / "spam-markers.map").write_text(f"/{SPAM_MARKER}/i\n")
    (root / "local.d" / "multimap.conf").write_text(f"""\
LAB_SPAM_MARKER {{
  type = "content";
  filter = "body";
  map = "{root}/spam-markers.map";
  regexp = true;
  score = 20.0;
  description = "the lab's way to make a message score as spam";
}}
""")
    (root / "local.d" / "milter_headers.conf").write_text(
        'use = ["x-spamd-result", "x-rspamd-queue-id", "x-rspamd-server"];\n'
        "skip_local = false;\n"  # the lab's mail comes from loopback
        "skip_authenticated = false;\n")


def rspamd_command(server: RspamdServer) -> list[str]:
    binary = require_binary("rspamd", PACKAGE)
    user, group = _owner()
    root = server.root
    variables = [f"--var=CONFDIR={root}", f"--var=LOCAL_CONFDIR={root}",
                 f"--var=DBDIR={root}/db", f"--var=RUNDIR={root}/run",
                 f"--var=LOGDIR={root}/log"]
    owner = ["-u", user, "-g", group] if user else ["-i"]
    return [binary, "-f", *owner, "-p", str(server.pid_file), "-c", str(root / "rspamd.conf"),
            *variables]


@pytest.fixture(scope="session")
def rspamd() -> RspamdServer:
    require_binary("rspamd", PACKAGE)
    root = Path(tempfile.mkdtemp(prefix="cutover-rspamd-"))
    root.chmod(0o755)
    server = RspamdServer(root, free_port(), free_port())
    _write_config(server)
    user, group = _owner()
    if user:
        shutil.chown(root, user, group)
        for path in root.rglob("*"):
            shutil.chown(path, user, group)
    server.process = subprocess.Popen(rspamd_command(server), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT, start_new_session=True)
    # in the foreground rspamd writes no pidfile; a real host's has it (what reload signals)
    server.pid_file.write_text(f"{server.process.pid}\n")
    try:
        wait_for_port(server.controller_port, server.process, server.log,
                      deadline_s=START_TIMEOUT_S)
        wait_for_port(server.milter_port, server.process, server.log,
                      deadline_s=START_TIMEOUT_S)
        yield server
    finally:
        stop_group(server.process)
        shutil.rmtree(root, ignore_errors=True)


def stop_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Stop rspamd and its workers: SIGTERM to the main process, then, if it lingers, SIGKILL
    to the session it leads (only the processes this fixture started)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait()
