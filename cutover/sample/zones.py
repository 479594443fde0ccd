"""Zone files and Postfix maps of the sample organisation, as they stand before phase 1."""

from __future__ import annotations

from cutover.sample.org import OLD_DOMAIN, VERIFY_DOMAIN

DKIM_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAj9xPv9ekTLCxyqn9leleHgCdB3Mt0DXz1Hmk"
    "M+fvyVUdOuX0fbHpEP6Szk0cxo8y7QSO34eTdw4j4PayphrvjvIz3xUG8kdlNxImIvgMailSWhFjlD3z"
    "C9oRoHyXw4p0YOqjHwc8Cc+K5pTYlYiwHhYuqZevqqERRfe/tkKTtiGxSVerjd4tYH0I3OgV4njAn0L6"
    "XzaDE2SAPNSTq068hAA/uKwkhagQlApeVv0C8au5U0Q21eqtF5rWTnr5TKOLxRpLozsUjtRxQli1nehT"
    "DOr65CFndLU0jXTBD5VR8h2EcWFKE/90RkGfdUZqnKSdI3HFKl4lq448DxVqv9ck8QIDAQAB"
)


def _dkim_txt() -> str:
    value = f"v=DKIM1; k=rsa; p={DKIM_KEY}"
    chunks = [value[i:i + 200] for i in range(0, len(value), 200)]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def old_zone() -> str:
    return f"""\
; {OLD_DOMAIN}: served by the on-premises name servers; mail to the Exchange front end
$ORIGIN {OLD_DOMAIN}.
$TTL 3600
@           IN SOA  ns1.{OLD_DOMAIN}. hostmaster.{OLD_DOMAIN}. (
                    2026110101 ; serial
                    7200       ; refresh
                    3600       ; retry
                    1209600    ; expire
                    3600 )     ; negative caching
@           IN NS   ns1.{OLD_DOMAIN}.
@           IN NS   ns2.{OLD_DOMAIN}.
@      3600 IN MX   10 mail.{OLD_DOMAIN}.
@      3600 IN MX   20 mail2.{OLD_DOMAIN}.
@      3600 IN TXT  "v=spf1 mx ip4:192.0.2.0/24 -all"
_dmarc      IN TXT  "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{OLD_DOMAIN}; adkim=r"
sel2024._domainkey IN TXT {_dkim_txt()}
autodiscover 3600 IN CNAME mail.{OLD_DOMAIN}.
ns1         IN A    192.0.2.1
ns2         IN A    192.0.2.2
mail        IN A    192.0.2.10
mail2       IN A    192.0.2.11
www         IN A    192.0.2.80
"""


def verify_zone() -> str:
    return f"""\
; {VERIFY_DOMAIN}: the new domain for verification data (Postfix + Dovecot on Linux)
$ORIGIN {VERIFY_DOMAIN}.
$TTL 3600
@           IN SOA  ns1.{OLD_DOMAIN}. hostmaster.{OLD_DOMAIN}. (
                    2026110101 7200 3600 1209600 3600 )
@           IN NS   ns1.{OLD_DOMAIN}.
@           IN NS   ns2.{OLD_DOMAIN}.
mx          IN A    192.0.2.40
filter      IN A    192.0.2.41
imap        IN A    192.0.2.40
"""


POSTFIX_MAPS = {
    "virtual": f"""\
# virtual alias map of the Linux mail host ({VERIFY_DOMAIN})
# old address                      new address
postmaster@{VERIFY_DOMAIN}          root@localhost
# targets of the functional accounts' rules: people's shared mailboxes
duty-officer@{VERIFY_DOMAIN}        duty-officer@{OLD_DOMAIN}
request-archive@{VERIFY_DOMAIN}     records-office@{OLD_DOMAIN}
""",
    "transport": f"""\
# transport map of the Linux mail host
# domain                            next hop
{OLD_DOMAIN}                         smtp:[mail.{OLD_DOMAIN}]:25
""",
    "relay_domains": f"""\
# domains the Linux mail host relays for
{OLD_DOMAIN}                         OK
""",
    "virtual_mailbox_domains": "# domains whose mailboxes live on this host\n",
    "virtual_mailbox_maps": "# address -> Maildir path, written by linux.account\n",
}
