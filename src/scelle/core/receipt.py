"""Deposit receipts (accusés de réception): the platform's signed word, checkable offline.

A receipt is a JSON document:

    {"receipt": {tender, bidder, deposit, received_at, late, rsf, [test: true],
                 [commission: {threshold, members: [SHA-256 fingerprints]}],
                 audit_head: {sequence, hash}, [log: the transparency log's vkey],
                 envelopes: [{kind, size, sha256, recipients: [SHA-256 fingerprints]}]},
     "signature": {"algorithm": "ecdsa-with-SHA256", "value": base64 DER,
                   "certificate": PEM of the signer, "chain": [PEM of the CA]},
     ["transparency": a c2sp.org/tlog-proof]}

The signature covers the canonical form of "receipt" (keys sorted, no spaces,
UTF-8): any change to a field breaks it. Verification checks the signature,
that the signer's certificate allows signing and was issued by the CA in the
chain, and, when the caller knows the platform's CA, that it is that one.

`rsf` and each envelope's `recipients` say to whom the envelopes were
encrypted (the platform reads them from the envelopes' headers); `commission`,
for a tender a commission opens, says which members' certificates hold shares
of each content key and how many must take part; `audit_head` anchors the
platform's audit log: the event of that sequence number must keep that hash
for as long as the log exists. `log` names the platform's
transparency log (core.tlog) by its key: the receipt is then logged as the entry
{"type": "deposit", "receipt": SHA-256 of the signed form}, and "transparency", outside
what is signed (it is made after), proves that entry in a checkpoint of that log.
Receipts from before these fields verify as they are. The platform's audit
checkpoints are signed the same way (`sign_document`, `verify_document`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from scelle.core import certs, note, tlog
from scelle.core.authority import Authority, issued_by
from scelle.core.errors import N_, CertificateError, LogError, ReceiptError

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
    recipients: tuple[str, ...] = ()
    """SHA-256 fingerprints of the certificates it was encrypted to (empty: not said)."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"kind": self.kind, "size": self.size, "sha256": self.sha256}
        if self.recipients:
            document["recipients"] = list(self.recipients)
        return document


@dataclass(frozen=True)
class ReceiptCommission:
    """The commission that opens the tender: k of these members must take part."""

    threshold: int
    members: tuple[str, ...]
    """SHA-256 fingerprints of the members' certificates, sorted."""

    def to_json(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "members": list(self.members)}

    @classmethod
    def from_json(cls, data: Any) -> ReceiptCommission | None:  # noqa: ANN401 - parsed JSON
        if data is None:
            return None
        threshold, members = data["threshold"], data["members"]
        if not isinstance(threshold, int) or not isinstance(members, list):
            raise TypeError("commission")
        return cls(threshold, tuple(str(member) for member in members))


@dataclass(frozen=True)
class AuditHead:
    """The last event of the platform's audit log at some moment: an anchor."""

    sequence: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "hash": self.hash}

    @classmethod
    def from_json(cls, data: Any) -> AuditHead | None:  # noqa: ANN401 - parsed JSON
        if data is None:
            return None
        sequence, digest = data["sequence"], data["hash"]
        if not isinstance(sequence, int) or not isinstance(digest, str):
            raise TypeError("audit head")
        return cls(sequence, digest)


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
    rsf: str | None = None
    """The tender's recipient-set fingerprint (core.rsf)."""
    audit_head: AuditHead | None = None
    """The audit log's head when the receipt was signed."""
    test: bool = False
    """A deposit to the platform's test tender: a try, never an offer (said only when
    true, so that every other receipt keeps the fields it always had)."""
    commission: ReceiptCommission | None = None
    """Who must cooperate to open, when a commission opens the tender."""
    log: str | None = None
    """The verifier key of the transparency log the receipt is in."""
    commitment: str | None = None
    """SHA-256 of the signed commitment receipt (`CommitmentReceipt`) that this deposit's
    envelopes match: the company committed to them before the deadline."""
    grace: bool = False
    """Completed after the deadline, within the tender's grace window, and on time because
    it matches `commitment` (said only when true)."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "platform": self.platform,
            "tender": self.tender,
            "bidder": self.bidder,
            "deposit": self.deposit,
            "received_at": self.received_at.astimezone(dt.UTC).isoformat(),
            "late": self.late,
            "envelopes": [e.to_json() for e in self.envelopes],
        }
        if self.rsf is not None:
            document["rsf"] = self.rsf
        if self.audit_head is not None:
            document["audit_head"] = self.audit_head.to_json()
        if self.test:
            document["test"] = True
        if self.commission is not None:
            document["commission"] = self.commission.to_json()
        if self.log is not None:
            document["log"] = self.log
        if self.commitment is not None:
            document["commitment"] = self.commitment
        if self.grace:
            document["grace"] = True
        return document

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
                ReceivedEnvelope(
                    str(e["kind"]),
                    int(e["size"]),
                    str(e["sha256"]),
                    tuple(str(f) for f in e.get("recipients", ())),
                )
                for e in data["envelopes"]
            ),
            rsf=None if data.get("rsf") is None else str(data["rsf"]),
            audit_head=AuditHead.from_json(data.get("audit_head")),
            test=data.get("test") is True,
            commission=ReceiptCommission.from_json(data.get("commission")),
            log=None if data.get("log") is None else str(data["log"]),
            commitment=None if data.get("commitment") is None else str(data["commitment"]),
            grace=data.get("grace") is True,
        )


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def body_sha256(body: dict[str, Any]) -> str:
    """The SHA-256 of a signed body's canonical form: what the transparency log keeps."""
    return hashlib.sha256(_canonical(body)).hexdigest()


def with_proof(document: bytes, proof: tlog.Proof) -> bytes:
    """A signed document with its proof of inclusion in the transparency log added."""
    parsed = json.loads(document)
    parsed["transparency"] = str(proof)
    return json.dumps(parsed, ensure_ascii=False, indent=2).encode()


def sign_document(
    body: dict[str, Any], signer: Authority, chain: list[x509.Certificate], *, name: str
) -> bytes:
    """`{name: body, "signature": …}`: the body signed in its canonical form."""
    if not isinstance(signer.key, ec.EllipticCurvePrivateKey):
        raise CertificateError(
            N_("the platform signs with its ECDSA key"),
        )
    signature = signer.key.sign(_canonical(body), ec.ECDSA(hashes.SHA256()))
    document = {
        name: body,
        "signature": {
            "algorithm": ALGORITHM,
            "value": base64.b64encode(signature).decode(),
            "certificate": certs.certificate_pem(signer.certificate).decode(),
            "chain": [certs.certificate_pem(c).decode() for c in chain],
        },
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def sign_receipt(receipt: Receipt, signer: Authority, chain: list[x509.Certificate]) -> bytes:
    """The signed receipt document, as the bidder keeps it."""
    return sign_document(receipt.to_json(), signer, chain, name="receipt")


@dataclass(frozen=True)
class VerifiedDocument:
    """A signed document whose signature and certificates checked out."""

    body: dict[str, Any]
    signer: x509.Certificate
    authority: x509.Certificate
    """The CA that issued the signer's certificate: compare its fingerprint."""
    transparency: str | None = None
    """The proof of inclusion in the transparency log, not yet checked."""

    def logged(self, kind: str, log: str | None, **more: str) -> tlog.Inclusion | None:
        """Check that the body is in the log whose key `log` is (as the body says), as an
        entry of `kind` (with `more` fields); where the log shows it."""
        if log is None:
            return None
        if self.transparency is None:
            raise LogError(N_("the proof that it is in the platform's transparency log is missing"))
        return tlog.verify_proof(
            tlog.Proof.parse(self.transparency),
            tlog.entry(kind, receipt=body_sha256(self.body), **more),
            note.Verifier.parse(log),
        )


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose signature and certificates checked out."""

    receipt: Receipt
    signer: x509.Certificate
    authority: x509.Certificate
    """The CA that issued the signer's certificate: compare its fingerprint."""
    logged: tlog.Inclusion | None = None
    """Where the transparency log shows the receipt, when the receipt names a log."""


def verify_document(
    data: bytes,
    *,
    name: str,
    what: str,
    trusted_authority: x509.Certificate | None = None,
) -> VerifiedDocument:
    """Check a document signed by `sign_document`; `what` names it in errors ("receipt").

    Long because each field of the signed document is checked in place, each with its own
    message.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError(
            N_("this is not a {what}: the file is too large"),
            what=what,
        )
    try:
        document = json.loads(data.decode("utf-8"))
        body = document[name]
        seal = document["signature"]
        if not isinstance(body, dict):
            raise TypeError(name)
        if seal["algorithm"] != ALGORITHM:
            raise ReceiptError(
                N_("unknown signature algorithm {value!r}"),
                value=str(seal["algorithm"])[:40],
            )
        transparency = document.get("transparency")
        if transparency is not None and not isinstance(transparency, str):
            raise TypeError("transparency")
        signature = base64.b64decode(seal["value"], validate=True)
        signer = certs.load_certificate(seal["certificate"].encode(), source="the signer")
        chain = [certs.load_certificate(pem.encode(), source="the chain") for pem in seal["chain"]]
    except ReceiptError:
        raise
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        binascii.Error,
        CertificateError,
    ):
        raise ReceiptError(
            N_("this is not a Scellé {what}, or it is damaged"),
            what=what,
        ) from None
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ReceiptError(
            N_("the {what}'s signer does not hold an ECDSA key"),
            what=what,
        )
    try:
        key.verify(signature, _canonical(body), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ReceiptError(
            N_(
                "the {what}'s signature does not verify: it was altered or not signed by the "
                "platform"
            ),
            what=what,
        ) from None
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        raise ReceiptError(
            N_("the {what}'s signer certificate does not allow signing"),
            what=what,
        )
    if not chain or not issued_by(signer, chain[0]):
        raise ReceiptError(
            N_("the {what}'s signer certificate was not issued by the chain's CA"),
            what=what,
        )
    if trusted_authority is not None and chain[0] != trusted_authority:
        raise ReceiptError(
            N_("the {what} was signed under another CA than the platform's you know"),
            hint=N_("Its CA's fingerprint is {fingerprint_sha256}."),
            what=what,
            fingerprint_sha256=certs.fingerprint_sha256(chain[0]),
        )
    return VerifiedDocument(body, signer, chain[0], transparency)


def verify_receipt(
    data: bytes, *, trusted_authority: x509.Certificate | None = None
) -> VerifiedReceipt:
    """Check a receipt offline; refuse it with one message naming what is wrong."""
    verified = verify_document(
        data, name="receipt", what="receipt", trusted_authority=trusted_authority
    )
    try:
        receipt = Receipt.from_json(verified.body)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ReceiptError(
            N_("this is not a Scellé receipt, or it is damaged"),
        ) from None
    at = receipt.received_at
    signer = verified.signer
    if at.tzinfo is None or not signer.not_valid_before_utc <= at <= signer.not_valid_after_utc:
        raise ReceiptError(
            N_("the receipt's time lies outside its signer certificate's validity"),
        )
    logged = verified.logged("deposit", receipt.log)
    return VerifiedReceipt(receipt, signer, verified.authority, logged)


# --- withdrawals ---------------------------------------------------------------------


@dataclass(frozen=True)
class WithdrawalReceipt:
    """The platform's word that a company withdrew one of its deposits before the
    deadline: the deposit named by its receipt's hash. Logged as {"type": "withdrawal",
    "receipt": its own hash, "deposit": the deposit receipt's hash}."""

    platform: str
    tender: str
    bidder: str
    deposit: str
    deposit_receipt: str
    """SHA-256 of the deposit receipt's signed form (`body_sha256`)."""
    withdrawn_at: dt.datetime
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "platform": self.platform,
            "tender": self.tender,
            "bidder": self.bidder,
            "deposit": self.deposit,
            "deposit_receipt": self.deposit_receipt,
            "withdrawn_at": self.withdrawn_at.astimezone(dt.UTC).isoformat(),
        }
        if self.log is not None:
            document["log"] = self.log
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WithdrawalReceipt:
        at = dt.datetime.fromisoformat(data["withdrawn_at"])
        if at.tzinfo is None:
            raise ValueError("withdrawn_at")
        return cls(
            platform=str(data["platform"]),
            tender=str(data["tender"]),
            bidder=str(data["bidder"]),
            deposit=str(data["deposit"]),
            deposit_receipt=str(data["deposit_receipt"]),
            withdrawn_at=at,
            log=None if data.get("log") is None else str(data["log"]),
        )


@dataclass(frozen=True)
class VerifiedWithdrawal:
    withdrawal: WithdrawalReceipt
    signer: x509.Certificate
    authority: x509.Certificate
    logged: tlog.Inclusion | None


def verify_withdrawal(
    data: bytes, *, trusted_authority: x509.Certificate | None = None
) -> VerifiedWithdrawal:
    """Check a withdrawal receipt offline, with its proof in the transparency log."""
    verified = verify_document(
        data, name="withdrawal", what="withdrawal receipt", trusted_authority=trusted_authority
    )
    try:
        withdrawal = WithdrawalReceipt.from_json(verified.body)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ReceiptError(
            N_("this is not a Scellé withdrawal receipt, or it is damaged")
        ) from None
    logged = verified.logged("withdrawal", withdrawal.log, deposit=withdrawal.deposit_receipt)
    return VerifiedWithdrawal(withdrawal, verified.signer, verified.authority, logged)


# --- commitments ---------------------------------------------------------------------


@dataclass(frozen=True)
class CommitmentReceipt:
    """The platform's word that, at `committed_at`, a company registered the SHA-256 of
    each sealed envelope it was about to upload (engagement horodaté). Logged as
    {"type": "commitment", "receipt": its own hash}; a deposit that matches it says so."""

    platform: str
    tender: str
    bidder: str
    commitment: str
    """The commitment's id."""
    committed_at: dt.datetime
    envelopes: tuple[tuple[str, str], ...]
    """(kind, SHA-256 of the sealed envelope), in the tender's order."""
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "platform": self.platform,
            "tender": self.tender,
            "bidder": self.bidder,
            "commitment": self.commitment,
            "committed_at": self.committed_at.astimezone(dt.UTC).isoformat(),
            "envelopes": [{"kind": kind, "sha256": sha256} for kind, sha256 in self.envelopes],
        }
        if self.log is not None:
            document["log"] = self.log
        return document

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitmentReceipt:
        at = dt.datetime.fromisoformat(data["committed_at"])
        if at.tzinfo is None:
            raise ValueError("committed_at")
        return cls(
            platform=str(data["platform"]),
            tender=str(data["tender"]),
            bidder=str(data["bidder"]),
            commitment=str(data["commitment"]),
            committed_at=at,
            envelopes=tuple((str(e["kind"]), str(e["sha256"])) for e in data["envelopes"]),
            log=None if data.get("log") is None else str(data["log"]),
        )


@dataclass(frozen=True)
class VerifiedCommitment:
    commitment: CommitmentReceipt
    digest: str
    """SHA-256 of its signed form: what a deposit's receipt names."""
    signer: x509.Certificate
    authority: x509.Certificate
    logged: tlog.Inclusion | None


def verify_commitment(
    data: bytes, *, trusted_authority: x509.Certificate | None = None
) -> VerifiedCommitment:
    """Check a commitment receipt offline, with its proof in the transparency log."""
    verified = verify_document(
        data, name="commitment", what="commitment receipt", trusted_authority=trusted_authority
    )
    try:
        commitment = CommitmentReceipt.from_json(verified.body)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ReceiptError(
            N_("this is not a Scellé commitment receipt, or it is damaged")
        ) from None
    logged = verified.logged("commitment", commitment.log)
    return VerifiedCommitment(
        commitment, body_sha256(verified.body), verified.signer, verified.authority, logged
    )
