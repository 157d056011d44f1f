"""The key registry: the certificates of each service's encryption key pairs."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from scelle.platform.accounts.models import Organisation, Service, User


class KeyPair(models.Model):
    """A bi-clé de chiffrement as the platform knows it: its certificate only."""

    class Role(models.TextChoices):
        PERSONAL = "personal", _("personal")
        BACKUP = "backup", _("backup")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="key_pairs")
    designation = models.CharField(_("designation"), max_length=100)
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    common_name = models.CharField(_("CN"), max_length=64)
    certificate_pem = models.TextField()
    fingerprint_sha256 = models.CharField(max_length=95)
    public_key_sha256 = models.CharField(max_length=64)
    """The same key under another certificate has the same value."""
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    issued_by_platform = models.BooleanField()
    """False when the certificate was referenced as it is (--as-is)."""
    on_token = models.BooleanField(default=False)
    """The workstation said its private key lives on a token (smart card, HSM): shown on
    the key page, never a rule (the platform cannot check it)."""
    added_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    added_at = models.DateTimeField()

    class Meta:
        ordering = ("designation",)
        constraints: ClassVar = [
            models.UniqueConstraint("service", Lower("designation"), name="key_pair_designation"),
            models.UniqueConstraint("service", "public_key_sha256", name="key_pair_key"),
        ]

    def __str__(self) -> str:
        return self.designation
