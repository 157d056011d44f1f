"""A workstation's login to a platform: the token kept in its home, with the platform CA
seen at login (every later check of recipients and receipts is against that one) and the
platform's time zone. `scelle login`, `scelle logout` and the assistant share them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scelle.client import api
from scelle.client.login import SavedLogin, forget_login, load_login, save_login
from scelle.core.errors import PlatformUnavailableError


@dataclass(frozen=True)
class LoggedIn:
    saved: SavedLogin
    organisation: str


def log_in(
    home: Path, url: str, email: str, password: Callable[[str], str], *, language: str
) -> LoggedIn:
    """Log in at `url`: `password` is asked with the platform's address as the client
    writes it; the token, the platform CA and its time zone are kept in `home`."""
    with api.PlatformClient(url, language=language, busy_retries=api.BUSY_RETRIES) as client:
        answer = client.login(email, password(client.url))
        platform_ca = client.platform_ca()
    saved = SavedLogin(
        url=client.url,
        email=answer["user"]["email"],
        token=answer["token"],
        expires_at=dt.datetime.fromisoformat(answer["expires_at"]),
        authority_pem=platform_ca["certificate_pem"],
        time_zone=platform_ca.get("time_zone"),
    )
    save_login(home, saved)
    return LoggedIn(saved, answer["user"]["organisation"]["name"])


def log_out(home: Path, *, now: dt.datetime) -> tuple[SavedLogin, str | None]:
    """Revoke the workstation's token on its platform and forget it here. Returns the login
    forgotten, and why the platform could not be told (None when it was)."""
    saved = load_login(home, now=now)
    unreachable = None
    try:
        with api.PlatformClient(saved.url, saved.token) as client:
            client.logout()
    except PlatformUnavailableError as error:
        unreachable = error.message
    forget_login(home)
    return saved, unreachable
