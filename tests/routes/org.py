"""A small organisation for the routing-model tests, built as twins in a workspace: zones, the
Linux host's Postfix maps and main.cf, rspamd settings, Maildir stores, Exchange and cloud
forwarding, Sieve scripts and, when asked, an Exchange Online tenant read through the
`TenantRouting` protocol (a file-backed implementation: `tenant-json`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cutover.connectors.base import CONNECTORS, load_all
from cutover.connectors.m365.tenant_model import AcceptedDomain, MailConnector, TenantRecipient


class TenantJson:
    """Exchange Online's routing facts from one JSON file (what Get-AcceptedDomain,
    Get-OutboundConnector and Get-Recipient would say). Registered as kind `tenant-json` only
    while a test runs (`tenant_json_kind`), so the product's connector list stays its own."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> TenantJson:
        return cls(workspace.path(config["path"]))

    def _data(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def accepted_domains(self) -> list[AcceptedDomain]:
        return [AcceptedDomain(name, kind) for name, kind in self._data()["domains"].items()]

    def connectors(self) -> list[MailConnector]:
        return [MailConnector(c["name"], "outbound", domains=tuple(c["domains"]),
                              hosts=tuple(c["hosts"])) for c in self._data()["connectors"]]

    def recipients(self) -> list[TenantRecipient]:
        return [TenantRecipient(r["address"], r["type"], r.get("external", ""),
                                r.get("forward", ""), tuple(r.get("proxies", ())))
                for r in self._data()["recipients"]]

    def automatic_forwarding_allowed(self) -> bool:
        return self._data().get("auto_forward", True)


ONPREM_MX = ["10 mail.example.org."]
LINUX_MX = ["10 mx.verify.example.org."]
CLOUD_MX = ["0 example-org.mail.protection.outlook.com."]
MILTER = "inet:127.0.0.1:11332"


@dataclass
class Org:
    """What the twins hold; `write(root)` turns it into a workspace."""

    mx: dict[str, list[str]] = field(default_factory=lambda: {
        "example.org": list(ONPREM_MX), "verify.example.org": list(LINUX_MX)})
    hosts: dict[str, str] = field(default_factory=lambda: {
        "mail": "192.0.2.10", "ns1": "192.0.2.1"})
    verify_hosts: dict[str, str] = field(default_factory=lambda: {"mx": "192.0.2.40"})
    virtual: dict[str, str] = field(default_factory=dict)
    transport: dict[str, str] = field(default_factory=lambda: {
        "example.org": "smtp:[mail.example.org]:25"})
    relay_domains: list[str] = field(default_factory=lambda: ["example.org"])
    mailbox_domains: list[str] = field(default_factory=lambda: ["verify.example.org"])
    main_cf: dict[str, str] = field(default_factory=lambda: {"smtpd_milters": MILTER})
    linux: list[str] = field(default_factory=lambda: ["datarequest@verify.example.org",
                                                      "bulletin@verify.example.org"])
    exchange: list[str] = field(default_factory=lambda: ["datarequest@example.org",
                                                         "alice@example.org"])
    cloud: list[str] = field(default_factory=list)
    exchange_forwarding: dict[str, tuple[str, bool]] = field(default_factory=dict)
    cloud_forwarding: dict[str, tuple[str, bool]] = field(default_factory=dict)
    sieve: dict[str, str] = field(default_factory=dict)
    policy: dict[str, Any] | None = field(default_factory=lambda: {
        "domain": "verify.example.org", "known_senders": ["@stations.example.net"],
        "reject": False, "quarantine_folder": "Quarantine"})
    tenant: dict[str, Any] | None = None
    postfix_config: dict[str, Any] = field(default_factory=dict)

    def write(self, root: Path) -> Path:
        from cutover.connectors.rspamd.settings import DomainPolicy, settings_block

        (root / "zones").mkdir(parents=True, exist_ok=True)
        for zone, hosts in (("example.org", self.hosts), ("verify.example.org",
                                                          self.verify_hosts)):
            lines = [f"$ORIGIN {zone}.", "$TTL 3600",
                     "@ IN SOA ns1.example.org. hostmaster.example.org. 1 3600 600 86400 300",
                     "@ IN NS ns1.example.org."]
            lines += [f"@ IN MX {value}" for value in self.mx.get(zone, [])]
            lines += [f"{name} IN A {address}" for name, address in hosts.items()]
            (root / "zones" / zone).write_text("\n".join(lines) + "\n")
        postfix = root / "postfix"
        postfix.mkdir(exist_ok=True)
        maps = {"virtual": self.virtual, "transport": self.transport,
                "relay_domains": {d: "OK" for d in self.relay_domains},
                "virtual_mailbox_domains": {d: "OK" for d in self.mailbox_domains},
                "virtual_mailbox_maps": {a: f"{a}/" for a in self.linux}}
        for name, entries in maps.items():
            (postfix / name).write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
        (postfix / "main.cf").write_text("".join(f"{k} = {v}\n"
                                                 for k, v in self.main_cf.items()))
        for store, addresses in (("exchange", self.exchange), ("linux", self.linux),
                                 ("cloud", self.cloud)):
            for address in addresses:
                for sub in ("cur", "new", "tmp"):
                    (root / "mail" / store / address / sub).mkdir(parents=True, exist_ok=True)
        for system, forwards in (("exchange", self.exchange_forwarding),
                                 ("cloud", self.cloud_forwarding)):
            (root / system).mkdir(exist_ok=True)
            (root / system / "forwarding.json").write_text(json.dumps({
                mailbox: {"forwarding_smtp_address": f"smtp:{to}", "deliver_and_forward": keep}
                for mailbox, (to, keep) in forwards.items()}))
        for account, script in self.sieve.items():
            (root / "sieve" / account).mkdir(parents=True, exist_ok=True)
            (root / "sieve" / account / "main.sieve").write_text(script)
            (root / "sieve" / account / "active").write_text("main\n")
        (root / "rspamd" / "local.d").mkdir(parents=True, exist_ok=True)
        if self.policy:
            policy = DomainPolicy(self.policy["domain"], tuple(self.policy["known_senders"]),
                                  self.policy["reject"], self.policy["quarantine_folder"])
            (root / "rspamd" / "local.d" / "settings.conf").write_text(settings_block(policy))
        config: dict[str, Any] = {
            "providers": {"dns": {"kind": "zonefile", "path": "zones/"}},
            "postfix": {"linux-mx": {"kind": "postfix-maps", "path": "postfix/",
                                     "postmap": False, "config_directory": "postfix/",
                                     **self.postfix_config}},
            "spamfilter": {"linux-mx": {"kind": "rspamd", "local_confdir": "rspamd/",
                                        "milter": MILTER,
                                        "quarantine_sieve": "dovecot/quarantine.sieve"}},
            "mailstores": {name: {"kind": "maildir", "path": f"mail/{name}"}
                           for name in ("exchange", "linux", "cloud")},
            "forwarding": {name: {"kind": "forwarding-file", "path": f"{name}/forwarding.json"}
                           for name in ("exchange", "cloud")},
            "sieve": {"linux": {"kind": "sievedir", "path": "sieve/"}},
        }
        if self.tenant is not None:
            (root / "tenant.json").write_text(json.dumps(self.tenant))
            config["management"] = {"exo": {"kind": "tenant-json", "path": "tenant.json"}}
        (root / "cutover.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return root


@contextlib.contextmanager
def tenant_json_kind() -> Iterator[None]:
    load_all()  # the product's kinds first, so the registry is complete when this one goes
    CONNECTORS[("exchange-management", "tenant-json")] = TenantJson
    try:
        yield
    finally:
        CONNECTORS.pop(("exchange-management", "tenant-json"), None)
