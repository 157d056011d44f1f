"""Opening (DESIGN.md, rule 7): after the deadline, an agent allowed to open sees who
deposited, downloads the sealed envelopes to the workstation that decrypts them, and
reports each one opened; every download and every opening is an audit event. The
platform never holds a key nor a plaintext: opening happens on the workstation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from scelle.core.errors import N_, InvalidInputError, NotFoundError, RuleViolationError
from scelle.platform.accounts.models import Permission, User
from scelle.platform.audit.anchors import checkpoint
from scelle.platform.audit.services import record
from scelle.platform.clock import local_time
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Deposit, Envelope
from scelle.platform.deposits.services import deposit_of_my_company
from scelle.platform.tenders.models import Tender
from scelle.platform.tenders.services import tender_for


def test_deposit_of_my_company(actor: User, deposit_id: uuid.UUID | str) -> Deposit:
    """A test deposit of the actor's company, which it may open itself at any time; an
    offer opens only on the buyer's workstation, after the deadline (rule 7)."""
    deposit = deposit_of_my_company(actor, deposit_id)
    if not deposit.tender.is_test:
        raise RuleViolationError(
            N_(
                "only a test deposit opens in the page; an offer opens on the buyer's "
                "workstation after the deadline"
            )
        )
    return deposit


def check_openable(tender: Tender, now: dt.datetime) -> None:
    """Opening starts after the deadline, on a launched tender (rule 7)."""
    if tender.status == Tender.Status.DRAFT:
        raise RuleViolationError(
            N_("the tender {reference} is not launched"), reference=tender.reference
        )
    if now < tender.deadline:
        raise RuleViolationError(
            N_("the envelopes of {reference} open after its deadline"),
            hint=N_("Companies may still be depositing."),
            reference=tender.reference,
        )


def deposits_of_tender(actor: User, reference: str) -> QuerySet[Deposit]:
    """Who deposited, when, sizes, late or not: for agents allowed to open (never content).
    At the test tender, a company sees its own test deposits, and only those."""
    tender = tender_for(actor, reference)
    if tender.is_test:
        found = Deposit.objects.filter(tender=tender, bidder_id=actor.organisation_id)
    else:
        found = Deposit.objects.filter(tender=tender_for(actor, reference, Permission.Name.OPEN))
    return found.select_related("bidder", "tender").prefetch_related("envelopes")


def _envelope_to_open(
    actor: User, deposit_id: uuid.UUID | str, kind: str, *, now: dt.datetime
) -> Envelope:
    """An envelope the actor may download and open (rule 7): after the deadline, `open`;
    a test deposit, by its own company at any time."""
    try:
        deposit = Deposit.objects.select_related("tender").get(id=deposit_id)
    except (Deposit.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such deposit")) from None
    if deposit.tender.is_test:
        if deposit.bidder_id != actor.organisation_id:
            raise NotFoundError(N_("no such deposit"))
    else:
        tender_for(actor, str(deposit.tender_id), Permission.Name.OPEN)
    if now < deposit.tender.deadline and not deposit.tender.is_test:
        raise RuleViolationError(
            N_("the envelopes of {reference} stay sealed until its deadline, {deadline}"),
            reference=deposit.tender.reference,
            deadline=local_time(deposit.tender.deadline),
        )
    try:
        return deposit.envelopes.select_related("deposit__tender", "deposit__bidder").get(kind=kind)
    except Envelope.DoesNotExist:
        raise NotFoundError(N_("this deposit has no envelope {kind!r}"), kind=kind) from None


def envelope_for_download(
    actor: User, deposit_id: uuid.UUID | str, kind: str, *, start: int, now: dt.datetime
) -> tuple[Envelope, BinaryIO]:
    """The envelope and its file, open at byte `start`; every download is an audit event,
    written once the file is open (a file gone from the disk records nothing)."""
    found = _envelope_to_open(actor, deposit_id, kind, now=now)
    if not 0 <= start <= found.size:
        raise InvalidInputError(
            N_("the envelope has {size} bytes; cannot start at {start}"),
            size=found.size,
            start=start,
        )
    try:
        handle = storage.path_of(found.storage_name).open("rb")
    except OSError:
        raise RuleViolationError(
            N_("the platform cannot read this envelope's file: tell its operator")
        ) from None
    try:
        handle.seek(start)
        with transaction.atomic():
            record(
                "deposits.envelope.downloaded",
                actor=actor.email,
                target=found.deposit,
                organisation_id=actor.organisation_id,
                details={
                    "envelope": kind, "from_byte": start, "bidder": found.deposit.bidder.name
                },
                now=now,
            )  # fmt: skip
    except BaseException:
        handle.close()
        raise
    return found, handle


def report_opened(
    actor: User, deposit_id: uuid.UUID | str, kind: str, *, files: int, now: dt.datetime
) -> None:
    """Record that the actor opened an envelope on their workstation (rule 7: who, when)."""
    found = _envelope_to_open(actor, deposit_id, kind, now=now)
    test = found.deposit.tender.is_test
    with transaction.atomic():
        record(
            "opening.test_envelope.opened" if test else "opening.envelope.opened",
            actor=actor.email,
            target=found.deposit,
            organisation_id=actor.organisation_id,
            details={
                "tender": found.deposit.tender.reference,
                "bidder": found.deposit.bidder.name,
                "envelope": kind,
                "files": files,
                "late": found.deposit.late,
            },
            now=now,
        )
        if test:  # a company's try: nothing to anchor
            return
        checkpoint(now=now, reason="opening")  # in the same transaction: both or neither
