"""A tender opened by a commission (DESIGN.md, "Commission"): its launch, and the deposits
the platform accepts for it, through the API and the page *Lancer*."""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest
from cryptography import x509
from django.test import Client

from scelle.core import certs
from scelle.core.commission import COMMISSION_OID, Commission, recipient_info
from scelle.core.envelope import EnvelopeKeys, encrypt_stream
from scelle.core.receipt import verify_receipt
from scelle.core.rsf import commission_set_fingerprint
from scelle.platform.accounts.models import Organisation, User
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.tenders.models import AssignedKeyPair, Tender
from tests.conftest import NOW
from tests.platform.conftest import (
    Buyer,
    MovableClock,
    api_client,
    create_tender,
    make_user,
    publish,
)
from tests.platform.test_deposits import Bidder

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

DEADLINE = NOW + dt.timedelta(days=30)
MEMBER_PERMISSIONS = ("manage_keys", "open")


@pytest.fixture(autouse=True)
def _envelopes(settings, tmp_path) -> None:
    settings.SCELLE_ENVELOPES_DIR = tmp_path / "envelopes"


@pytest.fixture
def members(rouen: Buyer, clock: MovableClock, rsa_keys) -> list[User]:
    """Three agents allowed to open, each having added a key pair of their own; the service
    has a backup key pair."""
    agents = [
        make_user(f"membre{n}@rouen.fr", rouen.organisation, service=rouen.service,
                  permissions=MEMBER_PERMISSIONS)
        for n in (1, 2, 3)
    ]  # fmt: skip
    for n, agent in enumerate(agents):
        answer = publish(api_client(agent, clock), rouen.service, rsa_keys[n], f"MEMBRE-{n + 1}")
        assert answer.status_code == 201, answer.content
    owner = api_client(rouen.owner, clock)
    assert publish(owner, rouen.service, rsa_keys[3], "SECOURS", role="backup").status_code == 201
    assert publish(owner, rouen.service, rsa_keys[4], "PERSO-ACHETEUR").status_code == 201
    return agents


def launch_commission(client: Client, reference: str, threshold: object, *designations: str):
    return client.post(
        f"/api/tenders/{reference}/launch",
        {"key_pairs": list(designations), "commission_threshold": threshold},
        content_type="application/json",
    )


def test_a_commission_is_launched_with_its_members_k_and_rsf(rouen: Buyer, clock, members):
    owner = api_client(rouen.owner, clock)
    create_tender(owner, rouen.service, "AO-COM", deadline=DEADLINE)
    answer = launch_commission(owner, "AO-COM", 2, "MEMBRE-1", "MEMBRE-2", "MEMBRE-3")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["commission"] == {"threshold": 2}
    roles = {k["designation"]: (k["role"], k["holder"]) for k in body["key_pairs"]}
    assert roles == {
        "MEMBRE-1": ("member", "membre1@rouen.fr"),
        "MEMBRE-2": ("member", "membre2@rouen.fr"),
        "MEMBRE-3": ("member", "membre3@rouen.fr"),
        "SECOURS": ("backup", None),
    }
    fingerprints = {k["designation"]: k["fingerprint_sha256"] for k in body["key_pairs"]}
    expected = commission_set_fingerprint(
        [fingerprints["SECOURS"]],
        [fingerprints[f"MEMBRE-{n}"] for n in (1, 2, 3)],
        2,
    )
    assert body["rsf"] == expected
    # Another k, or the same members as ordinary recipients, give other codes.
    assert expected != commission_set_fingerprint(
        [fingerprints["SECOURS"]], [fingerprints[f"MEMBRE-{n}"] for n in (1, 2, 3)], 3
    )
    launched = Tender.objects.get(reference="AO-COM")
    assert launched.commission_threshold == 2
    # Definitive, like every assignment.
    again = launch_commission(owner, "AO-COM", 3, "MEMBRE-1", "MEMBRE-2", "MEMBRE-3")
    assert again.status_code == 409
    assert Tender.objects.get(reference="AO-COM").commission_threshold == 2
    # Companies see the commission and the members, not who holds them.
    company = make_user("offres@btp.fr", _company(), permissions=())
    seen = api_client(company, clock).get("/api/tenders/AO-COM").json()
    assert seen["commission"] == {"threshold": 2} and seen["rsf"] == expected
    assert {k["holder"] for k in seen["key_pairs"]} == {None}


def _company() -> Organisation:
    from scelle.platform.accounts import services

    return services.create_organisation("BTP Commission SA", "bidder", now=NOW)


@pytest.mark.parametrize(
    ("threshold", "designations", "status", "says"),
    [
        (3, ("MEMBRE-1", "MEMBRE-2"), 409, "cannot need 3"),
        (1, ("MEMBRE-1", "MEMBRE-2"), 422, ""),
        (2, ("MEMBRE-1",), 409, "cannot need 2"),
        (2, ("MEMBRE-1", "SECOURS"), 409, "personal key pairs"),
        (2, ("MEMBRE-1", "PERSO-ACHETEUR"), 409, "no holder allowed to open"),
    ],
)
def test_a_commission_that_cannot_be_is_refused_and_nothing_is_recorded(
    rouen: Buyer, clock, members, threshold, designations, status, says
):
    owner = api_client(rouen.owner, clock)
    create_tender(owner, rouen.service, "AO-NON", deadline=DEADLINE)
    if says == "no holder allowed to open":
        # The buyer added PERSO-ACHETEUR, and may not open any more.
        rouen.owner.permissions.filter(name="open").delete()
    answer = launch_commission(owner, "AO-NON", threshold, *designations)
    assert answer.status_code == status, answer.content
    if says:
        assert says in answer.json()["detail"]
    assert Tender.objects.get(reference="AO-NON").status == "draft"
    assert not AssignedKeyPair.objects.exists()


def test_each_member_is_another_agent_and_a_backup_is_needed(
    rouen: Buyer, clock, members, rsa_keys
):
    owner = api_client(rouen.owner, clock)
    second = publish(api_client(members[0], clock), rouen.service, rsa_keys[5], "MEMBRE-1-BIS")
    assert second.status_code == 201
    create_tender(owner, rouen.service, "AO-MEME", deadline=DEADLINE)
    answer = launch_commission(owner, "AO-MEME", 2, "MEMBRE-1", "MEMBRE-1-BIS")
    assert answer.status_code == 409
    assert "held by the same agent" in answer.json()["detail"]
    from scelle.platform.keypairs.models import KeyPair

    KeyPair.objects.filter(designation="SECOURS").delete()
    answer = launch_commission(owner, "AO-MEME", 2, "MEMBRE-1", "MEMBRE-2")
    assert answer.status_code == 409 and "no backup key pair" in answer.json()["detail"]
    assert Tender.objects.get(reference="AO-MEME").status == "draft"


def test_the_page_launches_a_commission_and_shows_it(rouen: Buyer, clock, members):
    from scelle.platform.keypairs.models import KeyPair

    owner = api_client(rouen.owner, clock)
    create_tender(owner, rouen.service, "AO-PAGE", deadline=DEADLINE)
    tender = Tender.objects.get(reference="AO-PAGE")
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(rouen.owner)
    form = page.get(f"/consultations/{tender.id}/lancer/").content.decode()
    assert "added by membre2@rouen.fr" in form and "stay ordinary recipients" in form
    chosen = [str(k.id) for k in KeyPair.objects.filter(designation__startswith="MEMBRE")]
    # k missing: said, nothing launched.
    refused = page.post(
        f"/consultations/{tender.id}/lancer/",
        {"key_pairs": chosen, "opening": "commission", "threshold": "x", "definitive": "yes"},
        follow=True,
    )
    assert "how many members must take part" in refused.content.decode()
    assert Tender.objects.get(id=tender.id).status == "draft"
    done = page.post(
        f"/consultations/{tender.id}/lancer/",
        {"key_pairs": chosen, "opening": "commission", "threshold": "2", "definitive": "yes"},
        follow=True,
    )
    text = done.content.decode()
    assert "2 of its 3 members must take part" in text
    assert "commission member (membre1@rouen.fr)" in text
    assert Tender.objects.get(id=tender.id).commission_threshold == 2


# --- deposits to a commission's tender ----------------------------------------------------


@pytest.fixture
def commission_tender(rouen: Buyer, clock, members) -> Tender:
    owner = api_client(rouen.owner, clock)
    create_tender(owner, rouen.service, "AO-DEP", deadline=DEADLINE)
    answer = launch_commission(owner, "AO-DEP", 2, "MEMBRE-1", "MEMBRE-2", "MEMBRE-3")
    assert answer.status_code == 200, answer.content
    return Tender.objects.get(reference="AO-DEP")


def _sealed(tender: Tender, *, threshold: int | None = None, members: int | None = None) -> bytes:
    assigned = list(tender.assigned_key_pairs.all())

    def load(assigned_key_pair: AssignedKeyPair) -> x509.Certificate:
        return certs.load_certificate(assigned_key_pair.certificate_pem.encode())

    backups = [load(a) for a in assigned if a.role == "backup"]
    chosen = tuple(load(a) for a in assigned if a.role == "member")[:members]
    commission = Commission(
        tender.id, tender.deadline, chosen, threshold or tender.commission_threshold or 2
    )
    keys = EnvelopeKeys.for_recipients(backups, also=lambda key: recipient_info(key, commission))
    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(os.urandom(3000)), sink, keys)
    return sink.getvalue()


def test_a_commission_deposit_and_its_receipt(commission_tender: Tender, clock, bidder):
    company = Bidder(api_client(bidder, clock))
    uploads = {
        kind: company.upload("AO-DEP", kind, _sealed(commission_tender))
        for kind in ("candidature", "offre")
    }
    answer = company.finalise("AO-DEP", uploads)
    assert answer.status_code == 201, answer.content
    receipt = verify_receipt(
        answer.json()["receipt"].encode(), trusted_authority=platform_authority().certificate
    ).receipt
    members = sorted(
        a.fingerprint_sha256 for a in commission_tender.assigned_key_pairs.filter(role="member")
    )
    assert receipt.commission is not None
    assert receipt.commission.threshold == 2 and list(receipt.commission.members) == members
    everyone = {a.fingerprint_sha256 for a in commission_tender.assigned_key_pairs.all()}
    assert all(set(e.recipients) == everyone for e in receipt.envelopes)


@pytest.mark.parametrize("wrong", ["another k", "a member left out", "no commission", "malformed"])
def test_an_envelope_not_shared_as_launched_is_refused(
    commission_tender: Tender, clock, bidder, wrong
):
    company = Bidder(api_client(bidder, clock))
    if wrong == "another k":
        data = _sealed(commission_tender, threshold=3)
    elif wrong == "a member left out":
        data = _sealed(commission_tender, members=2)
    elif wrong == "no commission":
        everyone = [
            certs.load_certificate(a.certificate_pem.encode())
            for a in commission_tender.assigned_key_pairs.all()
        ]
        sink = io.BytesIO()
        encrypt_stream(io.BytesIO(b"x" * 100), sink, EnvelopeKeys.for_recipients(everyone))
        data = sink.getvalue()
    else:
        data = _malformed(_sealed(commission_tender))
    uploads = {
        "candidature": company.upload("AO-DEP", "candidature", _sealed(commission_tender)),
        "offre": company.upload("AO-DEP", "offre", data),
    }
    answer = company.finalise("AO-DEP", uploads)
    assert answer.status_code == 409, answer.content
    assert "offre" in answer.json()["detail"] and "nothing was deposited" in answer.json()["detail"]


def _malformed(envelope: bytes) -> bytes:
    """The envelope with its commission's version changed to 2 (same length): the
    commission recipient no longer reads as ours."""
    marker = bytes.fromhex("06") + _oid_body(COMMISSION_OID)
    at = envelope.index(marker) + len(marker)
    # ori_value follows the OID: a SEQUENCE whose first field is the version, 1.
    version = envelope.index(b"\x02\x01\x01", at)
    return envelope[:version] + b"\x02\x01\x02" + envelope[version + 3 :]


def _oid_body(dotted: str) -> bytes:
    from asn1crypto.core import ObjectIdentifier

    return bytes(ObjectIdentifier(dotted).dump()[1:])
