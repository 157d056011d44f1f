"""Generated certificates and the checks a recipient must pass."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from scelle.core import certs
from scelle.core.errors import CertificateError, InvalidInputError, UnsupportedKeyError
from tests.conftest import NOW, Identity


def test_generated_certificate_is_an_encryption_certificate() -> None:
    key = certs.generate_private_key()
    assert key.key_size == 3072
    certificate = certs.self_signed_certificate(key, "Service des marchés", days=730, now=NOW)
    assert certs.common_name(certificate.subject) == "Service des marchés"
    assert certificate.not_valid_after_utc == NOW + dt.timedelta(days=730)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_encipherment and not usage.value.digital_signature
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False
    assert not certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert certs.key_matches_certificate(key, certificate)


@pytest.mark.parametrize("bits", [1024, 2048, 8192])
def test_only_3072_and_4096_are_generated(bits: int) -> None:
    with pytest.raises(UnsupportedKeyError, match="3072 or 4096"):
        certs.generate_private_key(bits)


@pytest.mark.parametrize(("cn", "days"), [("", 10), ("x" * 65, 10), ("ok", 0), ("ok", 4000)])
def test_bad_cn_or_validity(alice: Identity, cn: str, days: int) -> None:
    with pytest.raises(InvalidInputError):
        certs.self_signed_certificate(alice.key, cn, days=days, now=NOW)


def test_check_recipient_follows_the_clock(alice: Identity) -> None:
    certs.check_recipient(alice.certificate, now=NOW)
    with pytest.raises(CertificateError, match="not valid before"):
        certs.check_recipient(alice.certificate, now=NOW - dt.timedelta(days=1))
    with pytest.raises(CertificateError, match="expired on 2028-11-21"):
        certs.check_recipient(alice.certificate, now=NOW + dt.timedelta(days=731))
    with pytest.raises(CertificateError, match="expires on 2028-11-21, before 2029-01-01"):
        certs.check_recipient(
            alice.certificate, now=NOW, until=dt.datetime(2029, 1, 1, tzinfo=dt.UTC)
        )


def test_certificate_without_key_encipherment_is_refused(alice: Identity) -> None:
    from cryptography.hazmat.primitives import hashes

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signature only")])
    signing_only = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(alice.key.public_key()).serial_number(3)
        .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=9))
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(alice.key, hashes.SHA256())
    )  # fmt: skip
    with pytest.raises(CertificateError, match="does not allow key encipherment"):
        certs.check_recipient(signing_only, now=NOW)


def test_load_certificate_pem_and_der(alice: Identity) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    pem = alice.certificate.public_bytes(Encoding.PEM)
    der = alice.certificate.public_bytes(Encoding.DER)
    assert certs.load_certificate(pem) == certs.load_certificate(der) == alice.certificate
    with pytest.raises(CertificateError, match="not a PEM or DER"):
        certs.load_certificate(b"garbage", source="x.pem")
