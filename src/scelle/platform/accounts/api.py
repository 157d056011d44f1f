"""Routes: health, login and logout, who am I, the platform's CA certificate."""

from __future__ import annotations

import datetime as dt
import uuid

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.core import certs
from scelle.platform.accounts import services
from scelle.platform.accounts.models import Permission, Service, User
from scelle.platform.api import actor, current_token
from scelle.platform.clock import now
from scelle.platform.keypairs.authority import platform_authority
from scelle.platform.schemas import responses

router = Router(tags=["accounts"])


class HealthOut(Schema):
    status: str


@router.get("/health", auth=None, response=HealthOut)
def health(request: HttpRequest) -> dict[str, str]:
    """200 once the server is ready."""
    return {"status": "ok"}


class LoginIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class OrganisationOut(Schema):
    id: uuid.UUID
    name: str
    kind: str


class ServiceOut(Schema):
    id: uuid.UUID
    name: str
    permissions: list[str]


class MeOut(Schema):
    email: str
    organisation: OrganisationOut
    services: list[ServiceOut]
    """The services the user holds a permission on, with those permissions."""


class LoginOut(Schema):
    token: str
    expires_at: dt.datetime
    user: MeOut


def _me(user: User) -> MeOut:
    held: dict[uuid.UUID, list[str]] = {}
    for service_id, name in Permission.objects.filter(user=user).values_list("service_id", "name"):
        held.setdefault(service_id, []).append(name)
    services_ = Service.objects.filter(id__in=held).order_by("name")
    return MeOut(
        email=user.email,
        organisation=OrganisationOut(
            id=user.organisation.id, name=user.organisation.name, kind=user.organisation.kind
        ),
        services=[
            ServiceOut(id=service.id, name=service.name, permissions=sorted(held[service.id]))
            for service in services_
        ],
    )


@router.post("/auth/login", auth=None, response=responses({200: LoginOut}, 429))
def login(request: HttpRequest, payload: LoginIn) -> LoginOut:
    """Exchange an e-mail address and a password for an API token."""
    client = services.client_of(request.META.get("REMOTE_ADDR", ""))
    issued = services.log_in(payload.email, payload.password, client=client, now=now())
    return LoginOut(
        token=issued.value, expires_at=issued.token.expires_at, user=_me(issued.token.user)
    )


@router.post("/auth/logout", response=responses({204: None}))
def logout(request: HttpRequest) -> Status[None]:
    """Revoke the token of this request."""
    services.revoke(current_token(request), now=now())
    return Status(204, None)


@router.get("/me", response=responses({200: MeOut}))
def me(request: HttpRequest) -> MeOut:
    """The logged-in user, the organisation, and the permissions per service."""
    return _me(actor(request))


class AuthorityOut(Schema):
    name: str
    certificate_pem: str
    fingerprint_sha256: str
    not_after: dt.datetime


@router.get("/platform/ca", auth=None, response=AuthorityOut)
def platform_ca(request: HttpRequest) -> AuthorityOut:
    """The platform CA's certificate: bidders check recipients against it."""
    ca = platform_authority()
    return AuthorityOut(
        name=ca.name,
        certificate_pem=certs.certificate_pem(ca.certificate).decode(),
        fingerprint_sha256=certs.fingerprint_sha256(ca.certificate),
        not_after=ca.certificate.not_valid_after_utc,
    )
