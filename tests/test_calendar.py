"""Trading calendars: the built-in regular-hours calendar, the session clock, and the exchange_calendars
bridge (skipped, with the reason, when the optional package is absent).

Edge cases from the issue: daylight-saving switch days (2025-03-10 and 2025-11-03 still open at 09:30 New
York time, for naive and aware input), an early close, a holiday, breaks, naive vs aware series, and bars
before the open or after the close, seen both through the calendar and through the store.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_store
from sessiondata import Bar, SessionData
from sessiondata._calendar import (
    ExchangeCalendar,
    RegularHoursCalendar,
    SessionCalendar,
    SessionClock,
    SessionCursor,
    Stretch,
    WallStretch,
    minute_key,
    minute_of_day,
    to_exchange_local,
)
from sessiondata._gaps import Gap, detect_gaps, expected_minutes

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
M = timedelta(minutes=1)
DST_DAYS = [date(2025, 3, 10), date(2025, 11, 3)]

HAVE_XCALS = importlib.util.find_spec("exchange_calendars") is not None
needs_xcals = pytest.mark.skipif(
    not HAVE_XCALS, reason="exchange_calendars not installed (optional extra sessiondata[calendars])"
)
# exchange_calendars' own deprecation noise under newer pandas is not ours to fix.
quiet_xcals = pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")


def bar(ts: datetime, price: float = 10.0, volume: float = 100.0) -> Bar:
    return Bar("T", ts, price, price + 0.5, price - 0.5, price, volume)


# ------------------------------------------------------------------------------------ regular hours


def test_regular_hours_calendar_basics() -> None:
    cal = RegularHoursCalendar()
    assert isinstance(cal, SessionCalendar)
    assert cal.session_hours(date(2025, 3, 8)) is None  # no weekend sessions by default
    assert cal.session_hours(date(2025, 3, 10)) == (time(9, 30), time(16, 0))
    assert cal.breaks(date(2025, 3, 10)) == ()
    every_day = RegularHoursCalendar(weekends=True)
    assert every_day.session_hours(date(2025, 3, 8)) == (time(9, 30), time(16, 0))
    assert every_day.weekends
    assert not cal.weekends
    # The older spelling still works.
    assert RegularHoursCalendar(weekdays_only=False).weekends
    assert RegularHoursCalendar(weekdays_only=True).session_hours(date(2025, 3, 8)) is None
    with pytest.raises(ValueError, match="naive"):
        RegularHoursCalendar(time(9, 30, tzinfo=UTC), time(16, 0))


def test_minute_helpers() -> None:
    assert minute_of_day(time(9, 30, 59)) == 570
    t = datetime(2025, 3, 10, 23, 59, 30)
    assert minute_key(t + M) == minute_key(t) + 1  # consecutive across midnight
    assert to_exchange_local(datetime(2025, 3, 10, 13, 30, tzinfo=UTC), NY) == datetime(2025, 3, 10, 9, 30)
    naive = datetime(2025, 3, 10, 9, 30)
    assert to_exchange_local(naive, NY) is naive


@pytest.mark.parametrize("day", DST_DAYS, ids=str)
def test_dst_switch_days_open_at_0930_local(day: date) -> None:
    clock = SessionClock(RegularHoursCalendar())
    open_local = datetime.combine(day, time(9, 30))
    offset_h = 4 if day.month == 3 else 5  # EDT after the March switch, EST after the November one
    as_utc = open_local.replace(tzinfo=UTC) + timedelta(hours=offset_h)
    for ts in (open_local, open_local.replace(tzinfo=NY), as_utc):
        assert clock.locate(ts) == (day, 0, 390), ts
    assert clock.locate(as_utc - timedelta(hours=1)) is None  # 08:30 local: the clock change is not ignored
    assert clock.locate(as_utc + 389 * M) == (day, 389, 390)
    assert clock.locate(as_utc + 390 * M) is None  # 16:00 local
    assert expected_minutes(clock, day, aware=True)[0] == as_utc


@pytest.mark.parametrize("day", DST_DAYS, ids=str)
@pytest.mark.parametrize("style", ["naive", "new_york", "utc"])
def test_store_on_dst_switch_days(day: date, style: str) -> None:
    """Derived windows and bar quality start at 09:30 New York time whatever the timestamps' style."""
    open_local = datetime.combine(day, time(9, 30))
    offset_h = 4 if day.month == 3 else 5

    def stamp(k: int) -> datetime:
        t = open_local + k * M
        if style == "naive":
            return t
        if style == "new_york":
            return t.replace(tzinfo=NY)
        return t.replace(tzinfo=UTC) + timedelta(hours=offset_h)

    store = SessionData()
    store.start_new_session(day)
    store.add_bar("T", bar(stamp(-1)))  # 09:29: pre-market, neither derived nor counted
    for k in range(10):
        store.add_bar("T", bar(stamp(k), volume=k + 1))
    fives = store.get_bars("T", 5)
    assert [b.timestamp for b in fives] == [stamp(0), stamp(5)]
    assert [b.volume for b in fives] == [15, 40]
    assert store.get_session_metrics("T")["bar_quality"] == 100.0
    gaps = detect_gaps(store.session_clock, store.get_bars("T"), stamp(12))
    assert [(g.start, g.bar_count) for g in gaps] == [(to_exchange_style(stamp(10), style), 2)]


def to_exchange_style(ts: datetime, style: str) -> datetime:
    return ts if style == "naive" else ts.astimezone(NY)


def test_bars_before_the_open_and_after_the_close() -> None:
    day = date(2013, 10, 7)
    clock = SessionClock(RegularHoursCalendar())
    before, after = datetime(2013, 10, 7, 9, 29, 59), datetime(2013, 10, 7, 16, 0)
    assert clock.locate(before) is None
    assert clock.locate(after) is None
    assert clock.locate(after - M) == (day, 389, 390)

    store = SessionData()
    store.start_new_session(day)
    store.add_bar("T", bar(datetime(2013, 10, 7, 9, 29)))
    assert store.get_session_metrics("T")["bar_quality"] == 0.0  # no regular-session bar yet
    store.add_bar("T", bar(datetime(2013, 10, 7, 9, 30)))
    store.add_bar("T", bar(datetime(2013, 10, 7, 16, 5)))
    assert store.get_session_metrics("T")["bar_quality"] == 100.0
    assert store.get_bar_count("T") == 3
    store.end_session()
    assert [b.timestamp for b in store.get_bars("T", 5)] == [datetime(2013, 10, 7, 9, 30)]


def test_naive_and_aware_series_agree() -> None:
    clock = SessionClock(RegularHoursCalendar())
    day = date(2025, 11, 3)
    naive = [datetime(2025, 11, 3, 9, 30) + k * M for k in range(0, 390, 2)]
    aware = [t.replace(tzinfo=NY) for t in naive]
    now_n = datetime(2025, 11, 3, 16, 0)
    gaps_n = detect_gaps(clock, naive, now_n)
    gaps_a = detect_gaps(clock, aware, now_n.replace(tzinfo=NY))
    assert len(gaps_n) == 195
    assert [(g.start.replace(tzinfo=NY), g.bar_count) for g in gaps_n] == [
        (g.start, g.bar_count) for g in gaps_a
    ]
    assert [clock.locate(t) for t in naive] == [clock.locate(t) for t in aware]
    assert clock.local_date(aware[0].astimezone(ZoneInfo("Asia/Tokyo"))) == day


def test_segments_cut_out_breaks_and_tolerate_calendars_without_breaks() -> None:
    class Lunch:
        timezone = NY

        def session_hours(self, day: date) -> tuple[time, time] | None:
            return time(9, 30), time(16, 0)

        def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
            # Out of order, one overlapping the close, one empty: all handled.
            return ((time(15, 30), time(17, 0)), (time(12, 0), time(13, 0)), (time(14, 0), time(14, 0)))

    class Old:  # a calendar written before `breaks` existed
        timezone = NY

        def session_hours(self, day: date) -> tuple[time, time] | None:
            return time(9, 30), time(16, 0)

    day = date(2025, 3, 10)
    assert SessionClock(Lunch()).segments(day) == ((570, 720), (780, 930))
    assert SessionClock(Old()).segments(day) == ((570, 960),)  # type: ignore[arg-type]
    closed = SessionClock(RegularHoursCalendar(weekdays_only=True))
    assert closed.segments(date(2025, 3, 9)) == ()
    assert closed.session_keys(date(2025, 3, 9)) == ()


class _Lunch:
    """09:30-16:00 New York with a 12:00-13:00 break, every day."""

    timezone = NY

    def session_hours(self, day: date) -> tuple[time, time] | None:
        return time(9, 30), time(16, 0)

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        return ((time(12, 0), time(13, 0)),)


_ZONES = (
    None,
    NY,
    UTC,
    timezone(timedelta(hours=-4)),
    ZoneInfo("Asia/Tokyo"),
    timezone(timedelta(seconds=30)),
)


@settings(max_examples=60, deadline=None)
@given(
    lunch=st.booleans(),
    start=st.datetimes(min_value=datetime(2025, 3, 7), max_value=datetime(2025, 3, 12)),
    steps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=40),
    zones=st.lists(st.sampled_from(range(len(_ZONES))), min_size=1, max_size=40),
)
def test_session_cursor_agrees_with_the_clock(
    lunch: bool, start: datetime, steps: list[int], zones: list[int]
) -> None:
    # The cursor remembers stretches (and their wall time in the last zone seen): whatever it remembers, each
    # answer is the clock's, for bars walking forward in time across DST days, breaks and foreign zones.
    clock = SessionClock(_Lunch() if lunch else RegularHoursCalendar())
    cursor = SessionCursor(clock)
    ts = start
    for i, step in enumerate(steps):
        ts += step * M
        zone = _ZONES[zones[i % len(zones)]]
        t = ts if zone is None else ts.replace(tzinfo=NY).astimezone(zone)
        want = clock.locate(t)
        got = cursor.place(t)
        if want is None:
            assert got is None
        else:
            assert got == (*want, clock.trading_minutes_through(want[0], want[1]))
        # Another symbol's bar of the same minute (an equal, distinct object): the remembered answer.
        assert cursor.place(t.replace(second=t.second)) == got
        assert cursor.locate(t) == want


def test_session_cursor_place_remembers_only_equal_timestamps() -> None:
    # A merged replay places each minute once per symbol, then the next minute; a late bar goes back.
    clock = SessionClock(_Lunch())
    cursor = SessionCursor(clock)
    own = timezone(timedelta(hours=-5))
    for minutes in (0, 1, 1, 2, 1, 150, 151, 149, 151):
        naive = datetime(2025, 3, 10, 9, 30) + minutes * M
        want = clock.locate(naive)
        expected = None if want is None else (*want, clock.trading_minutes_through(want[0], want[1]))
        for t in (naive, naive.replace(second=0), naive.replace(tzinfo=NY), naive.replace(tzinfo=NY)):
            assert cursor.place(t) == expected
        # Equal instants in tzinfo objects of their own: placed afresh, the same answers.
        for _ in range(2):
            t = naive.replace(tzinfo=NY).astimezone(timezone(own.utcoffset(None)))
            assert cursor.place(t) == expected


def test_a_session_cursor_shared_by_threads_answers_as_the_clock() -> None:
    """A lazy store's readers share one cursor: threads placing, locating and spanning different days (each
    moving the cursor's remembered stretch under the others) under a tiny switch interval must each get the
    clock's answers, never one thread's timestamp paired with another's answer."""
    clock = SessionClock(_Lunch())
    cursor = SessionCursor(clock)
    days = [date(2025, 3, 7), date(2025, 3, 10), date(2025, 3, 11), date(2025, 11, 3)]
    walks = []
    for n, day in enumerate(days):
        zone = _ZONES[n % len(_ZONES)]
        naive = [datetime.combine(day, time(9, 0)) + k * M for k in range(0, 480, 7)]
        walks.append([t if zone is None else t.replace(tzinfo=NY).astimezone(zone) for t in naive])
    wanted = {t: clock.locate(t) for walk in walks for t in walk}
    errors: list[BaseException] = []
    start = threading.Barrier(len(walks))

    def walk(stamps: list[datetime]) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(60):
                for i, t in enumerate(stamps):
                    want = wanted[t]
                    through = None if want is None else clock.trading_minutes_through(want[0], want[1])
                    placed = None if want is None else (*want, through)
                    assert cursor.place(t) == placed
                    # An equal, distinct timestamp (another symbol's bar of that minute): the remembered
                    # answer, which must be this timestamp's even if another thread placed one between.
                    assert cursor.place(t.replace(second=t.second)) == placed
                    assert cursor.locate(t) == want
                    day, length, j, offsets = cursor.span(stamps, i, len(stamps))
                    if want is None:
                        assert (day, j) == (None, i + 1)
                    else:
                        assert (day, length, offsets[0]) == (want[0], want[2], want[1])
                        assert [clock.locate(u)[1] for u in stamps[i:j]] == offsets  # type: ignore[index]
        except BaseException as e:  # reported in the test's thread
            errors.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=walk, args=(w,), daemon=True) for w in walks]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads), "a thread did not finish before its deadline"
    assert not errors, errors


def test_session_cursor_spans_and_named_records() -> None:
    clock = SessionClock(_Lunch())
    cursor = SessionCursor(clock)
    day = date(2025, 3, 10)
    naive = [datetime(2025, 3, 10, 11, 58) + k * M for k in range(4)] + [datetime(2025, 3, 10, 13, 0)]
    # 11:58 and 11:59 are one stretch; 12:00 (the break) is outside every session.
    assert cursor.span(naive, 0, len(naive)) == (day, 390, 2, [148, 149])
    assert cursor.span(naive, 2, len(naive)) == (None, 0, 3, [])
    assert cursor.naive == Stretch(
        start=datetime(2025, 3, 10, 9, 30),
        end=datetime(2025, 3, 10, 12, 0),
        session_date=day,
        open_minute=570,
        session_length=390,
        breaks_before=0,
    )
    assert cursor.span(naive, 4, len(naive)) == (day, 390, 5, [210])
    assert cursor.naive is not None
    assert cursor.naive.breaks_before == 60
    aware = [t.replace(tzinfo=NY).astimezone(UTC) for t in naive]
    # Aware: one locate per stamp, while the day holds (the break ends the run).
    assert cursor.span(aware, 0, len(aware)) == (day, 390, 2, [148, 149])
    assert cursor.wall == WallStretch(
        tz=UTC,
        year=2025,
        month=3,
        day=10,
        first=13 * 60 + 30,
        end=16 * 60,
        session_date=day,
        open_minute=13 * 60 + 30,
        session_length=390,
        breaks_before=0,
    )
    # A zone whose offset has seconds cannot be read from wall fields: no wall stretch, same answers.
    odd = timezone(timedelta(hours=-5, seconds=30))
    t = naive[0].replace(tzinfo=NY).astimezone(odd)
    cursor = SessionCursor(clock)
    assert cursor.place(t) == (day, 148, 390, 149)
    assert cursor.wall is None


def test_session_keys_in_another_zone() -> None:
    clock = SessionClock(RegularHoursCalendar())
    for day in [*DST_DAYS, date(2025, 7, 1)]:
        local = clock.session_keys(day)
        for zone in (UTC, timezone(timedelta(hours=-4)), ZoneInfo("Australia/Sydney")):
            want = tuple(minute_key(t.astimezone(zone)) for t in expected_minutes(clock, day, aware=True))
            assert clock.session_keys(day, zone) == want
        assert clock.session_keys(day, NY) == local


def test_lazy_import_of_exchange_calendars() -> None:
    """The core never imports exchange_calendars; without it the bridge says which extra to install."""
    code = (
        "import sys\n"
        "import sessiondata, sessiondata._calendar, sessiondata._gaps\n"
        "assert 'exchange_calendars' not in sys.modules, 'imported eagerly'\n"
        "sys.modules['exchange_calendars'] = None  # as if not installed\n"
        "from sessiondata._calendar import ExchangeCalendar\n"
        "try:\n"
        "    ExchangeCalendar('XNYS')\n"
        "except ModuleNotFoundError as e:\n"
        "    assert 'sessiondata[calendars]' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ------------------------------------------------------------------------------- exchange_calendars


@pytest.fixture(scope="module")
def xnys() -> ExchangeCalendar:
    if not HAVE_XCALS:
        pytest.skip("exchange_calendars not installed (optional extra sessiondata[calendars])")
    return ExchangeCalendar("XNYS", start="2008-01-01", end="2026-12-31")


@needs_xcals
@quiet_xcals
def test_xnys_holidays_and_early_closes(xnys: ExchangeCalendar) -> None:
    assert xnys.name == "XNYS"
    assert xnys.timezone == NY
    assert isinstance(xnys, SessionCalendar)
    assert xnys.session_hours(date(2025, 11, 28)) == (time(9, 30), time(13, 0))  # day after Thanksgiving
    assert xnys.session_hours(date(2025, 11, 27)) is None  # Thanksgiving
    assert xnys.session_hours(date(2025, 12, 25)) is None
    assert xnys.session_hours(date(2025, 11, 29)) is None  # Saturday
    assert xnys.session_hours(date(2008, 3, 7)) == (time(9, 30), time(16, 0))
    for day in DST_DAYS:
        assert xnys.session_hours(day) == (time(9, 30), time(16, 0))
    assert xnys.breaks(date(2025, 11, 28)) == ()
    assert xnys.breaks(date(2025, 11, 27)) == ()
    with pytest.raises(ValueError, match="outside"):
        xnys.session_hours(date(2030, 1, 2))
    with pytest.raises(ValueError, match="outside"):
        xnys.breaks(date(2000, 1, 3))


@needs_xcals
@quiet_xcals
def test_half_day_afternoon_is_not_a_gap(xnys: ExchangeCalendar) -> None:
    day = date(2025, 11, 28)
    mins = expected_minutes(xnys, day)
    assert len(mins) == 210
    assert mins[-1] == datetime(2025, 11, 28, 12, 59)
    evening = datetime(2025, 11, 28, 18, 0)
    assert detect_gaps(xnys, mins, evening) == []
    gaps = detect_gaps(xnys, mins[:-5], evening, start=date(2025, 11, 26))
    # Wednesday whole (nothing present), Thanksgiving skipped, Friday's last five minutes before 13:00.
    assert gaps == [
        Gap(datetime(2025, 11, 26, 9, 30), datetime(2025, 11, 26, 16, 0), 390),
        Gap(datetime(2025, 11, 28, 12, 55), datetime(2025, 11, 28, 13, 0), 5),
    ]


@needs_xcals
@quiet_xcals
def test_store_with_exchange_calendar_on_a_half_day(xnys: ExchangeCalendar) -> None:
    store = SessionData(calendar=xnys)
    day = date(2025, 11, 28)
    store.start_new_session(day)
    open_ = datetime(2025, 11, 28, 9, 30, tzinfo=NY)
    for k in range(205, 215):  # 12:55 .. 13:04: the last five are after the early close
        store.add_bar("T", bar(open_ + k * M))
    store.end_session()
    assert [b.timestamp for b in store.get_bars("T", 5)] == [open_ + 205 * M]
    assert store.get_bar_count("T") == 10


@needs_xcals
@quiet_xcals
def test_xhkg_lunch_break() -> None:
    hk = ExchangeCalendar("XHKG", start="2025-01-01", end="2025-12-31")
    tz = ZoneInfo("Asia/Hong_Kong")
    day = date(2025, 6, 3)
    assert hk.timezone == tz
    assert hk.session_hours(day) == (time(9, 30), time(16, 0))
    assert hk.breaks(day) == ((time(12, 0), time(13, 0)),)
    assert hk.breaks(date(2025, 12, 24)) == ()  # half day, morning only
    mins = expected_minutes(hk, day, aware=True)
    assert len(mins) == 330
    assert datetime(2025, 6, 3, 12, 30, tzinfo=tz) not in mins
    gaps = detect_gaps(hk, [], datetime(2025, 6, 3, 17, 0, tzinfo=tz))
    assert [(g.start.time(), g.end.time(), g.bar_count) for g in gaps] == [
        (time(9, 30), time(12, 0), 150),
        (time(13, 0), time(16, 0), 180),
    ]


@needs_xcals
@quiet_xcals
def test_exchange_calendar_construction_errors() -> None:
    import exchange_calendars as xcals  # type: ignore[import-untyped,unused-ignore]
    import pandas as pd

    # A schedule the (open, close) rule cannot express: a session longer than 24 hours.
    class TooLong:
        name = "LONG"
        tz = "UTC"
        first_session = last_session = pd.Timestamp("2025-06-03")
        schedule = pd.DataFrame(
            {
                "open": [pd.Timestamp("2025-06-02 08:00", tz="UTC")],
                "close": [pd.Timestamp("2025-06-03 09:00", tz="UTC")],
                "break_start": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
                "break_end": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
            }
        ).set_axis(pd.DatetimeIndex([pd.Timestamp("2025-06-03")]))

    with pytest.raises(ValueError, match="longer than 24 hours"):
        ExchangeCalendar(TooLong())

    built = xcals.get_calendar("XLON")
    assert ExchangeCalendar(built).session_hours(date(2025, 6, 3)) == (time(8, 0), time(16, 30))
    with pytest.raises(ValueError, match="start/end"):
        ExchangeCalendar(built, start="2020-01-01")


@needs_xcals
@quiet_xcals
@pytest.mark.parametrize("batch", [False, True])
def test_store_on_a_calendar_with_a_lunch_break(batch: bool) -> None:
    # XHKG trades 09:30-12:00 and 13:00-16:00: break minutes are not trading minutes for bar quality, and a
    # print made during the break is stored but never opens a derived window of its own.
    hk = ExchangeCalendar("XHKG", start="2025-01-01", end="2025-12-31")
    tz = ZoneInfo("Asia/Hong_Kong")
    store = SessionData(calendar=hk, derived_intervals=(5, 60))
    open_ = datetime(2025, 6, 3, 9, 30, tzinfo=tz)
    M = timedelta(minutes=1)
    minutes = [*range(150), 160, *range(210, 230)]  # the whole morning, one print at 12:10, 13:00-13:19
    bars = [Bar("HK", open_ + k * M, 10.0, 11.0, 9.0, 10.5, 100) for k in minutes]
    if batch:
        store.add_bars_batch("HK", bars)
    else:
        for b in bars:
            store.add_bar("HK", b)
    check_store(store)
    m = store.get_session_metrics("HK")
    assert m["bar_count"] == len(minutes)
    # 170 trading minutes present of the 150 + 20 that have elapsed by 13:19 (the break is not counted).
    assert m["bar_quality"] == 100.0
    starts = [b.timestamp for b in store.get_bars("HK", 5)]
    assert open_ + 160 * M not in starts  # 12:10 lies in the break: no 5-minute window opens there
    assert starts[-4:] == [open_ + k * M for k in (210, 215, 220, 225)]  # 13:00 .. 13:15, all complete
    store.end_session()
    check_store(store)
