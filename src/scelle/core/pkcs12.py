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

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass, field

from asn1crypto import core as asn1_core
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.utils import CryptographyDeprecationWarning

from scelle.core import ber
from scelle.core.certs import common_name, key_matches_certificate
from scelle.core.envelope import MIN_RSA_BITS, describe_key
from scelle.core.errors import N_, PKCS12Error, UnsupportedKeyError, WrongPasswordError
from scelle.core.passwords import check_password_strength
from scelle.core.pkcs12_latin1 import load_latin1

# PBKDF2 rounds for the modern profile. The key bag and the certificate bag
# each run them (the MAC runs cryptography's fixed 2,048): 402,048 in all stays
# within the 600,000 that .NET, and so many Windows tools, accept by default,
# while making each password guess cost a few hundred milliseconds.
MODERN_KDF_ROUNDS = 200_000
# The legacy profile is for readers from before 2017: keep OpenSSL's own
# default count, which all of them are known to handle.
LEGACY_KDF_ROUNDS = 2048
MAX_PKCS12_BYTES = 1 << 20
MAX_NAME_CHARACTERS = 64
"""A key pair name's length in the store (keystore.store.MAX_NAME_LENGTH)."""


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


_MAC_DIGESTS = {
    "1.3.14.3.2.26": "SHA-1",
    "2.16.840.1.101.3.4.2.4": "SHA-224",
    "2.16.840.1.101.3.4.2.1": "SHA-256",
    "2.16.840.1.101.3.4.2.2": "SHA-384",
    "2.16.840.1.101.3.4.2.3": "SHA-512",
    "2.16.840.1.101.3.4.2.5": "SHA-512/224",
    "2.16.840.1.101.3.4.2.6": "SHA-512/256",
}
"""The MACs the reader checks: any other makes a right password look wrong."""
_CIPHERS = {
    "1.2.840.113549.1.12.1.1", "1.2.840.113549.1.12.1.2",  # PBES1 RC4-128, RC4-40
    "1.2.840.113549.1.12.1.3", "1.2.840.113549.1.12.1.4",  # PBES1 3DES, 2DES
    "1.2.840.113549.1.12.1.5", "1.2.840.113549.1.12.1.6",  # PBES1 RC2-128, RC2-40
    "1.2.840.113549.1.5.13", "1.2.840.113549.1.5.12",  # PBES2, PBKDF2
    "2.16.840.1.101.3.4.1.2", "2.16.840.1.101.3.4.1.22", "2.16.840.1.101.3.4.1.42",  # AES-CBC
    "1.2.840.113549.3.7", "1.3.14.3.2.7",  # DES-EDE3-CBC, DES-CBC
    "1.2.840.113549.2.7", "1.2.840.113549.2.8", "1.2.840.113549.2.9",  # HMAC SHA-1, -224, -256
    "1.2.840.113549.2.10", "1.2.840.113549.2.11",  # HMAC SHA-384, SHA-512
}  # fmt: skip
"""The password-based ciphers (and their key derivations) the reader decrypts."""
_MAX_OIDS = 64
_KNOWN_NAMES = {
    "1.2.643.7.1.1.2.2": "GOST R 34.11-2012 (256 bits)",
    "1.2.643.7.1.1.2.3": "GOST R 34.11-2012 (512 bits)",
    "1.2.643.2.2.9": "GOST R 34.11-94",
    "1.2.643.7.1.1.5.2.2": "GOST R 34.12-2015 Kuznyechik",
    "1.2.156.10197.1.401": "SM3",
    "1.2.840.113549.1.5.14": "PBMAC1",
    "1.2.840.113549.2.5": "MD5",
}


def _unsupported_algorithms(data: bytes) -> tuple[str | None, list[str]]:
    """The file's MAC when the reader cannot check it, and the ciphers it cannot decrypt
    (named, else as OIDs): what makes a right password fail. Read from the structure
    alone, which needs no password; nothing when the structure cannot be read."""
    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        mac = pfx["mac_data"]
        digest = None if not mac else mac["mac"]["digest_algorithm"]["algorithm"].dotted
        found: list[str] = []
        for info in pfx.authenticated_safe:
            if info["content_type"].native == "encrypted_data":
                content = info["content"]["encrypted_content_info"]
                found += _oids(content["content_encryption_algorithm"])
            elif info["content_type"].native == "data":
                for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
                    if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                        found += _oids(bag["bag_value"]["encryption_algorithm"])
    except ber.MALFORMED:
        return None, []
    mac_problem = None if digest is None or digest in _MAC_DIGESTS else _name(digest)
    return mac_problem, sorted({_name(oid) for oid in found if oid not in _CIPHERS})


def _oids(algorithm: asn1_core.Asn1Value) -> list[str]:
    """Every OID in an AlgorithmIdentifier, its parameters' included (PBES2 nests its
    cipher and key derivation there), read from its DER with core.ber."""
    found: list[str] = []
    pending = [algorithm.dump()]
    while pending and len(found) < _MAX_OIDS:
        der = pending.pop()
        reader = ber.BerReader(io.BytesIO(der))
        while reader.position < len(der):
            header, raw = reader.read_tlv(limit=len(der))
            if header.is_(ber.UNIVERSAL, 6):
                found.append(asn1_core.ObjectIdentifier.load(raw).dotted)
            elif header.constructed:  # its content, without the EOC of the indefinite form
                pending.append(
                    raw[len(header.raw) : len(raw) - (2 if header.length is None else 0)]
                )
    return found


def _name(oid: str) -> str:
    return _KNOWN_NAMES.get(oid, oid)


def _password_encodings(password: str) -> list[bytes | None]:
    """The bytes a writer may have made of the password: UTF-8 (today's tools), and for an
    empty one no password at all (writers differ). Latin-1 bytes are tried apart
    (pkcs12_latin1), cryptography accepting only UTF-8."""
    candidates: list[bytes | None] = [password.encode("utf-8")]
    if not password:
        candidates.append(None)
    return candidates


def _load(data: bytes, password: str, source: str) -> pkcs12.PKCS12KeyAndCertificates:
    for candidate in _password_encodings(password):
        try:
            with warnings.catch_warnings():
                # NSS's pk12util writes BER, which cryptography still reads but
                # warns about; reading it is the point (tests/interop/test_nss.py
                # tells us if a release stops). Certificates with a negative serial
                # number (old Windows CAs) are read as they are, without a word.
                warnings.filterwarnings(
                    "ignore", message="PKCS#12 bundle could not be parsed as DER"
                )
                warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning)
                return pkcs12.load_pkcs12(data, candidate)
        except UnsupportedAlgorithm as error:
            raise _unreadable_key(error, source) from None
        except ValueError:
            continue
    if not password.isascii():
        latin = load_latin1(data, password)
        if latin is not None:
            return latin
    mac, ciphers = _unsupported_algorithms(data)
    if mac is not None:
        raise PKCS12Error(
            N_(
                "{source_} is protected by a MAC algorithm Scellé cannot check ({mac}): "
                "export the key pair again with SHA-256 (or SHA-1)"
            ),
            source_=source,
            mac=mac,
        )
    if ciphers:
        raise PKCS12Error(
            N_(
                "{source_} is encrypted with an algorithm Scellé cannot decrypt ({ciphers}): "
                "export the key pair again with AES-256 or TripleDES"
            ),
            source_=source,
            ciphers=", ".join(ciphers),
        )
    if _is_pkcs12_structure(data):
        raise WrongPasswordError(
            N_("wrong password for {source_}"),
            source_=source,
        )
    raise PKCS12Error(
        N_("{source_} is not a PKCS#12 (.pfx/.p12) file, or it is damaged"),
        source_=source,
    )


def _unreadable_key(error: UnsupportedAlgorithm, source: str) -> UnsupportedKeyError:
    """What cryptography could not read, in a sentence: an elliptic curve it does not know
    is the usual case (brainpool, explicit parameters)."""
    curve = re.search(r"Curve ([0-9.]+) is not supported", str(error))
    if curve:
        return UnsupportedKeyError(
            N_(
                "{source_} holds an EC key on the curve {curve}, which Scellé cannot read; "
                "Scellé opens envelopes with RSA key pairs of {min_rsa_bits} bits or more"
            ),
            source_=source,
            curve=curve.group(1),
            min_rsa_bits=MIN_RSA_BITS,
        )
    return UnsupportedKeyError(
        N_(
            "{source_} holds a key of a kind Scellé cannot read; Scellé opens envelopes "
            "with RSA key pairs of {min_rsa_bits} bits or more"
        ),
        source_=source,
        min_rsa_bits=MIN_RSA_BITS,
    )


def usable_name(raw: bytes | None) -> str | None:
    """A friendly name as a key pair name: without the control characters Windows leaves
    in it (a final NUL), its spaces folded, at most 64 characters; None when nothing is
    left (the certificate's CN then names the key pair)."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    kept = "".join(
        " " if char.isspace() else char
        for char in text
        if char.isspace() or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    kept = " ".join(kept.replace("\ufffd", " ").split())
    return kept[:MAX_NAME_CHARACTERS].strip() or None


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
        friendly_name=usable_name(friendly),
    )
