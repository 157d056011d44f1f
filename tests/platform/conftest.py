"""The platform under test: a movable clock, organisations set up through the services,
and API clients holding real tokens.

Three kinds of users, as in every authorisation test: the owner (an agent with
the permission), a colleague without it, an outsider (another buyer's agent),
plus a company's user (bidder).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from scelle.core import authority, certs
from scelle.platform.accounts import services as accounts
from scelle.platform.accounts.models import Organisation, Service, User
from scelle.platform.keypairs.authority import ensure_platform_keys
from tests.conftest import NOW
from tests.seaweed import SeaweedFS

PASSWORD = "Mot-de-passe-Agent-2026!"
ALL_PERMISSIONS = ("manage_keys", "manage_tenders", "open", "administer")


class MovableClock:
    """The platform's clock in tests: time moves when the test says so."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Messages in English where no request chose a language (the platform's default is
    French; the tests read the English messages, the French ones have their own test)."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def clock(settings: Any) -> MovableClock:
    moving = MovableClock(NOW)
    settings.SCELLE_CLOCK = moving
    return moving


@pytest.fixture(scope="session", autouse=True)
def _platform_keys() -> None:
    ensure_platform_keys(lambda: NOW)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS S3 server for this test process, and a bucket with Object Lock."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.bucket = server.new_bucket()
    yield server
    server.stop()


@pytest.fixture
def object_store(settings: Any, seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> str:
    """Envelopes in the SeaweedFS bucket, under a prefix of this test's own."""
    for name, value in seaweed.environment().items():
        monkeypatch.setenv(name, value)
    settings.SCELLE_STORAGE_URL = f"s3://{seaweed.bucket}/{uuid.uuid4().hex}"
    return str(settings.SCELLE_STORAGE_URL)


@pytest.fixture(scope="session")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    """A few RSA-2048 keys, generated once: the platform accepts 2048 for the suite's speed."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(6)]


@dataclass
class Buyer:
    organisation: Organisation
    service: Service
    other_service: Service
    owner: User
    """Every permission on `service`, none on `other_service`."""
    colleague: User
    """Only `open` on `service`: sees it, but may not manage keys or tenders."""
    clients: dict[str, Client] = field(default_factory=dict)


def make_user(
    email: str,
    organisation: Organisation,
    *,
    service: Service | None = None,
    permissions: tuple[str, ...] = (),
) -> User:
    return accounts.create_user(
        email, organisation, PASSWORD, service=service, permissions=permissions, now=NOW
    )


def make_buyer(name: str, domain: str) -> Buyer:
    organisation = accounts.create_organisation(name, "buyer", now=NOW)
    service = accounts.create_service(organisation, "Service des marchés", now=NOW)
    other = accounts.create_service(organisation, "Direction technique", now=NOW)
    owner = make_user(
        f"acheteur@{domain}", organisation, service=service, permissions=ALL_PERMISSIONS
    )
    colleague = make_user(
        f"collegue@{domain}", organisation, service=service, permissions=("open",)
    )
    return Buyer(organisation, service, other, owner, colleague)


def api_client(user: User, clock: MovableClock) -> Client:
    """A Django test client sending a real bearer token of `user`."""
    token = accounts.log_in(user.email, PASSWORD, client="192.0.2.1", now=clock()).value
    # The command sends the user's language; these tests read the English messages.
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def rouen(db: None, clock: MovableClock) -> Buyer:
    return make_buyer("Ville de Rouen", "rouen.fr")


@pytest.fixture
def caen(db: None, clock: MovableClock) -> Buyer:
    return make_buyer("Ville de Caen", "caen.fr")


@pytest.fixture
def bidder(db: None, clock: MovableClock) -> User:
    company = accounts.create_organisation("BTP Normandie SARL", "bidder", now=NOW)
    return make_user("offres@btp-normandie.fr", company)


def csr_for(key: rsa.RSAPrivateKey, cn: str) -> str:
    return authority.build_csr(key, cn).decode()


def publish(
    client: Client,
    service: Service,
    key: rsa.RSAPrivateKey,
    designation: str,
    *,
    role: str = "personal",
    certificate_pem: str | None = None,
) -> Any:
    """POST a key pair to the registry; returns the response."""
    body = {
        "service": str(service.id),
        "role": role,
        "designation": designation,
        "csr_pem": csr_for(key, designation[:64]),
        "certificate_pem": certificate_pem,
    }
    return client.post("/api/key-pairs", body, content_type="application/json")


def self_signed(key: rsa.RSAPrivateKey, cn: str, *, days: int = 730, now: dt.datetime = NOW) -> str:
    return certs.certificate_pem(
        certs.self_signed_certificate(key, cn, days=days, now=now)
    ).decode()


def create_tender(
    client: Client,
    service: Service,
    reference: str,
    *,
    deadline: dt.datetime | None = None,
) -> Any:
    body = {
        "service": str(service.id),
        "reference": reference,
        "title": f"Marché {reference}",
        "deadline": (deadline or NOW + dt.timedelta(days=30)).isoformat(),
        "envelopes": ["candidature", "offre"],
    }
    return client.post("/api/tenders", body, content_type="application/json")


def launch(client: Client, reference: str, *designations: str) -> Any:
    return client.post(
        f"/api/tenders/{reference}/launch",
        {"key_pairs": list(designations)},
        content_type="application/json",
    )


@pytest.fixture
def owner_client(rouen: Buyer, clock: MovableClock) -> Iterator[Client]:
    yield api_client(rouen.owner, clock)


def sealed(plaintext_bytes: int, reference: str = "AO-DEPOT") -> bytes:
    """A real envelope of random content, encrypted to the tender's key pairs: the
    platform reads its recipients at finalisation."""
    from scelle.core.envelope import EnvelopeKeys, encrypt_stream
    from scelle.platform.tenders.models import AssignedKeyPair

    recipients = [
        certs.load_certificate(a.certificate_pem.encode())
        for a in AssignedKeyPair.objects.filter(tender__reference=reference)
    ]
    sink = io.BytesIO()
    encrypt_stream(
        io.BytesIO(os.urandom(plaintext_bytes)), sink, EnvelopeKeys.for_recipients(recipients)
    )
    return sink.getvalue()
