"""The mail lab (Postfix + rspamd + Dovecot on loopback) for the routes tests: one per session."""

from tests.servers.postfix import mail_lab  # noqa: F401 - a fixture, plugged in here
from tests.servers.rspamd import rspamd  # noqa: F401 - a fixture, plugged in here
