"""Times as people read and type them: in the platform's time zone, named."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import click
import pytest

from scelle.assistant.times import platform_time
from scelle.cli.remote import parse_deadline

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def test_a_deadline_without_an_offset_is_the_platforms_time() -> None:
    noon = parse_deadline("2027-03-01T12:00", PARIS)
    assert noon == dt.datetime(2027, 3, 1, 11, 0, tzinfo=dt.UTC)
    summer = parse_deadline("2027-07-01 12:00", PARIS)
    assert summer == dt.datetime(2027, 7, 1, 10, 0, tzinfo=dt.UTC)
    given = parse_deadline("2027-03-01T12:00+00:00", PARIS)
    assert given == dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("moment", ["2027-03-28T02:30", "2027-10-31T02:30"])
def test_a_time_the_clocks_skip_or_repeat_is_refused(moment: str) -> None:
    with pytest.raises(click.BadParameter, match="change of time"):
        parse_deadline(moment, PARIS)


def test_platform_times_are_shown_in_its_zone_and_say_which() -> None:
    assert platform_time("2027-03-01T11:00:00Z", PARIS) == "2027-03-01 12:00 (Europe/Paris)"
    assert platform_time("2027-03-01T11:00:05+00:00", PARIS) == (
        "2027-03-01 12:00:05 (Europe/Paris)"
    )
