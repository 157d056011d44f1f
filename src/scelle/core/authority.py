"""The platform's certificate authority, and the requests buyers send it.

A buyer's workstation generates the key pair and sends a PKCS#10 request
signed by the private key (`build_csr`); the platform checks that signature,
which proves the sender holds the key, and issues the encryption certificate
(`issue_encryption_certificate`): subject CN from the request, O and OU from
the platform's records, keyEncipherment only. The platform never sees a
buyer's private key (DESIGN.md, rule 8); it only ever holds its own CA key
and its receipt-signing key, and keeps both encrypted at rest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from scelle.core import certs
from scelle.core.envelope import MIN_RSA_BITS
from scelle.core.errors import N_, CertificateError, InvalidInputError, WrongPasswordError

AUTHORITY_VALIDITY_DAYS = 3650
AUTHORITY_RSA_BITS = 3072
SIGNING_VALIDITY_DAYS = 1825
MAX_CSR_BYTES = 64 << 10
MAX_NAME_ATTRIBUTE = 64  # ub-organization-name and ub-organizational-unit-name, RFC 5280 A.1
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """A signing key and its certificate: the platform CA, or the receipt signer."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def name(self) -> str:
        return certs.common_name(self.certificate.subject)


def _name_attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute[str]:
    # Long organisation names are cut to the X.509 upper bound rather than
    # refused: the certificate stays readable by strict parsers (NSS, Java).
    return x509.NameAttribute(oid, value.strip()[:MAX_NAME_ATTRIBUTE])


def create_authority(name: str, *, now: dt.datetime) -> Authority:
    """A fresh self-signed CA (RSA-3072, ten years) that signs only certificates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=AUTHORITY_RSA_BITS)
    subject = x509.Name([_name_attribute(NameOID.COMMON_NAME, name)])
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=AUTHORITY_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(certs.key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def _issued_by(
    authority: Authority,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    *,
    days: int,
    now: dt.datetime,
) -> x509.CertificateBuilder:
    # A certificate never outlives the CA that signed it.
    not_after = min(now + dt.timedelta(days=days), authority.certificate.not_valid_after_utc)
    authority_ski = authority.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(authority_ski),
            critical=False,
        )
    )


def create_signing_identity(authority: Authority, name: str, *, now: dt.datetime) -> Authority:
    """The platform's receipt signer: an ECDSA P-256 key certified by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([_name_attribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _issued_by(authority, subject, key.public_key(), days=SIGNING_VALIDITY_DAYS, now=now)
        .add_extension(
            certs.key_usage(digital_signature=True, content_commitment=True), critical=True
        )
        .sign(authority.key, hashes.SHA256())
    )
    return Authority(key, certificate)


def build_csr(key: rsa.RSAPrivateKey, common_name: str) -> bytes:
    """A PEM PKCS#10 request for `key`, subject CN only, signed by the key itself."""
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, certs.check_common_name(common_name))]
    )
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """A request whose signature verifies: its sender holds the private key."""
    if len(data) > MAX_CSR_BYTES:
        raise InvalidInputError(
            N_("the certificate request is too large"),
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            request = x509.load_pem_x509_csr(data)
        else:
            request = x509.load_der_x509_csr(data)
        valid = request.is_signature_valid
    except (ValueError, TypeError):
        raise InvalidInputError(
            N_("the certificate request is not a PKCS#10 request"),
        ) from None
    if not valid:
        raise InvalidInputError(
            N_("the certificate request's signature does not verify: it was not signed by its key"),
        )
    return request


def _request_rsa_key(request: x509.CertificateSigningRequest) -> rsa.RSAPublicKey:
    key = request.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateError(
            N_("encryption key pairs are RSA keys; the request holds another type"),
        )
    if key.key_size < MIN_RSA_BITS:
        raise CertificateError(
            N_("the request holds an RSA-{key_size} key; at least {min_rsa_bits} bits are needed"),
            key_size=key.key_size,
            min_rsa_bits=MIN_RSA_BITS,
        )
    return key


def issue_encryption_certificate(
    authority: Authority,
    request: x509.CertificateSigningRequest,
    *,
    organisation: str,
    service: str,
    days: int,
    now: dt.datetime,
) -> x509.Certificate:
    """The encryption certificate for a verified request: CN from it, O and OU from us."""
    key = _request_rsa_key(request)
    cn = certs.check_common_name(certs.common_name(request.subject))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            _name_attribute(NameOID.ORGANIZATION_NAME, organisation),
            _name_attribute(NameOID.ORGANIZATIONAL_UNIT_NAME, service),
        ]
    )
    return (
        _issued_by(authority, subject, key, days=days, now=now)
        .add_extension(certs.ENCIPHERMENT_ONLY, critical=True)
        .sign(authority.key, hashes.SHA256())
    )


def check_referenced_certificate(
    certificate: x509.Certificate, request: x509.CertificateSigningRequest, *, now: dt.datetime
) -> None:
    """Refuse a certificate referenced as it is unless it can receive envelopes and the
    request (signed by the same key) proves the sender holds its private key."""
    if request.public_key() != certificate.public_key():
        raise CertificateError(
            N_("the certificate request and the certificate hold different keys"),
        )
    certs.check_recipient(certificate, now=now)


def issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    """True when `authority` signed `certificate`."""
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def private_key_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, passphrase: bytes
) -> bytes:
    """The key as encrypted PKCS#8 PEM (AES-256-CBC, PBKDF2), for the platform's key files."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def load_authority(key_pem: bytes, certificate_pem: bytes, passphrase: bytes) -> Authority:
    """An authority from its encrypted key file and its certificate file."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=passphrase)
    except (ValueError, TypeError):
        raise WrongPasswordError(
            N_("the platform's key file cannot be decrypted with the platform's secret key"),
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertificateError(
            N_("the platform's key file holds neither an RSA nor an EC key"),
        )
    certificate = certs.load_certificate(certificate_pem, source="the platform certificate")
    if key.public_key() != certificate.public_key():
        raise CertificateError(
            N_("the platform's key file and certificate do not match"),
        )
    return Authority(key, certificate)
