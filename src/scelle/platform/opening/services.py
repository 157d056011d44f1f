"""Opening (DESIGN.md, rule 7): after the deadline, an agent allowed to open sees who
deposited, downloads the sealed envelopes to the workstation that decrypts them, and
reports each one opened; every download and every opening is an audit event. The
platform never holds a key nor a plaintext: opening happens on the workstation."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet

from scelle.core.errors import (
    N_,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from scelle.core.receipt import body_sha256
from scelle.platform.accounts.models import Permission, User
from scelle.platform.accounts.services import service_for
from scelle.platform.audit.anchors import checkpoint
from scelle.platform.audit.services import Recorded, record, record_many
from scelle.platform.clock import local_time
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Deposit, Envelope, Withdrawal
from scelle.platform.deposits.services import deposit_of_my_company
from scelle.platform.tenders.models import Tender
from scelle.platform.tenders.services import tender_for
from scelle.platform.transparency import services as transparency


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
    return deposits_in(actor, tender_for(actor, reference))


def deposits_in(actor: User, tender: Tender) -> QuerySet[Deposit]:
    """`deposits_of_tender` for a tender the actor already found (`tender_for`): the
    pages have it in hand, and need not look it up again."""
    if tender.is_test:
        found = Deposit.objects.filter(tender=tender, bidder_id=actor.organisation_id)
    elif not actor.is_agent:
        raise PermissionDeniedError(N_("only the buyer's agents can do this"))
    else:
        service_for(actor, tender.service_id, Permission.Name.OPEN)
        found = Deposit.objects.filter(tender=tender)
    return found.select_related("bidder", "tender", "withdrawal").prefetch_related("envelopes")


def register_of(actor: User, tender: Tender) -> QuerySet[Deposit]:
    """`deposits_in` without its related rows, oldest first: the page's register reads
    the columns it shows (`tenders.views.register_rows`), one query for the deposits of a page."""
    return (
        deposits_in(actor, tender)
        .select_related(None)
        .prefetch_related(None)
        .order_by("received_at", "id")
    )


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
    if Withdrawal.objects.filter(deposit=deposit).exists():
        raise RuleViolationError(N_("this deposit was withdrawn by its company: it is not opened"))
    try:
        return deposit.envelopes.select_related("deposit__tender", "deposit__bidder").get(kind=kind)
    except Envelope.DoesNotExist:
        raise NotFoundError(N_("this deposit has no envelope {kind!r}"), kind=kind) from None


def _envelopes_to_open(
    actor: User, wanted: Sequence[tuple[uuid.UUID | str, str, int]], *, now: dt.datetime
) -> list[tuple[Envelope, str, int]]:
    """`_envelope_to_open` for several envelopes: the same checks, with one query for the
    envelopes and one permission check per tender, in the order asked."""
    ids = set()
    for deposit_id, _kind, _files in wanted:
        try:
            ids.add(uuid.UUID(str(deposit_id)))
        except ValueError:
            raise NotFoundError(N_("no such deposit")) from None
    envelopes = {
        (envelope.deposit_id, envelope.kind): envelope
        for envelope in Envelope.objects.filter(deposit_id__in=ids).select_related(
            "deposit__tender", "deposit__bidder"
        )
    }
    deposits = {deposit_id: envelope.deposit for (deposit_id, _kind), envelope in envelopes.items()}
    allowed: set[uuid.UUID] = set()
    found = []
    for deposit_id, kind, files in wanted:
        deposit = deposits.get(uuid.UUID(str(deposit_id)))
        if deposit is None:
            raise NotFoundError(N_("no such deposit"))
        # The same checks as for one envelope: once per tender, once per deposit of a test
        # tender (where each company may report only its own).
        checked = deposit.id if deposit.tender.is_test else deposit.tender_id
        if checked not in allowed:
            _envelope_to_open(actor, deposit.id, kind, now=now)
            allowed.add(checked)
        envelope = envelopes.get((deposit.id, kind))
        if envelope is None:
            raise NotFoundError(N_("this deposit has no envelope {kind!r}"), kind=kind)
        found.append((envelope, kind, files))
    return found


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
        handle = storage.open_envelope(found.storage_name)
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


def _log_opening(found: Sequence[tuple[Envelope, str, int]], *, now: dt.datetime) -> None:
    """The opening in the transparency log: which deposits, by their receipts' hashes."""
    by_tender: dict[str, set[str]] = {}
    for envelope, _kind, _files in found:
        deposit = envelope.deposit
        if not deposit.tender.is_test:
            body = json.loads(deposit.receipt)["receipt"]
            by_tender.setdefault(deposit.tender.reference, set()).add(body_sha256(body))
    for reference, receipts in by_tender.items():
        transparency.log_opening(reference, sorted(receipts), now=now)


MAX_REPORTED_AT_ONCE = 100
"""Envelopes one report may name: an opening's workers report together (group commit)."""


def report_opened(
    actor: User, deposit_id: uuid.UUID | str, kind: str, *, files: int, now: dt.datetime
) -> None:
    """Record that the actor opened an envelope on their workstation (rule 7: who, when)."""
    report_opened_together(actor, [(deposit_id, kind, files)], now=now)


def report_opened_together(
    actor: User, opened: Sequence[tuple[uuid.UUID | str, str, int]], *, now: dt.datetime
) -> None:
    """Record envelopes opened on the actor's workstation (rule 7), each as its own event,
    all or none, under one checkpoint: an opening's envelopes are reported as they come,
    and those that come together cost the platform one transaction and one signature."""
    if not 1 <= len(opened) <= MAX_REPORTED_AT_ONCE:
        raise InvalidInputError(
            N_("a report names 1 to {most} envelopes"), most=MAX_REPORTED_AT_ONCE
        )
    found = _envelopes_to_open(actor, opened, now=now)
    events = [
        Recorded(
            "opening.test_envelope.opened" if envelope.deposit.tender.is_test
            else "opening.envelope.opened",
            envelope.deposit,
            actor.organisation_id,
            {
                "tender": envelope.deposit.tender.reference,
                "bidder": envelope.deposit.bidder.name,
                "envelope": kind,
                "files": files,
                "late": envelope.deposit.late,
            },
        )
        for envelope, kind, files in found
    ]  # fmt: skip
    with transaction.atomic():
        record_many(events, actor=actor.email, now=now)
        if any(not envelope.deposit.tender.is_test for envelope, _kind, _files in found):
            # A company's test deposits have nothing to anchor; in the same transaction as
            # the events: both or neither.
            _log_opening(found, now=now)
            checkpoint(now=now, reason="opening")
