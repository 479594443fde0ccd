"""The Microsoft Graph HTTP layer: app credentials (MSAL client credentials, secret or
certificate), one requests session, throttling retried with tenacity honouring Retry-After.

`GraphClient._create_session()` is the only method that opens the network session (and the MSAL
application, whose construction already talks to Entra ID). Tokens stay in MSAL's in-memory
cache: never logged, never written anywhere.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cutover.errors import (
    AuthenticationFailed,
    ConfigInvalid,
    ConnectionFailed,
    NotFound,
    StepFailed,
)
from cutover.parsers import graph_json as gj

if TYPE_CHECKING:  # msal and requests load when a tenant is first reached
    import msal
    import requests

    from cutover.workspace import Workspace

GRAPH_URL = "https://graph.microsoft.com/v1.0"
LOGIN_URL = "https://login.microsoftonline.com"
SCOPES = ["https://graph.microsoft.com/.default"]
THROTTLE_STATUSES = frozenset({429, 503, 504})
NOT_FOUND_CODES = frozenset({"ErrorInvalidUser", "ResourceNotFound", "Request_ResourceNotFound",
                             "MailboxNotEnabledForRESTAPI", "ErrorItemNotFound",
                             "ErrorNonExistentMailbox"})
PAGE_SIZE = 250
UPLOAD_CHUNK = 320 * 1024 * 10  # upload sessions want multiples of 320 KiB


class GraphRequestFailed(StepFailed):
    """Graph answered a request with an unexpected error (the message names code and call)."""


class _Throttled(Exception):  # noqa: N818 - internal retry signal
    def __init__(self, retry_after: float | None):
        super().__init__("throttled")
        self.retry_after = retry_after


class _Unreachable(Exception):  # noqa: N818 - internal retry signal
    pass


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: "7" or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (moment - now).total_seconds())


# --- credentials --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GraphCredentials:
    """Where the client credential comes from; the secret itself is read only when needed."""

    tenant_id: str
    client_id: str
    load_credential: Callable[[], str | dict[str, str]] = field(repr=False)

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Workspace,
                    where: str) -> GraphCredentials:
        missing = [key for key in ("tenant_id", "client_id") if not config.get(key)]
        if missing:
            raise ConfigInvalid(f"cutover.yaml: {where} needs {' and '.join(missing)}")
        secret_ref = config.get("client_secret")
        certificate = config.get("certificate")
        if bool(secret_ref) == bool(certificate):
            raise ConfigInvalid(f"cutover.yaml: {where} needs exactly one of client_secret "
                                "(env/NAME or file/PATH) and certificate")
        if secret_ref:
            return cls(str(config["tenant_id"]), str(config["client_id"]),
                       lambda: workspace.secret(secret_ref))
        if not isinstance(certificate, dict) or not certificate.get("private_key") \
                or not certificate.get("thumbprint"):
            raise ConfigInvalid(f"cutover.yaml: {where}.certificate needs private_key "
                                "(file/PATH or env/NAME) and thumbprint")
        key_ref = str(certificate["private_key"])
        if not key_ref.startswith(("env/", "file/")):
            raise ConfigInvalid(f"cutover.yaml: {where}.certificate.private_key: write a "
                                "reference (env/NAME or file/PATH), not the key itself")
        thumbprint = str(certificate["thumbprint"]).replace(":", "")
        return cls(str(config["tenant_id"]), str(config["client_id"]),
                   lambda: {"private_key": workspace.secret(key_ref), "thumbprint": thumbprint})


# --- the HTTP layer -------------------------------------------------------------------------------
class GraphClient:
    """Token, retries, paging and batching for Graph calls. Thread-safe enough for one session
    per worker: MSAL's cache is shared, each call is independent."""

    def __init__(self, credentials: GraphCredentials, *, graph_url: str = GRAPH_URL,
                 login_url: str = LOGIN_URL, timeout: float = 60.0, max_attempts: int = 6,
                 sleep: Callable[[float], None] = time.sleep,
                 permission: str = "Mail.ReadWrite"):
        self.credentials = credentials
        self.permission = permission  # named when Graph answers 403
        self.graph_url = graph_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.sleep = sleep
        self._http: requests.Session | None = None
        self._app: msal.ConfidentialClientApplication | None = None

    # The seam: the only place that opens the network session.
    def _create_session(self) -> tuple[requests.Session, msal.ConfidentialClientApplication]:
        import msal
        import requests

        http = requests.Session()
        http.headers["Prefer"] = 'IdType="ImmutableId"'
        tenant = self.credentials.tenant_id
        try:
            app = msal.ConfidentialClientApplication(
                self.credentials.client_id, client_credential=self.credentials.load_credential(),
                authority=f"{self.login_url}/{tenant}", http_client=http, timeout=self.timeout,
                token_cache=msal.TokenCache(),  # memory only
                # no cross-cloud alias lookups: the authority is named in full
                instance_discovery=False)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {self.login_url}: "
                                   f"{type(exc).__name__}") from None
        except ValueError:
            # MSAL's tenant discovery failed: the tenant does not exist (or is misspelt)
            raise NotFound(f"Entra ID tenant {tenant!r} not found at {self.login_url}") from None
        return http, app

    def connect(self) -> None:
        if self._http is None:
            self._http, self._app = self._create_session()
            self._token()  # fail early (and once) on bad credentials

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = self._app = None

    def _token(self) -> str:
        import requests

        assert self._app is not None
        try:
            result = self._app.acquire_token_for_client(scopes=SCOPES)
        except requests.RequestException as exc:
            raise ConnectionFailed(f"cannot reach {self.login_url}: "
                                   f"{type(exc).__name__}") from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if token:
            return token
        error = str(result.get("error", "")) if isinstance(result, dict) else ""
        code = gj.aadsts_code(str(result.get("error_description", ""))) \
            if isinstance(result, dict) else ""
        # the description can quote request details; only the codes are shown
        raise AuthenticationFailed(
            f"Entra ID refused the credentials of client {self.credentials.client_id} in tenant "
            f"{self.credentials.tenant_id}: {error or 'no token'}" + (f" ({code})" if code else ""))

    # --- requests ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.graph_url}/{path.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Throttled) and exc.retry_after is not None:
            return exc.retry_after
        return float(min(2 ** state.attempt_number, 60))

    def _send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        assert self._http is not None
        headers = dict(kwargs.pop("headers", None) or {})
        if url.startswith(self.graph_url):
            headers["Authorization"] = f"Bearer {self._token()}"
        try:
            response = self._http.request(method, url, headers=headers, timeout=self.timeout,
                                          **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Unreachable(type(exc).__name__) from None
        if response.status_code in THROTTLE_STATUSES:
            raise _Throttled(retry_after_seconds(response.headers.get("Retry-After")))
        return response

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with retries; raises the cutover error a failure means."""
        self.connect()
        url = self.url(path)
        retrying = Retrying(retry=retry_if_exception_type((_Throttled, _Unreachable)),
                            wait=self._wait, stop=stop_after_attempt(self.max_attempts),
                            sleep=self.sleep, reraise=True)
        try:
            response = retrying(self._send_once, method, url, **kwargs)
        except _Throttled:
            raise ConnectionFailed(f"Microsoft Graph is still throttling after {self.max_attempts}"
                                   f" attempts ({method} {_short(url)})") from None
        except _Unreachable as exc:
            raise ConnectionFailed(f"cannot reach {_host(url)}: {exc}") from None
        if response.status_code >= 400:
            raise self.error(method, url, response.status_code, response.content)
        return response

    def error(self, method: str, url: str, status: int, content: Any) -> Exception:
        text = content if isinstance(content, str | bytes) else json.dumps(content or {})
        failure = gj.parse_error(status, text)
        what = f"{failure.code or status}: {failure.message}".rstrip(": ")
        if status == 401:
            return AuthenticationFailed(f"Microsoft Graph refused the token of client "
                                        f"{self.credentials.client_id} ({failure.code or 401})")
        if status == 403:
            return AuthenticationFailed(f"Microsoft Graph denied {method} {_short(url)} "
                                        f"({failure.code or 403}): grant the app {self.permission} "
                                        "(application permission) with admin consent")
        if status == 404 or failure.code in NOT_FOUND_CODES:
            return NotFound(f"not found in Microsoft 365: {_short(url)} ({what})")
        return GraphRequestFailed(f"Microsoft Graph failed {method} {_short(url)} ({what})")

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return gj.loads(self.send("GET", path, params=params).content)

    def collection(self, path: str, params: dict[str, Any] | None = None
                   ) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following @odata.nextLink (which carries the query)."""
        page = gj.parse_page(self.send("GET", path, params=params).content)
        yield from page.values
        while page.next_link:
            page = gj.parse_page(self.send("GET", page.next_link).content)
            yield from page.values

    def batch(self, requests_: list[dict[str, Any]]) -> dict[str, gj.BatchResponse]:
        """Run requests in JSON batches of 20; throttled members are retried after the largest
        Retry-After of the round, the others are returned as answered."""
        results: dict[str, gj.BatchResponse] = {}
        for start in range(0, len(requests_), 20):
            pending = requests_[start:start + 20]
            for attempt in range(1, self.max_attempts + 1):
                response = self.send("POST", "$batch", json=gj.batch_request(pending))
                answers = gj.parse_batch_response(response.content)
                throttled = [r for r in pending
                             if answers.get(r["id"]) and answers[r["id"]].status in
                             THROTTLE_STATUSES]
                results.update({key: value for key, value in answers.items()
                                if value.status not in THROTTLE_STATUSES})
                if not throttled:
                    break
                if attempt == self.max_attempts:
                    raise ConnectionFailed("Microsoft Graph is still throttling batched "
                                           f"requests after {self.max_attempts} attempts")
                waits = [retry_after_seconds(answers[r["id"]].headers.get("retry-after"))
                         for r in throttled]
                self.sleep(max([w for w in waits if w is not None] or [2.0 ** attempt]))
                pending = throttled
        return results

    def check_batch(self, answers: dict[str, gj.BatchResponse], method: str,
                    ignore_not_found: bool = False) -> None:
        for answer in answers.values():
            if answer.status < 400 or (ignore_not_found and answer.status == 404):
                continue
            raise self.error(method, f"$batch#{answer.id}", answer.status, answer.body)


def _short(url: str) -> str:
    """A URL for messages: path only, no query (which may be long), never a token."""
    path = url.split("?", 1)[0]
    return path.replace(GRAPH_URL, "") or path


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


def user_path(user: str) -> str:
    return f"users/{quote(user, safe='@')}"


