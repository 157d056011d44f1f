"""Tenders (consultations) and the key pairs assigned to them at launch, for good."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from scelle.platform.accounts.models import Organisation, Service, User
from scelle.platform.insert_only import InsertOnlyModel

ENVELOPE_KINDS = ("candidature", "offre", "anonymat")
DEFINITIVE = "the key pairs of a launched tender are definitive: they never change"


class Tender(models.Model):
    """A call for tenders, with its deposit deadline."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        PUBLISHED = "published", _("published")
        CANCELLED = "cancelled", _("cancelled")
        """Stopped before its deadline: no deposit any more, nothing deleted, its key
        pairs still in use until it is closed after the deadline."""
        CLOSED = "closed", _("closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="tenders")
    reference = models.CharField(_("reference"), max_length=64)
    """Unique within its organisation, whatever the case; other buyers may use it too."""
    title = models.CharField(_("title"), max_length=300)
    deadline = models.DateTimeField(_("deposit deadline"))
    envelopes = models.JSONField(_("envelopes"))
    """The envelope kinds each deposit holds, in order (candidature, offre, anonymat)."""
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    launched_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(_("reason for cancelling"), blank=True)
    commission_threshold = models.PositiveSmallIntegerField(null=True, blank=True)
    grace_minutes = models.PositiveIntegerField(null=True, blank=True)
    """A grace window after the deadline, for jurisdictions whose law provides one (Spain's
    24 hours): an upload completed within it is on time when its envelopes' SHA-256 match
    a commitment the company made before the deadline. None, the default, as French law."""
    """k when a commission opens the tender: k of its members (the assigned key pairs of
    role "member") must take part to open any envelope (DESIGN.md, "Commission"); None
    when any assigned personal key pair opens alone. Fixed at launch, like them."""
    is_test = models.BooleanField(default=False)
    """The platform's *Consultation de test* (tenders.testing): every company may deposit
    to it and open its own deposits there; they never count as offers, and are swept."""

    class Meta:
        ordering = ("deadline", "reference")
        constraints: ClassVar = [
            models.UniqueConstraint(
                Lower("reference"), "organisation", name="tender_reference_once_per_organisation"
            )
        ]

    def __str__(self) -> str:
        return self.reference


class AssignedKeyPair(InsertOnlyModel):
    """A recipient of every envelope of a tender, fixed at launch.

    It keeps its own copy of the certificate: the registry entry it came
    from may be deleted once the tender is closed, the envelopes still name
    this certificate. Rows are only ever inserted (a database trigger
    refuses updates; the model refuses updates and deletes).
    """

    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="assigned_key_pairs")
    key_pair_id = models.UUIDField(db_index=True)
    """The registry entry (keypairs.KeyPair) it was taken from."""
    designation = models.CharField(max_length=100)
    role = models.CharField(max_length=10)
    """"personal" or "backup" as in the registry; "member" for a personal key pair made a
    member of the tender's commission."""
    holder = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True)
    """A commission member's agent: the one who added the key pair from their workstation."""
    common_name = models.CharField(max_length=64)
    certificate_pem = models.TextField()
    fingerprint_sha256 = models.CharField(max_length=95)
    not_after = models.DateTimeField()
    issued_by_platform = models.BooleanField()
    """False for a certificate referenced as it is: bidders then skip the CA check."""

    REFUSAL = DEFINITIVE

    class Meta:
        ordering = ("role", "designation")
        constraints: ClassVar = [
            models.UniqueConstraint("tender", "key_pair_id", name="assignment_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tender_id}: {self.designation}"


class TestKey(models.Model):
    """The private key of a test tender's only key pair, **published on purpose**.

    The one exception to "private keys never touch the server" (DESIGN.md, rule 8): it
    seals nothing but test deposits, and every company may download it to open its own.
    """

    tender = models.OneToOneField(Tender, on_delete=models.PROTECT, related_name="test_key")
    private_key_pem = models.TextField()
    """PKCS#8, unencrypted: it is public."""

    def __str__(self) -> str:
        return f"test key of {self.tender_id}"
