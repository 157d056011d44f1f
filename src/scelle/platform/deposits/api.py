"""Routes of deposits: finalise a deposit from its uploads; list deposits."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.deposits import services
from scelle.platform.deposits.models import Deposit
from scelle.platform.schemas import responses

router = Router(tags=["deposits"])


class EnvelopeOut(Schema):
    kind: str
    size: int
    sha256: str
    recipients: list[str]
    """SHA-256 fingerprints of the certificates it is encrypted to."""
    upload: uuid.UUID | None
    """The tus upload it came through."""


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
            EnvelopeOut(
                kind=e.kind,
                size=e.size,
                sha256=e.sha256,
                recipients=list(e.recipients),
                upload=e.upload_id,
            )
            for e in deposit.envelopes.all()
        ],
    )


class UploadedEnvelope(Schema):
    kind: str = Field(max_length=20)
    upload: uuid.UUID
    sha256: str | None = Field(default=None, pattern="^[0-9a-fA-F]{64}$")
    """The SHA-256 of the ciphertext sent; the platform refuses a stored envelope
    that does not match it."""


class FinaliseIn(Schema):
    envelopes: list[UploadedEnvelope] = Field(min_length=1, max_length=3)


@router.post(
    "/tenders/{tender}/deposits", response=responses({201: ReceiptOut}, 403, 404, 409, 413)
)
def finalise(request: HttpRequest, tender: str, payload: FinaliseIn) -> Status[ReceiptOut]:
    """Make a deposit of complete uploads, one per envelope; returns the signed receipt."""
    deposit = services.finalise_deposit(
        actor(request),
        tender,
        [(envelope.kind, envelope.upload) for envelope in payload.envelopes],
        expected_sha256={e.kind: e.sha256 for e in payload.envelopes if e.sha256},
        now=now(),
    )
    return Status(201, ReceiptOut(**_out(deposit).model_dump(), receipt=deposit.receipt))


_RANGE = re.compile(r"bytes=([0-9]{1,15})-")
DOWNLOAD_BLOCK_BYTES = 1 << 20


@router.get(
    "/deposits/{deposit_id}/envelopes/{kind}",
    response=responses({200: None, 206: None}, 403, 404, 409),
)
def download(request: HttpRequest, deposit_id: uuid.UUID, kind: str) -> FileResponse:
    """The sealed envelope, streamed (`Range: bytes=N-` resumes); after the deadline only."""
    wanted = _RANGE.fullmatch(request.headers.get("Range", "").strip())
    start = int(wanted.group(1)) if wanted else 0
    found, handle = services.envelope_for_download(  # the handle: closed by FileResponse
        actor(request), deposit_id, kind, start=start, now=now()
    )
    response = FileResponse(handle, content_type="application/pkcs7-mime")
    # The server offers no wsgi.file_wrapper: Django then reads the file in
    # block_size pieces, 4 KiB by default, which cost more CPU than the copy.
    response.block_size = DOWNLOAD_BLOCK_BYTES
    response["X-Envelope-SHA256"] = found.sha256
    if wanted:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{max(found.size - 1, start)}/{found.size}"
    return response


class OpenedIn(Schema):
    files: int = Field(ge=0)
    """How many files the envelope held."""


@router.post(
    "/deposits/{deposit_id}/envelopes/{kind}/opened",
    response=responses({204: None}, 403, 404, 409),
)
def opened(
    request: HttpRequest, deposit_id: uuid.UUID, kind: str, payload: OpenedIn
) -> Status[None]:
    """Record that this envelope was opened on the agent's workstation."""
    services.report_opened(actor(request), deposit_id, kind, files=payload.files, now=now())
    return Status(204, None)


@router.get("/deposits", response=responses({200: list[DepositOut]}, 403))
def my_deposits(request: HttpRequest) -> list[DepositOut]:
    """A company's deposits, every tender."""
    return [_out(deposit) for deposit in services.deposits_of_my_company(actor(request))]


@router.get("/deposits/{deposit_id}", response=responses({200: ReceiptOut}, 403, 404))
def my_deposit(request: HttpRequest, deposit_id: uuid.UUID) -> ReceiptOut:
    """One of a company's deposits with its signed receipt, fetched again at will."""
    deposit = services.deposit_of_my_company(actor(request), deposit_id)
    return ReceiptOut(**_out(deposit).model_dump(), receipt=deposit.receipt)


@router.get("/tenders/{tender}/deposits", response=responses({200: list[DepositOut]}, 403, 404))
def tender_deposits(request: HttpRequest, tender: str) -> list[DepositOut]:
    """Who deposited to a tender, when, sizes, late or not; never the content."""
    return [_out(deposit) for deposit in services.deposits_of_tender(actor(request), tender)]
