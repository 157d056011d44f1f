"""Routes of tenders: create, launch with their key pairs, cancel, close; recipients.

`{tender}` in a path is the tender's id, or its reference (unique within the
buyer's organisation; a company gives the id when several buyers use one).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.platform.accounts.models import User
from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.schemas import responses
from scelle.platform.tenders import services, testing
from scelle.platform.tenders.models import AssignedKeyPair, Tender

router = Router(tags=["tenders"])


class RecipientOut(Schema):
    designation: str
    role: str
    common_name: str
    fingerprint_sha256: str
    not_after: dt.datetime
    certificate_pem: str
    issued_by_platform: bool
    """False when referenced as it is: then not issued by the platform CA."""
    holder: str | None = None
    """A commission member's agent (e-mail), shown to the buyer's agents only."""


class CommissionOut(Schema):
    threshold: int
    """k: how many of the members (the key pairs of role "member") must take part to open."""


class TenderOut(Schema):
    id: uuid.UUID
    reference: str
    title: str
    organisation: str
    service: str
    deadline: dt.datetime
    opening_window_ends: dt.datetime
    envelopes: list[str]
    status: str
    launched_at: dt.datetime | None
    closed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str
    """Why the buyer stopped it early, when cancelled."""
    key_pairs: list[RecipientOut]
    """The definitive recipients, once launched."""
    max_deposit_bytes: int
    """The largest deposit the platform takes, all envelopes together."""
    rsf: str | None
    """The recipient-set fingerprint of `key_pairs`, once launched (RSF XXXX-…), with the
    commission's members and k when it has one."""
    commission: CommissionOut | None = None
    """Set when a commission opens the tender: k of its members' workstations together."""
    test: bool = False
    """The platform's test tender: deposits there are tries, never offers, and swept."""
    grace_minutes: int | None = None
    """Where the law provides one: after the deadline, a deposit completed within this many
    minutes is on time when it matches a commitment made before the deadline."""


def _recipient(assigned: AssignedKeyPair, *, agent: bool = False) -> RecipientOut:
    return RecipientOut(
        holder=assigned.holder.email if agent and assigned.holder else None,
        designation=assigned.designation,
        role=assigned.role,
        common_name=assigned.common_name,
        fingerprint_sha256=assigned.fingerprint_sha256,
        not_after=assigned.not_after,
        certificate_pem=assigned.certificate_pem,
        issued_by_platform=assigned.issued_by_platform,
    )


def _out(tender: Tender, viewer: User) -> TenderOut:
    threshold = tender.commission_threshold
    return TenderOut(
        commission=None if threshold is None else CommissionOut(threshold=threshold),
        id=tender.id,
        reference=tender.reference,
        title=tender.title,
        organisation=tender.organisation.name,
        service=tender.service.name,
        deadline=tender.deadline,
        opening_window_ends=services.opening_window_end(tender),
        envelopes=list(tender.envelopes),
        status=tender.status,
        launched_at=tender.launched_at,
        closed_at=tender.closed_at,
        cancelled_at=tender.cancelled_at,
        cancel_reason=tender.cancel_reason,
        key_pairs=[
            _recipient(assigned, agent=viewer.is_agent)
            for assigned in tender.assigned_key_pairs.all()
        ],
        max_deposit_bytes=services.max_deposit_bytes(tender),
        test=tender.is_test,
        rsf=services.tender_rsf(tender),
        grace_minutes=tender.grace_minutes,
    )


@router.get("", response=responses({200: list[TenderOut]}, 403))
def list_tenders(request: HttpRequest) -> list[TenderOut]:
    """Agents: the tenders of their services. Companies: the launched tenders."""
    viewer = actor(request)
    found = services.visible_tenders(viewer).prefetch_related("assigned_key_pairs__holder")
    return [_out(tender, viewer) for tender in found]


class TenderIn(Schema):
    service: uuid.UUID
    reference: str = Field(max_length=64)
    title: str = Field(max_length=300)
    deadline: dt.datetime
    envelopes: list[str] = Field(default=["candidature", "offre"], max_length=3)
    grace_minutes: int | None = Field(default=None, ge=1, le=services.MAX_GRACE_MINUTES)
    """Only where the law provides it (Spain: 24 hours): a deposit completed this long after
    the deadline is on time when it matches a commitment made before it. Off by default."""


@router.post("", response=responses({201: TenderOut}, 400, 403, 404, 409))
def create(request: HttpRequest, payload: TenderIn) -> Status[TenderOut]:
    """A draft tender of a service."""
    viewer = actor(request)
    tender = services.create_tender(
        viewer,
        service_id=payload.service,
        reference=payload.reference,
        title=payload.title,
        deadline=payload.deadline,
        envelopes=payload.envelopes,
        now=now(),
        grace_minutes=payload.grace_minutes,
    )
    return Status(201, _out(tender, viewer))


class TestKeyOut(Schema):
    tender: uuid.UUID
    reference: str
    certificate_pem: str
    private_key_pem: str
    """PKCS#8, unencrypted: published on purpose, it opens test deposits and nothing else."""
    pfx_password: str
    """The password of the same key pair as a .pfx, on the pages."""
    deposit_hours: int
    """Test deposits are swept this many hours after they were received."""


@router.get("/{tender}/test-key", auth=None, response=responses({200: TestKeyOut}, 404))
def test_key(request: HttpRequest, tender: str) -> TestKeyOut:
    """A test tender's key pair, private key included: published so that every company
    can open its own test deposits (no login needed)."""
    published = testing.test_key_of(tender)
    return TestKeyOut(
        tender=published.tender_id,
        reference=published.tender.reference,
        certificate_pem=published.tender.assigned_key_pairs.get().certificate_pem,
        private_key_pem=published.private_key_pem,
        pfx_password=testing.PFX_PASSWORD,
        deposit_hours=settings.SCELLE_TEST_DEPOSIT_HOURS,
    )


@router.get("/{tender}", response=responses({200: TenderOut}, 403, 404))
def show(request: HttpRequest, tender: str) -> TenderOut:
    """One tender, with its key pairs once launched."""
    viewer = actor(request)
    return _out(services.tender_for(viewer, tender), viewer)


class LaunchIn(Schema):
    key_pairs: list[str] = Field(min_length=1, max_length=50)
    """Designations of the personal key pairs chosen; backup ones are added."""
    commission_threshold: int | None = Field(None, ge=2, le=255)
    """k: the chosen key pairs become a commission's members, k of whom must take part to
    open (each held by another agent allowed to open)."""


@router.post("/{tender}/launch", response=responses({200: TenderOut}, 400, 403, 404, 409))
def launch(request: HttpRequest, tender: str, payload: LaunchIn) -> TenderOut:
    """Publish a draft and assign its key pairs, definitively."""
    viewer = actor(request)
    launched = services.launch_tender(
        viewer,
        tender,
        payload.key_pairs,
        commission_threshold=payload.commission_threshold,
        now=now(),
    )
    return _out(launched, viewer)


@router.post("/{tender}/close", response=responses({200: TenderOut}, 403, 404, 409))
def close(request: HttpRequest, tender: str) -> TenderOut:
    """End a tender, after its deadline: its key pairs may then be deleted."""
    viewer = actor(request)
    return _out(services.close_tender(viewer, tender, now=now()), viewer)


class CancelIn(Schema):
    reason: str = Field(min_length=1, max_length=services.MAX_REASON_LENGTH)
    """Why the tender stops early; kept in the audit log."""


@router.post("/{tender}/cancel", response=responses({200: TenderOut}, 400, 403, 404, 409))
def cancel(request: HttpRequest, tender: str, payload: CancelIn) -> TenderOut:
    """Stop a launched tender before its deadline: it takes no deposit any more."""
    viewer = actor(request)
    closed = services.cancel_tender(viewer, tender, reason=payload.reason, now=now())
    return _out(closed, viewer)


@router.get("/{tender}/recipients", response=responses({200: list[RecipientOut]}, 403, 404, 409))
def recipients(request: HttpRequest, tender: str) -> list[RecipientOut]:
    """The certificates every envelope must be encrypted to."""
    return [_recipient(assigned) for assigned in services.recipients(actor(request), tender)]
