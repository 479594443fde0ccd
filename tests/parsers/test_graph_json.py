"""Graph JSON parsing and building: strings in, values out."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cutover.parsers import graph_json as gj

MESSAGE = """{
  "@odata.etag": "W/\\"CQAAABYAAAAiIsqMbYjsT5e/T7KzowPTAAAYHbLm\\"",
  "id": "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AIiLKjG2I7E_Xvk-ys6MD0wAAGB2HSgAA",
  "receivedDateTime": "2024-03-01T09:30:12Z",
  "isRead": true,
  "isDraft": false,
  "internetMessageId": "<20240301093012.4711@mx1.example.org>",
  "categories": ["$Label1", "Project Cutover"],
  "flag": {"flagStatus": "flagged"},
  "singleValueExtendedProperties": [
    {"id": "Integer 0xe08", "value": "48213"},
    {"id": "Integer 0x1081", "value": "103"}
  ]
}"""


def test_message_maps_read_flag_categories_and_reply_verb_to_imap_flags():
    message = gj.parse_message(json.loads(MESSAGE))

    assert message.flags == {"\\Seen", "\\Flagged", "\\Answered", "$Label1", "Project Cutover"}
    assert message.size == 48213
    assert message.received == datetime(2024, 3, 1, 9, 30, 12, tzinfo=UTC)
    assert message.internet_message_id == "<20240301093012.4711@mx1.example.org>"


def test_forward_verb_is_the_forwarded_keyword_and_drafts_carry_draft_flag():
    item = {"id": "x", "receivedDateTime": "2024-03-01T09:30:12Z", "isDraft": True,
            "isRead": False, "flag": {"flagStatus": "complete"},
            "singleValueExtendedProperties": [{"id": "Integer 0x1081", "value": "104"}]}

    assert gj.message_flags(item) == {"\\Draft", "$Forwarded"}


def test_seven_fractional_digits_of_graph_timestamps_are_accepted():
    assert gj.parse_datetime("2024-03-01T09:30:12.1234567Z") == datetime(
        2024, 3, 1, 9, 30, 12, 123456, tzinfo=UTC)


def test_message_without_id_is_a_payload_error():
    with pytest.raises(gj.GraphPayloadError):
        gj.parse_message({"receivedDateTime": "2024-03-01T09:30:12Z"})


def test_flag_patch_sets_exactly_the_given_state():
    body = gj.flag_patch(frozenset({"\\Seen", "$Label1", "\\Deleted"}))

    assert body == {
        "isRead": True,
        "flag": {"flagStatus": "notFlagged"},
        "categories": ["$Label1"],
        "singleValueExtendedProperties": [{"id": "Integer 0x1081", "value": "0"}],
    }


def test_flag_patch_round_trips_through_message_flags():
    for flags in [frozenset({"\\Answered", "$Forwarded"}), frozenset({"$Forwarded"}),
                  frozenset({"\\Seen", "\\Flagged", "$Label2"}), frozenset()]:
        patch = gj.flag_patch(flags)
        item = {"id": "x", "receivedDateTime": "2024-03-01T09:30:12Z", **patch}
        assert gj.message_flags(item) == flags


def test_received_state_makes_a_non_draft_read_message_with_delivery_time():
    when = datetime(2023, 11, 5, 8, 15, tzinfo=timezone(timedelta(hours=1)))

    props = gj.received_state_properties(frozenset({"\\Seen", "\\Answered"}), when)

    assert props == [
        {"id": "Integer 0x0E07", "value": "1"},
        {"id": "SystemTime 0x0E06", "value": "2023-11-05T07:15:00Z"},
        {"id": "SystemTime 0x0039", "value": "2023-11-05T07:15:00Z"},
        {"id": "Integer 0x1081", "value": "102"},
    ]
    assert int(props[0]["value"]) & gj.MSGFLAG_UNSENT == 0


MIME = (b"Return-Path: <erik@example.net>\r\n"
        b"Received: from mx1.example.net by mx1.example.org; Tue, 5 Nov 2023 08:14:58 +0100\r\n"
        b"From: Erik Lund <erik@example.net>\r\n"
        b"To: Anna Berg <anna.berg@example.org>, ops@example.org\r\n"
        b"Cc: \"Lab, Team\" <lab@example.org>\r\n"
        b"Subject: =?utf-8?q?R=C3=A9sultats_du_lot_42?=\r\n"
        b"Date: Tue, 5 Nov 2023 08:14:00 +0100\r\n"
        b"Message-ID: <lot42.1699168440@example.net>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
        b"\r\n"
        b"--b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n"
        b"R\xc3\xa9sultats en pi\xc3\xa8ce jointe.\r\n"
        b"--b1\r\n"
        b"Content-Type: text/csv; name=\"lot42.csv\"\r\n"
        b"Content-Disposition: attachment; filename=\"lot42.csv\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"c2FtcGxlLHZhbHVlCjEsMC40Mgo=\r\n"
        b"--b1--\r\n")


def test_message_create_body_keeps_addresses_body_attachment_and_headers():
    body = gj.message_create_body(MIME, frozenset({"$Label1"}),
                                  datetime(2023, 11, 5, 7, 14, 58, tzinfo=UTC),
                                  now=datetime(2026, 1, 1, tzinfo=UTC))

    assert body["subject"] == "Résultats du lot 42"
    assert body["from"] == {"emailAddress": {"address": "erik@example.net", "name": "Erik Lund"}}
    assert [r["emailAddress"]["address"] for r in body["toRecipients"]] == [
        "anna.berg@example.org", "ops@example.org"]
    assert body["ccRecipients"] == [{"emailAddress": {"address": "lab@example.org",
                                                      "name": "Lab, Team"}}]
    assert body["internetMessageId"] == "<lot42.1699168440@example.net>"
    assert body["body"] == {"contentType": "text", "content": "Résultats en pièce jointe."}
    assert body["isRead"] is False and body["categories"] == ["$Label1"]
    [attachment] = body["attachments"]
    assert attachment["name"] == "lot42.csv"
    assert base64.b64decode(attachment["contentBytes"]) == b"sample,value\n1,0.42\n"
    props = {p["id"]: p["value"] for p in body["singleValueExtendedProperties"]}
    assert props["Integer 0x0E07"] == "0"
    assert props["SystemTime 0x0E06"] == "2023-11-05T07:14:58Z"
    assert props["SystemTime 0x0039"] == "2023-11-05T07:14:00Z"
    assert props["String 0x007D"].startswith("Return-Path: <erik@example.net>\r\nReceived:")
    assert props["String 0x007D"].endswith("MIME-Version: 1.0\r\nContent-Type: multipart/mixed;"
                                           " boundary=\"b1\"\r\n")


def test_mime_request_body_is_base64_of_the_exact_bytes():
    assert base64.b64decode(gj.mime_request_body(MIME)) == MIME


def test_mime_followup_patch_adds_delivery_time_to_flags():
    patch = gj.mime_followup_patch(frozenset({"\\Draft", "\\Seen"}),
                                   datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))

    assert patch["isRead"] is True
    assert {"id": "SystemTime 0x0E06", "value": "2024-01-02T03:04:05Z"} in \
        patch["singleValueExtendedProperties"]


def test_folder_size_comes_from_the_extended_property():
    folder = gj.parse_folder({"id": "F1", "displayName": "Projekte", "parentFolderId": "R",
                              "childFolderCount": 2, "totalItemCount": 12,
                              "singleValueExtendedProperties": [
                                  {"id": "Long 0xe08", "value": "1048576"}]})

    assert (folder.display_name, folder.child_count, folder.total_items, folder.size_bytes) == (
        "Projekte", 2, 12, 1048576)


def test_page_returns_values_and_next_link():
    page = gj.parse_page('{"value": [{"id": "a"}], "@odata.nextLink": "https://next"}')

    assert page == gj.Page([{"id": "a"}], "https://next")


def test_html_error_page_is_a_payload_error():
    with pytest.raises(gj.GraphPayloadError):
        gj.parse_page("<html><body>502 Bad Gateway</body></html>")


def test_errors_of_graph_and_of_the_token_endpoint_are_parsed():
    graph = gj.parse_error(404, '{"error": {"code": "ErrorInvalidUser", "message": "The '
                                'requested user \'x@example.org\' is invalid."}}')
    token = gj.parse_error(401, '{"error": "invalid_client", "error_description": '
                                '"AADSTS7000215: Invalid client secret provided."}')

    assert graph.code == "ErrorInvalidUser"
    assert (token.code, gj.aadsts_code(token.message)) == ("invalid_client", "AADSTS7000215")
    assert gj.parse_error(502, "Bad Gateway") == gj.GraphError(502, "", "")


def test_batch_request_refuses_more_than_twenty():
    with pytest.raises(ValueError):
        gj.batch_request([{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)])


def test_batch_request_gives_bodies_a_json_content_type():
    body = gj.batch_request([{"id": "1", "method": "PATCH", "url": "/users/u/messages/m",
                              "body": {"isRead": True}}])

    assert body["requests"][0]["headers"] == {"Content-Type": "application/json"}


def test_batch_response_headers_are_lower_case():
    answers = gj.parse_batch_response(json.dumps({"responses": [
        {"id": "2", "status": 429, "headers": {"Retry-After": "3"}, "body": {}},
        {"id": "1", "status": 200, "body": {"id": "F"}}]}))

    assert answers["2"].headers == {"retry-after": "3"}
    assert answers["1"].body == {"id": "F"}


def test_user_addresses_include_smtp_proxies_but_not_other_schemes():
    user = gj.parse_user({"id": "u1", "userPrincipalName": "Anna.Berg@example.org",
                          "mail": "anna.berg@example.org",
                          "proxyAddresses": ["SMTP:anna.berg@example.org",
                                             "smtp:a.berg@example.onmicrosoft.com",
                                             "X500:/o=ExchangeLabs/ou=x/cn=anna"]})

    assert user.addresses == {"anna.berg@example.org", "a.berg@example.onmicrosoft.com"}
