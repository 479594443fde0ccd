r"""Procmail's regex dialect, translated to the POSIX ERE that Pigeonhole's `:regex` match uses.

Procmail matches a condition against the whole header (or body) as one text, line by line;
Sieve's `header :regex` matches one field's value, with the field name and the whitespace
after the colon removed. The mappings, each applied below:

| procmail                        | Sieve / ERE                                                   |
|---------------------------------|---------------------------------------------------------------|
| case-insensitive by default     | default comparator `i;ascii-casemap`; flag `D` -> `i;octet`   |
| `^Subject:.*X`                  | `header :regex "subject" "X"` (unanchored search in the value)|
| `^Subject: *X`, `^Subject: X`   | `header :regex "subject" "^X"` (value starts after the blanks)|
| `^Subject:X` (no blank allowed) | refused: Sieve values never show the blanks after the colon   |
| `^(From\|Sender):...`           | `header :regex ["from", "sender"] ...`                        |
| `^Subject:` alone               | `exists "subject"`                                            |
| `^TO_addr`                      | To/Cc/Bcc/Resent-*/Original-*/X-Envelope-To/Apparently-To     |
|                                 | headers, value `(^\|[^-a-zA-Z0-9_.])addr` (the macro's       |
|                                 | `(.*[^-a-zA-Z0-9_.])?`: the blank after the colon counts)     |
| `^TOword`                       | same headers, boundary class `[^a-zA-Z]`                      |
| `^FROM_DAEMON`, `^FROM_MAILER`  | the macro's header alternatives as header tests, its `>?From `|
|                                 | alternative as an `envelope "from"` test                      |
| `^^` (start of the text)        | `^`                                                           |
| `\<`, `\>` (a non-word char or  | `(^\|[^a-zA-Z0-9_])`, `([^a-zA-Z0-9_]\|$)`                    |
| an edge)                        |                                                               |
| `{`, `}` (literal in procmail)  | `[{]`, `[}]` (ERE would read an interval)                     |
| `\/` (start of MATCH)           | dropped; refused by the converter when MATCH is used later    |
| `\x` inside `[...]`             | `x` (ERE has no escapes inside brackets)                      |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_CHARS = "a-zA-Z0-9_"
LINE_END = "[^[:print:][:blank:]]"

# The recipient headers of procmail's ^TO_ / ^TO expansion:
# (^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):
RECIPIENT_HEADERS = [
    f"{original}{resent}{name}"
    for original in ("", "original-") for resent in ("", "resent-") for name in ("to", "cc", "bcc")
] + ["x-envelope-to", "apparently-to", "apparently-resent-to"]

# The user part of procmail's FROM_MAILER / FROM_DAEMON expansions (procmailrc(5)), rewritten
# for a header value (the leading `([^>]*[^(.%@a-z0-9])?` may match nothing at the value start)
# and with the tab written as a tab: POSIX brackets have no escapes.
_MAILER_NAMES = ("(Post(ma?(st(e?r)?|n)|office)|(send)?Mail(er)?|daemon|mmdf|n?uucp|ops"
                 "|r(esponse|oot)|(bbs\\.)?smtp(error)?|s(erv(ices?|er)|ystem)"
                 "|A(dmin(istrator)?|MMGR))")
_DAEMON_NAMES = ("(Post(ma?(st(e?r)?|n)|office)|(send)?Mail(er)?|daemon|m(mdf|ajordomo)"
                 "|n?uucp|LIST(SERV|proc)|NETSERV|o(wner|ps)|r(e(quest|sponse)|oot)"
                 "|b(ounce|bs\\.smtp)|echo|mirror|s(erv(ices?|er)|mtp(error)?|ystem)"
                 "|A(dmin(istrator)?|MMGR|utoanswer))")
_SENDER_TAIL = "(([^).!:a-z0-9][-_a-z0-9]*)?[%@> \t][^<)]*(\\(.*\\).*)?)?$"
SENDER_HEADERS = ["from", "sender", "resent-from", "resent-sender", "x-envelope-from"]


def sender_pattern(daemon: bool) -> str:
    names = _DAEMON_NAMES if daemon else _MAILER_NAMES
    return f"(^|[^>]*[^(.%@a-z0-9]){names}{_SENDER_TAIL}"


class RegexUntranslatable(Exception):  # noqa: N818 - carries a reason, caught by the converter
    """The regex cannot be expressed as a Sieve test with the same meaning."""


@dataclass(frozen=True)
class HeaderMatch:
    """`headers` match `pattern` (ERE; None: the field only has to exist)."""

    headers: list[str]
    pattern: str | None


def translate(regex: str, multiline: bool = False) -> tuple[str, bool]:
    """Procmail regex -> POSIX ERE, and whether it held a `\\/` MATCH marker.

    `multiline`: the text is many lines (a body), matched as one string by Pigeonhole, whose
    regcomp has no REG_NEWLINE; so `^` and `$` are spelled as line edges and `.` must not cross
    a line end, as in procmail. A line end is written as "a control character other than a
    blank" (`[^[:print:][:blank:]]`): Pigeonhole turns a line break inside a Sieve string into
    CRLF while a stored body may end its lines with LF alone, so a literal one would miss."""
    out: list[str] = []
    capture = False
    index = 0
    while index < len(regex):
        char = regex[index]
        if char == "\\" and index + 1 < len(regex):
            following = regex[index + 1]
            index += 2
            if following == "/":
                capture = True
            elif following == "<":
                out.append(f"(^|[^{WORD_CHARS}])")
            elif following == ">":
                out.append(f"([^{WORD_CHARS}]|$)")
            else:
                out.append("\\" + following)
            continue
        if char == "[":
            bracket, index = _bracket(regex, index)
            out.append(bracket)
            continue
        if char == "^" and regex[index:index + 2] == "^^":
            out.append("^")
            index += 2
            continue
        if multiline and char in "^$.":
            out.append({"^": f"(^|{LINE_END})", "$": f"({LINE_END}|$)",
                        ".": "([^[:cntrl:]]|[[:blank:]])"}[char])
            index += 1
            continue
        if char in "{}":
            out.append(f"[{char}]")
        else:
            out.append(char)
        index += 1
    return "".join(out), capture


def _bracket(regex: str, start: int) -> tuple[str, int]:
    """Copy a bracket expression, dropping procmail's backslash escapes inside it."""
    index = start + 1
    body: list[str] = []
    if index < len(regex) and regex[index] == "^":
        body.append("^")
        index += 1
    if index < len(regex) and regex[index] == "]":
        body.append("]")
        index += 1
    while index < len(regex) and regex[index] != "]":
        if regex[index] == "\\" and index + 1 < len(regex):
            index += 1
        body.append(regex[index])
        index += 1
    if index >= len(regex):
        raise RegexUntranslatable("unterminated '[' in regular expression")
    return "[" + "".join(body) + "]", index + 1


_FIELD = re.compile(r"^\^(?:([A-Za-z0-9][-A-Za-z0-9_]*)|\(([-A-Za-z0-9_|]+)\)):")
_BLANKS = re.compile(r"^(\[[ \t]+\][*+]|\[[ \t]+\]| [*+]?|\t[*+]?)")


def header_match(regex: str) -> list[HeaderMatch]:
    """A header condition as one or more field tests (any of them matching means a match)."""
    for macro, daemon in (("^FROM_DAEMON", True), ("^FROM_MAILER", False)):
        if regex.startswith(macro):
            if regex[len(macro):].strip():
                raise RegexUntranslatable(f"text after {macro[1:]} is not supported")
            return _sender_macro(daemon)
    if regex.startswith("^TO_") or regex.startswith("^TO"):
        underscore = regex.startswith("^TO_")
        rest = regex[4 if underscore else 3:]
        boundary = "[^-a-zA-Z0-9_.]" if underscore else "[^a-zA-Z]"
        value, _ = translate(rest)
        return [HeaderMatch(list(RECIPIENT_HEADERS), f"(^|{boundary}){value}")]
    field = _FIELD.match(regex)
    if field is None:
        raise RegexUntranslatable(
            "the condition does not start with ^Header: so it matches the whole header; "
            "Sieve tests one field at a time")
    names = [name.lower() for name in (field.group(1) or field.group(2)).split("|")]
    if any(not name for name in names):
        raise RegexUntranslatable("empty header name in alternatives")
    return [HeaderMatch(names, value_pattern(regex[field.end():]))]


def value_pattern(rest: str) -> str | None:
    """The part after `Name:` -> a pattern for the field value (None: existence only)."""
    if rest == "":
        return None
    if rest.startswith(".*") or rest.startswith(".+"):
        tail, _ = translate(rest[2:])
        return tail or ".*"
    if (blanks := _BLANKS.match(rest)) is not None:
        tail, _ = translate(rest[blanks.end():])
        return "^" + tail
    if rest.startswith("(.*") or rest.startswith("("):
        # e.g. `(.*[^a-z])?word`: the blank after the colon satisfies the optional group, as
        # the value start does in Sieve
        translated, _ = translate(rest)
        return translated
    if rest == "$":
        return "^$"
    raise RegexUntranslatable(
        "the text right after the colon must match without the usual blank; Sieve field "
        "values never show it (write ': *' or ':.*')")


def _sender_macro(daemon: bool) -> list[HeaderMatch]:
    matches = [HeaderMatch(SENDER_HEADERS, sender_pattern(daemon)),
               HeaderMatch(["envelope:from"], sender_pattern(daemon))]
    if daemon:
        matches += [HeaderMatch(["mailing-list"], None),
                    HeaderMatch(["precedence"], "(junk|bulk|list)"),
                    HeaderMatch(["to"], "^Multiple recipients of ")]
    return matches
