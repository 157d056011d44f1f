"""Envelopes: round trips, framing, tampering, truncation, hostile input."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scelle.core import certs, envelope, recipients
from scelle.core.envelope import (
    DECRYPTION_FAILED,
    DecryptionKey,
    EnvelopeKeys,
    decrypt_stream,
    encrypt_stream,
    open_envelope_to_file,
)
from scelle.core.errors import DecryptionError, EncryptionError, UnsupportedKeyError
from tests.conftest import NOW, Identity


def seal(data: bytes, *identities: Identity, chunk_size: int = envelope.CHUNK_SIZE) -> bytes:
    sink = io.BytesIO()
    keys = EnvelopeKeys.for_recipients([identity.certificate for identity in identities])
    assert encrypt_stream(io.BytesIO(data), sink, keys, chunk_size=chunk_size) == len(data)
    return sink.getvalue()


def unseal(data: bytes, *keys: DecryptionKey) -> bytes:
    sink = io.BytesIO()
    assert decrypt_stream(io.BytesIO(data), sink, keys) == len(sink.getvalue())
    return sink.getvalue()


@pytest.mark.parametrize(
    "size",
    [0, 1, 15, 16, 17, envelope.CHUNK_SIZE - 1, envelope.CHUNK_SIZE, 3 * envelope.CHUNK_SIZE + 7],
)
def test_round_trip_sizes(alice: Identity, size: int) -> None:
    data = os.urandom(size)
    assert unseal(seal(data, alice), alice.decryption_key) == data


def test_every_recipient_opens_and_others_do_not(identities: dict[str, Identity]) -> None:
    alice, bob, carol = identities["alice"], identities["bob"], identities["carol"]
    data = b"offre technique et financiere" * 1000
    sealed = seal(data, alice, bob)
    assert unseal(sealed, alice.decryption_key) == data
    assert unseal(sealed, bob.decryption_key) == data
    with pytest.raises(DecryptionError, match=DECRYPTION_FAILED):
        unseal(sealed, carol.decryption_key)
    # Several keys: the one that matches is used, wherever it stands.
    assert unseal(sealed, carol.decryption_key, bob.decryption_key) == data


def test_key_without_certificate_tries_every_recipient(alice: Identity, bob: Identity) -> None:
    sealed = seal(b"sans certificat", alice, bob)
    assert unseal(sealed, DecryptionKey(bob.key)) == b"sans certificat"


def test_structure_is_what_design_says(alice: Identity, bob: Identity) -> None:
    """AuthEnvelopedData, GCM with a 12-byte nonce and 16-byte tag, OAEP-SHA256, id-data."""
    sealed = seal(os.urandom(3 * 1024 + 5), alice, bob, chunk_size=1024)
    parsed = cms.ContentInfo.load(sealed)
    assert parsed["content_type"].native == "authenticated_enveloped_data"
    content = parsed["content"]
    assert content["version"].native == "v0"
    assert len(content["recipient_infos"]) == 2
    for info in content["recipient_infos"]:
        ktri = info.chosen
        assert ktri["rid"].name == "issuer_and_serial_number"
        algorithm = ktri["key_encryption_algorithm"]
        assert algorithm["algorithm"].native == "rsaes_oaep"
        assert algorithm["parameters"]["hash_algorithm"]["algorithm"].native == "sha256"
        mgf = algorithm["parameters"]["mask_gen_algorithm"]
        assert mgf["parameters"]["algorithm"].native == "sha256"
    eci = content["auth_encrypted_content_info"]
    assert eci["content_type"].native == "data"
    assert eci["content_encryption_algorithm"]["algorithm"].dotted == "2.16.840.1.101.3.4.1.46"
    assert len(content["mac"].native) == 16
    assert "auth_attrs" not in content.native or content["auth_attrs"].native is None
    # The content is an indefinite constructed OCTET STRING of chunk-sized segments.
    marker = bytes.fromhex("a080") + bytes.fromhex("04820400")
    assert marker in sealed
    assert len(eci["encrypted_content"].native) == 3 * 1024 + 5


def test_same_keys_give_the_same_ciphertext(alice: Identity) -> None:
    """Resuming an upload re-creates the envelope from its kept keys (DESIGN.md)."""
    keys = EnvelopeKeys.for_recipients([alice.certificate])
    data = os.urandom(5000)
    first, second = io.BytesIO(), io.BytesIO()
    encrypt_stream(io.BytesIO(data), first, keys, chunk_size=1024)
    encrypt_stream(io.BytesIO(data), second, keys, chunk_size=1024)
    assert first.getvalue() == second.getvalue()
    assert repr(keys).count(keys.content_key.hex()) == 0


def test_tampering_any_byte_fails_and_leaves_nothing(alice: Identity, tmp_path: Path) -> None:
    """Every single byte of an envelope flipped: the same error, no output file."""
    data = b"Prix global et forfaitaire: 1 234 567,89 EUR HT. " * 3
    sealed = seal(data, alice, chunk_size=64)
    key = alice.decryption_key
    target = tmp_path / "opened.bin"
    for index in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError) as caught:
            open_envelope_to_file(io.BytesIO(bytes(tampered)), target, [key])
        assert str(caught.value) == DECRYPTION_FAILED, index
        assert list(tmp_path.iterdir()) == [], index


def test_truncation_and_trailing_bytes_fail(alice: Identity) -> None:
    sealed = seal(os.urandom(300), alice, chunk_size=100)
    for end in range(len(sealed)):
        with pytest.raises(DecryptionError):
            unseal(sealed[:end], alice.decryption_key)
    with pytest.raises(DecryptionError):
        unseal(sealed + b"\x00", alice.decryption_key)


def test_wrong_key_and_tampering_read_the_same(alice: Identity, bob: Identity) -> None:
    sealed = seal(b"x" * 100, alice)
    tampered = bytearray(sealed)
    tampered[-30] ^= 0x80
    with pytest.raises(DecryptionError) as wrong_key:
        unseal(sealed, bob.decryption_key)
    with pytest.raises(DecryptionError) as damaged:
        unseal(bytes(tampered), alice.decryption_key)
    assert str(wrong_key.value) == str(damaged.value) == DECRYPTION_FAILED


def test_failed_file_output_is_removed_and_success_appears(alice: Identity, tmp_path: Path) -> None:
    sealed = seal(b"contenu", alice)
    target = tmp_path / "out.bin"
    assert open_envelope_to_file(io.BytesIO(sealed), target, [alice.decryption_key]) == 7
    assert target.read_bytes() == b"contenu"
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_pem_armoured_envelope(alice: Identity) -> None:
    import base64

    sealed = seal(b"armoured", alice)
    body = base64.encodebytes(sealed)
    pem = b"-----BEGIN CMS-----\n" + body + b"-----END CMS-----\n"
    assert unseal(pem, alice.decryption_key) == b"armoured"


def test_recipients_must_be_rsa_2048_or_more(tmp_path: Path) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_cert = certs.self_signed_certificate(small, "small", days=10, now=NOW)
    with pytest.raises(UnsupportedKeyError, match="1024 bits"):
        EnvelopeKeys.for_recipients([small_cert])
    ec_key = ec.generate_private_key(ec.SECP256R1())
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(ec_key, hashes.SHA256())
    )
    with pytest.raises(UnsupportedKeyError, match=r"an EC key \(secp256r1\)"):
        EnvelopeKeys.for_recipients([ec_cert])
    with pytest.raises(EncryptionError):
        EnvelopeKeys.for_recipients([])


def test_size_limit_is_gcm_s(alice: Identity, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "MAX_CONTENT_BYTES", 1000)
    with pytest.raises(EncryptionError, match="64 GiB"):
        seal(os.urandom(1001), alice, chunk_size=100)


def test_write_errors_surface(alice: Identity) -> None:
    class FullDisk(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError(28, "No space left on device")
            return len(data)  # type: ignore[arg-type]

    keys = EnvelopeKeys.for_recipients([alice.certificate])
    with pytest.raises(OSError, match="No space left"):
        encrypt_stream(io.BytesIO(os.urandom(10_000)), FullDisk(), keys, chunk_size=100)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048))
def test_any_bytes_give_a_result_or_a_scelle_error(alice: Identity, data: bytes) -> None:
    with contextlib.suppress(DecryptionError):
        unseal(data, alice.decryption_key)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_mutated_envelopes_give_a_scelle_error(alice: Identity, position: int, value: int) -> None:
    sealed = bytearray(seal(b"mutation", alice, chunk_size=4))
    index = position % len(sealed)
    if sealed[index] == value:
        return
    sealed[index] = value
    with pytest.raises(DecryptionError):
        unseal(bytes(sealed), alice.decryption_key)


@pytest.mark.parametrize(
    "size", [0, 1, 127, 128, 255, 256, 65535, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20]
)
def test_envelope_size_is_known_in_advance(alice: Identity, bob: Identity, size: int) -> None:
    keys = envelope.EnvelopeKeys.for_recipients([alice.certificate, bob.certificate])
    sink = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(b"\x5a" * size), sink, keys)
    assert envelope.envelope_size(keys, size) == len(sink.getvalue())
    small = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(b"\x5a" * size), small, keys, chunk_size=1000)
    assert envelope.envelope_size(keys, size, chunk_size=1000) == len(small.getvalue())


def test_read_recipients_names_each_certificate(identities: dict[str, Identity]) -> None:
    alice, bob, carol = identities["alice"], identities["bob"], identities["carol"]
    found = recipients.read_recipients(io.BytesIO(seal(b"x" * 100, alice, bob)))
    assert len(found) == 2
    # Each recipient info names exactly one of the two (a SET OF: any order).
    assert sorted([r.matches(alice.certificate), r.matches(bob.certificate)] for r in found) == [
        [False, True],
        [True, False],
    ]
    assert not any(r.matches(carol.certificate) for r in found)
    assert {"alice" in r.description for r in found} == {True, False}


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=1024))
def test_read_recipients_of_any_bytes_gives_a_scelle_error(data: bytes) -> None:
    with contextlib.suppress(DecryptionError):
        recipients.read_recipients(io.BytesIO(data))


def test_deposit_mode_opens_ours(alice: Identity) -> None:
    sink = io.BytesIO()
    decrypt_stream(io.BytesIO(seal(b"pli", alice)), sink, [alice.decryption_key], deposit=True)
    assert sink.getvalue() == b"pli"
