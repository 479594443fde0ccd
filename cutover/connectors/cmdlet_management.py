"""The cmdlets both Exchange shells share, spoken through a pwsh session (live or rendered).

`exo` (cutover.connectors.m365.exo) and `exchange-shell` (cutover.connectors.exchange.shell)
build on `CmdletManagement`: the shells differ in how they sign in and in a few cmdlets, not in
how a mailbox or its folder statistics are read.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.pwsh import SWITCH, Cmdlet, RenderedSession, Session, lookup
from cutover.parsers import exchange_objects as xo


class CmdletManagement:
    """Common reads. `session` is a PwshSession (live) or a RenderedSession (render mode)."""

    def __init__(self, session: Session, description: str):
        self.session = session
        self.description = description

    def describe(self) -> str:
        return self.description

    def use_clock(self, clock: Any) -> None:
        return None  # the real service keeps its own time

    def use_log(self, log: Any) -> None:
        """Render mode shows each script it wants run, whole, where the run reports."""
        if isinstance(self.session, RenderedSession):
            self.session.show = lambda rendered: log(
                f"run in PowerShell: {rendered.script}\n{rendered.text}")

    def close(self) -> None:
        self.session.close()

    def run(self, name: str, params: dict[str, Any] | None = None, **options: Any
            ) -> list[dict[str, Any]]:
        return self.session.invoke(Cmdlet.of(name, params, **options))

    def find(self, name: str, params: dict[str, Any] | None = None, **options: Any
             ) -> list[dict[str, Any]]:
        return lookup(self.session, Cmdlet.of(name, params, **options))

    # --- ExchangeManagement --------------------------------------------------------------
    def mailbox(self, identity: str) -> xo.Recipient | None:
        found = self.find("Get-Mailbox", {"Identity": identity})
        return xo.parse_recipient(found[0]) if found else None

    def mailboxes(self) -> list[xo.Recipient]:
        return [xo.parse_recipient(item) for item in
                self.run("Get-Mailbox", {"ResultSize": "Unlimited"})]

    def folder_statistics(self, identity: str, analysis: bool = False
                          ) -> list[xo.FolderStatistics]:
        params: dict[str, Any] = {"Identity": identity}
        if analysis:
            params["IncludeAnalysis"] = SWITCH
        return [xo.parse_folder_statistics(item) for item in
                self.find("Get-MailboxFolderStatistics", params)]
