"""The user directory: Graph's /users (recorded) and its JSON file twin."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml

from cutover.connectors.m365.directory import GraphDirectory, UserDirectoryFile, has_mailbox
from cutover.errors import AuthenticationFailed, NotFound, UsageError
from cutover.workspace import Workspace

RECORDED = Path(__file__).parent.parent / "recorded" / "graph"
TENANT = "0f3c7a52-6d2e-4b7e-9d7a-2a4c1e9b8f10"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
GRAPH = "https://graph.microsoft.com/v1.0"
SECRET = "Qx8~recorded.Secret-Value_DoNotLeak"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"directory": {
        "m365": {"kind": "graph-directory", "tenant_id": TENANT,
                 "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
                 "client_secret": "env/CUTOVER_GRAPH_SECRET"},
        "demo": {"kind": "directory-file", "path": "directory/users.json"}}}))
    return Workspace(tmp_path)


@pytest.fixture
def graph():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{LOGIN}/v2.0/.well-known/openid-configuration",
                 body=recorded("openid-configuration.json"))
        mock.post(f"{LOGIN}/oauth2/v2.0/token", body=recorded("token.json"))
        mock.get(f"{GRAPH}/users", body=recorded("users-page1.json"),
                 match=[lambda r: ("skiptoken" not in r.url, "first page")])
        mock.get(f"{GRAPH}/users", body=recorded("users-page2.json"),
                 match=[lambda r: ("skiptoken" in r.url, "second page")])
        yield mock


def test_graph_directory_reads_every_page_once_and_matches_any_smtp_address(graph, workspace):
    directory = workspace.connector("directory", "m365")

    anna = directory.find("A.Berg@example.org")
    erik = directory.find("erik.lund@exampleorg.onmicrosoft.com")

    assert isinstance(directory, GraphDirectory)
    assert anna.user_principal_name == "anna.berg@example.org" and has_mailbox(anna)
    assert erik.user_principal_name == "erik.lund@example.org"
    assert directory.find("nobody@example.org") is None
    user_calls = [c for c in graph.calls if "/v1.0/users" in c.request.url]
    assert len(user_calls) == 2  # two pages, read once
    query = parse_qs(urlsplit(user_calls[0].request.url).query)
    assert query["$select"] == ["id,mail,userPrincipalName,proxyAddresses,accountEnabled"]


def test_users_without_mail_or_disabled_have_no_mailbox(graph, workspace):
    directory = workspace.connector("directory", "m365")

    assert not has_mailbox(directory.find("svc-scanner@exampleorg.onmicrosoft.com"))
    assert not has_mailbox(directory.find("jonas.keller@example.org"))
    assert len(directory.users()) == 4


def test_graph_directory_without_permission_says_what_to_grant(graph, workspace):
    graph.replace(responses.GET, f"{GRAPH}/users", status=403, json={"error": {
        "code": "Authorization_RequestDenied",
        "message": "Insufficient privileges to complete the operation."}})

    with pytest.raises(AuthenticationFailed, match="Authorization_RequestDenied.*User.Read.All"):
        workspace.connector("directory", "m365").find("anna.berg@example.org")


def test_file_twin_reads_a_saved_users_response_or_a_plain_list(workspace):
    path = workspace.path("directory/users.json")
    path.parent.mkdir()
    path.write_text(recorded("users-page1.json"))
    directory = workspace.connector("directory", "demo")

    assert isinstance(directory, UserDirectoryFile)
    assert has_mailbox(directory.find("anna.berg@example.org"))
    path.write_text(json.dumps([{"userPrincipalName": "erik.lund@example.org",
                                 "mail": "erik.lund@example.org"}]))
    assert directory.find("anna.berg@example.org") is None  # edits show at once
    assert has_mailbox(directory.find("erik.lund@example.org"))


def test_file_twin_reports_missing_and_malformed_files(workspace):
    directory = workspace.connector("directory", "demo")
    with pytest.raises(NotFound, match="users.json"):
        directory.find("anna.berg@example.org")

    path = workspace.path("directory/users.json")
    path.parent.mkdir()
    path.write_text('[{"mail": "no-upn@example.org"}]')
    with pytest.raises(UsageError, match="userPrincipalName"):
        directory.find("anna.berg@example.org")
