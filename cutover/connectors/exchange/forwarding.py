"""Forwarding of Exchange mailboxes: read, set and remove one mailbox's forwarding.

    forwarding:
      exchange:                        # the twin: what Set-Mailbox -ForwardingSmtpAddress keeps
        kind: forwarding-file
        path: exchange/forwarding.json
      # exchange:                      # the real thing: an inbox redirect rule over EWS
      #   kind: ews-forwarding
      #   service_endpoint: https://mail.example.org/EWS/Exchange.asmx
      #   username: EXAMPLE\\svc-cutover
      #   password: env/EXCHANGE_PASSWORD
      #   auth_type: ntlm              # ntlm | basic
      #   access_type: impersonation   # impersonation (ApplicationImpersonation role) | delegate
      #   rule_name: cutover forwarding

Both kinds speak `Forwarding(address, keep_copy)`: the address mail goes to, and whether the
mailbox keeps a copy (DeliverToMailboxAndForward; for a rule: no Delete action).
The EWS kind owns exactly one inbox rule per mailbox, found by its display name; other rules
are left alone. Only `_account` opens an EWS session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    StepFailed,
    UsageError,
)
from cutover.files import atomic_write

DEFAULT_RULE_NAME = "cutover forwarding"


@dataclass(frozen=True)
class Forwarding:
    """Mail for a mailbox goes to `address`; `keep_copy` keeps one in the mailbox too."""

    address: str
    keep_copy: bool

    def to_json(self) -> dict[str, Any]:
        return {"forward_to": self.address, "keep_copy": self.keep_copy}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Forwarding | None:
        return None if data is None else cls(data["forward_to"], bool(data["keep_copy"]))


@connector("forwarding-file", role="forwarding")
class ForwardingFile:
    """mailbox -> {forwarding_smtp_address, deliver_and_forward} in one JSON file, as
    Get-Mailbox shows ForwardingSmtpAddress and DeliverToMailboxAndForward."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace) -> ForwardingFile:
        return cls(workspace.path(config.get("path", "exchange/forwarding.json")))

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path}: not a forwarding JSON file ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.path}: expected an object of mailbox -> forwarding")
        return data

    def get(self, mailbox: str) -> Forwarding | None:
        entry = self._load().get(mailbox.lower())
        if not entry or not entry.get("forwarding_smtp_address"):
            return None
        return Forwarding(_strip_smtp(entry["forwarding_smtp_address"]),
                          bool(entry.get("deliver_and_forward", False)))

    def set(self, mailbox: str, forwarding: Forwarding | None) -> None:
        data = self._load()
        if forwarding is None:
            data.pop(mailbox.lower(), None)
        else:
            data[mailbox.lower()] = {"forwarding_smtp_address": f"smtp:{forwarding.address}",
                                     "deliver_and_forward": forwarding.keep_copy}
        _atomic_write_json(self.path, data)

    def all(self) -> dict[str, Forwarding]:
        return {mailbox: forwarding for mailbox in sorted(self._load())
                if (forwarding := self.get(mailbox)) is not None}


def _strip_smtp(address: str) -> str:
    """Exchange shows ForwardingSmtpAddress as `smtp:user@domain`."""
    return address[5:] if address.lower().startswith("smtp:") else address


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@connector("ews", role="forwarding", aliases=("ews-forwarding",))
class EwsInboxRuleForwarding:
    """Forwarding as one inbox rule with a RedirectToRecipients action (EWS, exchangelib)."""

    def __init__(self, service_endpoint: str, username: str, password: str, *,
                 auth_type: str = "ntlm", access_type: str = "impersonation",
                 rule_name: str = DEFAULT_RULE_NAME):
        self.service_endpoint = service_endpoint
        self.username = username
        self._password = password
        self.auth_type = auth_type
        self.access_type = access_type
        self.rule_name = rule_name
        self._accounts: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace) -> EwsInboxRuleForwarding:
        where = "cutover.yaml: forwarding"
        for key in ("service_endpoint", "username", "password"):
            if not config.get(key):
                raise ConfigInvalid(f"{where}: an ews-forwarding connector needs {key}")
        auth_type = str(config.get("auth_type", "ntlm")).lower()
        if auth_type not in ("ntlm", "basic"):
            raise ConfigInvalid(f"{where}: auth_type must be ntlm or basic")
        access_type = str(config.get("access_type", "impersonation")).lower()
        if access_type not in ("impersonation", "delegate"):
            raise ConfigInvalid(f"{where}: access_type must be impersonation or delegate")
        return cls(config["service_endpoint"], config["username"],
                   workspace.secret(config["password"]), auth_type=auth_type,
                   access_type=access_type,
                   rule_name=str(config.get("rule_name", DEFAULT_RULE_NAME)))

    # --- the one seam that opens an EWS session ---------------------------------------------
    def _account(self, mailbox: str):
        from exchangelib import (
            BASIC,
            DELEGATE,
            IMPERSONATION,
            NTLM,
            Account,
            Build,
            Configuration,
            Credentials,
            Version,
        )

        if mailbox not in self._accounts:
            config = Configuration(
                service_endpoint=self.service_endpoint,
                credentials=Credentials(self.username, self._password),
                auth_type=NTLM if self.auth_type == "ntlm" else BASIC,
                # Inbox rules need Exchange 2010+; naming the version skips a probe request
                version=Version(build=Build(15, 1)),
            )
            self._accounts[mailbox] = Account(
                primary_smtp_address=mailbox, config=config, autodiscover=False,
                access_type=IMPERSONATION if self.access_type == "impersonation" else DELEGATE)
        return self._accounts[mailbox]

    def _rules(self, mailbox: str) -> list[Any]:
        with _ews_errors(self.service_endpoint, mailbox):
            return self._account(mailbox).rules

    def _our_rule(self, mailbox: str):
        return next((r for r in self._rules(mailbox) if r.display_name == self.rule_name), None)

    def get(self, mailbox: str) -> Forwarding | None:
        rule = self._our_rule(mailbox)
        if rule is None or not rule.is_enabled or rule.actions is None:
            return None
        targets = rule.actions.redirect_to_recipients or rule.actions.forward_to_recipients or []
        if not targets:
            return None
        removed = bool(rule.actions.delete or rule.actions.permanent_delete)
        return Forwarding(targets[0].email_address, keep_copy=not removed)

    def set(self, mailbox: str, forwarding: Forwarding | None) -> None:
        from exchangelib.properties import Actions, Address, Rule

        rule = self._our_rule(mailbox)
        with _ews_errors(self.service_endpoint, mailbox):
            account = self._account(mailbox)
            if forwarding is None:
                if rule is not None:
                    account.delete_rule(rule)
                return
            actions = Actions(redirect_to_recipients=[Address(email_address=forwarding.address)],
                              delete=not forwarding.keep_copy or None)
            if rule is None:
                rule = Rule(account=account, display_name=self.rule_name, priority=1,
                            is_enabled=True, actions=actions)
                account.create_rule(rule)
            else:
                rule.actions = actions
                rule.is_enabled = True
                account.set_rule(rule)

    def all(self) -> dict[str, Forwarding]:
        """EWS cannot list every mailbox's rules cheaply; the routing view shows none."""
        return {}


class _ews_errors:  # noqa: N801 - used as a context manager, reads like a function
    """Turn exchangelib and transport errors into one-line cutover errors."""

    def __init__(self, endpoint: str, mailbox: str):
        self.endpoint = endpoint
        self.mailbox = mailbox

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        from exchangelib.errors import (
            ErrorImpersonateUserDenied,
            ErrorNonExistentMailbox,
            EWSError,
            TransportError,
            UnauthorizedError,
        )

        if isinstance(exc, UnauthorizedError | ErrorImpersonateUserDenied):
            raise AuthenticationFailed(f"EWS refused the credentials for {self.mailbox} "
                                       f"at {self.endpoint}") from None
        if isinstance(exc, ErrorNonExistentMailbox):
            raise NotFound(f"Exchange has no mailbox {self.mailbox}") from None
        if isinstance(exc, TransportError | OSError):
            raise ConnectionFailed(f"cannot reach EWS at {self.endpoint}: "
                                   f"{_first_line(exc)}") from None
        if isinstance(exc, EWSError):
            raise StepFailed(f"EWS refused the change for {self.mailbox}: "
                             f"{_first_line(exc)}") from None
        return False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
