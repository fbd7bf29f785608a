"""Sessions that open on the evening before their date (CME Globex), last the whole day (24/7), pause inside
the night, or cross a daylight-saving change: the calendar and the session clock, against an independent
reference built from the sessions' open and close datetimes.
"""

from __future__ import annotations

import importlib.util
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata._calendar import (
    ExchangeCalendar,
    RegularHoursCalendar,
    SessionClock,
    SessionCursor,
    SessionSpan,
    Stretch,
    session_span,
)
from sessiondata._gaps import detect_gaps, expected_minutes

CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc
M = timedelta(minutes=1)
# CME Globex equity-index hours of 2013: 17:00 (the evening before) to 16:15, halted 15:15-15:30.
CME_2013 = RegularHoursCalendar(time(17, 0), time(16, 15), CHI, breaks=[(time(15, 15), time(15, 30))])
needs_xcals = pytest.mark.skipif(
    importlib.util.find_spec("exchange_calendars") is None,
    reason="exchange_calendars not installed (optional extra sessiondata[calendars])",
)
quiet_xcals = pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")
MONDAY_ = date(2013, 10, 7)


@pytest.mark.parametrize(
    ("open_", "close", "span"),
    [
        (time(9, 30), time(16, 0), (570, 960)),
        (time(17, 0), time(16, 15), (-420, 975)),  # the evening before
        (time(17, 0), time(17, 0), (-420, 1020)),  # 24 hours from the evening before (CMES)
        (time(0, 0), time(0, 0), (0, 1440)),  # the whole day (24/7)
        (time(18, 0), time(0, 0), (1080, 1440)),  # until the midnight ending the date
        (time(20, 0), time(4, 0), (-240, 240)),
    ],
)
def test_session_span_rule(open_: time, close: time, span: tuple[int, int]) -> None:
    assert session_span(open_, close) == SessionSpan(*span)


def test_overnight_session_with_a_halt_is_keyed_by_its_closing_date() -> None:
    clock = SessionClock(CME_2013)
    monday, sunday = date(2013, 10, 7), date(2013, 10, 6)
    assert clock.hours(monday) == (-420, 1395)
    assert clock.hours(sunday) is None
    assert clock.hours(date(2013, 10, 5)) is None
    assert clock.segments(monday) == ((-420, 915), (930, 975))
    assert clock.trading_minutes_through(monday, 1394) == 1380  # 1,380 bars possible, as in the real data
    assert clock.session_bounds(monday) == (datetime(2013, 10, 6, 17), datetime(2013, 10, 7, 16, 15))
    assert clock.session_bounds(sunday) is None
    assert clock.stretch(monday, 420) == (0, 1335)  # the night and morning, up to the halt
    assert clock.stretch(monday, 1350) == (1350, 1395)
    assert clock.stretch(monday, 1340) == (1340, 1341)  # in the halt: not a trading minute
    assert clock.stretch(sunday, 5) == (5, 6)  # no session
    cases = {
        datetime(2013, 10, 6, 16, 59): None,  # Sunday before the open
        datetime(2013, 10, 6, 17, 0): (monday, 0, 1395),
        datetime(2013, 10, 6, 23, 59, 30): (monday, 419, 1395),
        datetime(2013, 10, 7, 0, 0): (monday, 420, 1395),
        datetime(2013, 10, 7, 15, 14): (monday, 1334, 1395),
        datetime(2013, 10, 7, 15, 15): None,  # the halt
        datetime(2013, 10, 7, 15, 30): (monday, 1350, 1395),
        datetime(2013, 10, 7, 16, 14): (monday, 1394, 1395),
        datetime(2013, 10, 7, 16, 15): None,  # the daily shutdown
        datetime(2013, 10, 7, 17, 0): (date(2013, 10, 8), 0, 1395),
        datetime(2013, 10, 4, 17, 0): None,  # Friday evening: no Saturday session
    }
    for ts, expected in cases.items():
        assert clock.locate(ts) == expected, ts
        assert clock.locate(ts.replace(tzinfo=CHI)) == expected, ts
        assert clock.locate(ts.replace(tzinfo=CHI).astimezone(UTC)) == expected, ts
    assert clock.session_date(datetime(2013, 10, 6, 18)) == monday
    assert clock.session_date(datetime(2013, 10, 7, 15, 20)) == monday  # the halt is inside the session
    assert clock.session_date(datetime(2013, 10, 7, 16, 30)) == monday  # between sessions: the local date
    assert clock.session_date(datetime(2013, 10, 6, 12)) == sunday
    assert clock.local_date(datetime(2013, 10, 6, 18)) == sunday


def test_whole_day_sessions() -> None:
    clock = SessionClock(RegularHoursCalendar(time(0), time(0), "UTC", weekends=True))
    day = date(2018, 4, 7)  # a Saturday
    assert clock.hours(day) == (0, 1440)
    assert clock.locate(datetime(2018, 4, 7, 0, 0)) == (day, 0, 1440)
    assert clock.locate(datetime(2018, 4, 7, 23, 59, tzinfo=UTC)) == (day, 1439, 1440)
    assert clock.locate(datetime(2018, 4, 8, 0, 0)) == (day + timedelta(days=1), 0, 1440)
    assert len(expected_minutes(clock, day)) == 1440


def test_a_break_on_the_opening_evening_is_placed_there() -> None:
    cal = RegularHoursCalendar(time(17, 0), time(16, 0), CHI, breaks=[(time(22, 0), time(22, 30))])
    clock = SessionClock(cal)
    tuesday = date(2013, 10, 8)
    assert clock.segments(tuesday) == ((-420, -120), (-90, 960))
    assert clock.locate(datetime(2013, 10, 7, 22, 10)) is None
    assert clock.locate(datetime(2013, 10, 7, 22, 30)) == (tuesday, 330, 1380)
    # A break across midnight.
    across = RegularHoursCalendar(time(17, 0), time(16, 0), CHI, breaks=[(time(23, 50), time(0, 10))])
    late = SessionClock(across)
    assert late.segments(tuesday) == ((-420, -10), (10, 960))


def test_breaks_are_validated() -> None:
    with pytest.raises(ValueError, match="empty"):
        RegularHoursCalendar(breaks=[(time(12), time(12))])
    with pytest.raises(ValueError, match="naive"):
        RegularHoursCalendar(breaks=[(time(12, tzinfo=UTC), time(13))])
    with pytest.raises(ValueError, match="pair of times"):
        RegularHoursCalendar(breaks=[(time(12), "13:00")])  # type: ignore[list-item]
    assert "breaks=" in repr(CME_2013)
    assert "breaks=" not in repr(RegularHoursCalendar())


def test_gaps_around_local_midnight_are_one_run() -> None:
    monday = date(2013, 10, 7)
    opened = datetime(2013, 10, 6, 17, 0)
    missing = {datetime(2013, 10, 6, 23, 58) + i * M for i in range(4)}  # 23:58 .. 00:01
    present = [opened + i * M for i in range(18 * 60) if opened + i * M not in missing]
    now = datetime(2013, 10, 7, 11, 0)  # present runs to 10:59
    gaps = detect_gaps(CME_2013, present, now)  # the session of `now` began the evening before
    assert [(g.start, g.end, g.bar_count) for g in gaps] == [
        (datetime(2013, 10, 6, 23, 58), datetime(2013, 10, 7, 0, 2), 4)
    ]
    aware = detect_gaps(CME_2013, [t.replace(tzinfo=CHI) for t in present], now.replace(tzinfo=UTC))
    assert [(g.start, g.bar_count) for g in aware] == [(datetime(2013, 10, 6, 23, 58, tzinfo=CHI), 4)]
    # Sunday evening alone: the Monday session's first minutes are missing, nothing of a Sunday session.
    evening = detect_gaps(CME_2013, [], datetime(2013, 10, 6, 17, 3))
    assert [(g.start, g.bar_count) for g in evening] == [(opened, 3)]
    assert detect_gaps(CME_2013, [], datetime(2013, 10, 6, 12, 0), start=date(2013, 10, 5)) == []
    whole = expected_minutes(CME_2013, monday)
    assert len(whole) == 1380
    assert whole[0] == opened
    assert whole[-1] == datetime(2013, 10, 7, 16, 14)


def test_spring_forward_inside_an_overnight_session() -> None:
    # Clocks go from 02:00 to 03:00 on Sunday 2013-03-10, inside a session opening Saturday 17:00.
    clock = SessionClock(RegularHoursCalendar(time(17, 0), time(16, 0), CHI, weekends=True))
    day = date(2013, 3, 10)
    assert clock.segments(day) == ((-420, 120), (180, 960))  # the skipped wall hour is not a trading minute
    open_utc = datetime(2013, 3, 9, 23, 0, tzinfo=UTC)  # 17:00 CST
    real = [open_utc + i * M for i in range(1320)]  # 23 real hours
    assert real[-1].astimezone(CHI) == datetime(2013, 3, 10, 15, 59, tzinfo=CHI)
    located = [clock.locate(t) for t in real]
    assert all(loc is not None and loc[0] == day for loc in located)
    offsets = [loc[1] for loc in located if loc is not None]
    assert len(set(offsets)) == 1320
    assert offsets[0] == 0
    assert offsets[-1] == 1379
    assert clock.trading_minutes_through(day, 1379) == 1320
    now = datetime(2013, 3, 10, 16, 0, tzinfo=CHI)
    assert detect_gaps(clock, real, now) == []
    assert detect_gaps(clock, [t.astimezone(CHI) for t in real], now) == []


def test_fall_back_inside_an_overnight_session_reports_no_false_gaps() -> None:
    # 01:00-01:59 happens twice on Sunday 2013-11-03: the repeated wall hour shares its offsets.
    clock = SessionClock(RegularHoursCalendar(time(17, 0), time(16, 0), CHI, weekends=True))
    day = date(2013, 11, 3)
    assert clock.segments(day) == ((-420, 960),)
    open_utc = datetime(2013, 11, 2, 22, 0, tzinfo=UTC)  # 17:00 CDT
    real = [open_utc + i * M for i in range(1440)]  # 24 real hours
    assert all(clock.locate(t) is not None for t in real)
    now = datetime(2013, 11, 3, 16, 0, tzinfo=CHI)
    assert detect_gaps(clock, real, now) == []
    assert detect_gaps(clock, [t.astimezone(CHI) for t in real], now) == []


def _reference_locate(cal: RegularHoursCalendar, local: datetime) -> tuple[date, int, int] | None:
    """From the session's open and close datetimes, minute by minute: no offsets arithmetic shared."""
    for day in (local.date(), local.date() + timedelta(days=1)):
        hours = cal.session_hours(day)
        if hours is None:
            continue
        # The close is on the session date (00:00: the midnight ending it), the open the latest before it.
        close_dt = datetime.combine(day, hours[1])
        if hours[1] == time(0):
            close_dt += timedelta(days=1)
        open_dt = datetime.combine(close_dt.date(), hours[0])
        while open_dt >= close_dt:
            open_dt -= timedelta(days=1)
        minute = local.replace(second=0, microsecond=0)
        if not open_dt <= minute < close_dt:
            continue
        for b_start, b_end in cal.breaks(day):
            # Every occurrence of the break that overlaps the session: one may begin before the open (the
            # day before) or run past the close; the session's minutes inside it do not trade.
            for base in (open_dt.date() - timedelta(days=1), open_dt.date(), close_dt.date()):
                lo = datetime.combine(base, b_start)
                hi = lo + (datetime.combine(base, b_end) - lo) % timedelta(days=1)
                if lo <= minute < hi:
                    return None
        return day, (minute - open_dt) // M, (close_dt - open_dt) // M
    return None


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 1439),
    end=st.integers(0, 1439),
    brk=st.none() | st.tuples(st.integers(0, 1439), st.integers(1, 120)),
    weekends=st.booleans(),
    at=st.datetimes(datetime(2013, 1, 1), datetime(2013, 12, 31)),
)
def test_locate_matches_an_independent_reference(
    start: int, end: int, brk: tuple[int, int] | None, weekends: bool, at: datetime
) -> None:
    def t(m: int) -> time:
        return time(m // 60 % 24, m % 60)

    breaks = [] if brk is None else [(t(brk[0]), t(brk[0] + brk[1]))]
    # UTC: no clock changes, which the reference does not model.
    cal = RegularHoursCalendar(t(start), t(end), "UTC", weekends=weekends, breaks=breaks)
    assert SessionClock(cal).locate(at) == _reference_locate(cal, at)


@needs_xcals
@quiet_xcals
def test_exchange_calendars_overnight_and_24_7() -> None:
    cmes = ExchangeCalendar("CMES", start="2013-10-01", end="2013-12-31")
    clock = SessionClock(cmes)
    # The hours as exchange_calendars itself schedules them: its CMES close moved from 17:00 to 16:00
    # Chicago in 4.13.3 (a 1380-minute session, was 1440), so the expected lengths come from its schedule.
    schedule = (
        importlib.import_module("exchange_calendars")
        .get_calendar("CMES", start="2013-10-01", end="2013-12-31")
        .schedule
    )

    def scheduled(day: date) -> tuple[int, int]:
        row = schedule.loc[day.isoformat()]
        opens, closes = row["open"].tz_convert(CHI), row["close"].tz_convert(CHI)
        midnight = datetime.combine(day, time(0), tzinfo=CHI)
        return (opens - midnight) // timedelta(minutes=1), (closes - opens) // timedelta(minutes=1)

    open_, length = scheduled(date(2013, 10, 7))
    assert open_ == -420  # 17:00 the evening before
    assert length in (1380, 1440)  # closing at 16:00 or 17:00
    assert clock.hours(date(2013, 10, 7)) == (open_, length)
    assert clock.locate(datetime(2013, 10, 6, 17, 0, tzinfo=CHI)) == (date(2013, 10, 7), 0, length)
    assert clock.locate(datetime(2013, 10, 7, 15, 59)) == (date(2013, 10, 7), 1379, length)
    last = datetime(2013, 10, 7, 17, 0) - timedelta(minutes=1441 - length)  # the session's last minute
    assert clock.locate(last) == (date(2013, 10, 7), length - 1, length)
    if length < 1440:  # closed from 16:00 until the next session opens at 17:00
        assert clock.locate(last + timedelta(minutes=1)) is None
    assert clock.locate(datetime(2013, 10, 7, 17, 0)) == (
        date(2013, 10, 8),
        0,
        scheduled(date(2013, 10, 8))[1],
    )
    # Thanksgiving: early close at 12:00
    assert clock.hours(date(2013, 11, 28)) == scheduled(date(2013, 11, 28)) == (-420, 1140)
    assert clock.locate(datetime(2013, 11, 28, 12, 0)) is None
    assert clock.hours(date(2013, 12, 25)) is None  # Christmas
    assert clock.locate(datetime(2013, 12, 24, 18, 0)) is None  # no session opens on Christmas Eve
    # The last date's evening: the next session is beyond the calendar's range, so nothing is located.
    assert clock.locate(datetime(2013, 12, 31, 18, 0)) is None
    crypto = SessionClock(ExchangeCalendar("24/7", start="2018-04-01", end="2018-04-30"))
    assert crypto.hours(date(2018, 4, 7)) == (0, 1440)
    assert crypto.locate(datetime(2018, 4, 7, 23, 59, tzinfo=UTC)) == (date(2018, 4, 7), 1439, 1440)
    with pytest.raises(ValueError, match="outside"):
        crypto.locate(datetime(2018, 5, 2, 0, 0))


_CURSOR_ZONES = (None, CHI, UTC, timezone(timedelta(hours=-5)), ZoneInfo("Asia/Tokyo"))
_OVERNIGHT = (
    CME_2013,
    RegularHoursCalendar(time(0), time(0), CHI, weekends=True),  # whole days, in a zone with DST
    RegularHoursCalendar(time(17), time(16), CHI, weekends=True, breaks=[(time(23, 50), time(0, 10))]),
)


@settings(max_examples=80, deadline=None)
@given(
    which=st.sampled_from(range(len(_OVERNIGHT))),
    start=st.sampled_from([datetime(2013, 3, 8), datetime(2013, 10, 4), datetime(2013, 11, 1)])
    | st.datetimes(min_value=datetime(2013, 3, 8), max_value=datetime(2013, 3, 12)),
    steps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=40),
    zones=st.lists(st.sampled_from(range(len(_CURSOR_ZONES))), min_size=1, max_size=40),
)
def test_session_cursor_agrees_with_the_clock_on_overnight_sessions(
    which: int, start: datetime, steps: list[int], zones: list[int]
) -> None:
    # Whatever stretch the cursor remembers (cut at local midnight), each answer is the clock's, for bars
    # walking forward across midnight, weekends, breaks, DST changes inside sessions and foreign zones.
    clock = SessionClock(_OVERNIGHT[which])
    cursor = SessionCursor(clock)
    ts = start
    for i, step in enumerate(steps):
        ts += step * M
        zone = _CURSOR_ZONES[zones[i % len(zones)]]
        t = ts if zone is None else ts.replace(tzinfo=CHI).astimezone(zone)
        want = clock.locate(t)
        got = cursor.place(t)
        assert got == (None if want is None else (*want, clock.trading_minutes_through(want[0], want[1])))
        assert cursor.locate(t) == want


def test_session_cursor_cuts_overnight_stretches_at_midnight() -> None:
    cursor = SessionCursor(SessionClock(CME_2013))
    stamps = [datetime(2013, 10, 6, 23, 58) + k * M for k in range(4)]  # 23:58 .. 00:01
    # One piece per local date, each with its own reference for the open (17:00 the day before = -420).
    assert cursor.span(stamps, 0, 4) == (MONDAY_, 1395, 2, [418, 419])
    assert cursor.naive == Stretch(
        start=datetime(2013, 10, 6, 17),
        end=datetime(2013, 10, 7),
        session_date=MONDAY_,
        open_minute=17 * 60,
        session_length=1395,
        breaks_before=0,
    )
    assert cursor.span(stamps, 2, 4) == (MONDAY_, 1395, 4, [420, 421])
    assert cursor.naive == Stretch(
        start=datetime(2013, 10, 7),
        end=datetime(2013, 10, 7, 15, 15),
        session_date=MONDAY_,
        open_minute=-420,
        session_length=1395,
        breaks_before=0,
    )
    assert cursor.place(datetime(2013, 10, 7, 15, 30)) == (MONDAY_, 1350, 1395, 1336)
    aware = [t.replace(tzinfo=CHI).astimezone(UTC) for t in stamps]  # 04:58 .. 05:01 UTC: one UTC date
    assert cursor.span(aware, 0, 4) == (MONDAY_, 1395, 4, [418, 419, 420, 421])


def test_date_bounds_tile_the_time_line() -> None:
    clock = SessionClock(CME_2013)
    assert CME_2013.start_time == time(17, 0)
    assert CME_2013.end_time == time(16, 15)
    friday, saturday, sunday, monday = (date(2013, 10, d) for d in (4, 5, 6, 7))
    assert clock.date_bounds(monday) == (datetime(2013, 10, 6, 17), datetime(2013, 10, 7, 17))
    assert clock.date_bounds(friday) == (datetime(2013, 10, 3, 17), datetime(2013, 10, 5))
    assert clock.date_bounds(saturday) == (datetime(2013, 10, 5), datetime(2013, 10, 6))
    assert clock.date_bounds(sunday) == (datetime(2013, 10, 6), datetime(2013, 10, 6, 17))
    assert clock.date_bounds(monday, aware=True)[0] == datetime(2013, 10, 6, 17, tzinfo=CHI)
    # Every minute of a week lies in the bounds of exactly its session date.
    t = datetime(2013, 10, 3)
    while t < datetime(2013, 10, 10):
        lo, hi = clock.date_bounds(clock.session_date(t))
        assert lo <= t < hi, t
        t += 7 * M
    assert clock.trading_minutes_through(sunday, 5) == 6  # a closed date has no breaks


@needs_xcals
@quiet_xcals
def test_date_bounds_at_the_end_of_a_bounded_calendar() -> None:
    cmes = ExchangeCalendar("CMES", start="2013-10-01", end="2013-10-31")
    assert (cmes.first_session, cmes.last_session) == (date(2013, 10, 1), date(2013, 10, 31))
    clock = SessionClock(cmes)
    # The last date's range ends at midnight: what opens that evening is beyond the calendar.
    assert clock.date_bounds(date(2013, 10, 31)) == (datetime(2013, 10, 30, 17), datetime(2013, 11, 1))
    with pytest.raises(ValueError, match="outside"):
        clock.date_bounds(date(2013, 11, 2))
