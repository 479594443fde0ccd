from pathlib import Path

import pytest

from cutover.errors import ValidationFailed
from cutover.parsers import getmailbox_csv as parser

RECORDED = Path(__file__).parent.parent / "recorded" / "getmailbox-csv"

PS5_HEADER = "#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox\n"
COLUMNS = ('"Name","DisplayName","Alias","PrimarySmtpAddress","EmailAddresses",'
           '"RecipientTypeDetails","ForwardingAddress","ForwardingSmtpAddress",'
           '"DeliverToMailboxAndForward","ExchangeGuid"\n')
DATAREQUEST = ('"datarequest","Data Request","datarequest","datarequest@example.org",'
               '"SMTP:datarequest@example.org;smtp:dr@example.org;X500:/o=ExchangeLabs/ou=Exchange '
               'Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=datarequest",'
               '"SharedMailbox","","smtp:archive@verify.example.org","True",'
               '"0b6f3c1e-1111-4a2b-9c3d-5e6f7a8b9c0d"\n')
ALICE = ('"Alice Example","Alice Example","alice","Alice@Example.org","SMTP:alice@example.org",'
         '"UserMailbox","","","False","1f6f3c1e-2222-4a2b-9c3d-5e6f7a8b9c0d"\n')


def test_ps5_export_with_type_line_parses_every_field():
    records, report = parser.parse_text(PS5_HEADER + COLUMNS + DATAREQUEST + ALICE, "mb.csv")
    assert [r["address"] for r in records] == ["datarequest@example.org", "alice@example.org"]
    first = records[0]
    assert first["aliases"] == ["dr@example.org"]
    assert first["other_addresses"][0].startswith("X500:/o=ExchangeLabs")
    assert first["type"] == "shared" and first["type_detail"] == "SharedMailbox"
    assert first["forwarding"] == [{"via": "ForwardingSmtpAddress",
                                    "to": "archive@verify.example.org", "keep_copy": True}]
    assert first["local"] == "datarequest" and first["domain"] == "example.org"
    assert first["origin"] == "mb.csv:3"
    assert report.errors == [] and report.warnings == []


def test_ps7_export_without_type_line_parses_the_same():
    with_type, _ = parser.parse_text(PS5_HEADER + COLUMNS + ALICE)
    without, _ = parser.parse_text(COLUMNS + ALICE)
    assert [r["address"] for r in without] == [r["address"] for r in with_type]


@pytest.mark.parametrize("head, expected", [
    (b"\xff\xfe#\x00T\x00", "utf-16"),
    (b"\xef\xbb\xbf\"Na", "utf-8-sig"),
    (b"\"\x00N\x00a\x00", "utf-16-le"),
    (b"\"Name\"", "utf-8"),
])
def test_detect_encoding_recognises_what_powershell_writes(head, expected):
    assert parser.detect_encoding(head) == expected


def test_utf16_bom_file_as_powershell5_writes_round_trips():
    data = (PS5_HEADER + COLUMNS + ALICE).replace("\n", "\r\n").encode("utf-16")
    assert data[:2] == b"\xff\xfe"
    text = data.decode(parser.detect_encoding(data[:4]))
    records, _ = parser.parse_text(text)
    assert records[0]["address"] == "alice@example.org"


@pytest.mark.parametrize("text, expected", [
    ("1.234 GB (1,324,567,890 bytes)", 1324567890),
    ("1,234 GB (1.324.567.890 bytes)", 1324567890),
    ("512 KB (524,288 bytes)", 524288),
    ("0 B (0 bytes)", 0),
    ("12345", 12345),
    ("2 MB", 2 * 1024 * 1024),
    ("", None),
])
def test_parse_size_reads_the_exact_byte_count(text, expected):
    assert parser.parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "1.2 GB (many bytes)", "GB 12"])
def test_parse_size_rejects_malformed_sizes(text):
    with pytest.raises(ValueError, match="malformed size"):
        parser.parse_size(text)


@pytest.mark.parametrize("text, primary, aliases, others", [
    ("SMTP:a@x.org;smtp:b@x.org", "a@x.org", ["b@x.org"], []),
    ("smtp:b@x.org SMTP:a@x.org X500:/o=Org/ou=Exchange Administrative Group/cn=a",
     "a@x.org", ["b@x.org"], ["X500:/o=Org/ou=Exchange Administrative Group/cn=a"]),
    ("SIP:a@x.org;SMTP:A@X.org", "a@x.org", [], ["SIP:a@x.org"]),
    ("", None, [], []),
])
def test_parse_proxy_addresses_splits_by_prefix(text, primary, aliases, others):
    result = parser.parse_proxy_addresses(text)
    assert (result.primary, result.aliases, result.others) == (primary, aliases, others)


def test_proxy_collection_placeholder_is_a_warning_not_an_error():
    row = ALICE.replace('"SMTP:alice@example.org"',
                        '"Microsoft.Exchange.Data.ProxyAddressCollection"')
    records, report = parser.parse_text(COLUMNS + row, "mb.csv")
    assert records[0]["aliases"] == []
    assert len(report.warnings) == 1
    assert str(report.warnings[0]).startswith("mb.csv:2: EmailAddresses holds the collection")


def test_missing_columns_name_file_line_and_columns():
    with pytest.raises(ValidationFailed) as caught:
        parser.parse_text('"Name","DisplayName"\n"a","A"\n', "Get-Mailbox.csv")
    assert caught.value.lines() == [
        "Get-Mailbox.csv:1: missing column(s) PrimarySmtpAddress, RecipientTypeDetails (is this "
        "a Get-Mailbox or Get-Recipient export?)"]


def test_duplicate_addresses_are_all_reported_at_once():
    with pytest.raises(ValidationFailed) as caught:
        parser.parse_text(COLUMNS + ALICE + ALICE + DATAREQUEST + DATAREQUEST, "mb.csv")
    assert caught.value.lines() == ["mb.csv:3: duplicate address alice@example.org",
                                    "mb.csv:5: duplicate address datarequest@example.org"]


def test_row_without_a_usable_address_is_skipped_with_a_warning_not_a_refusal():
    bad = ALICE.replace("Alice@Example.org", "not-an-address").replace(
        "SMTP:alice@example.org", "")
    records, report = parser.parse_text(COLUMNS + bad + DATAREQUEST, "mb.csv")
    assert [r["address"] for r in records] == ["datarequest@example.org"]
    assert [str(w) for w in report.warnings] == [
        "mb.csv:2: PrimarySmtpAddress 'not-an-address' is not an address: row skipped"]


def test_wrong_field_count_is_located():
    with pytest.raises(ValidationFailed, match=r"mb.csv:2: 2 fields where the header has 10"):
        parser.parse_text(COLUMNS + '"a","b"\n', "mb.csv")


def test_malformed_size_is_a_warning_for_that_row_only():
    header = '"PrimarySmtpAddress","RecipientTypeDetails","TotalItemSize","ItemCount"\n'
    rows = ('"a@x.org","UserMailbox","huge","12"\n'
            '"b@x.org","UserMailbox","1 KB (1,024 bytes)","3"\n')
    records, report = parser.parse_text(header + rows, "mb.csv")
    assert [(r["size_bytes"], r["items"]) for r in records] == [(None, 12), (1024, 3)]
    assert [str(w) for w in report.warnings] == [
        "mb.csv:2: TotalItemSize: malformed size 'huge' (expected like "
        "'1.2 GB (1,288,490,189 bytes)')"]


def test_undecodable_text_is_a_located_error():
    def lines():
        yield COLUMNS
        yield ALICE
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    report = parser.ImportReport()
    list(parser.read_recipients(lines(), "mb.csv", report))
    assert [str(p) for p in report.errors] == [
        "mb.csv:3: text is neither UTF-8 nor UTF-16 with a BOM (re-export with Export-Csv "
        "-Encoding UTF8)"]


def test_later_file_repeats_are_skipped_but_not_errors():
    report = parser.ImportReport()
    seen: dict[str, str] = {}
    first = list(parser.read_recipients([COLUMNS, ALICE], "mb.csv", report, seen))
    recipients_header = '"PrimarySmtpAddress","RecipientTypeDetails","DisplayName"\n'
    second = list(parser.read_recipients(
        [recipients_header, '"alice@example.org","UserMailbox","Alice"\n',
         '"all-staff@example.org","MailUniversalDistributionGroup","All staff"\n'],
        "rcpt.csv", report, seen))
    assert [r["address"] for r in first + second] == ["alice@example.org",
                                                      "all-staff@example.org"]
    assert second[0]["type"] == "group" and report.errors == []


def test_statistics_join_by_mailbox_guid_then_display_name():
    stats_text = ('"DisplayName","MailboxGuid","TotalItemSize","ItemCount","LastLogonTime"\n'
                  '"Whoever","0b6f3c1e-1111-4a2b-9c3d-5e6f7a8b9c0d",'
                  '"1.234 GB (1,324,567,890 bytes)","41234","11/20/2026 09:12:44"\n'
                  '"Alice Example","","2 MB (2,097,152 bytes)","17",""\n')
    report = parser.ImportReport()
    stats = parser.read_statistics(stats_text.splitlines(keepends=True), "st.csv", report)
    records, _ = parser.parse_text(COLUMNS + DATAREQUEST + ALICE)
    assert all(parser.join_statistics(r, stats) for r in records)
    assert (records[0]["size_bytes"], records[0]["items"], records[0]["last_logon"]) == (
        1324567890, 41234, "2026-11-20T09:12:44")
    assert records[1]["size_bytes"] == 2097152


def test_statistics_without_key_column_is_an_error():
    report = parser.ImportReport()
    parser.read_statistics(['"TotalItemSize"\n', '"1 KB (1,024 bytes)"\n'], "st.csv", report)
    assert str(report.errors[0]).startswith("st.csv:1: a Get-MailboxStatistics export needs")


# --- exports as European (and other) administrators write them ------------------------------

#: The organisation of tests/recorded/getmailbox-csv, as every export style must read it:
#: address -> (display name, type, aliases, forwarding, size, items, last logon).
ORGANISATION = {
    "juergen.weiss@example.org": ("Jürgen Weiß", "user", ["jweiss@example.org"], [],
                                  2308544921, 18234, "2026-11-18T14:07:31"),
    "datarequest@example.org": ("Data Request", "shared", ["dr@example.org"],
                                [("ForwardingSmtpAddress", "archive@verify.example.org", True)],
                                1324567890, 41234, None),
    "elodie.lefevre@example.org": ("Élodie Lefèvre", "user", ["e.lefevre@example.org"], [],
                                   524288, 17, "2026-11-05T08:02:11"),
    "raum-2og@example.org": ("Besprechungsraum 2. OG", "room", [], [], 0, 0, None),
    "bulletin@example.org": ("Bulletin", "shared", ["bulletins@example.org"],
                             [("ForwardingAddress", "example.org/Users/Bulletin Archive",
                               False)], 21107712, 1203, "2026-12-01T23:59:59"),
    "discoverysearchmailbox{d919ba05-46a6-415f-80ad-7e09334bb852}@example.org": (
        "Discovery Search Mailbox", "discovery", [], [], 10485, 3, "2026-01-09T07:05:00"),
}
STYLES = sorted(p.name for p in RECORDED.iterdir() if p.is_dir())


def lines_of(path: Path) -> list[str]:
    data = path.read_bytes()
    return data.decode(parser.detect_encoding(data[:4])).splitlines(keepends=True)


def read_export(style: str) -> tuple[list[dict], parser.ImportReport]:
    """Read a recorded export as the getmailbox-csv source does: statistics first, joined."""
    report = parser.ImportReport()
    statistics = None
    stats_path = RECORDED / style / "Get-MailboxStatistics.csv"
    if stats_path.exists():
        lines = lines_of(stats_path)
        statistics = parser.read_statistics(lines, stats_path.name, report,
                                            parser.scan_day_first(lines))
    lines = lines_of(RECORDED / style / "Get-Mailbox.csv")
    records = list(parser.read_recipients(lines, "Get-Mailbox.csv", report, None,
                                          parser.scan_day_first(lines)))
    for record in records:
        if statistics is not None:
            assert parser.join_statistics(record, statistics), record["address"]
    return records, report


def as_organisation(records: list[dict]) -> dict:
    return {r["address"]: (r["display_name"], r["type"], r["aliases"],
                           [(f["via"], f["to"], f["keep_copy"]) for f in r["forwarding"]],
                           r["size_bytes"], r["items"], r["last_logon"]) for r in records}


def test_every_recorded_style_is_present():
    assert STYLES == ["ps51-de-DE", "ps51-remote-en-US", "ps51-snapin-en-US", "ps7-de-DE",
                      "ps7-fr-FR", "ps7-remoting-en-US"]


@pytest.mark.parametrize("style", STYLES)
def test_every_export_style_reads_into_the_same_recipients(style):
    records, report = read_export(style)
    assert report.errors == []
    assert as_organisation(records) == ORGANISATION


@pytest.mark.parametrize("style", [s for s in STYLES if "en-US" in s])
def test_en_us_exports_read_without_a_warning(style):
    _, report = read_export(style)
    assert report.warnings == []
    assert set(report.delimiters.values()) == {","}


@pytest.mark.parametrize("style, header_line", [
    ("ps51-de-DE", 2),  # after the #TYPE line
    ("ps7-de-DE", 1),
    ("ps7-fr-FR", 1),
])
def test_culture_delimited_export_says_which_delimiter_it_was_read_with(style, header_line):
    _, report = read_export(style)
    notes = [w for w in report.warnings if w.file == "Get-Mailbox.csv"]
    assert [(n.line, n.message.split(" (")[0]) for n in notes] == [
        (header_line, "fields are separated by ';', not ','")]
    assert report.delimiters["Get-Mailbox.csv"] == ";"


def test_the_de_de_file_of_the_issue_is_no_longer_refused():
    header = ('"PrimarySmtpAddress";"RecipientTypeDetails";"TotalItemSize";"ItemCount";'
              '"LastLogonTime"\r\n')
    row = ('"juergen.weiss@example.org";"UserMailbox";"2,15 GB (2.308.544.921 bytes)";"18234";'
           '"18.11.2026 14:07:31"\r\n')
    records, _ = parser.parse_text(header + row, "Get-Mailbox.csv")
    assert (records[0]["size_bytes"], records[0]["items"], records[0]["last_logon"]) == (
        2308544921, 18234, "2026-11-18T14:07:31")


@pytest.mark.parametrize("header, expected", [
    ('"Name","DisplayName","PrimarySmtpAddress"', ","),
    ('"Name";"DisplayName";"PrimarySmtpAddress"', ";"),
    ("Name;DisplayName;PrimarySmtpAddress", ";"),
    ('"Name"\t"DisplayName"\t"PrimarySmtpAddress"', "\t"),
    ('"Name"|"DisplayName"|"PrimarySmtpAddress"', "|"),
    ('"PrimarySmtpAddress"', ","),
])
def test_detect_delimiter_from_the_header_line(header, expected):
    assert parser.detect_delimiter(header) == expected


def test_excel_sep_line_names_the_delimiter():
    records, report = parser.parse_text(
        'sep=;\r\n"PrimarySmtpAddress";"RecipientTypeDetails"\r\n"a@x.org";"UserMailbox"\r\n',
        "mb.csv")
    assert [r["address"] for r in records] == ["a@x.org"]
    assert report.warnings[0].line == 2


@pytest.mark.parametrize("text, expected", [
    ("2,15 GB (2.308.544.921 bytes)", 2308544921),                  # de-DE
    ("2,15 GB (2\u202f308\u202f544\u202f921 bytes)", 2308544921),  # fr-FR, .NET 5+ (ICU)
    ("2,15 GB (2\u00a0308\u00a0544\u00a0921 bytes)", 2308544921),  # fr-FR, .NET Framework
    ("2.15 GB (2\u2019308\u2019544\u2019921 bytes)", 2308544921),  # de-CH, ICU
    ("2.15 GB (2'308'544'921 bytes)", 2308544921),                 # de-CH, .NET Framework
    ("2,15 GB (2.308.544.921 Bytes)", 2308544921),
    ("2,15 GB", int(2.15 * 1024**3)),
    ("1.023,5 MB", int(1023.5 * 1024**2)),
    ("512 KB", 512 * 1024),
])
def test_parse_size_reads_every_culture(text, expected):
    assert parser.parse_size(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("18234", 18234), ("18.234", 18234), ("18,234", 18234), ("18\u202f234", 18234), ("", None),
])
def test_parse_count_reads_grouped_digits(text, expected):
    assert parser.parse_count(text) == expected


@pytest.mark.parametrize("text", ["viele", "18.23", "1,2,3"])
def test_parse_count_rejects_what_is_not_a_count(text):
    with pytest.raises(ValueError, match="malformed item count"):
        parser.parse_count(text)


@pytest.mark.parametrize("text, expected", [
    ("18.11.2026 14:07:31", "2026-11-18T14:07:31"),            # de-DE, ru-RU, pl-PL
    ("8.11.2026 14.07.31", "2026-11-08T14:07:31"),             # fi-FI
    ("18. 11. 2026 14:07:31", "2026-11-18T14:07:31"),          # cs-CZ
    ("18-11-2026 14:07:31", "2026-11-18T14:07:31"),            # nl-NL
    ("2026/11/18 14:07:31", "2026-11-18T14:07:31"),            # ja-JP, zh-CN
    ("2026. 11. 18. 14:07:31", "2026-11-18T14:07:31"),         # hu-HU
    ("2026-11-18 14:07:31", "2026-11-18T14:07:31"),            # sv-SE
    ("2026-11-18T14:07:31", "2026-11-18T14:07:31"),
    ("11/18/2026 2:07:31 PM", "2026-11-18T14:07:31"),          # en-US
    ("11/18/2026 2:07:31\u202fPM", "2026-11-18T14:07:31"),     # en-US, .NET 8 with ICU 72+
    ("12/1/2026 12:00:05 AM", "2026-12-01T00:00:05"),
    ("12/1/2026 12:00:05 PM", "2026-12-01T12:00:05"),
    ("18/11/2026 14:07:31", "2026-11-18T14:07:31"),            # en-GB, fr-FR, es-ES, it-IT
    ("18/11/2026 2:07:31 p. m.", "2026-11-18T14:07:31"),       # es-MX
    ("", None),
])
def test_dates_as_each_culture_writes_them(text, expected):
    assert parser.parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["gestern", "31.02.2026 10:00:00", "13/13/2026 10:00:00",
                                  "11/18/2026 13:07:31 PM"])
def test_unreadable_dates_raise(text):
    with pytest.raises(ValueError, match="unreadable date"):
        parser.parse_datetime(text)


def test_slashed_dates_follow_the_first_date_that_only_one_order_fits():
    header = '"PrimarySmtpAddress";"RecipientTypeDetails";"LastLogonTime"\r\n'
    rows = ('"a@x.org";"UserMailbox";"05/11/2026 08:02:11"\r\n'  # ambiguous: comes first
            '"b@x.org";"UserMailbox";"18/11/2026 14:07:31"\r\n')  # tells: day first
    records, report = parser.parse_text(header + rows, "mb.csv")
    assert [r["last_logon"] for r in records] == ["2026-11-05T08:02:11", "2026-11-18T14:07:31"]
    assert len(report.warnings) == 1  # the delimiter note only: nothing was assumed
    comma = parser.parse_text((header + rows.replace("18/11", "11/18")).replace(";", ","))[0]
    assert [r["last_logon"] for r in comma] == ["2026-05-11T08:02:11", "2026-11-18T14:07:31"]


@pytest.mark.parametrize("delimiter, value, expected, order", [
    (";", "05/11/2026 08:02:11", "2026-11-05T08:02:11", "day/month/year"),
    (",", "05/11/2026 08:02:11", "2026-05-11T08:02:11", "month/day/year (en-US)"),
    (";", "05/11/2026 8:02:11 AM", "2026-05-11T08:02:11", "month/day/year (en-US)"),
])
def test_ambiguous_dates_alone_are_read_by_the_culture_and_the_assumption_is_said(
        delimiter, value, expected, order):
    text = delimiter.join(['"PrimarySmtpAddress"', '"RecipientTypeDetails"', '"LastLogonTime"'])
    text += "\r\n" + delimiter.join(['"a@x.org"', '"UserMailbox"', f'"{value}"']) + "\r\n"
    records, report = parser.parse_text(text, "mb.csv")
    assert records[0]["last_logon"] == expected
    assert str(report.warnings[-1]) == (
        f"mb.csv:1: dates such as {value!r} read both as day/month and as month/day, and no "
        f"date in the file tells which: read as {order}")


def test_unreadable_cells_are_warnings_naming_their_line_never_a_refusal():
    header = ('"PrimarySmtpAddress";"RecipientTypeDetails";"ForwardingSmtpAddress";'
              '"DeliverToMailboxAndForward";"TotalItemSize";"ItemCount";"LastLogonTime"\r\n')
    rows = ('"a@x.org";"UserMailbox";"";"False";"2,15 GB (2.308.544.921 bytes)";"18234";'
            '"18.11.2026 14:07:31"\r\n'
            '"b@x.org";"UserMailbox";"smtp:c@y.org";"Ja";"sehr groß";"viele";"gestern"\r\n'
            '"d@x.org";"SharedMailbox";"";"";"1 KB (1.024 bytes)";"3";""\r\n')
    records, report = parser.parse_text(header + rows, "Get-Mailbox.csv")
    assert [(r["address"], r["size_bytes"], r["items"], r["last_logon"]) for r in records] == [
        ("a@x.org", 2308544921, 18234, "2026-11-18T14:07:31"),
        ("b@x.org", None, None, None),
        ("d@x.org", 1024, 3, None)]
    assert records[1]["forwarding"] == [{"via": "ForwardingSmtpAddress", "to": "c@y.org",
                                         "keep_copy": False}]
    assert [str(w) for w in report.warnings[1:]] == [
        "Get-Mailbox.csv:3: DeliverToMailboxAndForward: unreadable 'Ja' (expected True or "
        "False): read as False, the forwarded mail keeps no copy",
        "Get-Mailbox.csv:3: TotalItemSize: malformed size 'sehr groß' (expected like "
        "'1.2 GB (1,288,490,189 bytes)')",
        "Get-Mailbox.csv:3: ItemCount: malformed item count 'viele'",
        "Get-Mailbox.csv:3: LastLogonTime: unreadable date 'gestern': last logon unknown"]


def test_scan_day_first_stops_at_once_without_a_date_column():
    def lines():
        yield '"PrimarySmtpAddress","RecipientTypeDetails"\r\n'
        raise AssertionError("read past the header")

    assert parser.scan_day_first(lines()) is None
