"""Routes of deposits: finalise a deposit from its uploads; a company's deposits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.core.errors import N_, InvalidInputError
from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.deposits import services
from scelle.platform.deposits.models import Deposit
from scelle.platform.opening import services as opening
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
    test: bool = False
    """To the platform's test tender: a try, never an offer; swept after a set time."""
    withdrawn_at: dt.datetime | None = None
    """When its company withdrew it before the deadline: it is not opened."""
    withdrawal: str | None = None
    """The signed withdrawal receipt, when withdrawn."""
    commitment: Literal["matched", "differs", "none"] | None = None
    """To the buyer: "matched" when the company committed, before the deadline, to
    exactly these envelopes' SHA-256; "differs" when it committed to others only; "none"."""
    by_grace: bool = False
    """Completed after the deadline, within the tender's grace window, matching a
    commitment: on time by the tender's rule."""


class ReceiptOut(DepositOut):
    receipt: str
    """The signed receipt document (JSON), to keep: `scelle receipts verify` checks it."""


def deposit_out(deposit: Deposit, committed: set[uuid.UUID] | None = None) -> DepositOut:
    """The deposit as the API shows it; `committed` (the companies that made a commitment
    to its tender before the deadline) for the buyer's register."""
    withdrawal = getattr(deposit, "withdrawal", None)
    state: Literal["matched", "differs", "none"] | None = None
    if deposit.commitment_id is not None:
        state = "matched"
    elif committed is not None:
        state = "differs" if deposit.bidder_id in committed else "none"
    return DepositOut(
        commitment=state,
        by_grace=deposit.by_grace,
        withdrawn_at=None if withdrawal is None else withdrawal.at,
        withdrawal=None if withdrawal is None else withdrawal.receipt,
        id=deposit.id,
        tender=deposit.tender.reference,
        bidder=deposit.bidder.name,
        received_at=deposit.received_at,
        late=deposit.late,
        test=deposit.tender.is_test,
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
    return Status(201, ReceiptOut(**deposit_out(deposit).model_dump(), receipt=deposit.receipt))


@router.get("/deposits", response=responses({200: list[DepositOut]}, 403))
def my_deposits(request: HttpRequest) -> list[DepositOut]:
    """A company's deposits, every tender."""
    return [deposit_out(deposit) for deposit in services.deposits_of_my_company(actor(request))]


@router.get("/deposits/{deposit_id}", response=responses({200: ReceiptOut}, 403, 404))
def my_deposit(request: HttpRequest, deposit_id: uuid.UUID) -> ReceiptOut:
    """One of a company's deposits with its signed receipt, fetched again at will."""
    deposit = services.deposit_of_my_company(actor(request), deposit_id)
    return ReceiptOut(**deposit_out(deposit).model_dump(), receipt=deposit.receipt)


class WithdrawalOut(Schema):
    deposit: uuid.UUID
    withdrawn_at: dt.datetime
    receipt: str
    """The signed withdrawal receipt (JSON), to keep."""


@router.post(
    "/deposits/{deposit_id}/withdrawal", response=responses({201: WithdrawalOut}, 403, 404, 409)
)
def withdraw(request: HttpRequest, deposit_id: uuid.UUID) -> Status[WithdrawalOut]:
    """Withdraw one of the company's deposits before the deadline; it is not opened."""
    made = services.withdraw_deposit(actor(request), deposit_id, now=now())
    return Status(201, WithdrawalOut(deposit=made.deposit_id, withdrawn_at=made.at,
                                     receipt=made.receipt))  # fmt: skip


# On the path of making a deposit (one URL, two methods): the opening's register.
@router.get("/tenders/{tender}/deposits", response=responses({200: list[DepositOut]}, 403, 404))
def tender_deposits(request: HttpRequest, tender: str) -> list[DepositOut]:
    """Who deposited to a tender, when, sizes, late or not, withdrawn or not, committed or
    not; never the content."""
    found = list(opening.deposits_of_tender(actor(request), tender))
    committed = services.committed_bidders(found[0].tender) if found else set()
    return [deposit_out(deposit, committed) for deposit in found]


class HashedEnvelope(Schema):
    kind: str = Field(max_length=20)
    sha256: str = Field(pattern="^[0-9a-fA-F]{64}$")


class CommitmentIn(Schema):
    envelopes: list[HashedEnvelope] = Field(min_length=1, max_length=3)


class CommitmentOut(Schema):
    id: uuid.UUID
    tender: str
    committed_at: dt.datetime
    envelopes: dict[str, str]
    """{kind: SHA-256}."""
    receipt: str
    """The signed commitment receipt (JSON), to keep."""


@router.post(
    "/tenders/{tender}/commitments", response=responses({201: CommitmentOut}, 400, 403, 404, 409)
)
def commit(request: HttpRequest, tender: str, payload: CommitmentIn) -> Status[CommitmentOut]:
    """Before the deadline, register the SHA-256 of each sealed envelope about to be
    uploaded: a signed, logged commitment receipt (engagement horodaté)."""
    hashes = {e.kind: e.sha256 for e in payload.envelopes}
    if len(hashes) != len(payload.envelopes):
        raise InvalidInputError(N_("each envelope is named once"))
    made = services.commit_envelopes(actor(request), tender, hashes, now=now())
    return Status(201, CommitmentOut(id=made.id, tender=made.tender.reference,
                                     committed_at=made.at, envelopes=made.envelopes,
                                     receipt=made.receipt))  # fmt: skip
