"""Parse a TSIG key file in BIND syntax, as `tsig-keygen` (or `ddns-confgen`) writes it:

    key "update-key" {
        algorithm hmac-sha256;
        secret "uMzUxuNJ/+eUW7sxG95d4/rTfYaKHWSvuSnOjawUR+c=";
    };

Strings in, values out. The secret is returned but never appears in an error message.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

ALGORITHMS = frozenset({"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384",
                        "hmac-sha512", "hmac-md5.sig-alg.reg.int"})

# Quoted strings are matched too, so that a "//" inside a base64 secret is not a comment.
_COMMENTS = re.compile(r'"(?:[^"\\]|\\.)*"|(?:#|//)[^\n]*|/\*.*?\*/', re.DOTALL)
_KEY_BLOCK = re.compile(r'key\s+"?([A-Za-z0-9._-]+)"?\s*\{(.*?)\}\s*;', re.DOTALL)
_STATEMENT = re.compile(r'([a-z-]+)\s+"?([^";]+)"?\s*;')


class KeyFileInvalid(ValueError):
    """The text is not a usable BIND key file."""


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str = field(repr=False)


def parse_key_file(text: str) -> TsigKey:
    """The first `key` block of `text`; raises KeyFileInvalid naming what is wrong."""
    uncommented = _COMMENTS.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "", text)
    blocks = _KEY_BLOCK.findall(uncommented)
    if not blocks:
        raise KeyFileInvalid('no key "NAME" { algorithm ...; secret "..."; }; block')
    name, body = blocks[0]
    statements = dict(_STATEMENT.findall(body))
    algorithm = statements.get("algorithm", "").strip().lower()
    secret = statements.get("secret", "").strip()
    if algorithm not in ALGORITHMS:
        raise KeyFileInvalid(f"key {name}: unsupported or missing algorithm {algorithm!r}")
    if not secret:
        raise KeyFileInvalid(f"key {name}: no secret")
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileInvalid(f"key {name}: the secret is not base64") from None
    return TsigKey(name=name, algorithm=algorithm, secret=secret)
