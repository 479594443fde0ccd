"""The mail lab (Postfix + rspamd + Dovecot on loopback) for the routes tests: one per session."""

import pytest

from tests.routes.org import tenant_json_kind
from tests.servers.postfix import mail_lab  # noqa: F401 - a fixture, plugged in here
from tests.servers.rspamd import rspamd  # noqa: F401 - a fixture, plugged in here


@pytest.fixture(autouse=True)
def _tenant_json_kind():
    """The file-backed TenantRouting of tests/routes/org.py, registered while a test runs."""
    with tenant_json_kind():
        yield
