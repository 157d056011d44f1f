"""Uploads in progress, and deposits: what a bidder handed in, sealed, with its receipt."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from scelle.platform.accounts.models import Organisation, User
from scelle.platform.insert_only import InsertOnlyModel
from scelle.platform.tenders.models import Tender


class Upload(models.Model):
    """A tus upload of one envelope's ciphertext; not a deposit until finalised."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="uploads")
    bidder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    envelope = models.CharField(max_length=20)
    length = models.BigIntegerField()
    """Bytes announced at creation (Upload-Length)."""
    created_at = models.DateTimeField()
    # No offset column: the envelope's file holds the progress (deposits.storage).

    def __str__(self) -> str:
        return f"upload {self.id} ({self.length} bytes)"

    @property
    def file_name(self) -> str:
        return f"{self.id}.p7m"


class Commitment(InsertOnlyModel):
    """A timestamped commitment (engagement horodaté): before the deadline, a company
    registers the SHA-256 of each sealed envelope it is about to upload."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="commitments")
    bidder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    envelopes = models.JSONField()
    """{kind: SHA-256 of the sealed envelope, lower-case hex}."""
    receipt = models.TextField()
    """The signed commitment receipt, with its proof in the transparency log."""

    REFUSAL = "a commitment is never changed or removed"

    class Meta:
        ordering = ("at",)

    def __str__(self) -> str:
        return f"commitment {self.id}"


class Deposit(models.Model):
    """A pli: every envelope fully received, hashed and stored; the receipt issued."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="deposits")
    bidder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="deposits")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    received_at = models.DateTimeField(_("received at"))
    late = models.BooleanField(_("late"))
    """Completed after the tender's deadline: kept, not opened by default."""
    receipt = models.TextField()
    """The signed receipt, as returned to the bidder."""
    commitment = models.ForeignKey(
        Commitment, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    """A commitment of the company's, made before the deadline, whose hashes are exactly
    this deposit's envelopes'."""
    by_grace = models.BooleanField(default=False)
    """Completed after the deadline, within the tender's grace window, matching
    `commitment`: on time by the tender's rule."""

    class Meta:
        ordering = ("received_at",)

    def __str__(self) -> str:
        return f"deposit {self.id}"


class Envelope(models.Model):
    """One sealed envelope of a deposit, stored as its uploader sent it."""

    deposit = models.ForeignKey(Deposit, on_delete=models.PROTECT, related_name="envelopes")
    kind = models.CharField(max_length=20)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_name = models.CharField(max_length=100)
    """The file's name in the envelopes folder."""
    upload_id = models.UUIDField(null=True, blank=True, db_index=True)
    """The tus upload it was received through: a company that lost the answer to its
    finalisation finds its deposit, and its receipt, by it."""
    recipients = models.JSONField(default=list)
    """SHA-256 fingerprints of the certificates it is encrypted to, read from its header."""

    class Meta:
        ordering = ("id",)
        constraints: ClassVar = [
            models.UniqueConstraint("deposit", "kind", name="envelope_kind_once")
        ]

    def __str__(self) -> str:
        return f"{self.deposit_id} {self.kind}"


class Withdrawal(InsertOnlyModel):
    """A deposit its company withdrew (retrait) before the deadline: it is not opened."""

    deposit = models.OneToOneField(Deposit, on_delete=models.PROTECT, related_name="withdrawal")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()
    receipt = models.TextField()
    """The signed withdrawal receipt, with its proof in the transparency log."""

    REFUSAL = "a withdrawal is never changed or undone"

    def __str__(self) -> str:
        return f"withdrawal of {self.deposit_id}"
