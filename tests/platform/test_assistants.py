"""The assistant's side of the platform: heartbeats, the closed list of jobs, who may give
and take them, and what the pages show of a workstation."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.core import authority, certs
from scelle.core.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from scelle.platform.assistants import services
from scelle.platform.assistants.models import Job
from tests.conftest import NOW
from tests.platform.conftest import Buyer, MovableClock, api_client, create_tender, launch, publish

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

FINGERPRINT = ":".join(["AB"] * 32)


def _beat(buyer: Buyer, clock: MovableClock, name: str = "POSTE-ACHAT-12", **extra):
    return services.heartbeat(
        buyer.owner, name=name, version="1", key_pairs=extra.pop("key_pairs", []), now=clock(),
        **extra,
    )  # fmt: skip


def _add(buyer: Buyer, clock: MovableClock, designation: str = "BI-CLE", **extra) -> Job:
    return services.request_key_pair(
        buyer.owner, service_id=buyer.service.id, designation=designation, backup=False,
        common_name=None, reference=extra.pop("reference", None), now=clock(), **extra,
    )  # fmt: skip


def test_a_job_goes_to_the_agents_running_assistant_and_back(
    rouen: Buyer, clock: MovableClock
) -> None:
    with pytest.raises(RuleViolationError, match="never run"):
        _add(rouen, clock)
    workstation = _beat(rouen, clock)
    assert services.assistant_state(rouen.owner, now=clock()).ready
    job = _add(rouen, clock)
    assert job.params["mode"] == "generate" and job.params["common_name"] == "BI-CLE"
    clock.advance(seconds=5)
    taken = services.next_job(rouen.owner, workstation.id, now=clock())
    assert taken is not None and taken.id == job.id and taken.state == "started"
    assert services.next_job(rouen.owner, workstation.id, now=clock()) is None
    clock.advance(seconds=3)
    done = services.finish_job(
        rouen.owner, job.id, succeeded=True, message="ok", result={"designation": "BI-CLE"},
        now=clock(),
    )  # fmt: skip
    assert done.state == "finished"
    assert done.started_at is not None and done.finished_at is not None
    assert done.started_at < done.finished_at
    with pytest.raises(RuleViolationError, match="finished"):
        services.finish_job(rouen.owner, job.id, succeeded=False, message="", result={},
                            now=clock())  # fmt: skip


def test_the_pages_say_not_detected_when_the_assistant_stops_or_goes_quiet(
    rouen: Buyer, clock: MovableClock
) -> None:
    workstation = _beat(rouen, clock)
    _beat(rouen, clock, running=False)
    assert not services.assistant_state(rouen.owner, now=clock()).ready
    # A long poll still waiting when its assistant stopped does not make it run again.
    clock.advance(seconds=30)
    services.next_job(rouen.owner, workstation.id, now=clock())
    assert not services.assistant_state(rouen.owner, now=clock()).ready
    with pytest.raises(RuleViolationError, match="not running on POSTE-ACHAT-12"):
        _add(rouen, clock)
    _beat(rouen, clock)
    clock.advance(seconds=61)
    assert not services.assistant_state(rouen.owner, now=clock()).ready


def test_jobs_are_given_only_to_ones_own_workstation(
    rouen: Buyer, caen: Buyer, clock: MovableClock
) -> None:
    mine = _beat(rouen, clock)
    theirs = services.heartbeat(
        rouen.colleague, name="POSTE-2", version="1", key_pairs=[], now=clock()
    )
    with pytest.raises(NotFoundError):
        _add(rouen, clock, workstation_id=theirs.id)
    job = _add(rouen, clock, workstation_id=mine.id)
    # Another agent can neither take, see, nor report it.
    with pytest.raises(NotFoundError):
        services.next_job(rouen.colleague, mine.id, now=clock())
    with pytest.raises(NotFoundError):
        services.job_for(caen.owner, job.id)
    services.next_job(rouen.owner, mine.id, now=clock())
    with pytest.raises(NotFoundError):
        services.finish_job(caen.owner, job.id, succeeded=True, message="", result={},
                            now=clock())  # fmt: skip


def test_the_list_of_jobs_is_closed_and_each_needs_its_permission(
    rouen: Buyer, clock: MovableClock, bidder
) -> None:
    _beat(rouen, clock)
    with pytest.raises(InvalidInputError, match="does not do"):
        services.request_job(rouen.owner, kind="export_private_key", params={},
                             workstation_id=None, now=clock())  # fmt: skip
    with pytest.raises(PermissionDeniedError):  # `open` only: may not add key pairs
        services.request_key_pair(
            rouen.colleague, service_id=rouen.service.id, designation="X", backup=False,
            common_name=None, reference=None, now=clock(),
        )  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        services.heartbeat(bidder, name="PC", version="1", key_pairs=[], now=clock())


def test_referencing_needs_a_key_pair_the_store_reported(rouen: Buyer, clock: MovableClock) -> None:
    reported = {"name": "ANCIEN", "common_name": "Ancien", "not_after": "2028-01-01T00:00:00+00:00",
                "fingerprint_sha256": FINGERPRINT}  # fmt: skip
    _beat(rouen, clock, key_pairs=[reported])
    with pytest.raises(RuleViolationError, match="holds no key pair"):
        _add(rouen, clock, reference=":".join(["CD"] * 32))
    job = _add(rouen, clock, reference=FINGERPRINT)
    assert job.params["mode"] == "reference" and job.params["common_name"] == "Ancien"
    with pytest.raises(InvalidInputError, match="fingerprint"):
        _beat(rouen, clock, key_pairs=[{**reported, "fingerprint_sha256": "../../etc"}])


def test_opening_jobs_wait_for_the_deadline(rouen: Buyer, clock: MovableClock, rsa_keys) -> None:
    owner = api_client(rouen.owner, clock)
    publish(owner, rouen.service, rsa_keys[0], "PERSO")
    create_tender(owner, rouen.service, "AO-1", deadline=NOW + dt.timedelta(hours=1))
    assert launch(owner, "AO-1", "PERSO").status_code == 200
    _beat(rouen, clock)
    with pytest.raises(RuleViolationError, match="after its deadline"):
        services.request_opening(rouen.owner, "AO-1", now=clock())
    clock.advance(hours=2)
    _beat(rouen, clock)
    job = services.request_opening(rouen.owner, "AO-1", now=clock())
    assert job.kind == "open_tender" and job.params["reference"] == "AO-1"


def test_the_api_routes_of_a_job(rouen: Buyer, clock: MovableClock) -> None:
    client = api_client(rouen.owner, clock)
    answer = client.post(
        "/api/assistant/heartbeat",
        {"workstation": "POSTE-ACHAT-12", "version": "1", "key_pairs": []},
        content_type="application/json",
    )
    workstation = answer.json()["id"]
    assert client.get(f"/api/assistant/jobs/next?workstation={workstation}").status_code == 204
    made = client.post(
        "/api/assistant/jobs",
        {"kind": "add_key_pair", "params": {"service": str(rouen.service.id), "designation": "K"}},
        content_type="application/json",
    )
    assert made.status_code == 201, made.json()
    taken = client.get(f"/api/assistant/jobs/next?workstation={workstation}&wait=0").json()
    assert taken["id"] == made.json()["id"] and taken["state"] == "started"
    bad = client.post(
        "/api/assistant/jobs", {"kind": "shell", "params": {}}, content_type="application/json"
    )
    assert bad.status_code == 422  # outside the closed list the schema states


def test_jobs_never_taken_or_never_reported_fail(rouen: Buyer, clock: MovableClock) -> None:
    workstation = _beat(rouen, clock)
    waiting = _add(rouen, clock, "ATTENTE")
    taken = _add(rouen, clock, "PRIS")
    clock.advance(seconds=1)
    started = services.next_job(rouen.owner, workstation.id, now=clock())
    assert started is not None and started.id == waiting.id
    assert services.expire_jobs(now=clock()) == 0
    clock.advance(minutes=31)
    assert services.expire_jobs(now=clock()) == 1  # PRIS: queued, never taken
    failed = services.job_for(rouen.owner, taken.id)
    assert failed.state == "failed" and "no Scellé assistant took" in failed.message
    clock.advance(hours=24)
    assert services.expire_jobs(now=clock()) == 1  # ATTENTE: started, never reported
    with pytest.raises(RuleViolationError, match="failed, not started"):
        services.finish_job(rouen.owner, waiting.id, succeeded=True, message="", result={},
                            now=clock())  # fmt: skip


def test_a_key_pair_on_a_token_is_said_so_where_it_is_listed(
    rouen: Buyer, clock: MovableClock
) -> None:
    """The workstation says a key pair lives on a token (heartbeat, then publish): the form
    that references one and the key page say it; anything but a boolean is refused."""
    from django.test import Client

    from scelle.platform.keypairs.models import KeyPair

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = certs.self_signed_certificate(key, "Carte", days=700, now=clock())
    reported = {
        "name": "CARTE", "common_name": "Carte", "not_after": "2028-11-01T00:00:00+00:00",
        "fingerprint_sha256": certs.fingerprint_sha256(certificate), "on_token": True,
    }  # fmt: skip
    in_store = {**reported, "name": "MAGASIN", "on_token": False,
                "fingerprint_sha256": "AB:" * 31 + "AB"}  # fmt: skip
    _beat(rouen, clock, key_pairs=[reported, in_store])
    page = Client(HTTP_ACCEPT_LANGUAGE="fr")
    page.force_login(rouen.owner)
    form = page.get(
        f"/administration/cles-de-chiffrement/service/{rouen.service.id}/ajouter/", secure=True
    ).content.decode()
    assert "CARTE (CN Carte, expire le 2028-11-01) — sur un jeton" in form
    assert "MAGASIN (CN Carte, expire le 2028-11-01)</option>" in form

    client = api_client(rouen.owner, clock)
    body = {"service": str(rouen.service.id), "designation": "CARTE", "on_token": "yes",
            "csr_pem": authority.build_csr(key, "Carte").decode()}  # fmt: skip
    refused = client.post("/api/key-pairs", body, content_type="application/json")
    assert refused.status_code in (400, 422) and not KeyPair.objects.exists()
    answer = client.post("/api/key-pairs", {**body, "on_token": True},
                         content_type="application/json")  # fmt: skip
    assert answer.status_code == 201 and answer.json()["on_token"] is True
    assert publish(client, rouen.service, rsa.generate_private_key(
        public_exponent=65537, key_size=2048), "MAGASIN").json()["on_token"] is False  # fmt: skip
    keys = page.get(
        f"/administration/cles-de-chiffrement/service/{rouen.service.id}/", secure=True
    ).content.decode()
    assert keys.count(">sur un jeton</span>") == 1
    assert 'CARTE <span class="tag"' in keys
