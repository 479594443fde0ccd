import imaplib

import pytest


@pytest.mark.parametrize("layout, separator, prefix", [("cyrus", ".", "INBOX."),
                                                       ("cyrus_slash", "/", "INBOX/")])
def test_user_logs_in_and_sees_the_layout_the_config_asks_for(request, layout, separator,
                                                              prefix):
    server = request.getfixturevalue(layout)
    user = server.add_user(f"fixture-{layout}")
    imap = imaplib.IMAP4(server.host, server.imap_port)
    imap.login(user, "secret")
    status, [namespace] = imap.namespace()
    assert status == "OK" and namespace.startswith(f'(("{prefix}" "{separator}"))'.encode())
    assert imap.select("INBOX") == ("OK", [b"0"])
    imap.logout()


def test_wrong_password_is_refused(cyrus, cyrus_user):
    imap = imaplib.IMAP4(cyrus.host, cyrus.imap_port)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(cyrus_user, "wrong")
