"""The audit log: every change is an event, and the hash chain shows tampering."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from scelle.core.errors import RuleViolationError
from scelle.platform.audit.models import Event
from scelle.platform.audit.services import verify_chain
from tests.platform.conftest import Buyer, api_client, create_tender, launch, publish

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


@pytest.fixture
def history(rouen: Buyer, clock, rsa_keys) -> list[str]:
    owner = api_client(rouen.owner, clock)
    key_id = publish(owner, rouen.service, rsa_keys[0], "PERSO").json()["id"]
    publish(owner, rouen.service, rsa_keys[1], "SECOURS", role="backup")
    create_tender(owner, rouen.service, "AO-1")
    launch(owner, "AO-1", "PERSO")
    owner.patch(f"/api/key-pairs/{key_id}", {"designation": "P"}, content_type="application/json")
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
    assert history[-9:] == [
        "accounts.token.created",
        "keypairs.key_pair.added",
        "keypairs.key_pair.added",
        "tenders.tender.created",
        "tenders.tender.launched",
        "keypairs.key_pair.renamed",
        "tenders.tender.closed",
        "keypairs.key_pair.deleted",
        "accounts.token.revoked",
    ]
    launched = Event.objects.get(action="tenders.tender.launched")
    assert launched.actor == "acheteur@rouen.fr"
    assert launched.organisation_id == rouen.organisation.id
    assert {k["designation"] for k in launched.details["key_pairs"]} == {"PERSO", "SECOURS"}
    # Secrets are never written to the log.
    token_event = Event.objects.filter(action="accounts.token.created").first()
    assert token_event is not None and set(token_event.details) == {"prefix", "expires_at"}


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
