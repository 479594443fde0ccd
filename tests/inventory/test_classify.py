from datetime import datetime

import pytest

from cutover.errors import ConfigInvalid
from cutover.inventory.classify import DEFAULT_RULES, Classifier


def recipient(address, type_="user", **extra):
    local, _, domain = address.partition("@")
    return {"address": address, "local": local, "domain": domain, "type": type_,
            "aliases": [], "forwarding": [], "rules": [], **extra}


PROCMAIL = [{"kind": "procmail", "path": "procmail/ops@example.org/.procmailrc"}]
AUTOMATED = {"sampled": 40, "automated_share": 0.95, "subject_share": 0.1, "subjects": []}
SUBJECTS = {"sampled": 10, "automated_share": 0.2, "subject_share": 0.8,
            "subjects": ["DATA_REQUEST 123"] * 8 + ["hello"] * 2}


@pytest.mark.parametrize("item, klass, destination, rule, because", [
    (recipient("datarequest@example.org", "shared"), "verification", "linux",
     "verification-functional-address", "local 'datarequest' matches 'datarequest'"),
    (recipient("reb-distribution@example.org", "group"), "verification", "linux",
     "verification-functional-address", "matches 'reb-*'"),
    (recipient("bulletin@example.org"), "verification", "linux",
     "verification-functional-address", "matches 'bulletin*'"),
    (recipient("station-aks01@example.org"), "verification", "linux",
     "verification-functional-address", "matches 'station-*'"),
    (recipient("ims-gateway@example.org"), "verification", "linux",
     "verification-functional-address", "matches 'ims-*'"),
    (recipient("ops@example.org", rules=PROCMAIL), "verification", "linux",
     "verification-procmail", "procmail rules in procmail/ops@example.org/.procmailrc"),
    (recipient("feeds@example.org", "shared", traits=AUTOMATED), "verification", "linux",
     "verification-automated-traffic", "95% of 40 sampled messages from automated senders"),
    (recipient("desk@example.org", "shared", traits=SUBJECTS), "verification", "linux",
     "verification-subjects", "80% of 10 sampled subjects match"),
    (recipient("alice@example.org"), "people", "cloud", "people-user-mailbox", "type is user"),
    (recipient("helpdesk@example.org", "shared"), "shared", "cloud", "shared-mailbox",
     "type is shared"),
    (recipient("room-1@example.org", "room"), "resource", "cloud", "resource-mailbox",
     "type is room"),
    (recipient("projector@example.org", "equipment"), "resource", "cloud", "resource-mailbox",
     "type is equipment"),
    (recipient("noreply@example.org"), "service", "keep", "service-address",
     "local 'noreply' matches 'noreply'"),
    (recipient("scanner-2f@example.org"), "service", "keep", "service-address", "scanner*"),
    (recipient("discoverysearchmailbox@example.org", "discovery"), "service", "keep",
     "system-mailbox", "type is discovery"),
    (recipient("partner@elsewhere.net", "contact"), "service", "cloud", "contact-or-mail-user",
     "type is contact"),
])
def test_default_rules_classify_the_sample_organisation_with_reasons(
        item, klass, destination, rule, because):
    result = Classifier.from_config(None).classify(item)
    assert (result["class"], result["destination"], result["rule"]) == (klass, destination, rule)
    assert because in result["reason"]
    assert result["reason"].startswith(f"rule {rule}: ")


def test_unknown_type_is_unknown_and_kept_with_a_reason():
    result = Classifier.from_config(None).classify(recipient("x@example.org", "other"))
    assert (result["class"], result["destination"], result["rule"]) == ("unknown", "keep", None)
    assert result["reason"].startswith("no rule matched (type other)")


def test_override_beats_every_rule_and_says_so():
    classifier = Classifier.from_config({"overrides": {
        "DataRequest@example.org": {"class": "people", "reason": "a person now"},
        "old@example.org": "service"}})
    result = classifier.classify(recipient("datarequest@example.org", "shared"))
    assert (result["class"], result["destination"], result["rule"]) == ("people", "cloud",
                                                                        "override")
    assert result["reason"] == ("override for datarequest@example.org in cutover.yaml: "
                                "a person now")
    assert classifier.classify(recipient("old@example.org"))["class"] == "service"


def test_own_rules_come_before_the_defaults_and_can_set_destination():
    classifier = Classifier.from_config({"rules": [
        {"name": "lab", "class": "verification", "destination": "linux",
         "match": {"local": "lab-*", "domain": "example.org"}}],
        "destinations": {"service": "retire"}})
    result = classifier.classify(recipient("lab-7@example.org"))
    assert result["rule"] == "lab"
    assert result["reason"] == ("rule lab: local 'lab-7' matches 'lab-*'; "
                                "domain 'example.org' matches 'example.org'")
    assert classifier.classify(recipient("noreply@example.org"))["destination"] == "retire"


def test_default_rules_can_be_turned_off():
    classifier = Classifier.from_config({"default_rules": False})
    assert classifier.classify(recipient("alice@example.org"))["class"] == "unknown"


def test_trait_rule_without_sample_does_not_match():
    classifier = Classifier.from_config({"default_rules": False, "rules": [
        {"class": "verification", "match": {"automated_share_at_least": 0.9}}]})
    assert classifier.classify(recipient("a@example.org"))["class"] == "unknown"


def test_custom_subject_patterns_are_used():
    classifier = Classifier.from_config({"default_rules": False, "rules": [
        {"name": "gse", "class": "verification",
         "match": {"subject_patterns": ["^BEGIN GSE"], "subject_share_at_least": 0.5}}]})
    traits = {"sampled": 2, "subjects": ["BEGIN GSE2.0", "hi"]}
    result = classifier.classify(recipient("a@example.org", traits=traits))
    assert result["reason"] == "rule gse: 50% of 2 sampled subjects match ^BEGIN GSE"


def test_idle_rule_retires_old_service_accounts():
    classifier = Classifier.from_config({"rules": [
        {"name": "idle-service", "class": "service", "destination": "retire",
         "match": {"local": ["scanner*"], "idle_days_at_least": 365}}]},
        now=datetime(2026, 11, 26))
    old = recipient("scanner-1@example.org", last_logon="2024-01-02T00:00:00")
    recent = recipient("scanner-2@example.org", last_logon="2026-11-01T00:00:00")
    assert classifier.classify(old)["destination"] == "retire"
    assert "no activity for 1059 days" in classifier.classify(old)["reason"]
    assert classifier.classify(recent)["destination"] == "keep"


@pytest.mark.parametrize("config, message", [
    ({"rules": [{"match": {}}]}, "rules[0]: needs a class"),
    ({"rules": [{"class": "vip"}]}, "rules[0].class: 'vip' is not one of"),
    ({"rules": [{"class": "people", "match": {"colour": "red"}}]},
     "unknown condition(s) colour"),
    ({"overrides": {"a@x.org": {"class": "people", "destination": "moon"}}},
     "overrides.a@x.org.destination: 'moon'"),
    ({"destinations": {"people": "mars"}}, "destinations.people: 'mars'"),
])
def test_bad_classification_config_is_named(config, message):
    with pytest.raises(ConfigInvalid, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)")):
        Classifier.from_config(config)


def test_default_rules_all_have_names_and_reasons():
    assert all(rule["name"] and rule["why"] for rule in DEFAULT_RULES)
