"""Routes of the opening (rule 7): envelopes downloaded to the opening workstation, and
each envelope reported opened. The deposits register (`GET /tenders/{tender}/deposits`)
is routed with the deposits, on the same path as making one, from these services."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.core.errors import N_, InvalidInputError
from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.opening import commission, services
from scelle.platform.schemas import responses

router = Router(tags=["opening"])


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


class OpenedEnvelopeIn(Schema):
    deposit: uuid.UUID
    kind: str = Field(max_length=40)
    files: int = Field(ge=0)


class OpenedTogetherIn(Schema):
    envelopes: list[OpenedEnvelopeIn] = Field(
        min_length=1, max_length=services.MAX_REPORTED_AT_ONCE
    )


@router.post("/opened-envelopes", response=responses({204: None}, 400, 403, 404, 409))
def opened_together(request: HttpRequest, payload: OpenedTogetherIn) -> Status[None]:
    """Record that these envelopes were opened on the agent's workstation: all or none
    (the opening's workers report what they opened together)."""
    services.report_opened_together(
        actor(request),
        [(item.deposit, item.kind, item.files) for item in payload.envelopes],
        now=now(),
    )
    return Status(204, None)


# --- a commission's opening (opening/commission.py) --------------------------------------


class MemberOut(Schema):
    designation: str
    fingerprint_sha256: str
    holder: str | None
    """The member's agent (e-mail)."""
    opener: bool
    joined_at: dt.datetime | None
    """When they took part (the opener: when they started); None while they have not."""
    shares: int
    """Envelopes whose share they relayed to the opener."""


class CommissionOpeningOut(Schema):
    reference: str
    threshold: int
    started: bool
    started_at: dt.datetime | None
    opener: str | None
    """The opener's member key pair (designation); their certificate is the tender's."""
    opener_fingerprint_sha256: str | None
    members: list[MemberOut]


def _state_out(state: commission.OpeningState) -> CommissionOpeningOut:
    opening = state.opening
    return CommissionOpeningOut(
        reference=state.tender.reference,
        threshold=state.tender.commission_threshold or 0,
        started=opening is not None,
        started_at=opening.started_at if opening else None,
        opener=opening.opener.designation if opening else None,
        opener_fingerprint_sha256=opening.opener.fingerprint_sha256 if opening else None,
        members=[
            MemberOut(
                designation=m.member.designation,
                fingerprint_sha256=m.member.fingerprint_sha256,
                holder=m.member.holder.email if m.member.holder else None,
                opener=m.opener,
                joined_at=m.joined_at,
                shares=m.shares,
            )
            for m in state.members
        ],
    )


@router.get(
    "/tenders/{tender}/commission", response=responses({200: CommissionOpeningOut}, 403, 404, 409)
)
def commission_state(request: HttpRequest, tender: str) -> CommissionOpeningOut:
    """Who opens the tender, which members took part and when, how many shares each
    relayed: for the buyer's agents allowed to open."""
    return _state_out(commission.opening_state(actor(request), tender))


@router.post(
    "/tenders/{tender}/commission", response=responses({200: CommissionOpeningOut}, 403, 404, 409)
)
def commission_start(request: HttpRequest, tender: str) -> CommissionOpeningOut:
    """Start the commission's opening, after the deadline, as its opener (a member): the
    other members' shares will be encrypted to your certificate."""
    user = actor(request)
    commission.start_opening(user, tender, now=now())
    return _state_out(commission.opening_state(user, tender))


@router.post(
    "/tenders/{tender}/commission/participation",
    response=responses({200: CommissionOpeningOut}, 403, 404, 409),
)
def commission_take_part(request: HttpRequest, tender: str) -> CommissionOpeningOut:
    """Take part in the commission's opening (a member other than the opener)."""
    user = actor(request)
    commission.take_part(user, tender, now=now())
    return _state_out(commission.opening_state(user, tender))


BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class RelayedShareIn(Schema):
    deposit: uuid.UUID
    kind: str = Field(max_length=40)
    relayed: str = Field(
        min_length=4, max_length=4 * (commission.MAX_RELAYED_BYTES // 3 + 1), pattern=BASE64
    )
    """Base64 of the share encrypted to the opener's certificate."""


class RelayIn(Schema):
    shares: list[RelayedShareIn] = Field(min_length=1, max_length=commission.MAX_SHARES_AT_ONCE)


class RelayedOut(Schema):
    relayed: int
    """Shares new to the platform (those it had already are kept as they were)."""


@router.post(
    "/tenders/{tender}/commission/shares",
    response=responses({200: RelayedOut}, 400, 403, 404, 409),
)
def commission_relay(request: HttpRequest, tender: str, payload: RelayIn) -> RelayedOut:
    """Your shares, decrypted on your workstation and encrypted to the opener's certificate."""
    shares = [(item.deposit, item.kind, _base64(item.relayed)) for item in payload.shares]
    return RelayedOut(relayed=commission.relay_shares(actor(request), tender, shares, now=now()))


class ShareOut(Schema):
    id: int
    deposit: uuid.UUID
    kind: str
    member: str
    """The relaying member's certificate (SHA-256 fingerprint)."""
    relayed: str


class SharesOut(Schema):
    shares: list[ShareOut]
    more: bool


@router.get(
    "/tenders/{tender}/commission/shares",
    response=responses({200: SharesOut}, 400, 403, 404, 409),
)
def commission_shares(request: HttpRequest, tender: str, after: int = 0) -> SharesOut:
    """The shares relayed to you, the opener, past the id `after`."""
    found, more = commission.shares_for_opener(
        actor(request), tender, after=max(0, min(after, 1 << 62))
    )
    return SharesOut(
        shares=[
            ShareOut(
                id=share.id,
                deposit=share.envelope.deposit_id,
                kind=share.envelope.kind,
                member=share.member.fingerprint_sha256,
                relayed=base64.b64encode(bytes(share.relayed)).decode(),
            )
            for share in found
        ],
        more=more,
    )


class EnvelopeHeaderOut(Schema):
    id: int
    deposit: uuid.UUID
    kind: str
    recipient_infos: str | None
    """Base64 of the envelope's RecipientInfos (DER); None when its file cannot be read."""


class EnvelopeHeadersOut(Schema):
    headers: list[EnvelopeHeaderOut]
    more: bool


@router.get(
    "/tenders/{tender}/commission/headers",
    response=responses({200: EnvelopeHeadersOut}, 400, 403, 404, 409),
)
def commission_headers(request: HttpRequest, tender: str, after: int = 0) -> EnvelopeHeadersOut:
    """Each envelope's recipients, for a member taking part: their workstation decrypts
    its shares from them, past the envelope id `after`."""
    found, more = commission.envelope_headers(
        actor(request), tender, after=max(0, min(after, 1 << 62)), now=now()
    )
    return EnvelopeHeadersOut(
        headers=[
            EnvelopeHeaderOut(
                id=envelope.id,
                deposit=envelope.deposit_id,
                kind=envelope.kind,
                recipient_infos=None if infos is None else base64.b64encode(infos).decode(),
            )
            for envelope, infos in found
        ],
        more=more,
    )


class CommissionRequestOut(Schema):
    tender: uuid.UUID
    reference: str
    opener: str
    """The opener's member key pair (designation)."""
    started_by: str
    started_at: dt.datetime


@router.get("/commission-requests", response=responses({200: list[CommissionRequestOut]}, 403))
def commission_requests(request: HttpRequest) -> list[CommissionRequestOut]:
    """The commissions' openings you, a member, have not taken part in yet (your dashboard
    and your assistant's window show them)."""
    return [
        CommissionRequestOut(
            tender=state.tender.id,
            reference=state.tender.reference,
            opener=state.opening.opener.designation,
            started_by=state.opening.started_by.email,
            started_at=state.opening.started_at,
        )
        for state in commission.pending_for(actor(request))
        if state.opening is not None
    ]


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(N_("a relayed share is not base64")) from None
