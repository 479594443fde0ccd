"""The on-premises Exchange Management Shell (Exchange 2013/2016/2019), through pwsh.

    management:
      onprem:
        kind: exchange-shell
        connection_uri: http://mail.example.org/PowerShell/   # the server's remote PowerShell
        username: EXAMPLE\\svc-cutover
        password: env/EXCHANGE_PASSWORD          # a reference, never the password
        authentication: Kerberos                 # Kerberos | Negotiate | Basic (HTTPS only)
        # mode: render                           # write scripts for the operator instead
        # render_dir: runbooks/powershell/onprem
      # onprem: {kind: exchange-file, path: exchange/management/, mailstore: exchange}  # twin

It opens the remote session once per run (`New-PSSession -ConfigurationName
Microsoft.Exchange ... ; Import-PSSession`), the password handed to pwsh in its environment
only, and reads what a hybrid move needs from the source side: the mailboxes
(Get-Mailbox: ExchangeGuid, LegacyExchangeDN, EmailAddresses, Database), their folders
(Get-MailboxFolderStatistics, with -IncludeAnalysis for the largest items) and, once a move has
completed, the RemoteMailbox each one became (Get-RemoteMailbox: RemoteRoutingAddress).
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.cmdlet_management import CmdletManagement
from cutover.connectors.pwsh import SWITCH, Cmdlet, Raw, session_from_config
from cutover.errors import ConfigInvalid
from cutover.parsers import exchange_objects as xo

PASSWORD_VARIABLE = "CUTOVER_EXCHANGE_SHELL_PASSWORD"
AUTHENTICATIONS = ("Kerberos", "Negotiate", "Basic", "Default")


def connect_cmdlets(uri: str, username: str, authentication: str) -> list[Cmdlet]:
    credential = Raw("(New-Object System.Management.Automation.PSCredential("
                     f"'{username.replace(chr(39), chr(39) * 2)}', (ConvertTo-SecureString "
                     f"-String $env:{PASSWORD_VARIABLE} -AsPlainText -Force)))")
    session = Cmdlet.of("New-PSSession", {"ConfigurationName": "Microsoft.Exchange",
                                          "ConnectionUri": uri,
                                          "Authentication": authentication,
                                          "Credential": credential}, reads=False)
    # the session object goes to a global variable so the import (and later cmdlets) find it
    assign = Raw(f"($global:CutoverExchange = {session.text()})")
    return [Cmdlet.of("Import-PSSession", {"Session": assign, "DisableNameChecking": SWITCH,
                                           "AllowClobber": SWITCH}, subject=uri, reads=False,
                      pipe=(Cmdlet.of("Out-Null"),))]


@connector("exchange-shell", role="exchange-management")
class ExchangeShell(CmdletManagement):
    """The Exchange Management Shell's remote PowerShell endpoint."""

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ExchangeShell:
        missing = [key for key in ("connection_uri", "username", "password") if
                   not config.get(key)]
        if missing:
            raise ConfigInvalid(f"cutover.yaml: management (exchange-shell) needs "
                                f"{', '.join(missing)}")
        authentication = str(config.get("authentication", "Kerberos"))
        if authentication not in AUTHENTICATIONS:
            raise ConfigInvalid(f"cutover.yaml: management (exchange-shell): authentication "
                                f"must be one of {', '.join(AUTHENTICATIONS)}")
        uri = str(config["connection_uri"])
        live = config.get("mode", "live") == "live"
        # rendered scripts run in the Exchange Management Shell itself: already connected
        connect = connect_cmdlets(uri, str(config["username"]), authentication) if live else []
        secrets = {PASSWORD_VARIABLE: workspace.secret(config["password"])} if live else {}
        session = session_from_config(config, workspace, connect, secrets, "onprem")
        return cls(session, f"Exchange Management Shell at {uri}")

    def remote_mailbox(self, identity: str) -> xo.Recipient | None:
        found = self.find("Get-RemoteMailbox", {"Identity": identity})
        return xo.parse_recipient(found[0]) if found else None
