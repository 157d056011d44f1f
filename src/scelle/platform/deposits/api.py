"""Routes of deposits: finalise a deposit from its uploads; list deposits."""

from __future__ import annotations

import datetime as dt
import uuid

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.platform.api import actor
from scelle.platform.clock import now
from scelle.platform.deposits import services
from scelle.platform.deposits.models import Deposit
from scelle.platform.schemas import responses

router = Router(tags=["deposits"])


class EnvelopeOut(Schema):
    kind: str
    size: int
    sha256: str


class DepositOut(Schema):
    id: uuid.UUID
    tender: str
    bidder: str
    received_at: dt.datetime
    late: bool
    envelopes: list[EnvelopeOut]


class ReceiptOut(DepositOut):
    receipt: str
    """The signed receipt document (JSON), to keep: `scelle receipts verify` checks it."""


def _out(deposit: Deposit) -> DepositOut:
    return DepositOut(
        id=deposit.id,
        tender=deposit.tender.reference,
        bidder=deposit.bidder.name,
        received_at=deposit.received_at,
        late=deposit.late,
        envelopes=[
            EnvelopeOut(kind=e.kind, size=e.size, sha256=e.sha256) for e in deposit.envelopes.all()
        ],
    )


class UploadedEnvelope(Schema):
    kind: str = Field(max_length=20)
    upload: uuid.UUID


class FinaliseIn(Schema):
    envelopes: list[UploadedEnvelope] = Field(min_length=1, max_length=3)


@router.post("/tenders/{reference}/deposits", response=responses({201: ReceiptOut}, 403, 404, 409))
def finalise(request: HttpRequest, reference: str, payload: FinaliseIn) -> Status[ReceiptOut]:
    """Make a deposit of complete uploads, one per envelope; returns the signed receipt."""
    deposit = services.finalise_deposit(
        actor(request),
        reference,
        [(envelope.kind, envelope.upload) for envelope in payload.envelopes],
        now=now(),
    )
    return Status(201, ReceiptOut(**_out(deposit).model_dump(), receipt=deposit.receipt))


@router.get("/deposits", response=responses({200: list[DepositOut]}, 403))
def my_deposits(request: HttpRequest) -> list[DepositOut]:
    """A company's deposits, every tender."""
    return [_out(deposit) for deposit in services.deposits_of_my_company(actor(request))]


@router.get("/tenders/{reference}/deposits", response=responses({200: list[DepositOut]}, 403, 404))
def tender_deposits(request: HttpRequest, reference: str) -> list[DepositOut]:
    """Who deposited to a tender, when, sizes, late or not; never the content."""
    return [_out(deposit) for deposit in services.deposits_of_tender(actor(request), reference)]
