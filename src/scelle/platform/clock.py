"""The platform's time: read from the clock in settings, so tests can move it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


def now() -> dt.datetime:
    """The current time, timezone-aware, from `settings.SCELLE_CLOCK`."""
    return settings.SCELLE_CLOCK()


def local_time(moment: dt.datetime) -> str:
    """A moment as people read it in messages: in the platform's time zone, named, written
    the way the active language writes dates ("1 mars 2027 12:00", "March 1, 2027, noon")."""
    from django.utils import formats, timezone

    shown = formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    return f"{shown} ({settings.TIME_ZONE})"


def local_date(moment: dt.datetime) -> str:
    """A day as people read it in messages, in the platform's time zone and the active
    language ("1 mars 2027", "March 1, 2027")."""
    from django.utils import formats, timezone

    return formats.date_format(timezone.localtime(moment), "DATE_FORMAT")
