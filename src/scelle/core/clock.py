"""Time as a parameter: every rule that depends on the date takes a clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

Clock = Callable[[], dt.datetime]
"""Returns the current time, timezone-aware (UTC)."""

TEST_CLOCK_VARIABLE = "SCELLE_TEST_CLOCK_FILE"
"""Names a file of seconds that moves the clock of `scelle serve` and of the command: the
test suite's journeys pass a real server's deadline with it instead of waiting for it."""


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def shifted_clock(offset_file: Path) -> Clock:
    """The system clock moved forward by the seconds written in `offset_file`, read at
    every call (no file yet, or no number in it: not moved)."""

    def now() -> dt.datetime:
        try:
            shift = float(offset_file.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            shift = 0.0
        return system_clock() + dt.timedelta(seconds=shift)

    return now


def clock_from_environment(environ: Mapping[str, str]) -> Clock:
    """The system clock, unless the environment names a test clock's file."""
    offset_file = environ.get(TEST_CLOCK_VARIABLE)
    return shifted_clock(Path(offset_file)) if offset_file else system_clock


def placed_in(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """A local date and time (naive) as an aware moment in `zone`; None when the clocks
    skip it or go through it twice that day (a change of time): that is not guessed."""
    placed = moment.replace(tzinfo=zone)
    there_and_back = placed.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    if there_and_back != moment or placed.utcoffset() != placed.replace(fold=1).utcoffset():
        return None
    return placed
