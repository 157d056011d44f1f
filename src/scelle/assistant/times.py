"""Times as the workstation shows them: in the platform's time zone (said at login), named,
the same in the command and in the assistant's window as on the pages."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from scelle.client.login import load_login
from scelle.core.errors import ScelleError

UTC = zoneinfo.ZoneInfo("UTC")


def platform_zone(home: Path, *, now: dt.datetime) -> zoneinfo.ZoneInfo:
    """The platform's time zone as said at the last login; UTC when there is none (a receipt
    checked offline on a machine never logged in) or it is unknown here."""
    try:
        name = load_login(home, now=now).time_zone or "UTC"
        return zoneinfo.ZoneInfo(name)
    except (ScelleError, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def platform_time(value: str | dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A time from the platform as people read it: 2027-03-01 12:00 (Europe/Paris)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.astimezone(zone)
    shown = f"{moment:%Y-%m-%d %H:%M}" if moment.second == 0 else f"{moment:%Y-%m-%d %H:%M:%S}"
    return f"{shown} ({zone.key})"
