"""Habilitations: an agent who administers a service manages its agents' permissions, within
their own organisation; deactivating an agent ends every way in."""

from __future__ import annotations

import pytest
from django.test import Client

from scelle.core.errors import NotFoundError, PermissionDeniedError, RuleViolationError
from scelle.platform.accounts import services
from scelle.platform.accounts.models import Permission
from tests.platform.conftest import PASSWORD, Buyer, MovableClock, api_client

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


def test_an_administrator_grants_and_revokes_on_the_services_they_administer(
    rouen: Buyer, caen: Buyer, clock: MovableClock
) -> None:
    owner, colleague = rouen.owner, rouen.colleague
    services.change_permission(owner, colleague.id, rouen.service.id, "manage_keys",
                               granted=True, now=clock())  # fmt: skip
    assert Permission.objects.filter(user=colleague, name="manage_keys").exists()
    services.change_permission(owner, colleague.id, rouen.service.id, "manage_keys",
                               granted=False, now=clock())  # fmt: skip
    assert not Permission.objects.filter(user=colleague, name="manage_keys").exists()
    with pytest.raises(PermissionDeniedError):  # owner does not administer other_service
        services.change_permission(owner, colleague.id, rouen.other_service.id, "open",
                                   granted=True, now=clock())  # fmt: skip
    with pytest.raises(NotFoundError):  # another organisation's agent
        services.change_permission(owner, caen.owner.id, rouen.service.id, "open",
                                   granted=True, now=clock())  # fmt: skip
    with pytest.raises(RuleViolationError, match="from yourself"):
        services.change_permission(owner, owner.id, rouen.service.id, "administer",
                                   granted=False, now=clock())  # fmt: skip


def test_a_deactivated_agent_can_no_longer_log_in_nor_use_a_token_or_a_session(
    rouen: Buyer, clock: MovableClock
) -> None:
    colleague = rouen.colleague
    token_client = api_client(colleague, clock)
    session = Client(HTTP_ACCEPT_LANGUAGE="en")
    session.force_login(colleague)
    assert session.get("/tableau-de-bord/", secure=True).status_code == 200
    with pytest.raises(RuleViolationError, match="yourself"):
        services.deactivate_agent(rouen.owner, rouen.owner.id, now=clock())
    services.deactivate_agent(rouen.owner, colleague.id, now=clock())
    assert token_client.get("/api/me").status_code == 401
    assert session.get("/tableau-de-bord/", secure=True).status_code == 302
    answer = Client(HTTP_ACCEPT_LANGUAGE="en").post(
        "/api/auth/login", {"email": colleague.email, "password": PASSWORD},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 401


def test_agents_are_created_in_the_administrators_organisation(
    rouen: Buyer, clock: MovableClock
) -> None:
    created = services.create_agent(rouen.owner, "Nouvel.Agent@Rouen.fr", PASSWORD, now=clock())
    assert created.email == "nouvel.agent@rouen.fr"
    assert created.organisation_id == rouen.organisation.id
    with pytest.raises(PermissionDeniedError):
        services.create_agent(rouen.colleague, "autre@rouen.fr", PASSWORD, now=clock())
