"""`PlatformClient`: one method per API route, answers as typed dictionaries.

HTTP errors come back as the core's errors, with the platform's own message:
401 → NotAuthenticatedError, 403 → PermissionDeniedError, 404 → NotFoundError,
409 → RuleViolationError, 429 → TooManyAttemptsError, 400/422 →
InvalidInputError; no answer or a server error → PlatformUnavailableError.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import urllib.parse
from typing import Any, BinaryIO, TypedDict, cast

import httpx

from scelle.core.errors import (
    ChecksumMismatchError,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    PlatformUnavailableError,
    RuleViolationError,
    ScelleError,
    TooManyAttemptsError,
)

TIMEOUT_SECONDS = 30.0
_ERRORS: dict[int, type[ScelleError]] = {
    400: InvalidInputError,
    401: NotAuthenticatedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: RuleViolationError,
    422: InvalidInputError,
    412: InvalidInputError,
    415: InvalidInputError,
    429: TooManyAttemptsError,
    460: ChecksumMismatchError,
}
TUS = {"Tus-Resumable": "1.0.0"}


class Organisation(TypedDict):
    id: str
    name: str
    kind: str


class Service(TypedDict):
    id: str
    name: str
    permissions: list[str]


class Me(TypedDict):
    email: str
    organisation: Organisation
    services: list[Service]


class LoginAnswer(TypedDict):
    token: str
    expires_at: str
    user: Me


class KeyPair(TypedDict):
    id: str
    service: str
    service_name: str
    designation: str
    role: str
    common_name: str
    fingerprint_sha256: str
    not_before: str
    not_after: str
    issued_by_platform: bool
    added_by: str | None
    added_at: str
    certificate_pem: str
    open_tenders: list[str]


class PublishedKeyPair(KeyPair):
    chain_pem: list[str]


class Registry(TypedDict):
    key_pairs: list[KeyPair]
    warnings: list[str]


class Recipient(TypedDict):
    designation: str
    role: str
    common_name: str
    fingerprint_sha256: str
    not_after: str
    certificate_pem: str
    issued_by_platform: bool


class Tender(TypedDict):
    id: str
    reference: str
    title: str
    organisation: str
    service: str
    deadline: str
    opening_window_ends: str
    envelopes: list[str]
    status: str
    launched_at: str | None
    closed_at: str | None
    key_pairs: list[Recipient]
    max_deposit_bytes: int


class ReceivedEnvelope(TypedDict):
    kind: str
    size: int
    sha256: str


class Deposit(TypedDict):
    id: str
    tender: str
    bidder: str
    received_at: str
    late: bool
    envelopes: list[ReceivedEnvelope]


class DepositReceipt(Deposit):
    receipt: str


class Authority(TypedDict):
    name: str
    certificate_pem: str
    fingerprint_sha256: str
    not_after: str


def check_platform_url(url: str) -> str:
    """The platform's base URL without a trailing slash; plain HTTP only on loopback."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"{url!r} is not a platform address such as https://host")
    if parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        raise InvalidInputError(
            f"refusing plain HTTP to {parsed.hostname}: passwords and tokens would travel in clear",
            hint="Use the platform's https:// address.",
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
        body = response.json()
        message, hint = str(body["detail"]), body.get("hint")
    except (ValueError, KeyError, TypeError):
        message, hint = f"the platform answered HTTP {response.status_code}", None
    kind = _ERRORS.get(response.status_code)
    if kind is None:
        return PlatformUnavailableError(
            f"the platform failed to answer (HTTP {response.status_code}): {message}"
        )
    return kind(message, hint=hint)


class PlatformClient:
    """The platform's API, for one user's token (or none, to log in)."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.url = check_platform_url(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=f"{self.url}/api", headers=headers, timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise PlatformUnavailableError(
                f"cannot reach the platform at {self.url}: {error}"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:  # noqa: ANN401 - JSON
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PlatformUnavailableError(
                f"{self.url} answered something that is not the platform's API"
            ) from None

    # --- accounts ---------------------------------------------------------------

    def health(self) -> bool:
        return bool(self._call("GET", "/health").get("status") == "ok")

    def login(self, email: str, password: str) -> LoginAnswer:
        return cast(
            LoginAnswer,
            self._call("POST", "/auth/login", json={"email": email, "password": password}),
        )

    def logout(self) -> None:
        self._call("POST", "/auth/logout")

    def me(self) -> Me:
        return cast(Me, self._call("GET", "/me"))

    def platform_ca(self) -> Authority:
        return cast(Authority, self._call("GET", "/platform/ca"))

    # --- key registry -----------------------------------------------------------

    def key_pairs(self, service: str | None = None) -> Registry:
        params = {"service": service} if service else {}
        return cast(Registry, self._call("GET", "/key-pairs", params=params))

    def publish_key_pair(
        self,
        *,
        service: str,
        role: str,
        designation: str | None,
        csr_pem: bytes,
        certificate_pem: bytes | None = None,
    ) -> PublishedKeyPair:
        body = {
            "service": service,
            "role": role,
            "designation": designation,
            "csr_pem": csr_pem.decode(),
            "certificate_pem": certificate_pem.decode() if certificate_pem else None,
        }
        return cast(PublishedKeyPair, self._call("POST", "/key-pairs", json=body))

    def rename_key_pair(self, key_pair_id: str, designation: str) -> KeyPair:
        return cast(
            KeyPair,
            self._call("PATCH", f"/key-pairs/{key_pair_id}", json={"designation": designation}),
        )

    def delete_key_pair(self, key_pair_id: str) -> None:
        self._call("DELETE", f"/key-pairs/{key_pair_id}")

    # --- tenders ----------------------------------------------------------------

    def tenders(self) -> list[Tender]:
        return cast(list[Tender], self._call("GET", "/tenders"))

    def create_tender(
        self,
        *,
        service: str,
        reference: str,
        title: str,
        deadline: dt.datetime,
        envelopes: list[str],
    ) -> Tender:
        body = {
            "service": service,
            "reference": reference,
            "title": title,
            "deadline": deadline.isoformat(),
            "envelopes": envelopes,
        }
        return cast(Tender, self._call("POST", "/tenders", json=body))

    def tender(self, reference: str) -> Tender:
        return cast(Tender, self._call("GET", f"/tenders/{_segment(reference)}"))

    def launch_tender(self, reference: str, key_pairs: list[str]) -> Tender:
        return cast(
            Tender,
            self._call(
                "POST", f"/tenders/{_segment(reference)}/launch", json={"key_pairs": key_pairs}
            ),
        )

    def close_tender(self, reference: str) -> Tender:
        return cast(Tender, self._call("POST", f"/tenders/{_segment(reference)}/close"))

    def recipients(self, reference: str) -> list[Recipient]:
        return cast(
            list[Recipient], self._call("GET", f"/tenders/{_segment(reference)}/recipients")
        )

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
        location = str(urllib.parse.urlsplit(str(response.headers.get("Location", ""))).path)
        if not location.startswith("/api/uploads/"):
            raise PlatformUnavailableError("the platform did not say where to upload")
        return location

    def upload_offset(self, upload: str) -> int:
        """How many bytes of the upload the platform holds (tus HEAD)."""
        response = self._send("HEAD", f"{self.url}{upload}", headers=TUS)
        return int(response.headers["Upload-Offset"])

    def send_chunk(self, upload: str, offset: int, data: bytes, *, checksum: bool = False) -> int:
        """Append `data` at `offset` (tus PATCH); returns the new offset.

        `checksum` adds the chunk's SHA-256 (tus checksum extension). Deposits do
        without: the receipt's SHA-256 of the whole envelope, checked against
        what was sent, covers every chunk, and hashing each byte twice more on
        the way costs a quarter of the throughput.
        """
        headers = {
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        }
        if checksum:
            digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
            headers["Upload-Checksum"] = f"sha256 {digest}"
        response = self._send("PATCH", f"{self.url}{upload}", content=data, headers=headers)
        return int(response.headers["Upload-Offset"])

    def terminate_upload(self, upload: str) -> None:
        self._send("DELETE", f"{self.url}{upload}", headers=TUS)

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
        return cast(
            DepositReceipt,
            self._call("POST", f"/tenders/{_segment(reference)}/deposits", json=body),
        )

    def download_envelope(self, deposit: str, kind: str, sink: BinaryIO, *, start: int) -> None:
        """Stream an envelope's ciphertext into `sink`, from byte `start` (a resumed download)."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        path = f"/deposits/{_segment(deposit)}/envelopes/{_segment(kind)}"
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                for piece in response.iter_bytes(1 << 20):
                    sink.write(piece)
        except httpx.HTTPError as error:
            raise PlatformUnavailableError(
                f"cannot reach the platform at {self.url}: {error}"
            ) from None

    def report_opened(self, deposit: str, kind: str, *, files: int) -> None:
        path = f"/deposits/{_segment(deposit)}/envelopes/{_segment(kind)}/opened"
        self._call("POST", path, json={"files": files})

    def my_deposits(self) -> list[Deposit]:
        return cast(list[Deposit], self._call("GET", "/deposits"))

    def tender_deposits(self, reference: str) -> list[Deposit]:
        return cast(list[Deposit], self._call("GET", f"/tenders/{_segment(reference)}/deposits"))


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")
