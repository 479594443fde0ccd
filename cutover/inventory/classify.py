"""Classification: every recipient gets a class, a destination and the reason for both.

Rules are declarative (cutover.yaml `inventory.classification`), tried in order; the first rule
whose every condition holds decides. Per-address overrides beat every rule. A recipient no rule
matches is `unknown` and stays where it is (`keep`): nothing is moved on a guess.

    inventory:
      classification:
        default_rules: true          # append DEFAULT_RULES after your own (the default)
        destinations: {service: retire}   # per-class destination, over DEFAULT_DESTINATIONS
        rules:
          - name: lab-robots
            class: verification
            match: {local: ["lab-*"], type: [user, shared]}
        overrides:
          old-bulletin@example.org: {class: service, destination: retire, reason: "replaced"}

Conditions (all must hold; a list means any of its values):
    address / local / domain   shell patterns (fnmatch, case-insensitive)
    type                       recipient types (user, shared, room, equipment, discovery, ...)
    has_procmail_rules         true/false: a .procmailrc routes this account's mail
    has_forwarding             true/false: forwarding set on the mailbox or by an inbox rule
    automated_share_at_least   0..1: share of sampled mail from automated senders
    subject_share_at_least     0..1: share of sampled subjects matching `subject_patterns`
    subject_patterns           regular expressions (default DATA_REQUEST, BEGIN IMS2.0, ...)
    idle_days_at_least         days since the newest item (or last logon)
    items_at_most              item count (unknown counts never match)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase, translate
from typing import Any

from cutover.errors import ConfigInvalid

CLASSES = ("verification", "people", "shared", "resource", "service", "unknown")
DESTINATIONS = ("linux", "cloud", "keep", "retire")

DEFAULT_DESTINATIONS: dict[str, str] = {
    "verification": "linux",
    "people": "cloud",
    "shared": "cloud",
    "resource": "cloud",
    "service": "keep",
    "unknown": "keep",
}

#: Subjects of machine-to-machine verification traffic (IMS/GSE data requests and bulletins).
VERIFICATION_SUBJECTS = (r"\bDATA_REQUEST\b", r"\bBEGIN\s+IMS\d\.\d", r"\bBEGIN\s+GSE\d\.\d",
                         r"\bDATA_TYPE\b", r"\bMSG_TYPE\s+(REQUEST|DATA)\b")

VERIFICATION_LOCALS = ["datarequest", "data-request", "reb-*", "bulletin*", "station-*",
                       "ims-*", "autodrm", "gse-*", "verify-*"]
SERVICE_LOCALS = ["noreply", "no-reply", "donotreply", "do-not-reply", "scanner*", "printer*",
                  "postmaster", "mailer-daemon", "abuse", "hostmaster", "webmaster", "bounce*",
                  "alerts", "monitoring", "nagios", "backup*", "svc-*", "healthmailbox*"]

DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "verification-functional-address", "class": "verification",
     "match": {"local": VERIFICATION_LOCALS},
     "why": "functional address of a verification data flow"},
    {"name": "service-address", "class": "service",
     "match": {"local": SERVICE_LOCALS}, "why": "technical sender or device address"},
    {"name": "system-mailbox", "class": "service",
     "match": {"type": ["discovery", "system", "public-folder"]},
     "why": "Exchange system mailbox"},
    {"name": "verification-procmail", "class": "verification",
     "match": {"has_procmail_rules": True, "type": ["user", "shared", "mailuser", "other"]},
     "why": "mail is processed by procmail recipes"},
    {"name": "verification-subjects", "class": "verification",
     "match": {"subject_share_at_least": 0.5},
     "why": "most sampled subjects are verification messages"},
    {"name": "verification-automated-traffic", "class": "verification",
     "match": {"automated_share_at_least": 0.9, "type": ["shared", "user"]},
     "why": "over 90% of sampled mail comes from automated senders"},
    {"name": "stale-user-mailbox", "class": "unknown",
     "match": {"type": ["user"], "idle_days_at_least": 365},
     "why": "no activity for a year: decide whether it moves or retires"},
    {"name": "nearly-empty-user-mailbox", "class": "unknown",
     "match": {"type": ["user"], "items_at_most": 1},
     "why": "too little mail to tell a person from a leftover account"},
    {"name": "people-user-mailbox", "class": "people", "match": {"type": ["user"]},
     "why": "personal user mailbox"},
    {"name": "shared-mailbox", "class": "shared", "match": {"type": ["shared", "group-mailbox"]},
     "why": "shared mailbox"},
    {"name": "resource-mailbox", "class": "resource",
     "match": {"type": ["room", "equipment", "scheduling"]}, "why": "room or equipment"},
    {"name": "distribution-group", "class": "shared", "match": {"type": ["group"]},
     "why": "distribution group, recreated in the cloud"},
    {"name": "contact-or-mail-user", "class": "service", "destination": "cloud",
     "match": {"type": ["contact", "mailuser"]},
     "why": "directory entry for an external address, recreated in the cloud"},
]

CONDITIONS = ("address", "local", "domain", "type", "has_procmail_rules", "has_forwarding",
              "automated_share_at_least", "subject_share_at_least", "subject_patterns",
              "idle_days_at_least", "items_at_most")


@dataclass(frozen=True)
class Rule:
    name: str
    klass: str
    match: dict[str, Any]
    destination: str | None = None
    why: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_screen", _screen(self.match))
        object.__setattr__(self, "_needs_sample", "automated_share_at_least" in self.match
                           or "subject_share_at_least" in self.match)
        object.__setattr__(self, "_checks", tuple(check for key, check in _CHECKS
                                                  if key in self.match))

    def may_match(self, recipient: dict[str, Any]) -> bool:
        """False when the rule's address/local/domain patterns cannot match: one compiled
        alternation per condition instead of fnmatch per pattern, so the rules a recipient
        fails cost little; a share condition cannot hold without sampled mail.
        `evidence` stays the one judge of the rules that pass."""
        if self._needs_sample and not (recipient.get("traits") or {}).get(  # type: ignore
                "sampled"):
            return False
        for key, patterns in self._screen:  # type: ignore[attr-defined]
            if not patterns.match((recipient.get(key) or "").lower()):
                return False
        return True

    def evidence(self, recipient: dict[str, Any], now: datetime | None) -> list[str] | None:
        """Why each condition holds, or None as soon as one does not (`_evidence`, with the
        conditions this rule has looked up once)."""
        evidence: list[str] = []
        for check in self._checks:  # type: ignore[attr-defined]
            text = check(self.match, recipient, now)
            if text is None:
                return None
            evidence.append(text)
        return evidence

    def admits_type(self, kind: Any) -> bool:
        """Whether the rule's type condition (if any) lets a recipient of this type through."""
        return "type" not in self.match or kind in self.match["type"]


def _screen(match: dict[str, Any]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(condition, compiled alternation of its patterns) for address, local and domain."""
    return tuple((key, re.compile("|".join(f"(?:{translate(str(p).lower())})"
                                           for p in match[key])))
                 for key in ("address", "local", "domain") if key in match)


@dataclass
class Classifier:
    rules: list[Rule]
    destinations: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DESTINATIONS))
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    now: datetime | None = None
    _by_type: dict[Any, tuple[Rule, ...]] = field(default_factory=dict, init=False, repr=False)

    def rules_for(self, kind: Any) -> tuple[Rule, ...]:
        """The rules, in order, whose type condition admits this recipient type (worked out
        once per type: most recipients then skip most rules without looking at them)."""
        try:
            return self._by_type[kind]
        except KeyError:
            pass
        except TypeError:  # an unhashable type value: no shortcut
            return tuple(r for r in self.rules if r.admits_type(kind))
        rules = self._by_type[kind] = tuple(r for r in self.rules if r.admits_type(kind))
        return rules

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None,
                    now: datetime | None = None) -> Classifier:
        """Build from `inventory.classification`; ConfigInvalid names the bad rule."""
        config = dict(config or {})
        own = [_rule(entry, index) for index, entry in enumerate(config.get("rules") or [])]
        defaults = [_rule(entry, index) for index, entry in enumerate(DEFAULT_RULES)]
        rules = own + defaults if config.get("default_rules", True) else own
        destinations = dict(DEFAULT_DESTINATIONS)
        for klass, destination in (config.get("destinations") or {}).items():
            _check_choice(klass, CLASSES, "destinations: class")
            _check_choice(destination, DESTINATIONS, f"destinations.{klass}")
            destinations[klass] = destination
        overrides = {}
        for address, entry in (config.get("overrides") or {}).items():
            overrides[str(address).lower()] = _override(str(address), entry)
        return cls(rules, destinations, overrides, now)

    def classify(self, recipient: dict[str, Any]) -> dict[str, Any]:
        """The recipient with `class`, `destination`, `rule` and `reason` set (a new dict)."""
        result = dict(recipient)
        result.update(self.decide(recipient))
        return result

    def classify_in_place(self, recipient: dict[str, Any]) -> dict[str, Any]:
        """`classify` for a recipient dict no one else holds: set on it, not on a copy."""
        recipient.update(self.decide(recipient))
        return recipient

    def decide(self, recipient: dict[str, Any]) -> dict[str, Any]:
        """`class`, `rule`, `destination` and `reason` for a recipient."""
        override = self.overrides.get(recipient["address"])
        if override:
            klass = override["class"]
            return {
                "class": klass, "rule": "override",
                "destination": override.get("destination") or self.destinations[klass],
                "reason": f"override for {recipient['address']} in cutover.yaml"
                          + (f": {override['reason']}" if override.get("reason") else ""),
            }
        sampled = None
        for rule in self.rules_for(recipient.get("type")):
            if rule._needs_sample:  # type: ignore[attr-defined]
                if sampled is None:
                    sampled = bool((recipient.get("traits") or {}).get("sampled"))
                if not sampled:
                    continue
            for key, patterns in rule._screen:  # type: ignore[attr-defined]
                if not patterns.match((recipient.get(key) or "").lower()):
                    break
            else:
                evidence = rule.evidence(recipient, self.now)
                if evidence is not None:
                    return {
                        "class": rule.klass, "rule": rule.name,
                        "destination": rule.destination or self.destinations[rule.klass],
                        "reason": f"rule {rule.name}: " + "; ".join(evidence)
                                  + (f" ({rule.why})" if rule.why else ""),
                    }
        return {"class": "unknown", "destination": "keep", "rule": None,
                "reason": f"no rule matched (type {recipient.get('type')}): stays where "
                          "it is until an override or a rule classifies it"}


def _check_choice(value: Any, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise ConfigInvalid(f"cutover.yaml: inventory.classification.{where}: {value!r} is not "
                            f"one of {', '.join(choices)}")


def _rule(entry: Any, index: int) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(entry, Mapping) or "class" not in entry:
        raise ConfigInvalid(f"cutover.yaml: inventory.classification.{where}: needs a class")
    _check_choice(entry["class"], CLASSES, f"{where}.class")
    if entry.get("destination") is not None:
        _check_choice(entry["destination"], DESTINATIONS, f"{where}.destination")
    match = dict(entry.get("match") or {})
    unknown = sorted(set(match) - set(CONDITIONS))
    if unknown:
        raise ConfigInvalid(f"cutover.yaml: inventory.classification.{where}.match: unknown "
                            f"condition(s) {', '.join(unknown)} (known: {', '.join(CONDITIONS)})")
    for key in ("address", "local", "domain", "type", "subject_patterns"):
        if key in match and isinstance(match[key], str):
            match[key] = [match[key]]
    name = str(entry.get("name") or f"rule-{index + 1}")
    return Rule(name, entry["class"], match, entry.get("destination"), str(entry.get("why", "")))


def _override(address: str, entry: Any) -> dict[str, Any]:
    if isinstance(entry, str):
        entry = {"class": entry}
    if not isinstance(entry, Mapping) or "class" not in entry:
        raise ConfigInvalid(f"cutover.yaml: inventory.classification.overrides.{address}: "
                            "needs a class")
    _check_choice(entry["class"], CLASSES, f"overrides.{address}.class")
    if entry.get("destination") is not None:
        _check_choice(entry["destination"], DESTINATIONS, f"overrides.{address}.destination")
    return dict(entry)


def _pattern_hit(patterns: list[str], value: str) -> str | None:
    value = (value or "").lower()
    for pattern in patterns:
        if fnmatchcase(value, str(pattern).lower()):
            return pattern
    return None


def _evidence(match: dict[str, Any], recipient: dict[str, Any],
              now: datetime | None) -> list[str] | None:
    """Why each condition holds, or None as soon as one does not."""
    evidence: list[str] = []
    for key, check in _CHECKS:
        if key in match:
            text = check(match, recipient, now)
            if text is None:
                return None
            evidence.append(text)
    return evidence


def _pattern_check(key: str):
    def check(match: dict[str, Any], recipient: dict[str, Any], now: datetime | None) -> str | None:
        hit = _pattern_hit(match[key], recipient.get(key, ""))
        return None if hit is None else f"{key} {recipient.get(key)!r} matches {hit!r}"
    return check


def _type_check(match: dict[str, Any], recipient: dict[str, Any],
                now: datetime | None) -> str | None:
    if recipient.get("type") not in match["type"]:
        return None
    return f"type is {recipient.get('type')}"


def _procmail_check(match: dict[str, Any], recipient: dict[str, Any],
                    now: datetime | None) -> str | None:
    found = [r for r in recipient.get("rules") or [] if r.get("kind") == "procmail"]
    if bool(found) != bool(match["has_procmail_rules"]):
        return None
    return f"procmail rules in {found[0]['path']}" if found else "no procmail rules"


def _forwarding_check(match: dict[str, Any], recipient: dict[str, Any],
                      now: datetime | None) -> str | None:
    forwards = bool(recipient.get("forwarding")) or any(
        r.get("forward_to") for r in recipient.get("rules") or [])
    if forwards != bool(match["has_forwarding"]):
        return None
    return "mail is forwarded" if forwards else "no forwarding"


def _share_check(key: str, trait: str):
    def check(match: dict[str, Any], recipient: dict[str, Any], now: datetime | None) -> str | None:
        traits = recipient.get("traits") or {}
        share = _trait_share(traits, trait, match)
        if share is None or share < float(match[key]):
            return None
        return _share_text(trait, share, traits, match)
    return check


def _items_check(match: dict[str, Any], recipient: dict[str, Any],
                 now: datetime | None) -> str | None:
    items = recipient.get("items")
    if items is None or items > int(match["items_at_most"]):
        return None
    return f"{items} item(s)"


def _idle_check(match: dict[str, Any], recipient: dict[str, Any],
                now: datetime | None) -> str | None:
    idle = _idle_days(recipient, now)
    if idle is None or idle < int(match["idle_days_at_least"]):
        return None
    return f"no activity for {idle} days"


#: Each condition's check, in the order a reason lists them: (evidence, or None when the
#: condition does not hold).
_CHECKS = (("address", _pattern_check("address")), ("local", _pattern_check("local")),
           ("domain", _pattern_check("domain")), ("type", _type_check),
           ("has_procmail_rules", _procmail_check), ("has_forwarding", _forwarding_check),
           ("automated_share_at_least", _share_check("automated_share_at_least",
                                                     "automated_share")),
           ("subject_share_at_least", _share_check("subject_share_at_least", "subject_share")),
           ("items_at_most", _items_check), ("idle_days_at_least", _idle_check))


def _share_text(trait: str, share: float, traits: dict[str, Any],
                match: dict[str, Any]) -> str:
    sampled = traits.get("sampled")
    if trait == "automated_share":
        return f"{share:.0%} of {sampled} sampled messages from automated senders"
    patterns = ", ".join(match.get("subject_patterns") or ["DATA_REQUEST/BEGIN IMS2.0/..."])
    return f"{share:.0%} of {sampled} sampled subjects match {patterns}"


def _trait_share(traits: dict[str, Any], trait: str, match: dict[str, Any]) -> float | None:
    if not traits.get("sampled"):
        return None
    if trait == "subject_share" and match.get("subject_patterns"):
        subjects = traits.get("subjects") or []
        patterns = [re.compile(p, re.IGNORECASE) for p in match["subject_patterns"]]
        hits = sum(1 for s in subjects if any(p.search(s) for p in patterns))
        return hits / len(subjects) if subjects else None
    value = traits.get(trait)
    return float(value) if value is not None else None


def _idle_days(recipient: dict[str, Any], now: datetime | None) -> int | None:
    latest = recipient.get("newest_item") or recipient.get("last_logon")
    if not latest or now is None:
        return None
    try:
        moment = datetime.fromisoformat(latest)
    except ValueError:
        return None
    if (moment.tzinfo is None) != (now.tzinfo is None):
        moment = moment.replace(tzinfo=now.tzinfo)
    return (now - moment).days
