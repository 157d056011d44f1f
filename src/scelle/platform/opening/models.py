"""A commission's opening (DESIGN.md, "Commission"): who started it, who took part, and
the shares members relayed to the opener, each encrypted to the opener's certificate as
the launch recorded it. The platform stores and passes them on; it cannot read one."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models

from scelle.platform.accounts.models import User
from scelle.platform.deposits.models import Envelope
from scelle.platform.insert_only import InsertOnlyModel
from scelle.platform.tenders.models import AssignedKeyPair, Tender

KEPT = "a commission's opening is a record: it is never changed or deleted"


class CommissionOpening(InsertOnlyModel):
    """The opening of a commission's tender, started once by one of its members, the opener:
    the other members' shares are encrypted to the opener's certificate."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tender = models.OneToOneField(
        Tender, on_delete=models.PROTECT, related_name="commission_opening"
    )
    opener = models.ForeignKey(AssignedKeyPair, on_delete=models.PROTECT, related_name="+")
    """The opener's member key pair, as assigned at launch."""
    started_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField()

    REFUSAL = KEPT

    def __str__(self) -> str:
        return f"commission opening of {self.tender_id}"


class Participation(InsertOnlyModel):
    """A member who took part: consented from their own dashboard or workstation."""

    opening = models.ForeignKey(
        CommissionOpening, on_delete=models.PROTECT, related_name="participations"
    )
    member = models.ForeignKey(AssignedKeyPair, on_delete=models.PROTECT, related_name="+")
    agent = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    joined_at = models.DateTimeField()

    REFUSAL = KEPT

    class Meta:
        ordering = ("joined_at",)
        constraints: ClassVar = [
            models.UniqueConstraint("opening", "member", name="participation_once")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} in {self.opening_id}"


class RelayedShare(InsertOnlyModel):
    """One member's share of one envelope's content key, encrypted on the member's
    workstation to the opener's certificate (core.commission.relay_share)."""

    opening = models.ForeignKey(
        CommissionOpening, on_delete=models.PROTECT, related_name="relayed_shares"
    )
    envelope = models.ForeignKey(Envelope, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(AssignedKeyPair, on_delete=models.PROTECT, related_name="+")
    relayed = models.BinaryField()
    relayed_at = models.DateTimeField()

    REFUSAL = KEPT

    class Meta:
        ordering = ("id",)
        constraints: ClassVar = [
            models.UniqueConstraint("envelope", "member", name="relayed_share_once")
        ]

    def __str__(self) -> str:
        return f"share of {self.member_id} for {self.envelope_id}"
