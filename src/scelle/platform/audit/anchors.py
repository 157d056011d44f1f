"""Anchors of the audit log: signed checkpoints of its head, and receipts that carry it.

The hash chain alone shows an edited or removed event, but not a log cut
short at its end, nor one rewritten with every later hash recomputed by
someone holding the database. An anchor pins "event N has hash H" outside
the chain's own arithmetic:
- a checkpoint, signed with the platform's receipt key at least every hour
  and after every launch, opening and close, naming the previous checkpoint,
  and itself recorded as an event of the log;
- a deposit receipt, which the company keeps: no operator can reach it.
`verify_anchors` checks the log against every checkpoint and any receipts
given, and names each anchor that disagrees.

What anchors cannot show: a rewrite of events after the last anchor, by
someone who also removes the checkpoints after the change (receipts kept by
companies still show it, for events before their deposit); and anything
signed with a stolen signing key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from scelle.core import tlog
from scelle.core.errors import ReceiptError
from scelle.core.receipt import AuditHead, sign_document, verify_document, verify_receipt
from scelle.platform.audit.models import Checkpoint, Event
from scelle.platform.audit.services import PLATFORM_ACTOR, lock_chain, record
from scelle.platform.clock import local_time
from scelle.platform.keypairs.authority import platform_authority, receipt_signer
from scelle.platform.transparency import services as transparency

CHECKPOINT_ACTION = "audit.checkpoint.signed"
CHECKPOINT_EVERY = dt.timedelta(hours=1)


def audit_head() -> AuditHead | None:
    """The log's last event now, or None for an empty log."""
    last = Event.objects.order_by("-id").values_list("id", "hash").first()
    return AuditHead(last[0], last[1]) if last else None


def _document_digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def checkpoint(*, now: dt.datetime, reason: str) -> Checkpoint | None:
    """Sign the log's head, unless nothing happened since the last checkpoint."""
    with transaction.atomic():
        lock_chain()
        head = audit_head()
        last = Checkpoint.objects.order_by("-id").first()
        if head is None:
            return None
        if last is not None:
            newer = Event.objects.filter(id__gt=last.sequence).exclude(action=CHECKPOINT_ACTION)
            if not newer.exists():
                return None  # only the last checkpoint's own event since
        body = {
            "type": "scelle-audit-checkpoint",
            "platform": settings.SCELLE_PLATFORM_NAME,
            "at": now.astimezone(dt.UTC).isoformat(),
            "reason": reason,
            "head": head.to_json(),
            "previous": None if last is None else _document_digest(last.document),
        }
        document = sign_document(
            body, receipt_signer(), [platform_authority().certificate], name="checkpoint"
        ).decode()
        made = Checkpoint.objects.create(
            at=now, sequence=head.sequence, hash=head.hash, document=document
        )
        record(
            CHECKPOINT_ACTION,
            actor=PLATFORM_ACTOR,
            target=made,
            details={"checkpoint": made.id, "sequence": head.sequence, "hash": head.hash},
            now=now,
        )
        transparency.append(
            [tlog.entry("audit-checkpoint", sequence=head.sequence, hash=head.hash,
                        document=_document_digest(document))],
            now=now,
        )  # fmt: skip
    return made


def checkpoint_if_due(*, now: dt.datetime) -> Checkpoint | None:
    """The hourly checkpoint: sign the head if the last checkpoint is an hour old."""
    last = Checkpoint.objects.order_by("-id").values_list("at", flat=True).first()
    if last is not None and now - last < CHECKPOINT_EVERY:
        return None
    return checkpoint(now=now, reason="hourly")


@dataclass(frozen=True)
class AnchorReport:
    """What `verify_anchors` found."""

    checkpoints: int
    receipts: int
    problems: list[str]
    """One sentence per anchor that disagrees with the log."""


def _against_log(head: AuditHead, anchor: str, last_id: int) -> str | None:
    found = Event.objects.filter(id=head.sequence).values_list("hash", flat=True).first()
    if found is None:
        if head.sequence > last_id:
            return (
                f"{anchor} anchors event #{head.sequence}, but the log ends at #{last_id}: "
                "it was cut short"
            )
        return f"{anchor} anchors event #{head.sequence}, which is missing: it was removed"
    if found != head.hash:
        return (
            f"{anchor} anchors event #{head.sequence} with another hash: "
            "the log was rewritten up to there"
        )
    return None


def verify_anchors(receipts: Sequence[tuple[str, bytes]] = ()) -> AnchorReport:
    """Check the log against every checkpoint and the given receipts ((name, bytes), …)."""
    authority = platform_authority().certificate
    last_id = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    problems: list[str] = []
    previous: str | None = None
    seen = set()
    count = 0
    for made in Checkpoint.objects.order_by("id").iterator(chunk_size=500):
        count += 1
        seen.add(made.id)
        anchor = f"checkpoint #{made.id} ({local_time(made.at)})"
        try:
            body = verify_document(
                made.document.encode(),
                name="checkpoint",
                what="checkpoint",
                trusted_authority=authority,
            ).body
            head = AuditHead.from_json(body["head"])
            linked = body["previous"]
        except (ReceiptError, KeyError, TypeError) as error:
            problems.append(f"{anchor} does not verify: {getattr(error, 'message', 'damaged')}")
            continue
        if head is None or (head.sequence, head.hash) != (made.sequence, made.hash):
            problems.append(f"{anchor} says otherwise than its signed document")
            continue
        if linked != previous:
            problems.append(f"the checkpoint before {anchor} was removed or altered")
        previous = _document_digest(made.document)
        problem = _against_log(head, anchor, last_id)
        if problem:
            problems.append(problem)
    for event_id, details in Event.objects.filter(action=CHECKPOINT_ACTION).values_list(
        "id", "details"
    ):
        wanted = details.get("checkpoint") if isinstance(details, dict) else None
        if wanted not in seen:
            problems.append(f"checkpoint #{wanted}, recorded by event #{event_id}, is missing")
    for name, data in receipts:
        anchor = f"the receipt {name}"
        try:
            receipt = verify_receipt(data, trusted_authority=authority).receipt
        except ReceiptError as error:
            problems.append(f"{anchor} does not verify: {error.message}")
            continue
        if receipt.audit_head is None:
            continue  # made before receipts carried the head
        problem = _against_log(receipt.audit_head, anchor, last_id)
        if problem:
            problems.append(problem)
    return AnchorReport(count, len(receipts), problems)
