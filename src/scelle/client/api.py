"""`PlatformClient`: one method per API route, answers validated and typed.

The workstation never trusts the server (DESIGN.md, "Trust"): every answer is
validated against the shape the API documents before any of it is used
(pydantic, strict: no coercion), with bounded sizes and depths. Ids that the
workstation may turn into folder names must be UUIDs, envelope kinds match a
fixed pattern, text carries no control characters (nothing to rewrite the
terminal with). Anything else is one `PlatformAnswerError`: "the platform
sent an answer Scellé does not understand".

HTTP errors come back as the core's errors, with the platform's own message:
401 → NotAuthenticatedError, 403 → PermissionDeniedError, 404 → NotFoundError,
409 → RuleViolationError, 429 → TooManyAttemptsError, 400/422 →
InvalidInputError; no answer or a server error → PlatformUnavailableError.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import http.client
import ipaddress
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, NotRequired, TypeVar, cast

import httpx
import pydantic
from pydantic import AfterValidator, Field, StringConstraints
from typing_extensions import TypedDict

from scelle.core.errors import (
    N_,
    ChecksumMismatchError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    PlatformAnswerError,
    PlatformUnavailableError,
    RuleViolationError,
    ScelleError,
    TooLargeError,
    TooManyAttemptsError,
)
from scelle.core.files import Writable, write_all

TIMEOUT_SECONDS = 30.0
BUSY_RETRIES = 5
"""Times the command sends a request again that the platform answered 503: the platform
says so when it sheds load or its database is busy, and then nothing was done."""
LONGEST_RETRY_AFTER = 30
CHUNK_RESUMES = 3
"""Times a chunk whose request failed on the way (a load balancer's 502 or 504 when the
host behind it went down, a connection cut) is resumed from the offset the platform
then gives (tus HEAD), waiting 1, 2, then 4 seconds first."""
"""The longest Retry-After believed, in seconds: a server cannot park the command."""
MAX_ANSWER_BYTES = 32 << 20
MAX_NOTE_BYTES = 1 << 16
MAX_TILE_BYTES = 256 * (2 + (1 << 16))
"""The largest entry bundle: 256 entries of at most 64 KiB each, prefixed."""
"""The largest JSON answer read: a tender list with its certificates fits many times."""
DOWNLOAD_PIECE = 1 << 20
"""How much of an envelope one read takes from the network."""
MAX_MESSAGE_CHARACTERS = 500
_ERRORS: dict[int, type[ScelleError]] = {
    400: InvalidInputError,
    401: NotAuthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: RuleViolationError,
    422: InvalidInputError,
    412: InvalidInputError,
    413: TooLargeError,
    415: InvalidInputError,
    429: TooManyAttemptsError,
    460: ChecksumMismatchError,
}
TUS = {"Tus-Resumable": "1.0.0"}
UNDERSTOOD = "the platform sent an answer Scellé does not understand"

# --- the shapes of the answers ------------------------------------------------------

_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ENVELOPE_KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"


def _aware_iso_datetime(value: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError("a date and time without its offset")
    return value


Uuid = Annotated[str, StringConstraints(pattern=_UUID_PATTERN)]
"""An id that may name a folder on the workstation: a UUID, lower-case, nothing else."""
EnvelopeKind = Annotated[str, StringConstraints(pattern=ENVELOPE_KIND_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=1000, pattern=_NO_CONTROLS)]
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Pem = Annotated[str, StringConstraints(max_length=64 << 10)]
Timestamp = Annotated[str, StringConstraints(max_length=40), AfterValidator(_aware_iso_datetime)]
Size = Annotated[int, Field(ge=0, le=1 << 40)]
ZoneName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_+-]{1,30}(/[A-Za-z0-9_+-]{1,30}){0,2}$")
]
"""An IANA time zone name, such as Europe/Paris."""
Rsf = Annotated[str, StringConstraints(pattern=r"^RSF [0-9A-Z]{4}(-[0-9A-Z]{4}){4}$")]


class Organisation(TypedDict):
    id: Uuid
    name: Text
    kind: Text


class Service(TypedDict):
    id: Uuid
    name: Text
    permissions: Annotated[list[Text], Field(max_length=50)]


class Me(TypedDict):
    email: Text
    organisation: Organisation
    services: Annotated[list[Service], Field(max_length=1000)]


class LoginAnswer(TypedDict):
    token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,200}$")]
    expires_at: Timestamp
    user: Me


class KeyPair(TypedDict):
    id: Uuid
    service: Uuid
    service_name: Text
    designation: Text
    role: Text
    common_name: Text
    fingerprint_sha256: Fingerprint
    not_before: Timestamp
    not_after: Timestamp
    issued_by_platform: bool
    on_token: NotRequired[bool]
    added_by: Text | None
    added_at: Timestamp
    certificate_pem: Pem
    open_tenders: Annotated[list[Text], Field(max_length=10_000)]


class PublishedKeyPair(KeyPair):
    chain_pem: Annotated[list[Pem], Field(max_length=10)]


class Registry(TypedDict):
    key_pairs: Annotated[list[KeyPair], Field(max_length=10_000)]
    warnings: Annotated[list[Text], Field(max_length=10_000)]


class Recipient(TypedDict):
    designation: Text
    role: Text
    common_name: Text
    fingerprint_sha256: Fingerprint
    not_after: Timestamp
    certificate_pem: Pem
    issued_by_platform: bool
    holder: NotRequired[Annotated[str, StringConstraints(max_length=254)] | None]


class Commission(TypedDict):
    threshold: Annotated[int, Field(ge=2, le=255)]


class Tender(TypedDict):
    grace_minutes: NotRequired[int | None]
    id: Uuid
    reference: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    title: Text
    organisation: Text
    service: Text
    deadline: Timestamp
    opening_window_ends: Timestamp
    envelopes: Annotated[list[EnvelopeKind], Field(min_length=1, max_length=10)]
    status: Text
    launched_at: Timestamp | None
    closed_at: Timestamp | None
    cancelled_at: NotRequired[Timestamp | None]
    cancel_reason: NotRequired[Annotated[str, StringConstraints(max_length=2000)]]
    key_pairs: Annotated[list[Recipient], Field(max_length=100)]
    max_deposit_bytes: Size
    rsf: Rsf | None
    test: NotRequired[bool]
    commission: NotRequired[Commission | None]


class ReceivedEnvelope(TypedDict):
    kind: EnvelopeKind
    size: Size
    sha256: Sha256
    recipients: Annotated[list[Fingerprint], Field(max_length=100)]
    upload: Uuid | None


class Deposit(TypedDict):
    id: Uuid
    tender: Text
    bidder: Text
    received_at: Timestamp
    late: bool
    envelopes: Annotated[list[ReceivedEnvelope], Field(max_length=10)]
    test: NotRequired[bool]
    withdrawn_at: NotRequired[Timestamp | None]
    withdrawal: NotRequired[Annotated[str, StringConstraints(max_length=1 << 20)] | None]
    commitment: NotRequired[Literal["matched", "differs", "none"] | None]
    by_grace: NotRequired[bool]


class DepositReceipt(Deposit):
    receipt: Annotated[str, StringConstraints(max_length=1 << 20)]


class Commitment(TypedDict):
    id: Uuid
    tender: Text
    committed_at: Timestamp
    envelopes: Annotated[dict[EnvelopeKind, Sha256], Field(max_length=10)]
    receipt: Annotated[str, StringConstraints(max_length=1 << 20)]


class Withdrawal(TypedDict):
    deposit: Uuid
    withdrawn_at: Timestamp
    receipt: Annotated[str, StringConstraints(max_length=1 << 20)]


class CommissionMember(TypedDict):
    designation: Text
    fingerprint_sha256: Fingerprint
    holder: Annotated[str, StringConstraints(max_length=254)] | None
    opener: bool
    joined_at: Timestamp | None
    shares: Annotated[int, Field(ge=0)]


class CommissionOpening(TypedDict):
    reference: Text
    threshold: Annotated[int, Field(ge=2, le=255)]
    started: bool
    started_at: Timestamp | None
    opener: Text | None
    opener_fingerprint_sha256: Fingerprint | None
    members: Annotated[list[CommissionMember], Field(max_length=255)]


class CommissionRequest(TypedDict):
    tender: Uuid
    reference: Text
    opener: Text
    started_by: Annotated[str, StringConstraints(max_length=254)]
    started_at: Timestamp


class RelayedShare(TypedDict):
    id: Annotated[int, Field(ge=1)]
    deposit: Uuid
    kind: EnvelopeKind
    member: Fingerprint
    relayed: Annotated[str, StringConstraints(max_length=2048, pattern=r"^[A-Za-z0-9+/=]*$")]


class EnvelopeHeader(TypedDict):
    id: Annotated[int, Field(ge=1)]
    deposit: Uuid
    kind: EnvelopeKind
    recipient_infos: Annotated[str, StringConstraints(max_length=1 << 20)] | None


class EnvelopeHeaders(TypedDict):
    headers: Annotated[list[EnvelopeHeader], Field(max_length=500)]
    more: bool


class RelayedShares(TypedDict):
    shares: Annotated[list[RelayedShare], Field(max_length=1000)]
    more: bool


class Relayed(TypedDict):
    relayed: Annotated[int, Field(ge=0)]


class TestKey(TypedDict):
    tender: Uuid
    reference: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    certificate_pem: Pem
    private_key_pem: Annotated[str, StringConstraints(max_length=64 << 10)]
    pfx_password: Text
    deposit_hours: Annotated[int, Field(ge=0)]


class Authority(TypedDict):
    name: Text
    certificate_pem: Pem
    fingerprint_sha256: Fingerprint
    not_after: Timestamp
    time_zone: NotRequired[ZoneName]


class Witnessed(TypedDict):
    witnessed: dict[str, str]


class Health(TypedDict):
    status: Text


class Agent(TypedDict):
    id: Uuid
    email: Text
    active: bool
    permissions: dict[Uuid, list[Text]]


class Agents(TypedDict):
    services: list[Service]
    agents: list[Agent]


class Workstation(TypedDict):
    id: Uuid
    name: Text
    last_seen_at: Timestamp


class Job(TypedDict):
    """A remote job (traitement distant). `params` are checked by the job's own code."""

    id: Uuid
    kind: Text
    workstation: Uuid
    workstation_name: Text
    params: dict[str, Any]
    state: Text
    message: str
    result: dict[str, Any]
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


_Answer = TypeVar("_Answer")
_ADAPTERS: dict[Any, pydantic.TypeAdapter[Any]] = {}


def parse_answer(kind: type[_Answer], content: bytes) -> _Answer:
    """`content` validated as `kind`, strictly; anything else is a PlatformAnswerError."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = pydantic.TypeAdapter(kind)
    if len(content) > MAX_ANSWER_BYTES:
        raise PlatformAnswerError(
            N_("{understood}: the answer is too large"),
            understood=UNDERSTOOD,
        )
    try:
        # pydantic's JSON parser bounds nesting depth itself (no RecursionError).
        return cast(_Answer, adapter.validate_json(content, strict=True))
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise PlatformAnswerError(f"{UNDERSTOOD}: {where}: {first['msg']}"[:300]) from None


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(value: object) -> str:
    """A server-given message made safe to print: no control characters, bounded."""
    return _CONTROLS.sub(" ", str(value))[:MAX_MESSAGE_CHARACTERS]


def check_platform_url(url: str) -> str:
    """The platform's base URL without a trailing slash; plain HTTP only on loopback."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(
            N_("{url!r} is not a platform address such as https://host"),
            url=url,
        )
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        raise InvalidInputError(
            N_("refusing plain HTTP to {hostname}: passwords and tokens would travel in clear"),
            hint=N_("Use the platform's https:// address."),
            hostname=parsed.hostname,
        )
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(response: httpx.Response) -> ScelleError:
    try:
        if len(response.content) > MAX_ANSWER_BYTES:
            raise ValueError("too large")
        body = response.json()
        message, hint = _printable(body["detail"]), body.get("hint")
        hint = None if hint is None else _printable(hint)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        message, hint = f"the platform answered HTTP {response.status_code}", None
    kind = _ERRORS.get(response.status_code)
    if kind is None:
        return PlatformUnavailableError(
            N_("the platform failed to answer (HTTP {status_code}): {message_}"),
            status_code=response.status_code,
            message_=message,
        )
    return kind(message, hint=hint)


def _retry_after(response: httpx.Response) -> float:
    """The seconds a 503 asks to wait: 1 to LONGEST_RETRY_AFTER, 5 when it says none."""
    value = response.headers.get("Retry-After", "")
    seconds = int(value) if value.isascii() and value.isdigit() and len(value) < 6 else 5
    return float(min(max(seconds, 1), LONGEST_RETRY_AFTER))


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's own verification context (certifi's authorities, or SSL_CERT_FILE), made
    once per process: making it reads the whole bundle, 45 ms at every client otherwise
    (the assistant makes one per job, the tests thousands)."""
    return httpx.create_ssl_context()


class PlatformClient:
    """The platform's API, for one user's token (or none, to log in)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = TIMEOUT_SECONDS,
        language: str = "en",
        busy_retries: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = check_platform_url(url)
        self._busy_retries = busy_retries
        self._sleep = sleep
        # The platform's messages come back in the user's language (fr or en).
        headers = {"Accept-Language": language}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=f"{self.url}/api",
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            verify=_tls(),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unreachable(self, error: object) -> PlatformUnavailableError:
        return PlatformUnavailableError(
            N_("cannot reach the platform at {url}: {printable}"),
            url=self.url,
            printable=_printable(error),
        )

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401
        """One request; its body read up to MAX_ANSWER_BYTES, errors raised. A 503 is
        sent again after its Retry-After, `busy_retries` times (bodies here are bytes or
        JSON, never a stream: sending again sends the same)."""
        for attempt in range(self._busy_retries + 1):
            try:
                with self._http.stream(method, path, **kwargs) as streamed:
                    response = _read_bounded(streamed)
            except httpx.HTTPError as error:
                raise self._unreachable(error) from None
            if response.status_code != 503 or attempt == self._busy_retries:
                break
            self._sleep(_retry_after(response))
        _refuse_redirects(response)
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _call(self, kind: type[_Answer], method: str, path: str, **kwargs: Any) -> _Answer:  # noqa: ANN401
        """A JSON route: its answer validated as `kind`."""
        return parse_answer(kind, self._send(method, path, **kwargs).content)

    def _call_without_answer(self, method: str, path: str, **kwargs: Any) -> None:  # noqa: ANN401
        self._send(method, path, **kwargs)

    # --- accounts ---------------------------------------------------------------

    def health(self) -> bool:
        return self._call(Health, "GET", "/health")["status"] == "ok"

    def login(self, email: str, password: str) -> LoginAnswer:
        body = {"email": email, "password": password}
        return self._call(LoginAnswer, "POST", "/auth/login", json=body)

    def logout(self) -> None:
        self._call_without_answer("POST", "/auth/logout")

    def me(self) -> Me:
        return self._call(Me, "GET", "/me")

    def platform_ca(self) -> Authority:
        return self._call(Authority, "GET", "/platform/ca")

    # --- key registry -----------------------------------------------------------

    def key_pairs(self, service: str | None = None) -> Registry:
        params = {"service": service} if service else {}
        return self._call(Registry, "GET", "/key-pairs", params=params)

    def publish_key_pair(
        self,
        *,
        service: str,
        role: str,
        designation: str | None,
        csr_pem: bytes,
        certificate_pem: bytes | None = None,
        on_token: bool = False,
    ) -> PublishedKeyPair:
        body = {
            "service": service,
            "role": role,
            "designation": designation,
            "csr_pem": csr_pem.decode(),
            "certificate_pem": certificate_pem.decode() if certificate_pem else None,
            "on_token": on_token,
        }
        return self._call(PublishedKeyPair, "POST", "/key-pairs", json=body)

    def rename_key_pair(self, key_pair_id: str, designation: str) -> KeyPair:
        body = {"designation": designation}
        return self._call(KeyPair, "PATCH", f"/key-pairs/{_segment(key_pair_id)}", json=body)

    def delete_key_pair(self, key_pair_id: str) -> None:
        self._call_without_answer("DELETE", f"/key-pairs/{_segment(key_pair_id)}")

    # --- tenders ----------------------------------------------------------------

    def tenders(self) -> list[Tender]:
        return self._call(list[Tender], "GET", "/tenders")

    def create_tender(
        self,
        *,
        service: str,
        reference: str,
        title: str,
        deadline: dt.datetime,
        envelopes: list[str],
        grace_minutes: int | None = None,
    ) -> Tender:
        body: dict[str, object] = {
            "service": service,
            "reference": reference,
            "title": title,
            "deadline": deadline.isoformat(),
            "envelopes": envelopes,
        }
        if grace_minutes is not None:
            body["grace_minutes"] = grace_minutes
        return self._call(Tender, "POST", "/tenders", json=body)

    def tender(self, reference: str) -> Tender:
        return self._call(Tender, "GET", f"/tenders/{_segment(reference)}")

    def launch_tender(
        self, reference: str, key_pairs: list[str], *, commission_threshold: int | None = None
    ) -> Tender:
        path = f"/tenders/{_segment(reference)}/launch"
        body: dict[str, Any] = {"key_pairs": key_pairs}
        if commission_threshold is not None:
            body["commission_threshold"] = commission_threshold
        return self._call(Tender, "POST", path, json=body)

    def close_tender(self, reference: str) -> Tender:
        return self._call(Tender, "POST", f"/tenders/{_segment(reference)}/close")

    def cancel_tender(self, reference: str, reason: str) -> Tender:
        path = f"/tenders/{_segment(reference)}/cancel"
        return self._call(Tender, "POST", path, json={"reason": reason})

    def test_key(self, reference: str) -> TestKey:
        """The published key pair of a test tender (anyone may have it)."""
        return self._call(TestKey, "GET", f"/tenders/{_segment(reference)}/test-key")

    def recipients(self, reference: str) -> list[Recipient]:
        return self._call(list[Recipient], "GET", f"/tenders/{_segment(reference)}/recipients")

    # --- habilitations ---------------------------------------------------------------

    def agents(self) -> Agents:
        return self._call(Agents, "GET", "/agents")

    def create_agent(self, email: str, password: str) -> Agent:
        return self._call(Agent, "POST", "/agents", json={"email": email, "password": password})

    def grant(self, agent: str, service: str, permission: str) -> Agent:
        body = {"service": service, "permission": permission}
        return self._call(Agent, "POST", f"/agents/{_segment(agent)}/permissions", json=body)

    def revoke(self, agent: str, service: str, permission: str) -> Agent:
        path = f"/agents/{_segment(agent)}/permissions/{_segment(service)}/{_segment(permission)}"
        return self._call(Agent, "DELETE", path)

    def deactivate(self, agent: str) -> Agent:
        return self._call(Agent, "POST", f"/agents/{_segment(agent)}/deactivate")

    # --- the assistant ---------------------------------------------------------------

    def heartbeat(
        self,
        workstation: str,
        version: str,
        key_pairs: list[dict[str, str | bool]],
        *,
        running: bool = True,
    ) -> Workstation:
        body = {
            "workstation": workstation,
            "version": version,
            "key_pairs": key_pairs,
            "running": running,
        }
        return self._call(Workstation, "POST", "/assistant/heartbeat", json=body)

    def next_job(self, workstation: str, *, wait: int) -> Job | None:
        """The next job for this workstation, waiting up to `wait` seconds for one."""
        response = self._send(
            "GET",
            "/assistant/jobs/next",
            params={"workstation": workstation, "wait": wait},
            timeout=wait + TIMEOUT_SECONDS,
        )
        if response.status_code == 204:
            return None
        return parse_answer(Job, response.content)

    def finish_job(self, job: str, *, succeeded: bool, message: str, result: dict[str, Any]) -> Job:
        body = {
            "outcome": "finished" if succeeded else "failed",
            "message": message,
            "result": result,
        }
        return self._call(Job, "POST", f"/assistant/jobs/{_segment(job)}/finish", json=body)

    def jobs(self) -> list[Job]:
        return self._call(list[Job], "GET", "/assistant/jobs")

    def give_job(self, kind: str, params: dict[str, str], *, workstation: str | None) -> Job:
        """A job of the closed list for one's own assistant (as the pages give them)."""
        body = {"kind": kind, "params": params, "workstation": workstation}
        return self._call(Job, "POST", "/assistant/jobs", json=body)

    # --- deposits: tus uploads, then the deposit ---------------------------------------

    def create_upload(self, *, tender: str, envelope: str, length: int) -> str:
        """A tus upload for one envelope; returns its path on the platform."""
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in (("tender", tender), ("envelope", envelope))
        )
        response = self._send(
            "POST",
            "/uploads/",
            headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": metadata},
        )
        return self._upload_path(str(response.headers.get("Location", "")))

    def _upload_path(self, location: str) -> str:
        """The path of an upload the platform named, an /api/uploads/<uuid>; only the path
        is kept (behind a proxy the platform may name itself otherwise): the bytes only
        ever go to the platform this workstation logged in to."""
        parsed = urllib.parse.urlsplit(location)
        ours = urllib.parse.urlsplit(self.url)
        prefix = f"{ours.path}/api/uploads/"
        upload_id = parsed.path.removeprefix(prefix)
        if not parsed.path.startswith(prefix) or not re.fullmatch(_UUID_PATTERN, upload_id):
            raise PlatformAnswerError(
                N_("{understood}: it did not say where to upload"),
                understood=UNDERSTOOD,
            )
        return f"/api/uploads/{upload_id}"

    def upload_offset(self, upload: str) -> int:
        """How many bytes of the upload the platform holds (tus HEAD)."""
        response = self._send("HEAD", f"{self.url}{self._upload_path(upload)}", headers=TUS)
        return _header_count(response, "Upload-Offset")

    def send_chunk(self, upload: str, offset: int, data: bytes, *, checksum: bool = False) -> int:
        """Append `data` at `offset` (tus PATCH); returns the new offset.

        `checksum` adds the chunk's SHA-256 (tus checksum extension). Deposits do
        without: the receipt's SHA-256 of the whole envelope, checked against
        what was sent, covers every chunk, and hashing each byte twice more on
        the way costs a quarter of the throughput.

        A request that fails on the way is resumed where the platform says it is, as
        tus intends (by a client that sends a busy request again): behind a load
        balancer, another host takes the rest.
        """
        end = offset + len(data)
        resumes = CHUNK_RESUMES if self._busy_retries else 0
        for attempt in range(resumes + 1):
            try:
                return self._send_chunk(upload, offset, data, checksum=checksum)
            except PlatformAnswerError:
                raise  # a lying platform is not asked again
            except PlatformUnavailableError as error:
                status = error.values.get("status_code")
                if attempt == resumes or status not in (None, 502, 504):
                    raise
            self._sleep(float(2**attempt))
            held = self.upload_offset(upload)
            if not offset <= held <= end:
                raise PlatformAnswerError(
                    N_("{understood}: it holds {held} bytes of a chunk from {start} to {value}"),
                    understood=UNDERSTOOD,
                    held=held,
                    start=offset,
                    value=end,
                )
            data, offset = data[held - offset :], held
            if not data:
                return held
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _send_chunk(self, upload: str, offset: int, data: bytes, *, checksum: bool) -> int:
        headers = {
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        }
        if checksum:
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            headers["Upload-Checksum"] = f"sha256 {digest}"
        path = f"{self.url}{self._upload_path(upload)}"
        response = self._send("PATCH", path, content=data, headers=headers)
        held = _header_count(response, "Upload-Offset")
        if held != offset + len(data):
            raise PlatformAnswerError(
                N_("{understood}: it holds {held} bytes after a chunk that ends at {value}"),
                understood=UNDERSTOOD,
                held=held,
                value=offset + len(data),
            )
        return held

    def terminate_upload(self, upload: str) -> None:
        self._send("DELETE", f"{self.url}{self._upload_path(upload)}", headers=TUS)

    def finalise_deposit(
        self, reference: str, uploads: list[tuple[str, str, str | None]]
    ) -> DepositReceipt:
        """Make the deposit of complete uploads: (kind, upload id, SHA-256 sent or None)."""
        body = {
            "envelopes": [
                {"kind": kind, "upload": upload, "sha256": sha256}
                for kind, upload, sha256 in uploads
            ]
        }
        path = f"/tenders/{_segment(reference)}/deposits"
        return self._call(DepositReceipt, "POST", path, json=body)

    def download_envelope(
        self,
        deposit: str,
        kind: str,
        sink: Writable,
        *,
        start: int,
        size: int,
    ) -> None:
        """Stream an envelope's ciphertext into `sink`, from byte `start` (a resumed
        download) up to `size`: a server that sends more is refused.

        Read by the standard library's HTTP client, whose reads go straight into one
        buffer: a fifth of httpx's CPU for the same bytes (bench/opening.py), the same
        TLS verification, proxies from the environment, and no redirect followed."""
        headers = {**self._headers, **({"Range": f"bytes={start}-"} if start else {})}
        path = f"/api/deposits/{_segment(deposit)}/envelopes/{_segment(kind)}"
        # self.url is https (or http to this machine): check_platform_url saw to it.
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)  # noqa: S310
        try:
            with _opener().open(request, timeout=self._timeout) as response:
                if start and response.status != 206:
                    raise PlatformAnswerError(
                        N_("{understood}: it did not resume the download"),
                        understood=UNDERSTOOD,
                    )
                _copy_at_most(response, sink, size - start, size)
        except urllib.error.HTTPError as refused:
            with refused:
                answer = httpx.Response(
                    refused.code,
                    headers=list(refused.headers.items()),
                    content=refused.read(MAX_ANSWER_BYTES + 1),
                )
            _refuse_redirects(answer)
            raise _error(answer) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise self._unreachable(getattr(error, "reason", error)) from None

    def commit(self, tender: str, hashes: dict[str, str]) -> Commitment:
        """Register the SHA-256 of each sealed envelope before uploading them."""
        body = {"envelopes": [{"kind": k, "sha256": v} for k, v in hashes.items()]}
        return self._call(Commitment, "POST", f"/tenders/{_segment(tender)}/commitments", json=body)

    def withdraw_deposit(self, deposit: str) -> Withdrawal:
        """Withdraw one of the company's deposits, before the deadline."""
        return self._call(Withdrawal, "POST", f"/deposits/{_segment(deposit)}/withdrawal")

    def report_opened(self, deposit: str, kind: str, *, files: int) -> None:
        path = f"/deposits/{_segment(deposit)}/envelopes/{_segment(kind)}/opened"
        self._call_without_answer("POST", path, json={"files": files})

    def report_opened_together(self, opened: Sequence[tuple[str, str, int]]) -> None:
        """Several envelopes opened, in one report: all recorded, or none."""
        body = {"envelopes": [{"deposit": d, "kind": k, "files": n} for d, k, n in opened]}
        self._call_without_answer("POST", "/opened-envelopes", json=body)

    # --- the transparency log (c2sp.org/tlog-tiles, under /log/) ----------------------

    def _log(self, path: str, most: int) -> bytes:
        content = self._send("GET", f"{self.url}/log/{path}").content
        if len(content) > most:
            raise PlatformAnswerError(
                N_("{understood}: the answer is too large"), understood=UNDERSTOOD
            )
        return content

    def log_checkpoint(self) -> bytes:
        """The log's latest signed checkpoint, unchecked."""
        return self._log("checkpoint", MAX_NOTE_BYTES)

    def log_tile(self, path: str) -> bytes:
        """A tile or entry bundle (`tile/...`), unchecked."""
        return self._log(path, MAX_TILE_BYTES)

    def log_witnessed(self) -> dict[str, str]:
        """{witness name: the latest checkpoint it cosigned}, unchecked."""
        return parse_answer(Witnessed, self._log("witnessed", MAX_ANSWER_BYTES))["witnessed"]

    def send_cosignature(self, cosigned: str) -> None:
        """A witness hands the platform its cosignature of a checkpoint."""
        self._send(
            "POST", f"{self.url}/log/cosignature", content=cosigned.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )  # fmt: skip

    # --- a commission's opening --------------------------------------------------------

    def commission_opening(self, reference: str) -> CommissionOpening:
        return self._call(CommissionOpening, "GET", f"/tenders/{_segment(reference)}/commission")

    def start_commission_opening(self, reference: str) -> CommissionOpening:
        """Open the tender as its commission's opener (a member)."""
        return self._call(CommissionOpening, "POST", f"/tenders/{_segment(reference)}/commission")

    def take_part(self, reference: str) -> CommissionOpening:
        path = f"/tenders/{_segment(reference)}/commission/participation"
        return self._call(CommissionOpening, "POST", path)

    def commission_requests(self) -> list[CommissionRequest]:
        """The commissions' openings this agent, a member, has not taken part in yet."""
        return self._call(list[CommissionRequest], "GET", "/commission-requests")

    def relay_shares(self, reference: str, shares: Sequence[tuple[str, str, bytes]]) -> int:
        """Shares encrypted to the opener's certificate: (deposit, envelope kind, bytes)."""
        body = {
            "shares": [
                {"deposit": d, "kind": k, "relayed": base64.b64encode(r).decode()}
                for d, k, r in shares
            ]
        }
        path = f"/tenders/{_segment(reference)}/commission/shares"
        return self._call(Relayed, "POST", path, json=body)["relayed"]

    def envelope_headers(self, reference: str, *, after: int) -> EnvelopeHeaders:
        """Each envelope's recipients, for a member taking part, past the id `after`."""
        path = f"/tenders/{_segment(reference)}/commission/headers"
        return self._call(EnvelopeHeaders, "GET", path, params={"after": after})

    def relayed_shares(self, reference: str, *, after: int) -> RelayedShares:
        """The shares relayed to this opener past the id `after`."""
        path = f"/tenders/{_segment(reference)}/commission/shares"
        return self._call(RelayedShares, "GET", path, params={"after": after})

    def my_deposits(self) -> list[Deposit]:
        return self._call(list[Deposit], "GET", "/deposits")

    def my_deposit(self, deposit: str) -> DepositReceipt:
        """One of the company's deposits with its signed receipt (a lost one fetched again)."""
        return self._call(DepositReceipt, "GET", f"/deposits/{_segment(deposit)}")

    def tender_deposits(self, reference: str) -> list[Deposit]:
        path = f"/tenders/{_segment(reference)}/deposits"
        return self._call(list[Deposit], "GET", path)


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never followed: a redirect could send the token, or the bid, to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        return None


def _opener() -> urllib.request.OpenerDirector:
    """urllib's opener with httpx's TLS verification, the environment's proxies (read at
    each download, as httpx reads them), and no redirect."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=_tls()), _NoRedirect()
    )


def _copy_at_most(response: http.client.HTTPResponse, sink: Writable, left: int, size: int) -> None:
    """The body into `sink` through one buffer; refused when longer than `left` bytes."""
    buffer = bytearray(DOWNLOAD_PIECE)
    view = memoryview(buffer)
    while count := response.readinto(view):
        left -= count
        if left < 0:
            raise PlatformAnswerError(
                N_("{understood}: the envelope is longer than the {size} bytes recorded"),
                understood=UNDERSTOOD,
                size=size,
            )
        write_all(sink, view[:count])


def _read_bounded(streamed: httpx.Response) -> httpx.Response:
    """The streamed answer as a read one, refused past MAX_ANSWER_BYTES."""
    body = bytearray()
    for piece in streamed.iter_bytes():
        body += piece
        if len(body) > MAX_ANSWER_BYTES:
            raise PlatformAnswerError(
                N_("{understood}: the answer is too large"),
                understood=UNDERSTOOD,
            )
    return httpx.Response(
        streamed.status_code,
        headers=streamed.headers,
        content=bytes(body),
        request=streamed.request,
    )


def _refuse_redirects(response: httpx.Response) -> None:
    # Never followed: a redirect could send the token, or the bid, to another host.
    if 300 <= response.status_code < 400:
        raise PlatformAnswerError(
            N_("{understood}: a redirect (HTTP {status_code}) to {value}"),
            understood=UNDERSTOOD,
            status_code=response.status_code,
            value=_printable(response.headers.get("Location", "?"))[:100],
        )


def _header_count(response: httpx.Response, name: str) -> int:
    """A byte count from a tus header: ASCII digits only, bounded."""
    value = response.headers.get(name, "")
    if not re.fullmatch(r"[0-9]{1,15}", value):
        raise PlatformAnswerError(
            N_("{understood}: {name} is {value!r}"),
            understood=UNDERSTOOD,
            name=name,
            value=_printable(value)[:40],
        )
    return int(value)
