"""Envelopes both ways with `openssl cms`, and pyca's PKCS#7 vectors."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import serialization

from scelle.core import certs
from scelle.core.envelope import DecryptionKey, EnvelopeKeys, decrypt_stream, encrypt_stream
from scelle.core.errors import DecryptionError
from tests.conftest import Identity, require_tool

pytestmark = pytest.mark.interop

OAEP_SHA256 = [
    "-keyopt", "rsa_padding_mode:oaep",
    "-keyopt", "rsa_oaep_md:sha256",
    "-keyopt", "rsa_mgf1_md:sha256",
]  # fmt: skip
OAEP_SHA1 = ["-keyopt", "rsa_padding_mode:oaep"]
VECTORS = Path(cryptography_vectors.__file__).parent


def openssl(*args: str, input: bytes | None = None) -> bytes:
    done = subprocess.run(
        [require_tool("openssl"), *args], input=input, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def openssl_encrypt(
    tmp_path: Path, data: bytes, recipients: list[Identity], cipher: str, keyopts: list[str],
    *extra: str,
) -> bytes:  # fmt: skip
    source = tmp_path / "plain.bin"
    source.write_bytes(data)
    target = tmp_path / "sealed.der"
    recipient_args: list[str] = []
    for identity in recipients:
        recipient_args += ["-recip", str(identity.cert_pem), *keyopts]
    openssl(
        "cms", "-encrypt", "-binary", f"-{cipher}", "-outform", "DER",
        "-in", str(source), "-out", str(target), *extra, *recipient_args,
    )  # fmt: skip
    return target.read_bytes()


def scelle_decrypt(data: bytes, *keys: DecryptionKey) -> bytes:
    sink = io.BytesIO()
    decrypt_stream(io.BytesIO(data), sink, keys)
    return sink.getvalue()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "definite"])
@pytest.mark.parametrize("keyopts", [OAEP_SHA256, OAEP_SHA1], ids=["oaep-sha256", "oaep-sha1"])
@pytest.mark.parametrize("size", [1, 5000, 3 * 1024 * 1024 + 11])
def test_we_open_openssl_auth_enveloped_data(
    tmp_path: Path, alice: Identity, bob: Identity, stream: bool, keyopts: list[str], size: int
) -> None:
    data = os.urandom(size)
    extra = ["-stream"] if stream else []
    sealed = openssl_encrypt(tmp_path, data, [alice, bob], "aes-256-gcm", keyopts, *extra)
    assert scelle_decrypt(sealed, alice.decryption_key) == data
    assert scelle_decrypt(sealed, bob.decryption_key) == data


@pytest.mark.parametrize(
    ("cipher", "keyopts"),
    [
        ("aes-256-cbc", []),  # EnvelopedData, PKCS#1 v1.5: openssl's defaults
        ("aes-128-cbc", OAEP_SHA256),
        ("aes-192-cbc", OAEP_SHA1),
        ("des3", []),
        ("aes-128-gcm", OAEP_SHA256),  # AuthEnvelopedData with a 128-bit key
    ],
)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "definite"])
def test_we_open_other_openssl_envelopes(
    tmp_path: Path, alice: Identity, cipher: str, keyopts: list[str], stream: bool
) -> None:
    data = os.urandom(70_001)
    extra = ["-stream"] if stream else []
    sealed = openssl_encrypt(tmp_path, data, [alice], cipher, keyopts, *extra)
    assert scelle_decrypt(sealed, alice.decryption_key) == data
    # Never accepted as a deposit: bids are only ever AES-256-GCM with RSA-OAEP.
    with pytest.raises(DecryptionError):
        decrypt_stream(io.BytesIO(sealed), io.BytesIO(), [alice.decryption_key], deposit=True)


def test_we_open_openssl_pem_output(tmp_path: Path, alice: Identity) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(b"armure PEM")
    pem = openssl(
        "cms", "-encrypt", "-binary", "-aes-256-gcm", "-outform", "PEM", "-in", str(source),
        "-recip", str(alice.cert_pem), *OAEP_SHA256,
    )  # fmt: skip
    assert pem.startswith(b"-----BEGIN CMS-----")
    assert scelle_decrypt(pem, alice.decryption_key) == b"armure PEM"


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 2 * 1024 * 1024 + 3])
def test_openssl_opens_ours(tmp_path: Path, alice: Identity, bob: Identity, size: int) -> None:
    data = os.urandom(size)
    sealed = io.BytesIO()
    keys = EnvelopeKeys.for_recipients([alice.certificate, bob.certificate])
    encrypt_stream(io.BytesIO(data), sealed, keys)
    envelope_file = tmp_path / "sealed.p7m"
    envelope_file.write_bytes(sealed.getvalue())
    for identity in (alice, bob):
        opened = openssl(
            "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(envelope_file),
            "-inkey", str(identity.key_pem), "-recip", str(identity.cert_pem),
        )  # fmt: skip
        assert opened == data
    # openssl's own view of the structure: what DESIGN.md promises.
    printed = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", str(envelope_file))
    text = printed.decode()
    assert "id-smime-ct-authEnvelopedData" in text
    assert "aes-256-gcm" in text
    assert text.count("rsaesOaep") == 2
    assert re.search(r"\bauthAttrs:\s+<ABSENT>", text)


def test_openssl_rejects_our_tampered_envelope(tmp_path: Path, alice: Identity) -> None:
    sealed = io.BytesIO()
    encrypt_stream(
        io.BytesIO(b"z" * 1000), sealed, EnvelopeKeys.for_recipients([alice.certificate])
    )
    tampered = bytearray(sealed.getvalue())
    tampered[-40] ^= 1  # inside the ciphertext
    envelope_file = tmp_path / "bad.p7m"
    envelope_file.write_bytes(bytes(tampered))
    done = subprocess.run(
        [require_tool("openssl"), "cms", "-decrypt", "-binary", "-inform", "DER",
         "-in", str(envelope_file), "-inkey", str(alice.key_pem)],
        capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0


# --- pyca/cryptography's PKCS#7 vectors (tests/vectors/README.md) -------------------


def vector_key() -> DecryptionKey:
    ca = VECTORS / "x509" / "custom" / "ca"
    key = serialization.load_pem_private_key((ca / "rsa_key.pem").read_bytes(), None)
    certificate = certs.load_certificate((ca / "rsa_ca.pem").read_bytes())
    return DecryptionKey(key, certificate)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "plaintext"),
    [
        ("enveloped-rsa-oaep.pem", b"Hello, world!"),  # AES-128-CBC, OAEP SHA-1
        ("enveloped-triple-des.pem", b"Hello, World!\r\n"),  # 3DES, PKCS#1 v1.5
    ],
)
def test_pyca_enveloped_vectors(name: str, plaintext: bytes) -> None:
    assert scelle_decrypt((VECTORS / "pkcs7" / name).read_bytes(), vector_key()) == plaintext


@pytest.mark.parametrize("name", ["enveloped-no-content.der", "enveloped.pem", "isrg.pem"])
def test_pyca_vectors_we_cannot_open_fail_cleanly(name: str) -> None:
    with pytest.raises(DecryptionError):
        scelle_decrypt((VECTORS / "pkcs7" / name).read_bytes(), vector_key())


def test_deposit_mode_refuses_pkcs1_v15_key_transport(tmp_path: Path, alice: Identity) -> None:
    # AES-256-GCM content, but the content key under PKCS#1 v1.5 (openssl's default).
    sealed = openssl_encrypt(tmp_path, b"pli", [alice], "aes-256-gcm", [])
    assert scelle_decrypt(sealed, alice.decryption_key) == b"pli"
    with pytest.raises(DecryptionError):
        decrypt_stream(io.BytesIO(sealed), io.BytesIO(), [alice.decryption_key], deposit=True)
