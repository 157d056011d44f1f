"""The deposit page's own API token: asked for by a POST with the session's CSRF token,
short-lived, usable on the API and the tus endpoint, revoked when the session logs out."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from scelle.platform.accounts.models import ApiToken, User

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


def _logged_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_page_token_needs_the_csrf_token_lives_hours_and_ends_at_logout(bidder: User) -> None:
    client = _logged_in(bidder)
    referer: dict[str, Any] = {"HTTP_REFERER": "https://testserver/mes-depots/"}
    assert client.post("/mes-depots/jeton/", secure=True, **referer).status_code == 403
    client.get("/mes-depots/", secure=True)
    csrf = client.cookies["scelle_csrf"].value
    answer = client.post("/mes-depots/jeton/", HTTP_X_CSRFTOKEN=csrf, secure=True, **referer)
    assert answer.status_code == 200
    token = answer.json()["token"]
    stored = ApiToken.objects.get(user=bidder, revoked_at__isnull=True)
    assert (stored.expires_at - stored.created_at).total_seconds() == 12 * 3600
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/deposits").status_code == 200

    client.post("/deconnexion/", HTTP_X_CSRFTOKEN=csrf, secure=True, **referer)
    assert api.get("/api/deposits").status_code == 401
    stored.refresh_from_db()
    assert stored.revoked_at is not None
