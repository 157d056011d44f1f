"""Proof kits: a company's password opens its stored envelope, as the receipt names it,
without any buyer key; anything else is refused and nothing is extracted."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from scelle.assistant.proof import check_envelope
from scelle.core import archive, authority, certs, envelope, proofkit
from scelle.core.errors import (
    DecryptionError,
    InvalidInputError,
    ReceiptError,
    WrongPasswordError,
)
from scelle.core.receipt import Receipt, ReceivedEnvelope, sign_receipt
from scelle.core.sealing import KdfParameters
from tests.conftest import NOW, make_identity

PASSWORD = "Dossier-de-preuve 2026 !"
FAST_KDF = KdfParameters(salt=b"s" * 16, memory_kib=1024, iterations=1)


def _seal(folder: Path, kind: str, recipient: Path, out: Path) -> tuple[bytes, ReceivedEnvelope]:
    plan = archive.plan_archive(folder, tender="AO-2026-001", envelope=kind, bidder="BTP")
    plain = io.BytesIO()
    archive.write_archive(plan, plain)
    keys = envelope.EnvelopeKeys.for_recipients([certs.load_certificate(recipient.read_bytes())])
    sealed = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(plain.getvalue()), sealed, keys)
    out.write_bytes(sealed.getvalue())
    digest = hashlib.sha256(sealed.getvalue()).hexdigest()
    return keys.content_key, ReceivedEnvelope(kind, len(sealed.getvalue()), digest)


@dataclass(frozen=True)
class Sealed:
    here: Path
    kit: bytes
    keys: dict[str, bytes]
    ca: x509.Certificate


@pytest.fixture(scope="module")
def deposit(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    """A deposit of two envelopes, sealed to a buyer's key nobody here uses again."""
    here = tmp_path_factory.mktemp("deposit")
    buyer = make_identity(here / "buyer", "Acheteur")
    (here / "offre" / "annexes").mkdir(parents=True)
    (here / "offre" / "memoire.txt").write_bytes(b"notre offre " * 50_000)
    (here / "offre" / "annexes" / "prix.csv").write_bytes(b"poste;prix\n1;100\n")
    (here / "candidature").mkdir()
    (here / "candidature" / "DC1.pdf").write_bytes(b"%PDF candidature")
    keys, said = {}, []
    for kind in ("candidature", "offre"):
        keys[kind], item = _seal(here / kind, kind, buyer.cert_pem, here / f"{kind}.p7m")
        said.append(item)
    ca = authority.create_authority("Scellé — autorité", now=NOW)
    signer = authority.create_signing_identity(ca, "Scellé — accusés", now=NOW)
    receipt = Receipt(
        platform="Scellé", tender="AO-2026-001", bidder="BTP",
        deposit="0d4f6c1e-5a1b-4f7e-9d38-3c1e2b7a9f10",
        received_at=NOW + dt.timedelta(hours=2), late=False, envelopes=tuple(said),
    )  # fmt: skip
    document = sign_receipt(receipt, signer, [ca.certificate])
    kit = proofkit.make_kit(document, keys, PASSWORD, kdf=FAST_KDF)
    return Sealed(here, kit, keys, ca.certificate)


def test_the_kit_opens_the_envelope_the_receipt_names_without_a_buyer_key(
    deposit: Sealed, tmp_path: Path
) -> None:
    here, kit = deposit.here, proofkit.read_kit(deposit.kit)
    raw = json.loads(deposit.kit)
    assert raw["format"] == "scelle-proof-kit/1" and raw["kdf"]["name"] == "argon2id"
    # The content keys are nowhere in the clear.
    for key in deposit.keys.values():
        assert key.hex() not in deposit.kit.decode()
        assert base64.b64encode(key).decode() not in deposit.kit.decode()

    checked = check_envelope(kit, here / "offre.p7m", PASSWORD, trusted_authority=deposit.ca)
    assert checked.envelope.kind == "offre"
    assert [f.name for f in checked.manifest.files] == ["annexes/prix.csv", "memoire.txt"]
    assert checked.receipt.receipt.tender == "AO-2026-001"

    target = tmp_path / "extrait"
    check_envelope(kit, here / "candidature.p7m", PASSWORD, extract=target)
    assert (target / "DC1.pdf").read_bytes() == b"%PDF candidature"


def test_a_wrong_password_a_tampered_or_foreign_envelope_are_refused(
    deposit: Sealed, tmp_path: Path
) -> None:
    here, kit = deposit.here, proofkit.read_kit(deposit.kit)
    with pytest.raises(WrongPasswordError, match="wrong proof kit password"):
        check_envelope(kit, here / "offre.p7m", "Mauvais mot de passe 2026")

    tampered = tmp_path / "tampered.p7m"
    data = bytearray((here / "offre.p7m").read_bytes())
    data[len(data) // 2] ^= 1
    tampered.write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        check_envelope(kit, tampered, PASSWORD, extract=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*"))

    other = tmp_path / "other.p7m"
    other.write_bytes(b"0" * 1000)
    with pytest.raises(ReceiptError, match="not an envelope of this deposit"):
        check_envelope(kit, other, PASSWORD)


def test_a_key_moved_to_another_envelope_or_a_changed_receipt_is_refused(
    deposit: Sealed,
) -> None:
    raw = json.loads(deposit.kit)
    first, second = raw["envelopes"]
    first["key"], second["key"] = second["key"], first["key"]
    swapped = proofkit.read_kit(json.dumps(raw).encode())
    with pytest.raises(WrongPasswordError):
        proofkit.content_key(swapped, swapped.envelopes[0], PASSWORD)

    raw = json.loads(deposit.kit)
    raw["envelopes"][1]["sha256"] = "0" * 64
    with pytest.raises(InvalidInputError, match="proof kit"):
        proofkit.verified_receipt(proofkit.read_kit(json.dumps(raw).encode()))


@pytest.mark.parametrize(
    "change",
    [
        lambda kit: kit.update(format="autre/1"),
        lambda kit: kit["kdf"].update(memory_kib=1 << 30),
        lambda kit: kit["kdf"].update(name="scrypt"),
        lambda kit: kit["envelopes"][0].update(key="pas du base64 !"),
        lambda kit: kit.pop("receipt"),
        lambda kit: kit.update(receipt=12),
    ],
)
def test_a_damaged_kit_is_named(
    deposit: Sealed, change: Callable[[dict[str, Any]], object]
) -> None:
    raw = json.loads(deposit.kit)
    change(raw)
    with pytest.raises(InvalidInputError):
        proofkit.read_kit(json.dumps(raw).encode())


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"x" * (proofkit.MAX_KIT_BYTES + 1)])
def test_garbage_is_not_a_kit(data: bytes) -> None:
    with pytest.raises(InvalidInputError, match="not a Scellé proof kit"):
        proofkit.read_kit(data)


def test_the_password_is_read_in_nfc(deposit: Sealed) -> None:
    """A password typed on a keyboard that composes accents (NFD) opens the kit too."""
    composed = "Énigme-de-preuve 2026"
    receipt = json.loads(deposit.kit)["receipt"].encode()
    kit = proofkit.read_kit(proofkit.make_kit(receipt, deposit.keys, composed, kdf=FAST_KDF))
    check_envelope(kit, deposit.here / "offre.p7m", unicodedata.normalize("NFD", composed))
