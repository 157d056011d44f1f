"""A commission opens together (DESIGN.md, "Commission"): one member, the opener, starts
the opening after the deadline; each other member, on their own consent, has their
workstation decrypt their shares and encrypt each again to the opener's certificate
from the launch record; the platform keeps and relays those, which it cannot read, and
records who took part and when. The opener's workstation combines k shares per envelope.

Nothing here decrypts or checks a share: the workstations do, each by its own clock and
from the tender's own certificates (core.commission). The platform's rules only keep the
record straight: members only, after the deadline, once per envelope and member.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from scelle.core.envelope import read_recipient_infos
from scelle.core.errors import (
    N_,
    DecryptionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from scelle.platform.accounts.models import Permission, User
from scelle.platform.accounts.services import require_agent
from scelle.platform.audit.services import record
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Envelope
from scelle.platform.opening.models import CommissionOpening, Participation, RelayedShare
from scelle.platform.opening.services import check_openable
from scelle.platform.tenders.models import AssignedKeyPair, Tender
from scelle.platform.tenders.services import commission_members, tender_for

MAX_RELAYED_BYTES = 1024
"""An RSA-OAEP ciphertext: 512 bytes for RSA-4096, the largest key the platform issues."""
MAX_SHARES_AT_ONCE = 200
MAX_SHARES_LISTED = 1000


def _commission_tender(actor: User, tender_key: str) -> Tender:
    tender = tender_for(actor, tender_key, Permission.Name.OPEN)
    if tender.commission_threshold is None:
        raise RuleViolationError(
            N_("no commission opens {reference}: any of its key pairs opens it alone"),
            reference=tender.reference,
        )
    return tender


def _member_of(actor: User, tender: Tender) -> AssignedKeyPair:
    """The actor's member key pair in the tender's commission."""
    for member in commission_members(tender):
        if member.holder_id == actor.id:
            return member
    raise PermissionDeniedError(
        N_("you are not a member of the commission of {reference}"),
        reference=tender.reference,
    )


def is_member(actor: User, tender: Tender) -> bool:
    """Whether the actor holds a member key pair of the tender's commission."""
    return any(member.holder_id == actor.id for member in commission_members(tender))


def _opening_of(tender: Tender) -> CommissionOpening:
    try:
        found: CommissionOpening = CommissionOpening.objects.select_related(
            "opener", "started_by"
        ).get(tender=tender)
        return found
    except CommissionOpening.DoesNotExist:
        raise NotFoundError(
            N_("the commission's opening of {reference} has not been started"),
            hint=N_("A member starts it with Ouvrir les plis, after the deadline."),
            reference=tender.reference,
        ) from None


def start_opening(actor: User, tender_key: str, *, now: dt.datetime) -> CommissionOpening:
    """The actor, a member, opens the tender: the other members' shares will be encrypted
    to their certificate. Once started by one member, the opener stays that member (their
    colleagues may already have relayed shares no other key can read)."""
    tender = _commission_tender(actor, tender_key)
    check_openable(tender, now)
    member = _member_of(actor, tender)
    with transaction.atomic():
        Tender.objects.select_for_update().get(id=tender.id)  # one opener, even in a race
        existing: CommissionOpening | None = (
            CommissionOpening.objects.filter(tender=tender).select_related("opener").first()
        )
        if existing is not None:
            if existing.opener_id != member.id:
                raise RuleViolationError(
                    N_(
                        "the opening of {reference} was started by {opener}: take part from "
                        "your dashboard instead"
                    ),
                    reference=tender.reference,
                    opener=existing.opener.designation,
                )
            return existing
        opening = CommissionOpening.objects.create(
            tender=tender, opener=member, started_by=actor, started_at=now
        )
        record(
            "opening.commission.started",
            actor=actor.email,
            target=tender,
            organisation_id=tender.organisation_id,
            details={
                "reference": tender.reference,
                "opener": member.designation,
                "fingerprint": member.fingerprint_sha256,
                "threshold": tender.commission_threshold,
            },
            now=now,
        )
    return opening


@dataclass(frozen=True)
class MemberState:
    member: AssignedKeyPair
    joined_at: dt.datetime | None
    shares: int
    """Envelopes whose share this member relayed (the opener's own is never relayed)."""
    opener: bool


@dataclass(frozen=True)
class OpeningState:
    tender: Tender
    opening: CommissionOpening | None
    members: list[MemberState]


def opening_state(actor: User, tender_key: str) -> OpeningState:
    """Who opens, who took part and when, how many shares each relayed: for the tender's
    agents allowed to open."""
    tender = _commission_tender(actor, tender_key)
    opening = CommissionOpening.objects.filter(tender=tender).select_related("opener").first()
    joined: dict[int, dt.datetime] = {}
    counts: dict[int, int] = {}
    if opening is not None:
        joined = {p.member_id: p.joined_at for p in opening.participations.all()}
        for member_id in opening.relayed_shares.values_list("member_id", flat=True):
            counts[member_id] = counts.get(member_id, 0) + 1
    opener = opening.opener_id if opening is not None else None
    members = []
    for member in commission_members(tender):
        is_opener = member.id == opener
        when = opening.started_at if opening is not None and is_opener else joined.get(member.id)
        members.append(MemberState(member, when, counts.get(member.id, 0), is_opener))
    return OpeningState(tender, opening, members)


def take_part(actor: User, tender_key: str, *, now: dt.datetime) -> Participation:
    """The actor, a member other than the opener, consents to the opening: their
    workstation will decrypt their shares and relay them to the opener. Once is enough."""
    tender = _commission_tender(actor, tender_key)
    check_openable(tender, now)
    member = _member_of(actor, tender)
    opening = _opening_of(tender)
    if opening.opener_id == member.id:
        raise RuleViolationError(
            N_("you opened {reference}: your own share stays on your workstation"),
            reference=tender.reference,
        )
    with transaction.atomic():
        existing: Participation | None = Participation.objects.filter(
            opening=opening, member=member
        ).first()
        if existing is not None:
            return existing
        participation = Participation.objects.create(
            opening=opening, member=member, agent=actor, joined_at=now
        )
        record(
            "opening.commission.joined",
            actor=actor.email,
            target=tender,
            organisation_id=tender.organisation_id,
            details={
                "reference": tender.reference,
                "member": member.designation,
                "opener": opening.opener.designation,
            },
            now=now,
        )
    return participation


def relay_shares(
    actor: User,
    tender_key: str,
    shares: Sequence[tuple[uuid.UUID | str, str, bytes]],
    *,
    now: dt.datetime,
) -> int:
    """Keep the actor's shares (deposit, envelope kind, share encrypted to the opener) for
    the opener; returns how many are new. A share already relayed for an envelope stays
    the one kept (a workstation that lost the answer sends them again)."""
    if not 1 <= len(shares) <= MAX_SHARES_AT_ONCE:
        raise InvalidInputError(N_("relay 1 to {most} shares at once"), most=MAX_SHARES_AT_ONCE)
    participation = take_part(actor, tender_key, now=now)
    opening = participation.opening
    tender = opening.tender
    envelopes = _envelopes_named(tender, shares)
    with transaction.atomic():
        kept = set(
            RelayedShare.objects.filter(
                opening=opening, member=participation.member, envelope_id__in=envelopes
            ).values_list("envelope_id", flat=True)
        )
        new = [
            RelayedShare(opening=opening, envelope=envelope, member=participation.member,
                         relayed=relayed, relayed_at=now)
            for envelope_id, (envelope, relayed) in envelopes.items()
            if envelope_id not in kept
        ]  # fmt: skip
        try:
            RelayedShare.objects.bulk_create(new)
        except IntegrityError:  # the same shares sent twice at once: the first stand
            raise RuleViolationError(
                N_("these shares are being relayed already: try again in a moment")
            ) from None
        if new:
            record(
                "opening.commission.relayed",
                actor=actor.email,
                target=tender,
                organisation_id=tender.organisation_id,
                details={
                    "reference": tender.reference,
                    "member": participation.member.designation,
                    "shares": len(new),
                },
                now=now,
            )
    return len(new)


MAX_HEADERS_LISTED = 500


def envelope_headers(
    actor: User, tender_key: str, *, after: int = 0, now: dt.datetime
) -> tuple[list[tuple[Envelope, bytes | None]], bool]:
    """Each envelope's recipients (the DER of its RecipientInfos, read from its stored
    header; None when the file cannot be read) past the envelope id `after`, for a member
    taking part in a started opening, and whether more wait: what a member's workstation
    needs to relay its shares, in one request instead of one download an envelope. Nothing
    here is believed there: each share's label binds its tender, envelope and commission."""
    tender = _commission_tender(actor, tender_key)
    check_openable(tender, now)
    member = _member_of(actor, tender)
    _opening_of(tender)
    found = list(
        Envelope.objects.filter(deposit__tender=tender, id__gt=after)
        .select_related("deposit")
        .order_by("id")[: MAX_HEADERS_LISTED + 1]
    )
    headers: list[tuple[Envelope, bytes | None]] = []
    for envelope in found[:MAX_HEADERS_LISTED]:
        try:
            with storage.open_envelope(envelope.storage_name) as handle:
                headers.append((envelope, read_recipient_infos(handle)))
        except (OSError, DecryptionError):
            headers.append((envelope, None))
    if headers:
        record(
            "opening.commission.headers_read",
            actor=actor.email,
            target=tender,
            organisation_id=tender.organisation_id,
            details={"reference": tender.reference, "member": member.designation,
                     "envelopes": len(headers)},
            now=now,
        )  # fmt: skip
    return headers, len(found) > MAX_HEADERS_LISTED


def _envelopes_named(
    tender: Tender, shares: Sequence[tuple[uuid.UUID | str, str, bytes]]
) -> dict[int, tuple[Envelope, bytes]]:
    """Each share's envelope, which must be one of the tender's: the first share given for
    an envelope stands."""
    of_tender = {
        (str(e.deposit_id), e.kind): e
        for e in Envelope.objects.filter(
            deposit__tender=tender, deposit_id__in={str(deposit) for deposit, _k, _r in shares}
        )
    }
    envelopes: dict[int, tuple[Envelope, bytes]] = {}
    for deposit, kind, relayed in shares:
        if not 1 <= len(relayed) <= MAX_RELAYED_BYTES:
            raise InvalidInputError(
                N_("a relayed share has 1 to {most} bytes"), most=MAX_RELAYED_BYTES
            )
        found = of_tender.get((str(deposit), kind))
        if found is None:
            raise NotFoundError(
                N_("{reference} has no envelope {kind} in the deposit {deposit}"),
                reference=tender.reference,
                kind=str(kind)[:40],
                deposit=str(deposit)[:40],
            )
        envelopes.setdefault(found.id, (found, relayed))
    return envelopes


def shares_for_opener(
    actor: User, tender_key: str, *, after: int = 0
) -> tuple[list[RelayedShare], bool]:
    """The shares relayed to the actor, the opener, past the cursor `after` (the last id
    they received), and whether more wait."""
    tender = _commission_tender(actor, tender_key)
    opening = _opening_of(tender)
    if opening.started_by_id != actor.id:
        raise PermissionDeniedError(
            N_("the shares of {reference} go to {opener}, who opens it"),
            reference=tender.reference,
            opener=opening.opener.designation,
        )
    found = list(
        RelayedShare.objects.filter(opening=opening, id__gt=after)
        .select_related("envelope", "member")
        .order_by("id")[: MAX_SHARES_LISTED + 1]
    )
    return found[:MAX_SHARES_LISTED], len(found) > MAX_SHARES_LISTED


def pending_for(actor: User) -> list[OpeningState]:
    """The commissions' openings the actor, a member, has not taken part in yet: their
    dashboard shows each with a button."""
    require_agent(actor)
    mine = AssignedKeyPair.objects.filter(holder=actor, role="member").values_list(
        "tender_id", flat=True
    )
    openings = (
        CommissionOpening.objects.filter(tender_id__in=mine)
        .exclude(participations__agent=actor)
        .exclude(started_by=actor)
        .select_related("tender", "opener", "started_by")
    )
    return [
        OpeningState(opening.tender, opening, [])
        for opening in openings
        if opening.tender.status != Tender.Status.DRAFT
    ]
