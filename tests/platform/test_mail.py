"""E-mails through Django's SMTP backend to a real SMTP server (aiosmtpd) the test starts:
the deposit receipt, a failed remote job, a key pair expiring while in use, a deadline
passed; in French then English; once each; kept and sent again when the server is down."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from scelle.platform.assistants import services as assistants
from scelle.platform.deposits.models import Deposit
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.mail.models import OutgoingMail
from scelle.platform.mail.services import notify_due, send_pending
from tests.platform.conftest import Buyer, MovableClock, sealed
from tests.platform.test_deposits import (  # noqa: F401 (fixtures)
    DEADLINE,
    Bidder,
    company,
    tender,
)

# ruff: noqa: F811 (test_deposits' fixtures `tender` and `company`, imported)

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in self.messages if address in rcpt]


class _Server:
    """aiosmtpd on a port of its own, which may be stopped and started again."""

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._running: Controller | None = None

    def start(self) -> None:
        self._running = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._running.start()

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None


@pytest.fixture
def smtp(settings: Any) -> Iterator[tuple[_Inbox, _Server]]:
    server = _Server(_Inbox())
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "Scellé <ne-pas-repondre@marches.example.fr>"
    try:
        yield server.inbox, server
    finally:
        server.stop()


def _subject(message: EmailMessage) -> str:
    return " ".join(str(message["Subject"]).split())  # unfolded


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_the_deposit_receipt_goes_to_the_company_once_sent(
    tender: str, company: Bidder, bidder: Any, clock: MovableClock, smtp: Any
):
    inbox, _server = smtp
    uploads = {kind: company.upload(tender, kind, sealed(10)) for kind in ("candidature", "offre")}
    assert company.finalise(tender, uploads).status_code == 201
    deposit = Deposit.objects.get()
    # Written with the deposit; sent by the housekeeping, once.
    assert OutgoingMail.objects.filter(sent_at__isnull=True).count() == 1
    assert send_pending(now=clock()) == 1 and send_pending(now=clock()) == 0
    (message,) = inbox.to(bidder.email)
    assert _subject(message) == "Accusé de réception : AO-DEPOT / Deposit receipt: AO-DEPOT"
    assert message["From"] == "Scellé <ne-pas-repondre@marches.example.fr>"
    text = _text(message)
    french, english = text.split("— English —")
    assert "a déposé un pli" in french and "reçu le" in french and "(Europe/Paris)" in french
    assert "deposited a bid to AO-DEPOT" in english
    for envelope in deposit.envelopes.all():
        assert envelope.sha256 in french and envelope.sha256 in english
    (attached,) = list(message.iter_attachments())
    assert attached.get_filename() == f"accuse-de-reception-{deposit.id}.json"
    assert attached.get_content() == deposit.receipt.encode()  # byte for byte: it is signed
    assert json.loads(attached.get_content())["receipt"]["tender"] == "AO-DEPOT"


def test_a_server_down_keeps_the_mail_for_the_next_round(
    tender: str, company: Bidder, bidder: Any, clock: MovableClock, smtp: Any
):
    inbox, server = smtp
    uploads = {kind: company.upload(tender, kind, sealed(10)) for kind in ("candidature", "offre")}
    assert company.finalise(tender, uploads).status_code == 201
    server.stop()
    assert send_pending(now=clock()) == 0
    waiting = OutgoingMail.objects.get()
    assert waiting.sent_at is None and waiting.attempts == 1 and "Connection" in waiting.last_error
    server.start()
    assert send_pending(now=clock()) == 1
    assert len(inbox.to(bidder.email)) == 1


def test_a_failed_remote_job_is_told_to_its_agent(rouen: Buyer, clock: MovableClock, smtp: Any):
    inbox, _server = smtp
    workstation = assistants.heartbeat(
        rouen.owner, name="POSTE-ACHAT-12", version="1", key_pairs=[], now=clock()
    )
    job = assistants.request_key_pair(
        rouen.owner, service_id=rouen.service.id, designation="BI-CLE", backup=False,
        common_name=None, reference=None, now=clock(),
    )  # fmt: skip
    assistants.next_job(rouen.owner, workstation.id, now=clock())
    assistants.finish_job(
        rouen.owner, job.id, succeeded=False, message="la carte a refusé le code PIN",
        result={}, now=clock(),
    )  # fmt: skip
    never = assistants.request_key_pair(
        rouen.owner, service_id=rouen.service.id, designation="AUTRE", backup=False,
        common_name=None, reference=None, now=clock(),
    )  # fmt: skip
    clock.advance(minutes=31)
    assert assistants.expire_jobs(now=clock()) == 1
    assert send_pending(now=clock()) == 2
    told = inbox.to(rouen.owner.email)
    assert [_subject(m) for m in told] == [
        "Traitement distant en échec : ajout d'un bi-clé / Remote job failed: add a key pair"
    ] * 2
    assert "la carte a refusé le code PIN" in _text(told[0])
    assert "no Scellé assistant took this job" in _text(told[1])
    assert OutgoingMail.objects.filter(key=f"job:{never.id}").exists()


def test_expiring_key_pairs_and_passed_deadlines_are_told_once(
    tender: str, company: Bidder, rouen: Buyer, clock: MovableClock, smtp: Any
):
    inbox, _server = smtp
    uploads = {kind: company.upload(tender, kind, sealed(10)) for kind in ("candidature", "offre")}
    assert company.finalise(tender, uploads).status_code == 201
    assert notify_due(now=clock()) == 0  # nothing due yet
    # The deadline passed an hour ago: its creator (and the service's openers) are told.
    at = DEADLINE + dt.timedelta(hours=1)
    assert notify_due(now=at) == 2 and notify_due(now=at) == 0  # the creator, the opener
    # Its key pair ends in 20 days, the tender still open: its key managers are told.
    key_pair = KeyPair.objects.get(designation="PERSO")
    soon = key_pair.not_after - dt.timedelta(days=20)
    assert notify_due(now=soon) == 1 and notify_due(now=soon) == 0
    send_pending(now=soon)
    subjects = sorted(_subject(m) for m in inbox.to(rouen.owner.email))
    assert (
        subjects[0].startswith("Bi-clé PERSO : fin le ")
        and " / Key pair PERSO ends on " in subjects[0]
    )
    assert subjects[1] == (
        "Date limite passée : AO-DEPOT (plis : 1) / Deadline passed: AO-DEPOT (deposits: 1)"
    )
    deadline_text = _text(next(m for m in inbox.to(rouen.owner.email) if "AO-DEPOT" in _subject(m)))
    assert "1 deposits on time, 0 late, 0 of them withdrawn" in deadline_text
    assert "AO-DEPOT" in _text(
        next(m for m in inbox.to(rouen.owner.email) if "PERSO" in _subject(m))
    )
    # The colleague may open: told of the deadline, not of the key pair.
    assert [_subject(m).split(" / ")[1] for m in inbox.to(rouen.colleague.email)] == [
        "Deadline passed: AO-DEPOT (deposits: 1)"
    ]
