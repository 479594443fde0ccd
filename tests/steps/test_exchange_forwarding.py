import json
from pathlib import Path

import pytest
import responses
import yaml

from cutover.errors import AuthenticationFailed, NotFound, UsageError
from cutover.safety import drifted
from cutover.steps.base import Change, Context
from cutover.steps.exchange_forwarding import ExchangeForwarding, ExchangeForwardingParams
from cutover.workspace import Workspace

RECORDED = Path(__file__).parent.parent / "recorded" / "ews-forwarding"
ENDPOINT = "https://mail.example.org/EWS/Exchange.asmx"
ITEM = {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"}
MOVE = {"source": "exchange", "mailbox": "{address}",
        "forward_to": "{local}@verify.example.org", "keep_copy": False}


def workspace_with(tmp_path: Path, config: dict) -> Workspace:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"forwarding": {"exchange": config}}))
    return Workspace(tmp_path)


def context(workspace: Workspace, item=ITEM, **params) -> Context:
    return Context(workspace=workspace, plan_name="phase1", step_id="forward", item=item,
                   params=ExchangeForwardingParams(**(params or MOVE)))


def through_checkpoint(change: Change) -> Change:
    return Change.from_json(json.loads(json.dumps(change.to_json())))


# --- the twin: exchange/forwarding.json ---------------------------------------------------


@pytest.fixture
def twin(tmp_path: Path) -> Workspace:
    workspace = workspace_with(tmp_path, {"kind": "forwarding-file",
                                          "path": "exchange/forwarding.json"})
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange" / "forwarding.json").write_text(json.dumps({
        "bulletin@example.org": {"forwarding_smtp_address": "smtp:editor@example.net",
                                 "deliver_and_forward": True}}))
    return workspace


def forwarding_json(workspace: Workspace) -> dict:
    return json.loads((workspace.root / "exchange" / "forwarding.json").read_text())


def test_twin_preview_apply_verify(twin):
    step = ExchangeForwarding()
    ctx = context(twin)
    changes = step.preview(ctx)
    assert [(c.item, c.action, c.summary) for c in changes] == [(
        "exchange/datarequest@example.org", "create",
        "datarequest@example.org: no forwarding -> forward to datarequest@verify.example.org")]
    step.apply(ctx, changes[0])
    assert forwarding_json(twin)["datarequest@example.org"] == {
        "forwarding_smtp_address": "smtp:datarequest@verify.example.org",
        "deliver_and_forward": False}
    assert step.verify(ctx, changes) == []
    assert step.preview(ctx) == []


def test_twin_second_apply_changes_nothing(twin):
    step = ExchangeForwarding()
    ctx = context(twin)
    change = step.preview(ctx)[0]
    step.apply(ctx, change)
    first = (twin.root / "exchange" / "forwarding.json").read_bytes()
    step.apply(ctx, change)
    assert (twin.root / "exchange" / "forwarding.json").read_bytes() == first


def test_twin_rollback_restores_previous_forwarding_exactly(twin):
    step = ExchangeForwarding()
    item = {"address": "bulletin@example.org", "local": "bulletin", "domain": "example.org"}
    ctx = context(twin, item, **{**MOVE, "keep_copy": False})
    before = forwarding_json(twin)
    change = step.preview(ctx)[0]
    assert change.action == "update"
    step.apply(ctx, change)
    assert forwarding_json(twin) != before
    step.rollback(ctx, through_checkpoint(change))
    assert forwarding_json(twin) == before
    assert step.verify(ctx, [change.inverse()]) == []


def test_twin_remove_then_rollback(twin):
    step = ExchangeForwarding()
    item = {"address": "bulletin@example.org", "local": "bulletin", "domain": "example.org"}
    ctx = context(twin, item, source="exchange", remove=True)
    change = step.preview(ctx)[0]
    assert change.action == "delete"
    step.apply(ctx, change)
    assert "bulletin@example.org" not in forwarding_json(twin)
    step.rollback(ctx, through_checkpoint(change))
    assert forwarding_json(twin)["bulletin@example.org"]["forwarding_smtp_address"] == \
        "smtp:editor@example.net"


def test_the_gate_sees_forwarding_changed_since_preview(twin):
    """The runner's safety gate observes the item before applying it (cutover.safety)."""
    step = ExchangeForwarding()
    ctx = context(twin)
    change = step.preview(ctx)[0]
    path = twin.root / "exchange" / "forwarding.json"
    path.write_text(json.dumps({"datarequest@example.org": {
        "forwarding_smtp_address": "smtp:x@example.net", "deliver_and_forward": True}}))
    reason = drifted(step, ctx, change, [change.before, change.after])
    assert reason is not None and "x@example.net" in reason


def test_forward_or_remove_must_be_given_once():
    with pytest.raises(ValueError, match="either forward_to or remove"):
        ExchangeForwardingParams(source="exchange")
    with pytest.raises(ValueError, match="either forward_to or remove"):
        ExchangeForwardingParams(source="exchange", forward_to="a@b.org", remove=True)


def test_forwarding_to_itself_is_refused(twin):
    with pytest.raises(UsageError, match="forward to itself"):
        ExchangeForwarding().preview(context(twin, source="exchange", forward_to="{address}"))


def test_unknown_source_is_named_with_exit_2(twin):
    with pytest.raises(NotFound) as raised:
        ExchangeForwarding().preview(context(twin, **{**MOVE, "source": "exch"}))
    assert raised.value.exit_code == 2
    assert str(raised.value) == "cutover.yaml has no forwarding.exch (configured: exchange)"


# --- the real connector: an inbox redirect rule over EWS, replayed from recorded SOAP -------


@pytest.fixture
def ews(tmp_path: Path, monkeypatch) -> Workspace:
    monkeypatch.setenv("EXCHANGE_PASSWORD", "not-a-real-password")
    return workspace_with(tmp_path, {
        "kind": "ews-forwarding", "service_endpoint": ENDPOINT, "username": "EXAMPLE\\svc-cutover",
        "password": "env/EXCHANGE_PASSWORD", "auth_type": "basic"})


class Conversation:
    """Replays recorded EWS answers in order, checking each request's operation."""

    def __init__(self, mock: responses.RequestsMock, exchanges: list[tuple[str, str]]):
        self.expected = list(exchanges)
        self.requests: list[str] = []
        mock.add_callback(responses.POST, ENDPOINT, callback=self.answer)

    def answer(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        self.requests.append(body)
        operation, recording = self.expected.pop(0)
        assert f"<m:{operation}>" in body, f"expected {operation}, got {body[:400]}"
        return 200, {"Content-Type": "text/xml; charset=utf-8"}, (RECORDED / recording).read_text()


def replay(exchanges: list[tuple[str, str]]):
    mock = responses.RequestsMock(assert_all_requests_are_fired=True)
    return mock, Conversation(mock, exchanges)


def test_ews_preview_reads_inbox_rules_and_ignores_other_rules(ews):
    mock, conversation = replay([("GetInboxRules", "GetInboxRules-none.xml")])
    with mock:
        changes = ExchangeForwarding().preview(context(ews))
    assert [(c.action, c.before["forwarding"], c.after["forwarding"]) for c in changes] == [
        ("create", None, {"forward_to": "datarequest@verify.example.org", "keep_copy": False})]
    assert "<m:MailboxSmtpAddress>datarequest@example.org</m:MailboxSmtpAddress>" in \
        conversation.requests[0]
    assert "not-a-real-password" not in json.dumps([c.to_json() for c in changes])


def test_ews_apply_creates_a_redirect_rule_then_verify_reads_it(ews):
    step = ExchangeForwarding()
    ctx = context(ews)
    mock, conversation = replay([
        ("GetInboxRules", "GetInboxRules-none.xml"),          # preview
        ("GetInboxRules", "GetInboxRules-none.xml"),          # apply: still as previewed
        ("GetInboxRules", "GetInboxRules-none.xml"),          # is there a rule of ours?
        ("UpdateInboxRules", "UpdateInboxRules-success.xml"),  # no: create it
        ("GetInboxRules", "GetInboxRules-redirect.xml"),      # exchangelib learns its RuleId
        ("GetInboxRules", "GetInboxRules-redirect.xml"),      # verify
    ])
    with mock:
        changes = step.preview(ctx)
        step.apply(ctx, changes[0])
        assert step.verify(ctx, changes) == []
    create = conversation.requests[3]
    assert "<t:CreateRuleOperation>" in create
    assert "<t:DisplayName>cutover forwarding</t:DisplayName>" in create
    assert "<t:RedirectToRecipients><t:Address><t:EmailAddress>datarequest@verify.example.org" \
        in create
    # keep_copy: false; exchangelib writes the xs:boolean as 1
    assert "<t:Delete>1</t:Delete>" in create or "<t:Delete>true</t:Delete>" in create


def test_ews_rollback_deletes_the_rule_it_created(ews):
    step = ExchangeForwarding()
    ctx = context(ews)
    created = Change("exchange/datarequest@example.org", "create",
                     {"source": "exchange", "mailbox": "datarequest@example.org",
                      "forwarding": None},
                     {"source": "exchange", "mailbox": "datarequest@example.org",
                      "forwarding": {"forward_to": "datarequest@verify.example.org",
                                     "keep_copy": False}})
    mock, conversation = replay([
        ("GetInboxRules", "GetInboxRules-redirect.xml"),       # rollback: what is there now
        ("GetInboxRules", "GetInboxRules-redirect.xml"),       # find our rule's id
        ("UpdateInboxRules", "UpdateInboxRules-success.xml"),  # delete it
        ("GetInboxRules", "GetInboxRules-none.xml"),           # verify the restore
    ])
    with mock:
        step.rollback(ctx, through_checkpoint(created))
        assert step.verify(ctx, [created.inverse()]) == []
    delete = conversation.requests[2]
    assert "<t:DeleteRuleOperation><t:RuleId>AQAAAAAAAM4=</t:RuleId>" in delete
    assert "AQAAAAAAAMU=" not in delete  # the Newsletters rule is not touched


def test_ews_verify_reports_a_missing_rule(ews):
    step = ExchangeForwarding()
    ctx = context(ews)
    mock, _ = replay([("GetInboxRules", "GetInboxRules-none.xml")])
    change = Change("exchange/datarequest@example.org", "create",
                    {"source": "exchange", "mailbox": "datarequest@example.org",
                     "forwarding": None},
                    {"source": "exchange", "mailbox": "datarequest@example.org",
                     "forwarding": {"forward_to": "datarequest@verify.example.org",
                                    "keep_copy": False}})
    with mock:
        findings = step.verify(ctx, [change])
    assert [f.problem for f in findings] == [
        "Exchange shows no forwarding, expected forward to datarequest@verify.example.org"]


def test_ews_unknown_mailbox_is_a_one_line_not_found(ews):
    mock, _ = replay([("GetInboxRules", "GetInboxRules-ErrorNonExistentMailbox.xml")])
    with mock, pytest.raises(NotFound) as raised:
        ExchangeForwarding().preview(context(ews))
    assert str(raised.value) == "Exchange has no mailbox datarequest@example.org"
    assert raised.value.exit_code == 2


def test_ews_refused_credentials_are_one_line_exit_2(ews):
    mock = responses.RequestsMock()
    mock.add(responses.POST, ENDPOINT, status=401, headers={"WWW-Authenticate": "Basic"})
    with mock, pytest.raises(AuthenticationFailed) as raised:
        ExchangeForwarding().preview(context(ews))
    assert raised.value.exit_code == 2
    assert "not-a-real-password" not in str(raised.value)
