"""Times as the workstation shows them: in the platform's time zone (said at login), named,
the same in the command and in the assistant's window as on the pages."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from scelle.client.login import load_login
from scelle.core.errors import ScelleError

UTC = zoneinfo.ZoneInfo("UTC")


def zone_named(name: str | None) -> zoneinfo.ZoneInfo:
    """The time zone a platform named at login; UTC when it named none or one unknown here."""
    try:
        return zoneinfo.ZoneInfo(name) if name else UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def platform_zone(home: Path, *, now: dt.datetime) -> zoneinfo.ZoneInfo:
    """The platform's time zone as said at the last login; UTC when there is none (a receipt
    checked offline on a machine never logged in)."""
    try:
        return zone_named(load_login(home, now=now).time_zone)
    except ScelleError:
        return UTC


def platform_time(value: str | dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A time from the platform as people read it: 2027-03-01 12:00 (Europe/Paris)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.astimezone(zone)
    shown = f"{moment:%Y-%m-%d %H:%M}" if moment.second == 0 else f"{moment:%Y-%m-%d %H:%M:%S}"
    return f"{shown} ({zone.key})"
