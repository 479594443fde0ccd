"""The sample organisation: a small treaty-verification agency on one on-premises Exchange.

Deterministic: the same recipients, mail and files on every machine, so demo runs and tests
compare byte for byte. People, shared mailboxes, rooms and equipment go to the cloud in phase 2;
functional accounts that carry verification data (data requests, bulletins, station reports)
move to the Linux domain in phase 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

OLD_DOMAIN = "example.org"
VERIFY_DOMAIN = "verify.example.org"
CLOUD_MX = "example-org.mail.protection.outlook.com."

PEOPLE = [
    "Amira Haddad", "Bernhard Gruber", "Chen Wei", "Dagny Solberg", "Emeka Okafor",
    "Francesca Rossi", "Gulnara Abenova", "Hiroshi Tanaka", "Ingrid Berg", "Jürgen Müller",
    "Kateryna Bondar", "Luis Fernández", "Maryam Rahimi", "Nils Lindqvist", "Olga Petrova",
    "Pierre Lefèvre", "Quentin Dubois", "Rania Aziz", "Sean O'Brien", "Tomasz Nowak",
    "Ursula Steiner", "Vikram Iyer", "Wanjiru Kamau", "Xavier Moreau", "Yasmin Saleh",
    "Zoë Ødegaard", "Ahmed Benali", "Beatriz Santos", "Carlos Mendoza", "Dilnoza Karimova",
    "Elif Yılmaz", "Fiona MacLeod", "Gábor Kovács", "Hana Novotná", "Ivan Horvat",
    "Julia Wagner", "Kwame Mensah", "Lena Hofer", "Mateo García", "Nadia Belkacem",
]

#: (local part, display name, RecipientTypeDetails, what it carries)
FUNCTIONAL = [
    ("datarequest", "IDC Data Requests", "UserMailbox", "requests"),
    ("reb-distribution", "Reviewed Event Bulletin Distribution", "UserMailbox", "bulletins"),
    ("bulletin", "Bulletin Subscriptions", "SharedMailbox", "bulletins"),
    ("waveform-request", "Waveform Requests", "UserMailbox", "requests"),
    ("ims-data", "IMS Data Messages", "UserMailbox", "ims"),
    ("ims-reports", "IMS Station Reports", "UserMailbox", "stations"),
    ("station-aks01", "Station AKS01 Reports", "UserMailbox", "stations"),
    ("station-arces", "Station ARCES Reports", "UserMailbox", "stations"),
    ("station-ps19", "Station PS19 Reports", "UserMailbox", "stations"),
    ("station-is26", "Station IS26 Reports", "UserMailbox", "stations"),
    ("station-rn43", "Station RN43 Reports", "UserMailbox", "stations"),
    ("radionuclide-reports", "Radionuclide Reports", "UserMailbox", "stations"),
    ("sel3-review", "SEL3 Review Notifications", "UserMailbox", "bulletins"),
]

SHARED = [("info", "Agency Information"), ("procurement", "Procurement Office"),
          ("hr-office", "Human Resources"), ("legal", "Legal Affairs"), ("press", "Press Office"),
          ("duty-officer", "Duty Officer"), ("records-office", "Records Office")]
ROOMS = [("room-vienna-a", "Meeting Room Vienna A", "RoomMailbox"),
         ("room-board", "Board Room", "RoomMailbox"),
         ("room-lab-2", "Laboratory 2", "RoomMailbox"),
         ("projector-1", "Projector 1", "EquipmentMailbox"),
         ("car-pool", "Car Pool", "EquipmentMailbox")]
SERVICE = [("noreply", "No Reply"), ("scanner", "Copier Scan to Mail"),
           ("monitoring", "Monitoring Alerts")]
UNKNOWN = [("old-project-x", "Project X (2019)"), ("test123", "test123")]


@dataclass(frozen=True)
class SampleRecipient:
    local: str
    display_name: str
    recipient_type: str  # RecipientTypeDetails as Get-Mailbox writes it
    role: str  # person, functional, shared, resource, service, unknown, discovery
    carries: str = ""  # for functional accounts: requests, bulletins, ims, stations
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def address(self) -> str:
        return f"{self.local}@{OLD_DOMAIN}"

    @property
    def guid(self) -> str:
        digest = hashlib.sha1(self.address.encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


#: the addresses whose route `cutover demo` shows before and after the migration: one
#: verification address (its old name) and one person's
DEMO_TRACED = (f"datarequest@{OLD_DOMAIN}", f"amira.haddad@{OLD_DOMAIN}")


def _person_local(name: str) -> str:
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name.replace("ø", "o").replace("Ø", "O")
                                       .replace("ı", "i"))
    ascii_name = "".join(c for c in ascii_name if not unicodedata.combining(c))
    first, *rest = ascii_name.lower().replace("'", "").split()
    return f"{first}.{'-'.join(rest)}"


def _person(name: str) -> SampleRecipient:
    """first.last@, with the short alias flast@ that older staff still give out."""
    local = _person_local(name)
    first, last = local.split(".", 1)
    return SampleRecipient(local, name, "UserMailbox", "person",
                           aliases=(f"{first[0]}{last}@{OLD_DOMAIN}",))


def recipients() -> list[SampleRecipient]:
    people = [_person(name) for name in PEOPLE]
    functional = [SampleRecipient(local, display, kind, "functional", carries)
                  for local, display, kind, carries in FUNCTIONAL]
    shared = [SampleRecipient(local, display, "SharedMailbox", "shared")
              for local, display in SHARED]
    rooms = [SampleRecipient(local, display, kind, "resource") for local, display, kind in ROOMS]
    service = [SampleRecipient(local, display, "UserMailbox", "service")
               for local, display in SERVICE]
    unknown = [SampleRecipient(local, display, "UserMailbox", "unknown")
               for local, display in UNKNOWN]
    discovery = [SampleRecipient("DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}",
                                 "Discovery Search Mailbox", "DiscoveryMailbox", "discovery")]
    return people + functional + shared + rooms + service + unknown + discovery
