"""Tenders: creating, launching with their definitive key pairs, closing (DESIGN.md, rule 3).

Launching assigns at least one personal key pair chosen by the agent plus
every backup key pair of the service; each must stay valid until the
deadline plus the opening window. The assignment is written once and never
changed: there is no function here, nor anywhere, that updates it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from scelle.core.errors import (
    N_,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from scelle.core.rsf import commission_set_fingerprint, recipient_set_fingerprint
from scelle.core.shamir import MAX_SHARES
from scelle.core.text import storable
from scelle.platform.accounts.models import Permission, Service, User, permissions_of
from scelle.platform.accounts.services import service_for
from scelle.platform.audit.anchors import checkpoint
from scelle.platform.audit.services import record
from scelle.platform.clock import local_date, local_time
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Envelope
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.tenders.models import ENVELOPE_KINDS, AssignedKeyPair, Tender
from scelle.platform.transparency import services as transparency

MAX_TITLE_LENGTH = 300
MAX_DEADLINE_AHEAD = dt.timedelta(days=3653)
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_reference(value: str) -> str:
    reference = value.strip()
    if not _REFERENCE.fullmatch(reference):
        raise InvalidInputError(
            N_(
                "{value!r} cannot be a tender reference: use 1 to 64 letters, digits, "
                "dots, dashes or underscores, starting with a letter or a digit"
            ),
            value=value,
        )
    return reference


def check_envelopes(kinds: Sequence[str]) -> list[str]:
    cleaned = [kind.strip().lower() for kind in kinds if kind.strip()]
    if not cleaned:
        raise InvalidInputError(N_("a tender has at least one envelope"))
    for kind in cleaned:
        if kind not in ENVELOPE_KINDS:
            raise InvalidInputError(
                N_("unknown envelope {kind!r}; choose among {choices}"),
                kind=kind,
                choices=", ".join(ENVELOPE_KINDS),
            )
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInputError(N_("each envelope appears once in a tender"))
    return cleaned


def _check_deadline(deadline: dt.datetime, now: dt.datetime) -> None:
    if deadline.tzinfo is None:
        raise InvalidInputError(
            N_("the deadline needs a time zone (e.g. 2027-03-01T12:00:00+01:00)")
        )
    if deadline <= now:
        raise RuleViolationError(
            N_("the deadline {deadline} is already past"), deadline=local_time(deadline)
        )
    if deadline > now + MAX_DEADLINE_AHEAD:
        # Also keeps the opening window's end (deadline + days) a date that exists.
        raise InvalidInputError(
            N_("the deadline {day} is more than ten years ahead: check the year"),
            day=local_date(deadline),
        )


def opening_window_end(tender: Tender) -> dt.datetime:
    """Until when the tender's key pairs must stay valid."""
    return tender.deadline + dt.timedelta(days=settings.SCELLE_OPENING_WINDOW_DAYS)


MAX_GRACE_MINUTES = 3 * 24 * 60


def _check_grace(minutes: int | None) -> None:
    if minutes is not None and not 1 <= minutes <= MAX_GRACE_MINUTES:
        raise InvalidInputError(N_("a grace window lasts 1 to {most} minutes"),
                                most=MAX_GRACE_MINUTES)  # fmt: skip


def create_tender(
    actor: User,
    *,
    service_id: uuid.UUID | str,
    reference: str,
    title: str,
    deadline: dt.datetime,
    envelopes: Sequence[str],
    now: dt.datetime,
    grace_minutes: int | None = None,
) -> Tender:
    """A draft tender of a service; needs `manage_tenders` on it. `grace_minutes`: only
    where the law provides a grace window for committed deposits (Tender.grace_minutes)."""
    service = service_for(actor, service_id, Permission.Name.MANAGE_TENDERS)
    reference = check_reference(reference)
    title = title.strip()
    if not title or len(title) > MAX_TITLE_LENGTH or not storable(title):
        raise InvalidInputError(
            N_("a tender's title has 1 to {most} characters"), most=MAX_TITLE_LENGTH
        )
    kinds = check_envelopes(envelopes)
    _check_deadline(deadline, now)
    _check_grace(grace_minutes)
    with transaction.atomic():
        taken = Tender.objects.filter(
            organisation_id=service.organisation_id, reference__iexact=reference
        )
        if taken.exists():
            raise RuleViolationError(
                N_("{organisation} already has a tender with the reference {reference}"),
                organisation=service.organisation.name,
                reference=reference,
            )
        tender = Tender.objects.create(
            organisation_id=service.organisation_id,
            service=service,
            reference=reference,
            title=title,
            deadline=deadline,
            envelopes=kinds,
            created_by=actor,
            created_at=now,
            grace_minutes=grace_minutes,
        )
        record(
            "tenders.tender.created",
            actor=actor.email,
            target=tender,
            organisation_id=service.organisation_id,
            details={
                "reference": reference,
                "service": service.name,
                "deadline": deadline.isoformat(),
                "envelopes": kinds,
            },
            now=now,
        )
    return tender


def visible_tenders(actor: User) -> QuerySet[Tender]:
    """Agents see the tenders of the services they work on; companies, the launched ones."""
    tenders = Tender.objects.select_related("service", "organisation")
    if actor.is_agent:
        return tenders.filter(
            organisation_id=actor.organisation_id, service__permissions__user=actor
        ).distinct()
    return tenders.exclude(status=Tender.Status.DRAFT)


def tender_for(actor: User, key: str, permission: str | None = None) -> Tender:
    """The tender `key` as `actor` may see it, with `permission` when one is needed.

    `key` is the tender's id, or its reference: an agent's references are their
    organisation's; a company's are those of every launched tender, and one that
    several buyers use must be given by id. What another organisation has, and
    drafts for companies, are "not found".
    """
    wanted = key.strip()
    if not storable(wanted):  # no tender has such a reference; the database could not say so
        raise NotFoundError(N_("no tender {reference}"), reference=wanted[:64])
    found = Tender.objects.select_related("service", "organisation")
    try:
        tender_id = uuid.UUID(wanted)
    except ValueError:
        if actor.is_agent:
            found = found.filter(organisation_id=actor.organisation_id)
        else:
            found = found.exclude(status=Tender.Status.DRAFT)
        matching = list(found.filter(reference__iexact=wanted)[:2])
    else:
        matching = list(found.filter(id=tender_id))
    if len(matching) > 1:
        raise RuleViolationError(
            N_("several buyers use the reference {reference}: give the tender's id instead"),
            hint=N_("`scelle tenders list` shows each tender's id."),
            reference=wanted,
        )
    if not matching:
        raise NotFoundError(N_("no tender {reference}"), reference=wanted)
    tender = matching[0]
    if actor.is_agent and tender.organisation_id == actor.organisation_id:
        service_for(actor, tender.service_id, permission)
        return tender
    if actor.is_agent or tender.status == Tender.Status.DRAFT:
        raise NotFoundError(N_("no tender {reference}"), reference=wanted)
    if permission is not None:
        raise PermissionDeniedError(N_("only the buyer's agents can do this"))
    return tender


def _chosen_key_pairs(service: Service, chosen: Sequence[str]) -> list[KeyPair]:
    """The key pairs named by their designation, or by their CN when one key pair of the
    service has it (agents know a key pair by either)."""
    found: list[KeyPair] = []
    for wanted in chosen:
        name = wanted.strip()
        of_service = KeyPair.objects.select_for_update().filter(service=service)
        matching = list(of_service.filter(designation__iexact=name)[:1])
        if not matching:
            matching = list(of_service.filter(common_name__iexact=name)[:2])
            if len(matching) > 1:
                raise RuleViolationError(
                    N_(
                        "several key pairs of the service {service} have the CN {cn!r}: give the "
                        "designation of the one meant"
                    ),
                    hint=N_("`scelle service-keys list` shows them."),
                    service=service.name,
                    cn=name,
                )
        if not matching:
            raise NotFoundError(
                N_(
                    "the service {service} has no key pair designated {designation!r}, nor "
                    "one with that CN"
                ),
                hint=N_("`scelle service-keys list` shows them."),
                service=service.name,
                designation=wanted,
            )
        if matching[0] not in found:
            found.append(matching[0])
    return found


def _validity_problem(key_pair: KeyPair, until: dt.datetime, now: dt.datetime) -> str | None:
    """Why `key_pair` cannot be assigned (expired, or expiring before `until`), or None."""
    values = {
        "designation": key_pair.designation,
        "expiry": local_date(key_pair.not_after),
        "until": local_date(until),
    }
    backup = key_pair.role == KeyPair.Role.BACKUP
    if key_pair.not_after <= now:
        expired = (
            _("the backup key pair %(designation)r expired on %(expiry)s")
            if backup
            else _("the key pair %(designation)r expired on %(expiry)s")
        )
        return expired % values
    if key_pair.not_after < until:
        expires = (
            _(
                "the backup key pair %(designation)r expires on %(expiry)s, before the "
                "opening window ends on %(until)s"
            )
            if backup
            else _(
                "the key pair %(designation)r expires on %(expiry)s, before the opening "
                "window ends on %(until)s"
            )
        )
        return expires % values
    return None


def _check_valid_through(assigned: list[KeyPair], until: dt.datetime, now: dt.datetime) -> None:
    """Every key pair the tender would be sealed to is valid through `until`; otherwise one
    refusal naming each that is not, so that the agent fixes them all at once."""
    problems = [p for k in assigned if (p := _validity_problem(k, until, now)) is not None]
    if problems:
        raise RuleViolationError(
            "; ".join(problems),
            hint=_("Choose key pairs valid longer, or replace these with new key pairs."),
        )


def launch_choices(tender: Tender) -> tuple[list[KeyPair], list[KeyPair]]:
    """The service's personal key pairs the agent chooses from at launch, and its backup
    key pairs, which every tender of the service gets (rule 3)."""
    of_service = (
        KeyPair.objects.filter(service=tender.service)
        .select_related("added_by")
        .order_by("designation")
    )
    personal = [k for k in of_service if k.role == KeyPair.Role.PERSONAL]
    backup = [k for k in of_service if k.role == KeyPair.Role.BACKUP]
    return personal, backup


MEMBER = "member"
"""The role of a commission member's key pair in a tender's assignment."""


def assign(tender: Tender, key_pair: KeyPair, *, member: bool = False) -> AssignedKeyPair:
    """Make `key_pair` a recipient of every envelope of `tender`, for good (rule 3), or
    one of its commission's members; the tender keeps its own copy of the certificate."""
    return AssignedKeyPair.objects.create(
        tender=tender,
        key_pair_id=key_pair.id,
        designation=key_pair.designation,
        role=MEMBER if member else key_pair.role,
        holder_id=key_pair.added_by_id if member else None,
        common_name=key_pair.common_name,
        certificate_pem=key_pair.certificate_pem,
        fingerprint_sha256=key_pair.fingerprint_sha256,
        not_after=key_pair.not_after,
        issued_by_platform=key_pair.issued_by_platform,
    )


def _check_commission(
    tender: Tender, members: list[KeyPair], backups: list[KeyPair], threshold: int
) -> None:
    """A commission (DESIGN.md, "Commission"): 2 to 255 personal key pairs, each held by
    another agent allowed to open, k between 2 and their number, and a backup key pair,
    the way in if members are lost."""
    if any(key_pair.role != KeyPair.Role.PERSONAL for key_pair in members):
        raise RuleViolationError(
            N_("a commission's members are personal key pairs; backup ones stay recipients")
        )
    if not 2 <= len(members) <= MAX_SHARES or not 2 <= threshold <= len(members):
        raise RuleViolationError(
            N_(
                "a commission of {members} member(s) cannot need {threshold} of them: choose "
                "2 to {most} members' key pairs, and between 2 and their number to open"
            ),
            members=len(members),
            threshold=threshold,
            most=MAX_SHARES,
        )
    if not backups:
        raise RuleViolationError(
            N_(
                "the service {service} has no backup key pair: a commission needs one, the "
                "way to open if members are lost"
            ),
            hint=N_("Add a backup key pair to the service first."),
            service=tender.service.name,
        )
    openers = _agents_holding(tender.service, Permission.Name.OPEN)
    holders: dict[uuid.UUID, KeyPair] = {}
    for key_pair in members:
        holder = key_pair.added_by_id
        if holder is None or holder not in openers:
            raise RuleViolationError(
                N_(
                    "the key pair {designation} has no holder allowed to open for the "
                    "service {service}: a member's key pair is one an agent with the right "
                    "to open added from their own workstation"
                ),
                designation=key_pair.designation,
                service=tender.service.name,
            )
        if holder in holders:
            raise RuleViolationError(
                N_(
                    "the key pairs {first} and {second} are held by the same agent: each "
                    "member of a commission is another agent"
                ),
                first=holders[holder].designation,
                second=key_pair.designation,
            )
        holders[holder] = key_pair


def _agents_holding(service: Service, name: str) -> set[uuid.UUID]:
    """The agents holding permission `name` on `service`, active ones only."""
    return set(
        User.objects.filter(
            permissions__service=service, permissions__name=name, is_active=True
        ).values_list("id", flat=True)
    )


def launch_tender(
    actor: User,
    reference: str,
    key_designations: Sequence[str],
    *,
    commission_threshold: int | None = None,
    now: dt.datetime,
) -> Tender:
    """Publish a draft and assign its key pairs, for good (rule 3).

    With `commission_threshold` (k), the chosen key pairs are the members of the tender's
    commission, k of whom must take part to open (DESIGN.md, "Commission").
    Long because rule 3 is several checks on the chosen key pairs, then one record.
    """
    tender = tender_for(actor, reference, Permission.Name.MANAGE_TENDERS)
    with transaction.atomic():
        tender = Tender.objects.select_for_update().get(id=tender.id)
        if tender.status != Tender.Status.DRAFT:
            raise RuleViolationError(
                N_(
                    "the tender {reference} is {status}: its key pairs were assigned at "
                    "launch and are definitive"
                ),
                reference=tender.reference,
                status=tender.get_status_display(),
            )
        _check_deadline(tender.deadline, now)
        chosen = _chosen_key_pairs(tender.service, key_designations)
        if not any(key_pair.role == KeyPair.Role.PERSONAL for key_pair in chosen):
            raise RuleViolationError(
                N_(
                    "choose at least one personal key pair; the service's backup key pairs "
                    "are added to every tender"
                )
            )
        backups = list(
            KeyPair.objects.select_for_update().filter(
                service=tender.service, role=KeyPair.Role.BACKUP
            )
        )
        if commission_threshold is not None:
            _check_commission(tender, chosen, backups, commission_threshold)
        assigned = chosen + [key_pair for key_pair in backups if key_pair not in chosen]
        until = opening_window_end(tender)
        _check_valid_through(assigned, until, now)
        members = chosen if commission_threshold is not None else []
        for key_pair in assigned:
            assign(tender, key_pair, member=key_pair in members)
        tender.status = Tender.Status.PUBLISHED
        tender.launched_by = actor
        tender.launched_at = now
        tender.commission_threshold = commission_threshold
        tender.save(update_fields=["status", "launched_by", "launched_at", "commission_threshold"])
        details: dict[str, Any] = {
            "reference": tender.reference,
            "key_pairs": [
                {
                    "designation": k.designation,
                    "role": MEMBER if k in members else k.role,
                    "fingerprint": k.fingerprint_sha256,
                }
                for k in assigned
            ],
            "rsf": tender_rsf(tender),
        }
        if commission_threshold is not None:
            details["commission"] = {
                "threshold": commission_threshold,
                "members": [
                    {"designation": k.designation, "holder": k.added_by.email if k.added_by else ""}
                    for k in members
                ],
            }
        record(
            "tenders.tender.launched",
            actor=actor.email,
            target=tender,
            organisation_id=tender.organisation_id,
            details=details,
            now=now,
        )
        transparency.log_launch(tender.reference, details["rsf"], tender.deadline, now=now)
        checkpoint(now=now, reason="launch")  # in the same transaction: both or neither
    return tender


def max_deposit_bytes(tender: Tender) -> int:
    """The largest deposit the tender takes, all envelopes together (a test tender's are
    small: the platform keeps them for nothing)."""
    if tender.is_test:
        return min(settings.SCELLE_TEST_DEPOSIT_MAX_BYTES, settings.SCELLE_MAX_DEPOSIT_BYTES)
    return settings.SCELLE_MAX_DEPOSIT_BYTES


def takes_deposits(tender: Tender, *, now: dt.datetime) -> bool:
    """Whether a deposit may start now (rule 5): published, its deadline ahead."""
    return tender.status == Tender.Status.PUBLISHED and now < tender.deadline


def tender_rsf(tender: Tender) -> str | None:
    """The recipient-set fingerprint of a launched tender (core.rsf), with its commission's
    members and k when it has one; None for a draft."""
    return _rsf_of(tender, list(tender.assigned_key_pairs.all()))


def _rsf_of(tender: Tender, assigned: list[AssignedKeyPair]) -> str | None:
    if not assigned:
        return None
    if tender.commission_threshold is None:
        return recipient_set_fingerprint(a.fingerprint_sha256 for a in assigned)
    return commission_set_fingerprint(
        [a.fingerprint_sha256 for a in assigned if a.role != MEMBER],
        [a.fingerprint_sha256 for a in assigned if a.role == MEMBER],
        tender.commission_threshold,
    )


def keys_facts(tender: Tender, *, agent: bool) -> dict[str, Any]:
    """What the pages show of a tender's key pairs (template tenders/keys_facts.html): the
    assignment, its RSF, its commission; members' holders to the buyer's agents only."""
    assigned = list(tender.assigned_key_pairs.select_related("holder"))
    return {
        "assigned": assigned,
        "rsf": _rsf_of(tender, assigned),
        "members_count": sum(1 for a in assigned if a.role == MEMBER),
        "agent_view": agent,
    }


def commission_members(tender: Tender) -> list[AssignedKeyPair]:
    """The members of the tender's commission, empty when it has none."""
    if tender.commission_threshold is None:
        return []
    return list(tender.assigned_key_pairs.filter(role=MEMBER).select_related("holder"))


def close_tender(actor: User, reference: str, *, now: dt.datetime) -> Tender:
    """End a tender once its deadline has passed; its key pairs may then be deleted.

    Before the deadline, companies may still be depositing: a tender that must
    stop early is cancelled (`cancel_tender`), and closed after its deadline.
    """
    tender = tender_for(actor, reference, Permission.Name.MANAGE_TENDERS)
    with transaction.atomic():
        tender = Tender.objects.select_for_update().get(id=tender.id)
        if tender.status == Tender.Status.CLOSED:
            raise RuleViolationError(
                N_("the tender {reference} is already closed"), reference=tender.reference
            )
        if tender.status != Tender.Status.DRAFT and now < tender.deadline:
            raise RuleViolationError(
                N_(
                    "the tender {reference} cannot be closed before its deadline "
                    "({deadline}): companies may be depositing"
                ),
                hint=N_("To stop it early, cancel it with a reason."),
                reference=tender.reference,
                deadline=local_time(tender.deadline),
            )
        _retain_envelopes(tender, now)
        change_status(
            actor.email, tender, Tender.Status.CLOSED, {"closed_by": actor, "closed_at": now},
            event="tenders.tender.closed", details={"was": tender.status}, anchor="close",
            now=now,
        )  # fmt: skip
    return tender


def _retain_envelopes(tender: Tender, now: dt.datetime) -> None:
    """The tender's envelopes kept SCELLE_RETENTION_YEARS after its close, not only after
    its deadline (in an object store; before the close is recorded, so a store that
    fails leaves the tender open, to be closed again)."""
    if tender.is_test or not storage.retaining():
        return
    until = storage.retention_end(now)
    names = Envelope.objects.filter(deposit__tender=tender).values_list("storage_name", flat=True)
    for name in names.iterator():
        storage.retain(name, until)


def change_status(
    actor: str,
    tender: Tender,
    status: Tender.Status,
    fields: dict[str, Any],
    *,
    event: str,
    details: dict[str, Any],
    anchor: str | None,
    now: dt.datetime,
) -> None:
    """Move a locked tender to `status`, setting `fields`, with its audit event by `actor`
    (an email, or the platform) and a checkpoint of the log unless `anchor` is None, all in
    the caller's transaction: all or nothing."""
    tender.status = status
    for name, value in fields.items():
        setattr(tender, name, value)
    tender.save(update_fields=["status", *fields])
    record(
        event,
        actor=actor,
        target=tender,
        organisation_id=tender.organisation_id,
        details={"reference": tender.reference, **details},
        now=now,
    )
    if anchor is not None:
        checkpoint(now=now, reason=anchor)


MAX_REASON_LENGTH = 2000


def cancel_tender(actor: User, reference: str, *, reason: str, now: dt.datetime) -> Tender:
    """Stop a launched tender before its deadline (déclaration sans suite), with a reason.

    From then on it takes no deposit; nothing is deleted (deposits, uploads until
    the sweep, the audit log); its key pairs stay in use until it is closed after
    its deadline, so that what was deposited can still be opened.
    """
    tender = tender_for(actor, reference, Permission.Name.MANAGE_TENDERS)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH or not storable(reason):
        raise InvalidInputError(
            N_("say why the tender is cancelled (1 to {most} characters)"), most=MAX_REASON_LENGTH
        )
    with transaction.atomic():
        tender = Tender.objects.select_for_update().get(id=tender.id)
        if tender.status != Tender.Status.PUBLISHED:
            raise RuleViolationError(
                N_("the tender {reference} is {status}: only a launched tender is cancelled"),
                reference=tender.reference,
                status=tender.get_status_display(),
            )
        if now >= tender.deadline:
            raise RuleViolationError(
                N_("the deadline of {reference} has passed: close it instead"),
                reference=tender.reference,
            )
        change_status(
            actor.email, tender, Tender.Status.CANCELLED,
            {"cancelled_by": actor, "cancelled_at": now, "cancel_reason": reason},
            event="tenders.tender.cancelled", details={"reason": reason}, anchor="cancel",
            now=now,
        )  # fmt: skip
    return tender


def recipients(actor: User, reference: str) -> list[AssignedKeyPair]:
    """The certificates every envelope of the tender is encrypted to."""
    tender = tender_for(actor, reference)
    if tender.status == Tender.Status.DRAFT:
        raise RuleViolationError(
            N_("the tender {reference} is not launched: its key pairs are not assigned yet"),
            reference=tender.reference,
        )
    return list(tender.assigned_key_pairs.all())


@dataclass(frozen=True)
class TenderAbilities:
    """What an agent may do with a tender now: the pages show these buttons, the
    services enforce the same rules when pressed."""

    launch: bool
    close: bool
    cancel: bool
    see_deposits: bool
    open: bool
    """The agent holds `open` on the tender's service (the button shows)."""
    open_refusal: str | None
    """Why opening cannot start yet: "not_launched" or "before_deadline"; None when it can."""
    past_deadline: bool
    """The deadline has passed (rule 5): deposits from now on are late."""


def abilities(actor: User, tender: Tender, *, now: dt.datetime) -> TenderAbilities:
    held = permissions_of(actor).get(tender.service_id, set())
    manage = Permission.Name.MANAGE_TENDERS in held
    status = tender.status
    before = now < tender.deadline
    refusal = None
    if status == Tender.Status.DRAFT:
        refusal = "not_launched"
    elif before:
        refusal = "before_deadline"
    return TenderAbilities(
        launch=manage and status == Tender.Status.DRAFT,
        close=manage
        and status != Tender.Status.CLOSED
        and (status == Tender.Status.DRAFT or not before),
        cancel=manage and status == Tender.Status.PUBLISHED and before,
        see_deposits=Permission.Name.OPEN in held,
        open=Permission.Name.OPEN in held and status != Tender.Status.DRAFT,
        open_refusal=refusal,
        past_deadline=not before,
    )
