"""Login, tokens and the slowing down of password guessing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from scelle.platform.accounts.models import ApiToken, User
from tests.platform.conftest import PASSWORD, Buyer, MovableClock, api_client

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


def login(email: str, password: str, client: str = "127.0.0.1") -> Any:
    return Client(REMOTE_ADDR=client, HTTP_ACCEPT_LANGUAGE="en").post(
        "/api/auth/login", {"email": email, "password": password}, content_type="application/json"
    )


def test_login_gives_a_token_stored_only_as_a_digest(rouen: Buyer, clock: MovableClock):
    answer = login("ACHETEUR@rouen.fr", PASSWORD)
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"]["email"] == "acheteur@rouen.fr"
    assert body["user"]["organisation"]["name"] == "Ville de Rouen"
    assert {s["name"]: s["permissions"] for s in body["user"]["services"]} == {
        "Service des marchés": ["administer", "manage_keys", "manage_tenders", "open"]
    }
    token = body["token"]
    stored = ApiToken.objects.get()
    assert token not in (stored.digest, stored.prefix) and stored.prefix in token
    assert len(stored.digest) == 64
    # Passwords are Argon2 hashes.
    assert User.objects.get(email="acheteur@rouen.fr").password.startswith("argon2")
    me = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/me")
    assert me.status_code == 200


def test_wrong_password_and_unknown_user_read_the_same(rouen: Buyer, clock):
    wrong = login("acheteur@rouen.fr", "pas le bon")
    unknown = login("personne@rouen.fr", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_guessing_is_slowed_per_address_and_client_without_locking_anyone_out(
    rouen: Buyer, clock: MovableClock, settings
):
    settings.SCELLE_LOGIN_MAX_FAILURES = 3
    guesser, owner = "203.0.113.7", "198.51.100.20"
    for _ in range(3):
        assert login("acheteur@rouen.fr", "devine", guesser).status_code == 401
    slowed = login("acheteur@rouen.fr", "encore", guesser)
    assert slowed.status_code == 429
    assert slowed["Retry-After"] == "180"  # one attempt back every 3 minutes
    assert "too many failed logins" in slowed.json()["detail"]
    # The owner, from their own workstation, logs in: nobody can lock them out.
    assert login("acheteur@rouen.fr", PASSWORD, owner).status_code == 200
    # The guesser waits; then one attempt comes back, not five.
    clock.advance(minutes=3)
    assert login("acheteur@rouen.fr", "devine", guesser).status_code == 401
    assert login("acheteur@rouen.fr", "devine", guesser).status_code == 429
    # The right password gives the attempt back: a user who mistypes is not slowed more.
    clock.advance(minutes=3)
    assert login("acheteur@rouen.fr", PASSWORD, guesser).status_code == 200
    assert login("acheteur@rouen.fr", "devine", guesser).status_code == 401


def test_one_client_guessing_across_addresses_is_slowed(rouen: Buyer, clock, settings):
    settings.SCELLE_LOGIN_CLIENT_FAILURES = 10
    answers = [
        login(f"agent{index}@rouen.fr", "devine", "203.0.113.9").status_code for index in range(40)
    ]
    assert answers.count(401) == 10 and answers.count(429) == 30
    # IPv6: the whole /64 is one client; another network is not slowed.
    for index in range(10):
        login(f"agent{index}@rouen.fr", "devine", f"2001:db8:1:2::{index + 1}")
    assert login("x@rouen.fr", "devine", "2001:db8:1:2::ffff").status_code == 429
    assert login("acheteur@rouen.fr", PASSWORD, "2001:db8:9:9::1").status_code == 200
    # The table keeps no address in clear, and forgets full buckets.
    from scelle.platform.accounts.models import LoginThrottle

    assert not LoginThrottle.objects.filter(key__contains="rouen").exists()
    clock.advance(hours=2)
    login("acheteur@rouen.fr", "devine", "198.51.100.1")
    assert LoginThrottle.objects.count() == 2


def test_tokens_expire_and_can_be_revoked(rouen: Buyer, clock: MovableClock, settings):
    client = api_client(rouen.owner, clock)
    assert client.get("/api/me").status_code == 200
    clock.advance(days=settings.SCELLE_TOKEN_DAYS, seconds=1)
    expired = client.get("/api/me")
    assert expired.status_code == 401 and "log in" in expired.json()["detail"]
    client = api_client(rouen.owner, clock)
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/me").status_code == 401
    assert ApiToken.objects.filter(revoked_at__isnull=False).count() == 1


def test_forged_and_malformed_tokens_are_refused(rouen: Buyer, clock: MovableClock):
    client = api_client(rouen.owner, clock)
    token = client.defaults["HTTP_AUTHORIZATION"].removeprefix("Bearer ")
    prefix_part = token.rsplit("_", 1)[0]
    for forged in (prefix_part + "_" + "A" * 43, "scl_x", "nonsense", token + "x"):
        answer = Client(HTTP_AUTHORIZATION=f"Bearer {forged}").get("/api/me")
        assert answer.status_code == 401, forged


def test_a_deactivated_user_is_locked_out(rouen: Buyer, clock: MovableClock):
    client = api_client(rouen.owner, clock)
    User.objects.filter(id=rouen.owner.id).update(is_active=False)
    assert client.get("/api/me").status_code == 401
    assert login("acheteur@rouen.fr", PASSWORD).status_code == 401
