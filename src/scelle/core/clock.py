"""Time as a parameter: every rule that depends on the date takes a clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware (UTC)."""


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
