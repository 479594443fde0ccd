r"""Procmail's regex dialect, translated to the POSIX ERE that Pigeonhole's `:regex` match uses,
and procmail's header conditions translated to Sieve tests.

Procmail matches a condition against the whole header as one text, line by line: the `From `
line procmail puts first (`From <envelope sender>  <date>`), then every field as it was
written (`Name: value`, continuation lines on lines of their own). Sieve's `header :regex`
matches one field's value, with the field name and the blanks after the colon removed, folded
lines joined and RFC 2047 encoded words decoded. The mappings:

| procmail                        | Sieve / ERE                                                   |
|---------------------------------|---------------------------------------------------------------|
| case-insensitive by default     | default comparator `i;ascii-casemap`; flag `D` -> `i;octet`   |
| `^Subject:.*X`                  | `header :regex "subject" "X"` (unanchored search in the value)|
| `^Subject: *X`, `^Subject: X`   | `header :regex "subject" "^X"` (value starts after the blanks)|
| `^Subject:X` (no blank allowed) | refused: Sieve values never show the blanks after the colon   |
| `^(From\|Sender):...`           | `header :regex ["from", "sender"] ...`                        |
| `^Subject:` alone               | `exists "subject"`                                            |
| `^From.*X` (no colon: any field | every known field whose name starts with `From` (HEADER_NAMES)|
| whose name starts so, and the   | searched for X, and `envelope "from"` searched for X (the     |
| `From ` line)                   | `From ` line holds the envelope sender)                       |
| `^.*:.*X`, `X` (unanchored)     | every known field's value searched, the envelope sender too   |
| a regex matching the empty text | `true` (`* .*`, `*` alone)                                    |
| `^TO_addr`                      | To/Cc/Bcc/Resent-*/Original-*/X-Envelope-To/Apparently-To     |
|                                 | headers, value `(^\|[^-a-zA-Z0-9_.])addr`                     |
| `^TOword`                       | same headers, boundary class `[^a-zA-Z]`                      |
| `^FROM_DAEMON`, `^FROM_MAILER`  | the macro's header alternatives as header tests, its `>?From `|
|                                 | alternative as an `envelope "from"` test                      |
| `^^` (start of the header)      | the header starts with procmail's `From ` line: decided here  |
| `\<`, `\>`                      | `(^\|[^a-zA-Z0-9_])`, `([^a-zA-Z0-9_]\|$)`                    |
| `{`, `}` (literal in procmail)  | `[{]`, `[}]` (ERE would read an interval)                     |
| `\/` (start of MATCH)           | a group around the rest (`${N}` in the script)                |
| `\x` inside `[...]`             | `x` (ERE has no escapes inside brackets)                      |

"Every field" is the fields this module knows (HEADER_NAMES: the registered message header
fields and the common list, spam and mailer ones): Sieve names each field it tests and has no
way to test a field it cannot name, so a field outside that list is not searched.

Refused, because Sieve would decide differently: a pattern aimed at RFC 2047 encoded-word syntax
(`=?iso-8859-1?`; procmail sees it raw, Sieve decoded), a blank before `<` (`Name <addr>`: a
header folded there, `Name` newline tab `<addr>`, never matches in procmail, which sees the line
break, but matches in Sieve, which unfolds it), header names given only as a prefix
(`^X-Trac-.*`), and text glued to the colon (`^To:x`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

WORD_CHARS = "a-zA-Z0-9_"
LINE_END = "[^[:print:][:blank:]]"

# The recipient headers of procmail's ^TO_ / ^TO expansion:
# (^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):
RECIPIENT_HEADERS = [
    f"{original}{resent}{name}"
    for original in ("", "original-") for resent in ("", "resent-") for name in ("to", "cc", "bcc")
] + ["x-envelope-to", "apparently-to", "apparently-resent-to"]

# The message header fields a whole-header condition searches (lower case): RFC 5322, 2045,
# 2369, 2919, 3834, 5064, the IANA registry's common entries, and the fields list managers,
# spam and virus filters, mailers and forges add.
HEADER_NAMES = sorted(set(RECIPIENT_HEADERS) | {
    "return-path", "received", "date", "from", "sender", "reply-to", "to", "cc", "bcc",
    "message-id", "in-reply-to", "references", "subject", "comments", "keywords", "resent-date",
    "resent-from", "resent-sender", "resent-message-id", "resent-reply-to", "mime-version",
    "content-type", "content-transfer-encoding", "content-id", "content-description",
    "content-disposition", "content-language", "content-length", "content-class", "content-md5",
    "lines", "status", "x-status", "x-keywords", "x-uid", "delivered-to", "x-original-to",
    "envelope-to", "x-envelope-from", "errors-to", "precedence", "priority", "importance",
    "x-priority", "x-msmail-priority", "sensitivity", "organization", "user-agent", "x-mailer",
    "x-newsreader", "x-originating-ip", "auto-submitted", "x-auto-response-suppress",
    "x-autoreply", "x-loop", "x-no-archive", "list-id", "list-post", "list-help", "list-subscribe",
    "list-unsubscribe", "list-unsubscribe-post", "list-owner", "list-archive", "mailing-list",
    "x-mailing-list", "x-mailing-list-name", "x-list", "x-list-id", "x-ml-name", "x-beenthere",
    "x-list-administrivia", "x-mailman-version", "x-mailman-approved-at", "x-original-sender",
    "x-google-group-id", "x-googlegroups-id", "approved", "x-virus-scanned", "x-virus-status",
    "x-spam-status", "x-spam-flag", "x-spam-level", "x-spam-score", "x-spam-checker-version",
    "x-spam-report", "x-spam-detected", "x-spam", "x-bogosity", "x-dspam-result",
    "x-dspam-confidence", "x-spambayes-classification", "x-barracuda-spam-status", "x-mailscanner",
    "x-mimedefang-filtered", "x-junkmail", "x-amavis-alert", "authentication-results",
    "arc-authentication-results", "arc-message-signature", "arc-seal", "received-spf",
    "dkim-signature", "domainkey-signature", "thread-topic", "thread-index", "x-ms-has-attach",
    "x-ms-tnef-correlator", "x-mimeole", "x-face", "face", "openpgp", "autocrypt", "x-pgp-key",
    "disposition-notification-to", "return-receipt-to", "x-confirm-reading-to", "x-label",
    "x-github-reason", "x-github-sender", "x-github-recipient", "x-gitlab-project",
    "x-bugzilla-reason", "x-bugzilla-product", "x-bugzilla-component", "x-bugzilla-type",
    "x-bugzilla-who", "x-bugzilla-status", "x-cron-env", "x-facebook", "x-facebook-notify",
    "x-ebay-mailtracker", "feedback-id", "x-campaign", "x-campaignid", "x-mailgun-sid", "x-sg-eid",
    "x-ses-outgoing", "x-origin", "x-trac-version", "x-trac-project", "x-gnats-notification",
    "x-gnats-db", "x-lotus-fromdomain", "x-sender", "x-accept-language", "x-apparently-to",
    "x-forwarded-to", "x-forwarded-for", "x-rcpt-to", "x-envelope-sender", "rt-ticket",
    "x-rt-loop-prevention", "x-csa-complaints", "x-report-abuse", "x-abuse-info",
    "x-complaints-to", "x-sieve", "x-procmail", "x-original-date", "x-original-from",
    "x-original-message-id", "x-original-subject", "x-resent-to",
})

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
ENVELOPE_FROM = "envelope:from"
_ENCODED_WORD = re.compile(r"=\\\?|=\[\?\]|\\\?=|\[\?\]=|\?[QqBb]\?")
# a blank between two parts of a value (right after the colon it only marks the value start)
_BLANK_BEFORE_ANGLE = re.compile(r"[^:\\]( |\t|\[[ \t]+\][*+?]?|\[\[:(space|blank):\]\][*+?]?)<")


def sender_pattern(daemon: bool) -> str:
    names = _DAEMON_NAMES if daemon else _MAILER_NAMES
    return f"(^|[^>]*[^(.%@a-z0-9]){names}{_SENDER_TAIL}"


class RegexUntranslatable(Exception):  # noqa: N818 - carries a reason, caught by the converter
    """The regex cannot be expressed as a Sieve test with the same meaning."""


@dataclass(frozen=True)
class HeaderMatch:
    """`headers` match `pattern` (ERE; None: the field only has to exist). `headers` may be
    [ENVELOPE_FROM] (the envelope sender); `capture` is the group holding procmail's MATCH
    (0: none)."""

    headers: list[str]
    pattern: str | None
    capture: int = 0


ALWAYS = HeaderMatch([], None)  # an alternative that always matches


# --- the regex dialect -----------------------------------------------------------------------

def translate(regex: str, multiline: bool = False) -> tuple[str, int]:
    """Procmail regex -> POSIX ERE, and the number of the group holding what follows a `\\/`
    (procmail's MATCH; 0 when there is none).

    `multiline`: the text is many lines (a body), matched as one string by Pigeonhole, whose
    regcomp has no REG_NEWLINE; so `^` and `$` are spelled as line edges and `.` must not cross
    a line end, as in procmail. A line end is written as "a control character other than a
    blank" (`[^[:print:][:blank:]]`): Pigeonhole turns a line break inside a Sieve string into
    CRLF while a stored body may end its lines with LF alone, so a literal one would miss."""
    out: list[str] = []
    capture_at = -1
    for kind, text in _tokens(regex):
        if kind == "escape":
            if text != "/":
                out.append(_escape(text, "("))
            elif capture_at < 0:
                capture_at = len(out)
        elif kind == "bracket":
            out.append(text)
        elif kind == "start":
            out.append("^")
        elif multiline and text in "^$.":
            out.append({"^": f"(^|{LINE_END})", "$": f"({LINE_END}|$)",
                        ".": "([^[:cntrl:]]|[[:blank:]])"}[text])
        else:
            out.append(f"[{text}]" if text in "{}" else text)
    if capture_at < 0:
        return "".join(out), 0
    return _with_capture(out, capture_at)


def _tokens(regex: str) -> Iterator[tuple[str, str]]:
    """A procmail regex read once for both translations (ERE and Perl): ("escape", the
    character after a backslash), ("bracket", a whole bracket expression), ("start", `^^`, the
    start of the text) or ("char", any other character)."""
    index = 0
    while index < len(regex):
        char = regex[index]
        if char == "\\" and index + 1 < len(regex):
            yield "escape", regex[index + 1]
            index += 2
        elif char == "[":
            bracket, index = _bracket(regex, index)
            yield "bracket", bracket
        elif regex.startswith("^^", index):
            yield "start", "^^"
            index += 2
        else:
            yield "char", char
            index += 1


def _escape(following: str, group: str) -> str:
    """A procmail backslash escape (but `\\/`) in ERE (`group` "(") or Perl ("(?:")."""
    if following == "<":
        return f"{group}^|[^{WORD_CHARS}])"
    if following == ">":
        return f"{group}[^{WORD_CHARS}]|$)"
    if following.isalnum():
        return following  # `\\s`, `\\d`, `\\1`... are plain characters to procmail
    return "\\" + following


def _with_capture(out: list[str], at: int) -> tuple[str, int]:
    """Wrap what follows the `\\/` in a group of its own: it closes where the group the marker
    stands in closes (which must be the end), and its number counts the groups before it."""
    before, after = "".join(out[:at]), "".join(out[at:])
    depth, close = 0, len(after)
    for position, char in _unescaped(after):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                close = position
                break
    if after[close:].strip(")"):
        raise RegexUntranslatable("text after the group holding \\/ would belong to MATCH in "
                                  "procmail; Sieve cannot capture it the same way")
    number = 1 + sum(1 for _, char in _unescaped(before) if char == "(")
    return before + "(" + after[:close] + ")" + after[close:], number


def _unescaped(text: str):
    """(position, char) of each character outside escapes and bracket expressions."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = _bracket_end(text, index)
            continue
        yield index, char
        index += 1


def _bracket_end(text: str, start: int) -> int:
    index = start + 1
    if text[index:index + 1] == "^":
        index += 1
    if text[index:index + 1] == "]":
        index += 1
    while index < len(text) and text[index] != "]":
        if text.startswith("[:", index):
            end = text.find(":]", index + 2)
            index = end + 2 if end >= 0 else index + 1
            continue
        index += 1
    return index + 1


def _bracket(regex: str, start: int) -> tuple[str, int]:
    """Copy a bracket expression, dropping procmail's backslash escapes inside it (an escaped
    `-` is literal: it moves to the end, an escaped `]` to the start, where ERE reads them so)."""
    index = start + 1
    negated = ""
    body: list[str] = []
    literal_dash = literal_bracket = False
    if index < len(regex) and regex[index] == "^":
        negated = "^"
        index += 1
    if index < len(regex) and regex[index] == "]":
        literal_bracket = True
        index += 1
    while index < len(regex) and regex[index] != "]":
        if regex[index] == "\\" and index + 1 < len(regex):
            index += 1
            if regex[index] in "-]":
                literal_dash = literal_dash or regex[index] == "-"
                literal_bracket = literal_bracket or regex[index] == "]"
                index += 1
                continue
        body.append(regex[index])
        index += 1
    if index >= len(regex):
        raise RegexUntranslatable("unterminated '[' in regular expression")
    return ("[" + negated + ("]" if literal_bracket else "") + "".join(body)
            + ("-" if literal_dash else "") + "]"), index + 1


_POSIX_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z",
                  "lower": "a-z", "space": r" \t\n\r\f\v", "blank": r" \t",
                  "punct": r"!-/:-@\[-`{-~", "print": r" -~", "cntrl": r"\x00-\x1f\x7f",
                  "xdigit": "0-9A-Fa-f", "graph": "!-~"}


def python_regex(regex: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """The procmail regex as a Python pattern, to decide a condition on text known when
    converting (a variable's value, a header name). Raises RegexUntranslatable."""
    ere, _ = translate(regex)
    ere = re.sub(r"\[:(\w+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), ere)
    try:
        return re.compile(ere, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise RegexUntranslatable(f"cannot read the regular expression: {exc}") from None


_STACKED_QUANTIFIER = re.compile(r"(?<!\\)[*+?][*+?]")
# procmail substitutes these wherever they stand (procmailrc(5)); ^TO_ before ^TO
_RECIPIENT_FIELD = "(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):"
_TO_MACROS = (("^TO_", _RECIPIENT_FIELD + "(.*[^-a-zA-Z0-9_.])?)"),
              ("^TO", _RECIPIENT_FIELD + "(.*[^a-zA-Z])?)"))


def raw_header_pattern(regex: str, case_sensitive: bool = False) -> str:
    """The procmail regex as a Perl pattern over the raw header text, for the generated
    `procmail-match` program (programs.py): procmail's own view, line by line, with the
    `From ` line first, folded lines, encoded words and the blanks after each colon as written.

    `^` and `$` are line edges (Perl's `m`), `.` stops at a line end (no `s`), `^^` is the
    start of the header; case folds as in procmail unless `case_sensitive` (flag D). Refused:
    `\\/` (the program answers yes or no, it hands back no MATCH), procmail's `^FROM_` macros
    (kept as Sieve tests) and stacked quantifiers, which Perl reads as lazy or possessive.
    `^TO_` and `^TO` become procmail's own expansions."""
    regex = re.sub(r"(?<!\\)\\:", ":", regex)
    if "\\/" in regex:
        raise RegexUntranslatable("\\/ in a condition only the raw header can decide: the "
                                  "program deciding it hands back no MATCH")
    if "^FROM_DAEMON" in regex or "^FROM_MAILER" in regex:
        raise RegexUntranslatable("procmail's ^FROM_ macros in a condition only the raw "
                                  "header can decide")
    for macro, expansion in _TO_MACROS:
        regex = regex.replace(macro, expansion)
    if _STACKED_QUANTIFIER.search(re.sub(r"\[[^]]*\]", "", regex)):
        raise RegexUntranslatable("stacked repetition operators (`*?`, `++`) mean other things "
                                  "in the pattern language the raw-header program uses")
    out: list[str] = []
    for kind, text in _tokens(regex):
        if kind == "escape":
            out.append(_escape(text, "(?:"))
        elif kind == "bracket":
            out.append(_perl_bracket(text))
        elif kind == "start":
            out.append("\\A")
        else:
            out.append("\\" + text if text in "{}" else text)
    return ("(?m)" if case_sensitive else "(?mi)") + "".join(out)


def _perl_bracket(bracket: str) -> str:
    """An ERE bracket expression in Perl: a backslash or a `[` that opens no class is a
    literal character there."""
    inner = bracket[1:-1]
    out: list[str] = []
    index = 0
    while index < len(inner):
        if inner.startswith("[:", index) and (end := inner.find(":]", index + 2)) > 0:
            out.append(inner[index:end + 2])
            index = end + 2
            continue
        char = inner[index]
        out.append("\\" + char if char in "\\[]" else char)
        index += 1
    return "[" + "".join(out) + "]"


def matches_empty(regex: str) -> bool:
    """Whether the regex matches the empty text (so it matches any header or body)."""
    try:
        return python_regex(regex).fullmatch("") is not None
    except RegexUntranslatable:
        return False


# --- header conditions -----------------------------------------------------------------------

def header_match(regex: str) -> list[HeaderMatch]:
    """A header condition as field tests, any of which matching means a match ([ALWAYS]: true;
    []: never)."""
    regex = re.sub(r"(?<!\\)\\:", ":", regex)  # `\:` is a colon to procmail
    if _ENCODED_WORD.search(regex):
        raise RegexUntranslatable(
            "the pattern looks for RFC 2047 encoded-word syntax (=?charset?), which procmail "
            "sees raw but Sieve decodes before matching")
    if _BLANK_BEFORE_ANGLE.search(regex):
        raise RegexUntranslatable(
            "a blank before '<': a header folded there (Name, newline, tab, <addr>) never "
            "matches in procmail, which sees the line break, but matches in Sieve, which unfolds "
            "it")
    if matches_empty(regex):
        return [ALWAYS]
    alternatives = _alternatives(regex)
    if len(alternatives) > 1:
        matches: list[HeaderMatch] = []
        for alternative in alternatives:
            for match in header_match(alternative):
                if match is ALWAYS:
                    return [ALWAYS]
                matches.append(match)
        return matches
    return _single(regex)


def _single(regex: str) -> list[HeaderMatch]:
    for macro, daemon in (("^FROM_DAEMON", True), ("^FROM_MAILER", False)):
        if regex.startswith(macro):
            if regex[len(macro):].strip():
                raise RegexUntranslatable(f"text after {macro[1:]} is not supported")
            return _sender_macro(daemon)
    if regex.startswith("^TO"):
        underscore = regex.startswith("^TO_")
        rest = regex[4 if underscore else 3:]
        boundary = "[^-a-zA-Z0-9_.]" if underscore else "[^a-zA-Z]"
        if rest[:1] in tuple(". \t[(") or rest.startswith("\\ "):
            # procmail's expansion ends in an optional `(.*X)?`, so the text after the macro
            # may start right after the colon, on the blank Sieve's values never show
            raise RegexUntranslatable("the text after ^TO may match the blank after the "
                                      "colon, which Sieve never shows")
        value, capture = translate(rest)
        return [HeaderMatch(list(RECIPIENT_HEADERS), f"(^|{boundary}){value}",
                            capture + 1 if capture else 0)]
    if regex.startswith("^^"):
        return _header_start(regex[2:])
    anchored = regex.startswith("^")
    body = _unwrap(regex[1:] if anchored else regex)
    if not anchored and body.startswith(".*"):
        return header_match("^" + body)  # `.*X` anywhere is `^.*X`
    names, tail = _name_prefix(body)
    if anchored:
        return _anchored(names, tail)
    return _unanchored(names, tail, body)


def _anchored(prefixes: list[str], tail: str) -> list[HeaderMatch]:
    """`^Prefix` + tail: lines that start with Prefix: fields so named, the `From ` line."""
    if tail.startswith(":"):
        if any(not _is_name(name) for name in prefixes):
            raise RegexUntranslatable("empty or malformed header name before ':'")
        return [_field([name.lower() for name in prefixes], tail[1:])]
    if prefixes == [""] and re.match(r"^\.[*+]:", tail):
        # `^.*:rest`: any line with a colon: every field, `rest` after its colon (or a colon in
        # its value)
        rest = tail[3:]
        match = _field(HEADER_NAMES, rest)
        if rest.startswith(".*"):
            return [match]
        value, capture = translate(":" + rest)
        return [match, HeaderMatch(HEADER_NAMES, value, capture)]
    matches: list[HeaderMatch] = []
    for prefix in prefixes:
        matches += _prefix_fields(prefix, tail)
        matches += _from_line(prefix, tail)
    return matches


def _prefix_fields(prefix: str, tail: str) -> list[HeaderMatch]:
    names = [name for name in HEADER_NAMES if name.startswith(prefix.lower())]
    if not names and prefix and _is_name(prefix) and not prefix.endswith("-"):
        names = [prefix.lower()]  # a field this module does not list, named in full
    if not names:
        if prefix.endswith("-") or not prefix:
            raise RegexUntranslatable(
                f"matches every header whose name starts with {prefix!r}; Sieve has to name "
                "each header it tests")
        return []
    if tail == "":
        return [HeaderMatch(names, None)]
    if not re.match(r"^\.[*+]", tail):
        if tail[:1] in (" ", "\t") or tail.startswith("[ "):
            return []  # a blank right after a field name: fields never have one
        if tail[:1] not in ".[(\\^$*+?{|" and not _NAME_CHARS.fullmatch(tail[:1]):
            return []  # the name would go on with `@`, `.`...: no field is named so
        raise RegexUntranslatable(
            "the text after the header name must start with ':' or '.*' for Sieve to tell the "
            "name from the value")
    search = tail[2:]
    if tail[1] == "+" and search == "":
        search = "."
    existing = [name for name in names if _matches_inside(search, name[len(prefix):] + ":")]
    in_value = [name for name in names if name not in existing]
    matches = [HeaderMatch(existing, None)] if existing else []
    if in_value:
        if search == "":
            matches.append(HeaderMatch(in_value, None))
        else:
            _check_value_start(search)
            value, capture = translate(search)
            matches.append(HeaderMatch(in_value, value, capture))
    return matches


def _from_line(prefix: str, tail: str) -> list[HeaderMatch]:
    """The `From <sender>  <date>` line procmail puts first, when `^prefix tail` can match it:
    searched through the envelope sender (the date is left aside)."""
    if len(prefix) > 4 or "from"[:len(prefix)] != prefix.lower():
        return []
    rest = "from "[len(prefix):]  # what the line holds before the sender
    if tail == "":
        return [ALWAYS]
    if re.match(r"^\.[*+]", tail):
        search = tail[2:]
    elif tail.lower().startswith(rest):
        after = tail[len(rest):]
        if re.match(r"^\.[*+]", after):
            search = after[2:]
        else:
            value, capture = translate(after)
            return [HeaderMatch([ENVELOPE_FROM], "^" + value, capture)]
    else:
        return []
    if "$" in search.replace("\\$", ""):
        return []  # the date ends the line: a pattern anchored at the end misses the sender
    if search == "":
        return [ALWAYS]
    value, capture = translate(search)
    return [HeaderMatch([ENVELOPE_FROM], value, capture)]


def _unanchored(prefixes: list[str], tail: str, body: str) -> list[HeaderMatch]:
    """A regex that may start anywhere in a line: in a field name (the fields whose name holds
    the prefix), in a value, or in the envelope sender."""
    value, capture = translate(body)
    matches = [HeaderMatch(HEADER_NAMES, value, capture), HeaderMatch([ENVELOPE_FROM], value,
                                                                      capture)]
    for prefix in prefixes:
        if not prefix:
            continue
        names = [name for name in HEADER_NAMES if prefix.lower() in name]
        if tail.startswith(":"):
            names = [name for name in names if name.endswith(prefix.lower())]
            if _is_name(prefix) and prefix.lower() not in names:
                names.append(prefix.lower())
            if names:
                matches.append(_field(names, tail[1:]))
        elif tail == "":
            if names:
                matches.append(HeaderMatch(names, None))
        elif re.match(r"^\.[*+]", tail):
            for name in names:
                rest = name[name.index(prefix.lower()) + len(prefix):]
                matches += _prefix_fields(name[:len(name) - len(rest)], tail) \
                    if rest else _prefix_fields(name, tail)
        elif names and tail[:1] in ".[(\\^$*+?{|":
            raise RegexUntranslatable(
                "the text after the header name must start with ':' or '.*' for Sieve to tell "
                "the name from the value")
        # else the name would go on with `=`, `@`...: no field is named so, values only
    return matches


def _field(names: list[str], rest: str) -> HeaderMatch:
    pattern, capture = value_pattern(rest)
    return HeaderMatch(names, pattern, capture)


def value_pattern(rest: str) -> tuple[str | None, int]:
    """The part after `Name:` -> a pattern for the field value (None: existence only) and the
    MATCH group."""
    if rest == "":
        return None, 0
    if rest.startswith(".*") or rest.startswith(".+"):
        search = rest[2:]
        if search == "":
            return (".*" if rest[1] == "*" else "."), 0
        _check_value_start(search)
        tail, capture = translate(search)
        return tail, capture
    if (blanks := _BLANKS.match(rest)) is not None:
        tail, capture = translate(rest[blanks.end():])
        return "^" + tail, capture
    if rest.startswith("("):
        # e.g. `(.*[^a-z])?word`: the blank after the colon satisfies the optional group, as
        # the value start does in Sieve
        translated, capture = translate(rest)
        return translated, capture
    if rest == "$":
        return "^$", 0
    raise RegexUntranslatable(
        "the text right after the colon must match without the usual blank; Sieve field "
        "values never show it (write ': *' or ':.*')")


_BLANKS = re.compile(r"^(\[[ \t]+\][*+]|\[[ \t]+\]|\[\[:(space|blank):\]\][*+]?| [*+]?|\t[*+]?)")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]")


def _check_value_start(search: str) -> None:
    """A search that could start at the colon or the blank after it cannot be told apart from
    one inside the value."""
    try:
        pattern = python_regex(search)
    except RegexUntranslatable:
        return
    if pattern.match(": x") or pattern.match(" x"):
        raise RegexUntranslatable(
            "the pattern may match across the colon and the blank after the header name, "
            "which Sieve never shows")


def _matches_inside(search: str, text: str) -> bool:
    if search == "":
        return True
    try:
        return python_regex(search).search(text) is not None
    except RegexUntranslatable:
        return False


def _is_name(name: str) -> bool:
    return bool(name) and all(_NAME_CHARS.fullmatch(char) for char in name)


def _name_prefix(body: str) -> tuple[list[str], str]:
    """The literal header-name text at the start of `body`, expanded to its finite set of
    spellings (`(To|CC)`, `X-(Mailing-)?List`), and the rest of the regex."""
    spellings = [""]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in "-_":
            piece, end = [body[index + 1]], index + 2
        elif _NAME_CHARS.fullmatch(char):
            piece, end = [char], index + 1
        elif char == "(":
            group = _group_end(body, index)
            options = _name_options(body[index + 1:group - 1]) if group else None
            if options is None:
                break
            piece, end = options, group
        else:
            break
        if body[end:end + 1] in ("*", "+", "{"):
            break  # a repeated piece is not a fixed spelling: it belongs to the rest
        if body[end:end + 1] == "?":
            piece, end = piece + [""], end + 1
        spellings = [s + p for s in spellings for p in piece]
        if len(spellings) > 64:
            raise RegexUntranslatable("too many header-name spellings")
        index = end
    return sorted(set(spellings)), body[index:]


def _name_options(inner: str) -> list[str] | None:
    options: list[str] = []
    for alternative in _split_top(inner):
        names, rest = _name_prefix(alternative)
        if rest:
            return None
        options += names
    return options


def _group_end(text: str, start: int) -> int:
    """The index after the `)` closing the group opened at `start` (0 when unbalanced)."""
    depth = 0
    for position, char in _unescaped(text[start:]):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return start + position + 1
    return 0


def _split_top(text: str) -> list[str]:
    """Split at `|` outside groups and brackets."""
    parts, depth, last = [], 0, 0
    for position, char in _unescaped(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(text[last:position])
            last = position + 1
    parts.append(text[last:])
    return parts


def _alternatives(regex: str) -> list[str]:
    """Top-level alternatives; a leading group of anchored alternatives is distributed
    (`(^TO_|^From:).*x` -> `^TO_.*x`, `^From:.*x`)."""
    parts = _split_top(regex)
    if len(parts) > 1:
        return parts
    if regex.startswith("^("):
        end = _group_end(regex, 1)
        inner = _split_top(regex[2:end - 1]) if end else []
        if len(inner) > 1 and regex[end:end + 1] not in ("*", "+", "?", "{") \
                and _name_options(regex[2:end - 1]) is None:  # `^(To|Cc)` stays one name set
            return ["^" + part.removeprefix("^") + regex[end:] for part in inner]
    if regex.startswith("("):
        end = _group_end(regex, 0)
        inner = _split_top(regex[1:end - 1]) if end else []
        if len(inner) > 1 and any(part.startswith("^") for part in inner) \
                and regex[end:end + 1] not in ("*", "+", "?", "{"):
            return [part + regex[end:] for part in inner]
        if end == len(regex) and len(inner) == 1:
            return _alternatives(regex[1:-1])
    return [regex]


def _unwrap(body: str) -> str:
    """`((List-Id|X-List):(.*))` -> `(List-Id|X-List):(.*)`: a group around everything."""
    while body.startswith("(") and _group_end(body, 0) == len(body) \
            and len(_split_top(body[1:-1])) == 1:
        body = body[1:-1]
    return body


def _header_start(rest: str) -> list[HeaderMatch]:
    """`^^rest`: the header starts with procmail's `From ` line, so the condition is decided
    here when `rest` is plain text."""
    literal = re.match(r"[A-Za-z0-9 _-]*", rest)
    text = literal.group(0).lower() if literal else ""
    if "from "[:len(text)] != text[:5]:
        return []  # `^^rom[ ]`: the first line never starts so
    if len(text) <= 5 and text == rest.lower():
        return [ALWAYS]
    raise RegexUntranslatable("^^From followed by more: the From line holds the envelope "
                              "sender and the date, which Sieve sees apart")


def _sender_macro(daemon: bool) -> list[HeaderMatch]:
    matches = [HeaderMatch(SENDER_HEADERS, sender_pattern(daemon)),
               HeaderMatch([ENVELOPE_FROM], sender_pattern(daemon))]
    if daemon:
        matches += [HeaderMatch(["mailing-list"], None),
                    HeaderMatch(["precedence"], "(junk|bulk|list)"),
                    HeaderMatch(["to"], "^Multiple recipients of ")]
    return matches
