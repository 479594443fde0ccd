import pytest

from cutover.errors import ValidationFailed
from cutover.parsers import getmailbox_csv as parser

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


def test_duplicate_addresses_and_bad_addresses_are_all_reported_at_once():
    bad = ALICE.replace("Alice@Example.org", "not-an-address")
    with pytest.raises(ValidationFailed) as caught:
        parser.parse_text(COLUMNS + ALICE + ALICE + bad, "mb.csv")
    assert caught.value.lines() == [
        "mb.csv:3: duplicate address alice@example.org",
        "mb.csv:4: PrimarySmtpAddress 'not-an-address' is not an address"]


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
