"""Accounts: setting up organisations and users, logging in, and who may act where.

Every function that acts for a user takes that user (the actor) and the
time (`now`), and writes its audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_noop

from scelle.core.certs import check_label
from scelle.core.errors import (
    N_,
    InvalidInputError,
    NotAuthenticatedError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    TooManyAttemptsError,
)
from scelle.core.passwords import check_password_strength
from scelle.core.text import storable
from scelle.platform.accounts.models import (
    ApiToken,
    LoginThrottle,
    Organisation,
    Permission,
    Service,
    User,
    permissions_of,
)
from scelle.platform.audit.services import PLATFORM_ACTOR, record

MAX_NAME_LENGTH = 200
TOKEN_PREFIX = "scl"  # noqa: S105 - a marker, not a secret
WRONG_CREDENTIALS = gettext_noop("wrong e-mail address or password")


# --- setting up a platform (scelle admin) --------------------------------------


def _name(value: str, what: str) -> str:
    return check_label(value, what=what, max_length=MAX_NAME_LENGTH)


def create_organisation(name: str, kind: str, *, now: dt.datetime) -> Organisation:
    """A buyer or bidder organisation; names are unique on the platform."""
    name = _name(name, "an organisation's name")
    if kind not in Organisation.Kind.values:
        raise InvalidInputError(
            N_("an organisation is a buyer or a bidder, not {kind!r}"), kind=kind
        )
    with transaction.atomic():
        if Organisation.objects.filter(name__iexact=name).exists():
            raise RuleViolationError(N_("an organisation named {name!r} already exists"), name=name)
        organisation = Organisation.objects.create(name=name, kind=kind, created_at=now)
        record(
            "accounts.organisation.created",
            actor=PLATFORM_ACTOR,
            target=organisation,
            organisation_id=organisation.id,
            details={"name": name, "kind": kind},
            now=now,
        )
    return organisation


def find_organisation(name: str) -> Organisation:
    try:
        return Organisation.objects.get(name__iexact=name.strip())
    except Organisation.DoesNotExist:
        raise NotFoundError(N_("no organisation named {name!r}"), name=name) from None


def find_service(organisation: Organisation, name: str) -> Service:
    try:
        return Service.objects.get(organisation=organisation, name__iexact=name.strip())
    except Service.DoesNotExist:
        raise NotFoundError(
            N_("{organisation} has no service named {name!r}"),
            organisation=organisation.name,
            name=name,
        ) from None


def create_service(organisation: Organisation, name: str, *, now: dt.datetime) -> Service:
    """A service of a buyer organisation."""
    name = _name(name, "a service's name")
    if organisation.kind != Organisation.Kind.BUYER:
        raise RuleViolationError(
            N_("{organisation} is a company: only buyers have services"),
            organisation=organisation.name,
        )
    with transaction.atomic():
        if Service.objects.filter(organisation=organisation, name__iexact=name).exists():
            raise RuleViolationError(
                N_("{organisation} already has a service named {name!r}"),
                organisation=organisation.name,
                name=name,
            )
        service = Service.objects.create(organisation=organisation, name=name, created_at=now)
        record(
            "accounts.service.created",
            actor=PLATFORM_ACTOR,
            target=service,
            organisation_id=organisation.id,
            details={"name": name},
            now=now,
        )
    return service


def _email(value: str) -> str:
    email = value.strip().lower()
    if not storable(email):
        raise InvalidInputError(N_("{value!r} is not an e-mail address"), value=value[:80])
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInputError(N_("{value!r} is not an e-mail address"), value=value) from None
    return email


def create_user(
    email: str,
    organisation: Organisation,
    password: str,
    *,
    service: Service | None = None,
    permissions: Iterable[str] = (),
    now: dt.datetime,
) -> User:
    """A user of `organisation`, with `permissions` on `service` (buyers only)."""
    email = _email(email)
    check_password_strength(password)
    wanted = sorted(set(permissions))
    unknown = [name for name in wanted if name not in Permission.Name.values]
    if unknown:
        choices = ", ".join(Permission.Name.values)
        raise InvalidInputError(
            N_("unknown permission {name!r}; choose among {choices}"),
            name=unknown[0],
            choices=choices,
        )
    if wanted and service is None:
        raise InvalidInputError(N_("permissions are given on a service: name it"))
    if service is not None and service.organisation_id != organisation.id:
        raise InvalidInputError(
            N_("the service {service} is not one of {organisation}"),
            service=service.name,
            organisation=organisation.name,
        )
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise RuleViolationError(
                N_("a user with the address {email} already exists"), email=email
            )
        user = User(email=email, organisation=organisation, created_at=now)
        user.set_password(password)
        user.save()
        record(
            "accounts.user.created",
            actor=PLATFORM_ACTOR,
            target=user,
            organisation_id=organisation.id,
            details={"email": email},
            now=now,
        )
        if service is not None:
            grant(user, service, wanted, now=now)
    return user


def grant(user: User, service: Service, names: Iterable[str], *, now: dt.datetime) -> None:
    """Give `user` the permissions `names` on `service` (already held ones are kept)."""
    if not user.is_agent:
        raise RuleViolationError(
            N_("{email} works for a company: only agents get permissions"), email=user.email
        )
    for name in names:
        created = Permission.objects.get_or_create(user=user, service=service, name=name)[1]
        if created:
            record(
                "accounts.permission.granted",
                actor=PLATFORM_ACTOR,
                target=user,
                organisation_id=service.organisation_id,
                details={"service": service.name, "permission": name},
                now=now,
            )


# --- who may act where -------------------------------------------------------


def require_agent(actor: User) -> None:
    if not actor.is_agent:
        raise PermissionDeniedError(N_("only a public buyer's agents can do this"))


def service_for(actor: User, service_id: uuid.UUID | str, permission: str | None) -> Service:
    """A service of the actor's organisation on which the actor holds `permission`.

    Another organisation's service is "not found" (its existence is not
    revealed); one of the actor's own without the permission is "forbidden".
    With `permission` None, any permission on the service will do.
    """
    require_agent(actor)
    try:
        service = Service.objects.get(id=service_id, organisation_id=actor.organisation_id)
    except (Service.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such service")) from None
    held = Permission.objects.filter(user=actor, service=service)
    if permission is not None:
        held = held.filter(name=permission)
    if not held.exists():
        if permission is None:
            raise PermissionDeniedError(
                N_("you need a permission on the service {service}"), service=service.name
            )
        raise PermissionDeniedError(
            N_("you need the {permission} permission on the service {service}"),
            permission=permission,
            service=service.name,
        )
    return service


# --- logging in --------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: `value` is shown once and never stored."""

    value: str
    token: ApiToken


def _digest(value: str) -> str:
    # surrogatepass: an address from JSON may hold a lone surrogate; it still gets a key.
    data = value.encode("utf-8", "surrogatepass")
    return hmac.new(settings.SECRET_KEY.encode(), data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Bucket:
    """How many failed logins a bucket lets through at once, and how fast it refills."""

    name: str
    capacity: int
    """Attempts allowed in a burst."""
    refill: dt.timedelta
    """Time for one attempt to come back."""


def _buckets(address: str, client: str) -> list[tuple[str, Bucket]]:
    """The buckets an attempt draws from: its (address, client) pair, and its client
    across every address. None per address alone: whoever knows an address could
    then keep its owner out (the lockout this replaces)."""
    pair = Bucket("address", settings.SCELLE_LOGIN_MAX_FAILURES, dt.timedelta(minutes=3))
    anywhere = Bucket("client", settings.SCELLE_LOGIN_CLIENT_FAILURES, dt.timedelta(minutes=1))
    return [(_digest(f"login|{address}|{client}"), pair), (_digest(f"login||{client}"), anywhere)]


def _take_attempt(buckets: list[tuple[str, Bucket]], now: dt.datetime) -> None:
    """Take one attempt from every bucket before the password is checked (so that
    attempts sent at once count each other), or refuse with the time to wait."""
    with transaction.atomic():
        # Rows made first, then locked: two first attempts at once queue on the row.
        LoginThrottle.objects.bulk_create(
            [LoginThrottle(key=key, tokens=b.capacity, updated_at=now) for key, b in buckets],
            ignore_conflicts=True,
        )
        rows = {
            row.key: row
            for row in LoginThrottle.objects.select_for_update().filter(
                key__in=[key for key, _bucket in buckets]
            )
        }
        wait = 0.0
        for key, bucket in buckets:
            row = rows[key]
            refilled = max(0.0, (now - row.updated_at) / bucket.refill)
            row.tokens = min(float(bucket.capacity), row.tokens + refilled)
            row.updated_at = max(now, row.updated_at)
            if row.tokens < 1:
                wait = max(wait, (1 - row.tokens) * bucket.refill.total_seconds())
        if wait:
            seconds = math.ceil(wait)
            raise TooManyAttemptsError(
                N_("too many failed logins from here; try again in {seconds} seconds"),
                hint=N_("Check the address and the password."),
                retry_after=seconds,
                seconds=seconds,
            )
        for row in rows.values():
            row.tokens -= 1
            row.save(update_fields=["tokens", "updated_at"])
        # Buckets full again are of no use: the table stays small.
        kept = max(b.capacity * b.refill for _key, b in buckets)
        LoginThrottle.objects.filter(updated_at__lt=now - kept).delete()


def _give_back(buckets: list[tuple[str, Bucket]]) -> None:
    """A right password: the attempt did not count."""
    LoginThrottle.objects.filter(key__in=[key for key, _bucket in buckets]).update(
        tokens=F("tokens") + 1
    )


def check_credentials(email: str, password: str, *, client: str, now: dt.datetime) -> User:
    """The active user with this address and password, for the API and the pages alike.

    Guessing is slowed, never locked out: each attempt takes a token from the
    (address, client) bucket and from the client's bucket; a wrong password keeps
    it taken, a right one gives it back. `client` is who is asking (`client_of`).
    """
    address = email.strip().lower()
    buckets = _buckets(address, client)
    _take_attempt(buckets, now)
    readable = storable(address) and storable(password)  # else no account can match
    user = User.objects.filter(email=address, is_active=True).first() if readable else None
    if user is None:
        # The same work as a real check: no timing oracle.
        User().set_password(password if readable else "x" * len(password))
        raise NotAuthenticatedError(WRONG_CREDENTIALS)
    if not user.check_password(password):
        raise NotAuthenticatedError(WRONG_CREDENTIALS)
    _give_back(buckets)
    return user


def log_in(email: str, password: str, *, client: str, now: dt.datetime) -> IssuedToken:
    """Check the password (`check_credentials`) and issue an API token."""
    user = check_credentials(email, password, client=client, now=now)
    return _issue_token(user, dt.timedelta(days=settings.SCELLE_TOKEN_DAYS), "login", now=now)


PAGE_TOKEN_LIFETIME = dt.timedelta(hours=12)
"""How long a page's token lives: a day's deposit on a slow line; the page asks again."""


def issue_page_token(user: User, *, now: dt.datetime) -> IssuedToken:
    """A short-lived API token for a page's own script (the deposit page seals and
    uploads with it); the web session that asked for it revokes it at logout."""
    if not user.is_active:
        raise NotAuthenticatedError(N_("log in first: this needs a valid token"))
    return _issue_token(user, PAGE_TOKEN_LIFETIME, "page", now=now)


def revoke_prefixes(user: User, prefixes: Iterable[str], *, now: dt.datetime) -> None:
    """End the tokens of `user` with these prefixes (a page's, at logout)."""
    for token in ApiToken.objects.filter(user=user, prefix__in=list(prefixes)):
        revoke(token, now=now)


def _issue_token(
    user: User, lifetime: dt.timedelta, purpose: str, *, now: dt.datetime
) -> IssuedToken:
    prefix = secrets.token_hex(6)
    value = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            prefix=prefix,
            digest=_digest(value),
            created_at=now,
            expires_at=now + lifetime,
        )
        record(
            "accounts.token.created",
            actor=user.email,
            target=token,
            organisation_id=user.organisation_id,
            details={"prefix": prefix, "expires_at": token.expires_at.isoformat(), "for": purpose},
            now=now,
        )
    return IssuedToken(value, token)


def client_of(address: str) -> str:
    """Who is asking, for throttling: an IPv4 address, or an IPv6 address's /64 network
    (one household or office holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def token_for(value: str, *, now: dt.datetime) -> ApiToken | None:
    """The live token whose value this is, or None (unknown, revoked, expired)."""
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = (
        ApiToken.objects.select_related("user__organisation")
        .filter(prefix=parts[1], revoked_at__isnull=True, expires_at__gt=now)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, _digest(value)):
        return None
    if not token.user.is_active:
        return None
    return token


def revoke(token: ApiToken, *, now: dt.datetime) -> None:
    """End a token for good (`scelle logout`)."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(id=token.id, revoked_at__isnull=True).update(
            revoked_at=now
        )
        if updated:
            record(
                "accounts.token.revoked",
                actor=token.user.email,
                target=token,
                organisation_id=token.user.organisation_id,
                details={"prefix": token.prefix},
                now=now,
            )


class UserSummary(TypedDict):
    email: str
    active: bool
    permissions: list[str]


class OrganisationSummary(TypedDict):
    name: str
    kind: str
    services: list[str]
    users: list[UserSummary]


def organisation_summary() -> list[OrganisationSummary]:
    """Everything `scelle admin list` shows: organisations, services, users, permissions."""
    listing: list[OrganisationSummary] = []
    for organisation in Organisation.objects.prefetch_related("services", "users"):
        users: list[UserSummary] = []
        for user in organisation.users.all():
            held = Permission.objects.filter(user=user).select_related("service")
            users.append(
                {
                    "email": user.email,
                    "active": user.is_active,
                    "permissions": sorted(f"{p.service.name}: {p.name}" for p in held),
                }
            )
        listing.append(
            {
                "name": organisation.name,
                "kind": organisation.kind,
                "services": [service.name for service in organisation.services.all()],
                "users": users,
            }
        )
    return listing


# --- habilitations: agents who administer a service manage its agents' permissions ------


def services_with(actor: User, permission: str) -> list[Service]:
    """The services of the actor's organisation on which the actor holds `permission`."""
    return list(
        Service.objects.filter(
            organisation_id=actor.organisation_id,
            permissions__user=actor,
            permissions__name=permission,
        ).order_by("name")
    )


def _administered(actor: User) -> list[Service]:
    """The services on which the actor holds `administer`; none is "forbidden"."""
    require_agent(actor)
    services = services_with(actor, Permission.Name.ADMINISTER)
    if not services:
        raise PermissionDeniedError(N_("you need the administer permission on a service"))
    return services


def _agent_of(actor: User, user_id: uuid.UUID | str) -> User:
    """An agent of the actor's organisation; anyone else is "not found"."""
    try:
        return User.objects.get(id=user_id, organisation_id=actor.organisation_id)
    except (User.DoesNotExist, ValidationError, ValueError):
        raise NotFoundError(N_("no such agent")) from None


@dataclass(frozen=True)
class AgentEntry:
    """An agent as the Habilitations page lists it."""

    user: User
    permissions: dict[uuid.UUID, set[str]]
    """{service id: permission names} on the services the viewer administers."""


def organisation_agents(actor: User) -> tuple[list[Service], list[AgentEntry]]:
    """Habilitations: the services the actor administers, and every agent of the
    organisation with their permissions on those services."""
    services = _administered(actor)
    held: dict[uuid.UUID, dict[uuid.UUID, set[str]]] = {}
    for user_id, service_id, name in Permission.objects.filter(service__in=services).values_list(
        "user_id", "service_id", "name"
    ):
        held.setdefault(user_id, {}).setdefault(service_id, set()).add(name)
    users = User.objects.filter(organisation_id=actor.organisation_id).order_by("email")
    return services, [AgentEntry(user, held.get(user.id, {})) for user in users]


def create_agent(actor: User, email: str, password: str, *, now: dt.datetime) -> User:
    """A new agent of the actor's organisation, with no permission yet."""
    _administered(actor)
    address = _email(email)
    check_password_strength(password)
    with transaction.atomic():
        if User.objects.filter(email__iexact=address).exists():
            raise RuleViolationError(
                N_("a user with the address {email} already exists"), email=address
            )
        user = User(email=address, organisation_id=actor.organisation_id, created_at=now)
        user.set_password(password)
        user.save()
        record(
            "accounts.user.created",
            actor=actor.email,
            target=user,
            organisation_id=actor.organisation_id,
            details={"email": address},
            now=now,
        )
    return user


def _check_permission_name(name: str) -> str:
    if name not in Permission.Name.values:
        choices = ", ".join(Permission.Name.values)
        raise InvalidInputError(
            N_("unknown permission {name!r}; choose among {choices}"),
            name=name[:40],
            choices=choices,
        )
    return name


def change_permission(
    actor: User,
    user_id: uuid.UUID | str,
    service_id: uuid.UUID | str,
    name: str,
    *,
    granted: bool,
    now: dt.datetime,
) -> User:
    """Grant or revoke one permission of an agent on a service the actor administers."""
    name = _check_permission_name(name)
    service = service_for(actor, service_id, Permission.Name.ADMINISTER)
    user = _agent_of(actor, user_id)
    if not user.is_active:
        raise RuleViolationError(N_("{email} is deactivated"), email=user.email)
    if not granted and user.id == actor.id and name == Permission.Name.ADMINISTER:
        raise RuleViolationError(
            N_("you cannot take the administer permission from yourself: ask another administrator")
        )
    with transaction.atomic():
        if granted:
            changed = Permission.objects.get_or_create(user=user, service=service, name=name)[1]
        else:
            changed = bool(
                Permission.objects.filter(user=user, service=service, name=name).delete()[0]
            )
        if changed:
            record(
                "accounts.permission.granted" if granted else "accounts.permission.revoked",
                actor=actor.email,
                target=user,
                organisation_id=actor.organisation_id,
                details={"service": service.name, "permission": name},
                now=now,
            )
    return user


def deactivate_agent(actor: User, user_id: uuid.UUID | str, *, now: dt.datetime) -> User:
    """An agent who leaves: no login, token or session works any more; nothing is deleted."""
    _administered(actor)
    user = _agent_of(actor, user_id)
    if user.id == actor.id:
        raise RuleViolationError(N_("you cannot deactivate yourself"))
    with transaction.atomic():
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
            ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
            record(
                "accounts.user.deactivated",
                actor=actor.email,
                target=user,
                organisation_id=actor.organisation_id,
                details={"email": user.email},
                now=now,
            )
    return user


def services_held(user: User) -> list[tuple[Service, list[str]]]:
    """The services `user` holds a permission on, by name, each with the permissions
    held (sorted): what the dashboard and `GET /api/me` show."""
    held = permissions_of(user)
    return [
        (service, sorted(held[service.id]))
        for service in Service.objects.filter(id__in=held).order_by("name")
    ]
