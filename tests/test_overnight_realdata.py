"""Real overnight and 24/7 bars (../shared/data/real/quantconnect_lean_overnight, tests only; skipped with
the reason when absent): CME E-mini S&P futures (ESZ13, 10 Globex sessions of October 2013, Chicago time)
and Coinbase BTC-EUR (3 UTC days of April 2018). The expected figures are the data README's, counted there
independently of this library: rows and missing minutes per session.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

from reference import aggregate_elapsed
from sessiondata import Bar, DataUpkeepThread, InMemoryBarRepository, SessionData
from sessiondata._calendar import ExchangeCalendar, RegularHoursCalendar, SessionClock
from sessiondata._csvio import read_csv_bars
from sessiondata._gaps import detect_gaps

CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc
M = timedelta(minutes=1)
# Globex equity-index hours of 2013: 17:00 the evening before to 16:15, halted 15:15-15:30.
CME_2013 = RegularHoursCalendar(time(17, 0), time(16, 15), CHI, breaks=[(time(15, 15), time(15, 30))])
CRYPTO = RegularHoursCalendar(time(0), time(0), "UTC", weekends=True)
needs_xcals = pytest.mark.skipif(
    importlib.util.find_spec("exchange_calendars") is None,
    reason="exchange_calendars not installed (optional extra sessiondata[calendars])",
)
quiet_xcals = pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")

# session date: (rows, missing minutes inside covered time), from the data README's ES table.
ES_SESSIONS = {
    date(2013, 10, 7): (1348, 32),
    date(2013, 10, 8): (1366, 14),
    date(2013, 10, 9): (1376, 4),
    date(2013, 10, 10): (1363, 17),
    date(2013, 10, 11): (1373, 7),
    date(2013, 10, 14): (1255, 5),  # Sunday 17:00-18:59 not in the source
    date(2013, 10, 15): (117, 3),  # only Monday 17:00-18:59
    date(2013, 10, 29): (1227, 33),  # Monday 17:00-18:59 not in the source
    date(2013, 10, 30): (1354, 26),
    date(2013, 10, 31): (120, 0),  # only Wednesday 17:00-18:59: complete
}
# UTC date: (rows, missing minutes from 00:00 to the last bar), from the README's BTC-EUR table.
BTC_DAYS = {date(2018, 4, 4): (949, 60), date(2018, 4, 5): (1395, 45), date(2018, 4, 6): (1319, 121)}


def load(real_data: Path, name: str) -> list[Bar]:
    return read_csv_bars(real_data / "quantconnect_lean_overnight" / name)


def by_session(clock: SessionClock, bars: Sequence[Bar]) -> dict[date, list[Bar]]:
    out: dict[date, list[Bar]] = {}
    for b in bars:
        out.setdefault(clock.session_date(b.timestamp), []).append(b)
    return out


def test_es_sessions_follow_the_2013_globex_schedule(real_data: Path) -> None:
    bars = load(real_data, "ES_1m.csv")
    assert len(bars) == 10_899
    clock = SessionClock(CME_2013)
    assert all(clock.locate(b.timestamp) is not None for b in bars)  # none in the halt or the shutdown
    sessions = by_session(clock, bars)
    assert {d: len(v) for d, v in sessions.items()} == {d: rows for d, (rows, _) in ES_SESSIONS.items()}
    for day, day_bars in sessions.items():
        # Missing minutes inside covered time: from the first bar (the source starts some sessions late).
        first, last = day_bars[0].timestamp, day_bars[-1].timestamp
        gaps = detect_gaps(clock, day_bars, last + M, start=first)
        assert sum(g.bar_count for g in gaps) == ES_SESSIONS[day][1], day


@pytest.mark.parametrize("batch", [False, True], ids=["bar-by-bar", "batch"])
def test_es_store_quality_and_derived_windows(real_data: Path, batch: bool) -> None:
    bars = load(real_data, "ES_1m.csv")
    store = SessionData(calendar=CME_2013, derived_intervals=(5, 15), historical_bars_trailing_days=10)
    clock = store.session_clock
    for day, day_bars in by_session(clock, bars).items():
        store.start_new_session(day)
        if batch:
            store.add_bars_batch("ES", day_bars)
        else:
            for b in day_bars:
                store.add_bar("ES", b)
        bounds = clock.session_bounds(day, aware=True)
        assert bounds is not None
        open_ = bounds[0]
        elapsed = clock.trading_minutes_through(day, (day_bars[-1].timestamp - open_) // M)
        quality = store.get_session_metrics("ES")["bar_quality"]
        assert quality == pytest.approx(100.0 * len(day_bars) / elapsed), day
        store.end_session()
        for k in (5, 15):
            assert store.get_bars("ES", k) == aggregate_elapsed(day_bars, open_, k), (day, k)
    # The complete fragment (Wednesday 17:00-18:59 of Thursday's session) scores 100%.
    assert store.get_session_metrics("ES")["bar_quality"] == 100.0
    snap = store.get_symbol_data("ES")
    assert snap is not None
    assert sorted(snap.historical_bars[1]) == sorted(ES_SESSIONS)[:-1]


def test_es_upkeep_fills_bars_missing_around_midnight(real_data: Path) -> None:
    bars = [
        b
        for b in load(real_data, "ES_1m.csv")
        if SessionClock(CME_2013).session_date(b.timestamp) == date(2013, 10, 9)
    ]
    midnight = datetime(2013, 10, 9, tzinfo=CHI)
    lost = [b for b in bars if midnight - 3 * M <= b.timestamp < midnight + 3 * M]
    assert len(lost) == 6
    kept = [b for b in bars if b not in lost and b.timestamp < midnight + 60 * M]
    store = SessionData(calendar=CME_2013)
    store.start_new_session(date(2013, 10, 9))
    store.add_bars_batch("ES", kept)
    up = DataUpkeepThread(store, InMemoryBarRepository(bars))
    status = up.run_once()["symbols"]["ES"]
    # The README's real gaps before 01:00: Tue 21:44, Wed 00:34-00:35, 00:39 (no trade: unfillable).
    assert status["gaps_found"] == 6 + 4
    assert status["bars_filled"] == 6
    assert [(a.astimezone(CHI).time(), n) for a, _, n in status["open_gaps"]] == [
        (time(21, 44), 1),
        (time(0, 34), 2),
        (time(0, 39), 1),
    ]
    assert store.get_bars("ES") == [b for b in bars if b.timestamp < midnight + 60 * M]


@needs_xcals
@quiet_xcals
def test_es_against_exchange_calendars_cmes(real_data: Path) -> None:
    bars = load(real_data, "ES_1m.csv")
    cmes = ExchangeCalendar("CMES", start="2013-10-01", end="2013-11-29")
    clock = SessionClock(cmes)
    # CMES closes at 17:00 up to exchange_calendars 4.13.2, at 16:00 from 4.13.3: then the bars of
    # 16:00-16:14 (the data's sessions end at 16:15) are no session's. Every other bar is located.
    close = cmes.session_hours(date(2013, 10, 7))[1]  # type: ignore[index]
    unlocated = {
        b.timestamp.astimezone(cmes.timezone).time() for b in bars if clock.locate(b.timestamp) is None
    }
    assert all(close <= t < time(16, 15) for t in unlocated)
    # CMES dates every bar as the 17:00 rule does.
    assert by_session(clock, bars).keys() == ES_SESSIONS.keys()


@quiet_xcals
@pytest.mark.parametrize("calendar", ["built-in", "24/7"])
def test_btc_eur_24_7_days(real_data: Path, calendar: str) -> None:
    if calendar == "24/7":
        if importlib.util.find_spec("exchange_calendars") is None:
            pytest.skip("exchange_calendars not installed (optional extra sessiondata[calendars])")
        cal = ExchangeCalendar("24/7", start="2018-04-01", end="2018-04-30")
    else:
        cal = CRYPTO
    bars = load(real_data, "BTCEUR_1m.csv")
    store = SessionData(calendar=cal, derived_intervals=(5, 15))
    clock = store.session_clock
    assert all(clock.locate(b.timestamp) is not None for b in bars)
    days = by_session(clock, bars)
    assert {d: len(v) for d, v in days.items()} == {d: rows for d, (rows, _) in BTC_DAYS.items()}
    for day, day_bars in days.items():
        gaps = detect_gaps(clock, day_bars, day_bars[-1].timestamp + M, start=day)
        assert sum(g.bar_count for g in gaps) == BTC_DAYS[day][1]
        store.start_new_session(day)
        store.add_bars_batch("BTCEUR", day_bars)
        open_ = datetime.combine(day, time(0), tzinfo=UTC)
        quality = store.get_session_metrics("BTCEUR")["bar_quality"]
        assert quality == pytest.approx(100.0 * len(day_bars) / ((day_bars[-1].timestamp - open_) // M + 1))
        store.end_session()
        for k in (5, 15):
            got, want = store.get_bars("BTCEUR", k), aggregate_elapsed(day_bars, open_, k)
            # Fractional BTC volumes: sums in another order differ in the last bits.
            assert [b.volume for b in got] == pytest.approx([b.volume for b in want], rel=1e-12)
            assert [attrs.evolve(b, volume=0) for b in got] == [attrs.evolve(b, volume=0) for b in want]
