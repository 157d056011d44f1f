"""PKCS#12 (.pfx, .p12): how key pairs travel between workstations.

Export always takes a password (checked for strength) and writes either the
modern profile, PBES2 AES-256-CBC with PBKDF2-HMAC-SHA256 and a SHA-256 MAC
(Windows 10 1709+, Java 11+, NSS, OpenSSL 1.1.1+), or with `legacy` the
3DES/SHA-1 profile for older Windows and Java 8. Never PBMAC1, which most
readers do not know yet.

Import reads both profiles and what OpenSSL, NSS (BER), Java and Windows
write, RC2-40 included (the cryptography wheels carry OpenSSL's legacy
provider for it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from scelle.core.certs import common_name, key_matches_certificate
from scelle.core.envelope import MIN_RSA_BITS, describe_key
from scelle.core.errors import N_, PKCS12Error, UnsupportedKeyError, WrongPasswordError
from scelle.core.passwords import check_password_strength

# PBKDF2 rounds for the modern profile. The key bag and the certificate bag
# each run them (the MAC runs cryptography's fixed 2,048): 402,048 in all stays
# within the 600,000 that .NET, and so many Windows tools, accept by default,
# while making each password guess cost a few hundred milliseconds.
MODERN_KDF_ROUNDS = 200_000
# The legacy profile is for readers from before 2017: keep OpenSSL's own
# default count, which all of them are known to handle.
LEGACY_KDF_ROUNDS = 2048
MAX_PKCS12_BYTES = 1 << 20


@dataclass(frozen=True)
class KeyBundle:
    """A key pair as it travels: private key, certificate, chain and friendly name."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    """Issuer certificates, nearest first; empty for a self-signed certificate."""
    friendly_name: str | None = None
    """The name Windows and keytool show (PKCS#9 friendlyName)."""


def export_pkcs12(bundle: KeyBundle, password: str, *, legacy: bool = False) -> bytes:
    """The bundle as a password-protected .pfx; refuses weak passwords."""
    check_password_strength(password)
    builder = serialization.PrivateFormat.PKCS12.encryption_builder()
    if legacy:
        builder = (
            builder.kdf_rounds(LEGACY_KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 - the MAC of the legacy profile
        )
    else:
        builder = (
            builder.kdf_rounds(MODERN_KDF_ROUNDS)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
        )
    name = (bundle.friendly_name or common_name(bundle.certificate.subject)).encode("utf-8")
    return pkcs12.serialize_key_and_certificates(
        name, bundle.private_key, bundle.certificate, bundle.chain, builder.build(password.encode())
    )


def _is_pkcs12_structure(data: bytes) -> bool:
    """Whether `data` parses as a PFX at all: tells a wrong password from a damaged file."""
    try:
        pfx = asn1_pkcs12.Pfx.load(data, strict=True)
        return bool(
            pfx["version"].native == "v3"
            and pfx["auth_safe"]["content_type"].native in ("data", "signed_data")
        )
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        return False


def _load(data: bytes, password: str, source: str) -> pkcs12.PKCS12KeyAndCertificates:
    # An empty password may mean "no password at all" (NULL) or the empty
    # string; writers differ, so try both.
    candidates: list[bytes | None] = [password.encode("utf-8")]
    if not password:
        candidates.append(None)
    for candidate in candidates:
        try:
            with warnings.catch_warnings():
                # NSS's pk12util writes BER, which cryptography still reads but
                # warns about; reading it is the point (tests/interop/test_nss.py
                # tells us if a release stops).
                warnings.filterwarnings(
                    "ignore", message="PKCS#12 bundle could not be parsed as DER"
                )
                return pkcs12.load_pkcs12(data, candidate)
        except ValueError:
            continue
    if _is_pkcs12_structure(data):
        raise WrongPasswordError(
            N_("wrong password for {source_}"),
            source_=source,
        )
    raise PKCS12Error(
        N_("{source_} is not a PKCS#12 (.pfx/.p12) file, or it is damaged"),
        source_=source,
    )


def import_pkcs12(data: bytes, password: str, *, source: str = "the file") -> KeyBundle:
    """Read a key pair from a .pfx; `source` names the file in error messages."""
    if len(data) > MAX_PKCS12_BYTES:
        raise PKCS12Error(
            N_("{source_} is too large for a PKCS#12 key file"),
            source_=source,
        )
    loaded = _load(data, password, source)
    key = loaded.key
    if key is None:
        raise PKCS12Error(
            N_("{source_} holds no private key: it cannot open envelopes"),
            source_=source,
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UnsupportedKeyError(
            N_("{source_} holds {describe_key}; Scellé opens envelopes with RSA key pairs only"),
            source_=source,
            describe_key=describe_key(key),
        )
    if key.key_size < MIN_RSA_BITS:
        raise UnsupportedKeyError(
            N_(
                "{source_} holds an RSA key of {key_size} bits; at least {min_rsa_bits} are "
                "required"
            ),
            source_=source,
            key_size=key.key_size,
            min_rsa_bits=MIN_RSA_BITS,
        )
    if loaded.cert is None:
        raise PKCS12Error(
            N_("{source_} holds a private key but not its certificate"),
            source_=source,
        )
    certificate = loaded.cert.certificate
    if not key_matches_certificate(key, certificate):
        raise PKCS12Error(
            N_("{source_}: the certificate does not belong to the private key"),
            source_=source,
        )
    friendly = loaded.cert.friendly_name
    chain = tuple(
        extra.certificate for extra in loaded.additional_certs if extra.certificate != certificate
    )
    return KeyBundle(
        private_key=key,
        certificate=certificate,
        chain=chain,
        friendly_name=friendly.decode("utf-8", "replace") if friendly else None,
    )
