"""rspamd's per-domain settings (kind `rspamd`): the spam filter of one mail host.

    spamfilter:
      linux-mx:
        kind: rspamd
        local_confdir: /etc/rspamd          # settings go to local.d/settings.conf there
        milter: inet:127.0.0.1:11332        # what Postfix's smtpd_milters names (the proxy
                                            # worker in milter mode)
        reload: true                        # SIGHUP rspamd after a change, wait for new workers
        pid_file: /run/rspamd/rspamd.pid
        quarantine_sieve: /etc/dovecot/sieve-before.d/cutover-quarantine.sieve
                                            # Dovecot's sieve_before script (files spam away)

The file-backed twin is the same kind with `reload: false` and paths inside the workspace (the
demo): the files are written exactly as on a real host, nothing is signalled.

cutover owns one block per domain in `local.d/settings.conf` and in the quarantine script,
each between `# BEGIN cutover spamfilter.domain DOMAIN` and `# END ...` lines; every other line
of those files is left as it is. A block carries its policy as a JSON comment, so what is read
back is exactly what was written. Settings rules are rspamd's `settings` module: `rcpt` picks
the domain's mail, `from` the known senders, `apply { actions { reject = null; } }` switches an
action off (marked spam gets `X-Spam: Yes` from the milter instead).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import ConfigInvalid, StepFailed, UsageError
from cutover.files import atomic_write

SETTINGS_FILE = Path("local.d") / "settings.conf"
SPAM_HEADER = "X-Spam"
RELOAD_TIMEOUT_S = 60.0
_POLICY = re.compile(r"^# cutover-policy: (\{.*\})$", re.M)


@dataclass(frozen=True)
class DomainPolicy:
    """What the spam filter does for one domain."""

    domain: str
    #: envelope senders never rejected or greylisted: `@stations.example.net`, `a@b.org`
    known_senders: tuple[str, ...] = ()
    #: False: spam is marked (X-Spam: Yes) instead of rejected
    reject: bool = True
    #: where the quarantine Sieve script files marked spam (None: no quarantine)
    quarantine_folder: str | None = None


def begin_marker(domain: str) -> str:
    return f"# BEGIN cutover spamfilter.domain {domain}"


def end_marker(domain: str) -> str:
    return f"# END cutover spamfilter.domain {domain}"


def _rule_name(domain: str, suffix: str = "") -> str:
    return "cutover_" + re.sub(r"[^a-z0-9]", "_", domain.lower()) + suffix


def _ucl_string(text: str) -> str:
    return json.dumps(text)


def settings_block(policy: DomainPolicy) -> str:
    """The rspamd settings rules of one domain's policy."""
    data = asdict(policy) | {"known_senders": list(policy.known_senders)}
    lines = [begin_marker(policy.domain), f"# cutover-policy: {json.dumps(data, sort_keys=True)}"]
    rcpt = _ucl_string("@" + policy.domain)
    if policy.known_senders:
        senders = ", ".join(_ucl_string(s) for s in policy.known_senders)
        lines += [f"{_rule_name(policy.domain, '_known_senders')} {{",
                  "  priority = high;", f"  rcpt = {rcpt};", f"  from = [{senders}];",
                  "  # station and partner data can neither wait nor bounce",
                  '  apply { actions { reject = null; greylist = null; "soft reject" = null; } }',
                  "}"]
    if not policy.reject:
        lines += [f"{_rule_name(policy.domain)} {{", "  priority = medium;", f"  rcpt = {rcpt};",
                  "  # spam is marked (X-Spam: Yes) and filed away, never rejected",
                  "  apply { actions { reject = null; } }", "}"]
    lines.append(end_marker(policy.domain))
    return "\n".join(lines) + "\n"


def quarantine_block(domain: str, folder: str) -> str:
    """The Sieve rule filing the domain's spam into its quarantine folder (sieve_before)."""
    folder_text = folder.replace("\\", "\\\\").replace('"', '\\"')
    return (f"{begin_marker(domain)}\n"
            f'if allof (header :is "{SPAM_HEADER}" "Yes", '
            f'envelope :domain :is "to" "{domain}") {{\n'
            f'  fileinto :create "{folder_text}";\n  stop;\n}}\n{end_marker(domain)}\n')


QUARANTINE_REQUIRE = 'require ["envelope", "fileinto", "mailbox"];\n'


def find_block(text: str, domain: str) -> tuple[int, int] | None:
    """(start, end) offsets of the domain's block, markers and final newline included."""
    start = text.find(begin_marker(domain) + "\n")
    if start < 0:
        return None
    end_line = end_marker(domain) + "\n"
    end = text.find(end_line, start)
    if end < 0:
        raise UsageError(f"{begin_marker(domain)!r} has no matching {end_line.strip()!r}")
    return start, end + len(end_line)


def with_block(text: str, domain: str, block: str | None, header: str = "") -> str:
    """`text` with the domain's block replaced, added at the end, or removed (None)."""
    found = find_block(text, domain)
    if found is not None:
        start, end = found
        return text[:start] + (block or "") + text[end:]
    if block is None:
        return text
    if not text and header:
        text = header
    if text and not text.endswith("\n"):
        text += "\n"
    return text + block


def block_text(text: str, domain: str) -> str | None:
    found = find_block(text, domain)
    return text[found[0]:found[1]] if found else None


@connector("rspamd", role="spam-filter")
class RspamdSettings:
    def __init__(self, local_confdir: Path, milter: str, *, reload: bool = False,
                 pid_file: Path | None = None, quarantine_sieve: Path | None = None):
        self.local_confdir = local_confdir
        self.milter = milter
        self.reload_after_edit = reload
        self.pid_file = pid_file
        self.quarantine_sieve = quarantine_sieve

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> RspamdSettings:
        where = "cutover.yaml: spamfilter"
        if not config.get("local_confdir") or not config.get("milter"):
            raise ConfigInvalid(f"{where}: an rspamd entry needs local_confdir and milter")
        reload = config.get("reload", False)
        if not isinstance(reload, bool):
            raise ConfigInvalid(f"{where}: reload must be true or false")
        if reload and not config.get("pid_file"):
            raise ConfigInvalid(f"{where}: reload: true needs pid_file (rspamd's pidfile)")
        sieve = config.get("quarantine_sieve")
        pid_file = config.get("pid_file")
        return cls(workspace.path(config["local_confdir"]), str(config["milter"]),
                   reload=reload, pid_file=workspace.path(pid_file) if pid_file else None,
                   quarantine_sieve=workspace.path(sieve) if sieve else None)

    # --- files ------------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.local_confdir / SETTINGS_FILE

    def read_settings(self) -> str:
        return _read(self.settings_path)

    def read_quarantine(self) -> str:
        return _read(self.quarantine_sieve) if self.quarantine_sieve else ""

    def write_settings(self, text: str) -> None:
        _write(self.settings_path, text)
        self.reload()

    def write_quarantine(self, text: str) -> None:
        if self.quarantine_sieve is None:
            raise UsageError("cutover.yaml: this spamfilter entry has no quarantine_sieve")
        _write(self.quarantine_sieve, text)

    # --- policies ---------------------------------------------------------------------------
    def policies(self) -> dict[str, DomainPolicy]:
        text = self.read_settings()
        policies = {}
        for match in _POLICY.finditer(text):
            data = json.loads(match.group(1))
            policy = DomainPolicy(data["domain"], tuple(data.get("known_senders", ())),
                                  bool(data.get("reject", True)), data.get("quarantine_folder"))
            if block_text(text, policy.domain) == settings_block(policy):
                policies[policy.domain] = policy  # a block edited by hand is not ours
        return policies

    # --- reload -----------------------------------------------------------------------------
    def reload(self) -> None:
        """SIGHUP the main process, then wait until its workers are new ones (so the next
        message is scanned with the new settings)."""
        if not self.reload_after_edit or self.pid_file is None:
            return
        try:
            main = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            raise StepFailed(f"cannot read rspamd's pid from {self.pid_file}") from None
        before = _children(main)
        try:
            os.kill(main, signal.SIGHUP)
        except OSError as exc:
            raise StepFailed(f"cannot signal rspamd (pid {main}): {exc.strerror}") from None
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            now = _children(main)
            if now and not (now & before):
                return
            time.sleep(0.1)  # polling for the new workers, not a timing assumption
        raise StepFailed(f"rspamd (pid {main}) did not replace its workers within "
                         f"{RELOAD_TIMEOUT_S:g} s after SIGHUP: see its log")


def _children(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            children.add(int(stat.parent.name))
    return children


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if text:
        atomic_write(path, text)
    else:
        path.unlink(missing_ok=True)
