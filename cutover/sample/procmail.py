"""The functional accounts' procmailrc files, written the way they grew over the years."""

from __future__ import annotations

from cutover.sample.org import VERIFY_DOMAIN, SampleRecipient

HEADER = """\
# {address} -- maintained by the data centre ops team (do not edit without a ticket)
SHELL=/bin/sh
MAILDIR=$HOME/Maildir/
DEFAULT=$MAILDIR
LOGFILE=$HOME/procmail.log
VERBOSE=off

"""

REQUESTS = """\
# bounces and vacation replies never reach the request parser
:0
* ^FROM_MAILER
.bounces/

# IMS2.0 data requests: a copy for the archive, then into the request queue
:0 c
* ^Subject:.*DATA_REQUEST
! request-archive@{verify}

:0
* ^Subject:.*(DATA_REQUEST|WAVEFORM)
* B ?? ^BEGIN IMS2\\.0
.requests/

# requests without the IMS header go to a person
:0
* ^Subject:.*DATA_REQUEST
.malformed/
"""

BULLETINS = """\
:0
* ^FROM_DAEMON
.bounces/

:0
* ^From:.*idc-bulletins@idc\\.example\\.net
{{
  # reviewed event bulletins are kept per type
  :0
  * ^Subject:.*REB
  .bulletins.reb/

  :0
  .bulletins.other/
}}

:0
* > 5000000
.oversize/
"""

IMS = """\
:0
* ^Subject:.*DATA_REQUEST
.requests/

:0
* B ?? ^MSG_TYPE DATA
.data/

:0
* ^TO_ims-data@
* !^Subject:.*test
.inbox-review/
"""

STATIONS = """\
# station status reports: degraded ones raise an alert for the duty officer
:0
* ^Subject:.*STATION STATUS REPORT
* ^Subject:.*DEGRADED
{{
  :0 c
  ! duty-officer@{verify}

  :0
  .alerts/
}}

:0
* ^Subject:.*STATION STATUS REPORT
.status/

:0
* ^Precedence:.*(junk|list)
/dev/null
"""

BODIES = {"requests": REQUESTS, "bulletins": BULLETINS, "ims": IMS, "stations": STATIONS}


def procmailrc_for(recipient: SampleRecipient) -> str:
    body = BODIES[recipient.carries].format(verify=VERIFY_DOMAIN)
    return HEADER.format(address=recipient.address) + body
