"""cutover.yaml, the environment: what it may contain, checked as a whole when it is read.

Every problem is reported at once as `cutover.yaml:LINE: where: message`, the way plan problems
are. Two levels:

- `parse` (each time the file is read, cheap, imports no connector): the YAML itself (UTF-8,
  bounded, see yaml_loader), the shape of every section, each connector entry a mapping with a
  `kind`, the types of the settings each known kind reads, credentials written as references.
  Settings this module does not know are left to the connector (a new setting works before it
  is described here), but a known one of the wrong type never reaches a connector.
- `check_for_plan` (before a plan runs, and by `plan check`): every connector a step names is
  configured, under a kind cutover knows, with its credentials resolvable now (the values are
  not read), and the inventory classification reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from cutover import yaml_loader
from cutover.errors import CutoverError, Problem, ValidationFailed
from cutover.secrets import check_secret, is_reference

if TYPE_CHECKING:
    from cutover.plan import Plan
    from cutover.workspace import Workspace

FILE = "cutover.yaml"
SECRET_KEYS = frozenset({"password", "token", "secret", "client_secret", "tsig_secret",
                         "oauth2_token", "private_key"})
#: sections that map a name to a connector entry, as steps and commands name them
CONNECTOR_SECTIONS = ("providers", "mailstores", "forwarding", "sieve", "postfix", "accounts",
                      "directory", "management", "spamfilter", "personal")


def _reference(value: str) -> str:
    if not is_reference(value):
        raise ValueError("write a reference (env/NAME or file/PATH), not the secret itself")
    return value


Reference = Annotated[str, AfterValidator(_reference)]


class _Settings(BaseModel):
    """A connector entry: `kind` plus the settings of that kind. Settings not described here
    are passed through to the connector (it has the last word on them)."""

    model_config = ConfigDict(extra="allow")

    kind: str


class _DnsSafety(_Settings):
    max_update_share: float | None = Field(default=None, gt=0, le=1)
    max_delete_share: float | None = Field(default=None, gt=0, le=1)
    min_existing_records: int | None = Field(default=None, ge=0)


class _GraphCertificate(BaseModel):
    private_key: Reference
    thumbprint: str


class _GraphCredentials(_Settings):
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: Reference | None = None
    certificate: _GraphCertificate | None = None
    graph_url: str | None = None
    login_url: str | None = None


class _Path(_Settings):
    path: str


class _Imap(_Settings):
    url: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    ssl: bool | None = None
    login: str | None = None
    password: Reference | None = None
    oauth2_token: Reference | None = None
    tls_verify: bool | None = None


class _EwsStore(_Settings):
    server: str | None = None
    service_endpoint: str | None = None
    username: str | None = None
    password: Reference | None = None
    auth: Literal["ntlm", "basic", "oauth2"] | None = None
    access: Literal["impersonation", "delegate"] | None = None
    autodiscover: bool | None = None
    tls_verify: bool | None = None
    version: str | None = None


class _Graph(_GraphCredentials):
    uid_map: str | None = None
    import_: str | None = Field(default=None, alias="import")


class _PersonalFile(_Path):
    mailstore: str | None = None


class _Rfc2136(_DnsSafety):
    server: str | None = None
    tsig_key_file: str | None = None
    nameservers: list[str] | None = None
    timeout: float | None = Field(default=None, gt=0)


class _Zonefile(_DnsSafety):
    path: str


class _EwsForwarding(_Settings):
    service_endpoint: str | None = None
    username: str | None = None
    password: Reference | None = None
    auth_type: Literal["ntlm", "basic"] | None = None
    access_type: Literal["impersonation", "delegate"] | None = None
    rule_name: str | None = None


class _InventorySource(_Settings):
    """Settings every inventory source may carry (read by the collection, not the connector)."""

    mailstore: str | None = None
    sample: int | None = Field(default=None, ge=0)
    routing: _Routing | None = None


class _Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    procmail: str | None = None
    sieve: str | None = None
    postfix: str | None = None


class _GetMailboxCsv(_InventorySource):
    path: str | list[str]
    statistics_path: str | None = None


class _EwsInventory(_InventorySource):
    server: str | None = None
    autodiscover_email: str | None = None
    username: str | None = None
    password: Reference | None = None
    auth: Literal["ntlm", "basic"] | None = None
    mailboxes: list[str] | None = None


class _MailstoreInventory(_InventorySource):
    store: str | None = None
    accounts: list[str] | None = None


class _PostfixMaps(_Settings):
    path: str | None = None
    postmap: bool | Literal["auto"] | None = None
    map_type: str | None = None
    postmap_command: str | None = None
    postfix_command: str | None = None
    postfix_config_dir: str | None = None
    transport_map: str | None = None
    reload: bool | None = None


class _SieveProgramDirs(_Settings):
    """Where the programs a Sieve script runs through Pigeonhole's extprograms are written:
    Dovecot's sieve_pipe_bin_dir / sieve_filter_bin_dir / sieve_execute_bin_dir, as the
    cutover host reaches them."""

    pipe_bin_dir: str | None = None
    filter_bin_dir: str | None = None
    execute_bin_dir: str | None = None


class _Managesieve(_SieveProgramDirs):
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    password: Reference | None = None
    starttls: bool | None = None


class _SieveDirectory(_SieveProgramDirs):
    path: str
    #: the extensions the twin enables for personal scripts (unset: it does not say)
    extensions: list[str] | None = None


class _DovecotPasswd(_Settings):
    passwd_file: str | None = None
    virtual_mailbox_maps: str | None = None
    virtual_mailbox_domains: str | None = None
    mail_root: str | None = None
    credentials_dir: str | None = None
    uid: str | int | None = None
    gid: str | int | None = None
    postmap: bool | None = None


_InventorySource.model_rebuild()

#: (section, kind) -> the settings that kind reads there
SETTINGS: dict[tuple[str, str], type[_Settings]] = {
    ("mailstores", "maildir"): _Path,
    ("mailstores", "imap"): _Imap,
    ("mailstores", "ews"): _EwsStore,
    ("mailstores", "graph"): _Graph,
    ("providers", "zonefile"): _Zonefile,
    ("providers", "rfc2136"): _Rfc2136,
    ("forwarding", "forwarding-file"): _Settings,
    ("forwarding", "ews"): _EwsForwarding,
    ("forwarding", "ews-forwarding"): _EwsForwarding,
    ("inventory.sources", "getmailbox-csv"): _GetMailboxCsv,
    ("inventory.sources", "ews"): _EwsInventory,
    ("inventory.sources", "ews-inventory"): _EwsInventory,
    ("inventory.sources", "mailstore"): _MailstoreInventory,
    ("postfix", "postfix"): _PostfixMaps,
    ("postfix", "postfix-maps"): _PostfixMaps,
    ("sieve", "sievedir"): _SieveDirectory,
    ("sieve", "managesieve"): _Managesieve,
    ("accounts", "dovecot-passwd"): _DovecotPasswd,
    ("directory", "directory-file"): _Path,
    ("directory", "graph"): _GraphCredentials,
    ("directory", "graph-directory"): _GraphCredentials,
    ("personal", "personal-file"): _PersonalFile,
    ("personal", "graph"): _GraphCredentials,
    ("personal", "ews"): _EwsStore,
}
DEFAULT_SETTINGS: dict[str, type[_Settings]] = {"inventory.sources": _InventorySource}


class _Inventory(BaseModel):
    model_config = ConfigDict(extra="allow")

    sources: dict[str, Any] | None = None
    routing: _Routing | None = None
    classification: dict[str, Any] | None = None
    throughput_mb_per_s: float | None = Field(default=None, gt=0)


class _Environment(BaseModel):
    """The top level: connector sections are checked entry by entry afterwards."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    clock: Literal["simulated", "real"] | None = None
    inventory: _Inventory | None = None
    providers: dict[str, Any] | None = None
    mailstores: dict[str, Any] | None = None
    forwarding: dict[str, Any] | None = None
    sieve: dict[str, Any] | None = None
    postfix: dict[str, Any] | None = None
    accounts: dict[str, Any] | None = None
    directory: dict[str, Any] | None = None
    management: dict[str, Any] | None = None
    spamfilter: dict[str, Any] | None = None
    personal: dict[str, Any] | None = None
    #: routes the workspace declares where it cannot read them (cutover.routes.facts)
    routes: dict[str, Any] | None = None


def parse(raw: bytes, file: str = FILE) -> dict[str, Any]:
    """The environment cutover.yaml describes; ValidationFailed listing every problem."""
    try:
        data, lines = yaml_loader.load(yaml_loader.decode(raw))
    except yaml_loader.YamlProblem as problem:
        raise ValidationFailed([Problem(file, problem.line, problem.message)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed([Problem(file, 1, "expected a mapping of sections at the top "
                                                 "level (providers:, mailstores:, ...)")])
    problems = list(_problems(data, lines, file))
    if problems:
        raise ValidationFailed(list(dict.fromkeys(problems)))
    return data


def _problems(data: dict[str, Any], lines: yaml_loader.Lines, file: str) -> Iterator[Problem]:
    try:
        _Environment.model_validate(data)
    except ValidationError as exc:
        yield from _pydantic_problems(exc, lines, file)
    for section, entries in _connector_sections(data):
        for name, entry in entries.items():
            at = (*section.split("."), name)
            where = ".".join(str(part) for part in at)
            if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
                yield Problem(file, lines.line(at), f"{where}: expected a mapping with a kind "
                                                    "(kind: NAME, then its settings)")
                continue
            model = SETTINGS.get((section, entry["kind"])) or DEFAULT_SETTINGS.get(section,
                                                                                    _Settings)
            try:
                model.model_validate(entry)
            except ValidationError as exc:
                yield from _pydantic_problems(exc, lines, file, at)
    yield from _inline_secrets(data, (), lines, file)


def _connector_sections(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for section in CONNECTOR_SECTIONS:
        if isinstance(data.get(section), dict):
            yield section, data[section]
    inventory = data.get("inventory")
    if isinstance(inventory, dict) and isinstance(inventory.get("sources"), dict):
        yield "inventory.sources", inventory["sources"]


def _pydantic_problems(error: ValidationError, lines: yaml_loader.Lines, file: str,
                       prefix: tuple = ()) -> Iterator[Problem]:
    for detail in error.errors():
        location = prefix + tuple(part for part in detail["loc"] if not _is_union_tag(part))
        where = ".".join(str(part) for part in location) or "cutover.yaml"
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown key" if len(location) > 1 else \
                f"unknown section (known: {', '.join(_Environment.model_fields)})"
        elif detail["type"] in ("dict_type", "model_type") and len(location) == 1:
            message = "expected a mapping of names"
        yield Problem(file, lines.line(location), f"{where}: {message}")


def _is_union_tag(part: Any) -> bool:
    """pydantic names the union member it tried ("str", "list[str]", "literal['auto']");
    the operator wrote a key, not a type."""
    return isinstance(part, str) and (part in ("str", "int", "float", "bool")
                                      or part.startswith(("list[", "literal[", "function-")))


def _inline_secrets(node: Any, at: tuple, lines: yaml_loader.Lines,
                    file: str) -> Iterator[Problem]:
    """A secret written into the file itself, under any key that names one, wherever it is
    (also under settings this module does not know)."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*at, key)
            if key in SECRET_KEYS and isinstance(value, str) and not is_reference(value):
                where = ".".join(str(part) for part in here)
                yield Problem(file, lines.line(here), f"{where}: write a reference (env/NAME "
                                                      "or file/PATH), not the secret itself")
            else:
                yield from _inline_secrets(value, here, lines, file)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _inline_secrets(value, (*at, index), lines, file)


# --- the environment a plan needs -----------------------------------------------------------

#: step kind -> {param: the cutover.yaml section its value names}. A test keeps this in step
#: with the registered kinds and their Params.
STEP_CONNECTORS: dict[str, dict[str, str]] = {
    "dns.records": {"provider": "providers"},
    "dns.check": {"provider": "providers"},
    "mailbox.sync": {"source": "mailstores", "target": "mailstores"},
    "linux.account": {"accounts": "accounts"},
    "cloud.mailbox": {"directory": "directory"},
    "exchange.forwarding": {"source": "forwarding"},
    "inventory.collect": {"source": "inventory.sources"},
    "postfix.maps": {"server": "postfix"},
    "rules.replace": {"sieve": "sieve", "mailstore": "mailstores"},
    "sieve.redirect": {"sieve": "sieve"},
    "hybrid.preflight": {"tenant": "management", "onprem": "management"},
    "cloud.migration_batch": {"tenant": "management", "onprem": "management",
                              "mailstore": "mailstores"},
    "exo.accepted_domain": {"tenant": "management", "onprem": "management"},
    "exo.auto_forwarding": {"tenant": "management"},
    "exo.connector": {"tenant": "management"},
    "exo.mail_contact": {"tenant": "management", "accounts": "accounts"},
    "spamfilter.domain": {"spamfilter": "spamfilter", "server": "postfix"},
    "cloud.carry": {"source": "personal", "target": "personal"},
    "route.probe": {},  # the route's own hops name what it sends through
}


def check_for_plan(workspace: Workspace, plan: Plan, plan_file: str | None = None) -> None:
    """Everything `plan` needs from the environment is there: raise ValidationFailed naming
    each missing connector at the plan's line (`plan_file`: the plan as the operator wrote
    it), each unusable entry at cutover.yaml's line."""
    config = workspace.config  # the whole file first: ValidationFailed on its own
    lines = _lines_of(workspace)
    known_kinds = _registered_kinds()
    problems: list[Problem] = []
    checked: set[tuple[str, str]] = set()
    plan_file = plan_file or str(plan.path)
    for step in plan.steps:
        for param, section in STEP_CONNECTORS.get(step.spec.kind, {}).items():
            entries = _entries(config, section)
            name = getattr(step.params, param, None)  # as given, or the kind's default
            if name is None and section == "inventory.sources":
                names = list(entries)  # no source named: the step collects from all of them
            elif isinstance(name, str) and "{" not in name:
                names = [name]
            else:
                continue  # optional and unset, or a per-item template resolved at preview
            for name in names:
                if name not in entries:
                    known = ", ".join(sorted(entries)) or "none"
                    problems.append(Problem(plan_file, step.line, f"step {step.id}: {param}: "
                                            f"{FILE} has no {section}.{name} (configured: "
                                            f"{known})"))
                elif (section, name) not in checked:
                    checked.add((section, name))
                    problems += _entry_problems(workspace, section, name, entries[name],
                                                known_kinds, lines)
        if step.spec.kind == "inventory.collect":
            problems += _inventory_problems(config, lines)
    if problems:
        raise ValidationFailed(list(dict.fromkeys(problems)))


def _registered_kinds() -> set[str]:
    """Every kind name a connector registered (aliases included), whatever its role: the
    workspace checks that a kind serves the role of its section when it builds it."""
    from cutover.connectors import base

    return base.registered_kinds()


def _entries(config: dict[str, Any], section: str) -> dict[str, Any]:
    value: Any = config
    for part in section.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _entry_problems(workspace: Workspace, section: str, name: str, entry: dict[str, Any],
                    known_kinds: set[str], lines: yaml_loader.Lines) -> list[Problem]:
    at = (*section.split("."), name)
    where = f"{section}.{name}"
    kind = entry["kind"]
    if kind not in known_kinds:
        return [Problem(FILE, lines.line((*at, "kind")), f"{where}: unknown kind {kind!r} "
                        f"(known: {', '.join(sorted(known_kinds))})")]
    problems = []
    for key, reference in _references(entry):
        try:
            check_secret(reference, workspace.root)
        except CutoverError as exc:
            problems.append(Problem(FILE, lines.line((*at, *key)),
                                    f"{where}.{'.'.join(key)}: {exc}"))
    return problems


def _references(node: Any, at: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECRET_KEYS and is_reference(value):
                yield (*at, key), value
            else:
                yield from _references(value, (*at, key))


def _inventory_problems(config: dict[str, Any], lines: yaml_loader.Lines) -> list[Problem]:
    from cutover.inventory.classify import Classifier

    inventory = config.get("inventory") or {}
    if not _entries(config, "inventory.sources"):
        return [Problem(FILE, lines.line(("inventory",)), "inventory.sources names no source "
                        "(e.g. exchange-csv: {kind: getmailbox-csv, path: "
                        "inventory/Get-Mailbox.csv})")]
    try:
        Classifier.from_config(inventory.get("classification"))
    except CutoverError as exc:
        text = str(exc).removeprefix(f"{FILE}: ")
        return [Problem(FILE, lines.line(("inventory", "classification")), text)]
    return []


def _lines_of(workspace: Workspace) -> yaml_loader.Lines:
    try:
        raw = workspace.config_path.read_bytes()
    except OSError:
        return yaml_loader.Lines(None)
    return yaml_loader.load(yaml_loader.decode(raw))[1]
