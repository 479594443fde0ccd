"""Pure parsers for the mail-authentication TXT records: SPF (RFC 7208), DMARC (RFC 7489) and
DKIM keys (RFC 6376). Strings in, values out; malformed input raises RecordSyntaxError naming
the offending part."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field

SPF_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
#: Mechanisms and modifiers that cost a DNS lookup (RFC 7208 section 4.6.4).
SPF_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
SPF_LOOKUP_LIMIT = 10
_SPF_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$")
_SPF_MECHANISM = re.compile(r"^([+\-~?]?)([A-Za-z0-9]+)([:/].*)?$")
_DMARC_POLICIES = frozenset({"none", "quarantine", "reject"})


class RecordSyntaxError(ValueError):
    """A record that does not follow its specification."""


def is_spf(text: str) -> bool:
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def is_dmarc(text: str) -> bool:
    return re.match(r"^v\s*=\s*DMARC1\s*(;|$)", text, re.IGNORECASE) is not None


@dataclass(frozen=True)
class SpfTerm:
    qualifier: str
    name: str
    argument: str = ""

    @property
    def target(self) -> str:
        """The domain a mechanism or redirect names (`include:x`, `a:x/24`, `redirect=x`)."""
        return self.argument.split("/")[0].rstrip(".").lower()

    @property
    def has_macro(self) -> bool:
        return "%{" in self.argument


@dataclass(frozen=True)
class SpfRecord:
    terms: tuple[SpfTerm, ...]
    modifiers: dict[str, str] = field(default_factory=dict)

    @property
    def lookup_terms(self) -> list[SpfTerm]:
        return [t for t in self.terms if t.name in SPF_LOOKUP_TERMS]


def parse_spf(text: str) -> SpfRecord:
    """Parse `v=spf1 ...`; raises RecordSyntaxError for any invalid term."""
    if not is_spf(text):
        raise RecordSyntaxError("does not start with v=spf1")
    terms: list[SpfTerm] = []
    modifiers: dict[str, str] = {}
    for word in text.split()[1:]:
        modifier = _SPF_MODIFIER.match(word)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name in modifiers and name in ("redirect", "exp"):
                raise RecordSyntaxError(f"{name}= appears twice")
            if name in ("redirect", "exp") and not value:
                raise RecordSyntaxError(f"{name}= needs a domain")
            modifiers[name] = value
            if name == "redirect":
                terms.append(SpfTerm("", "redirect", value))
            continue
        terms.append(_spf_mechanism(word))
    return SpfRecord(tuple(terms), modifiers)


def _spf_mechanism(word: str) -> SpfTerm:
    match = _SPF_MECHANISM.match(word)
    if not match or match.group(2).lower() not in SPF_MECHANISMS:
        raise RecordSyntaxError(f"unknown term {word!r}")
    qualifier, name, rest = match.group(1), match.group(2).lower(), match.group(3) or ""
    argument = rest[1:] if rest.startswith(":") else rest
    if name == "all" and rest:
        raise RecordSyntaxError(f"{word!r}: all takes no argument")
    if name in ("include", "exists") and not rest.startswith(":"):
        raise RecordSyntaxError(f"{word!r}: {name} needs :domain")
    if name in ("ip4", "ip6"):
        _check_network(word, name, argument)
    elif name in ("a", "mx") and "/" in rest:
        _check_prefix(word, rest[rest.index("/"):])
    return SpfTerm(qualifier, name, argument)


def _check_network(word: str, name: str, argument: str) -> None:
    if not argument:
        raise RecordSyntaxError(f"{word!r}: {name} needs an address")
    try:
        network = ipaddress.ip_network(argument, strict=False)
    except ValueError:
        raise RecordSyntaxError(f"{word!r}: not an {name} address or network") from None
    if network.version != (4 if name == "ip4" else 6):
        raise RecordSyntaxError(f"{word!r}: not an {name} address")


def _check_prefix(word: str, cidr: str) -> None:
    if not re.fullmatch(r"(/\d{1,2})?(//\d{1,3})?", cidr):
        raise RecordSyntaxError(f"{word!r}: invalid CIDR length")


def parse_tags(text: str) -> dict[str, str]:
    """`tag=value; tag=value` (DMARC, DKIM): tags lower-cased, values stripped."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise RecordSyntaxError(f"{part!r} is not tag=value")
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise RecordSyntaxError(f"invalid tag name {name!r}")
        if name in tags:
            raise RecordSyntaxError(f"tag {name} appears twice")
        tags[name] = re.sub(r"\s+", "", value) if name in ("p",) else value.strip()
    return tags


def parse_dmarc(text: str) -> dict[str, str]:
    """The tags of a DMARC record, validated; raises RecordSyntaxError."""
    tags = parse_tags(text)
    if next(iter(tags), None) != "v" or tags["v"] != "DMARC1":
        raise RecordSyntaxError("must start with v=DMARC1")
    if "p" not in tags:
        raise RecordSyntaxError("the p= policy is missing")
    for policy_tag in ("p", "sp"):
        if policy_tag in tags and tags[policy_tag].lower() not in _DMARC_POLICIES:
            raise RecordSyntaxError(f"{policy_tag}={tags[policy_tag]}: expected none, "
                                    "quarantine or reject")
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        raise RecordSyntaxError(f"pct={tags['pct']}: expected 0 to 100")
    for alignment in ("adkim", "aspf"):
        if alignment in tags and tags[alignment].lower() not in ("r", "s"):
            raise RecordSyntaxError(f"{alignment}={tags[alignment]}: expected r or s")
    for report in ("rua", "ruf"):
        for uri in filter(None, (u.strip() for u in tags.get(report, "").split(","))):
            if not re.fullmatch(r"mailto:[^@\s]+@[^@\s!]+(![0-9]+[kmgt]?)?", uri, re.I):
                raise RecordSyntaxError(f"{report}: {uri!r} is not a mailto: address")
    return tags


@dataclass(frozen=True)
class DkimKey:
    key_type: str
    public_key: bytes
    tags: dict[str, str]

    @property
    def revoked(self) -> bool:
        return not self.public_key


def parse_dkim(text: str) -> DkimKey:
    """A DKIM key record (`v=DKIM1; k=rsa; p=...`); raises RecordSyntaxError."""
    tags = parse_tags(text)
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"] != "DKIM1"):
        raise RecordSyntaxError("v= must come first and be DKIM1")
    if "p" not in tags:
        raise RecordSyntaxError("the p= public key is missing")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise RecordSyntaxError(f"k={key_type}: expected rsa or ed25519")
    try:
        public_key = base64.b64decode(tags["p"], validate=True)
    except (binascii.Error, ValueError):
        raise RecordSyntaxError("p= is not base64") from None
    return DkimKey(key_type, public_key, tags)


def dkim_key_bits(key: DkimKey) -> int:
    """The key size; raises RecordSyntaxError when p= does not hold a key of type k=."""
    if key.key_type == "ed25519":
        if len(key.public_key) != 32:
            raise RecordSyntaxError("p= is not a 32-byte ed25519 key")
        return 256
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        loaded = load_der_public_key(key.public_key)
    except ValueError:
        raise RecordSyntaxError("p= is not an RSA public key") from None
    if not isinstance(loaded, RSAPublicKey):
        raise RecordSyntaxError("p= is not an RSA public key")
    return loaded.key_size
