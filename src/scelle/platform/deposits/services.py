"""Deposits (DESIGN.md, rules 5 and 6): uploads, then one transaction that makes a deposit.

A company's user uploads each envelope's ciphertext (tus); an upload may
start only while the tender is published and before its deadline. Once every
envelope is complete, `finalise_deposit` hashes what was stored, and in one
transaction records the deposit, marks it late when the deadline has passed,
signs its receipt and writes the audit events. Before that, nothing of it
appears anywhere as a deposit.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils.translation import gettext

from scelle.core.certs import load_certificate
from scelle.core.errors import (
    N_,
    DecryptionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    TooLargeError,
)
from scelle.core.receipt import (
    CommitmentReceipt,
    Receipt,
    ReceiptCommission,
    ReceivedEnvelope,
    WithdrawalReceipt,
    body_sha256,
    sign_document,
    sign_receipt,
    with_proof,
)
from scelle.core.recipients import read_recipients
from scelle.platform.accounts.models import Organisation, User
from scelle.platform.audit.anchors import audit_head
from scelle.platform.audit.services import record
from scelle.platform.clock import local_time
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Commitment, Deposit, Envelope, Upload, Withdrawal
from scelle.platform.keypairs.authority import platform_authority, receipt_signer
from scelle.platform.mail import services as mail
from scelle.platform.tenders.models import Tender
from scelle.platform.tenders.services import (
    commission_members,
    max_deposit_bytes,
    tender_for,
    tender_rsf,
)
from scelle.platform.transparency import services as transparency

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _require_bidder(actor: User) -> None:
    if actor.is_agent:
        raise PermissionDeniedError(N_("only companies deposit; buyers' agents cannot"))


def _open_for_deposits(tender: Tender) -> None:
    if tender.status != Tender.Status.PUBLISHED:
        raise RuleViolationError(
            N_("the tender {reference} is {status}: it takes no deposit"),
            reference=tender.reference,
            status=tender.get_status_display(),
        )


def _too_large(tender: Tender, size: int) -> TooLargeError:
    limit = max_deposit_bytes(tender)
    if tender.is_test:
        return TooLargeError(
            N_("a test deposit holds at most {limit}; this one would hold {size}"),
            hint=N_("Try with smaller files: the test checks the way, not the size."),
            limit=_gib(limit),
            size=_gib(size),
        )
    return TooLargeError(
        N_("a deposit holds at most {limit}; this one would hold {size}"),
        limit=_gib(limit),
        size=_gib(size),
    )


def _gib(size: int) -> str:
    if size < 1 << 30:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / (1 << 30):.1f} GiB"


def create_upload(
    actor: User, *, reference: str, envelope: str, length: int, now: dt.datetime
) -> Upload:
    """Open a tus upload for one envelope of a deposit (rule 5: before the deadline).

    A company has at most SCELLE_MAX_OPEN_UPLOADS uploads in progress, announcing
    at most SCELLE_MAX_ANNOUNCED_BYTES to one tender: over that, the upload is
    refused before any file exists. The file and the row are made together: a
    failure of either leaves neither.

    Long because each limit on an upload is its own refusal, all checked before anything is
    written.
    """
    _require_bidder(actor)
    tender = tender_for(actor, reference)
    _open_for_deposits(tender)
    if now >= tender.deadline and not _in_grace(tender, actor, now):
        raise RuleViolationError(
            N_("the deadline of {reference} ({deadline}) has passed: deposits are closed"),
            reference=tender.reference,
            deadline=local_time(tender.deadline),
        )
    if envelope not in tender.envelopes:
        raise InvalidInputError(
            N_("{reference} has no envelope {kind!r}; its envelopes are {kinds}"),
            reference=tender.reference,
            kind=envelope,
            kinds=", ".join(tender.envelopes),
        )
    if length < 0:
        raise InvalidInputError(N_("an upload's length cannot be negative"))
    if length > max_deposit_bytes(tender):
        raise _too_large(tender, length)
    upload = Upload(
        tender=tender,
        bidder_id=actor.organisation_id,
        user=actor,
        envelope=envelope,
        length=length,
        created_at=now,
    )
    created = False
    try:
        with transaction.atomic():
            # The company's row locked: two creations at once count each other
            # (PostgreSQL; SQLite's write transactions are one at a time anyway).
            Organisation.objects.select_for_update().filter(id=actor.organisation_id).exists()
            _check_quotas(actor, tender, length)
            storage.create(upload.file_name)
            created = True
            upload.save()
            record(
                "deposits.upload.created",
                actor=actor.email,
                target=upload,
                organisation_id=actor.organisation_id,
                details={"tender": tender.reference, "envelope": envelope, "length": length},
                now=now,
            )
    except BaseException:
        if created:
            storage.remove(upload.file_name)  # no file without its row
        raise
    return upload


def _check_quotas(actor: User, tender: Tender, length: int) -> None:
    in_progress = Upload.objects.filter(bidder_id=actor.organisation_id)
    limit = settings.SCELLE_MAX_OPEN_UPLOADS
    if in_progress.count() >= limit:
        raise RuleViolationError(
            N_(
                "your company has {limit} uploads in progress, the most the platform "
                "keeps at once: finish a deposit or abandon an upload first"
            ),
            hint=N_(
                "Depositing again resumes an interrupted deposit; uploads left alone for "
                "{hours} h are removed."
            ),
            limit=limit,
            hours=settings.SCELLE_UPLOAD_IDLE_HOURS,
        )
    if tender.is_test:
        _check_test_deposits_kept(actor)
    announced = in_progress.filter(tender=tender).aggregate(total=Sum("length"))["total"] or 0
    allowed = settings.SCELLE_MAX_ANNOUNCED_BYTES
    if announced + length > allowed:
        raise TooLargeError(
            N_(
                "your company's uploads in progress to {reference} would announce "
                "{size}, more than the {allowed} the platform takes for one tender: "
                "finish a deposit or abandon an upload first"
            ),
            reference=tender.reference,
            size=_gib(announced + length),
            allowed=_gib(allowed),
        )


def _check_test_deposits_kept(actor: User) -> None:
    kept = Deposit.objects.filter(bidder_id=actor.organisation_id, tender__is_test=True)
    limit = settings.SCELLE_TEST_DEPOSITS_KEPT
    received = list(kept.order_by("received_at").values_list("received_at", flat=True)[:limit])
    if len(received) >= limit:
        hours = dt.timedelta(hours=settings.SCELLE_TEST_DEPOSIT_HOURS)
        raise RuleViolationError(
            N_(
                "your company already has {limit} test deposits, the most the platform "
                "keeps: the oldest goes on {when}"
            ),
            limit=limit,
            when=local_time(received[0] + hours),
        )


def upload_for(actor: User, upload_id: uuid.UUID | str) -> Upload:
    """An upload of the actor's company; anyone else's is "not found"."""
    _require_bidder(actor)
    try:
        return Upload.objects.select_related("tender").get(
            id=upload_id, bidder_id=actor.organisation_id
        )
    except (Upload.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such upload")) from None


def begin_append(
    actor: User,
    upload_id: uuid.UUID | str,
    *,
    offset: int,
    count: int,
    checksum: tuple[str, bytes] | None,
) -> storage.Appender:
    """Start storing `count` bytes at `offset` of one of the actor's uploads (tus PATCH):
    `offset` must be what the platform holds. No database write: the file is the
    progress. The caller writes the body into the appender and finishes it."""
    upload = upload_for(actor, upload_id)
    _open_for_deposits(upload.tender)
    return storage.appender(
        upload.file_name, offset, count, length=upload.length, checksum=checksum
    )


def append_to_upload(
    actor: User,
    upload_id: uuid.UUID | str,
    *,
    offset: int,
    body: storage.BodyStream,
    count: int,
    checksum: tuple[str, bytes] | None,
) -> int:
    """`begin_append`, with the body read from a stream; returns the bytes held now."""
    appender = begin_append(actor, upload_id, offset=offset, count=count, checksum=checksum)
    return storage.fill(appender, body)


def upload_offset(actor: User, upload_id: uuid.UUID | str) -> tuple[int, int]:
    """(bytes held, bytes announced) of one of the actor's uploads (tus HEAD)."""
    upload = upload_for(actor, upload_id)
    return storage.size_of(upload.file_name), upload.length


def terminate_upload(actor: User, upload_id: uuid.UUID | str, *, now: dt.datetime) -> None:
    """Abandon an upload (tus termination): its bytes are removed.

    Serialised with `finalise_deposit`, which locks the same rows: an upload
    already made into a deposit is not terminated (its file is the deposit's
    envelope now), and exactly one of the two answers succeeds.
    """
    upload = upload_for(actor, upload_id)
    file_name = upload.file_name  # delete() clears the id it is made of
    with transaction.atomic():
        if not Upload.objects.select_for_update().filter(id=upload.id).exists():
            raise RuleViolationError(
                N_("this upload was made into a deposit meanwhile: it cannot be abandoned")
            )
        record(
            "deposits.upload.terminated",
            actor=actor.email,
            target=upload,
            organisation_id=actor.organisation_id,
            details={"tender": upload.tender.reference, "envelope": upload.envelope},
            now=now,
        )
        upload.delete()
    storage.remove(file_name)


@dataclass(frozen=True)
class SweepReport:
    """What one sweep removed."""

    idle: int
    """Uploads that had received nothing for SCELLE_UPLOAD_IDLE_HOURS."""
    closed: int
    """Uploads to tenders that take no deposit any more (closed, cancelled)."""
    orphans: int
    """Files in the envelopes folder with neither an upload nor an envelope (a crash)."""
    busy: int
    """Uploads left for the next sweep: a chunk was arriving."""


ORPHAN_GRACE = dt.timedelta(hours=1)
"""A file younger than this may be an upload whose row is being written: left alone."""


def sweep_uploads(*, now: dt.datetime) -> SweepReport:
    """Remove the uploads that will never become a deposit, each with an audit event:
    idle for SCELLE_UPLOAD_IDLE_HOURS (their last byte, else their creation), or to a
    tender that takes no deposit any more. Then the files that belong to nothing.

    An upload whose chunk is arriving is left for the next sweep; one that a
    finalisation takes meanwhile is the deposit's, and kept (the row is locked as
    `terminate_upload` locks it).
    """
    idle_after = dt.timedelta(hours=settings.SCELLE_UPLOAD_IDLE_HOURS)
    counts = {"idle": 0, "closed": 0, "busy": 0}
    for upload in Upload.objects.select_related("tender").order_by("created_at"):
        if upload.tender.status != Tender.Status.PUBLISHED:
            reason = "closed"
        elif now - max(upload.created_at, storage.last_written(upload.file_name)) >= idle_after:
            reason = "idle"
        else:
            continue
        with storage.quiet(upload.file_name) as quiet:
            if not quiet:
                counts["busy"] += 1
                continue
            with transaction.atomic():
                if not Upload.objects.select_for_update().filter(id=upload.id).exists():
                    continue  # made into a deposit meanwhile
                record(
                    "deposits.upload.swept",
                    actor="platform",
                    target=upload,
                    organisation_id=upload.bidder_id,
                    details={
                        "tender": upload.tender.reference,
                        "envelope": upload.envelope,
                        "reason": reason,
                        "bytes_held": storage.held_or_zero(upload.file_name),
                    },
                    now=now,
                )
                file_name = upload.file_name  # delete() clears the id it is made of
                upload.delete()
            storage.remove(file_name)
        counts[reason] += 1
    return SweepReport(orphans=_remove_orphans(now), **counts)


def sweep_test_deposits(*, now: dt.datetime) -> int:
    """Remove the test deposits received SCELLE_TEST_DEPOSIT_HOURS ago or more, rows and
    files, each with an audit event; how many went. A test deposit is a try, never an
    offer: nobody but its company could ever open it."""
    before = now - dt.timedelta(hours=settings.SCELLE_TEST_DEPOSIT_HOURS)
    swept = 0
    for deposit in Deposit.objects.filter(tender__is_test=True, received_at__lte=before):
        with transaction.atomic():
            envelopes = list(Envelope.objects.select_for_update().filter(deposit=deposit))
            record(
                "deposits.test_deposit.swept",
                actor="platform",
                target=deposit,
                organisation_id=deposit.bidder_id,
                details={"received_at": deposit.received_at.isoformat()},
                now=now,
            )
            Envelope.objects.filter(deposit=deposit).delete()
            deposit.delete()
        for envelope in envelopes:
            storage.remove(envelope.storage_name)
        swept += 1
    return swept


def _remove_orphans(now: dt.datetime) -> int:
    """Files older than ORPHAN_GRACE that no upload and no envelope names (left by a
    crash between a file and its row): removed."""
    removed = 0
    for name, written in storage.files():
        if now - written < ORPHAN_GRACE:
            continue
        upload_id = name.removesuffix(".p7m")
        if Upload.objects.filter(id=upload_id).exists():
            continue
        if Envelope.objects.filter(storage_name=name).exists():
            continue
        storage.remove(name)
        removed += 1
    return removed


def finalise_deposit(
    actor: User,
    reference: str,
    uploads: Sequence[tuple[str, uuid.UUID | str]],
    *,
    expected_sha256: dict[str, str] | None = None,
    now: dt.datetime,
) -> Deposit:
    """Make the deposit out of one complete upload per envelope of the tender (rule 6).

    `expected_sha256` ({kind: hex}) is what the company sent: a stored envelope
    that hashes otherwise is refused, and nothing is recorded.

    Long because the deposit, its envelopes and its receipt are made together, then
    recorded in one transaction.
    """
    _require_bidder(actor)
    tender = tender_for(actor, reference)
    _open_for_deposits(tender)
    found = _complete_uploads(actor, tender, uploads)
    # Hash what is on disk (from the running hash when the chunks came in order),
    # sign the receipt: both before the transaction, which holds the write lock.
    hashed = _hashes(found, expected_sha256 or {})
    recipients = {upload.id: _recipients_of(tender, upload) for upload in found}
    matched = matching_commitment(
        tender, actor.organisation_id, {u.envelope: hashed[u.id] for u in found}
    )
    late = now > tender.deadline
    by_grace = bool(
        late
        and matched is not None
        and tender.grace_minutes
        and now <= tender.deadline + dt.timedelta(minutes=tender.grace_minutes)
    )
    deposit = Deposit(
        tender=tender,
        bidder_id=actor.organisation_id,
        user=actor,
        received_at=now,
        late=late and not by_grace,
        commitment=matched,
        by_grace=by_grace,
    )
    envelopes = [
        Envelope(
            deposit=deposit,
            kind=upload.envelope,
            size=upload.length,
            sha256=hashed[upload.id],
            storage_name=upload.file_name,
            upload_id=upload.id,
            recipients=recipients[upload.id],
        )
        for upload in sorted(found, key=lambda u: tender.envelopes.index(u.envelope))
    ]
    signed = _signed_receipt(actor, tender, deposit, envelopes)
    if not tender.is_test:  # an offer is under retention before it is recorded
        for upload in found:
            storage.retain(upload.file_name, storage.retention_end(tender.deadline))
    with transaction.atomic():
        locked = Upload.objects.select_for_update().filter(id__in=[u.id for u in found])
        if locked.count() != len(found):
            raise RuleViolationError(N_("these uploads were already made into a deposit"))
        if tender.is_test:  # uploads opened together may all end here: counted again
            _check_test_deposits_kept(actor)
        deposit.receipt = _logged(signed, now=now)
        deposit.save()
        Envelope.objects.bulk_create(envelopes)
        locked.delete()
        record(
            "deposits.deposit.received",
            actor=actor.email,
            target=deposit,
            organisation_id=tender.organisation_id,
            details={
                "tender": tender.reference,
                "bidder": actor.organisation.name,
                "late": deposit.late,
                "commitment": None if matched is None else str(matched.id),
                "by_grace": by_grace,
                "test": tender.is_test,
                "envelopes": [
                    {"kind": e.kind, "size": e.size, "sha256": e.sha256} for e in envelopes
                ],
            },
            now=now,
        )
        mail.deposit_received(
            actor, deposit_id=str(deposit.id), reference=tender.reference, title=tender.title,
            buyer=tender.organisation.name, received_at=now, late=deposit.late,
            deadline=tender.deadline, envelopes=[(e.kind, e.size, e.sha256) for e in envelopes],
            receipt=deposit.receipt, now=now,
        )  # fmt: skip
    return deposit


def _complete_uploads(
    actor: User, tender: Tender, uploads: Sequence[tuple[str, uuid.UUID | str]]
) -> list[Upload]:
    """The company's uploads, one per envelope of the tender, within the size allowed."""
    kinds = [kind for kind, _upload in uploads]
    if sorted(kinds) != sorted(tender.envelopes):
        raise InvalidInputError(
            N_("a deposit to {reference} holds exactly one of each envelope: {kinds}"),
            reference=tender.reference,
            kinds=", ".join(tender.envelopes),
        )
    found = []
    for kind, upload_id in uploads:
        upload = upload_for(actor, upload_id)
        if upload.tender_id != tender.id or upload.envelope != kind:
            raise InvalidInputError(
                N_("the upload for {kind} belongs to another envelope"), kind=kind
            )
        found.append(upload)
    total = sum(upload.length for upload in found)
    if total > max_deposit_bytes(tender):
        raise _too_large(tender, total)
    return found


def _hashes(found: list[Upload], expected_sha256: dict[str, str]) -> dict[uuid.UUID, str]:
    """Each stored envelope's SHA-256, which must be the one the company sent."""
    hashed = {}
    for upload in found:
        try:
            sha256 = storage.sha256_of(upload.file_name, upload.length)
        except RuleViolationError as error:
            raise RuleViolationError(
                N_("the envelope {kind}: {problem}"),
                kind=upload.envelope,
                problem=error.localized(gettext)[0],  # the request's language, as the outer
            ) from None
        wanted = expected_sha256.get(upload.envelope)
        if wanted is not None and wanted.lower() != sha256:
            raise RuleViolationError(
                N_(
                    "the envelope {kind} the platform holds is not the one sent (SHA-256 "
                    "differs): nothing was deposited"
                ),
                hint=N_("Abandon this deposit and deposit again."),
                kind=upload.envelope,
            )
        hashed[upload.id] = sha256
    return hashed


def _signed_receipt(
    actor: User, tender: Tender, deposit: Deposit, envelopes: list[Envelope]
) -> bytes:
    """The accusé de réception: what was received, when, to whom it is sealed, signed."""
    receipt = Receipt(
        platform=settings.SCELLE_PLATFORM_NAME,
        tender=tender.reference,
        bidder=actor.organisation.name,
        deposit=str(deposit.id),
        received_at=deposit.received_at,
        late=deposit.late,
        envelopes=tuple(
            ReceivedEnvelope(e.kind, e.size, e.sha256, tuple(e.recipients)) for e in envelopes
        ),
        rsf=tender_rsf(tender),
        audit_head=audit_head(),
        test=tender.is_test,
        log=transparency.log_key() if transparency.enabled() else None,
        commitment=None
        if deposit.commitment is None
        else body_sha256(json.loads(deposit.commitment.receipt)["commitment"]),
        grace=deposit.by_grace,
        commission=None
        if tender.commission_threshold is None
        else ReceiptCommission(
            tender.commission_threshold,
            tuple(sorted(a.fingerprint_sha256 for a in commission_members(tender))),
        ),
    )
    return sign_receipt(receipt, receipt_signer(), [platform_authority().certificate])


def _logged(signed: bytes, *, now: dt.datetime) -> str:
    """The signed receipt with its proof of inclusion in the transparency log, once
    logged (in the deposit's transaction: no deposit, no entry)."""
    body = json.loads(signed)["receipt"]
    proof = transparency.log_receipt(body_sha256(body), "deposit", now=now)
    return (signed if proof is None else with_proof(signed, proof)).decode()


def _recipients_of(tender: Tender, upload: Upload) -> list[str]:
    """The fingerprints of the certificates an uploaded envelope is encrypted to.

    Read from the envelope's header; each must be one of the tender's key pairs
    (an envelope that another key could open is refused, whoever sealed it), and a
    commission's shares must go to its members, with its k, as the receipt will say.
    """
    assigned = [
        (load_certificate(a.certificate_pem.encode()), a.fingerprint_sha256)
        for a in tender.assigned_key_pairs.all()
    ]
    try:
        with storage.open_envelope(upload.file_name) as handle:
            found = read_recipients(handle)
    except OSError:
        raise RuleViolationError(
            N_("the upload for {kind} was abandoned meanwhile: nothing was deposited"),
            kind=upload.envelope,
        ) from None
    except (DecryptionError, InvalidInputError):
        raise RuleViolationError(
            N_(
                "the envelope {kind} is not an envelope the platform can accept: nothing "
                "was deposited"
            ),
            kind=upload.envelope,
        ) from None
    fingerprints, shared = [], set()
    for recipient in found:
        matching = [fp for certificate, fp in assigned if recipient.matches(certificate)]
        if not matching:
            raise RuleViolationError(
                N_(
                    "the envelope {kind} is encrypted to a recipient outside the tender's "
                    "set ({recipient}): nothing was deposited"
                ),
                kind=upload.envelope,
                recipient=recipient.description,
            )
        fingerprints.append(matching[0])
        if recipient.threshold is not None:
            shared.add((matching[0], recipient.threshold))
    members = {a.fingerprint_sha256 for a in commission_members(tender)}
    if shared != {(fp, tender.commission_threshold) for fp in members}:
        raise RuleViolationError(
            N_(
                "the envelope {kind} does not share its key among the tender's commission "
                "as launched (its members, {threshold} of them needed): nothing was deposited"
            ),
            kind=upload.envelope,
            threshold=tender.commission_threshold or 0,
        )
    return sorted(set(fingerprints))


MAX_COMMITMENTS = 20
"""Commitments one company may make to one tender: enough to change its mind, not a flood."""


def commit_envelopes(
    actor: User, reference: str, hashes: dict[str, str], *, now: dt.datetime
) -> Commitment:
    """A timestamped commitment (engagement horodaté): before the deadline, the SHA-256 of
    each sealed envelope the company is about to upload, signed and logged. A request of a
    few hundred bytes, which goes through when a large upload does not."""
    _require_bidder(actor)
    tender = tender_for(actor, reference)
    _open_for_deposits(tender)
    if now > tender.deadline:
        raise RuleViolationError(
            N_("the deadline of {reference} has passed ({deadline}): a commitment must come "
               "before it"),
            reference=tender.reference,
            deadline=local_time(tender.deadline),
        )  # fmt: skip
    if sorted(hashes) != sorted(tender.envelopes) or not all(
        _SHA256.fullmatch(value) for value in hashes.values()
    ):
        raise InvalidInputError(
            N_("a commitment to {reference} names the SHA-256 of each of its envelopes: {kinds}"),
            reference=tender.reference,
            kinds=", ".join(tender.envelopes),
        )
    envelopes = {kind: hashes[kind].lower() for kind in tender.envelopes}
    made = Commitment(tender=tender, bidder_id=actor.organisation_id, user=actor, at=now,
                      envelopes=envelopes)  # fmt: skip
    body = CommitmentReceipt(
        platform=settings.SCELLE_PLATFORM_NAME,
        tender=tender.reference,
        bidder=actor.organisation.name,
        commitment=str(made.id),
        committed_at=now,
        envelopes=tuple(envelopes.items()),
        log=transparency.log_key() if transparency.enabled() else None,
    ).to_json()
    signed = sign_document(body, receipt_signer(), [platform_authority().certificate],
                           name="commitment")  # fmt: skip
    with transaction.atomic():
        mine = Commitment.objects.filter(tender=tender, bidder_id=actor.organisation_id)
        if mine.count() >= MAX_COMMITMENTS:
            raise RuleViolationError(
                N_("your company made {most} commitments to {reference} already: no more"),
                most=MAX_COMMITMENTS,
                reference=tender.reference,
            )
        proof = transparency.log_receipt(body_sha256(body), "commitment", now=now)
        made.receipt = (signed if proof is None else with_proof(signed, proof)).decode()
        made.save()
        record(
            "deposits.commitment.made",
            actor=actor.email,
            target=made,
            organisation_id=tender.organisation_id,
            details={"tender": tender.reference, "bidder": actor.organisation.name,
                     "envelopes": envelopes},
            now=now,
        )  # fmt: skip
    return made


def _in_grace(tender: Tender, actor: User, now: dt.datetime) -> bool:
    """Within the tender's grace window, for a company that committed before the deadline:
    it may still upload (on time only if what it sends matches its commitment)."""
    if not tender.grace_minutes or now > tender.deadline + dt.timedelta(
        minutes=tender.grace_minutes
    ):
        return False
    return Commitment.objects.filter(
        tender=tender, bidder_id=actor.organisation_id, at__lte=tender.deadline
    ).exists()


def committed_bidders(tender: Tender) -> set[uuid.UUID]:
    """The companies that made a commitment to the tender before its deadline."""
    found = Commitment.objects.filter(tender=tender, at__lte=tender.deadline)
    return set(found.values_list("bidder_id", flat=True))


def matching_commitment(
    tender: Tender, bidder_id: uuid.UUID | None, hashes: dict[str, str]
) -> Commitment | None:
    """The company's latest commitment made before the deadline whose hashes are exactly
    these envelopes'."""
    found = Commitment.objects.filter(tender=tender, bidder_id=bidder_id,
                                      at__lte=tender.deadline).order_by("-at")  # fmt: skip
    wanted = {kind: value.lower() for kind, value in hashes.items()}
    return next((c for c in found if c.envelopes == wanted), None)


def withdraw_deposit(actor: User, deposit_id: uuid.UUID | str, *, now: dt.datetime) -> Withdrawal:
    """Withdraw one of the company's deposits before the deadline (retrait): a signed,
    logged withdrawal receipt naming the deposit's receipt; the opening skips it."""
    deposit = deposit_of_my_company(actor, deposit_id)
    tender = deposit.tender
    _open_for_deposits(tender)
    if now > tender.deadline:
        raise RuleViolationError(
            N_("the deadline of {reference} has passed ({deadline}): its deposits can no "
               "longer be withdrawn"),
            reference=tender.reference,
            deadline=local_time(tender.deadline),
        )  # fmt: skip
    body = WithdrawalReceipt(
        platform=settings.SCELLE_PLATFORM_NAME,
        tender=tender.reference,
        bidder=actor.organisation.name,
        deposit=str(deposit.id),
        deposit_receipt=body_sha256(json.loads(deposit.receipt)["receipt"]),
        withdrawn_at=now,
        log=transparency.log_key() if transparency.enabled() else None,
    ).to_json()
    signed = sign_document(body, receipt_signer(), [platform_authority().certificate],
                           name="withdrawal")  # fmt: skip
    with transaction.atomic():
        Deposit.objects.select_for_update().filter(id=deposit.id).first()
        if Withdrawal.objects.filter(deposit=deposit).exists():
            raise RuleViolationError(N_("this deposit was already withdrawn"))
        proof = transparency.log_receipt(
            body_sha256(body), "withdrawal", now=now, deposit=body["deposit_receipt"]
        )
        made = Withdrawal.objects.create(
            deposit=deposit,
            user=actor,
            at=now,
            receipt=(signed if proof is None else with_proof(signed, proof)).decode(),
        )
        record(
            "deposits.deposit.withdrawn",
            actor=actor.email,
            target=deposit,
            organisation_id=tender.organisation_id,
            details={"tender": tender.reference, "bidder": actor.organisation.name},
            now=now,
        )
    return made


def withdrawal_of_my_company(actor: User, deposit_id: uuid.UUID | str) -> Withdrawal:
    deposit = deposit_of_my_company(actor, deposit_id)
    withdrawal: Withdrawal | None = Withdrawal.objects.filter(deposit=deposit).first()
    if withdrawal is None:
        raise NotFoundError(N_("this deposit was not withdrawn"))
    return withdrawal


def deposit_of_my_company(actor: User, deposit_id: uuid.UUID | str) -> Deposit:
    """One of the company's deposits, with its signed receipt, as often as asked."""
    try:
        return deposits_of_my_company(actor).get(id=deposit_id)
    except (Deposit.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such deposit")) from None


def deposits_of_my_company(actor: User) -> QuerySet[Deposit]:
    _require_bidder(actor)
    return (
        Deposit.objects.filter(bidder_id=actor.organisation_id)
        .select_related("tender", "withdrawal", "bidder")
        .prefetch_related("envelopes")
    )
