"""PKCS#12 files whose PBES2 password was taken as Latin-1 bytes, not UTF-8.

Older Java and JSafe tools fed PBKDF2 the password's Latin-1 bytes, where
today's tools (and the cryptography package, which accepts nothing else) use
UTF-8: such a file, protected by a password with an accent, reads as "wrong
password" everywhere. Its MAC, though, is keyed from the password's
characters (RFC 7292, B.1: a BMPString), the same whatever bytes the writer
took, so the password can be checked first; then each PBES2 bag is decrypted
with PBKDF2 over the Latin-1 bytes (RFC 8018), with cryptography's
primitives. Only PBES2 with AES-CBC or 3DES is read here: anything else is
left to `pkcs12.import_pkcs12`'s own errors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from asn1crypto import algos
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs12

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}  # fmt: skip
"""PBKDF2's pseudo-random functions, by asn1crypto's names."""
_MAC_HASHES = {"sha1", "sha224", "sha256", "sha384", "sha512"}
_MAX_ITERATIONS = 10_000_000
"""More rounds than any writer uses: a hostile file could make the check last hours."""


class _NotThisKind(Exception):
    """The file is not a Latin-1 PBES2 file this module reads."""


def load_latin1(data: bytes, password: str) -> pkcs12.PKCS12KeyAndCertificates | None:
    """The file's key and certificates when `password`'s Latin-1 bytes open it; None when
    the MAC says the password is wrong, or the file is not of the kind read here."""
    try:
        secret = password.encode("latin-1")
        pfx = asn1_pkcs12.Pfx.load(data)
        if not _mac_verifies(pfx, password):
            return None
        return _read_bags(pfx, secret)
    except (
        _NotThisKind, UnicodeEncodeError, ValueError, TypeError, KeyError, IndexError,
        OverflowError, UnsupportedAlgorithm,
    ):  # fmt: skip
        return None


def pkcs12_kdf(hash_name: str, password: str, salt: bytes, iterations: int, length: int) -> bytes:
    """RFC 7292, B.2, with ID 3: the MAC key derived from the password's characters."""
    digest = hashlib.new(hash_name)
    u, v = digest.digest_size, digest.block_size
    bmp = password.encode("utf-16-be") + b"\x00\x00" if password else b""

    def filled(value: bytes) -> bytes:
        """`value` repeated up to the next multiple of v bytes (none when empty)."""
        if not value:
            return b""
        size = v * ((len(value) + v - 1) // v)
        return (value * (size // len(value) + 1))[:size]

    block = filled(salt) + filled(bmp)
    out = b""
    while len(out) < length:
        a = hashlib.new(hash_name, bytes([3]) * v + block).digest()
        for _round in range(iterations - 1):
            a = hashlib.new(hash_name, a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big") + 1
        block = b"".join(
            ((int.from_bytes(block[i : i + v], "big") + b) % (1 << (8 * v))).to_bytes(v, "big")
            for i in range(0, len(block), v)
        )
    return out[:length]


def _mac_verifies(pfx: asn1_pkcs12.Pfx, password: str) -> bool:
    mac = pfx["mac_data"]
    if not mac:
        raise _NotThisKind
    name = mac["mac"]["digest_algorithm"]["algorithm"].native
    iterations = mac["iterations"].native
    if name not in _MAC_HASHES or not 0 < iterations <= _MAX_ITERATIONS:
        raise _NotThisKind
    content = pfx["auth_safe"]["content"].native
    key = pkcs12_kdf(
        name, password, mac["mac_salt"].native, iterations, hashlib.new(name).digest_size
    )
    expected = mac["mac"]["digest"].native
    return hmac.compare_digest(hmac.new(key, content, name).digest(), expected)


def _decrypt(algorithm: algos.EncryptionAlgorithm, ciphertext: bytes, secret: bytes) -> bytes:
    if algorithm["algorithm"].native != "pbes2" or algorithm.kdf != "pbkdf2":
        raise _NotThisKind
    iterations = algorithm.kdf_iterations
    if algorithm.kdf_hmac not in _HASHES or not 0 < iterations <= _MAX_ITERATIONS:
        raise _NotThisKind
    key = PBKDF2HMAC(
        _HASHES[algorithm.kdf_hmac](), algorithm.key_length, algorithm.kdf_salt, iterations
    ).derive(secret)
    cipher_name = algorithm.encryption_cipher
    if cipher_name == "aes":
        cipher: algorithms.AES | TripleDES = algorithms.AES(key)
    elif cipher_name == "tripledes":
        cipher = TripleDES(key)
    else:
        raise _NotThisKind
    decryptor = Cipher(cipher, modes.CBC(algorithm.encryption_iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(cipher.block_size).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _read_bags(pfx: asn1_pkcs12.Pfx, secret: bytes) -> pkcs12.PKCS12KeyAndCertificates:
    keys, certificates = [], []
    for info in pfx.authenticated_safe:
        kind = info["content_type"].native
        if kind == "encrypted_data":
            content = info["content"]["encrypted_content_info"]
            plain = _decrypt(
                content["content_encryption_algorithm"], content["encrypted_content"].native, secret
            )
            bags = asn1_pkcs12.SafeContents.load(plain)
        elif kind == "data":
            bags = asn1_pkcs12.SafeContents.load(info["content"].native)
        else:
            raise _NotThisKind
        for bag in bags:
            name = next(
                (a["values"][0].native for a in bag["bag_attributes"]
                 if a["type"].native == "friendly_name"), None,
            )  # fmt: skip
            value = bag["bag_value"]
            if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                der = _decrypt(
                    value["encryption_algorithm"], value["encrypted_data"].native, secret
                )
                keys.append(serialization.load_der_private_key(der, password=None))
            elif bag["bag_id"].native == "cert_bag" and value["cert_id"].native == "x509":
                certificate = x509.load_der_x509_certificate(value["cert_value"].parsed.dump())
                certificates.append(
                    pkcs12.PKCS12Certificate(certificate, name.encode() if name else None)
                )
    if len(keys) != 1:
        raise _NotThisKind
    key = keys[0]
    own = [c for c in certificates if key.public_key() == c.certificate.public_key()]
    main = own[0] if own else None
    return pkcs12.PKCS12KeyAndCertificates(
        key,
        main,
        [c for c in certificates if c is not main],
    )
