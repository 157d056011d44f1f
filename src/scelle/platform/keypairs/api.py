"""Routes of the key page: list, add (publish), rename, delete a service's key pairs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field, StrictBool

from scelle.core import certs
from scelle.platform.answers import actor
from scelle.platform.clock import now
from scelle.platform.keypairs import services
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.keypairs.models import KeyPair
from scelle.platform.schemas import responses

router = Router(tags=["key pairs"])


class KeyPairOut(Schema):
    id: uuid.UUID
    service: uuid.UUID
    service_name: str
    designation: str
    role: str
    common_name: str
    fingerprint_sha256: str
    not_before: dt.datetime
    not_after: dt.datetime
    issued_by_platform: bool
    on_token: bool
    """As the workstation said: its private key lives on a smart card or an HSM."""
    added_by: str | None
    added_at: dt.datetime
    certificate_pem: str
    open_tenders: list[str]
    """References of the tenders not closed that use this key pair."""


class RegistryOut(Schema):
    key_pairs: list[KeyPairOut]
    warnings: list[str]


class PublishedOut(KeyPairOut):
    chain_pem: list[str]
    """The issuing CA's certificate when the platform issued the certificate."""


def _out(key_pair: KeyPair, open_tenders: list[str]) -> KeyPairOut:
    return KeyPairOut(
        id=key_pair.id,
        service=key_pair.service_id,
        service_name=key_pair.service.name,
        designation=key_pair.designation,
        role=key_pair.role,
        common_name=key_pair.common_name,
        fingerprint_sha256=key_pair.fingerprint_sha256,
        not_before=key_pair.not_before,
        not_after=key_pair.not_after,
        issued_by_platform=key_pair.issued_by_platform,
        on_token=key_pair.on_token,
        added_by=key_pair.added_by.email if key_pair.added_by else None,
        added_at=key_pair.added_at,
        certificate_pem=key_pair.certificate_pem,
        open_tenders=open_tenders,
    )


@router.get("", response=responses({200: RegistryOut}, 403, 404))
def list_key_pairs(request: HttpRequest, service: uuid.UUID | None = None) -> RegistryOut:
    """The key pairs of a service (or of every service of mine), with warnings."""
    found = services.registry(actor(request), service_id=service, now=now())
    return RegistryOut(
        key_pairs=[_out(entry.key_pair, entry.open_tenders) for entry in found.entries],
        warnings=found.warnings,
    )


class PublishIn(Schema):
    service: uuid.UUID
    role: Literal["personal", "backup"] = "personal"
    designation: str | None = Field(default=None, max_length=100)
    csr_pem: str = Field(max_length=65536)
    """A PKCS#10 request signed by the key pair: proof that the sender holds it."""
    certificate_pem: str | None = Field(default=None, max_length=65536)
    """Reference this certificate as it is instead of having the platform CA issue one."""
    on_token: StrictBool = False
    """The private key lives on a token (smart card, HSM), as the workstation says."""


@router.post("", response=responses({201: PublishedOut}, 400, 403, 404, 409))
def publish(request: HttpRequest, payload: PublishIn) -> Status[PublishedOut]:
    """Add a key pair generated on the agent's workstation to a service's registry."""
    key_pair = services.publish_key_pair(
        actor(request),
        service_id=payload.service,
        designation=payload.designation,
        role=payload.role,
        csr_pem=payload.csr_pem.encode(),
        certificate_pem=payload.certificate_pem.encode() if payload.certificate_pem else None,
        now=now(),
        on_token=payload.on_token,
    )
    chain = (
        [certs.certificate_pem(platform_authority().certificate).decode()]
        if key_pair.issued_by_platform
        else []
    )
    return Status(201, PublishedOut(**_out(key_pair, []).model_dump(), chain_pem=chain))


class RenameIn(Schema):
    designation: str = Field(max_length=100)


@router.patch("/{key_pair_id}", response=responses({200: KeyPairOut}, 400, 403, 404, 409))
def rename(request: HttpRequest, key_pair_id: uuid.UUID, payload: RenameIn) -> KeyPairOut:
    """Change a key pair's designation."""
    key_pair = services.rename_key_pair(actor(request), key_pair_id, payload.designation, now=now())
    return _out(key_pair, services.open_tenders_using([key_pair.id])[key_pair.id])


@router.delete("/{key_pair_id}", response=responses({204: None}, 403, 404, 409))
def delete(request: HttpRequest, key_pair_id: uuid.UUID) -> Status[None]:
    """Remove a key pair, unless a tender not closed uses it."""
    services.delete_key_pair(actor(request), key_pair_id, now=now())
    return Status(204, None)
