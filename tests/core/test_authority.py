"""The platform CA: requests prove possession, certificates say what they are for."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from scelle.core import authority, certs
from scelle.core.errors import (
    CertificateError,
    InvalidInputError,
    ScelleError,
    WrongPasswordError,
)
from tests.conftest import NOW, Identity


@pytest.fixture(scope="module")
def ca() -> authority.Authority:
    return authority.create_authority("Plateforme de test — autorité", now=NOW)


def test_the_authority_signs_certificates_only(ca: authority.Authority) -> None:
    constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = ca.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.key_encipherment
    assert ca.certificate.not_valid_after_utc - NOW == dt.timedelta(days=3650)


def test_issue_from_a_request(ca: authority.Authority, alice: Identity) -> None:
    request = authority.load_csr(authority.build_csr(alice.key, "BICLE"))
    issued = authority.issue_encryption_certificate(
        ca, request, organisation="Région Normandie" * 10, service="Achats", days=730, now=NOW
    )
    issued.verify_directly_issued_by(ca.certificate)
    assert authority.issued_by(issued, ca.certificate)
    assert not authority.issued_by(alice.certificate, ca.certificate)
    organisation = issued.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert len(organisation) == 64  # cut to the X.509 bound, not refused
    certs.check_recipient(issued, now=NOW, until=NOW + dt.timedelta(days=729))
    aki = issued.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_a_certificate_never_outlives_its_authority(ca: authority.Authority, alice) -> None:
    request = authority.load_csr(authority.build_csr(alice.key, "LONGUE"))
    later = NOW + dt.timedelta(days=3500)
    issued = authority.issue_encryption_certificate(
        ca, request, organisation="O", service="S", days=730, now=later
    )
    assert issued.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_requests_are_checked(ca: authority.Authority, alice: Identity, bob: Identity) -> None:
    with pytest.raises(InvalidInputError, match="not a PKCS#10"):
        authority.load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")
    with pytest.raises(InvalidInputError, match="too large"):
        authority.load_csr(b"0" * (authority.MAX_CSR_BYTES + 1))
    ec_request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC")]))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    with pytest.raises(CertificateError, match="RSA"):
        authority.issue_encryption_certificate(
            ca, ec_request, organisation="O", service="S", days=730, now=NOW
        )
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateError, match="RSA-1024"):
        authority.issue_encryption_certificate(
            ca,
            authority.load_csr(authority.build_csr(small, "PETITE")),
            organisation="O",
            service="S",
            days=730,
            now=NOW,
        )
    # A certificate referenced as it is must come with a request from its key.
    request = authority.load_csr(authority.build_csr(bob.key, "BOB"))
    with pytest.raises(CertificateError, match="different keys"):
        authority.check_referenced_certificate(alice.certificate, request, now=NOW)
    own = authority.load_csr(authority.build_csr(alice.key, "ALICE"))
    authority.check_referenced_certificate(alice.certificate, own, now=NOW)


def test_key_files_round_trip_and_refuse_a_wrong_secret(ca: authority.Authority) -> None:
    pem = authority.private_key_pem(ca.key, b"secret-de-la-plateforme")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    loaded = authority.load_authority(
        pem, certs.certificate_pem(ca.certificate), b"secret-de-la-plateforme"
    )
    assert loaded.certificate == ca.certificate
    with pytest.raises(WrongPasswordError):
        authority.load_authority(pem, certs.certificate_pem(ca.certificate), b"autre")
    signer = authority.create_signing_identity(ca, "Accusés", now=NOW)
    with pytest.raises(ScelleError, match="do not match"):
        authority.load_authority(
            authority.private_key_pem(signer.key, b"s"), certs.certificate_pem(ca.certificate), b"s"
        )
    usage = signer.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment
    signer.certificate.verify_directly_issued_by(ca.certificate)
