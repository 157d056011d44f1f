"""The clock: local times placed in a zone (one rule for the command and the pages), and
the test clock the journeys move."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from scelle.core.clock import (
    TEST_CLOCK_VARIABLE,
    clock_from_environment,
    placed_in,
    shifted_clock,
    system_clock,
)

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def test_a_local_time_is_placed_in_its_zone_winter_and_summer() -> None:
    assert placed_in(dt.datetime(2027, 3, 1, 12), PARIS) == dt.datetime(
        2027, 3, 1, 11, tzinfo=dt.UTC
    )
    assert placed_in(dt.datetime(2027, 7, 1, 12), PARIS) == dt.datetime(
        2027, 7, 1, 10, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    "moment",
    [dt.datetime(2027, 3, 28, 2, 30), dt.datetime(2027, 10, 31, 2, 30)],
    ids=["skipped in spring", "twice in autumn"],
)
def test_a_time_the_clocks_skip_or_repeat_is_not_guessed(moment: dt.datetime) -> None:
    assert placed_in(moment, PARIS) is None
    assert placed_in(moment - dt.timedelta(hours=1, minutes=1), PARIS) is not None


def test_the_test_clock_moves_by_its_file_and_only_when_named(tmp_path: Path) -> None:
    assert clock_from_environment({}) is system_clock
    offset = tmp_path / "seconds"
    clock = clock_from_environment({TEST_CLOCK_VARIABLE: str(offset)})
    assert abs((clock() - system_clock()).total_seconds()) < 5  # no file yet: not moved
    offset.write_text("3600", encoding="ascii")
    assert 3590 < (clock() - system_clock()).total_seconds() < 3610
    offset.write_text("not a number", encoding="ascii")
    assert abs((shifted_clock(offset)() - system_clock()).total_seconds()) < 5
