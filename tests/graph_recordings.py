"""The recorded Microsoft 365 tenant the Graph tests replay (tests/recorded/graph/): its ids,
the sign-in exchange every session starts with, and the message the recordings were made from."""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = Path(__file__).parent / "recorded" / "graph"
TENANT = "0f3c7a52-6d2e-4b7e-9d7a-2a4c1e9b8f10"
CLIENT = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "Qx8~recorded.Secret-Value_DoNotLeak"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
GRAPH = "https://graph.microsoft.com/v1.0"
USER = "anna.berg@example.org"
MAILBOX = f"{GRAPH}/users/{USER}"
IDS = json.loads((RECORDED / "folder-ids.json").read_text())

#: What the source holds; message-value.eml is what Graph serves back for it.
LOT42_MIME = (b"Return-Path: <erik@example.net>\r\n"
              b"From: Erik Lund <erik@example.net>\r\n"
              b"To: Anna Berg <anna.berg@example.org>\r\n"
              b"Subject: =?utf-8?q?R=C3=A9sultats_du_lot_42?=\r\n"
              b"Date: Sun, 5 Nov 2023 08:14:00 +0100\r\n"
              b"Message-ID: <lot42.1699168440@example.net>\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n"
              b"Content-Transfer-Encoding: 8bit\r\n"
              b"\r\n"
              b"R\xc3\xa9sultats en pi\xc3\xa8ce jointe.\r\n")


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def register_sign_in(mock) -> None:
    """The OpenID discovery, the client-credentials token and the inbox id lookup."""
    mock.get(f"{LOGIN}/v2.0/.well-known/openid-configuration",
             body=recorded("openid-configuration.json"), content_type="application/json")
    mock.post(f"{LOGIN}/oauth2/v2.0/token", body=recorded("token.json"),
              content_type="application/json")
    mock.get(f"{MAILBOX}/mailFolders/inbox", body=recorded("inbox-id.json"),
             content_type="application/json")


#: one on-premises contact as the EWS source reads it and Graph stores it (the same fields)
ERIK_CONTACT = {
    "displayName": "Erik Lund", "givenName": "Erik", "surname": "Lund",
    "fileAs": "Lund, Erik", "companyName": "Nordic Seismic Network",
    "department": "Array Operations", "jobTitle": "Station Manager",
    "emailAddresses": [{"address": "erik.lund@example.net", "name": "Erik Lund"},
                       {"address": "elund@seismo.example.net", "name": "Erik Lund"}],
    "businessPhones": ["+47 22 00 12 34"], "mobilePhone": "+47 900 12 345",
    "businessAddress": {"street": "Solveien 12", "city": "Oslo",
                        "countryOrRegion": "Norway", "postalCode": "0150"},
    "birthday": "1979-04-02T00:00:00Z", "categories": ["Partners"],
    "personalNotes": "Met at the Vienna workshop, 2024. Prefers mail in French."}
