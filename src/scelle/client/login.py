"""The saved login of a workstation: one platform identity per `SCELLE_HOME`.

`platform.json` holds the platform's URL, the e-mail address and the API
token; it is a secret, written 0600 through the core's one helper.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from scelle.core.errors import N_, NotAuthenticatedError, StoreError
from scelle.core.files import ensure_private_dir, write_private_file

LOGIN_FILE = "platform.json"
_NOT_LOGGED_IN_HINT = "Run `scelle login URL --email E` first."


@dataclass(frozen=True)
class SavedLogin:
    """Who this workstation is on which platform."""

    url: str
    """The platform's base URL."""
    email: str
    """The user's e-mail address."""
    token: str
    """The API token (a secret)."""
    expires_at: dt.datetime
    """When the platform stops accepting the token."""
    authority_pem: str | None = None
    """The platform CA's certificate as seen at login: receipts and recipients are
    checked against it, so that a CA swapped later is noticed."""
    time_zone: str | None = None
    """The platform's time zone: times are shown, and typed, in it."""


def save_login(home: Path, login: SavedLogin) -> Path:
    ensure_private_dir(home)
    document = {
        "url": login.url,
        "email": login.email,
        "token": login.token,
        "expires_at": login.expires_at.isoformat(),
        "authority_pem": login.authority_pem,
        "time_zone": login.time_zone,
    }
    path = home / LOGIN_FILE
    write_private_file(path, json.dumps(document, indent=2).encode(), overwrite=True)
    return path


def load_login(home: Path, *, now: dt.datetime) -> SavedLogin:
    """The saved login, or an error saying to log in (absent or expired)."""
    path = home / LOGIN_FILE
    if not path.is_file():
        raise NotAuthenticatedError(
            "this workstation is not logged in to a platform", hint=_NOT_LOGGED_IN_HINT
        )
    try:
        data = json.loads(path.read_text("utf-8"))
        login = SavedLogin(
            url=str(data["url"]),
            email=str(data["email"]),
            token=str(data["token"]),
            expires_at=dt.datetime.fromisoformat(data["expires_at"]),
            authority_pem=data.get("authority_pem"),
            time_zone=data.get("time_zone"),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StoreError(
            N_("{path} is damaged: log in again"),
            path=path,
        ) from error
    if login.expires_at <= now:
        raise NotAuthenticatedError(
            f"the login to {login.url} expired on {login.expires_at:%Y-%m-%d}",
            hint=_NOT_LOGGED_IN_HINT,
        )
    return login


def forget_login(home: Path) -> None:
    (home / LOGIN_FILE).unlink(missing_ok=True)
