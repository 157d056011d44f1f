"""DESIGN.md's domain rules 1 to 4, each proved through the API the CLI uses."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from django.db import connection

from scelle.core import certs
from scelle.core.errors import RuleViolationError
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.tenders.models import AssignedKeyPair, Tender
from tests.conftest import NOW
from tests.platform.conftest import (
    Buyer,
    MovableClock,
    api_client,
    create_tender,
    csr_for,
    launch,
    publish,
    self_signed,
)

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


# --- rule 1: organisations are isolated; permissions per service -------------------


def test_rule1_another_organisation_sees_nothing(rouen: Buyer, caen: Buyer, clock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    assert publish(owner, rouen.service, rsa_keys[0], "BICLE-ROUEN").status_code == 201
    assert create_tender(owner, rouen.service, "ROUEN-1").status_code == 201
    key_id = owner.get("/api/key-pairs").json()["key_pairs"][0]["id"]

    outsider = api_client(caen.owner, clock)
    assert outsider.get("/api/key-pairs").json()["key_pairs"] == []
    assert outsider.get("/api/tenders").json() == []
    assert outsider.get("/api/tenders/ROUEN-1").status_code == 404
    assert outsider.get(f"/api/key-pairs?service={rouen.service.id}").status_code == 404
    renamed = outsider.patch(
        f"/api/key-pairs/{key_id}", {"designation": "X"}, content_type="application/json"
    )
    assert renamed.status_code == 404
    assert outsider.delete(f"/api/key-pairs/{key_id}").status_code == 404
    # Publishing into, or creating a tender for, another organisation's service.
    assert publish(outsider, rouen.service, rsa_keys[1], "INTRUS").status_code == 404
    assert create_tender(outsider, rouen.service, "INTRUS-1").status_code == 404
    assert "Ville de Rouen" not in outsider.get("/api/me").content.decode()


def test_rule1_a_permission_on_one_service_is_not_one_on_another(rouen: Buyer, clock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    # The owner holds every permission on `service`, none on `other_service`.
    assert publish(owner, rouen.other_service, rsa_keys[0], "AUTRE").status_code == 403
    assert create_tender(owner, rouen.other_service, "AUTRE-1").status_code == 403
    assert owner.get(f"/api/key-pairs?service={rouen.other_service.id}").status_code == 403


# --- rule 2: only manage_keys adds, renames, deletes; CA issues from a CSR ----------


def test_rule2_only_manage_keys_changes_the_registry(rouen: Buyer, clock, rsa_keys):
    colleague = api_client(rouen.colleague, clock)  # holds `open` only
    refused = publish(colleague, rouen.service, rsa_keys[0], "BICLE")
    assert refused.status_code == 403
    assert "manage_keys" in refused.json()["detail"]

    owner = api_client(rouen.owner, clock)
    created = publish(owner, rouen.service, rsa_keys[0], "BICLE")
    assert created.status_code == 201, created.content
    key_id = created.json()["id"]
    # The colleague sees the key page (any permission), but changes nothing.
    assert [k["designation"] for k in colleague.get("/api/key-pairs").json()["key_pairs"]] == [
        "BICLE"
    ]
    assert (
        colleague.patch(
            f"/api/key-pairs/{key_id}", {"designation": "X"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert colleague.delete(f"/api/key-pairs/{key_id}").status_code == 403
    renamed = owner.patch(
        f"/api/key-pairs/{key_id}", {"designation": "BICLE-2027"}, content_type="application/json"
    )
    assert renamed.status_code == 200 and renamed.json()["designation"] == "BICLE-2027"
    assert owner.delete(f"/api/key-pairs/{key_id}").status_code == 204
    assert owner.get("/api/key-pairs").json()["key_pairs"] == []


def test_rule2_the_platform_ca_issues_an_encryption_certificate(rouen: Buyer, clock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    answer = publish(owner, rouen.service, rsa_keys[0], "BICLEVIDEOTUTO").json()
    certificate = certs.load_certificate(answer["certificate_pem"].encode())
    subject = certificate.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "BICLEVIDEOTUTO"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Ville de Rouen"
    assert (
        subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        == "Service des marchés"
    )
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_encipherment and not usage.value.digital_signature
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certificate.public_key() == rsa_keys[0].public_key()
    certificate.verify_directly_issued_by(platform_authority().certificate)
    assert certificate.not_valid_after_utc - NOW == dt.timedelta(days=730)
    assert answer["issued_by_platform"] is True
    assert answer["chain_pem"] == [certs.certificate_pem(platform_authority().certificate).decode()]
    assert answer["fingerprint_sha256"] == certs.fingerprint_sha256(certificate)
    assert answer["added_by"] == rouen.owner.email


def test_rule2_a_request_not_signed_by_its_key_is_refused(rouen: Buyer, clock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    # A request whose signature does not verify proves nothing about its key.
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FORGED")]))
        .sign(rsa_keys[1], hashes.SHA256())
    )
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # the signature is the last field
    pem = (
        "-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(bytes(der)).decode()
        + "-----END CERTIFICATE REQUEST-----\n"
    )
    body = {"service": str(rouen.service.id), "role": "personal", "csr_pem": pem}
    answer = owner.post("/api/key-pairs", body, content_type="application/json")
    assert answer.status_code == 400
    assert "signature does not verify" in answer.json()["detail"]


def test_rule2_referencing_a_certificate_as_it_is(rouen: Buyer, clock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    mine = self_signed(rsa_keys[0], "EXISTANT")
    answer = publish(owner, rouen.service, rsa_keys[0], "EXISTANT", certificate_pem=mine)
    assert answer.status_code == 201, answer.content
    assert answer.json()["issued_by_platform"] is False and answer.json()["chain_pem"] == []
    assert answer.json()["certificate_pem"] == mine
    # Someone else's certificate, with my request: the keys differ.
    theirs = self_signed(rsa_keys[2], "VOLÉ")
    stolen = publish(owner, rouen.service, rsa_keys[1], "VOLÉ", certificate_pem=theirs)
    assert stolen.status_code == 400 and "different keys" in stolen.json()["detail"]
    # Expired.
    old = self_signed(rsa_keys[3], "ANCIEN", days=10, now=NOW - dt.timedelta(days=30))
    expired = publish(owner, rouen.service, rsa_keys[3], "ANCIEN", certificate_pem=old)
    assert expired.status_code == 400 and "expired" in expired.json()["detail"]
    # The same key pair twice.
    again = publish(owner, rouen.service, rsa_keys[0], "ENCORE")
    assert again.status_code == 409 and "already in the registry" in again.json()["detail"]


# --- rule 3: launch assigns personal + every backup, valid through the window -------


@pytest.fixture
def registry(rouen: Buyer, clock: MovableClock, rsa_keys):
    owner = api_client(rouen.owner, clock)
    for index, (designation, role) in enumerate(
        [("PERSO-1", "personal"), ("PERSO-2", "personal"), ("SECOURS", "backup")]
    ):
        assert (
            publish(owner, rouen.service, rsa_keys[index], designation, role=role).status_code
            == 201
        )
    return owner


def test_rule3_launch_assigns_the_chosen_and_every_backup_key_pair(registry, rouen: Buyer):
    assert create_tender(registry, rouen.service, "AO-1").status_code == 201
    answer = launch(registry, "AO-1", "PERSO-1")
    assert answer.status_code == 200, answer.content
    assigned = {(k["designation"], k["role"]) for k in answer.json()["key_pairs"]}
    assert assigned == {("PERSO-1", "personal"), ("SECOURS", "backup")}
    assert answer.json()["status"] == "published"
    recipients = registry.get("/api/tenders/AO-1/recipients").json()
    assert {r["designation"] for r in recipients} == {"PERSO-1", "SECOURS"}


def test_rule3_at_least_one_personal_key_pair(registry, rouen: Buyer):
    create_tender(registry, rouen.service, "AO-2")
    answer = launch(registry, "AO-2", "SECOURS")
    assert answer.status_code == 409 and "personal key pair" in answer.json()["detail"]
    assert Tender.objects.get(reference="AO-2").status == "draft"
    assert not AssignedKeyPair.objects.exists()


def test_rule3_key_pairs_must_outlive_the_opening_window(registry, rouen: Buyer, settings):
    # Certificates last 730 days from NOW; a deadline at 700 days plus the
    # 90-day window goes past them.
    create_tender(registry, rouen.service, "AO-LONG", deadline=NOW + dt.timedelta(days=700))
    answer = launch(registry, "AO-LONG", "PERSO-1")
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    # One refusal names every key pair that falls short: the personal and the backup one.
    assert "before the opening window ends" in detail
    assert "'PERSO-1'" in detail and "backup key pair 'SECOURS'" in detail
    settings.SCELLE_OPENING_WINDOW_DAYS = 10
    assert launch(registry, "AO-LONG", "PERSO-1").status_code == 200


def test_rule3_an_expired_key_pair_cannot_be_assigned(registry, rouen: Buyer, clock):
    create_tender(registry, rouen.service, "AO-TARD", deadline=NOW + dt.timedelta(days=800))
    clock.advance(days=731)
    answer = launch(api_client(rouen.owner, clock), "AO-TARD", "PERSO-1")
    assert answer.status_code == 409 and "expired on" in answer.json()["detail"]


def test_rule3_the_assignment_never_changes(registry, rouen: Buyer):
    create_tender(registry, rouen.service, "AO-3")
    assert launch(registry, "AO-3", "PERSO-1").status_code == 200
    again = launch(registry, "AO-3", "PERSO-2")
    assert again.status_code == 409 and "definitive" in again.json()["detail"]
    before = list(AssignedKeyPair.objects.values_list("designation", "fingerprint_sha256"))
    # Renaming a key pair leaves the tender's copy as it was.
    key_id = next(
        k["id"]
        for k in registry.get("/api/key-pairs").json()["key_pairs"]
        if k["designation"] == "PERSO-1"
    )
    registry.patch(
        f"/api/key-pairs/{key_id}", {"designation": "P1"}, content_type="application/json"
    )
    assert list(AssignedKeyPair.objects.values_list("designation", "fingerprint_sha256")) == before
    # No code path changes it: model, queryset, and the database itself refuse.
    assigned = AssignedKeyPair.objects.first()
    assert assigned is not None
    assigned.designation = "AUTRE"
    with pytest.raises(RuleViolationError):
        assigned.save()
    with pytest.raises(RuleViolationError):
        assigned.delete()
    with pytest.raises(RuleViolationError):
        AssignedKeyPair.objects.update(designation="AUTRE")
    with pytest.raises(RuleViolationError):
        AssignedKeyPair.objects.all().delete()
    from django.db import DatabaseError, transaction

    with (
        pytest.raises(DatabaseError, match="definitive"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE tenders_assignedkeypair SET designation = 'AUTRE'")
    assert list(AssignedKeyPair.objects.values_list("designation", "fingerprint_sha256")) == before


def test_rule3_only_manage_tenders_creates_and_launches(registry, rouen: Buyer, clock):
    colleague = api_client(rouen.colleague, clock)
    assert create_tender(colleague, rouen.service, "AO-C").status_code == 403
    create_tender(registry, rouen.service, "AO-C")
    assert launch(colleague, "AO-C", "PERSO-1").status_code == 403
    assert colleague.post("/api/tenders/AO-C/close").status_code == 403
    # but sees it, as an agent of the service
    assert colleague.get("/api/tenders/AO-C").status_code == 200


# --- rule 4: no deletion while a tender not closed uses it; expiry warnings ---------


def test_rule4_a_key_pair_in_use_cannot_be_deleted(registry, rouen: Buyer, clock):
    for reference in ("AO-A", "AO-B"):
        create_tender(registry, rouen.service, reference, deadline=clock() + dt.timedelta(days=1))
        assert launch(registry, reference, "PERSO-1").status_code == 200
    listed = {k["designation"]: k for k in registry.get("/api/key-pairs").json()["key_pairs"]}
    assert listed["PERSO-1"]["open_tenders"] == ["AO-A", "AO-B"]
    assert listed["SECOURS"]["open_tenders"] == ["AO-A", "AO-B"]
    assert listed["PERSO-2"]["open_tenders"] == []
    key_id = listed["PERSO-1"]["id"]
    refused = registry.delete(f"/api/key-pairs/{key_id}")
    assert refused.status_code == 409
    assert "AO-A, AO-B" in refused.json()["detail"]
    clock.advance(days=2)
    assert registry.post("/api/tenders/AO-A/close").status_code == 200
    refused = registry.delete(f"/api/key-pairs/{key_id}")
    assert refused.status_code == 409 and "AO-B" in refused.json()["detail"]
    assert "AO-A" not in refused.json()["detail"]
    assert registry.post("/api/tenders/AO-B/close").status_code == 200
    assert registry.delete(f"/api/key-pairs/{key_id}").status_code == 204
    # The closed tenders keep the certificate they were sealed to.
    assert {k["designation"] for k in registry.get("/api/tenders/AO-A").json()["key_pairs"]} == {
        "PERSO-1",
        "SECOURS",
    }


def test_rule4_the_key_page_warns_of_expiry_and_of_no_backup(registry, rouen: Buyer, clock):
    create_tender(registry, rouen.service, "AO-W")
    launch(registry, "AO-W", "PERSO-1")
    assert registry.get("/api/key-pairs").json()["warnings"] == []
    clock.advance(days=700)  # 30 days before the certificates expire
    registry = api_client(rouen.owner, clock)  # the first token has expired meanwhile
    warnings = registry.get("/api/key-pairs").json()["warnings"]
    assert any("PERSO-1" in w and "AO-W" in w and "expires on" in w for w in warnings)
    assert not any("PERSO-2" in w for w in warnings)  # not used: no warning yet
    clock.advance(days=40)
    registry = api_client(rouen.owner, clock)
    warnings = registry.get("/api/key-pairs").json()["warnings"]
    assert any("PERSO-2" in w and "expired" in w for w in warnings)
    backup_id = next(
        k["id"]
        for k in registry.get("/api/key-pairs").json()["key_pairs"]
        if k["designation"] == "SECOURS"
    )
    assert registry.post("/api/tenders/AO-W/close").status_code == 200
    registry.delete(f"/api/key-pairs/{backup_id}")
    warnings = registry.get("/api/key-pairs").json()["warnings"]
    assert any("no backup key pair" in w for w in warnings)


def test_a_deadline_far_ahead_is_refused_and_nothing_is_recorded(rouen: Buyer, clock):
    owner = api_client(rouen.owner, clock)
    for deadline in (dt.datetime(9999, 12, 31, tzinfo=dt.UTC), NOW + dt.timedelta(days=3700)):
        answer = create_tender(owner, rouen.service, "AO-LOIN", deadline=deadline)
        assert answer.status_code == 400 and "ten years" in answer.json()["detail"]
    assert not Tender.objects.filter(reference="AO-LOIN").exists()
    assert owner.get("/api/tenders").status_code == 200
    soon = create_tender(owner, rouen.service, "AO-PROCHE", deadline=NOW + dt.timedelta(days=3000))
    assert soon.status_code == 201


# --- tenders: references per organisation, closing after the deadline, cancelling ---------


def test_references_are_unique_within_an_organisation_only(
    registry, rouen: Buyer, caen: Buyer, bidder, clock, rsa_keys
):
    create_tender(registry, rouen.service, "AO-2027-001")
    again = create_tender(registry, rouen.service, "ao-2027-001")
    assert again.status_code == 409 and "already has" in again.json()["detail"]
    # Another buyer uses the same reference, and learns nothing of Rouen's.
    other = api_client(caen.owner, clock)
    publish(other, caen.service, rsa_keys[3], "PERSO-CAEN")
    created = create_tender(other, caen.service, "AO-2027-001")
    assert created.status_code == 201
    assert other.get("/api/tenders/AO-2027-001").json()["organisation"] == "Ville de Caen"
    assert registry.get("/api/tenders/AO-2027-001").json()["organisation"] == "Ville de Rouen"
    assert launch(registry, "AO-2027-001", "PERSO-1").status_code == 200
    # One launched: a company finds it by its reference.
    company = api_client(bidder, clock)
    assert company.get("/api/tenders/AO-2027-001").json()["organisation"] == "Ville de Rouen"
    # Both launched: the reference is ambiguous for companies, the id is not.
    assert launch(other, "AO-2027-001", "PERSO-CAEN").status_code == 200
    ambiguous = company.get("/api/tenders/AO-2027-001")
    assert ambiguous.status_code == 409 and "give the tender's id" in ambiguous.json()["detail"]
    caen_id = created.json()["id"]
    assert company.get(f"/api/tenders/{caen_id}").json()["organisation"] == "Ville de Caen"
    # Ids are not a way into another buyer's tenders.
    assert registry.get(f"/api/tenders/{caen_id}").status_code == 404


def test_a_tender_is_closed_after_its_deadline_only(registry, rouen: Buyer, clock):
    create_tender(registry, rouen.service, "AO-T", deadline=clock() + dt.timedelta(days=1))
    launch(registry, "AO-T", "PERSO-1")
    early = registry.post("/api/tenders/AO-T/close")
    assert early.status_code == 409 and "before its deadline" in early.json()["detail"]
    assert Tender.objects.get(reference="AO-T").status == "published"
    clock.advance(days=1)
    assert registry.post("/api/tenders/AO-T/close").json()["status"] == "closed"
    # A draft nobody deposits to may be closed at any time.
    create_tender(registry, rouen.service, "AO-BROUILLON")
    assert registry.post("/api/tenders/AO-BROUILLON/close").status_code == 200


def test_cancelling_stops_deposits_and_keeps_everything(registry, rouen: Buyer, bidder, clock):
    from scelle.platform.audit.models import Event

    create_tender(registry, rouen.service, "AO-X", deadline=clock() + dt.timedelta(days=1))
    launch(registry, "AO-X", "PERSO-1")
    nothing = registry.post(
        "/api/tenders/AO-X/cancel", {"reason": " "}, content_type="application/json"
    )
    assert nothing.status_code == 400 and Tender.objects.get(reference="AO-X").status == "published"
    reason = {"reason": "Déclaré sans suite : le besoin a disparu"}
    cancelled = registry.post("/api/tenders/AO-X/cancel", reason, content_type="application/json")
    assert cancelled.status_code == 200
    shown = cancelled.json()
    assert shown["status"] == "cancelled" and shown["cancel_reason"] == reason["reason"]
    event = Event.objects.get(action="tenders.tender.cancelled")
    assert event.details["reason"] == reason["reason"]
    again = registry.post("/api/tenders/AO-X/cancel", reason, content_type="application/json")
    assert again.status_code == 409
    # No deposit any more; companies still see it, cancelled.
    company = api_client(bidder, clock)
    refused = company.post(
        "/api/uploads/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "10",
            "Upload-Metadata": "tender " + base64.b64encode(b"AO-X").decode()
            + ",envelope " + base64.b64encode(b"offre").decode(),
        },
    )  # fmt: skip
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]
    assert company.get("/api/tenders/AO-X").json()["status"] == "cancelled"
    # Its key pairs stay in use until it is closed after its deadline.
    key_pairs = {k["designation"]: k for k in registry.get("/api/key-pairs").json()["key_pairs"]}
    assert registry.delete(f"/api/key-pairs/{key_pairs['PERSO-1']['id']}").status_code == 409
    assert registry.post("/api/tenders/AO-X/close").status_code == 409
    clock.advance(days=1)
    assert registry.post("/api/tenders/AO-X/close").status_code == 200
    assert registry.delete(f"/api/key-pairs/{key_pairs['PERSO-1']['id']}").status_code == 204
    # After the deadline a tender is closed, not cancelled.
    create_tender(registry, rouen.service, "AO-Y", deadline=clock() + dt.timedelta(hours=1))
    launch(registry, "AO-Y", "PERSO-2")
    clock.advance(hours=2)
    late = registry.post("/api/tenders/AO-Y/cancel", reason, content_type="application/json")
    assert late.status_code == 409 and "close it instead" in late.json()["detail"]


def test_launch_takes_a_designation_or_an_unambiguous_cn(registry, rouen: Buyer, clock, rsa_keys):
    create_tender(registry, rouen.service, "AO-CN")
    launched = launch(registry, "AO-CN", "perso-2")  # the designation, any case
    assert launched.status_code == 200
    key_pairs = registry.get("/api/key-pairs").json()["key_pairs"]
    common_name = next(k["common_name"] for k in key_pairs if k["designation"] == "PERSO-1")
    create_tender(registry, rouen.service, "AO-CN-2")
    assert launch(registry, "AO-CN-2", common_name.lower()).status_code == 200
    # A CN two key pairs share names neither of them.
    for designation, key in (("CLE-A", rsa_keys[3]), ("CLE-B", rsa_keys[4])):
        body = {
            "service": str(rouen.service.id), "role": "personal", "designation": designation,
            "csr_pem": csr_for(key, "CN PARTAGE"),
        }  # fmt: skip
        assert (
            registry.post("/api/key-pairs", body, content_type="application/json").status_code
            == 201
        )
    create_tender(registry, rouen.service, "AO-CN-3")
    shared = launch(registry, "AO-CN-3", "CN PARTAGE")
    assert shared.status_code == 409 and "give the designation" in shared.json()["detail"]
    unknown = launch(registry, "AO-CN-3", "personne")
    assert unknown.status_code == 404 and "nor one with that CN" in unknown.json()["detail"]
