"""Deposits through tus uploads (DESIGN.md, rules 5 and 6), with the platform's clock moved."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from scelle.core import certs
from scelle.core.envelope import EnvelopeKeys, encrypt_stream
from scelle.core.receipt import verify_receipt
from scelle.core.rsf import recipient_set_fingerprint
from scelle.platform.accounts.models import Organisation
from scelle.platform.audit.models import Event
from scelle.platform.deposits.models import Deposit, Envelope, Upload
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.tenders.models import AssignedKeyPair
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

TUS = {"Tus-Resumable": "1.0.0"}
DEADLINE = NOW + dt.timedelta(days=30)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Bidder:
    client: Client

    def create(self, tender: str, envelope: str, length: int) -> Any:
        return self.client.post(
            "/api/uploads/",
            headers={
                **TUS,
                "Upload-Length": str(length),
                "Upload-Metadata": f"tender {b64(tender)},envelope {b64(envelope)}",
            },
        )

    def patch(self, location: str, offset: int, data: bytes, **headers: str) -> Any:
        return self.client.generic(
            "PATCH",
            location,
            data,
            content_type="application/offset+octet-stream",
            headers={**TUS, "Upload-Offset": str(offset), **headers},
        )

    def head(self, location: str) -> Any:
        return self.client.head(location, headers=TUS)

    def upload(self, tender: str, envelope: str, data: bytes, *, chunk: int = 1000) -> str:
        created = self.create(tender, envelope, len(data))
        assert created.status_code == 201, created.content
        location = created["Location"]
        for start in range(0, len(data), chunk):
            answer = self.patch(location, start, data[start : start + chunk])
            assert answer.status_code == 204, answer.content
        return str(location.rsplit("/", 1)[1])

    def finalise(self, tender: str, uploads: dict[str, str], **sha256: str) -> Any:
        body = {
            "envelopes": [
                {"kind": k, "upload": u, "sha256": sha256.get(k)} for k, u in uploads.items()
            ]
        }
        return self.client.post(
            f"/api/tenders/{tender}/deposits", body, content_type="application/json"
        )


FOLDER_ONLY = pytest.mark.parametrize("_envelopes", ["folder"], indirect=True)
"""For a test that works on the folder's files behind the platform's back."""


@pytest.fixture(autouse=True, params=["folder", "store"])
def _envelopes(request, settings, tmp_path) -> None:
    """Each test its own envelopes folder, or its own prefix in a real S3 store with
    Object Lock (SeaweedFS): every test here runs on both; what is stored is checked
    against the tables."""
    settings.SCELLE_ENVELOPES_DIR = tmp_path / "envelopes"
    if request.param == "store":
        request.getfixturevalue("object_store")


@pytest.fixture
def tender(rouen: Buyer, clock: MovableClock, rsa_keys) -> str:
    owner = api_client(rouen.owner, clock)
    publish(owner, rouen.service, rsa_keys[0], "PERSO")
    create_tender(owner, rouen.service, "AO-DEPOT", deadline=DEADLINE)
    assert launch(owner, "AO-DEPOT", "PERSO").status_code == 200
    return "AO-DEPOT"


@pytest.fixture
def company(bidder, clock: MovableClock) -> Bidder:
    return Bidder(api_client(bidder, clock))


def test_a_deposit_from_uploads_to_its_receipt(tender: str, company: Bidder, clock, rouen):
    candidature, offre = sealed(2500), sealed(7001)
    uploads = {
        "candidature": company.upload(tender, "candidature", candidature),
        "offre": company.upload(tender, "offre", offre),
    }
    assert not Deposit.objects.exists()  # complete uploads are not yet a deposit
    clock.advance(hours=1)
    answer = company.finalise(tender, uploads)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["late"] is False
    assert [(e["kind"], e["size"]) for e in body["envelopes"]] == [
        ("candidature", len(candidature)),
        ("offre", len(offre)),
    ]
    verified = verify_receipt(
        body["receipt"].encode(), trusted_authority=platform_authority().certificate
    )
    assert verified.receipt.deposit == body["id"]
    assert verified.receipt.received_at == NOW + dt.timedelta(hours=1)
    assert [e.sha256 for e in verified.receipt.envelopes] == [
        hashlib.sha256(candidature).hexdigest(),
        hashlib.sha256(offre).hexdigest(),
    ]
    assert not Upload.objects.exists()
    listed = company.client.get("/api/deposits").json()
    assert [d["id"] for d in listed] == [body["id"]]
    buyer = api_client(rouen.owner, clock).get(f"/api/tenders/{tender}/deposits").json()
    assert buyer[0]["bidder"] == "BTP Normandie SARL" and "receipt" not in buyer[0]


def test_resuming_after_an_interruption(tender: str, company: Bidder):
    data = sealed(5000)
    location = company.create(tender, "offre", len(data))["Location"]
    assert company.patch(location, 0, data[:1200]).status_code == 204
    head = company.head(location)
    assert head.status_code == 200
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("1200", str(len(data)))
    assert head["Tus-Resumable"] == "1.0.0" and head["Cache-Control"] == "no-store"
    assert company.patch(location, 1200, data[1200:]).status_code == 204
    assert company.head(location)["Upload-Offset"] == str(len(data))


def test_forged_offsets_oversize_and_bad_checksums(tender: str, company: Bidder):
    data = sealed(3000)
    location = company.create(tender, "offre", len(data))["Location"]
    company.patch(location, 0, data[:1000])
    skipped = company.patch(location, 2000, data[2000:])
    assert skipped.status_code == 409 and "holds 1000 bytes" in skipped.json()["detail"]
    rewind = company.patch(location, 0, data[:1000])
    assert rewind.status_code == 409
    too_long = company.patch(location, 1000, data[1000:] + b"extra")
    assert too_long.status_code == 400 and "announced length" in too_long.json()["detail"]
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    mismatch = company.patch(
        location, 1000, data[1000:2000], **{"Upload-Checksum": f"sha256 {wrong}"}
    )
    assert mismatch.status_code == 460
    assert company.head(location)["Upload-Offset"] == "1000"  # nothing kept
    right = base64.b64encode(hashlib.sha1(data[1000:2000]).digest()).decode()  # noqa: S324 - tus requires sha1
    good = company.patch(location, 1000, data[1000:2000], **{"Upload-Checksum": f"sha1 {right}"})
    assert good.status_code == 204 and good["Upload-Offset"] == "2000"
    assert (
        company.client.generic(
            "PATCH",
            location,
            b"x",
            content_type="text/plain",
            headers={**TUS, "Upload-Offset": "2000"},
        ).status_code
        == 415
    )
    no_version = company.client.head(location)
    assert no_version.status_code == 412 and no_version["Tus-Version"] == "1.0.0"


def test_who_may_upload(tender: str, company: Bidder, rouen: Buyer, clock, bidder):
    anonymous = Bidder(Client()).create(tender, "offre", 10)
    assert anonymous.status_code == 401
    agent = Bidder(api_client(rouen.owner, clock)).create(tender, "offre", 10)
    assert agent.status_code == 403 and "only companies" in agent.json()["detail"]
    location = company.create(tender, "offre", 10)["Location"]
    rival_user = make_user("offres@rival.fr", _rival(clock))
    rival = Bidder(api_client(rival_user, clock))
    assert rival.head(location).status_code == 404
    assert rival.patch(location, 0, b"0123456789").status_code == 404
    assert rival.client.delete(location, headers=TUS).status_code == 404
    assert company.client.delete(location, headers=TUS).status_code == 204
    assert company.head(location).status_code == 404


def _rival(clock: MovableClock) -> Organisation:
    from scelle.platform.accounts import services

    return services.create_organisation("Rival SAS", "bidder", now=clock())


def test_tender_state_and_size(tender: str, company: Bidder, rouen: Buyer, clock, settings):
    assert company.create("AO-INCONNU", "offre", 10).status_code == 404
    assert company.create(tender, "anonymat", 10).status_code == 400
    settings.SCELLE_MAX_DEPOSIT_BYTES = 100
    too_big = company.create(tender, "offre", 101)
    assert too_big.status_code == 413 and "at most" in too_big.json()["detail"]
    settings.SCELLE_MAX_DEPOSIT_BYTES = 20 << 30
    owner = api_client(rouen.owner, clock)
    create_tender(owner, rouen.service, "AO-BROUILLON")
    assert company.create("AO-BROUILLON", "offre", 10).status_code == 404  # drafts are unseen


def test_chunks_before_the_deadline_completion_after_is_late(
    tender: str, company: Bidder, clock, bidder
):
    candidature, offre = sealed(100), sealed(200)
    uploads = {"candidature": company.upload(tender, "candidature", candidature)}
    location = company.create(tender, "offre", len(offre))["Location"]
    company.patch(location, 0, offre[:100])
    clock.advance(days=30, seconds=1)  # past the deadline
    company = Bidder(api_client(bidder, clock))  # the first token has expired too
    refused = company.create(tender, "offre", 10)
    assert refused.status_code == 409 and "has passed" in refused.json()["detail"]
    assert company.patch(location, 100, offre[100:]).status_code == 204
    uploads["offre"] = location.rsplit("/", 1)[1]
    answer = company.finalise(tender, uploads)
    assert answer.status_code == 201 and answer.json()["late"] is True
    assert verify_receipt(answer.json()["receipt"].encode()).receipt.late is True


def test_incomplete_or_wrong_deposits_record_nothing(tender: str, company: Bidder, rouen, clock):
    whole = company.upload(tender, "candidature", b"c" * 100)
    location = company.create(tender, "offre", 100)["Location"]
    company.patch(location, 0, b"o" * 50)
    partial = location.rsplit("/", 1)[1]
    answer = company.finalise(tender, {"candidature": whole, "offre": partial})
    assert answer.status_code == 409 and "not fully uploaded" in answer.json()["detail"]
    missing = company.finalise(tender, {"candidature": whole})
    assert missing.status_code == 400 and "exactly one of each" in missing.json()["detail"]
    swapped = company.finalise(tender, {"candidature": partial, "offre": whole})
    assert swapped.status_code == 400
    owner = api_client(rouen.owner, clock)
    reason = {"reason": "Le besoin a disparu"}
    owner.post(f"/api/tenders/{tender}/cancel", reason, content_type="application/json")
    company.patch(location, 50, b"o" * 50)
    cancelled = company.finalise(tender, {"candidature": whole, "offre": partial})
    assert cancelled.status_code == 409 and "cancelled" in cancelled.json()["detail"]
    assert not Deposit.objects.exists() and not Envelope.objects.exists()


def test_envelopes_stay_sealed_until_the_deadline(tender: str, company: Bidder, rouen, clock):
    offre = sealed(5000)
    uploads = {
        "candidature": company.upload(tender, "candidature", sealed(10)),
        "offre": company.upload(tender, "offre", offre),
    }
    deposit = company.finalise(tender, uploads).json()["id"]
    path = f"/api/deposits/{deposit}/envelopes/offre"
    early = api_client(rouen.owner, clock).get(path)
    assert early.status_code == 409 and "stay sealed" in early.json()["detail"]
    clock.advance(days=30, seconds=1)
    owner = api_client(rouen.owner, clock)
    whole = owner.get(path)
    assert whole.status_code == 200 and whole.getvalue() == offre
    # Reading a streamed response through closes it (Django's test client);
    # closing it again would end the test's database connection on PostgreSQL.
    assert whole["X-Envelope-SHA256"] == hashlib.sha256(offre).hexdigest()
    rest = owner.get(path, headers={"Range": "bytes=4000-"})
    assert (
        rest.status_code == 206
        and rest["Content-Range"] == f"bytes 4000-{len(offre) - 1}/{len(offre)}"
    )
    assert rest.getvalue() == offre[4000:]
    assert owner.get(path, headers={"Range": "bytes=6000-"}).status_code == 400
    assert owner.get(f"/api/deposits/{deposit}/envelopes/anonymat").status_code == 404
    opened = owner.post(f"{path}/opened", {"files": 3}, content_type="application/json")
    assert opened.status_code == 204
    from scelle.platform.audit.models import Event

    event = Event.objects.get(action="opening.envelope.opened")
    assert event.actor == "acheteur@rouen.fr"
    assert event.details == {
        "tender": tender, "bidder": "BTP Normandie SARL", "envelope": "offre", "files": 3,
        "late": False,
    }  # fmt: skip
    assert Event.objects.filter(action="deposits.envelope.downloaded").count() == 2


def test_a_stored_envelope_that_is_not_what_was_sent(tender: str, company: Bidder):
    candidature, offre = sealed(100), sealed(100)
    uploads = {
        "candidature": company.upload(tender, "candidature", candidature),
        "offre": company.upload(tender, "offre", offre),
    }
    wrong = company.finalise(
        tender, uploads, candidature=hashlib.sha256(candidature).hexdigest(), offre="0" * 64
    )
    assert wrong.status_code == 409 and "not the one sent" in wrong.json()["detail"]
    assert not Deposit.objects.exists() and Upload.objects.count() == 2
    right = company.finalise(
        tender,
        uploads,
        candidature=hashlib.sha256(candidature).hexdigest(),
        offre=hashlib.sha256(offre).hexdigest(),
    )
    assert right.status_code == 201


def _tamper(upload_id: str, data: bytes) -> None:
    """Overwrite a stored upload behind the platform's back (same size)."""
    from scelle.platform.deposits import storage

    storage.path_of(f"{upload_id}.p7m").write_bytes(data)


@FOLDER_ONLY
def test_finalisation_hashes_what_arrived_without_reading_it_again(tender: str, company: Bidder):
    candidature, offre = sealed(3000), sealed(4000)
    uploads = {
        "candidature": company.upload(tender, "candidature", candidature),
        "offre": company.upload(tender, "offre", offre),
    }
    # The chunks came in order: their SHA-256 was computed as they were written,
    # so what is on disk now is not read again (this proves the running hash is used).
    _tamper(uploads["offre"], offre[:1000] + bytes(len(offre) - 1000))
    answer = company.finalise(tender, uploads)
    assert answer.status_code == 201, answer.content
    assert [e["sha256"] for e in answer.json()["envelopes"]] == [
        hashlib.sha256(candidature).hexdigest(),
        hashlib.sha256(offre).hexdigest(),
    ]


def test_without_a_running_hash_finalisation_reads_the_file(
    tender: str, company: Bidder, monkeypatch
):
    from scelle.platform.deposits import objectstore, storage

    data = sealed(5000)
    location = company.create(tender, "offre", len(data))["Location"]
    assert company.patch(location, 0, data[:2000]).status_code == 204
    # A restarted server has no running hash: the rest arrives, and the file is read.
    from scelle.platform.deposits import chunks

    forgotten = chunks.RunningHashes(chunks.RUNNING_HASHES)
    monkeypatch.setattr(storage, "_running", forgotten)
    monkeypatch.setattr(objectstore, "running", forgotten)
    assert company.patch(location, 2000, data[2000:]).status_code == 204
    other = company.upload(tender, "candidature", sealed(10))
    answer = company.finalise(
        tender,
        {"candidature": other, "offre": location.rsplit("/", 1)[1]},
        offre=hashlib.sha256(data).hexdigest(),
    )
    assert answer.status_code == 201, answer.content


def test_refused_and_cut_chunks_leave_the_hash_right(tender: str, company: Bidder, bidder):
    from scelle.platform.deposits import services

    data = sealed(6000)
    location = company.create(tender, "offre", len(data))["Location"]
    assert company.patch(location, 0, data[:2000]).status_code == 204
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    refused = company.patch(location, 2000, b"x" * 1000, **{"Upload-Checksum": f"sha256 {wrong}"})
    assert refused.status_code == 460
    # A company that went away in the middle: its request said 3000 bytes, 1000 came,
    # and the platform keeps them (tus).
    upload_id = location.rsplit("/", 1)[1]
    held = services.append_to_upload(
        bidder, upload_id, offset=2000, body=io.BytesIO(data[2000:3000]), count=3000,
        checksum=None,
    )  # fmt: skip
    assert held == 3000 and company.head(location)["Upload-Offset"] == "3000"
    assert company.patch(location, 3000, data[3000:]).status_code == 204
    other = company.upload(tender, "candidature", sealed(10))
    answer = company.finalise(
        tender,
        {"candidature": other, "offre": upload_id},
        offre=hashlib.sha256(data).hexdigest(),
    )
    assert answer.status_code == 201, answer.content


@FOLDER_ONLY
def test_an_incomplete_upload_is_no_deposit(tender: str, company: Bidder):
    data = sealed(100)
    cut = len(data) - 40
    location = company.create(tender, "offre", len(data))["Location"]
    assert company.patch(location, 0, data[:cut]).status_code == 204
    other = company.upload(tender, "candidature", sealed(10))
    offre = location.rsplit("/", 1)[1]
    answer = company.finalise(tender, {"candidature": other, "offre": offre})
    assert answer.status_code == 409
    assert f"{cut} of {len(data)} bytes" in answer.json()["detail"]
    assert not Deposit.objects.exists()
    # The refusal read nothing and kept the running hash: the bytes on disk, altered
    # meanwhile (past the header), are not what the receipt hashes once the rest arrived.
    _tamper(offre, data[: cut - 10] + bytes(10))
    assert company.patch(location, cut, data[cut:]).status_code == 204
    answer = company.finalise(tender, {"candidature": other, "offre": offre})
    assert answer.status_code == 201, answer.content
    assert answer.json()["envelopes"][1]["sha256"] == hashlib.sha256(data).hexdigest()


def test_receipts_name_the_recipients_and_can_be_fetched_again(
    tender: str, company: Bidder, rouen: Buyer, clock
):
    candidature, offre = sealed(10), sealed(20)
    uploads = {
        "candidature": company.upload(tender, "candidature", candidature),
        "offre": company.upload(tender, "offre", offre),
    }
    body = company.finalise(tender, uploads).json()
    shown = api_client(rouen.owner, clock).get(f"/api/tenders/{tender}").json()
    fingerprints = sorted(k["fingerprint_sha256"] for k in shown["key_pairs"])
    assert shown["rsf"] == recipient_set_fingerprint(fingerprints)
    receipt = verify_receipt(body["receipt"].encode()).receipt
    assert receipt.rsf == shown["rsf"]
    assert [list(e.recipients) for e in receipt.envelopes] == [fingerprints, fingerprints]
    head = receipt.audit_head
    assert head is not None and Event.objects.get(id=head.sequence).hash == head.hash
    assert [e["upload"] for e in body["envelopes"]] == [
        uploads["candidature"],
        uploads["offre"],
    ]
    # The answer was lost: the company finds the deposit, and the same signed receipt.
    again = company.client.get(f"/api/deposits/{body['id']}")
    assert again.status_code == 200 and again.json()["receipt"] == body["receipt"]
    rival = Bidder(api_client(make_user("x@rival.fr", _rival(clock)), clock))
    assert rival.client.get(f"/api/deposits/{body['id']}").status_code == 404
    assert company.client.get("/api/deposits/not-a-uuid").status_code in (404, 422)


def test_an_envelope_to_a_recipient_outside_the_set_is_refused(
    tender: str, company: Bidder, rsa_keys
):
    intruder = certs.self_signed_certificate(rsa_keys[5], "OPERATEUR", days=30, now=NOW)
    assigned = [
        certs.load_certificate(a.certificate_pem.encode())
        for a in AssignedKeyPair.objects.filter(tender__reference=tender)
    ]
    sink = io.BytesIO()
    keys = EnvelopeKeys.for_recipients([*assigned, intruder])
    encrypt_stream(io.BytesIO(b"offre"), sink, keys)
    uploads = {
        "candidature": company.upload(tender, "candidature", sealed(10)),
        "offre": company.upload(tender, "offre", sink.getvalue()),
    }
    answer = company.finalise(tender, uploads)
    assert answer.status_code == 409
    assert "outside the tender's set" in answer.json()["detail"]
    assert "OPERATEUR" in answer.json()["detail"]
    not_an_envelope = company.upload(tender, "offre", os.urandom(700))
    answer = company.finalise(tender, {**uploads, "offre": not_an_envelope})
    assert answer.status_code == 409 and "not an envelope" in answer.json()["detail"]
    assert not Deposit.objects.exists()


def test_hostile_numbers_are_refused_not_server_errors(tender: str, company: Bidder, clock, rouen):
    for length in ("²", "1" * 5000, "-1", " 5", "0x10", "\uff11\uff10"):
        created = company.client.post(
            "/api/uploads/",
            headers={
                **TUS,
                "Upload-Length": length,
                "Upload-Metadata": f"tender {b64(tender)},envelope {b64('offre')}",
            },
        )
        assert created.status_code == 400, length
    assert not Upload.objects.exists()
    data = sealed(10)
    location = company.create(tender, "offre", len(data))["Location"]
    for offset in ("²", "9" * 5000):
        assert company.patch(location, 0, data, **{"Upload-Offset": offset}).status_code == 400


def test_terminating_an_upload_removes_its_file(tender: str, company: Bidder):
    from scelle.platform.deposits import storage

    data = sealed(10)
    location = company.create(tender, "offre", len(data))["Location"]
    assert company.patch(location, 0, data[:100]).status_code == 204
    name = f"{location.rsplit('/', 1)[1]}.p7m"
    assert storage.size_of(name) == 100 and name in _stored()
    assert company.client.delete(location, headers=TUS).status_code == 204
    assert name not in _stored() and not Upload.objects.exists()


def test_a_range_of_any_length_is_no_server_error(tender: str, company: Bidder, rouen, clock):
    data = sealed(10)
    uploads = {
        "candidature": company.upload(tender, "candidature", sealed(10)),
        "offre": company.upload(tender, "offre", data),
    }
    deposit = company.finalise(tender, uploads).json()["id"]
    clock.advance(days=31)
    owner = api_client(rouen.owner, clock)
    path = f"/api/deposits/{deposit}/envelopes/offre"
    for value in ("bytes=" + "9" * 5000 + "-", "bytes=²-", "bytes=99999999999999-"):
        answer = owner.get(path, headers={"Range": value})
        assert answer.status_code in (200, 400), value
        if answer.status_code == 200:
            assert answer.getvalue() == data


def test_terminating_and_finalising_the_same_upload_have_one_outcome(
    tender: str, company: Bidder, bidder, clock, monkeypatch
):
    from scelle.core.errors import RuleViolationError
    from scelle.platform.audit.models import Event
    from scelle.platform.deposits import services, storage

    candidature, offre = sealed(10), sealed(10)
    uploads = {
        "candidature": company.upload(tender, "candidature", candidature),
        "offre": company.upload(tender, "offre", offre),
    }
    # The DELETE looked its upload up just before the finalisation committed.
    stale = services.upload_for(bidder, uploads["offre"])
    assert company.finalise(tender, uploads).status_code == 201
    monkeypatch.setattr(services, "upload_for", lambda _actor, _id: stale)
    with pytest.raises(RuleViolationError, match="made into a deposit"):
        services.terminate_upload(bidder, uploads["offre"], now=clock())
    envelope = Envelope.objects.get(kind="offre")
    with storage.open_envelope(envelope.storage_name) as handle:
        assert handle.read() == offre
    assert not Event.objects.filter(action="deposits.upload.terminated").exists()


def test_an_upload_whose_row_is_not_written_leaves_no_file(tender: str, bidder, clock, monkeypatch):
    from django.db import OperationalError

    from scelle.platform.deposits import services

    def busy(*_args, **_kwargs):
        raise OperationalError("database is locked")

    before = _stored()
    monkeypatch.setattr(services, "record", busy)
    with pytest.raises(OperationalError):
        services.create_upload(bidder, reference=tender, envelope="offre", length=10, now=clock())
    assert _stored() == before
    assert not Upload.objects.exists()


def _stored() -> set[str]:
    """The names of what is stored: files in the folder; envelopes, multipart uploads and
    tails in the store."""
    from scelle.platform.deposits import storage

    return {name for name, _written in storage.files()}


def _folder_matches_tables() -> None:
    """Every upload has its file, every file an upload or an envelope: nothing half-made."""
    files = _stored()
    rows = {upload.file_name for upload in Upload.objects.all()}
    envelopes = set(Envelope.objects.values_list("storage_name", flat=True))
    assert rows <= files, f"uploads without their file: {rows - files}"
    assert files <= rows | envelopes, f"files without their row: {files - rows - envelopes}"


def test_a_company_has_a_bounded_number_of_uploads(tender: str, company: Bidder, settings):
    settings.SCELLE_MAX_OPEN_UPLOADS = 3
    for _ in range(3):
        assert company.create(tender, "offre", 100).status_code == 201
    refused = company.create(tender, "offre", 100)
    assert refused.status_code == 409
    assert "3 uploads in progress" in refused.json()["detail"]
    assert Upload.objects.count() == 3
    _folder_matches_tables()
    # Abandoning one makes room again.
    first = Upload.objects.first()
    assert first is not None
    assert company.client.delete(f"/api/uploads/{first.id}", headers=TUS).status_code == 204
    assert company.create(tender, "offre", 100).status_code == 201
    _folder_matches_tables()


def test_announced_bytes_per_tender_are_bounded(tender: str, company: Bidder, settings):
    settings.SCELLE_MAX_DEPOSIT_BYTES = 1000
    settings.SCELLE_MAX_ANNOUNCED_BYTES = 2000
    assert company.create(tender, "offre", 1000).status_code == 201
    assert company.create(tender, "offre", 900).status_code == 201
    refused = company.create(tender, "candidature", 200)
    assert refused.status_code == 413
    assert "more than the" in refused.json()["detail"]
    too_large = company.create(tender, "offre", 1001)
    assert too_large.status_code == 413
    assert Upload.objects.count() == 2
    _folder_matches_tables()


@FOLDER_ONLY
def test_the_sweep_removes_idle_uploads_and_those_of_closed_tenders(
    tender: str, company: Bidder, rouen: Buyer, clock, settings
):
    from scelle.platform.deposits import services, storage

    settings.SCELLE_UPLOAD_IDLE_HOURS = 24
    data = sealed(10)
    active = company.create(tender, "offre", len(data))["Location"]
    idle = company.create(tender, "candidature", len(data))["Location"]
    assert company.patch(active, 0, data[:100]).status_code == 204
    assert company.patch(idle, 0, data[:100]).status_code == 204
    # The clock is the platform's; the files' times are the disk's: put them in the past.
    for location, hours_ago in ((active, 1), (idle, 25)):
        at = (clock() - dt.timedelta(hours=hours_ago)).timestamp()
        os.utime(storage.path_of(f"{location.rsplit('/', 1)[1]}.p7m"), (at, at))
    Upload.objects.update(created_at=clock() - dt.timedelta(hours=30))
    # A file that belongs to nothing, left by a crash long ago.
    orphan = storage.path_of("00000000-0000-4000-8000-000000000000.p7m")
    orphan.write_bytes(b"x")
    at = (clock() - dt.timedelta(hours=2)).timestamp()
    os.utime(orphan, (at, at))

    report = services.sweep_uploads(now=clock())
    assert (report.idle, report.closed, report.orphans, report.busy) == (1, 0, 1, 0)
    assert [str(u.id) for u in Upload.objects.all()] == [active.rsplit("/", 1)[1]]
    swept = Event.objects.get(action="deposits.upload.swept")
    assert swept.details["reason"] == "idle" and swept.details["bytes_held"] == 100
    _folder_matches_tables()

    # A chunk arriving right now is left alone.
    name = f"{active.rsplit('/', 1)[1]}.p7m"
    writing = storage.appender(name, 100, 10, length=len(data))
    settings.SCELLE_UPLOAD_IDLE_HOURS = 0
    assert services.sweep_uploads(now=clock()).busy == 1
    writing.close()

    # Once the tender takes no deposit, its uploads go at the next sweep.
    settings.SCELLE_UPLOAD_IDLE_HOURS = 24
    clock.advance(days=31)
    owner = api_client(rouen.owner, clock)
    assert owner.post(f"/api/tenders/{tender}/close").status_code == 200
    report = services.sweep_uploads(now=clock())
    assert report.closed == 1
    assert not Upload.objects.exists()
    _folder_matches_tables()


def test_every_failure_leaves_the_folder_and_the_tables_agreeing(
    tender: str, company: Bidder, bidder, clock, monkeypatch
):
    from django.db import OperationalError

    from scelle.platform.deposits import services

    data = sealed(10)
    # Refused creations.
    company.create(tender, "nope", 10)
    company.create(tender, "offre", -1)
    company.create(tender, "offre", 1 << 50)
    _folder_matches_tables()
    # A chunk refused half-way (wrong checksum), a chunk cut short, a DELETE.
    location = company.create(tender, "offre", len(data))["Location"]
    wrong = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    company.patch(location, 0, data[:50], **{"Upload-Checksum": f"sha256 {wrong}"})
    _folder_matches_tables()
    other = company.create(tender, "candidature", len(data))["Location"]
    company.client.delete(other, headers=TUS)
    _folder_matches_tables()
    # A finalisation refused: incomplete, then the database failing at the end.
    company.patch(location, 0, data)
    candidature = company.upload(tender, "candidature", sealed(10))
    uploads = {"candidature": candidature, "offre": location.rsplit("/", 1)[1]}
    from scelle.platform.audit.services import record as real_record

    def failing(action, **kwargs):
        if action == "deposits.deposit.received":
            raise OperationalError("database is locked")
        return real_record(action, **kwargs)

    monkeypatch.setattr(services, "record", failing)
    with pytest.raises(OperationalError):
        services.finalise_deposit(bidder, tender, list(uploads.items()), now=clock())
    assert not Deposit.objects.exists() and Upload.objects.count() == 2
    _folder_matches_tables()
    monkeypatch.setattr(services, "record", real_record)
    assert company.finalise(tender, uploads).status_code == 201
    _folder_matches_tables()


@FOLDER_ONLY
def test_an_envelope_whose_file_is_gone_records_no_download(
    tender: str, company: Bidder, rouen: Buyer, clock
):
    from scelle.platform.deposits import storage

    uploads = {
        "candidature": company.upload(tender, "candidature", sealed(10)),
        "offre": company.upload(tender, "offre", sealed(10)),
    }
    deposit = company.finalise(tender, uploads).json()["id"]
    storage.path_of(Envelope.objects.get(kind="offre").storage_name).unlink()
    clock.advance(days=31)
    owner = api_client(rouen.owner, clock)
    answer = owner.get(f"/api/deposits/{deposit}/envelopes/offre")
    assert answer.status_code == 409 and "cannot read" in answer.json()["detail"]
    assert not Event.objects.filter(action="deposits.envelope.downloaded").exists()
    other: Any = owner.get(f"/api/deposits/{deposit}/envelopes/candidature")
    assert other.status_code == 200 and b"".join(other.streaming_content)
