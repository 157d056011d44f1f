"""Key pairs and certificates: generation, reading, and the checks a recipient must pass."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from scelle.core.envelope import recipient_public_key
from scelle.core.errors import N_, CertificateError, InvalidInputError, UnsupportedKeyError
from scelle.core.text import storable

DEFAULT_RSA_BITS = 3072
GENERATED_RSA_BITS = (3072, 4096)
"""Sizes we generate; 2048 is only accepted for certificates that already exist."""
DEFAULT_VALIDITY_DAYS = 730
MAX_VALIDITY_DAYS = 3650
MAX_CN_LENGTH = 64  # ub-common-name, RFC 5280 appendix A.1
_BACKDATE = dt.timedelta(minutes=5)  # tolerate clocks a little behind ours


def generate_private_key(bits: int = DEFAULT_RSA_BITS) -> rsa.RSAPrivateKey:
    """A fresh RSA key of 3072 or 4096 bits."""
    if bits not in GENERATED_RSA_BITS:
        sizes = " or ".join(str(size) for size in GENERATED_RSA_BITS)
        raise UnsupportedKeyError(
            N_("key pairs are generated with {sizes} bits, not {bits}"),
            sizes=sizes,
            bits=bits,
        )
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def check_label(value: str, *, what: str, max_length: int) -> str:
    """`value` stripped, or an error naming `what` when it is empty, too long or has controls."""
    cleaned = value.strip()
    if not cleaned:
        raise InvalidInputError(
            N_("{what} cannot be empty"),
            what=what,
        )
    if len(cleaned) > max_length:
        raise InvalidInputError(
            N_("{what} has at most {max_length} characters"),
            what=what,
            max_length=max_length,
        )
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in cleaned) or not storable(cleaned):
        raise InvalidInputError(
            N_("{what} cannot hold control characters"),
            what=what,
        )
    return cleaned


def check_common_name(common_name: str) -> str:
    """The CN, stripped, or an error saying why it cannot be one."""
    return check_label(common_name, what="the CN (Common Name)", max_length=MAX_CN_LENGTH)


def key_usage(**allowed: bool) -> x509.KeyUsage:
    """A keyUsage extension allowing only the named uses (`key_encipherment=True`, …)."""
    uses = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    unknown = set(allowed) - set(uses)
    if unknown:
        raise InvalidInputError(
            N_("unknown key usage {value}"),
            value=sorted(unknown)[0],
        )
    return x509.KeyUsage(**{**uses, **allowed})


ENCIPHERMENT_ONLY = key_usage(key_encipherment=True)
"""What an encryption certificate allows: receiving envelopes, nothing else."""


def self_signed_certificate(
    key: rsa.RSAPrivateKey, common_name: str, *, days: int, now: dt.datetime
) -> x509.Certificate:
    """An encryption certificate for `key`, signed by itself, valid `days` days from `now`.

    keyUsage is keyEncipherment only (critical) and basicConstraints CA:false:
    the certificate is good for receiving envelopes and nothing else.
    """
    if not 1 <= days <= MAX_VALIDITY_DAYS:
        raise InvalidInputError(
            N_("the validity is 1 to {max_validity_days} days, not {days}"),
            max_validity_days=MAX_VALIDITY_DAYS,
            days=days,
        )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, check_common_name(common_name))])
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ENCIPHERMENT_ONLY, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def load_certificate(data: bytes, *, source: str = "the certificate") -> x509.Certificate:
    """A certificate from PEM or DER bytes."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise CertificateError(
            N_("{source_} is not a PEM or DER X.509 certificate"),
            source_=source,
        ) from None


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint as colon-separated upper-case hex, as OpenSSL and Windows show it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def public_key_sha256(certificate: x509.Certificate) -> str:
    """The SHA-256 of the certificate's SubjectPublicKeyInfo, in hex: the same key
    pair under a renewed certificate keeps this value."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return digest.finalize().hex()


def common_name(name: x509.Name) -> str:
    """The name's CN, or its RFC 4514 form when it has none."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if values:
        value = values[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string()


def key_matches_certificate(key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> bool:
    return bool(key.public_key() == certificate.public_key())


def _allows_key_encipherment(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no keyUsage: any use is allowed (RFC 5280, 4.2.1.3)
    return bool(usage.key_encipherment)


def check_recipient(
    certificate: x509.Certificate, *, now: dt.datetime, until: dt.datetime | None = None
) -> None:
    """Refuse a certificate that cannot receive envelopes from `now` to `until`.

    RSA of at least 2048 bits, keyEncipherment allowed, valid now and, when
    given, still valid at `until` (a deadline plus the opening window).
    """
    recipient_public_key(certificate)
    who = common_name(certificate.subject)
    if not _allows_key_encipherment(certificate):
        raise CertificateError(
            N_("the certificate of {who} does not allow key encipherment"),
            who=who,
        )
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if now < not_before:
        raise CertificateError(
            N_("the certificate of {who} is not valid before {not_before:%Y-%m-%d}"),
            who=who,
            not_before=not_before,
        )
    if now > not_after:
        raise CertificateError(
            N_("the certificate of {who} expired on {not_after:%Y-%m-%d}"),
            who=who,
            not_after=not_after,
        )
    if until is not None and until > not_after:
        raise CertificateError(
            N_("the certificate of {who} expires on {not_after:%Y-%m-%d}, before {until:%Y-%m-%d}"),
            who=who,
            not_after=not_after,
            until=until,
        )


def private_key_to_pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 DER, unencrypted: only ever handed to `SealingKey.seal`, never written."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def private_key_from_pkcs8(der: bytes) -> rsa.RSAPrivateKey:
    """A key sealed by `SealingKey.seal`: trusted, so the primality checks are skipped.

    Those checks cost 0.2 s for an RSA-3072 key on every decryption; the key
    was checked when it entered the store, and AES-GCM guarantees that the
    bytes are the ones we wrote. Never use this on a key from elsewhere.
    """
    key = serialization.load_der_private_key(
        der, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UnsupportedKeyError(
            N_("the stored key is not an RSA key"),
        )
    return key


def certificates_pem(certificates: list[x509.Certificate]) -> bytes:
    return b"".join(certificate_pem(certificate) for certificate in certificates)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CertificateError(
            N_("the certificate file is damaged"),
        ) from None
