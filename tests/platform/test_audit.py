"""The audit log: every change is an event, and the hash chain shows tampering."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import DatabaseError, connection, transaction

from scelle.core.errors import RuleViolationError
from scelle.core.receipt import (
    AuditHead,
    Receipt,
    ReceivedEnvelope,
    sign_receipt,
    verify_document,
)
from scelle.platform.audit.anchors import checkpoint_if_due, verify_anchors
from scelle.platform.audit.models import Checkpoint, Event
from scelle.platform.audit.services import GENESIS, _event_hash, verify_chain
from scelle.platform.keypairs.authority import platform_authority, receipt_signer
from tests.platform.conftest import Buyer, api_client, create_tender, launch, publish

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


@pytest.fixture
def history(rouen: Buyer, clock, rsa_keys) -> list[str]:
    owner = api_client(rouen.owner, clock)
    key_id = publish(owner, rouen.service, rsa_keys[0], "PERSO").json()["id"]
    publish(owner, rouen.service, rsa_keys[1], "SECOURS", role="backup")
    create_tender(owner, rouen.service, "AO-1", deadline=clock() + dt.timedelta(days=1))
    launch(owner, "AO-1", "PERSO")
    owner.patch(f"/api/key-pairs/{key_id}", {"designation": "P"}, content_type="application/json")
    clock.advance(days=2)
    owner.post("/api/tenders/AO-1/close")
    owner.delete(f"/api/key-pairs/{key_id}")
    owner.post("/api/auth/logout")
    return list(Event.objects.values_list("action", flat=True))


def test_every_change_is_an_event(history: list[str], rouen: Buyer):
    assert history[:3] == [
        "accounts.organisation.created",
        "accounts.service.created",
        "accounts.service.created",
    ]
    assert history[-11:] == [
        "accounts.token.created",
        "keypairs.key_pair.added",
        "keypairs.key_pair.added",
        "tenders.tender.created",
        "tenders.tender.launched",
        "audit.checkpoint.signed",  # launches, openings and closes are anchored at once
        "keypairs.key_pair.renamed",
        "tenders.tender.closed",
        "audit.checkpoint.signed",
        "keypairs.key_pair.deleted",
        "accounts.token.revoked",
    ]
    launched = Event.objects.get(action="tenders.tender.launched")
    assert launched.actor == "acheteur@rouen.fr"
    assert launched.organisation_id == rouen.organisation.id
    assert {k["designation"] for k in launched.details["key_pairs"]} == {"PERSO", "SECOURS"}
    # Secrets are never written to the log.
    token_event = Event.objects.filter(action="accounts.token.created").first()
    assert token_event is not None and set(token_event.details) == {"prefix", "expires_at", "for"}


def test_the_chain_holds_and_events_cannot_be_changed(history: list[str]):
    report = verify_chain()
    assert report.broken_at is None and report.events == len(history)
    event = Event.objects.get(action="tenders.tender.launched")
    event.actor = "quelqu'un d'autre"
    with pytest.raises(RuleViolationError):
        event.save()
    with pytest.raises(RuleViolationError):
        Event.objects.filter(id=event.id).delete()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE audit_event SET actor = 'x'")


def _without_update_trigger(sql: str, params: list[str | int]) -> None:
    """What someone with the database's owner rights could do: drop the guard, edit."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER audit_event_no_update"
            + (" ON audit_event" if connection.vendor == "postgresql" else "")
        )
        cursor.execute(sql, params)


def test_verification_names_the_altered_event(history: list[str]):
    launched = Event.objects.get(action="tenders.tender.launched")
    _without_update_trigger(
        "UPDATE audit_event SET details = %s WHERE id = %s", ['{"reference": "AUTRE"}', launched.id]
    )
    report = verify_chain()
    assert report.broken_at == launched.id and "altered" in (report.reason or "")


def test_verification_names_the_event_after_a_removed_one(history: list[str]):
    renamed = Event.objects.get(action="keypairs.key_pair.renamed")
    following = Event.objects.filter(id__gt=renamed.id).order_by("id").first()
    assert following is not None
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_event WHERE id = %s", [renamed.id])
    report = verify_chain()
    assert report.broken_at == following.id and "removed" in (report.reason or "")


def _drop_guards() -> None:
    """Someone with the database owner's rights: no trigger stops them."""
    with connection.cursor() as cursor:
        for table in ("audit_event", "audit_checkpoint"):
            cursor.execute(
                f"DROP TRIGGER {table}_no_update"
                + (f" ON {table}" if connection.vendor == "postgresql" else "")
            )


def _rewrite_from(event_id: int, details: dict[str, object]) -> None:
    """Rewrite one event and recompute every later hash: the chain alone still holds."""
    _drop_guards()
    events = list(Event.objects.filter(id__gte=event_id).order_by("id"))
    previous = Event.objects.filter(id__lt=event_id).order_by("-id").first()
    previous_hash = previous.hash if previous else GENESIS
    with connection.cursor() as cursor:
        for event in events:
            if event.id == event_id:
                event.details = details
            event.previous_hash = previous_hash
            event.hash = _event_hash(event)
            cursor.execute(
                "UPDATE audit_event SET details = %s, previous_hash = %s, hash = %s WHERE id = %s",
                [json.dumps(event.details), event.previous_hash, event.hash, event.id],
            )
            previous_hash = event.hash


def test_checkpoints_are_signed_chained_and_verify(history: list[str], clock):
    made = list(Checkpoint.objects.order_by("id"))
    assert len(made) == 2  # the launch and the close
    report = verify_anchors()
    assert report.checkpoints == 2 and report.problems == []
    # Offline, with the platform CA only: the document is a signed head.
    body = verify_document(
        made[1].document.encode(),
        name="checkpoint",
        what="checkpoint",
        trusted_authority=platform_authority().certificate,
    ).body
    assert body["head"] == {"sequence": made[1].sequence, "hash": made[1].hash}
    assert body["previous"] is not None
    # Hourly: nothing new since the last one but a logout, so a checkpoint is due.
    clock.advance(hours=2)
    assert checkpoint_if_due(now=clock()) is not None
    assert checkpoint_if_due(now=clock()) is None  # less than an hour since


def test_a_log_cut_short_is_reported(history: list[str]):
    last = Checkpoint.objects.order_by("-id").first()
    assert last is not None
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_event WHERE id >= %s", [last.sequence])
    assert verify_chain().broken_at is None  # the chain alone cannot see it
    problems = verify_anchors().problems
    assert any(f"checkpoint #{last.id}" in p and "cut short" in p for p in problems), problems


def test_a_rewritten_log_is_reported(history: list[str]):
    launched = Event.objects.get(action="tenders.tender.launched")
    _rewrite_from(launched.id, {"reference": "AO-1", "key_pairs": []})
    assert verify_chain().broken_at is None  # every later hash was recomputed
    problems = verify_anchors().problems
    first = Checkpoint.objects.order_by("id").first()
    assert first is not None
    assert any(f"checkpoint #{first.id}" in p and "rewritten" in p for p in problems), problems


def test_a_removed_checkpoint_is_reported(history: list[str]):
    first, second = Checkpoint.objects.order_by("id")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_checkpoint WHERE id = %s", [first.id])
    problems = verify_anchors().problems
    assert any(f"checkpoint #{first.id}" in p and "missing" in p for p in problems), problems
    assert any(f"before checkpoint #{second.id}" in p for p in problems), problems


def test_receipts_anchor_the_log(history: list[str], clock):
    head = Event.objects.order_by("-id").first()
    assert head is not None
    receipt = sign_receipt(
        Receipt(
            platform="Scellé",
            tender="AO-1",
            bidder="BTP",
            deposit="d",
            received_at=clock(),
            late=False,
            envelopes=(ReceivedEnvelope("offre", 1, "0" * 64),),
            audit_head=AuditHead(head.id, head.hash),
        ),
        receipt_signer(),
        [platform_authority().certificate],
    )
    assert verify_anchors([("receipt-d.json", receipt)]).problems == []
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_event WHERE id >= %s", [head.id])
    problems = verify_anchors([("receipt-d.json", receipt)]).problems
    assert any("receipt-d.json" in p and "cut short" in p for p in problems), problems
