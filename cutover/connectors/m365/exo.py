"""Exchange Online PowerShell (the ExchangeOnlineManagement module), app-only, through pwsh.

    management:
      tenant:
        kind: exo
        app_id: 6731de76-14a6-49ae-97bc-6eba6914391e     # the Entra app (Exchange.ManageAsApp)
        organization: exampleorg.onmicrosoft.com
        certificate_file: credentials/cutover-exo.pfx     # or certificate_thumbprint: ...
        certificate_password: env/CUTOVER_EXO_PFX_PASSWORD   # a reference; omit if none
        # onprem_credential: {username: EXAMPLE\\svc-mrs, password: env/MRS_PASSWORD}
        #                  # for the offboarding move back (New-MoveRequest -RemoteCredential)
        # mode: render                                     # write scripts instead of running
      # tenant: {kind: exo-file, path: tenant/, onprem: onprem, mailstore: cloud}  # the twin

One `Connect-ExchangeOnline -AppId -CertificateFilePath|-CertificateThumbprint -Organization
-ShowBanner:$false` per run; the certificate is named by path or thumbprint, its password (and
the on-premises MRS credential) reach pwsh through its environment only.

Cmdlets: Get-MailUser, Get-Mailbox, Get-MailboxFolderStatistics, Get-Recipient,
Get-AcceptedDomain, Set-AcceptedDomain, Get-/New-/Set-/Remove-OutboundConnector and
-InboundConnector, Get-/New-/Set-/Remove-MailContact, Get-HostedOutboundSpamFilterPolicy,
Test-MigrationServerAvailability -Endpoint, Get-/New-/Set-/Start-/Stop-/Complete-/Remove-
MigrationBatch, Get-MigrationUser | Get-MigrationUserStatistics, and for the move back
New-MoveRequest -Outbound, Get-MoveRequest | Get-MoveRequestStatistics, Remove-MoveRequest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.cmdlet_management import CmdletManagement
from cutover.connectors.exchange_management import migration_csv
from cutover.connectors.pwsh import SWITCH, Cmdlet, Data, Raw, session_from_config
from cutover.connectors.tenant_model import (
    AcceptedDomain,
    MailConnector,
    TenantRecipient,
)
from cutover.errors import ConfigInvalid
from cutover.parsers import exchange_objects as xo

CERT_PASSWORD_VARIABLE = "CUTOVER_EXO_CERT_PASSWORD"
MRS_PASSWORD_VARIABLE = "CUTOVER_EXO_MRS_PASSWORD"
REFERENCE_PREFIXES = ("env/", "file/")


def connect_cmdlet(config: dict[str, Any]) -> Cmdlet:
    params: dict[str, Any] = {"AppId": str(config["app_id"])}
    if config.get("certificate_file"):
        params["CertificateFilePath"] = str(config["certificate_file"])
        if config.get("certificate_password"):
            params["CertificatePassword"] = Raw(
                f"(ConvertTo-SecureString -String $env:{CERT_PASSWORD_VARIABLE} -AsPlainText "
                "-Force)")
    else:
        params["CertificateThumbprint"] = str(config["certificate_thumbprint"])
    params["Organization"] = str(config["organization"])
    params["ShowBanner"] = False
    return Cmdlet.of("Connect-ExchangeOnline", params, subject=str(config["organization"]),
                     reads=False)


def _reference(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.startswith(REFERENCE_PREFIXES):
        raise ConfigInvalid(f"cutover.yaml: management (exo): {key} must be a reference "
                            "(env/NAME or file/PATH), not the secret itself")
    return value


@connector("exo", role="exchange-management")
class ExchangeOnline(CmdletManagement):
    """Exchange Online through the ExchangeOnlineManagement module (app-only sign-in)."""

    def __init__(self, session: Any, description: str, mrs_username: str = ""):
        super().__init__(session, description)
        self.mrs_username = mrs_username

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ExchangeOnline:
        missing = [key for key in ("app_id", "organization") if not config.get(key)]
        if not (config.get("certificate_file") or config.get("certificate_thumbprint")):
            missing.append("certificate_file or certificate_thumbprint")
        if missing:
            raise ConfigInvalid(f"cutover.yaml: management (exo) needs {', '.join(missing)}")
        if config.get("certificate_file"):
            config = {**config, "certificate_file": str(workspace.path(
                config["certificate_file"]))}
        live = config.get("mode", "live") == "live"
        secrets: dict[str, str] = {}
        if config.get("certificate_password") and live:
            secrets[CERT_PASSWORD_VARIABLE] = workspace.secret(
                _reference(config, "certificate_password"))
        onprem = config.get("onprem_credential") or {}
        if onprem and live:
            secrets[MRS_PASSWORD_VARIABLE] = workspace.secret(_reference(onprem, "password"))
        session = session_from_config(config, workspace, [connect_cmdlet(config)], secrets,
                                      "tenant")
        return cls(session, f"Exchange Online {config['organization']}",
                   str(onprem.get("username", "")))

    # --- recipients --------------------------------------------------------------------------
    def mail_user(self, identity: str) -> xo.Recipient | None:
        found = self.find("Get-MailUser", {"Identity": identity})
        return xo.parse_recipient(found[0]) if found else None

    def mail_contact(self, identity: str) -> xo.Recipient | None:
        found = self.find("Get-MailContact", {"Identity": identity})
        return xo.parse_recipient(found[0]) if found else None

    def new_mail_contact(self, name: str, external_address: str,
                         extra_addresses: list[str]) -> xo.Recipient:
        created = self.run("New-MailContact", {"Name": name,
                                               "ExternalEmailAddress": external_address})
        if extra_addresses:
            # the old address must resolve to the contact: EmailAddresses @{Add=...}
            self.run("Set-MailContact", {"Identity": name, "EmailAddresses": {
                "Add": [f"smtp:{address}" for address in extra_addresses]}})
            return self.mail_contact(name) or xo.parse_recipient(created[0])
        return xo.parse_recipient(created[0])

    def remove_mail_contact(self, identity: str) -> None:
        self.run("Remove-MailContact", {"Identity": identity, "Confirm": False})

    # --- migration -------------------------------------------------------------------------
    def test_migration_endpoint(self, endpoint: str) -> xo.EndpointTest:
        found = self.run("Test-MigrationServerAvailability", {"Endpoint": endpoint})
        return xo.parse_endpoint_test(found[0]) if found else xo.EndpointTest(
            False, "no answer")

    def migration_batch(self, name: str) -> xo.MigrationBatch | None:
        found = self.find("Get-MigrationBatch", {"Identity": name, "IncludeReport": SWITCH})
        return xo.parse_migration_batch(found[0]) if found else None

    def new_migration_batch(self, name: str, users: list[str], *, source_endpoint: str,
                            target_delivery_domain: str, bad_item_limit: int | None,
                            large_item_limit: int | None, complete_after: datetime | None,
                            auto_start: bool) -> xo.MigrationBatch:
        params: dict[str, Any] = {
            "Name": name, "SourceEndpoint": source_endpoint,
            "TargetDeliveryDomain": target_delivery_domain,
            "CSVData": Data(migration_csv(users), f"{name}.csv"),
            "BadItemLimit": bad_item_limit, "LargeItemLimit": large_item_limit,
            "CompleteAfter": complete_after}
        if large_item_limit is not None and large_item_limit > 50:
            params["AcceptLargeDataLoss"] = SWITCH
        if auto_start:
            params["AutoStart"] = SWITCH
        return xo.parse_migration_batch(self.run("New-MigrationBatch", params)[0])

    def add_migration_users(self, name: str, users: list[str]) -> None:
        self.run("Set-MigrationBatch", {"Identity": name, "AddUsers": SWITCH,
                                        "CSVData": Data(migration_csv(users),
                                                        f"{name}-added.csv")})

    def set_migration_batch_limits(self, name: str, bad_item_limit: int | None,
                                   large_item_limit: int | None) -> None:
        self.run("Set-MigrationBatch", {"Identity": name, "BadItemLimit": bad_item_limit,
                                        "LargeItemLimit": large_item_limit})

    def start_migration_batch(self, name: str) -> None:
        self.run("Start-MigrationBatch", {"Identity": name})

    def stop_migration_batch(self, name: str) -> None:
        self.run("Stop-MigrationBatch", {"Identity": name, "Confirm": False})

    def complete_migration_batch(self, name: str) -> None:
        self.run("Complete-MigrationBatch", {"Identity": name, "Confirm": False})

    def remove_migration_batch(self, name: str) -> None:
        self.run("Remove-MigrationBatch", {"Identity": name, "Confirm": False})

    def migration_users(self, batch: str) -> list[xo.MigrationUserStatistics]:
        found = self.find("Get-MigrationUser", {"BatchId": batch, "ResultSize": "Unlimited"},
                          subject=batch, pipe=(Cmdlet.of("Get-MigrationUserStatistics"),))
        return [xo.parse_migration_user(item) for item in found]

    def move_request(self, identity: str) -> xo.MoveRequest | None:
        found = self.find("Get-MoveRequest", {"Identity": identity},
                          pipe=(Cmdlet.of("Get-MoveRequestStatistics"),))
        return xo.parse_move_request(found[0]) if found else None

    def new_outbound_move_request(self, identity: str, *, remote_host: str,
                                  target_database: str, target_delivery_domain: str,
                                  bad_item_limit: int | None) -> None:
        credential = None
        if self.mrs_username:
            credential = Raw("(New-Object System.Management.Automation.PSCredential("
                             f"'{self.mrs_username.replace(chr(39), chr(39) * 2)}', "
                             f"(ConvertTo-SecureString -String $env:{MRS_PASSWORD_VARIABLE} "
                             "-AsPlainText -Force)))")
        self.run("New-MoveRequest", {"Identity": identity, "Outbound": SWITCH,
                                     "RemoteHostName": remote_host,
                                     "RemoteCredential": credential,
                                     "RemoteTargetDatabase": target_database,
                                     "TargetDeliveryDomain": target_delivery_domain,
                                     "BadItemLimit": bad_item_limit})

    def remove_move_request(self, identity: str) -> None:
        self.run("Remove-MoveRequest", {"Identity": identity, "Confirm": False})

    # --- mail flow ---------------------------------------------------------------------------
    def set_accepted_domain(self, name: str, domain_type: str) -> None:
        self.run("Set-AcceptedDomain", {"Identity": name, "DomainType": domain_type})

    def mail_connector(self, name: str, direction: str) -> xo.ConnectorSettings | None:
        found = self.find(_connector_cmdlet("Get", direction), {"Identity": name})
        return xo.parse_connector(found[0], direction) if found else None

    def new_mail_connector(self, settings: xo.ConnectorSettings) -> None:
        self.run(_connector_cmdlet("New", settings.direction),
                 {"Name": settings.name, **_connector_params(settings)})

    def set_mail_connector(self, settings: xo.ConnectorSettings) -> None:
        self.run(_connector_cmdlet("Set", settings.direction),
                 {"Identity": settings.name, **_connector_params(settings)})

    def remove_mail_connector(self, name: str, direction: str) -> None:
        self.run(_connector_cmdlet("Remove", direction), {"Identity": name, "Confirm": False})

    def auto_forwarding_mode(self) -> str:
        found = self.run("Get-HostedOutboundSpamFilterPolicy", {"Identity": "Default"})
        return xo.text(found[0].get("AutoForwardingMode")) if found else "Automatic"

    # --- TenantRouting -----------------------------------------------------------------------
    def accepted_domains(self) -> list[AcceptedDomain]:
        domains = []
        for item in self.run("Get-AcceptedDomain"):
            name, domain_type, default = xo.parse_accepted_domain(item)
            domains.append(AcceptedDomain(name, domain_type, default))  # type: ignore[arg-type]
        return domains

    def connectors(self) -> list[MailConnector]:
        found = []
        for direction in ("outbound", "inbound"):
            for item in self.run(_connector_cmdlet("Get", direction)):
                settings = xo.parse_connector(item, direction)
                found.append(MailConnector(settings.name, direction,  # type: ignore[arg-type]
                                           settings.enabled, settings.domains, settings.hosts,
                                           settings.connector_type))
        return found

    def recipients(self) -> list[TenantRecipient]:
        forwarding = {r.address: r.forwarding_address for r in (
            xo.parse_recipient(item) for item in self.run(
                "Get-Mailbox", {"ResultSize": "Unlimited",
                                "Filter": "ForwardingSmtpAddress -ne $null"}))}
        found = []
        for item in self.run("Get-Recipient", {"ResultSize": "Unlimited"}):
            recipient = xo.parse_recipient(item)
            found.append(TenantRecipient(
                recipient.address, recipient.recipient_type,
                recipient.target_address if recipient.recipient_type in (
                    "MailUser", "MailContact", "GuestMailUser") else "",
                forwarding.get(recipient.address, ""), recipient.smtp))
        return found

    def automatic_forwarding_allowed(self) -> bool:
        return self.auto_forwarding_mode() == "On"


def _connector_cmdlet(verb: str, direction: str) -> str:
    if direction not in ("outbound", "inbound"):
        raise ConfigInvalid(f"a connector is outbound or inbound, not {direction!r}")
    return f"{verb}-{'Outbound' if direction == 'outbound' else 'Inbound'}Connector"


def _connector_params(settings: xo.ConnectorSettings) -> dict[str, Any]:
    params: dict[str, Any] = {"ConnectorType": settings.connector_type,
                              "Enabled": settings.enabled}
    if settings.direction == "outbound":
        params.update({"RecipientDomains": list(settings.domains),
                       "SmartHosts": list(settings.hosts), "UseMXRecord": False,
                       "TlsSettings": settings.tls or None})
    else:
        params.update({"SenderDomains": list(settings.domains),
                       "SenderIPAddresses": list(settings.hosts),
                       "RequireTls": settings.tls == "RequireTls"})
    if settings.comment:
        params["Comment"] = settings.comment
    return params
