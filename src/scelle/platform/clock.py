"""The platform's time: read from the clock in settings, so tests can move it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings


def now() -> dt.datetime:
    """The current time, timezone-aware, from `settings.SCELLE_CLOCK`."""
    return settings.SCELLE_CLOCK()


def local_time(moment: dt.datetime) -> str:
    """A moment as people read it in messages: in the platform's time zone, named."""
    from django.utils import timezone

    shown = timezone.localtime(moment)
    return f"{shown:%Y-%m-%d %H:%M} ({settings.TIME_ZONE})"
