"""Authorisation, from one table: each API route, each kind of caller, one status.

Callers: nobody (no token), a company's user, another buyer's agent (the
outsider: what is not theirs is "not found"), an agent of the same buyer
without a permission on the service, and the agent who holds it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from scelle.platform.accounts.models import User
from scelle.platform.api import api
from scelle.platform.assistants import services as assistants
from scelle.platform.deposits import services as deposits
from scelle.platform.deposits.models import Deposit, Envelope
from scelle.platform.tenders.models import Tender
from scelle.platform.tenders.testing import ensure_test_tender
from tests.conftest import NOW
from tests.platform.conftest import (
    Buyer,
    MovableClock,
    api_client,
    create_tender,
    launch,
    make_user,
    publish,
    sealed,
)

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

CALLERS = ("anonymous", "bidder", "outsider", "without_permission", "permitted")


@dataclass
class World:
    """One buyer's service with key pairs and tenders, and a client per caller."""

    buyer: Buyer
    clients: dict[str, Client]
    ids: dict[str, str]
    bidder: User | None = None


@pytest.fixture
def world(rouen: Buyer, caen: Buyer, bidder, clock: MovableClock, rsa_keys) -> World:
    owner = api_client(rouen.owner, clock)
    ids: dict[str, str] = {"service": str(rouen.service.id), "colleague": str(rouen.colleague.id)}
    for index, (designation, role) in enumerate(
        [("PERSO", "personal"), ("SECOURS", "backup"), ("LIBRE", "personal")]
    ):
        answer = publish(owner, rouen.service, rsa_keys[index], designation, role=role)
        ids[designation] = answer.json()["id"]
    create_tender(owner, rouen.service, "DRAFT-1")
    create_tender(owner, rouen.service, "PUB-1", deadline=NOW + dt.timedelta(days=1))
    assert launch(owner, "PUB-1", "PERSO").status_code == 200
    ids["deposit"] = str(_deposit(bidder, "PUB-1").id)
    upload = deposits.create_upload(
        bidder, reference="PUB-1", envelope="offre", length=10, now=clock()
    )
    ids["upload"] = str(upload.id)
    # The owner's assistant, with one job it has started and one waiting.
    workstation = assistants.heartbeat(
        rouen.owner, name="POSTE-ACHAT-12", version="test", key_pairs=[], now=clock()
    )
    ids["workstation"] = str(workstation.id)
    for designation in ("EN-COURS", "EN-ATTENTE"):
        job = assistants.request_key_pair(
            rouen.owner, service_id=rouen.service.id, designation=designation, backup=False,
            common_name=None, reference=None, now=clock(),
        )  # fmt: skip
        ids[designation] = str(job.id)
    assistants.next_job(rouen.owner, workstation.id, now=clock())
    # An agent of the same buyer whose only permission is on another service.
    intern = make_user(
        "stagiaire@rouen.fr", rouen.organisation, service=rouen.other_service, permissions=("open",)
    )
    clients = {
        "anonymous": Client(),
        "bidder": api_client(bidder, clock),
        "outsider": api_client(caen.owner, clock),
        "without_permission": api_client(intern, clock),
        "permitted": owner,
    }
    return World(rouen, clients, ids, bidder)


def with_test_tender(world: World, path: str = "{TEST}") -> None:
    """The platform's test tender and a test deposit of the bidder's in `world`, for the rows
    whose path names them (a test key pair made for every row would cost the suite)."""
    if "{TEST}" not in path and "{test_deposit}" not in path:
        return
    test_tender = ensure_test_tender(now=NOW)
    assert test_tender is not None and world.bidder is not None
    world.ids["TEST"] = str(test_tender.id)
    world.ids["test_deposit"] = str(_deposit(world.bidder, test_tender.reference).id)


def with_commission(world: World, path: str, clock: MovableClock, rsa_keys) -> None:
    """A tender COM-1 opened by a commission of two (the owner and another agent), for the
    rows whose path names it."""
    if "COM-1" not in path:
        return
    member = make_user(
        "membre@rouen.fr", world.buyer.organisation, service=world.buyer.service,
        permissions=("manage_keys", "open"),
    )  # fmt: skip
    publish(api_client(member, clock), world.buyer.service, rsa_keys[4], "MEMBRE")
    owner = world.clients["permitted"]
    create_tender(owner, world.buyer.service, "COM-1", deadline=clock() + dt.timedelta(days=1))
    launched = owner.post(
        "/api/tenders/COM-1/launch",
        {"key_pairs": ["PERSO", "MEMBRE"], "commission_threshold": 2},
        content_type="application/json",
    )
    assert launched.status_code == 200, launched.content


def _deposit(user: User, reference: str) -> Deposit:
    """A company's deposit made through the services, as the tus routes do."""
    made = []
    for kind in ("candidature", "offre"):
        data = sealed(3, reference)
        upload = deposits.create_upload(
            user, reference=reference, envelope=kind, length=len(data), now=NOW
        )
        deposits.append_to_upload(
            user, upload.id, offset=0, body=io.BytesIO(data), count=len(data), checksum=None
        )
        made.append((kind, upload.id))
    return deposits.finalise_deposit(user, reference, made, now=NOW)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """With {placeholders} filled from World.ids."""
    openapi_path: str
    body: dict[str, Any] | None
    expected: tuple[int, int, int, int, int]
    """Status for each of CALLERS, in order."""
    after_deadline: bool = False
    """Call it once PUB-1's deadline has passed (opening routes)."""
    headers: dict[str, str] | None = None
    """A tus request: these headers, and `body` as raw bytes."""


ROUTES = [
    Route("get", "/api/health", "/api/health", None, (200, 200, 200, 200, 200)),
    Route("get", "/api/platform/ca", "/api/platform/ca", None, (200, 200, 200, 200, 200)),
    Route("get", "/api/me", "/api/me", None, (401, 200, 200, 200, 200)),
    Route("post", "/api/auth/logout", "/api/auth/logout", None, (401, 204, 204, 204, 204)),
    Route(
        "get", "/api/key-pairs?service={service}", "/api/key-pairs", None,
        (401, 403, 404, 403, 200),
    ),
    Route(
        "post", "/api/key-pairs", "/api/key-pairs", {"publish": True},
        (401, 403, 404, 403, 201),
    ),
    Route(
        "patch", "/api/key-pairs/{LIBRE}", "/api/key-pairs/{key_pair_id}",
        {"designation": "RENOMMÉ"}, (401, 403, 404, 403, 200),
    ),
    Route(
        "delete", "/api/key-pairs/{LIBRE}", "/api/key-pairs/{key_pair_id}", None,
        (401, 403, 404, 403, 204),
    ),
    Route("get", "/api/tenders", "/api/tenders", None, (401, 200, 200, 200, 200)),
    Route(
        "post", "/api/tenders", "/api/tenders", {"tender": True},
        (401, 403, 404, 403, 201),
    ),
    Route(
        "get", "/api/tenders/DRAFT-1", "/api/tenders/{tender}", None,
        (401, 404, 404, 403, 200),
    ),
    Route(
        "post", "/api/tenders/DRAFT-1/launch", "/api/tenders/{tender}/launch",
        {"key_pairs": ["PERSO"]}, (401, 404, 404, 403, 200),
    ),
    Route(
        "post", "/api/tenders/DRAFT-1/close", "/api/tenders/{tender}/close", None,
        (401, 404, 404, 403, 200),
    ),
    Route(
        "post", "/api/tenders/PUB-1/cancel", "/api/tenders/{tender}/cancel",
        {"reason": "Besoin disparu"}, (401, 403, 404, 403, 200),
    ),
    Route(
        "get", "/api/tenders/PUB-1/recipients", "/api/tenders/{tender}/recipients", None,
        (401, 200, 404, 403, 200),
    ),
    # Deposits: companies make and list their own; agents allowed to open list a tender's.
    Route("get", "/api/deposits", "/api/deposits", None, (401, 200, 403, 403, 403)),
    Route(
        "get", "/api/deposits/{deposit}", "/api/deposits/{deposit_id}", None,
        (401, 200, 403, 403, 403),
    ),
    Route(
        "get", "/api/tenders/PUB-1/deposits", "/api/tenders/{tender}/deposits", None,
        (401, 403, 404, 403, 200),
    ),
    Route(
        "post", "/api/deposits/{deposit}/withdrawal", "/api/deposits/{deposit_id}/withdrawal",
        None, (401, 201, 403, 403, 403),
    ),
    Route(
        "post", "/api/tenders/PUB-1/commitments", "/api/tenders/{tender}/commitments",
        {"envelopes": [{"kind": "candidature", "sha256": "a" * 64},
                       {"kind": "offre", "sha256": "b" * 64}]},
        (401, 201, 403, 403, 403),
    ),
    Route(
        "post", "/api/tenders/PUB-1/deposits", "/api/tenders/{tender}/deposits",
        {"deposit": True}, (401, 404, 403, 403, 403),
    ),
    # Opening: after the deadline, agents with `open` on the tender's service.
    Route(
        "get", "/api/deposits/{deposit}/envelopes/offre",
        "/api/deposits/{deposit_id}/envelopes/{kind}",
        None, (401, 403, 404, 403, 200), after_deadline=True,
    ),
    Route(
        "post", "/api/deposits/{deposit}/envelopes/offre/opened",
        "/api/deposits/{deposit_id}/envelopes/{kind}/opened",
        {"files": 1}, (401, 403, 404, 403, 204), after_deadline=True,
    ),
    Route(
        "post", "/api/opened-envelopes", "/api/opened-envelopes", {"opened": "{deposit}"},
        (401, 403, 404, 403, 204), after_deadline=True,
    ),
    # The test tender: its key for anyone; a test deposit, to its own company at any time.
    Route(
        "get", "/api/tenders/{TEST}/test-key", "/api/tenders/{tender}/test-key", None,
        (200, 200, 200, 200, 200),
    ),
    Route(
        "get", "/api/tenders/{TEST}/deposits", "/api/tenders/{tender}/deposits", None,
        (401, 200, 404, 404, 404),
    ),
    Route(
        "get", "/api/deposits/{test_deposit}/envelopes/offre",
        "/api/deposits/{deposit_id}/envelopes/{kind}", None, (401, 200, 404, 404, 404),
    ),
    Route(
        "post", "/api/deposits/{test_deposit}/envelopes/offre/opened",
        "/api/deposits/{deposit_id}/envelopes/{kind}/opened",
        {"files": 1}, (401, 204, 404, 404, 404),
    ),
    Route(
        "post", "/api/opened-envelopes", "/api/opened-envelopes", {"opened": "{test_deposit}"},
        (401, 204, 404, 404, 404),
    ),
    # A commission's opening: its members start it and take part; the opener gets the shares.
    Route(
        "get", "/api/tenders/COM-1/commission", "/api/tenders/{tender}/commission", None,
        (401, 403, 404, 403, 200),
    ),
    Route(
        "post", "/api/tenders/COM-1/commission", "/api/tenders/{tender}/commission", None,
        (401, 403, 404, 403, 200), after_deadline=True,
    ),
    Route(
        "post", "/api/tenders/COM-1/commission/participation",
        "/api/tenders/{tender}/commission/participation", None,
        (401, 403, 404, 403, 404), after_deadline=True,  # not started: nothing to take part in
    ),
    Route(
        "post", "/api/tenders/COM-1/commission/shares", "/api/tenders/{tender}/commission/shares",
        {"relay": True}, (401, 403, 404, 403, 404), after_deadline=True,
    ),
    Route(
        "get", "/api/tenders/COM-1/commission/shares", "/api/tenders/{tender}/commission/shares",
        None, (401, 403, 404, 403, 404), after_deadline=True,
    ),
    Route(
        "get", "/api/tenders/COM-1/commission/headers",
        "/api/tenders/{tender}/commission/headers", None, (401, 403, 404, 403, 404),
        after_deadline=True,
    ),
    Route(
        "get", "/api/commission-requests", "/api/commission-requests", None,
        (401, 403, 200, 200, 200),
    ),
    # Habilitations: agents who administer a service, on their own organisation's agents.
    Route("get", "/api/agents", "/api/agents", None, (401, 403, 200, 403, 200)),
    Route(
        "post", "/api/agents", "/api/agents",
        {"email": "nouvel.agent@example.fr", "password": "Mot-de-passe-Agent-2026!"},
        (401, 403, 201, 403, 201),
    ),
    Route(
        "post", "/api/agents/{colleague}/permissions", "/api/agents/{user_id}/permissions",
        {"service_id": True}, (401, 403, 404, 403, 200),
    ),
    Route(
        "delete", "/api/agents/{colleague}/permissions/{service}/open",
        "/api/agents/{user_id}/permissions/{service_id}/{permission}", None,
        (401, 403, 404, 403, 200),
    ),
    Route(
        "post", "/api/agents/{colleague}/deactivate", "/api/agents/{user_id}/deactivate", None,
        (401, 403, 404, 403, 200),
    ),
    # The assistant: every agent has their own; jobs are the agent's own, for their workstation.
    Route(
        "post", "/api/assistant/heartbeat", "/api/assistant/heartbeat",
        {"workstation": "POSTE-1", "version": "1", "key_pairs": []}, (401, 403, 200, 200, 200),
    ),
    Route(
        "get", "/api/assistant/jobs/next?workstation={workstation}", "/api/assistant/jobs/next",
        None, (401, 403, 404, 404, 200),
    ),
    Route(
        "post", "/api/assistant/jobs", "/api/assistant/jobs",
        {"job": True}, (401, 403, 404, 403, 201),
    ),
    Route("get", "/api/assistant/jobs", "/api/assistant/jobs", None, (401, 403, 200, 200, 200)),
    Route(
        "get", "/api/assistant/jobs/{EN-COURS}", "/api/assistant/jobs/{job_id}", None,
        (401, 403, 404, 404, 200),
    ),
    Route(
        "post", "/api/assistant/jobs/{EN-COURS}/finish", "/api/assistant/jobs/{job_id}/finish",
        {"outcome": "finished", "message": "ok", "result": {}}, (401, 403, 404, 404, 200),
    ),
]  # fmt: skip
TUS_ROUTES = [
    Route(
        "options", "/api/uploads/", "/api/uploads/", None, (204, 204, 204, 204, 204),
        headers={},
    ),
    Route(
        "post", "/api/uploads/", "/api/uploads/", None, (401, 201, 403, 403, 403),
        headers={
            "Upload-Length": "10",
            "Upload-Metadata": "tender " + base64.b64encode(b"PUB-1").decode()
            + ",envelope " + base64.b64encode(b"offre").decode(),
        },
    ),
    Route(
        "head", "/api/uploads/{upload}", "/api/uploads/{upload_id}", None,
        (401, 200, 403, 403, 403), headers={},
    ),
    Route(
        "patch", "/api/uploads/{upload}", "/api/uploads/{upload_id}", {"raw": True},
        (401, 204, 403, 403, 403), headers={"Upload-Offset": "0"},
    ),
    Route(
        "delete", "/api/uploads/{upload}", "/api/uploads/{upload_id}", None,
        (401, 204, 403, 403, 403), headers={},
    ),
]  # fmt: skip
ROUTES += TUS_ROUTES
# Login is the one route that takes no token: tested in test_accounts.py.
UNGUARDED = {("post", "/api/auth/login")}


def test_the_table_covers_every_route() -> None:
    schema = api.get_openapi_schema(path_prefix="/api")
    documented = {
        (method, path) for path, operations in schema["paths"].items() for method in operations
    }
    covered = {(route.method, route.openapi_path) for route in ROUTES} | UNGUARDED
    assert documented == covered


def _body(route: Route, world: World, rsa_keys) -> dict[str, Any] | None:
    if route.body == {"publish": True}:
        from tests.platform.conftest import csr_for

        return {
            "service": world.ids["service"],
            "role": "personal",
            "designation": "NOUVEAU",
            "csr_pem": csr_for(rsa_keys[5], "NOUVEAU"),
        }
    if route.body == {"deposit": True}:  # uploads that are not the caller's
        return {
            "envelopes": [
                {"kind": "candidature", "upload": "6f1d2c3b-0000-4000-8000-000000000001"},
                {"kind": "offre", "upload": "6f1d2c3b-0000-4000-8000-000000000002"},
            ]
        }
    if route.body is not None and "opened" in route.body:  # both envelopes, in one report
        deposit = world.ids[str(route.body["opened"]).strip("{}")]
        return {"envelopes": [{"deposit": deposit, "kind": kind, "files": 1}
                              for kind in ("candidature", "offre")]}  # fmt: skip
    if route.body == {"relay": True}:
        share = {"deposit": world.ids["deposit"], "kind": "offre", "relayed": "AAAA"}
        return {"shares": [share]}
    if route.body == {"service_id": True}:
        return {"service": world.ids["service"], "permission": "manage_tenders"}
    if route.body == {"job": True}:
        return {
            "kind": "add_key_pair",
            "params": {"service": world.ids["service"], "designation": "NOUVEAU-BI-CLE"},
        }
    if route.body == {"tender": True}:
        return {
            "service": world.ids["service"],
            "reference": "NEUF-1",
            "title": "Nouveau marché",
            "deadline": "2027-06-01T12:00:00+02:00",
        }
    return route.body


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_authorisation_matrix(
    route: Route, caller: str, world: World, rsa_keys, clock: MovableClock
) -> None:
    with_commission(world, route.path, clock, rsa_keys)
    if route.after_deadline:
        clock.advance(days=2)
    client = world.clients[caller]
    with_test_tender(world, f"{route.path} {route.body}")
    path = route.path.format(**world.ids)
    body = _body(route, world, rsa_keys)
    response: Any
    if route.headers is not None:
        response = client.generic(
            route.method.upper(), path, b"0123456789" if body else b"",
            content_type="application/offset+octet-stream",
            headers={"Tus-Resumable": "1.0.0", **route.headers},
        )  # fmt: skip
    else:
        call = getattr(client, route.method)
        response = call(path) if body is None else call(path, body, content_type="application/json")
    expected = route.expected[CALLERS.index(caller)]
    if response.streaming:  # an envelope: reading it through closes the file
        deposit = "test_deposit" if "{test_deposit}" in route.path else "deposit"
        stored = Envelope.objects.get(deposit_id=world.ids[deposit], kind="offre")
        assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == stored.sha256
    assert response.status_code == expected, response
    if response.status_code in (401, 403, 404) and route.method != "head":
        # Refusals carry a message, never data.
        answer = response.json()
        assert set(answer) == {"detail", "hint"}
        assert "PERSO" not in response.content.decode()


def test_lists_show_only_what_the_caller_may_see(world: World) -> None:
    with_test_tender(world)
    tenders = {
        caller: sorted(t["reference"] for t in world.clients[caller].get("/api/tenders").json())
        for caller in CALLERS[1:]
    }
    test_reference = Tender.objects.get(id=world.ids["TEST"]).reference
    assert tenders == {
        "bidder": ["PUB-1", test_reference],  # launched tenders only, never drafts
        "outsider": [],  # the test tender is for companies only
        "without_permission": [],
        "permitted": ["DRAFT-1", "PUB-1"],
    }
    for caller in ("outsider", "without_permission"):
        assert world.clients[caller].get("/api/key-pairs").json()["key_pairs"] == []
