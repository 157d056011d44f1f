"""Whom an envelope is sealed to, read from its header: each key transport recipient, and
each member of a commission (core.commission), so that the platform at deposit and the
workstation at opening check them against the tender's recipient set."""

from __future__ import annotations

from dataclasses import dataclass, field

from asn1crypto import cms
from cryptography import x509

from scelle.core import commission
from scelle.core.envelope import (
    describe_recipient,
    read_recipient_infos,
    same_recipient,
)
from scelle.core.files import Readable


@dataclass(frozen=True)
class EnvelopeRecipient:
    """One recipient of an envelope: a certificate its content key, or a share of it, was
    encrypted to."""

    identifier: bytes = field(repr=False)
    """The recipient identifier (issuerAndSerialNumber or subjectKeyIdentifier), DER; empty
    for a recipient info of a kind Scellé does not write."""
    description: str
    """How a person reads it: the issuer and serial number, or the key identifier."""
    threshold: int | None = None
    """For a commission's member: how many members' shares open the envelope."""

    def matches(self, certificate: x509.Certificate) -> bool:
        """True when this recipient names `certificate`."""
        if not self.identifier:
            return False  # not one Scellé writes: never one of ours
        return same_recipient(cms.RecipientIdentifier.load(self.identifier), certificate)


def read_recipients(source: Readable) -> list[EnvelopeRecipient]:
    """The recipients of the envelope in `source`, from its header only.

    Raises the one `DecryptionError` for anything that is not an envelope, and
    `InvalidInputError` for a commission recipient that is not one (core.commission.read).
    """
    infos = read_recipient_infos(source)
    found = []
    for info in cms.RecipientInfos.load(infos, strict=True):
        if info.name == "ktri":
            rid = info.chosen["rid"]
            found.append(EnvelopeRecipient(rid.dump(), describe_recipient(rid)))
        elif info.name != "ori" or info.chosen["ori_type"].dotted != commission.COMMISSION_OID:
            found.append(EnvelopeRecipient(b"", f"a {info.name} recipient"))
    sealed = commission.read(infos)
    if sealed is not None:
        for share in sealed.shares:
            rid = share["rid"]
            found.append(
                EnvelopeRecipient(
                    rid.dump(), f"{describe_recipient(rid)} (commission)", sealed.threshold
                )
            )
    return found
