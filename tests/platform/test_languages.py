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


@pytest.mark.parametrize("text", ["\x00", "\ud800"])
def test_text_no_database_takes_is_refused_not_a_server_error(
    text: str, rouen: Buyer, clock: MovableClock
) -> None:
    """JSON may carry NUL and lone surrogates; PostgreSQL refuses both: 4xx, never 500."""
    client = api_client(rouen.owner, clock)
    beat = client.post(
        "/api/assistant/heartbeat",
        {"workstation": "POSTE", "version": f"1{text}", "key_pairs": []},
        content_type="application/json",
    )
    assert beat.status_code == 422  # the schema states it
    if text == "\x00":  # a URL cannot carry a lone surrogate
        assert client.get("/api/tenders/AO%00").status_code == 404
    login = Client(HTTP_ACCEPT_LANGUAGE="en").post(
        "/api/auth/login",
        {"email": f"a{text}@rouen.fr", "password": f"x{text}" * 8},
        content_type="application/json",
    )
    assert login.status_code in (401, 422)  # 422: the JSON layer refuses a lone surrogate
