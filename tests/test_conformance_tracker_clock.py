"""Conformance audit: the deprecated `SessionTracker` and the simulated clock on other markets and on
clock-change days (the night clocks go back repeats 01:00-02:00 in New York: in one ZoneInfo, 01:10 EST
(``fold=1``) is later than 01:50 EDT, yet Python compares the two by wall time).
"""

from __future__ import annotations

import threading
import warnings
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sessiondata import (
    Bar,
    InvalidDataError,
    RegularHoursCalendar,
    SessionData,
    TimeProvider,
    get_session_data,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from sessiondata.session_tracker import SessionTracker, get_session_tracker, reset_session_tracker

NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc
FALL_BACK = date(2024, 11, 3)
EDT_0150 = datetime(2024, 11, 3, 1, 50, tzinfo=NY)  # 05:50 UTC, first pass
EST_0110 = datetime(2024, 11, 3, 1, 10, tzinfo=NY, fold=1)  # 06:10 UTC, second pass: later


@pytest.fixture(autouse=True)
def _fresh_tracker() -> None:
    reset_session_tracker()


def test_tracker_last_update_is_the_latest_instant_on_the_night_clocks_go_back() -> None:
    tracker = SessionTracker()
    tracker.update_session("BTC", FALL_BACK, 10, 9, 1.5, EDT_0150)
    metrics = tracker.update_session("BTC", FALL_BACK, 10, 9, 1.5, EST_0110)
    assert metrics.last_update is not None
    assert metrics.last_update.astimezone(UTC) == EST_0110.astimezone(UTC)
    # The earlier instant (01:50 EDT again) does not move it back.
    metrics = tracker.update_session("BTC", FALL_BACK, 10, 9, 1.5, EDT_0150)
    assert metrics.last_update is not None
    assert metrics.last_update.astimezone(UTC) == EST_0110.astimezone(UTC)


@pytest.mark.parametrize("first_aware", [True, False])
def test_tracker_refuses_mixing_naive_and_aware_and_changes_nothing(first_aware: bool) -> None:
    tracker = SessionTracker()
    aware, naive = datetime(2024, 1, 8, 17, 0, tzinfo=CHI), datetime(2024, 1, 8, 17, 1)
    first, second = (aware, naive) if first_aware else (naive, aware)
    before = tracker.update_session("ES", date(2024, 1, 9), 10, 9, 100, first)
    with pytest.raises(InvalidDataError, match="naive"):
        tracker.update_session("ES", date(2024, 1, 9), 12, 8, 100, second)
    assert tracker.get_session_metrics("ES", date(2024, 1, 9)) == before


@pytest.mark.parametrize("symbol", [None, 5, ("ES",)])
def test_tracker_reads_a_symbol_that_is_not_a_string_as_unknown(symbol: object) -> None:
    metrics = SessionTracker().get_session_metrics(symbol, date(2024, 1, 9))  # type: ignore[arg-type]
    assert (metrics.session_volume, metrics.session_high, metrics.session_low, metrics.last_update) == (
        0,
        None,
        None,
        None,
    )


def test_tracker_normalises_symbols_as_the_store_does() -> None:
    """Upper-cased and stripped, as everywhere in the library: ' es ' and 'ES' are one symbol; a write for a
    symbol that is not a non-empty str is an InvalidDataError."""
    tracker = SessionTracker()
    tracker.update_session(" es ", date(2024, 1, 9), 2, 1, 5, datetime(2024, 1, 9, 1, 0))
    assert tracker.get_session_metrics("ES", date(2024, 1, 9)).session_volume == 5
    assert tracker.get_session_metrics(" Es", date(2024, 1, 9)).session_volume == 5
    assert tracker.get_session_metrics("   ", date(2024, 1, 9)).session_volume == 0
    with pytest.raises(InvalidDataError):
        tracker.reset_session(None, date(2024, 1, 9))  # type: ignore[arg-type]
    tracker.reset_session(" es", date(2024, 1, 9))
    assert tracker.get_session_metrics("ES", date(2024, 1, 9)).session_volume == 0


def test_tracker_falls_back_to_the_store_by_session_date_on_an_overnight_calendar() -> None:
    """The process-wide store's bars are found under their session date; the tracker's own updates for a
    Globex session (opening the evening before) are keyed by the caller's date and stay separate."""
    store = get_session_data()
    store.add_bar("SPY", Bar("SPY", datetime(2024, 1, 8, 9, 30), 1, 2, 1, 2, 5))
    tracker = get_session_tracker()
    assert tracker.get_session_metrics("spy", date(2024, 1, 8)).session_volume == 5
    assert tracker.get_session_metrics("spy", date(2024, 1, 9)).session_volume == 0
    sunday_open = datetime(2013, 10, 6, 17, 0, tzinfo=CHI)
    for i in range(3):
        tracker.update_session("es", date(2013, 10, 7), 1676, 1674, 10, sunday_open + timedelta(minutes=i))
    got = tracker.get_session_metrics("ES", date(2013, 10, 7))
    assert (got.session_volume, got.last_update) == (30, sunday_open + timedelta(minutes=2))


@pytest.mark.usefixtures("switch_often")
def test_tracker_updates_from_threads_are_all_counted_across_midnight() -> None:
    tracker = get_session_tracker()
    start = datetime(2018, 4, 4, 23, 30, tzinfo=UTC)

    def feed(offset: int) -> None:
        for i in range(offset, 60, 4):
            tracker.update_session("BTC", date(2018, 4, 5), 6000 + i, 5999, 0.5, start + timedelta(minutes=i))

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    got = tracker.get_session_metrics("BTC", date(2018, 4, 5))
    assert (got.session_volume, got.session_high, got.last_update) == (
        30.0,
        6059,
        start + timedelta(minutes=59),
    )


def test_clock_listeners_run_when_the_clock_moves_into_the_repeated_hour() -> None:
    """`on_advance` listeners run each time the simulated clock moves to a later time: 01:50 EDT to
    01:10 EST (one ZoneInfo) is 20 minutes later, and 01:30 EDT to 01:30 EST an hour, though Python calls
    the two equal (same tzinfo: wall time, fold ignored)."""
    clock = TimeProvider(timezone=NY)
    seen: list[datetime] = []
    clock.on_advance(seen.append)
    clock.advance_to(datetime(2024, 11, 3, 1, 30, tzinfo=NY))
    clock.advance_to(datetime(2024, 11, 3, 1, 30, tzinfo=NY, fold=1))  # an hour later, same wall time
    assert [t.astimezone(UTC).hour for t in seen] == [5, 6]
    assert clock.now().astimezone(UTC) == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)


def test_clock_listeners_do_not_run_for_the_same_instant_in_another_zone() -> None:
    clock = TimeProvider(timezone=NY)
    seen: list[datetime] = []
    clock.on_advance(seen.append)
    clock.advance_to(datetime(2024, 11, 3, 1, 30, tzinfo=NY))  # 05:30 UTC, an ambiguous wall time
    clock.advance_to(datetime(2024, 11, 3, 5, 30, tzinfo=UTC))  # the same instant: not a move
    assert len(seen) == 1


def test_clock_wait_until_across_the_repeated_hour_with_a_real_thread() -> None:
    """A waiter for 06:10 UTC is released when the clock reaches 01:10 EST, not at 01:10 EDT."""
    clock = TimeProvider(timezone=NY, start=datetime(2024, 11, 3, 0, 0, tzinfo=NY))
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(clock.wait_until(EST_0110.astimezone(UTC), timeout=30))
    )
    waiter.start()
    clock.advance_to(datetime(2024, 11, 3, 1, 10, tzinfo=NY))  # first pass: 05:10 UTC, not yet
    assert not clock.wait_until(EST_0110.astimezone(UTC), timeout=0)
    clock.advance_to(EST_0110)
    waiter.join(timeout=30)
    assert result == [True]


def test_overnight_store_rollover_follows_the_session_date_on_a_calendar_with_weekends() -> None:
    """start_new_session given a timestamp names that timestamp's session (the calendar's, not the local
    date) on every market: Globex Sunday evening -> Monday, FX Friday 16:59 -> Friday, crypto -> its day."""
    globex = RegularHoursCalendar(time(17, 0), time(16, 15), CHI)
    fx = RegularHoursCalendar(time(17, 0), time(17, 0), NY)
    crypto = RegularHoursCalendar(time(0), time(0), "UTC", weekends=True)
    cases = [
        (globex, datetime(2013, 10, 6, 17, 0, tzinfo=CHI), date(2013, 10, 7)),
        (globex, datetime(2013, 10, 6, 22, 0, tzinfo=UTC), date(2013, 10, 7)),  # 17:00 CDT in UTC
        (fx, datetime(2024, 1, 12, 16, 59), date(2024, 1, 12)),
        (fx, datetime(2024, 1, 11, 22, 0, tzinfo=UTC), date(2024, 1, 12)),  # Thursday 17:00 EST
        (crypto, datetime(2018, 4, 7, 23, 59, tzinfo=UTC), date(2018, 4, 7)),
    ]
    for calendar, ts, want in cases:
        store = SessionData(calendar=calendar)
        store.start_new_session(ts)
        assert store.current_session_date == want, (calendar, ts)
