"""A commission's envelopes: the content key split among n members, k of whom must take
part to open (DESIGN.md, "Commission").

The shares travel in one CMS OtherRecipientInfo (RFC 5652, 6.2.5) of ours, beside the
ordinary KeyTransRecipientInfo of each backup key pair, so that `openssl cms -decrypt`
still opens the envelope with a backup key and skips what it does not know:

    id-scelle-commission OBJECT IDENTIFIER ::= { 2 25 19086125424708564197750278881582884074 1 }
        -- under the UUID arc of ITU-T X.667 (UUID 0e5bdaa2-e00a-587a-9895-abd7f7ada4ea):
        -- ours without registration

    CommissionRecipientInfo ::= SEQUENCE {
        version     INTEGER { v1(1) },
        threshold   INTEGER (2..255),          -- k
        notBefore   GeneralizedTime,           -- the tender's deadline when it was sealed
        envelope    OCTET STRING (SIZE (16)),  -- this envelope's random identifier
        shares      SEQUENCE SIZE (2..255) OF CommissionShare }  -- n, one per member

    CommissionShare ::= SEQUENCE {
        rid                     RecipientIdentifier,   -- the member's certificate
        keyEncryptionAlgorithm  KeyEncryptionAlgorithmIdentifier,
            -- id-RSAES-OAEP, SHA-256, MGF1-SHA-256, pSourceFunc id-pSpecified with the label
        encryptedShare          OCTET STRING }

Each share is a Shamir share of the content key (core.shamir), encrypted to its member
with RSA-OAEP-SHA256 under a label that binds it to the tender, the deadline, the
envelope and the commission itself: SHA-256 of "scelle-commission/1", the tender's id
(16 bytes), notBefore (the seconds since 1970, 8 bytes), the envelope's identifier and
the commission's digest, SHA-256 of "scelle-commission-members/1", k (one byte) and the
members' sorted SHA-256 certificate fingerprints. A member's workstation computes that
label itself from the tender it opens, and refuses before notBefore by its own clock: a
share moved into another envelope or tender, a deadline a server moved, or a commission
a server describes otherwise than the company sealed to (a member's certificate swapped
for one of its own, to which shares would then be relayed) decrypts to nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from asn1crypto import cms
from asn1crypto import core as asn1
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from scelle.core import ber, shamir
from scelle.core.envelope import (
    DecryptionKey,
    oaep_sha256,
    oaep_sha256_identifier,
    recipient_public_key,
)
from scelle.core.errors import N_, DecryptionError, InvalidInputError

COMMISSION_OID = "2.25.19086125424708564197750278881582884074.1"
VERSION = 1
ENVELOPE_ID_BYTES = 16
_LABEL_PREFIX = b"scelle-commission/1"
_RELAY_PREFIX = b"scelle-commission-relay/1"
_MEMBERS_PREFIX = b"scelle-commission-members/1"


class CommissionShare(asn1.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("rid", cms.RecipientIdentifier),
        ("key_encryption_algorithm", cms.KeyEncryptionAlgorithm),
        ("encrypted_share", asn1.OctetString),
    ]


class CommissionShares(asn1.SequenceOf):  # type: ignore[misc]
    _child_spec = CommissionShare


class CommissionRecipientInfo(asn1.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("version", asn1.Integer),
        ("threshold", asn1.Integer),
        ("not_before", asn1.GeneralizedTime),
        ("envelope", asn1.OctetString),
        ("shares", CommissionShares),
    ]


@dataclass(frozen=True)
class Commission:
    """Who must cooperate to open a tender's envelopes: k of the members' certificates."""

    tender: uuid.UUID
    not_before: dt.datetime
    """The tender's deadline: no member's workstation decrypts a share before it."""
    members: tuple[x509.Certificate, ...]
    threshold: int

    def __post_init__(self) -> None:
        if not 2 <= self.threshold <= len(self.members) <= shamir.MAX_SHARES:
            raise InvalidInputError(
                N_("a commission has 2 to {most} members, at least 2 of them needed to open"),
                most=shamir.MAX_SHARES,
            )
        fingerprints = {member.fingerprint(hashes.SHA256()) for member in self.members}
        if len(fingerprints) != len(self.members):
            raise InvalidInputError(N_("a commission names each member's certificate once"))

    @property
    def digest(self) -> bytes:
        """k and the members' certificates, as every share's label binds them."""
        fingerprints = sorted(member.fingerprint(hashes.SHA256()) for member in self.members)
        return hashlib.sha256(
            _MEMBERS_PREFIX + bytes([self.threshold]) + b"".join(fingerprints)
        ).digest()


def share_label(
    tender: uuid.UUID, not_before: dt.datetime, envelope: bytes, commission: bytes
) -> bytes:
    """The OAEP label of every share of an envelope (see the module's text); `commission`
    is the commission's digest."""
    seconds = int(not_before.astimezone(dt.UTC).timestamp())
    return hashlib.sha256(
        _LABEL_PREFIX + tender.bytes + seconds.to_bytes(8, "big") + envelope + commission
    ).digest()


def _rid(certificate: x509.Certificate) -> cms.RecipientIdentifier:
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    return cms.RecipientIdentifier(
        name="issuer_and_serial_number",
        value=cms.IssuerAndSerialNumber(
            {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
        ),
    )


def recipient_info(content_key: bytes, commission: Commission) -> cms.RecipientInfo:
    """The content key, split k of n, each share encrypted to its member."""
    keys = [recipient_public_key(member) for member in commission.members]
    envelope = os.urandom(ENVELOPE_ID_BYTES)
    label = share_label(commission.tender, commission.not_before, envelope, commission.digest)
    shares = shamir.split(content_key, len(commission.members), commission.threshold)
    value = CommissionRecipientInfo(
        {
            "version": VERSION,
            "threshold": commission.threshold,
            "not_before": commission.not_before.astimezone(dt.UTC).replace(microsecond=0),
            "envelope": envelope,
            "shares": [
                {
                    "rid": _rid(member),
                    "key_encryption_algorithm": oaep_sha256_identifier(label),
                    "encrypted_share": key.encrypt(share, oaep_sha256(label)),
                }
                for member, key, share in zip(commission.members, keys, shares, strict=True)
            ],
        }
    )
    return cms.RecipientInfo(
        name="ori",
        value=cms.OtherRecipientInfo({"ori_type": COMMISSION_OID, "ori_value": value}),
    )


@dataclass(frozen=True)
class SealedShares:
    """A commission's part of one envelope, as read from it."""

    threshold: int
    not_before: dt.datetime
    envelope: bytes
    shares: tuple[CommissionShare, ...]


def read(recipient_infos: bytes) -> SealedShares | None:
    """The commission's shares in an envelope's RecipientInfos (DER), None when it has none;
    a commission recipient that is not ours as written above is refused."""
    infos = cms.RecipientInfos.load(recipient_infos)
    found = [
        info.chosen
        for info in infos
        if info.name == "ori" and info.chosen["ori_type"].dotted == COMMISSION_OID
    ]
    if not found:
        return None
    try:
        if len(found) != 1:
            raise ValueError("more than one")
        value = CommissionRecipientInfo.load(found[0]["ori_value"].dump(), strict=True)
        value.native  # noqa: B018 - parses every field now
        threshold = int(value["threshold"].native)
        shares = tuple(value["shares"])
        envelope = bytes(value["envelope"].native)
        if (
            value["version"].native != VERSION
            or not 2 <= threshold <= len(shares) <= shamir.MAX_SHARES
            or len(envelope) != ENVELOPE_ID_BYTES
        ):
            raise ValueError("outside the format")
        return SealedShares(threshold, value["not_before"].native, envelope, shares)
    except ber.MALFORMED:
        raise InvalidInputError(
            N_("the envelope's commission recipient is malformed: it cannot be opened by it")
        ) from None


def _label(sealed: SealedShares, commission: Commission) -> bytes:
    return share_label(commission.tender, sealed.not_before, sealed.envelope, commission.digest)


def decrypt_share(
    sealed: SealedShares, member: DecryptionKey, commission: Commission, *, now: dt.datetime
) -> bytes:
    """The member's share, decrypted on their workstation under the label it computes
    itself from the tender's `commission` as it knows it: refused before the sealed
    deadline by this workstation's clock, and for a share of another tender, envelope or
    commission, with one message whatever failed."""
    if now < sealed.not_before:
        raise DecryptionError(
            N_("the envelope stays sealed until {deadline}: no share is decrypted before"),
            deadline=sealed.not_before.isoformat(),
        )
    label = _label(sealed, commission)
    if sealed.threshold == commission.threshold:
        for share in sealed.shares:
            if member.certificate is not None and not _same_rid(share["rid"], member.certificate):
                continue
            try:
                return member.private_key.decrypt(
                    share["encrypted_share"].native, oaep_sha256(label)
                )
            except ValueError:
                continue
    raise DecryptionError(N_("no share of this envelope opens with this key pair"))


def _same_rid(rid: cms.RecipientIdentifier, certificate: x509.Certificate) -> bool:
    return bool(rid.dump() == _rid(certificate).dump())


def _relay_label(
    sealed: SealedShares, commission: Commission, opener: x509.Certificate,
    member: x509.Certificate,
) -> bytes:  # fmt: skip
    return hashlib.sha256(
        _RELAY_PREFIX
        + _label(sealed, commission)
        + opener.fingerprint(hashes.SHA256())
        + member.fingerprint(hashes.SHA256())
    ).digest()


def _check_members(
    commission: Commission, opener: x509.Certificate, member: x509.Certificate
) -> None:
    if opener not in commission.members:
        raise DecryptionError(
            N_("the opener is not a member of the commission: no share goes to them")
        )
    if member not in commission.members:
        raise DecryptionError(
            N_("the relaying member is not a member of the commission: no share comes from them")
        )


def relay_share(
    share: bytes,
    sealed: SealedShares,
    commission: Commission,
    *,
    opener: x509.Certificate,
    member: x509.Certificate,
) -> bytes:
    """A member's share, decrypted on their workstation, encrypted again for the opener's
    certificate, a member's of the commission as the launch recorded it (never a key the
    server names): RSA-OAEP-SHA256 under a label binding the envelope's share label, the
    opener and the member, so that the platform that relays it can neither read it nor
    move it to another envelope, opener or member."""
    _check_members(commission, opener, member)
    key = recipient_public_key(opener)
    return key.encrypt(share, oaep_sha256(_relay_label(sealed, commission, opener, member)))


def receive_share(
    relayed: bytes,
    sealed: SealedShares,
    commission: Commission,
    *,
    opener: DecryptionKey,
    member: x509.Certificate,
) -> bytes:
    """A share `member` relayed to this opener for this envelope, or DecryptionError."""
    if opener.certificate is None:
        raise DecryptionError(N_("the opener's certificate is needed to receive shares"))
    _check_members(commission, opener.certificate, member)
    try:
        return opener.private_key.decrypt(
            relayed, oaep_sha256(_relay_label(sealed, commission, opener.certificate, member))
        )
    except ValueError:
        raise DecryptionError(
            N_("a relayed share does not open for this opener and envelope")
        ) from None


def combine(shares: Sequence[bytes], sealed: SealedShares) -> bytes:
    """The content key from at least k members' shares."""
    if len(set(shares)) < sealed.threshold:
        raise DecryptionError(
            N_("{given} share(s) of the {threshold} needed: the envelope stays sealed"),
            given=len(set(shares)),
            threshold=sealed.threshold,
        )
    return shamir.combine(list(dict.fromkeys(shares))[: sealed.threshold])
