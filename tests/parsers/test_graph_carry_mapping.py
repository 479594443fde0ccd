"""EWS inbox rules as Graph messageRules, and contacts matched across the two sides (pure)."""

from __future__ import annotations

import pytest

from cutover.parsers import graph_carry as gc

FOLDERS = {"Reports": "AAMkAD-reports", "deleteditems": "AAMkAD-deleted"}


def rule(conditions=None, actions=None, exceptions=None, **extra) -> dict:
    return {"kind": "inbox-rule", "name": "r", "enabled": True, "priority": 4,
            "conditions": conditions or {}, "exceptions": exceptions or {},
            "actions": actions or {"MarkAsRead": True}, **extra}


@pytest.mark.parametrize(("ews", "graph"), [
    ({"ContainsSubjectStrings": ["Bulletin"]}, {"subjectContains": ["Bulletin"]}),
    ({"ContainsSubjectOrBodyStrings": ["seismic"]}, {"bodyOrSubjectContains": ["seismic"]}),
    ({"ContainsSenderStrings": ["noreply"]}, {"senderContains": ["noreply"]}),
    ({"ContainsRecipientStrings": ["ops"]}, {"recipientContains": ["ops"]}),
    ({"ContainsHeaderStrings": ["X-IMS"]}, {"headerContains": ["X-IMS"]}),
    ({"FromAddresses": [{"address": "A@ims.example.net"}]},
     {"fromAddresses": [{"emailAddress": {"address": "a@ims.example.net"}}]}),
    ({"SentToAddresses": [{"address": "list@example.org", "name": "List"}]},
     {"sentToAddresses": [{"emailAddress": {"address": "list@example.org", "name": "List"}}]}),
    ({"IsNDR": True}, {"isNonDeliveryReport": True}),
    ({"Importance": "High"}, {"importance": "high"}),
    ({"Sensitivity": "Confidential"}, {"sensitivity": "confidential"}),
    ({"FlaggedForAction": "FollowUp"}, {"messageActionFlag": "followUp"}),
    ({"WithinSizeRange": {"MinimumSize": 1024, "MaximumSize": 4096}},
     {"withinSizeRange": {"minimumSize": 1024, "maximumSize": 4096}}),
    ({"SentOnlyToMe": True, "HasAttachments": True},
     {"sentOnlyToMe": True, "hasAttachments": True}),
])
def test_conditions_with_a_graph_predicate_map(ews, graph):
    body, why = gc.message_rule(rule(conditions=ews, exceptions=ews), FOLDERS.get)

    assert why == []
    assert body["conditions"] == graph and body["exceptions"] == graph


@pytest.mark.parametrize(("ews", "graph"), [
    ({"MoveToFolder": "Reports"}, {"moveToFolder": "AAMkAD-reports"}),
    ({"CopyToFolder": "deleteditems"}, {"copyToFolder": "AAMkAD-deleted"}),
    ({"ForwardToRecipients": [{"address": "x@example.net"}]},
     {"forwardTo": [{"emailAddress": {"address": "x@example.net"}}]}),
    ({"ForwardAsAttachmentToRecipients": [{"address": "x@example.net"}]},
     {"forwardAsAttachmentTo": [{"emailAddress": {"address": "x@example.net"}}]}),
    ({"RedirectToRecipients": [{"address": "x@example.net"}]},
     {"redirectTo": [{"emailAddress": {"address": "x@example.net"}}]}),
    ({"Delete": True, "StopProcessingRules": True}, {"delete": True, "stopProcessingRules": True}),
    ({"PermanentDelete": True}, {"permanentDelete": True}),
    ({"AssignCategories": ["Red"], "MarkImportance": "Low"},
     {"assignCategories": ["Red"], "markImportance": "low"}),
])
def test_actions_with_a_graph_equivalent_map(ews, graph):
    body, why = gc.message_rule(rule(actions=ews), FOLDERS.get)

    assert why == [] and body["actions"] == graph
    assert (body["displayName"], body["sequence"], body["isEnabled"]) == ("r", 4, True)


@pytest.mark.parametrize(("given", "reason"), [
    (rule(conditions={"WithinDateRange": {"StartDateTime": "2026-12-20T00:00:00+00:00"}}),
     "condition WithinDateRange: a date range"),
    (rule(exceptions={"ItemClasses": ["IPM.Note.Custom"]}), "exception ItemClasses"),
    (rule(conditions={"MessageClassifications": ["x"]}), "condition MessageClassifications"),
    (rule(conditions={"FromConnectedAccounts": ["gmail"]}), "connected account"),
    (rule(conditions={"FlaggedForAction": "Whatever"}), "flag 'Whatever' has no Graph value"),
    (rule(actions={"ServerReplyWithMessage": True}), "action ServerReplyWithMessage"),
    (rule(actions={"SendSMSAlertToRecipients": [{"address": "x"}]}), "SMS"),
    (rule(actions={"MoveToFolder": "Gone"}), "folder 'Gone' is not in the cloud mailbox"),
    (rule(actions={"StopProcessingRules": False}), "no action"),
    ({"kind": "sieve", "path": "sieve/x.sieve"}, "a sieve rule, not an Exchange inbox rule"),
    ({"kind": "inbox-rule", "name": "old", "forward_to": []}, "collect the inventory again"),
])
def test_rules_that_do_not_map_are_not_carried_and_say_why(given, reason):
    body, why = gc.message_rule(given, FOLDERS.get)

    assert body is None
    assert any(reason in line for line in why), why


def test_a_rule_missing_one_part_is_not_carried_at_all():
    """Dropping a condition would widen the rule: a delete rule would delete more mail."""
    body, why = gc.message_rule(rule(conditions={"ContainsSubjectStrings": ["spam"],
                                                 "WithinDateRange": {}},
                                     actions={"Delete": True}), FOLDERS.get)

    assert body is None and len(why) == 1


def test_exchange_online_normalisation_compares_equal():
    sent = {"displayName": "From partner", "sequence": 2, "isEnabled": True,
            "conditions": {"senderContains": ["adele"]},
            "actions": {"forwardTo": [{"emailAddress": {"name": "Alex Wilbur",
                                                        "address": "AlexW@contoso.com"}}],
                        "stopProcessingRules": True}}
    answered = {"id": "AQAAAJ5dZqA=", "displayName": "From partner", "sequence": 2,
                "isEnabled": True, "hasError": False, "isReadOnly": False,
                "conditions": {"senderContains": ["ADELE"]},
                "actions": {"stopProcessingRules": True, "forwardTo": [
                    {"emailAddress": {"name": "Alex Wilbur", "address": "AlexW@contoso.com"}}]}}

    assert gc.comparable_rule(sent) == gc.comparable_rule(answered)
    assert gc.comparable_rule(sent) != gc.comparable_rule({**answered, "isEnabled": False})


@pytest.mark.parametrize(("one", "other", "same"), [
    ({"emailAddresses": [{"address": "A@x.org"}]},
     {"displayName": "other", "emailAddresses": [{"address": "b@x.org"}, {"address": "a@X.org"}]},
     True),
    ({"emailAddresses": [{"address": "a@x.org"}]}, {"emailAddresses": [{"address": "b@x.org"}]},
     False),
    ({"displayName": "Front desk"}, {"displayName": "front desk "}, True),
    ({"displayName": "Front desk"}, {"displayName": "Front desk",
                                     "emailAddresses": [{"address": "desk@x.org"}]}, False),
    ({"displayName": ""}, {"displayName": ""}, False),
])
def test_contacts_are_the_same_person_by_address_else_by_name(one, other, same):
    assert gc.same_person(one, other) is same


def test_a_created_contact_reads_back_as_sent_despite_exchange_defaults():
    sent = gc.contact_body({"displayName": "Erik Lund", "birthday": "1979-04-02T00:00:00Z",
                            "emailAddresses": [{"address": "Erik@x.org"}], "homePhones": []})
    found = {"id": "AAMkAD1", "displayName": "Erik Lund", "fileAs": "",
             "birthday": "1979-04-02T11:59:00Z", "homePhones": [],
             "emailAddresses": [{"address": "erik@x.org", "name": "erik@x.org"}]}

    assert sent == {"displayName": "Erik Lund", "birthday": "1979-04-02T00:00:00Z",
                    "emailAddresses": [{"address": "erik@x.org"}]}
    assert gc.same_contact(sent, found)
    assert not gc.same_contact(sent, {**found, "displayName": "E. Lund"})
