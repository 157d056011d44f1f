"""E-mails where the platform's users expect them, in French then English (the platform
knows no user's language outside a request):

- a company's deposit receipt, to the user who deposited, the signed receipt attached;
- an agent's remote job that failed (reported so, or never taken), to that agent;
- a key pair whose certificate ends within SCELLE_KEY_EXPIRY_WARNING_DAYS while an
  unclosed tender uses it, to its service's key managers, once;
- a tender whose deadline has passed, with its number of deposits, to its creator
  and its service's openers, once.

A mail is written to the outbox (`OutgoingMail`) in the transaction of what it tells
(a deposit rolled back sends nothing), under a key that makes it one per event and
person. The housekeeping sends what is waiting through Django's mail backend (SMTP,
SCELLE_SMTP_HOST) and tries again, up to MAX_ATTEMPTS, what the server did not take.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import translation
from django.utils.translation import gettext as _

from scelle.platform.accounts.models import Permission, User
from scelle.platform.clock import local_time
from scelle.platform.mail.models import OutgoingMail

MAX_ATTEMPTS = 20
"""Sends tried for one mail (one each housekeeping round, a minute apart) before it is
left in the outbox, its last error kept."""
BATCH = 100
DEADLINES_LOOKED_BACK = dt.timedelta(days=7)
"""A deadline passed longer ago than this gets no mail (a platform started afresh does
not announce its whole history)."""

_log = logging.getLogger(__name__)


def _both(write: Callable[[], tuple[str, list[str]]]) -> tuple[str, str]:
    """(subject, body) written in French, then in English."""
    written = {}
    for language in ("fr", "en"):
        with translation.override(language):
            written[language] = write()
    subject = f"{written['fr'][0]} / {written['en'][0]}"
    body = "\n".join(written["fr"][1]) + "\n\n— English —\n\n" + "\n".join(written["en"][1])
    return subject, body + "\n"


def queue(
    key: str,
    to: str,
    write: Callable[[], tuple[str, list[str]]],
    *,
    now: dt.datetime,
    attachment: tuple[str, str] | None = None,
) -> bool:
    """Put a mail in the outbox (in the caller's transaction); False if the mail of `key`
    was already there."""
    if OutgoingMail.objects.filter(key=key[:200]).exists():
        return False  # told already: a read, no write (the housekeeping asks every round)
    subject, body = _both(write)
    name, content = attachment or ("", "")
    try:
        with transaction.atomic():
            OutgoingMail.objects.create(
                key=key[:200], to=to, subject=subject[:300], body=body,
                attachment_name=name, attachment=content, created_at=now,
            )  # fmt: skip
    except IntegrityError:
        return False
    return True


def send_pending(*, now: dt.datetime) -> int:
    """Send what the outbox holds, oldest first; how many the server took. A mail the
    server refuses (or a server down) stays, tried again next time."""
    sent = 0
    waiting = OutgoingMail.objects.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
    ids = list(waiting.order_by("id").values_list("id", flat=True)[:BATCH])
    if not ids:
        return 0
    connection = get_connection(fail_silently=False)
    try:
        for mail_id in ids:
            with transaction.atomic():
                # Several hosts send: each mail is taken by one (rows locked, others skipped).
                found = (
                    OutgoingMail.objects.select_for_update(skip_locked=True)
                    .filter(id=mail_id, sent_at__isnull=True)
                    .first()
                )
                if found is None:
                    continue
                message = EmailMessage(
                    found.subject, found.body, settings.DEFAULT_FROM_EMAIL, [found.to],
                    connection=connection,
                )  # fmt: skip
                if found.attachment_name:
                    # Bytes, base64 on the wire: the signed receipt arrives byte for byte.
                    content = found.attachment.encode("utf-8")
                    message.attach(found.attachment_name, content, "application/json")
                found.attempts += 1
                try:
                    message.send()
                except (smtplib.SMTPException, OSError) as error:
                    found.last_error = f"{type(error).__name__}: {error}"[:1000]
                    found.save(update_fields=["attempts", "last_error"])
                    _log.warning("mail %s to %s not sent: %s", found.key, found.to, error)
                    if isinstance(error, OSError):
                        break  # the server is unreachable: the rest next time
                    continue
                found.sent_at = now
                found.save(update_fields=["attempts", "sent_at", "last_error"])
                sent += 1
    finally:
        connection.close()
    return sent


# --- what is told ---------------------------------------------------------------------


def deposit_received(
    user: User,
    *,
    deposit_id: str,
    reference: str,
    title: str,
    buyer: str,
    received_at: dt.datetime,
    late: bool,
    deadline: dt.datetime,
    envelopes: Iterable[tuple[str, int, str]],
    receipt: str,
    now: dt.datetime,
) -> None:
    """The deposit receipt, to the user who deposited (in the deposit's transaction)."""
    listed = list(envelopes)

    def write() -> tuple[str, list[str]]:
        lines = [
            _("{bidder} deposited a bid to {reference} ({title}) of {buyer}, received on "
              "{when}.").format(bidder=user.organisation.name, reference=reference,
                                title=title, buyer=buyer, when=local_time(received_at)),
            "",
        ]  # fmt: skip
        if late:
            lines += [_("Late: completed after the deadline ({deadline}).").format(
                deadline=local_time(deadline)), ""]  # fmt: skip
        lines += [
            _("- {kind}: {size} bytes, SHA-256 {sha256}").format(kind=k, size=s, sha256=h)
            for k, s, h in listed
        ]
        lines += [
            "",
            _("The signed receipt is attached: keep it; `scelle receipts verify` checks it."),
            _("The bid stays sealed: nobody, the platform's operators included, can read it "
              "before the deadline."),
        ]  # fmt: skip
        return _("Deposit receipt: {reference}").format(reference=reference), lines

    queue(
        f"deposit:{deposit_id}", user.email, write, now=now,
        attachment=(f"accuse-de-reception-{deposit_id}.json", receipt),
    )  # fmt: skip


def job_failed(
    agent: User,
    *,
    job_id: str,
    kind: object,
    created_at: dt.datetime,
    message: str,
    now: dt.datetime,
) -> None:
    """A remote job of the agent's failed (in the transaction that says so); `kind` its
    label (a lazy translation)."""

    def write() -> tuple[str, list[str]]:
        label = str(kind)
        return _("Remote job failed: {kind}").format(kind=label), [
            _("The job “{kind}” given on {when} failed: {message}").format(
                kind=label, when=local_time(created_at), message=message
            ),
            "",
            _("Its details are on the page Traitements distants; give the job again once "
              "the cause is put right."),
        ]  # fmt: skip

    queue(f"job:{job_id}", agent.email, write, now=now)


def notify_due(*, now: dt.datetime) -> int:
    """Queue the mails that time brings: key pairs expiring while in use, deadlines
    passed. Each is queued once (its key); how many were new."""
    return _expiring_key_pairs(now) + _deadlines_passed(now)


def _holders(service_id: uuid.UUID, *names: str) -> list[User]:
    return list(
        User.objects.filter(
            is_active=True, permissions__service_id=service_id, permissions__name__in=names
        ).distinct()
    )


def _expiring_key_pairs(now: dt.datetime) -> int:
    from scelle.platform.keypairs.models import KeyPair
    from scelle.platform.tenders.models import AssignedKeyPair, Tender

    soon = now + dt.timedelta(days=settings.SCELLE_KEY_EXPIRY_WARNING_DAYS)
    queued = 0
    expiring = KeyPair.objects.filter(not_after__gt=now, not_after__lte=soon).select_related(
        "service"
    )
    for key_pair in expiring:
        references = sorted(
            AssignedKeyPair.objects.filter(key_pair_id=key_pair.id)
            .exclude(tender__status=Tender.Status.CLOSED)
            .values_list("tender__reference", flat=True)
        )
        if not references:
            continue

        def write(
            key_pair: KeyPair = key_pair, references: list[str] = references
        ) -> tuple[str, list[str]]:
            return _("Key pair {designation} ends on {when}").format(
                designation=key_pair.designation, when=local_time(key_pair.not_after)
            ), [
                _("The certificate of the key pair {designation} of {service} ends on {when}, "
                  "while tenders not closed use it: {references}.").format(
                    designation=key_pair.designation, service=key_pair.service.name,
                    when=local_time(key_pair.not_after), references=", ".join(references)),
                "",
                _("Keep it (and its backup .pfx): it opens the envelopes already sealed to it. "
                  "Add a new key pair for the next tenders."),
            ]  # fmt: skip

        for user in _holders(key_pair.service_id, Permission.Name.MANAGE_KEYS):
            key = f"expiring:{key_pair.id}:{key_pair.not_after.date()}:{user.id}"
            queued += queue(key, user.email, write, now=now)
    return queued


def _deadlines_passed(now: dt.datetime) -> int:
    from scelle.platform.tenders.models import Tender

    queued = 0
    passed = (
        Tender.objects.filter(
            is_test=False,
            status__in=(Tender.Status.PUBLISHED, Tender.Status.CLOSED),
            deadline__lte=now,
            deadline__gt=now - DEADLINES_LOOKED_BACK,
        )
        .select_related("created_by")
        .annotate(
            on_time=Count("deposits", filter=Q(deposits__late=False)),
            late=Count("deposits", filter=Q(deposits__late=True)),
            withdrawn=Count("deposits__withdrawal"),
        )
    )
    for tender in passed:

        def write(tender: Tender = tender) -> tuple[str, list[str]]:
            return _("Deadline passed: {reference} (deposits: {count})").format(
                reference=tender.reference, count=tender.on_time  # type: ignore[attr-defined]
            ), [
                _("The deadline of {reference} ({title}) passed on {when}: {on_time} deposits "
                  "on time, {late} late, {withdrawn} of them withdrawn.").format(
                    reference=tender.reference, title=tender.title,
                    when=local_time(tender.deadline), on_time=tender.on_time,  # type: ignore[attr-defined]
                    late=tender.late, withdrawn=tender.withdrawn),  # type: ignore[attr-defined]
                "",
                _("The envelopes can be opened now, on a workstation that holds the tender's "
                  "key pairs."),
            ]  # fmt: skip

        people = {tender.created_by, *_holders(tender.service_id, Permission.Name.OPEN)}
        for user in sorted(people, key=lambda u: u.email):
            if user.is_active:
                queued += queue(f"deadline:{tender.id}:{user.id}", user.email, write, now=now)
    return queued
