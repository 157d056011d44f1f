"""A hostile imitation of the platform: a real HTTP server on 127.0.0.1 whose answers
each test sets, lies included, and which records every request it receives."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.core import archive, authority, certs, envelope
from scelle.core.rsf import rsf_of_certificates
from tests.conftest import NOW

REFERENCE = "AO-1"
DEADLINE = NOW + dt.timedelta(days=30)
Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["Request"], Answer]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def json_answer(data: object, status: int = 200) -> Answer:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


@dataclass
class HostilePlatform:
    """What the fake server answers (`routes`) and what it was asked (`requests`)."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    fallback: Route | None = None
    """What any other route answers (None: 404)."""

    def set(self, method: str, path: str, answer: Answer | Route) -> None:
        if callable(answer):
            self.routes[(method, path)] = answer
            return
        fixed: Answer = answer
        self.routes[(method, path)] = lambda _request: fixed

    def set_json(self, method: str, path: str, data: object, status: int = 200) -> None:
        self.set(method, path, json_answer(data, status))

    def asked(self, method: str, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]


@contextlib.contextmanager
def hostile_platform() -> Iterator[HostilePlatform]:
    state = HostilePlatform()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            request = Request(self.command, path, dict(self.headers), body)
            state.requests.append(request)
            route = state.routes.get((self.command, path), state.fallback)
            if route is None:
                status, headers, payload = json_answer({"detail": "no such route"}, 404)
            else:
                status, headers, payload = route(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_HEAD = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that hangs up on a huge answer is what some tests do

    server = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- an honest tender, to be made to lie ------------------------------------------------


@dataclass(frozen=True)
class Buyer:
    ca: authority.Authority
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


def make_buyer(key: rsa.RSAPrivateKey) -> Buyer:
    ca = authority.create_authority("Plateforme de test — autorité", now=NOW)
    request = authority.load_csr(authority.build_csr(key, "BICLE"))
    certificate = authority.issue_encryption_certificate(
        ca, request, organisation="Ville de Rouen", service="Marchés", days=730, now=NOW
    )
    return Buyer(ca, key, certificate)


def recipient_json(
    certificate: x509.Certificate, designation: str, *, issued_by_platform: bool = True
) -> dict[str, object]:
    return {
        "designation": designation,
        "role": "personal",
        "common_name": certs.common_name(certificate.subject),
        "fingerprint_sha256": certs.fingerprint_sha256(certificate),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "certificate_pem": certs.certificate_pem(certificate).decode(),
        "issued_by_platform": issued_by_platform,
    }


def tender_json(
    recipients: list[dict[str, object]], certificates: list[x509.Certificate]
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "reference": REFERENCE,
        "title": "Travaux",
        "organisation": "Ville de Rouen",
        "service": "Marchés",
        "deadline": DEADLINE.isoformat(),
        "opening_window_ends": (DEADLINE + dt.timedelta(days=90)).isoformat(),
        "envelopes": ["candidature", "offre"],
        "status": "published",
        "launched_at": NOW.isoformat(),
        "closed_at": None,
        "key_pairs": recipients,
        "max_deposit_bytes": 1 << 30,
        "rsf": rsf_of_certificates(certificates),
    }


def authority_json(ca: authority.Authority) -> dict[str, object]:
    return {
        "name": "Plateforme de test",
        "certificate_pem": certs.certificate_pem(ca.certificate).decode(),
        "fingerprint_sha256": certs.fingerprint_sha256(ca.certificate),
        "not_after": ca.certificate.not_valid_after_utc.isoformat(),
    }


def me_json() -> dict[str, object]:
    return {
        "email": "offres@btp.fr",
        "organisation": {"id": str(uuid.uuid4()), "name": "BTP Normandie", "kind": "bidder"},
        "services": [],
    }


def sealed_envelope(
    folder: Path, kind: str, bidder: str, certificates: list[x509.Certificate]
) -> bytes:
    """A real envelope of the files in `folder`, as `scelle deposit` seals it."""
    plan = archive.plan_archive(folder, tender=REFERENCE, envelope=kind, bidder=bidder)
    content = io.BytesIO()
    archive.write_archive(plan, content)
    content.seek(0)
    sink = io.BytesIO()
    envelope.encrypt_stream(content, sink, envelope.EnvelopeKeys.for_recipients(certificates))
    return sink.getvalue()


def seal_bytes(content: bytes, certificates: list[x509.Certificate]) -> bytes:
    sink = io.BytesIO()
    keys = envelope.EnvelopeKeys.for_recipients(certificates)
    envelope.encrypt_stream(io.BytesIO(content), sink, keys)
    return sink.getvalue()
