"""Key pairs on a PKCS#11 token, against SoftHSM2 (Debian's `softhsm2`, its tokens in a
temporary folder through SOFTHSM2_CONF): made on the token and never readable off it;
our envelopes and OpenSSL's (OAEP-SHA1 and OAEP-SHA256) open through it; the software OAEP
decoding the token falls back on is RFC 8017's, and says nothing of why it fails."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from scelle.core import envelope
from scelle.core.errors import (
    DecryptionError,
    InvalidInputError,
    KeyNotFoundError,
    UnsupportedKeyError,
)
from tests.conftest import NOW, SoftHSM, require_tool

PIN = "123456"
URI = "pkcs11:token=Carte%20agent"


@pytest.fixture(scope="module")
def made(softhsm: SoftHSM) -> x509.Certificate:
    """A key pair made on the token (its session closed again), and a certificate for it
    from a test CA."""
    from scelle.keystore import token

    with token.session(softhsm.module, token.TokenURI.parse(URI), PIN, write=True) as live:
        return _certificate(token.generate(live, "BICLE-CARTE", bits=2048).public_key())


@pytest.fixture
def token_key(softhsm: SoftHSM, made: x509.Certificate) -> Iterator[tuple[Any, x509.Certificate]]:
    """The key pair, found again on the token in a session of this test's."""
    from scelle.keystore import token

    with token.session(softhsm.module, token.TokenURI.parse(URI), PIN) as live:
        yield token.find(live, "BICLE-CARTE"), made


def _certificate(public: rsa.RSAPublicKey) -> x509.Certificate:
    ca = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BICLE-CARTE")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AC de test")]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=700))
        .add_extension(
            x509.KeyUsage(False, False, True, False, False, False, False, False, False), True
        )
        .sign(ca, hashes.SHA256())
    )


def test_the_private_key_is_made_on_the_token_and_cannot_leave_it(token_key) -> None:
    import pkcs11
    from pkcs11 import Attribute

    key = token_key[0]
    assert key.key_size == 2048
    private = key._private
    assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        private[Attribute.PRIVATE_EXPONENT]
    with pytest.raises(UnsupportedKeyError, match="cannot leave it"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def test_a_scelle_envelope_opens_through_the_token(token_key) -> None:
    key, certificate = token_key
    plaintext = os.urandom(3 * envelope.CHUNK_SIZE + 17)
    sealed = io.BytesIO()
    envelope.encrypt_stream(
        io.BytesIO(plaintext), sealed, envelope.EnvelopeKeys.for_recipients([certificate])
    )
    opened = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO(sealed.getvalue()), opened, [envelope.DecryptionKey(key, certificate)]
    )
    assert opened.getvalue() == plaintext


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_openssl_envelopes_open_through_the_token(token_key, tmp_path: Path, digest: str) -> None:
    openssl = require_tool("openssl")
    key, certificate = token_key
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "offre.txt").write_bytes(b"Offre de test " * 1000)
    subprocess.run(
        [openssl, "cms", "-encrypt", "-binary", "-aes256", "-outform", "DER",
         "-in", str(tmp_path / "offre.txt"), "-out", str(tmp_path / "offre.p7m"),
         "-recip", str(tmp_path / "cert.pem"), "-keyopt", "rsa_padding_mode:oaep",
         "-keyopt", f"rsa_oaep_md:{digest}", "-keyopt", f"rsa_mgf1_md:{digest}"],
        check=True, capture_output=True,
    )  # fmt: skip
    opened = io.BytesIO()
    with (tmp_path / "offre.p7m").open("rb") as source:
        envelope.decrypt_stream(source, opened, [envelope.DecryptionKey(key, certificate)])
    assert opened.getvalue() == (tmp_path / "offre.txt").read_bytes()


def test_another_key_opens_nothing_and_says_only_that(token_key, alice) -> None:
    key = token_key[0]
    sealed = io.BytesIO()
    envelope.encrypt_stream(
        io.BytesIO(b"secret"), sealed, envelope.EnvelopeKeys.for_recipients([alice.certificate])
    )
    with pytest.raises(DecryptionError) as raised:
        envelope.decrypt_stream(
            io.BytesIO(sealed.getvalue()), io.BytesIO(), [envelope.DecryptionKey(key, None)]
        )
    assert str(raised.value) == str(DecryptionError(envelope.DECRYPTION_FAILED))


def test_a_wrong_pin_and_an_unknown_token_are_said(softhsm: SoftHSM, made) -> None:
    from scelle.keystore import token

    uri = token.TokenURI.parse(URI)
    with (
        pytest.raises(InvalidInputError, match="wrong PIN"),
        token.session(softhsm.module, uri, "000000"),
    ):
        pass
    with (
        pytest.raises(KeyNotFoundError, match="no single token"),
        token.session(softhsm.module, token.TokenURI.parse("pkcs11:token=Absente"), PIN),
    ):
        pass
    with pytest.raises(InvalidInputError, match="cannot load the PKCS#11 module"):
        token._library("/nulle/part/libpkcs11.so")


@pytest.mark.parametrize(
    ("text", "token_label", "label", "identifier"),
    [
        ("pkcs11:token=Carte%20agent;object=BICLE", "Carte agent", "BICLE", None),
        ("pkcs11:object=Cl%C3%A9;id=%01%02", None, "Clé", b"\x01\x02"),
        ("PKCS11:token=X?pin-source=file:/tmp/pin", "X", None, None),
    ],
)
def test_uris_as_rfc_7512_writes_them(
    text: str, token_label: str | None, label: str | None, identifier: bytes | None
) -> None:
    from scelle.keystore.token import TokenURI

    uri = TokenURI.parse(text)
    assert (uri.token, uri.object, uri.id) == (token_label, label, identifier)
    assert TokenURI.parse(str(uri)) == uri


@pytest.mark.parametrize("text", ["https://carte", "pkcs11:couleur=bleu", "pkcs11:token"])
def test_what_is_not_a_pkcs11_uri_is_refused(text: str) -> None:
    from scelle.keystore.token import TokenURI

    with pytest.raises(InvalidInputError):
        TokenURI.parse(text)


@pytest.fixture(scope="module")
def software_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _raw(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    numbers = key.private_numbers()
    value = pow(int.from_bytes(ciphertext, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(256, "big")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=190), st.sampled_from(["sha1", "sha256"]), st.binary(max_size=8))
def test_the_software_oaep_decoding_is_rfc_8017s(
    software_key: rsa.RSAPrivateKey, message: bytes, digest: str, label: bytes
) -> None:
    from scelle.keystore.token import oaep_decode

    algorithm = hashes.SHA1() if digest == "sha1" else hashes.SHA256()  # noqa: S303 - OAEP's
    oaep = padding.OAEP(padding.MGF1(algorithm), algorithm, label or None)
    if len(message) > 256 - 2 * algorithm.digest_size - 2:
        return
    raw = _raw(software_key, software_key.public_key().encrypt(message, oaep))
    assert oaep_decode(raw, 256, digest, label) == message
    # Any block that is not this encoding fails the same way, whichever check it fails.
    for position in (0, 1, 40, 100, 255):
        altered = bytearray(raw)
        altered[position] ^= 0x40
        with pytest.raises(ValueError, match=r"^decryption failed$"):
            oaep_decode(bytes(altered), 256, digest, label)
    with pytest.raises(ValueError, match=r"^decryption failed$"):
        oaep_decode(raw, 256, digest, label + b"x")


def test_the_token_signs_its_request_and_keeps_its_certificates(softhsm: SoftHSM) -> None:
    """As *Ajouter un bi-clé* will: a key pair made on the token, its PKCS#10 request signed
    there, the certificate the CA issues for it stored beside it with the CA's own."""
    from scelle.core import authority
    from scelle.keystore import token

    ca = authority.create_authority("Plateforme de test — autorité", now=NOW)
    with token.session(softhsm.module, token.TokenURI.parse(URI), PIN, write=True) as live:
        key = token.generate(live, "BICLE-SIGNE", bits=2048)
        request = authority.load_csr(authority.build_csr(key, "BICLE-SIGNE"))  # verifies it
        issued = authority.issue_encryption_certificate(
            ca, request, organisation="Ville de Rouen", service="Marchés", days=700, now=NOW
        )
        token.store_certificates(live, key, issued, [ca.certificate])
        token.store_certificates(live, key, issued, [ca.certificate])  # once, not twice
        on_token = token.certificates_on(live)
        with pytest.raises(InvalidInputError, match="does not belong"):
            token.store_certificates(live, key, ca.certificate)
    assert on_token.count(issued) == 1 and on_token.count(ca.certificate) == 1
