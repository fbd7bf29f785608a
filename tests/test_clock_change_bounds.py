"""`SessionClock.clock_change`: where a session's clocks change, and the bounds it gives a derived window of
wall minute offsets (`ClockChange.bounds`), checked against hand-worked New York examples: the skipped hour is
cut out, the repeated hour's windows span both passes less the hour between them (instants), and bars
stamped in the exchange zone get wall times moved out of the skipped hour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sessiondata import RegularHoursCalendar
from sessiondata._calendar import SessionClock

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
SPRING = date(2018, 3, 11)
FALL = date(2018, 11, 4)


def clock(start: time = time(0), end: time = time(0), weekends: bool = True) -> SessionClock:
    return SessionClock(RegularHoursCalendar(start, end, NY, weekends=weekends))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_no_change_on_an_ordinary_day_a_closed_day_or_a_session_the_change_misses() -> None:
    assert clock().clock_change(date(2018, 3, 12)) is None
    assert clock(weekends=False).clock_change(SPRING) is None  # a Sunday: no session
    assert clock(time(9, 30), time(16, 0), weekends=True).clock_change(SPRING) is None  # opens after it


@pytest.mark.parametrize(
    ("day", "at", "before", "after"),
    [(SPRING, datetime(2018, 3, 11, 7, 0), -5, -4), (FALL, datetime(2018, 11, 4, 6, 0), -4, -5)],
)
def test_the_change_is_found(day: date, at: datetime, before: int, after: int) -> None:
    change = clock().clock_change(day)
    assert change is not None
    assert (change.at, change.before, change.after) == (at, timedelta(hours=before), timedelta(hours=after))
    # An overnight session (17:00 the evening before) finds the same instant.
    overnight = clock(time(17, 0), time(17, 0)).clock_change(day)
    assert overnight is not None
    assert overnight.at == at


@pytest.mark.parametrize(
    ("first", "stop", "expected"),
    [
        (0, 5, (utc(2018, 3, 11, 5, 0), utc(2018, 3, 11, 5, 5), None)),  # before the skip
        (119, 126, (utc(2018, 3, 11, 6, 59), utc(2018, 3, 11, 7, 0), None)),  # straddles it: 01:59 only
        (126, 133, (utc(2018, 3, 11, 7, 0), utc(2018, 3, 11, 7, 0), None)),  # wholly inside it: empty
        (175, 182, (utc(2018, 3, 11, 7, 0), utc(2018, 3, 11, 7, 2), None)),  # starts in it: at 03:00 EDT
        (100, 200, (utc(2018, 3, 11, 6, 40), utc(2018, 3, 11, 7, 20), None)),  # both sides, one stretch
    ],
)
def test_bounds_across_the_skipped_hour(
    first: int, stop: int, expected: tuple[datetime, datetime, None]
) -> None:
    change = clock().clock_change(SPRING)
    assert change is not None
    assert change.bounds(first, stop, UTC) == expected


@pytest.mark.parametrize(
    ("first", "stop", "expected"),
    [
        (0, 5, (utc(2018, 11, 4, 4, 0), utc(2018, 11, 4, 4, 5), None)),
        # 01:00-01:05, both passes: 05:00-05:05 UTC and 06:00-06:05 UTC.
        (
            60,
            65,
            (
                utc(2018, 11, 4, 5, 0),
                utc(2018, 11, 4, 6, 5),
                (utc(2018, 11, 4, 5, 5), utc(2018, 11, 4, 6, 0)),
            ),
        ),
        # 01:59-02:06: the first pass ends at the change, the second runs on to 02:06 EST.
        (
            119,
            126,
            (
                utc(2018, 11, 4, 5, 59),
                utc(2018, 11, 4, 7, 6),
                (utc(2018, 11, 4, 6, 0), utc(2018, 11, 4, 6, 59)),
            ),
        ),
        (120, 125, (utc(2018, 11, 4, 7, 0), utc(2018, 11, 4, 7, 5), None)),  # after: real again
        (0, 120, (utc(2018, 11, 4, 4, 0), utc(2018, 11, 4, 7, 0), None)),  # both passes, one stretch
    ],
)
def test_bounds_across_the_repeated_hour(
    first: int, stop: int, expected: tuple[datetime, datetime, tuple[datetime, datetime] | None]
) -> None:
    change = clock().clock_change(FALL)
    assert change is not None
    assert change.bounds(first, stop, UTC) == expected


def test_bounds_keep_the_zone_of_the_bars() -> None:
    spring = clock().clock_change(SPRING)
    fall = clock().clock_change(FALL)
    assert spring is not None
    assert fall is not None
    # Another zone: the same instants, as that zone's datetimes (the store's bars compare with them cheaply).
    start, end, hole = fall.bounds(60, 65, TOKYO)
    assert (start.tzinfo, end.tzinfo) == (TOKYO, TOKYO)
    assert (start, end, hole) == fall.bounds(60, 65, UTC)
    # The exchange zone: wall times (Python compares one tzinfo by wall time), out of the skipped hour.
    start, end, hole = spring.bounds(175, 182, NY)
    assert (start.replace(tzinfo=None), end.replace(tzinfo=None), hole) == (
        datetime(2018, 3, 11, 3, 0),
        datetime(2018, 3, 11, 3, 2),
        None,
    )
    assert start.tzinfo is NY
    start, end, hole = fall.bounds(60, 65, NY)
    assert (start.fold, start.replace(tzinfo=None), end.replace(tzinfo=None), hole) == (
        0,
        datetime(2018, 11, 4, 1, 0),
        datetime(2018, 11, 4, 1, 5),
        None,
    )
