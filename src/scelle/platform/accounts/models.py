"""Organisations (buyers and bidders), their services, their users and permissions."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    """A public buyer (entité publique) or a bidding company (entreprise)."""

    class Kind(models.TextChoices):
        BUYER = "buyer", _("public buyer")
        BIDDER = "bidder", _("company")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Service(models.Model):
    """A unit of a buyer organisation; key pairs and tenders belong to one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="services"
    )
    name = models.CharField(_("name"), max_length=200)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ("name",)
        constraints: ClassVar = [
            models.UniqueConstraint(
                "organisation", models.functions.Lower("name"), name="service_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username or "")


class User(AbstractBaseUser):
    """A buyer's agent or a bidder's user; belongs to exactly one organisation."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(_("e-mail address"), unique=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="users")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(_("created at"))

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        ordering = ("email",)

    def __str__(self) -> str:
        return self.email

    @property
    def is_agent(self) -> bool:
        """True for a buyer's staff member."""
        return self.organisation.kind == Organisation.Kind.BUYER


class Permission(models.Model):
    """An habilitation: what a user may do on one service."""

    class Name(models.TextChoices):
        MANAGE_KEYS = "manage_keys", _("manage key pairs")
        MANAGE_TENDERS = "manage_tenders", _("manage tenders")
        OPEN = "open", _("open envelopes")
        ADMINISTER = "administer", _("administer")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="permissions")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="permissions")
    name = models.CharField(max_length=20, choices=Name.choices)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint("user", "service", "name", name="permission_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.name} {self.service}"


class ApiToken(models.Model):
    """A bearer token, stored as a lookup prefix and an HMAC of the whole token."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.prefix} of {self.user}"


class LoginThrottle(models.Model):
    """A token bucket slowing password guessing down (accounts.services.log_in).

    One per (address, client) and one per client; `key` is an HMAC of what it
    counts, so the table holds neither addresses nor IP addresses in clear.
    """

    key = models.CharField(max_length=64, unique=True)
    tokens = models.FloatField()
    """Attempts left when `updated_at` was written; refills with time."""
    updated_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key[:8]} {self.tokens:.1f}"


def permissions_of(user: User) -> dict[Any, set[str]]:
    """{service id: set of permission names} for `user`."""
    found: dict[Any, set[str]] = {}
    for service_id, name in Permission.objects.filter(user=user).values_list("service_id", "name"):
        found.setdefault(service_id, set()).add(name)
    return found
