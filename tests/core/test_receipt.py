"""Receipts: signed by the platform, verified offline, by us and by OpenSSL."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from scelle.core import authority
from scelle.core.errors import ReceiptError
from scelle.core.receipt import (
    Receipt,
    ReceivedEnvelope,
    _canonical,
    sign_receipt,
    verify_receipt,
)
from tests.conftest import NOW, require_tool


@pytest.fixture(scope="module")
def platform_keys() -> tuple[authority.Authority, authority.Authority]:
    ca = authority.create_authority("Scellé — autorité", now=NOW)
    return ca, authority.create_signing_identity(ca, "Scellé — accusés", now=NOW)


RECEIPT = Receipt(
    platform="Scellé",
    tender="AO-2026-001",
    bidder="BTP Normandie",
    deposit="0d4f6c1e-5a1b-4f7e-9d38-3c1e2b7a9f10",
    received_at=NOW + dt.timedelta(hours=2),
    late=False,
    envelopes=(
        ReceivedEnvelope("candidature", 1234, "a" * 64),
        ReceivedEnvelope("offre", 98765, "b" * 64),
    ),
)


def test_round_trip(platform_keys) -> None:
    ca, signer = platform_keys
    data = sign_receipt(RECEIPT, signer, [ca.certificate])
    verified = verify_receipt(data, trusted_authority=ca.certificate)
    assert verified.receipt == RECEIPT
    assert verified.authority == ca.certificate


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tender", "AO-AUTRE"),
        ("bidder", "Concurrent"),
        ("received_at", "2026-11-22T09:29:00+00:00"),
        ("late", True),
        ("envelopes", []),
    ],
)
def test_any_change_breaks_the_signature(platform_keys, field: str, value: object) -> None:
    ca, signer = platform_keys
    document = json.loads(sign_receipt(RECEIPT, signer, [ca.certificate]))
    document["receipt"][field] = value
    with pytest.raises(ReceiptError, match="does not verify"):
        verify_receipt(json.dumps(document).encode())


def test_another_platforms_ca_is_refused(platform_keys) -> None:
    ca, signer = platform_keys
    other = authority.create_authority("Autre plateforme", now=NOW)
    data = sign_receipt(RECEIPT, signer, [ca.certificate])
    with pytest.raises(ReceiptError, match="another CA"):
        verify_receipt(data, trusted_authority=other.certificate)
    # A self-made signer claiming the real CA.
    impostor = authority.create_signing_identity(other, "Scellé — accusés", now=NOW)
    forged = sign_receipt(RECEIPT, impostor, [ca.certificate])
    with pytest.raises(ReceiptError, match="not issued by"):
        verify_receipt(forged)


@pytest.mark.parametrize("data", [b"", b"{}", b"[]", b"not json", b'{"receipt": 1}', b"\xff"])
def test_garbage_is_not_a_receipt(data: bytes) -> None:
    with pytest.raises(ReceiptError):
        verify_receipt(data)


def test_openssl_verifies_the_signature(platform_keys, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    ca, signer = platform_keys
    document = json.loads(sign_receipt(RECEIPT, signer, [ca.certificate]))
    (tmp_path / "receipt.json").write_bytes(_canonical(document["receipt"]))
    (tmp_path / "signature.der").write_bytes(base64.b64decode(document["signature"]["value"]))
    (tmp_path / "signer.pem").write_text(document["signature"]["certificate"])
    (tmp_path / "public.pem").write_bytes(
        signer.certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    result = subprocess.run(
        [openssl, "dgst", "-sha256", "-verify", str(tmp_path / "public.pem"),
         "-signature", str(tmp_path / "signature.der"), str(tmp_path / "receipt.json")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stderr
    (tmp_path / "ca.pem").write_text(document["signature"]["chain"][0])
    chain = subprocess.run(
        [openssl, "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "signer.pem")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert chain.returncode == 0, chain.stderr
