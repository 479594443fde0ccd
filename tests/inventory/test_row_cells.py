"""A Get-Mailbox/Get-Recipient row is read by position (the positions worked out once from the
header): what it gives must be what reading the row as a {column: value} dict gave."""

import pytest

from cutover.parsers import getmailbox_csv as parser


def read_as_dict(text):
    """Each data row through `_record_from_row`, the dict-per-row reading."""
    report = parser.ImportReport()
    records = []
    for line, row in parser.iter_rows(text.splitlines(keepends=True), "x.csv", report):
        if line:
            warnings = []
            record, _ = parser._record_from_row(row, f"x.csv:{line}", warnings,
                                                parser.DateReader())
            records.append((record, warnings))
    return records


@pytest.mark.parametrize("text", [
    # only the two required columns: every other cell reads empty
    '"PrimarySmtpAddress","RecipientTypeDetails"\n"A@x.org","UserMailbox"\n',
    # Name stands in for a missing DisplayName; Guid for a missing ExchangeGuid
    '"Name","PrimarySmtpAddress","RecipientTypeDetails","Guid"\n'
    '"alice","a@x.org","SharedMailbox","ABC-1"\n',
    # two columns of one name: the last one counts, as in a dict of the row
    '"PrimarySmtpAddress","RecipientTypeDetails","DisplayName","DisplayName"\n'
    '"a@x.org","MailContact","first","second"\n',
    # forwarding with an unreadable flag, statistics cells, a whitespace-only DisplayName
    '"PrimarySmtpAddress","RecipientTypeDetails","DisplayName","Name","ForwardingSmtpAddress",'
    '"DeliverToMailboxAndForward","TotalItemSize","ItemCount","LastLogonTime"\n'
    '"a@x.org","UserMailbox","  ","alice","smtp:b@y.org","maybe","1.0 KB (1,024 bytes)","7",'
    '"11/18/2026 09:12:44"\n',
])
def test_a_row_read_by_position_is_the_row_read_as_a_dict(text):
    records, report = parser.parse_text(text, "x.csv")
    expected = read_as_dict(text)
    assert [r for r, _ in expected] == records
    assert [str(p).split(": ", 1)[1] for p in report.warnings] == [
        w for _, warnings in expected for w in warnings]


def test_the_last_of_two_same_named_columns_counts():
    records, _ = parser.parse_text('"PrimarySmtpAddress","RecipientTypeDetails","DisplayName",'
                                   '"DisplayName"\n"a@x.org","MailContact","first","second"\n')
    assert records[0]["display_name"] == "second"
