"""The key registry's rules (DESIGN.md, rules 2 and 4).

Only an agent with `manage_keys` on a service adds, renames or deletes its
key pairs. Adding takes a certificate request signed by the key pair (the
platform CA then issues the certificate), or an existing certificate with
such a request as proof that the agent holds its private key. A key pair
that a tender not yet closed uses cannot be deleted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from scelle.core import authority, certs
from scelle.core.errors import N_, InvalidInputError, NotFoundError, RuleViolationError
from scelle.platform.accounts.models import Permission, Service, User
from scelle.platform.accounts.services import require_agent, service_for
from scelle.platform.audit.services import record
from scelle.platform.clock import local_date
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.tenders.models import AssignedKeyPair, Tender

MAX_DESIGNATION_LENGTH = 100
EXPIRY_WARNING = dt.timedelta(days=90)


def check_designation(value: str) -> str:
    return certs.check_label(
        value, what="a key pair's designation", max_length=MAX_DESIGNATION_LENGTH
    )


def designation_free(service: Service, designation: str, *, except_id: uuid.UUID | None) -> None:
    taken = KeyPair.objects.filter(service=service, designation__iexact=designation)
    if except_id is not None:
        taken = taken.exclude(id=except_id)
    if taken.exists():
        raise RuleViolationError(
            N_("the service {service} already has a key pair designated {designation!r}"),
            service=service.name,
            designation=designation,
        )


def publish_key_pair(
    actor: User,
    *,
    service_id: uuid.UUID | str,
    designation: str | None,
    role: str,
    csr_pem: bytes,
    certificate_pem: bytes | None,
    now: dt.datetime,
    on_token: bool = False,
) -> KeyPair:
    """Reference a key pair generated on the actor's workstation (rule 2).

    Without `certificate_pem`, the platform CA issues the certificate for the
    request; with it, that certificate is referenced as it is.

    Long because its two ways in (a CSR the CA signs, a referenced certificate) share their
    checks and their record.
    """
    service = service_for(actor, service_id, Permission.Name.MANAGE_KEYS)
    if role not in KeyPair.Role.values:
        raise InvalidInputError(N_("a key pair is personal or backup, not {role!r}"), role=role)
    request = authority.load_csr(csr_pem)
    if certificate_pem is None:
        certificate = authority.issue_encryption_certificate(
            platform_authority(),
            request,
            organisation=service.organisation.name,
            service=service.name,
            days=settings.SCELLE_CERTIFICATE_DAYS,
            now=now,
        )
    else:
        certificate = certs.load_certificate(certificate_pem)
        authority.check_referenced_certificate(certificate, request, now=now)
    cn = certs.common_name(certificate.subject)
    designation = check_designation(designation or cn)
    key_hash = certs.public_key_sha256(certificate)
    with transaction.atomic():
        designation_free(service, designation, except_id=None)
        existing = KeyPair.objects.filter(service=service, public_key_sha256=key_hash).first()
        if existing is not None:
            raise RuleViolationError(
                N_("this key pair is already in the registry of {service} as {designation!r}"),
                service=service.name,
                designation=existing.designation,
            )
        key_pair = KeyPair.objects.create(
            organisation=service.organisation,
            service=service,
            designation=designation,
            role=role,
            common_name=cn[:64],
            certificate_pem=certs.certificate_pem(certificate).decode(),
            fingerprint_sha256=certs.fingerprint_sha256(certificate),
            public_key_sha256=key_hash,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            issued_by_platform=certificate_pem is None,
            on_token=on_token,
            added_by=actor,
            added_at=now,
        )
        record(
            "keypairs.key_pair.added",
            actor=actor.email,
            target=key_pair,
            organisation_id=service.organisation_id,
            details={
                "service": service.name,
                "designation": designation,
                "role": role,
                "cn": cn,
                "fingerprint_sha256": key_pair.fingerprint_sha256,
                "not_after": key_pair.not_after.isoformat(),
                "on_token": on_token,
                "issued_by_platform": key_pair.issued_by_platform,
            },
            now=now,
        )
    return key_pair


def key_pair_for(actor: User, key_pair_id: uuid.UUID | str, permission: str | None) -> KeyPair:
    """A key pair of the actor's organisation, with `permission` on its service."""
    require_agent(actor)
    try:
        key_pair = KeyPair.objects.select_related("service").get(
            id=key_pair_id, organisation_id=actor.organisation_id
        )
    except (KeyPair.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such key pair")) from None
    service_for(actor, key_pair.service_id, permission)
    return key_pair


def rename_key_pair(
    actor: User, key_pair_id: uuid.UUID | str, designation: str, *, now: dt.datetime
) -> KeyPair:
    """Change a key pair's designation; its certificate and assignments stay."""
    key_pair = key_pair_for(actor, key_pair_id, Permission.Name.MANAGE_KEYS)
    new = check_designation(designation)
    with transaction.atomic():
        designation_free(key_pair.service, new, except_id=key_pair.id)
        old = key_pair.designation
        key_pair.designation = new
        key_pair.save(update_fields=["designation"])
        record(
            "keypairs.key_pair.renamed",
            actor=actor.email,
            target=key_pair,
            organisation_id=key_pair.organisation_id,
            details={"from": old, "to": new},
            now=now,
        )
    return key_pair


def open_tenders_using(key_pair_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """{key pair id: references of the tenders not closed that use it}."""
    found: dict[uuid.UUID, list[str]] = {key_id: [] for key_id in key_pair_ids}
    rows = (
        AssignedKeyPair.objects.filter(key_pair_id__in=key_pair_ids)
        .exclude(tender__status=Tender.Status.CLOSED)
        .order_by("tender__reference")
        .values_list("key_pair_id", "tender__reference")
    )
    for key_id, reference in rows:
        found[key_id].append(reference)
    return found


def delete_key_pair(actor: User, key_pair_id: uuid.UUID | str, *, now: dt.datetime) -> KeyPair:
    """Remove a key pair from the registry, unless a tender not closed uses it (rule 4)."""
    key_pair = key_pair_for(actor, key_pair_id, Permission.Name.MANAGE_KEYS)
    with transaction.atomic():
        # Lock the row before looking at its use: a launch locks the key pairs
        # it assigns, so either it commits first and we see its tenders, or
        # we delete first and it no longer finds the key pair.
        KeyPair.objects.select_for_update().filter(id=key_pair.id).first()
        using = open_tenders_using([key_pair.id])[key_pair.id]
        if using:
            raise RuleViolationError(
                N_(
                    "the key pair {designation!r} cannot be deleted: the tenders {tenders} "
                    "use it and are not closed"
                ),
                hint=N_("Delete it once those tenders are closed."),
                designation=key_pair.designation,
                tenders=", ".join(using),
            )
        record(
            "keypairs.key_pair.deleted",
            actor=actor.email,
            target=key_pair,
            organisation_id=key_pair.organisation_id,
            details={
                "service": key_pair.service.name,
                "designation": key_pair.designation,
                "fingerprint_sha256": key_pair.fingerprint_sha256,
            },
            now=now,
        )
        key_pair.delete()
    return key_pair


@dataclass(frozen=True)
class RegistryEntry:
    """A key pair as the key page lists it."""

    key_pair: KeyPair
    open_tenders: list[str]
    """References of the tenders not closed that use it."""


@dataclass(frozen=True)
class Registry:
    """The key pairs of the services an agent may see, and what needs attention."""

    entries: list[RegistryEntry]
    warnings: list[str] = field(default_factory=list)


def registry(actor: User, *, service_id: uuid.UUID | str | None, now: dt.datetime) -> Registry:
    """The key page: key pairs of one service, or of every service the actor works on."""
    require_agent(actor)
    if service_id is not None:
        services = [service_for(actor, service_id, None)]
    else:
        services = list(
            Service.objects.filter(
                organisation_id=actor.organisation_id, permissions__user=actor
            ).distinct()
        )
    # Each key pair gets its service from `services` (not one copy per row), and who
    # added it in one more query (most were added by a handful of agents).
    by_id = {service.id: service for service in services}
    key_pairs = list(
        KeyPair.objects.filter(service__in=services)
        .prefetch_related("added_by")
        .order_by("service__name", "designation")
    )
    for key_pair in key_pairs:
        key_pair.service = by_id[key_pair.service_id]
    using = open_tenders_using([key_pair.id for key_pair in key_pairs])
    entries = [RegistryEntry(key_pair, using[key_pair.id]) for key_pair in key_pairs]
    warnings: list[str] = []
    for service in services:
        if not any(
            key_pair.service_id == service.id and key_pair.role == KeyPair.Role.BACKUP
            for key_pair in key_pairs
        ):
            warnings.append(
                _(
                    "the service %(service)s has no backup key pair: if a personal key pair "
                    "is lost, its bids cannot be opened"
                )
                % {"service": service.name}
            )
    for entry in entries:
        key_pair = entry.key_pair
        if key_pair.not_after <= now:
            warnings.append(
                _("the key pair %(designation)s expired on %(date)s: replace it")
                % {"designation": key_pair.designation, "date": local_date(key_pair.not_after)}
            )
        elif entry.open_tenders and key_pair.not_after <= now + EXPIRY_WARNING:
            warnings.append(
                _("the key pair %(designation)s, used by %(tenders)s, expires on %(date)s")
                % {
                    "designation": key_pair.designation,
                    "tenders": ", ".join(entry.open_tenders),
                    "date": local_date(key_pair.not_after),
                }
            )
    return Registry(entries, warnings)
