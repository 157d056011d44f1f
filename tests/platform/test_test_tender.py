"""The *Consultation de test* (issue 23, item 6): a tender every company sees, whose key pair's
private key the platform publishes; test deposits are a company's own, marked, small, few,
never shown to a buyer, and swept."""

from __future__ import annotations

import base64
import datetime as dt
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from scelle.core import archive, certs, envelope, pkcs12
from scelle.core.receipt import verify_receipt
from scelle.platform.audit.models import Event
from scelle.platform.deposits import storage
from scelle.platform.deposits.models import Deposit, Envelope
from scelle.platform.deposits.services import sweep_test_deposits
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.tenders import testing
from scelle.platform.tenders.models import Tender
from tests.conftest import NOW
from tests.platform.conftest import Buyer, MovableClock, api_client, sealed
from tests.platform.test_deposits import Bidder, _rival

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


@pytest.fixture(autouse=True)
def _envelopes(settings, tmp_path) -> None:
    settings.SCELLE_ENVELOPES_DIR = tmp_path / "envelopes"


@pytest.fixture
def test_tender(clock: MovableClock) -> Tender:
    made = testing.ensure_test_tender(now=clock())
    assert made is not None
    return made


@pytest.fixture
def company(bidder, clock: MovableClock) -> Bidder:
    return Bidder(api_client(bidder, clock))


def _published_key(tender: Tender) -> envelope.DecryptionKey:
    """The test key as anyone gets it: without logging in."""
    answer = Client().get(f"/api/tenders/{tender.id}/test-key")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    key = certs.private_key_from_pkcs8(
        base64.b64decode("".join(body["private_key_pem"].strip().splitlines()[1:-1]))
    )
    return envelope.DecryptionKey(key, certs.load_certificate(body["certificate_pem"].encode()))


def _envelope_of(
    tender: Tender, folder: Path, files: dict[str, bytes], kind: str, bidder: str
) -> bytes:
    """A real envelope as `scelle deposit` seals it: files in a manifest-led ZIP."""
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    recipient = certs.load_certificate(tender.assigned_key_pairs.get().certificate_pem.encode())
    plan = archive.plan_archive(folder, tender=tender.reference, envelope=kind, bidder=bidder)
    zipped = io.BytesIO()
    archive.write_archive(plan, zipped)
    sealed_bytes = io.BytesIO()
    envelope.encrypt_stream(
        io.BytesIO(zipped.getvalue()),
        sealed_bytes,
        envelope.EnvelopeKeys.for_recipients([recipient]),
    )
    return sealed_bytes.getvalue()


def _deposit(company: Bidder, tender: Tender, offre: bytes | None = None) -> Any:
    uploads = {
        "candidature": company.upload(str(tender.id), "candidature", sealed(10, tender.reference)),
        "offre": company.upload(str(tender.id), "offre", offre or sealed(20, tender.reference)),
    }
    answer = company.finalise(str(tender.id), uploads)
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_the_platform_keeps_one_test_tender_that_every_company_sees(
    test_tender: Tender, company: Bidder, rouen: Buyer, clock, settings
):
    assert test_tender.is_test and test_tender.status == Tender.Status.PUBLISHED
    assert test_tender.deadline > clock() + dt.timedelta(days=300)
    assert testing.ensure_test_tender(now=clock()) == test_tender  # once, not at every start
    listed = company.client.get("/api/tenders").json()
    assert [(t["reference"], t["test"]) for t in listed] == [(test_tender.reference, True)]
    assert listed[0]["max_deposit_bytes"] == settings.SCELLE_TEST_DEPOSIT_MAX_BYTES
    [recipient] = listed[0]["key_pairs"]
    assert recipient["issued_by_platform"]
    issued = certs.load_certificate(recipient["certificate_pem"].encode())
    assert issued.issuer == platform_authority().certificate.subject
    # Buyers' agents never see it: it is nobody's tender.
    agent = api_client(rouen.owner, clock)
    assert agent.get("/api/tenders").json() == []
    assert agent.get(f"/api/tenders/{test_tender.id}").status_code == 404
    # A month before its deadline the next one is launched, the old one cancelled.
    clock.now = test_tender.deadline - testing.RENEW_BEFORE + dt.timedelta(minutes=1)
    renewed = testing.ensure_test_tender(now=clock())
    assert renewed is not None and renewed != test_tender
    test_tender.refresh_from_db()
    assert test_tender.status == Tender.Status.CANCELLED
    assert Event.objects.filter(action="tenders.test_tender.launched").count() == 2


def test_a_platform_may_have_none(settings, clock, db, company: Bidder):
    settings.SCELLE_TEST_TENDER = False
    assert testing.ensure_test_tender(now=clock()) is None
    assert not Tender.objects.exists()
    assert Client().get("/api/tenders/TEST/test-key").status_code == 404
    # Turned off once there was one: companies no longer see it.
    settings.SCELLE_TEST_TENDER = True
    made = testing.ensure_test_tender(now=clock())
    assert made is not None and company.client.get("/api/tenders").json() != []
    settings.SCELLE_TEST_TENDER = False
    assert testing.ensure_test_tender(now=clock()) is None
    made.refresh_from_db()
    assert made.status == Tender.Status.CANCELLED and "turned" in made.cancel_reason
    assert company.create(str(made.id), "offre", 10).status_code == 409


def test_a_test_deposit_is_marked_and_opens_with_the_published_key(
    test_tender: Tender, company: Bidder, clock, tmp_path
):
    files = {"memoire.txt": "Mémoire technique — essai".encode(), "prix.csv": b"lot;prix\n1;10\n"}
    offre = _envelope_of(test_tender, tmp_path / "offre", files, "offre", "BTP Normandie SARL")
    made = _deposit(company, test_tender, offre)
    verified = verify_receipt(
        made["receipt"].encode(), trusted_authority=platform_authority().certificate
    )
    assert verified.receipt.test is True
    assert '"test":true' in made["receipt"].replace(" ", "")
    # The company lists its own test deposits at the test tender, and downloads them,
    # at any time: no deadline to wait for.
    own = company.client.get(f"/api/tenders/{test_tender.id}/deposits").json()
    assert [d["id"] for d in own] == [made["id"]]
    download = company.client.get(f"/api/deposits/{made['id']}/envelopes/offre")
    assert download.status_code == 200
    stored = download.getvalue()
    assert stored == offre
    opened = io.BytesIO()
    envelope.decrypt_stream(io.BytesIO(stored), opened, [_published_key(test_tender)])
    folder = tmp_path / "out"
    archive.open_archive(io.BytesIO(opened.getvalue()), folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files
    reported = company.client.post(
        f"/api/deposits/{made['id']}/envelopes/offre/opened", {"files": 2},
        content_type="application/json",
    )  # fmt: skip
    assert reported.status_code == 204
    assert Event.objects.filter(action="opening.test_envelope.opened").count() == 1
    assert not Event.objects.filter(action="opening.envelope.opened").exists()


def test_only_its_company_sees_a_test_deposit(
    test_tender: Tender, company: Bidder, rouen: Buyer, clock
):
    from tests.platform.conftest import make_user

    made = _deposit(company, test_tender)
    rival = Bidder(api_client(make_user("offres@rival.fr", _rival(clock)), clock))
    assert rival.client.get(f"/api/tenders/{test_tender.id}/deposits").json() == []
    path = f"/api/deposits/{made['id']}/envelopes/offre"
    assert rival.client.get(path).status_code == 404
    assert rival.client.post(f"{path}/opened", {"files": 1}, "application/json").status_code == 404
    # Nor in a report of several, beside one of its own: refused whole, nothing recorded.
    own = _deposit(rival, test_tender)
    both = {
        "envelopes": [{"deposit": d, "kind": "offre", "files": 1} for d in (own["id"], made["id"])]
    }
    refused = rival.client.post("/api/opened-envelopes", both, "application/json")
    assert refused.status_code == 404
    assert not Event.objects.filter(action="opening.test_envelope.opened").exists()
    agent = api_client(rouen.owner, clock)
    assert agent.get(f"/api/tenders/{test_tender.id}/deposits").status_code == 404
    assert agent.get(path).status_code == 404


def test_a_real_deposit_does_not_open_early_for_its_company(
    test_tender: Tender, company: Bidder, rouen: Buyer, clock, rsa_keys, bidder
):
    from tests.platform.conftest import create_tender, launch, publish

    owner = api_client(rouen.owner, clock)
    publish(owner, rouen.service, rsa_keys[0], "PERSO")
    create_tender(owner, rouen.service, "AO-VRAI", deadline=NOW + dt.timedelta(days=3))
    assert launch(owner, "AO-VRAI", "PERSO").status_code == 200
    uploads = {
        kind: company.upload("AO-VRAI", kind, sealed(10, "AO-VRAI"))
        for kind in ("candidature", "offre")
    }
    made = company.finalise("AO-VRAI", uploads).json()
    assert verify_receipt(made["receipt"].encode()).receipt.test is False
    assert '"test"' not in made["receipt"]
    assert company.client.get(f"/api/deposits/{made['id']}/envelopes/offre").status_code == 403
    assert company.client.get("/api/tenders/AO-VRAI/deposits").status_code == 403
    # Nor does a real tender give its key pair away.
    assert Client().get("/api/tenders/AO-VRAI/test-key").status_code == 404
    page = Client()
    page.force_login(bidder)
    refused = page.get(f"/mes-depots/{made['id']}/ouvrir/", secure=True)
    assert refused.status_code == 409
    assert "Seul un dépôt de test s&#x27;ouvre dans la page" in refused.content.decode()


def test_test_deposits_are_small_and_few(test_tender: Tender, company: Bidder, settings):
    settings.SCELLE_TEST_DEPOSIT_MAX_BYTES = 1000
    too_big = company.create(str(test_tender.id), "offre", 1001)
    assert too_big.status_code == 413
    assert "a test deposit holds at most" in too_big.json()["detail"]
    settings.SCELLE_TEST_DEPOSIT_MAX_BYTES = 50 << 20
    settings.SCELLE_TEST_DEPOSITS_KEPT = 2
    _deposit(company, test_tender)
    # Two deposits' uploads opened while one place is left: the second to end is refused.
    pending = [
        {kind: company.upload(str(test_tender.id), kind, sealed(10, test_tender.reference))
         for kind in ("candidature", "offre")}
        for _twice in range(2)
    ]  # fmt: skip
    assert company.finalise(str(test_tender.id), pending[0]).status_code == 201
    late = company.finalise(str(test_tender.id), pending[1])
    assert late.status_code == 409 and "already has 2 test deposits" in late.json()["detail"]
    refused = company.create(str(test_tender.id), "offre", 10)
    assert refused.status_code == 409
    assert "already has 2 test deposits" in refused.json()["detail"]


@pytest.mark.parametrize("where", ["folder", "store"])
def test_test_deposits_are_swept_after_their_time(
    where: str, test_tender: Tender, company: Bidder, clock, settings, request
):
    if where == "store":  # a try is never under retention: the store lets it go
        request.getfixturevalue("object_store")

    def stored() -> set[str]:
        return {name for name, _written in storage.files()}

    made = _deposit(company, test_tender)
    files = {e.storage_name for e in Envelope.objects.filter(deposit_id=made["id"])}
    assert files <= stored()
    clock.advance(hours=settings.SCELLE_TEST_DEPOSIT_HOURS - 1)
    assert sweep_test_deposits(now=clock()) == 0
    clock.advance(hours=1)
    assert sweep_test_deposits(now=clock()) == 1
    assert not Deposit.objects.filter(id=made["id"]).exists()
    assert not files & stored()
    assert Event.objects.filter(action="deposits.test_deposit.swept").count() == 1
    assert company.client.get("/api/deposits").json() == []
    # The company may deposit again: the sweep freed its place.
    _deposit(company, test_tender)


def test_the_published_key_as_pem_and_pfx_for_anyone(test_tender: Tender):
    pem = Client().get(f"/consultations/ouvertes/{test_tender.id}/cle-de-test.pem")
    assert pem.status_code == 200
    assert b"BEGIN PRIVATE KEY" in pem.content and b"BEGIN CERTIFICATE" in pem.content
    pfx = Client().get(f"/consultations/ouvertes/{test_tender.id}/cle-de-test.pfx")
    assert pfx.status_code == 200
    bundle = pkcs12.import_pkcs12(pfx.content, testing.PFX_PASSWORD)
    assert certs.key_matches_certificate(bundle.private_key, bundle.certificate)
    assert bundle.chain == (platform_authority().certificate,)
    unknown = f"/consultations/ouvertes/{uuid.uuid4()}/cle-de-test.pem"
    assert Client().get(unknown).status_code == 404


def test_the_company_pages_mark_the_test_tender_and_its_deposits(
    test_tender: Tender, company: Bidder, bidder
):
    made = _deposit(company, test_tender)
    page = Client()
    page.force_login(bidder)
    listed = page.get("/consultations/ouvertes/", secure=True).content.decode()
    assert test_tender.reference in listed and 'class="tag"' in listed
    detail = page.get(f"/consultations/ouvertes/{test_tender.id}/", secure=True).content.decode()
    assert "Consultation de test" in detail and "cle-de-test.pfx" in detail
    assert testing.PFX_PASSWORD in detail
    mine = page.get("/mes-depots/", secure=True).content.decode()
    assert f"/mes-depots/{made['id']}/ouvrir/" in mine
    opening = page.get(f"/mes-depots/{made['id']}/ouvrir/", secure=True)
    assert opening.status_code == 200 and "open-test-page.js" in opening.content.decode()
    sealed_offre = page.get(f"/mes-depots/{made['id']}/enveloppes/offre.p7m", secure=True)
    assert sealed_offre.status_code == 200
    assert sealed_offre.getvalue()[:1] == b"\x30"
