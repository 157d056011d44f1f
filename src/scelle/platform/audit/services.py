"""Writing and checking the hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction

from scelle.platform.audit.models import Event

GENESIS = "0" * 64
PLATFORM_ACTOR = "platform"
_CHAIN_LOCK = 0x5C311E  # PostgreSQL advisory lock taken by every append


def _canonical(
    *,
    previous_hash: str,
    at: dt.datetime,
    actor: str,
    organisation_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: str,
    details: Mapping[str, Any],
) -> bytes:
    # Sorted keys and no spaces: PostgreSQL's jsonb reorders keys, and the
    # hash must not depend on how the database returns the details.
    document = {
        "previous": previous_hash,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "organisation": str(organisation_id) if organisation_id else None,
        "action": action,
        "object": [object_type, object_id],
        "details": details,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _event_hash(event: Event) -> str:
    return hashlib.sha256(
        _canonical(
            previous_hash=event.previous_hash,
            at=event.at,
            actor=event.actor,
            organisation_id=event.organisation_id,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            details=event.details,
        )
    ).hexdigest()


def lock_chain() -> None:
    """Serialise appends, so that two events never claim the same predecessor."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
    # SQLite: the settings open every transaction IMMEDIATE, which already
    # gives this transaction the database's single write lock.


@dataclass(frozen=True)
class Recorded:
    """One event of `record_many`: what `record` takes, but the actor and the time."""

    action: str
    target: models.Model
    organisation_id: uuid.UUID | None = None
    details: Mapping[str, Any] | None = None


def record(
    action: str,
    *,
    actor: str,
    target: models.Model,
    now: dt.datetime,
    organisation_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
) -> Event:
    """Append an event; call it inside the transaction of the change it records."""
    recorded = Recorded(action, target, organisation_id, details)
    return record_many([recorded], actor=actor, now=now)[0]


def record_many(events: Sequence[Recorded], *, actor: str, now: dt.datetime) -> list[Event]:
    """Append several events, chained in order, in one write (an opening's envelopes
    reported together); call it inside the transaction of the change they record."""
    made = []
    with transaction.atomic():
        lock_chain()
        last = Event.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        for recorded in events:
            event = Event(
                at=now,
                actor=actor,
                organisation_id=recorded.organisation_id,
                action=recorded.action,
                object_type=recorded.target._meta.label_lower,
                object_id=str(recorded.target.pk),
                # Round-tripped through JSON now, so that the hash is computed on exactly what
                # the database will give back.
                details=json.loads(json.dumps(dict(recorded.details or {}), default=str)),
                previous_hash=last,
            )
            event.hash = last = _event_hash(event)
            made.append(event)
        Event.objects.bulk_create(made)
    return made


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found."""

    events: int
    """How many events were checked."""
    broken_at: int | None
    """The id of the first event that does not match, or None when the chain holds."""
    reason: str | None
    """Why that event breaks the chain."""


def _all_events() -> Iterator[Event]:
    return Event.objects.order_by("id").iterator(chunk_size=2000)


def verify_chain() -> ChainReport:
    """Recompute every hash and every link, in order; report the first break."""
    previous = GENESIS
    count = 0
    for event in _all_events():
        count += 1
        if event.previous_hash != previous:
            return ChainReport(
                count, event.id, "its predecessor is not the event before it (one was removed)"
            )
        if _event_hash(event) != event.hash:
            return ChainReport(count, event.id, "its content does not match its hash (altered)")
        previous = event.hash
    return ChainReport(count, None, None)
