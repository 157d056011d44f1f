"""PKCS#12: our export read back, pyca's vectors, every refusal one clear error."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import cryptography_vectors
import pytest
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from scelle.core import certs
from scelle.core.errors import (
    PKCS12Error,
    ScelleError,
    UnsupportedKeyError,
    WeakPasswordError,
    WrongPasswordError,
)
from scelle.core.pkcs12 import KeyBundle, export_pkcs12, import_pkcs12
from tests.conftest import NOW, PFX_PASSWORD, Identity

VECTORS = Path(cryptography_vectors.__file__).parent / "pkcs12"


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def algorithms_of(data: bytes) -> list[str]:
    """The encryption algorithms of the bags and the MAC's digest, as asn1crypto names them."""
    pfx = asn1_pkcs12.Pfx.load(data)
    found = [pfx["mac_data"]["mac"]["digest_algorithm"]["algorithm"].native]
    for content_info in pfx.authenticated_safe:
        if content_info["content_type"].native == "encrypted_data":
            algorithm = content_info["content"]["encrypted_content_info"]
            found.append(algorithm["content_encryption_algorithm"].encryption_cipher)
        else:
            for bag in asn1_pkcs12.SafeContents.load(content_info["content"].native):
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    found.append(bag["bag_value"]["encryption_algorithm"].encryption_cipher)
    return found


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [(False, ["sha256", "aes", "aes"]), (True, ["sha1", "tripledes", "tripledes"])],
)
def test_export_profiles_round_trip(alice: Identity, legacy: bool, expected: list[str]) -> None:
    bundle = KeyBundle(alice.key, alice.certificate, friendly_name="Bi-clé de la mairie")
    data = export_pkcs12(bundle, PFX_PASSWORD, legacy=legacy)
    assert algorithms_of(data) == expected
    back = import_pkcs12(data, PFX_PASSWORD)
    assert back.certificate == alice.certificate
    assert back.private_key.private_numbers() == alice.key.private_numbers()
    assert back.friendly_name == "Bi-clé de la mairie"


def test_export_keeps_the_chain(alice: Identity, bob: Identity) -> None:
    data = export_pkcs12(KeyBundle(alice.key, alice.certificate, (bob.certificate,)), PFX_PASSWORD)
    assert import_pkcs12(data, PFX_PASSWORD).chain == (bob.certificate,)


def test_default_friendly_name_is_the_cn(alice: Identity) -> None:
    data = export_pkcs12(KeyBundle(alice.key, alice.certificate), PFX_PASSWORD)
    assert import_pkcs12(data, PFX_PASSWORD).friendly_name == "alice"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "too short"),
        ("Court-1!", "too short"),
        ("aaaaaaaaaaaaaaaa", "repeats"),
        ("azertyazerty123456", "common"),
        ("alllowercaseletters", "three kinds"),
    ],
)
def test_weak_passwords_are_refused(alice: Identity, password: str, reason: str) -> None:
    with pytest.raises(WeakPasswordError, match=reason):
        export_pkcs12(KeyBundle(alice.key, alice.certificate), password)


def test_wrong_password_and_damaged_file_are_told_apart(alice: Identity) -> None:
    data = export_pkcs12(KeyBundle(alice.key, alice.certificate), PFX_PASSWORD)
    with pytest.raises(WrongPasswordError, match=r"wrong password for CLE\.pfx"):
        import_pkcs12(data, "Pas-le-bon-2026!", source="CLE.pfx")
    with pytest.raises(PKCS12Error, match="not a PKCS#12"):
        import_pkcs12(data[: len(data) // 2], PFX_PASSWORD, source="CLE.pfx")
    with pytest.raises(PKCS12Error, match="not a PKCS#12"):
        import_pkcs12(b"-----BEGIN CERTIFICATE-----", PFX_PASSWORD, source="CLE.pfx")


def test_unicode_password(alice: Identity) -> None:
    password = "Clé-d'été-Ωμέγα-2026"
    data = export_pkcs12(KeyBundle(alice.key, alice.certificate), password)
    assert import_pkcs12(data, password).certificate == alice.certificate
    with pytest.raises(WrongPasswordError):
        import_pkcs12(data, "Cle-d'ete-Omega-2026")


def _pfx_with(
    key: crypto_pkcs12.PKCS12PrivateKeyTypes | None,
    certificate: x509.Certificate | None,
    password: bytes = b"pw",
) -> bytes:
    return crypto_pkcs12.serialize_key_and_certificates(
        b"x", key, certificate, None, serialization.BestAvailableEncryption(password)
    )


def test_small_rsa_and_missing_certificate_are_refused(alice: Identity) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_cert = certs.self_signed_certificate(small, "small", days=10, now=NOW)
    with pytest.raises(UnsupportedKeyError, match="1024 bits"):
        import_pkcs12(_pfx_with(small, small_cert), "pw")
    with pytest.raises(PKCS12Error, match="not its certificate"):
        import_pkcs12(_pfx_with(alice.key, None), "pw")
    with pytest.raises(PKCS12Error, match="no private key"):
        import_pkcs12(_pfx_with(None, alice.certificate), "pw")


def test_ec_key_is_refused_naming_its_type() -> None:
    key = ec.generate_private_key(ec.SECP384R1())

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=5))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    with pytest.raises(UnsupportedKeyError, match=r"EC key \(secp384r1\)"):
        import_pkcs12(_pfx_with(key, certificate), "pw", source="ec.pfx")


# --- pyca/cryptography's vectors (tests/vectors/README.md) -------------------------


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("cert-key-aes256cbc.p12", "cryptography"),  # PBES2 AES-256-CBC
        ("cert-rc2-key-3des.p12", "cryptography"),  # RC2-40 certificates, 3DES key
        ("cert-none-key-none.p12", "cryptography"),  # nothing encrypted
        ("no-password.p12", ""),  # no password at all
        ("name-unicode-pwd.p12", "password"),  # a Unicode friendly name
        ("name-all-no-pwd.p12", ""),
    ],
)
def test_vectors_are_read_through_to_the_key_type(name: str, password: str) -> None:
    """pyca's vectors hold EC keys: reaching the key-type refusal proves the file was decrypted."""
    with pytest.raises(UnsupportedKeyError, match=r"holds an EC key \(secp256r1\)"):
        import_pkcs12(vector(name), password, source=name)


@pytest.mark.parametrize(
    "name", ["cert-aes256cbc-no-key.p12", "java-truststore.p12", "no-cert-name-all-no-pwd.p12"]
)
def test_vectors_without_a_private_key(name: str) -> None:
    password = "cryptography" if name.startswith("cert-") else ""
    with pytest.raises(PKCS12Error, match="no private key"):
        import_pkcs12(vector(name), password, source=name)


@pytest.mark.parametrize("name", ["name-1-pwd.p12", "no-name-pwd.p12"])
def test_vectors_with_a_wrong_password(name: str) -> None:
    with pytest.raises(WrongPasswordError):
        import_pkcs12(vector(name), "cryptography", source=name)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4096), password=st.text(max_size=20))
def test_any_bytes_give_a_result_or_a_scelle_error(data: bytes, password: str) -> None:
    with contextlib.suppress(ScelleError):
        import_pkcs12(data, password)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_mutated_pfx_give_a_scelle_error(position: int, value: int) -> None:
    data = bytearray(vector("cert-key-aes256cbc.p12"))
    data[position % len(data)] = value
    with contextlib.suppress(ScelleError):
        import_pkcs12(bytes(data), "cryptography")
