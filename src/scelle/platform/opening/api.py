"""Routes of the opening (rule 7): envelopes downloaded to the opening workstation, and
each envelope reported opened. The deposits register (`GET /tenders/{tender}/deposits`)
is routed with the deposits, on the same path as making one, from these services."""

from __future__ import annotations

import re
import uuid

from django.http import FileResponse, HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.opening import services
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
