import imaplib

import pytest
from sievelib.managesieve import Client


def test_new_user_logs_in_over_imap_and_receives_over_lmtp(dovecot, dovecot_user):
    dovecot.deliver(dovecot_user, b"Subject: hello\r\n\r\nbody\r\n")
    imap = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    imap.login(dovecot_user, "secret")
    status, data = imap.select("INBOX")
    assert status == "OK" and data == [b"1"]
    imap.logout()


def test_managesieve_script_files_mail_on_lmtp_delivery(dovecot, dovecot_user):
    client = Client(dovecot.host, dovecot.managesieve_port)
    with pytest.warns(UserWarning, match="unencrypted"):  # loopback lab: plain on purpose
        assert client.connect(dovecot_user, "secret", authmech="PLAIN")
    script = 'require ["fileinto", "mailbox"];\nfileinto :create "Reports";\n'
    assert client.putscript("main", script)
    assert client.setactive("main")
    client.logout()
    dovecot.deliver(dovecot_user, b"Subject: report\r\n\r\nbody\r\n")
    cur_new = list((dovecot.maildir(dovecot_user) / "Reports" / "new").iterdir())
    assert len(cur_new) == 1
