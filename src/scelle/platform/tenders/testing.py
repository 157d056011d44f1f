"""The *Consultation de test*: a tender every company may deposit to, before the real one.

French buyers' profiles let a company try a deposit end to end. The platform
keeps one test tender launched at all times, owned by an organisation of its
own that nobody logs in to, with one key pair the platform generated and
certified, and whose **private key it publishes** (`TestKey`): a company
deposits there exactly as for a real tender (page or command), gets a signed
receipt marked `test`, and opens its own deposit with the published key to
see that what it sealed is what it would send.

What keeps it harmless: the key seals nothing but test deposits (it is the
test tender's only recipient and no other tender can be launched with it);
test deposits are smaller (SCELLE_TEST_DEPOSIT_MAX_BYTES), few per company
(SCELLE_TEST_DEPOSITS_KEPT), opened only by their own company, never listed
to a buyer, and swept after SCELLE_TEST_DEPOSIT_HOURS (deposits.services).

The test tender's deadline lies about a year ahead; a month before it, the
housekeeping launches the next one and cancels the old (`ensure_test_tender`).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction

from scelle.core import authority, certs, pkcs12
from scelle.core.errors import N_, NotFoundError
from scelle.core.text import storable
from scelle.platform.accounts.models import Organisation, Service, User
from scelle.platform.audit.services import PLATFORM_ACTOR, record
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.tenders.models import Tender, TestKey
from scelle.platform.tenders.services import assign, change_status

ORGANISATION = "Scellé — consultation de test"
SERVICE = "Essais"
ACCOUNT = "test-tender@scelle.invalid"
"""The owner of the test tender's rows: inactive, with no password: nobody logs in."""
TITLE = "Consultation de test / Test tender"
COMMON_NAME = "Scellé test key (public)"
PFX_PASSWORD = "consultation-de-test"  # noqa: S105 - published on purpose
"""The password of the published .pfx; the page and the README say it."""
ENVELOPES = ["candidature", "offre"]
TEST_KEY_BITS = 2048
"""The least every sealing client accepts: a key whose private half is published gains
nothing from more bits, and 2048 are made in a third of the time of 3072."""
LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
"""A test tender this close to its deadline is replaced by a new one."""


def current_test_tender(*, now: dt.datetime) -> Tender | None:
    """The test tender companies deposit to now, if the platform has one."""
    return (
        Tender.objects.filter(is_test=True, status=Tender.Status.PUBLISHED, deadline__gt=now)
        .select_related("organisation", "service", "test_key")
        .order_by("-deadline")
        .first()
    )


def test_key_of(key: str) -> TestKey:
    """The published key pair of the test tender `key` (its id or reference), private key
    included; anyone may have it. Any other tender is "not found"."""
    wanted = key.strip()[:64]
    found = TestKey.objects.select_related("tender")
    try:
        found = found.filter(tender_id=uuid.UUID(wanted))
    except ValueError:
        found = found.filter(tender__reference__iexact=wanted)
    match = found.first() if storable(wanted) else None
    if match is None:
        raise NotFoundError(N_("{reference} is not a test tender"), reference=wanted)
    return match


def page_facts() -> dict[str, object]:
    """What the pages say of any test tender: how long deposits stay, the .pfx's password."""
    return {"test_hours": settings.SCELLE_TEST_DEPOSIT_HOURS, "pfx_password": PFX_PASSWORD}


def ensure_test_tender(*, now: dt.datetime) -> Tender | None:
    """The current test tender, launched now if there is none or if it ends within
    RENEW_BEFORE (the old one is then cancelled); None when SCELLE_TEST_TENDER is off
    (and the test tender, if there was one, cancelled: companies no longer see it).

    Several server processes may call it at once: the owner's row is locked, and the
    second finds the first one's tender.
    """
    current = current_test_tender(now=now)
    if not settings.SCELLE_TEST_TENDER:
        if current is not None:
            with transaction.atomic():
                _cancel_others(None, "the platform's operator turned the test tender off", now)
        return None
    if current is not None and current.deadline > now + RENEW_BEFORE:
        return current
    owner = _owner(now)
    with transaction.atomic():
        Organisation.objects.select_for_update().filter(id=owner.organisation_id).exists()
        current = current_test_tender(now=now)
        if current is not None and current.deadline > now + RENEW_BEFORE:
            return current
        tender = _launch(owner, now)
        _cancel_others(tender, f"replaced by {tender.reference}", now)
    return tender


def _cancel_others(kept: Tender | None, reason: str, now: dt.datetime) -> None:
    """Cancel every published test tender but `kept`: one at a time takes deposits."""
    others = Tender.objects.filter(is_test=True, status=Tender.Status.PUBLISHED)
    for old in others.exclude(id=kept.id) if kept is not None else others:
        # A test tender anchors nothing: no checkpoint.
        change_status(
            PLATFORM_ACTOR, old, Tender.Status.CANCELLED,
            {"cancelled_at": now, "cancel_reason": reason},
            event="tenders.tender.cancelled", details={"reason": reason}, anchor=None, now=now,
        )  # fmt: skip


def _owner(now: dt.datetime) -> User:
    """The platform's own account that owns the test tenders (made on first use)."""
    for _attempt in range(2):  # a second process may make the same rows meanwhile
        try:
            with transaction.atomic():
                organisation, _made = Organisation.objects.get_or_create(
                    name=ORGANISATION,
                    defaults={"kind": Organisation.Kind.BUYER, "created_at": now},
                )
                Service.objects.get_or_create(
                    organisation=organisation, name=SERVICE, defaults={"created_at": now}
                )
                user, _made = User.objects.get_or_create(
                    email=ACCOUNT,
                    defaults={
                        "organisation": organisation,
                        "is_active": False,
                        "created_at": now,
                        "password": make_password(None),
                    },
                )
                return user
        except IntegrityError:
            continue
    return User.objects.get(email=ACCOUNT)


def _launch(owner: User, now: dt.datetime) -> Tender:
    """A new test tender, launched with a new key pair of the platform's making."""
    service = Service.objects.get(organisation_id=owner.organisation_id, name=SERVICE)
    key = rsa.generate_private_key(public_exponent=65537, key_size=TEST_KEY_BITS)
    certificate = authority.issue_encryption_certificate(
        platform_authority(),
        authority.load_csr(authority.build_csr(key, COMMON_NAME)),
        organisation=ORGANISATION,
        service=SERVICE,
        days=settings.SCELLE_CERTIFICATE_DAYS,
        now=now,
    )
    not_after = certificate.not_valid_after_utc
    window = dt.timedelta(days=settings.SCELLE_OPENING_WINDOW_DAYS)
    deadline = max(min(now + LIFETIME, not_after - window), now + RENEW_BEFORE * 2)
    deadline = min(deadline, not_after - dt.timedelta(hours=1)).replace(microsecond=0)
    tender = Tender.objects.create(
        organisation_id=owner.organisation_id,
        service=service,
        reference=f"TEST-{now:%Y%m%d-%H%M%S}",
        title=TITLE,
        deadline=deadline,
        envelopes=ENVELOPES,
        status=Tender.Status.PUBLISHED,
        created_by=owner,
        created_at=now,
        launched_by=owner,
        launched_at=now,
        is_test=True,
    )
    fingerprint = _assign(tender, owner, certificate, now)
    TestKey.objects.create(tender=tender, private_key_pem=_public_pem(key))
    record(
        "tenders.test_tender.launched",
        actor=PLATFORM_ACTOR,
        target=tender,
        organisation_id=owner.organisation_id,
        details={
            "reference": tender.reference,
            "deadline": deadline.isoformat(),
            "fingerprint": fingerprint,
            "private_key": "published",
        },
        now=now,
    )
    return tender


def _assign(tender: Tender, owner: User, certificate: x509.Certificate, now: dt.datetime) -> str:
    """The test key pair in its service's registry, and assigned to `tender` for good, as a
    launch assigns them; its fingerprint."""
    key_pair = KeyPair.objects.create(
        organisation_id=owner.organisation_id,
        service=tender.service,
        designation=f"Clé de test {tender.reference}",
        role=KeyPair.Role.PERSONAL,
        common_name=COMMON_NAME,
        certificate_pem=certs.certificate_pem(certificate).decode(),
        fingerprint_sha256=certs.fingerprint_sha256(certificate),
        public_key_sha256=certs.public_key_sha256(certificate),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        issued_by_platform=True,
        added_by=owner,
        added_at=now,
    )
    assign(tender, key_pair)
    return key_pair.fingerprint_sha256


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, unencrypted: this key is published."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_key_pfx(test_key: TestKey) -> bytes:
    """The published key pair as a .pfx (password PFX_PASSWORD), for `scelle open --pfx`,
    `scelle keys import` and every tool that reads PKCS#12. Made once per process: its key
    derivation costs a third of a second, which anyone could ask for again and again."""
    assigned = test_key.tender.assigned_key_pairs.get()
    return _pfx(test_key.private_key_pem, assigned.certificate_pem, assigned.designation)


@functools.lru_cache(maxsize=4)
def _pfx(private_key_pem: str, certificate_pem: str, name: str) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):  # the platform wrote it: never
        raise NotFoundError(N_("this platform has no test tender"))
    bundle = pkcs12.KeyBundle(
        key,
        certs.load_certificate(certificate_pem.encode()),
        chain=(platform_authority().certificate,),
        friendly_name=name,
    )
    return pkcs12.export_pkcs12(bundle, PFX_PASSWORD)
