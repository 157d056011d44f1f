"""The platform answers in its user's language: the API by Accept-Language (what the command
sends), the pages by the browser's language or the switch."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.platform.conftest import Buyer, MovableClock, api_client

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "adresse électronique ou mot de passe incorrect"),
        ("en", "wrong e-mail address or password"),
        ("", "adresse électronique ou mot de passe incorrect"),  # French by default
    ],
)
def test_a_refused_login_in_the_callers_language(language: str, expected: str) -> None:
    answer = Client(HTTP_ACCEPT_LANGUAGE=language).post(
        "/api/auth/login",
        {"email": "personne@example.fr", "password": "x" * 12},
        content_type="application/json",
    )
    assert answer.status_code == 401 and answer.json()["detail"] == expected


def test_a_rule_refused_in_french_names_the_tenders(rouen: Buyer, clock: MovableClock) -> None:
    client = api_client(rouen.owner, clock)
    answer = client.get("/api/tenders/AO-INCONNU", HTTP_ACCEPT_LANGUAGE="fr")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "aucune consultation AO-INCONNU"


def test_the_language_switch_of_the_pages(rouen: Buyer) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(rouen.owner)
    assert "Tableau de bord" in client.get("/tableau-de-bord/", secure=True).content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/tableau-de-bord/"}, secure=True)
    assert "Dashboard" in client.get("/tableau-de-bord/", secure=True).content.decode()
