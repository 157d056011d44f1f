"""Proof kits (dossiers de preuve): what lets a company show later what its envelopes held.

A kit is a JSON document the company keeps for itself, never sent to the platform:

    {"format": "scelle-proof-kit/1",
     "kdf": {"name": "argon2id", salt, memory_kib, iterations, lanes},
     "envelopes": [{kind, size, sha256, "key": base64(nonce || AES-256-GCM(content key))}],
     "receipt": the deposit's signed receipt, as the platform gave it (a string)}

Each envelope's content key (the AES-256 key of its GCM content) is sealed under a
key derived with Argon2id from a password the company chooses (NFC-normalised,
UTF-8), with "scelle-proof-kit/1\\n<kind>\\n<sha256>" as associated data, so that a
key cannot be moved to another envelope. With the password, anyone (a judge, an
expert) opens the stored envelope whose SHA-256 the receipt gives, without any
buyer key, and sees the files it holds; without it the kit reveals nothing the
receipt does not. The browser's deposit page writes the same format.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scelle.core.errors import N_, InvalidInputError, WrongPasswordError
from scelle.core.receipt import MAX_RECEIPT_BYTES, VerifiedReceipt, verify_receipt
from scelle.core.sealing import KdfParameters, SealingKey

FORMAT = "scelle-proof-kit/1"
MAX_KIT_BYTES = MAX_RECEIPT_BYTES + (1 << 20)
_NONCE_BYTES = 12
_KEY_BYTES = 32
_MAX_KDF_MEMORY_KIB = 1 << 20  # a kit may not make the reader spend more than 1 GiB
_MAX_KDF_ITERATIONS = 64


@dataclass(frozen=True)
class KitEnvelope:
    """One envelope of the kit: what the receipt says of it, and its sealed content key."""

    kind: str
    size: int
    sha256: str
    sealed_key: bytes = field(repr=False)


@dataclass(frozen=True)
class ProofKit:
    """A kit as read: its receipt (still to verify), the KDF settings, the envelopes."""

    receipt_document: bytes
    kdf: KdfParameters
    envelopes: tuple[KitEnvelope, ...]


def _derive(password: str, kdf: KdfParameters) -> SealingKey:
    return SealingKey.derive(unicodedata.normalize("NFC", password), kdf)


def _context(kind: str, sha256: str) -> bytes:
    return f"{FORMAT}\n{kind}\n{sha256}".encode()


def make_kit(
    receipt_document: bytes,
    content_keys: Mapping[str, bytes],
    password: str,
    *,
    kdf: KdfParameters | None = None,
) -> bytes:
    """The kit of a deposit: its receipt and each envelope's content key, sealed under
    `password`. The receipt must name exactly the envelopes of `content_keys`."""
    receipt = verify_receipt(receipt_document).receipt
    if sorted(content_keys) != sorted(e.kind for e in receipt.envelopes):
        raise InvalidInputError(N_("the proof kit needs the content key of every envelope"))
    kdf = kdf or KdfParameters.fresh()
    key = AESGCM(_derive(password, kdf).key)
    envelopes = []
    for item in receipt.envelopes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + key.encrypt(
            nonce, content_keys[item.kind], _context(item.kind, item.sha256)
        )
        envelopes.append(
            {
                "kind": item.kind,
                "size": item.size,
                "sha256": item.sha256,
                "key": base64.b64encode(sealed).decode(),
            }
        )
    document = {
        "format": FORMAT,
        "kdf": kdf.to_json(),
        "envelopes": envelopes,
        "receipt": receipt_document.decode(),
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode() + b"\n"


def _damaged() -> InvalidInputError:
    return InvalidInputError(N_("this is not a Scellé proof kit, or it is damaged"))


def read_kit(data: bytes) -> ProofKit:
    """The kit's parts, each checked for shape (the receipt's signature is checked by
    `verified_receipt`)."""
    if len(data) > MAX_KIT_BYTES:
        raise _damaged()
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise _damaged()
        kdf = KdfParameters.from_json(document["kdf"])
        if not (
            0 < kdf.memory_kib <= _MAX_KDF_MEMORY_KIB
            and 0 < kdf.iterations <= _MAX_KDF_ITERATIONS
            and 0 < kdf.lanes <= 16
        ):
            raise _damaged()
        envelopes = tuple(
            KitEnvelope(
                kind=str(item["kind"]),
                size=int(item["size"]),
                sha256=str(item["sha256"]),
                sealed_key=base64.b64decode(item["key"], validate=True),
            )
            for item in document["envelopes"]
        )
        receipt = document["receipt"].encode()
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise _damaged() from None
    return ProofKit(receipt, kdf, envelopes)


def verified_receipt(
    kit: ProofKit, *, trusted_authority: x509.Certificate | None = None
) -> VerifiedReceipt:
    """The kit's receipt, verified (signature, chain, and the platform's CA when the
    caller knows it), and naming the kit's envelopes."""
    verified = verify_receipt(kit.receipt_document, trusted_authority=trusted_authority)
    said = {(e.kind, e.size, e.sha256) for e in verified.receipt.envelopes}
    if said != {(e.kind, e.size, e.sha256) for e in kit.envelopes}:
        raise _damaged()
    return verified


def content_key(kit: ProofKit, item: KitEnvelope, password: str) -> bytes:
    """The content key of `item`, unsealed with the company's password."""
    key = AESGCM(_derive(password, kit.kdf).key)
    sealed = item.sealed_key
    try:
        opened = key.decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _context(item.kind, item.sha256)
        )
    except (InvalidTag, ValueError):
        raise WrongPasswordError(N_("wrong proof kit password, or the kit is damaged")) from None
    if len(opened) != _KEY_BYTES:
        raise _damaged()
    return opened
