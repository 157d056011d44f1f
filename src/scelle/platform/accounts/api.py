"""Routes: health, login and logout, who am I, the platform's CA certificate."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from scelle.core import certs
from scelle.platform.accounts import services
from scelle.platform.accounts.models import User
from scelle.platform.answers import actor, current_token
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
    return MeOut(
        email=user.email,
        organisation=OrganisationOut(
            id=user.organisation.id, name=user.organisation.name, kind=user.organisation.kind
        ),
        services=[
            ServiceOut(id=service.id, name=service.name, permissions=permissions)
            for service, permissions in services.services_held(user)
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
    time_zone: str
    """The platform's time zone (IANA name): the one people read and type times in."""


@router.get("/platform/ca", auth=None, response=AuthorityOut)
def platform_ca(request: HttpRequest) -> AuthorityOut:
    """The platform CA's certificate: bidders check recipients against it."""
    ca = platform_authority()
    return AuthorityOut(
        name=ca.name,
        certificate_pem=certs.certificate_pem(ca.certificate).decode(),
        fingerprint_sha256=certs.fingerprint_sha256(ca.certificate),
        not_after=ca.certificate.not_valid_after_utc,
        time_zone=settings.TIME_ZONE,
    )


# --- habilitations ----------------------------------------------------------------


class AgentOut(Schema):
    id: uuid.UUID
    email: str
    active: bool
    permissions: dict[str, list[str]]
    """{service id: permission names} on the services the caller administers."""


class AgentsOut(Schema):
    services: list[ServiceOut]
    """The services the caller administers."""
    agents: list[AgentOut]


def _agent(entry: services.AgentEntry) -> AgentOut:
    return AgentOut(
        id=entry.user.id,
        email=entry.user.email,
        active=entry.user.is_active,
        permissions={str(k): sorted(v) for k, v in entry.permissions.items()},
    )


@router.get("/agents", response=responses({200: AgentsOut}, 403))
def list_agents(request: HttpRequest) -> AgentsOut:
    """Habilitations: the organisation's agents and their permissions on the services the
    caller administers."""
    administered, entries = services.organisation_agents(actor(request))
    return AgentsOut(
        services=[ServiceOut(id=s.id, name=s.name, permissions=[]) for s in administered],
        agents=[_agent(entry) for entry in entries],
    )


class AgentIn(Schema):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    """The first password, to be changed by the agent."""


@router.post("/agents", response=responses({201: AgentOut}, 403, 409))
def create_agent(request: HttpRequest, payload: AgentIn) -> Status[AgentOut]:
    """A new agent of the caller's organisation, with no permission yet."""
    user = services.create_agent(actor(request), payload.email, payload.password, now=now())
    return Status(201, AgentOut(id=user.id, email=user.email, active=True, permissions={}))


PermissionName = Literal["manage_keys", "manage_tenders", "open", "administer"]


class PermissionIn(Schema):
    service: uuid.UUID
    permission: PermissionName


def _agent_after(request: HttpRequest, user: User) -> AgentOut:
    _, entries = services.organisation_agents(actor(request))
    return _agent(next(entry for entry in entries if entry.user.id == user.id))


@router.post("/agents/{user_id}/permissions", response=responses({200: AgentOut}, 403, 404, 409))
def grant_permission(request: HttpRequest, user_id: uuid.UUID, payload: PermissionIn) -> AgentOut:
    """Give an agent a permission on a service the caller administers."""
    user = services.change_permission(
        actor(request), user_id, payload.service, payload.permission, granted=True, now=now()
    )
    return _agent_after(request, user)


@router.delete(
    "/agents/{user_id}/permissions/{service_id}/{permission}",
    response=responses({200: AgentOut}, 403, 404, 409),
)
def revoke_permission(
    request: HttpRequest, user_id: uuid.UUID, service_id: uuid.UUID, permission: PermissionName
) -> AgentOut:
    """Take a permission back."""
    user = services.change_permission(
        actor(request), user_id, service_id, permission, granted=False, now=now()
    )
    return _agent_after(request, user)


@router.post("/agents/{user_id}/deactivate", response=responses({200: AgentOut}, 403, 404, 409))
def deactivate_agent(request: HttpRequest, user_id: uuid.UUID) -> AgentOut:
    """An agent who leaves: logins, tokens and sessions stop working; nothing is deleted."""
    user = services.deactivate_agent(actor(request), user_id, now=now())
    return _agent_after(request, user)
