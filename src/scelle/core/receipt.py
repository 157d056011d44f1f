"""Deposit receipts (accusés de réception): the platform's signed word, checkable offline.

A receipt is a JSON document:

    {"receipt": {tender, bidder, deposit, received_at, late, envelopes: [
                  {kind, size, sha256}]},
     "signature": {"algorithm": "ecdsa-with-SHA256", "value": base64 DER,
                   "certificate": PEM of the signer, "chain": [PEM of the CA]}}

The signature covers the canonical form of "receipt" (keys sorted, no spaces,
UTF-8): any change to a field breaks it. Verification checks the signature,
that the signer's certificate allows signing and was issued by the CA in the
chain, and, when the caller knows the platform's CA, that it is that one.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from scelle.core import certs
from scelle.core.authority import Authority, issued_by
from scelle.core.errors import CertificateError, ReceiptError

ALGORITHM = "ecdsa-with-SHA256"
MAX_RECEIPT_BYTES = 1 << 20


@dataclass(frozen=True)
class ReceivedEnvelope:
    """One envelope as the platform stored it."""

    kind: str
    size: int
    """Bytes of ciphertext."""
    sha256: str
    """SHA-256 of the ciphertext, lower-case hex."""


@dataclass(frozen=True)
class Receipt:
    """What the platform acknowledges having received, and when."""

    platform: str
    tender: str
    bidder: str
    deposit: str
    """The deposit's public id."""
    received_at: dt.datetime
    late: bool
    """True when the deposit completed after the deadline."""
    envelopes: tuple[ReceivedEnvelope, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "tender": self.tender,
            "bidder": self.bidder,
            "deposit": self.deposit,
            "received_at": self.received_at.astimezone(dt.UTC).isoformat(),
            "late": self.late,
            "envelopes": [
                {"kind": e.kind, "size": e.size, "sha256": e.sha256} for e in self.envelopes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Receipt:
        return cls(
            platform=str(data["platform"]),
            tender=str(data["tender"]),
            bidder=str(data["bidder"]),
            deposit=str(data["deposit"]),
            received_at=dt.datetime.fromisoformat(data["received_at"]),
            late=bool(data["late"]),
            envelopes=tuple(
                ReceivedEnvelope(str(e["kind"]), int(e["size"]), str(e["sha256"]))
                for e in data["envelopes"]
            ),
        )


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_receipt(receipt: Receipt, signer: Authority, chain: list[x509.Certificate]) -> bytes:
    """The signed receipt document, as the bidder keeps it."""
    if not isinstance(signer.key, ec.EllipticCurvePrivateKey):
        raise CertificateError("receipts are signed with the platform's ECDSA key")
    body = receipt.to_json()
    signature = signer.key.sign(_canonical(body), ec.ECDSA(hashes.SHA256()))
    document = {
        "receipt": body,
        "signature": {
            "algorithm": ALGORITHM,
            "value": base64.b64encode(signature).decode(),
            "certificate": certs.certificate_pem(signer.certificate).decode(),
            "chain": [certs.certificate_pem(c).decode() for c in chain],
        },
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose signature and certificates checked out."""

    receipt: Receipt
    signer: x509.Certificate
    authority: x509.Certificate
    """The CA that issued the signer's certificate: compare its fingerprint."""


def verify_receipt(
    data: bytes, *, trusted_authority: x509.Certificate | None = None
) -> VerifiedReceipt:
    """Check a receipt offline; refuse it with one message naming what is wrong."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError("this is not a receipt: the file is too large")
    try:
        document = json.loads(data.decode("utf-8"))
        body = document["receipt"]
        seal = document["signature"]
        if seal["algorithm"] != ALGORITHM:
            raise ReceiptError(f"unknown signature algorithm {seal['algorithm']!r}")
        signature = base64.b64decode(seal["value"], validate=True)
        signer = certs.load_certificate(seal["certificate"].encode(), source="the signer")
        chain = [certs.load_certificate(pem.encode(), source="the chain") for pem in seal["chain"]]
        receipt = Receipt.from_json(body)
    except ReceiptError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, CertificateError):
        raise ReceiptError("this is not a Scellé receipt, or it is damaged") from None
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ReceiptError("the receipt's signer does not hold an ECDSA key")
    try:
        key.verify(signature, _canonical(body), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ReceiptError(
            "the receipt's signature does not verify: it was altered or not signed by the platform"
        ) from None
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        raise ReceiptError("the receipt's signer certificate does not allow signing")
    if not chain or not issued_by(signer, chain[0]):
        raise ReceiptError("the receipt's signer certificate was not issued by the chain's CA")
    if trusted_authority is not None and chain[0] != trusted_authority:
        raise ReceiptError(
            "the receipt was signed under another CA than the platform's you know",
            hint=f"Its CA's fingerprint is {certs.fingerprint_sha256(chain[0])}.",
        )
    at = receipt.received_at
    if not signer.not_valid_before_utc <= at <= signer.not_valid_after_utc:
        raise ReceiptError("the receipt's time lies outside its signer certificate's validity")
    return VerifiedReceipt(receipt, signer, chain[0])
