"""Conformance audit beyond US equities: black-box tests through ``from sessiondata import ...`` only,
written from the contract's text (/work/shared/CONTRACT.md), on markets whose sessions cross midnight or
never close (CME Globex futures, FX, 24/7 crypto), on clock-change days, and at the edges of the input.

Expected values come from the contract and from the real data's README (counted there independently of this
library), never from the implementation. Tests that read ``../shared/data`` use the ``real_data`` fixture.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import read_csv_bars
from sessiondata import (
    Bar,
    DataManager,
    DataUpkeepThread,
    InMemoryBarRepository,
    InvalidDataError,
    Provenance,
    Quote,
    RegularHoursCalendar,
    SessionData,
    Tick,
    detect_gaps,
    expected_minutes,
)

M = timedelta(minutes=1)
UTC = timezone.utc
NY = ZoneInfo("America/New_York")
CHI = ZoneInfo("America/Chicago")
# CME Globex equity-index hours as traded in 2013 (the data README): 17:00 Chicago the evening before to
# 16:15, halted 15:15-15:30. A session has 1395 - 15 = 1380 trading minutes.
GLOBEX = RegularHoursCalendar(time(17, 0), time(16, 15), CHI, breaks=[(time(15, 15), time(15, 30))])
# Spot FX: Sunday 17:00 New York to Friday 17:00, each weekday's session opening at 17:00 the evening before.
FX = RegularHoursCalendar(time(17, 0), time(17, 0), NY)
CRYPTO = RegularHoursCalendar(time(0), time(0), "UTC", weekends=True)


def bar(symbol: str, ts: datetime, price: float = 100.0, volume: float = 10) -> Bar:
    return Bar(symbol, ts, price, price + 1, price - 1, price, volume)


def aggregate(bars: Sequence[Bar], start: datetime) -> Bar:
    """A derived bar as the contract defines it: open of the first, max high, min low, close of the last,
    summed volume (fsum: the test compares volumes with a tolerance, floats in any order)."""
    return Bar(
        bars[0].symbol,
        start,
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        math.fsum(b.volume for b in bars),
    )


def windows_from_scratch(bars: Sequence[Bar], open_: datetime, close: datetime, k: int) -> list[Bar]:
    """k-minute windows aligned to the session open ``open_`` (aware), cut at ``close``; bars outside
    ``[open_, close)`` are not derived. Real elapsed minutes: for sessions without a clock change."""
    groups: dict[int, list[Bar]] = {}
    for b in sorted(bars, key=lambda b: b.timestamp):
        if open_ <= b.timestamp < close:
            offset = int((b.timestamp - open_).total_seconds()) // 60
            groups.setdefault(offset // k, []).append(b)
    return [
        aggregate(groups[w], (open_.astimezone(UTC) + w * k * M).astimezone(open_.tzinfo))
        for w in sorted(groups)
    ]


def same_bars(got: Sequence[Bar], want: Sequence[Bar]) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        if (g.symbol, g.timestamp, g.open, g.high, g.low, g.close) != (
            w.symbol,
            w.timestamp,
            w.open,
            w.high,
            w.low,
            w.close,
        ):
            return False
        if not math.isclose(g.volume, w.volume, rel_tol=1e-12):
            return False
    return True


# --------------------------------------------------------------------------- real data (README's numbers)


def es_sessions(real_data: Path) -> dict[date, list[Bar]]:
    """ES bars by CME trading date (the README's rule: a bar at or after 17:00 CT is the next date's)."""
    out: dict[date, list[Bar]] = {}
    for b in read_csv_bars(real_data / "quantconnect_lean_overnight" / "ES_1m.csv", "ES"):
        local = b.timestamp.astimezone(CHI)
        day = local.date() + timedelta(days=1) if local.time() >= time(17, 0) else local.date()
        out.setdefault(day, []).append(b)
    return out


def btc_days(real_data: Path) -> dict[date, list[Bar]]:
    out: dict[date, list[Bar]] = {}
    for b in read_csv_bars(real_data / "quantconnect_lean_overnight" / "BTCEUR_1m.csv", "BTCEUR"):
        out.setdefault(b.timestamp.astimezone(UTC).date(), []).append(b)
    return out


# README ES table: session date -> (rows, missing minutes inside covered time, first covered minute CT).
ES_README = {
    date(2013, 10, 7): (1348, 32, time(17, 0)),
    date(2013, 10, 8): (1366, 14, time(17, 0)),
    date(2013, 10, 9): (1376, 4, time(17, 0)),
    date(2013, 10, 10): (1363, 17, time(17, 0)),
    date(2013, 10, 11): (1373, 7, time(17, 0)),
    date(2013, 10, 14): (1255, 5, time(19, 0)),
    date(2013, 10, 15): (117, 3, time(17, 0)),
    date(2013, 10, 29): (1227, 33, time(19, 0)),
    date(2013, 10, 30): (1354, 26, time(17, 0)),
    date(2013, 10, 31): (120, 0, time(17, 0)),
}
# README BTC-EUR table: UTC date -> (rows, missing from 00:00 to the last bar, absent after the last bar).
BTC_README = {
    date(2018, 4, 4): (949, 60, 431),
    date(2018, 4, 5): (1395, 45, 0),
    date(2018, 4, 6): (1319, 121, 0),
}


def globex_open(day: date) -> datetime:
    return datetime.combine(day - timedelta(days=1), time(17, 0), tzinfo=CHI)


def test_es_store_reads_quality_and_windows_per_session(real_data: Path) -> None:
    """Per CME session: the 1m series, bar quality (minutes with a bar from the open up to the newest one,
    over the trading minutes of that span, the halt excluded) and 5m/15m windows anchored at 17:00 the
    evening before, cut at the halt and at 16:15, equal to a from-scratch aggregation; history is keyed by
    session date."""
    sessions = es_sessions(real_data)
    assert {d: len(b) for d, b in sessions.items()} == {d: v[0] for d, v in ES_README.items()}
    store = SessionData(calendar=GLOBEX, historical_bars_trailing_days=20, historical_bars_types=(1, 15))
    for day, bars in sessions.items():
        store.start_new_session(day)
        store.add_bars_batch("es", bars)
        open_ = globex_open(day)
        last = bars[-1].timestamp
        span = int((last - open_).total_seconds()) // 60 + 1
        if last.astimezone(CHI).date() == day and last.astimezone(CHI).time() >= time(15, 30):
            span -= 15  # the halt is not a trading minute
        rows, missing, first = ES_README[day]
        covered_from_open = span - (0 if first == time(17, 0) else 120)
        assert covered_from_open - rows == missing  # the README's count, as a cross-check of `span`
        metrics = store.get_session_metrics("ES")
        assert metrics["bar_count"] == rows
        assert metrics["bar_quality"] == pytest.approx(100.0 * rows / span)
        assert metrics["session_volume"] == sum(b.volume for b in bars)
        assert metrics["last_update"] == last
        store.end_session()
        close = datetime.combine(day, time(16, 15), tzinfo=CHI)
        for k in (5, 15):
            got = store.get_bars("ES", interval=k)
            assert same_bars(got, windows_from_scratch(bars, open_, close, k)), (day, k)
            assert not [b for b in got if time(15, 15) <= b.timestamp.astimezone(CHI).time() < time(15, 30)]
    store.start_new_session(date(2013, 11, 1))
    history = store.get_symbol_data("ES").historical_bars  # type: ignore[union-attr]
    assert sorted(history[1]) == sorted(ES_README)
    assert [b.timestamp for b in history[1][date(2013, 10, 7)]][:1] == [globex_open(date(2013, 10, 7))]
    assert len(history[15][date(2013, 10, 9)]) == 92  # 1380 trading minutes / 15, the data has a bar in each


def test_btc_eur_24_7_store_per_utc_day(real_data: Path) -> None:
    """A 24/7 market: each UTC day is one session; quality counts from 00:00 to the newest bar; the last
    windows end at 24:00 and complete at end_session; history is keyed by the day."""
    days = btc_days(real_data)
    assert {d: len(b) for d, b in days.items()} == {d: v[0] for d, v in BTC_README.items()}
    store = SessionData(calendar=CRYPTO, historical_bars_trailing_days=2, historical_bars_types=(1, 5))
    for day, bars in days.items():
        store.start_new_session(day)
        store.add_bars_batch("BTCEUR", bars)
        rows, missing, _ = BTC_README[day]
        metrics = store.get_session_metrics("btceur")
        assert metrics["bar_quality"] == pytest.approx(100.0 * rows / (rows + missing))
        assert metrics["session_volume"] == pytest.approx(math.fsum(b.volume for b in bars), rel=1e-12)
        store.end_session()
        open_ = datetime.combine(day, time(0), tzinfo=UTC)
        for k in (5, 15):
            assert same_bars(
                store.get_bars("BTCEUR", interval=k),
                windows_from_scratch(bars, open_, open_ + timedelta(days=1), k),
            )
    store.start_new_session(date(2018, 4, 7))
    history = store.get_symbol_data("BTCEUR").historical_bars  # type: ignore[union-attr]
    assert sorted(history[1]) == [date(2018, 4, 5), date(2018, 4, 6)]  # trailing days count sessions
    assert len(history[1][date(2018, 4, 6)]) == 1319


class FakeRepository:
    """A repository that counts what it is asked for: the gaps the upkeep found, as half-open ranges."""

    def __init__(self, bars: Sequence[Bar]) -> None:
        self._inner = InMemoryBarRepository(bars)
        self.asked: list[tuple[str, datetime, datetime]] = []

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.asked.append((symbol, start, end))
        return self._inner.get_bars(symbol, start, end, interval)


def test_es_upkeep_fills_a_gap_across_midnight_and_never_asks_for_the_halt(real_data: Path) -> None:
    """Drop Tuesday 23:55 - Wednesday 00:04 CT from session 2013-10-09 (complete there in the source): the
    upkeep finds one gap across local midnight and asks the repository for exactly it; it asks for the
    README's missing minutes too, but never for the halt; the filled bars are marked gap-filled and equal to
    the originals."""
    day = date(2013, 10, 9)
    bars = es_sessions(real_data)[day]
    cut_from = datetime(2013, 10, 8, 23, 55, tzinfo=CHI)
    cut_to = datetime(2013, 10, 9, 0, 5, tzinfo=CHI)
    dropped = [b for b in bars if cut_from <= b.timestamp < cut_to]
    assert len(dropped) == 10
    store = SessionData(calendar=GLOBEX)
    store.start_new_session(day)
    store.add_bars_batch("ES", [b for b in bars if not cut_from <= b.timestamp < cut_to])
    repo = FakeRepository(bars)
    DataUpkeepThread(store, repo).run_once()
    asked = [(s, e) for _, s, e in repo.asked]
    assert (cut_from, cut_to) in asked
    halt = (datetime.combine(day, time(15, 15), tzinfo=CHI), datetime.combine(day, time(15, 30), tzinfo=CHI))
    assert not [(s, e) for s, e in asked if s < halt[1] and e > halt[0]]
    assert sum(int((e - s).total_seconds()) // 60 for s, e in asked) == 10 + ES_README[day][1]
    assert store.get_bar_count("ES") == len(bars)
    for b in dropped:
        assert store.get_provenance("ES", b.timestamp) is Provenance.GAP_FILLED
    assert store.get_bars("ES", start=cut_from, end=cut_to) == dropped


@pytest.mark.parametrize("market", ["ES", "BTCEUR"])
def test_replay_on_overnight_and_24_7_data_is_as_of_each_item(real_data: Path, market: str) -> None:
    """`DataManager.replay` with its worker, consumer and upkeep threads on real overnight / 24/7 data: while
    the consumer handles a bar, the store answers as of that bar's known time (no later 1m bar, no derived
    window that ends later, metrics up to that bar); sessions follow the calendar (ES: the 17:00 bar opens
    the next date); each session's missing minutes are the README's (plus the dropped ones, all filled)."""
    from sessiondata import CsvBarRepository

    folder = real_data / "quantconnect_lean_overnight"
    calendar = GLOBEX if market == "ES" else CRYPTO
    store = SessionData(calendar=calendar)
    manager = DataManager(store, repository=CsvBarRepository(str(folder)))
    problems: list[str] = []
    count = [0]

    def on_item(item: Any) -> None:
        count[0] += 1
        known = item.timestamp + M
        latest = store.get_latest_bar(market)
        if latest is None or latest.timestamp != item.timestamp:
            problems.append(f"latest {latest} at {item.timestamp}")
        for k in (5, 15):
            done = store.get_latest_bar(market, interval=k)
            if done is not None and done.timestamp + k * M > known:
                problems.append(f"{k}m window {done.timestamp} visible at {item.timestamp}")
        if store.get_session_metrics(market)["last_update"] != item.timestamp:
            problems.append(f"last_update at {item.timestamp}")

    report = manager.replay([market], drop_minutes=3, seed=7, on_item=on_item)
    assert problems[:3] == []
    if market == "ES":
        expected = {d: (rows, missing) for d, (rows, missing, _) in ES_README.items()}
        assert report.items == count[0] == sum(rows for rows, _ in expected.values()) - 3 * len(expected)
    else:
        expected = {d: (rows, missing + absent) for d, (rows, missing, absent) in BTC_README.items()}
    got = {s.date: s.symbols[market] for s in report.sessions}
    assert sorted(got) == sorted(expected)
    # Every session ends in the replay, so each of its trading minutes without a bar in the source is an
    # open gap at the end: 1380 a Globex session (the README), 1440 a UTC day, less the rows.
    minutes = 1380 if market == "ES" else 1440
    for day, (rows, missing) in expected.items():
        summary = got[day]
        assert (summary.bars, summary.gaps_filled) == (rows, 3), day
        assert summary.gaps_found - summary.gaps_filled == minutes - rows >= missing, day


# --------------------------------------------------------------------------- FX: Sunday open, Friday close


def test_fx_week_sunday_open_to_friday_close() -> None:
    """FX 17:00-17:00 New York: Sunday 17:00 is Monday's first minute; Friday 17:00 is after the week's
    last session; windows align to 17:00; the weekend is no gap; history is keyed by the session date."""
    store = SessionData(calendar=FX, historical_bars_trailing_days=5)
    sunday = datetime(2024, 1, 7, 17, 0)
    store.start_new_session(sunday)
    assert store.current_session_date == date(2024, 1, 8)
    store.add_bars_batch("eurusd", [bar("EURUSD", sunday + i * M, 1.1) for i in range(10) if i not in (3, 4)])
    metrics = store.get_session_metrics("EURUSD")
    assert metrics["bar_quality"] == pytest.approx(80.0)
    assert [b.timestamp for b in store.get_bars("EURUSD", interval=5)] == [sunday, sunday + 5 * M]
    gaps = detect_gaps(store.session_clock, store.get_bars("EURUSD"), now=sunday + 10 * M)
    assert [(g.start, g.bar_count) for g in gaps] == [(sunday + 3 * M, 2)]
    # The week's last minute, Friday 16:59, and Friday 17:00 (outside every session: stored, not derived).
    friday = datetime(2024, 1, 12, 16, 59)
    store.start_new_session(date(2024, 1, 12))
    store.add_bar("EURUSD", bar("EURUSD", friday, 1.1))
    store.add_bar("EURUSD", bar("EURUSD", friday + M, 1.1))
    assert store.get_session_metrics("EURUSD")["bar_quality"] == pytest.approx(100 / 1440)
    assert store.get_bar_count("EURUSD") == 2
    assert store.get_forming_bar("EURUSD", 15) is None  # the 16:45 window completed with its last minute
    assert store.get_bars("EURUSD", interval=15)[-1].timestamp == datetime(2024, 1, 12, 16, 45)
    # Nothing is missing over the weekend; Sunday's evening belongs to the next week's Monday.
    gaps = detect_gaps(store.session_clock, [friday], now=datetime(2024, 1, 14, 17, 0), start=friday)
    assert gaps == []
    assert len(expected_minutes(store.session_clock, date(2024, 1, 13))) == 0
    assert store.session_clock.session_date(datetime(2024, 1, 14, 17, 0)) == date(2024, 1, 15)
    store.start_new_session(date(2024, 1, 15))
    history = store.get_symbol_data("EURUSD").historical_bars[1]  # type: ignore[union-attr]
    assert sorted(history) == [date(2024, 1, 8), date(2024, 1, 12)]


# ----------------------------------------------------------------- CME windows at a halt and the end


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
def test_cme_windows_cut_at_the_halt_and_the_close(derivation: str) -> None:
    """30m/60m/7m windows anchored at 17:00: a window holding the halt has the bars on both sides of it
    only; the last window ends at 16:15 and completes with the 16:14 bar, without end_session."""
    store = SessionData(calendar=GLOBEX, derived_intervals=(7, 30, 60), derivation=derivation)
    open_ = datetime(2013, 10, 6, 17, 0, tzinfo=CHI)
    bars = [bar("ES", open_ + i * M, 1675 + i % 7, 1 + i % 5) for i in range(1395)]
    bars = [b for b in bars if not time(15, 15) <= b.timestamp.time() < time(15, 30)]
    for b in bars:
        store.add_bar("ES", b)
    close = datetime(2013, 10, 7, 16, 15, tzinfo=CHI)
    for k in (7, 30, 60):
        assert same_bars(store.get_bars("ES", interval=k), windows_from_scratch(bars, open_, close, k)), k
        assert store.get_forming_bar("ES", k) is None
    last60 = store.get_latest_bar("ES", interval=60)
    assert last60 is not None
    assert last60.timestamp == datetime(2013, 10, 7, 16, 0, tzinfo=CHI)
    assert last60.volume == sum(b.volume for b in bars[-15:])


def test_a_daily_pause_across_the_session_boundary_holds_on_both_sides() -> None:
    """A 24/7 market paused 23:55-00:05 UTC every day: the first five minutes of each UTC day are paused
    as well as its last five (the pause began the evening before), so a day has 1430 trading minutes; no
    gap, quality or window counts a paused minute; a bar at 00:05 is the day's first trading minute."""
    calendar = RegularHoursCalendar(
        time(0), time(0), "UTC", weekends=True, breaks=[(time(23, 55), time(0, 5))]
    )
    day = date(2018, 4, 7)  # a Saturday
    minutes = expected_minutes(calendar, day, aware=True)
    assert len(minutes) == 1430
    assert (minutes[0].time(), minutes[-1].time()) == (time(0, 5), time(23, 54))
    store = SessionData(calendar=calendar)
    first = datetime(2018, 4, 7, 0, 5, tzinfo=UTC)
    assert store.session_clock.locate(first - M) is None
    store.add_bars_batch("BTC", [bar("BTC", first + i * M) for i in range(5)])
    assert store.get_session_metrics("BTC")["bar_quality"] == 100.0
    assert detect_gaps(store.session_clock, store.get_bars("BTC"), now=first + 5 * M, start=day) == []
    assert [b.timestamp for b in store.get_bars("BTC", interval=5)] == [first]  # 00:05-00:10, whole
    # A pause that straddles the open of a day session is cut from the session too (not dropped whole).
    late_open = RegularHoursCalendar(time(9, 30), time(16, 0), NY, breaks=[(time(9, 0), time(10, 0))])
    assert len(expected_minutes(late_open, date(2024, 1, 8))) == 360


MARKETS = {
    # name: (calendar, session date, open, close)
    "globex": (
        GLOBEX,
        date(2013, 10, 8),
        globex_open(date(2013, 10, 8)),
        datetime(2013, 10, 8, 16, 15, tzinfo=CHI),
    ),
    "fx": (
        FX,
        date(2024, 1, 9),
        datetime(2024, 1, 8, 17, 0, tzinfo=NY),
        datetime(2024, 1, 9, 17, 0, tzinfo=NY),
    ),
    "crypto": (CRYPTO, date(2018, 4, 7), datetime(2018, 4, 7, tzinfo=UTC), datetime(2018, 4, 8, tzinfo=UTC)),
}


@settings(max_examples=60, deadline=None)
@given(
    market=st.sampled_from(sorted(MARKETS)),
    where=st.sampled_from(["open", "midnight", "close"]),
    writes=st.lists(
        st.tuples(st.integers(0, 59), st.integers(1, 50), st.booleans(), st.integers(1, 4)),
        min_size=1,
        max_size=40,
    ),
    derivation=st.sampled_from(["lazy", "eager"]),
    read_between=st.booleans(),
    end=st.booleans(),
)
def test_overnight_store_matches_a_from_scratch_session(
    market: str,
    where: str,
    writes: list[tuple[int, int, bool, int]],
    derivation: str,
    read_between: bool,
    end: bool,
) -> None:
    """Bars in any order, corrections, single writes and batches, exchange-zone and UTC stamps mixed, near
    the open, across local midnight or up to the close of an overnight / 24/7 session: completed plus forming
    windows, volume, bar count and quality always equal a from-scratch computation of the stored bars."""
    calendar, day, open_, close = MARKETS[market]
    # Near the close of Globex, from 15:30 (prints inside the halt: see the halt tests below).
    base = {
        "open": open_,
        "midnight": open_ + 400 * M,
        "close": close - (45 if market == "globex" else 60) * M,
    }[where]
    store = SessionData(calendar=calendar, derived_intervals=(5, 7, 15), derivation=derivation)
    store.start_new_session(day)
    final: dict[datetime, Bar] = {}
    pending: list[Bar] = []
    for minute, volume, utc_stamp, batch in writes:
        t = base + minute * M
        b = bar("Z", t.astimezone(UTC) if utc_stamp else t, 100 + volume % 5, volume)
        pending.append(b)
        final[t.astimezone(UTC)] = b
        if len(pending) >= batch:
            if len(pending) == 1:
                store.add_bar("Z", pending[0])
            else:
                store.add_bars_batch("Z", pending)
            pending = []
            if read_between:
                store.get_forming_bar("Z", 5)
                store.get_latest_bar("Z", 7)
    if pending:
        store.add_bars_batch("Z", pending)
    if end:
        store.end_session()
    stored = [final[k] for k in sorted(final)]
    for k in (5, 7, 15):
        got = list(store.get_bars("Z", interval=k))
        forming = store.get_forming_bar("Z", k)
        if forming is not None:
            got.append(forming)
        assert same_bars(
            [in_utc(g) for g in got],
            [in_utc(w) for w in windows_from_scratch(stored, open_, close, k)],
        ), k
    metrics = store.get_session_metrics("Z")
    assert metrics["bar_count"] == len(stored)
    assert metrics["session_volume"] == sum(b.volume for b in stored)
    trading = expected_minutes(calendar, day, aware=True)
    have = {b.timestamp.astimezone(UTC) for b in stored} & {t.astimezone(UTC) for t in trading}
    if have:
        span = [t for t in trading if t.astimezone(UTC) <= max(have)]
        assert metrics["bar_quality"] == pytest.approx(100 * len(have) / len(span))
    else:
        assert metrics["bar_quality"] == 0.0


def in_utc(b: Bar) -> Bar:
    return Bar(b.symbol, b.timestamp.astimezone(UTC), b.open, b.high, b.low, b.close, b.volume)


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
@pytest.mark.parametrize("batch", [False, True])
def test_prints_inside_the_halt_make_no_window_of_their_own(derivation: str, batch: bool) -> None:
    """Bars stamped inside the 15:15-15:30 halt (late prints) are stored; a window holding trading minutes
    too aggregates them (every bar stamped inside it), but no window made only of halt minutes appears, and
    every interval agrees on the halt prints' volume."""
    store = SessionData(calendar=GLOBEX, derived_intervals=(5, 15, 30), derivation=derivation)
    at = datetime(2013, 10, 8, 15, 10, tzinfo=CHI)
    bars = [bar("ES", at + i * M) for i in (0, 1, 4, 7, 12, 25)]  # 15:17 and 15:22 are in the halt
    if batch:
        store.add_bars_batch("ES", bars)
    else:
        for b in bars:
            store.add_bar("ES", b)
    store.end_session()
    got = {k: [(b.timestamp.time(), b.volume) for b in store.get_bars("ES", interval=k)] for k in (5, 15, 30)}
    assert got == {
        5: [(time(15, 10), 30), (time(15, 35), 10)],
        15: [(time(15, 0), 30), (time(15, 30), 10)],
        30: [(time(15, 0), 50), (time(15, 30), 10)],
    }


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("after_end", [False, True], ids=["in_session", "after_end_session"])
def test_a_late_halt_print_is_added_to_the_window_spanning_the_halt(
    derivation: str, batch: bool, after_end: bool
) -> None:
    """A print stamped inside the 15:15-15:30 halt that arrives after the window spanning the halt has
    completed (here after 15:35, or after `end_session`) still belongs to it: the 30-minute 15:00 window is
    re-derived with it, and no window made only of halt minutes appears. History rolls the same bars."""
    store = SessionData(
        calendar=GLOBEX,
        derived_intervals=(5, 15, 30),
        derivation=derivation,
        historical_bars_trailing_days=1,
        historical_bars_types=[1, 30],
    )
    at = datetime(2013, 10, 8, 15, 10, tzinfo=CHI)
    on_time = [bar("ES", at + i * M) for i in (0, 1, 4, 12, 25)]  # 15:22 is in the halt, in order
    late = bar("ES", at + 7 * M)  # 15:17, in the halt, after 15:35
    if batch:
        store.add_bars_batch("ES", on_time if after_end else [*on_time, late])
    else:
        for b in on_time if after_end else [*on_time, late]:
            store.add_bar("ES", b)
    store.end_session()
    if after_end:
        if batch:
            store.add_bars_batch("ES", [late])
        else:
            store.add_bar("ES", late)
    got = {k: [(b.timestamp.time(), b.volume) for b in store.get_bars("ES", interval=k)] for k in (5, 15, 30)}
    assert got == {
        5: [(time(15, 10), 30), (time(15, 35), 10)],
        15: [(time(15, 0), 30), (time(15, 30), 10)],
        30: [(time(15, 0), 50), (time(15, 30), 10)],
    }
    store.start_new_session(date(2013, 10, 9))
    history = store.get_historical_bars("ES", interval=30)
    assert [(b.timestamp.time(), b.volume) for b in history[date(2013, 10, 8)]] == got[30]


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
@pytest.mark.parametrize("batch", [False, True])
def test_a_window_spanning_the_halt_with_only_a_halt_print_does_not_form(
    derivation: str, batch: bool
) -> None:
    """Only a bar of a trading minute makes a window (tests/reference.py): the 30-minute window 15:00-15:30
    holds trading minutes 15:00-15:14 and the halt; with only a 15:17 print in it, it never forms."""
    store = SessionData(calendar=GLOBEX, derived_intervals=(30,), derivation=derivation)
    stamps = [datetime(2013, 10, 8, h, m, tzinfo=CHI) for h, m in ((14, 59), (15, 17), (15, 35))]
    if batch:
        store.add_bars_batch("ES", [bar("ES", t) for t in stamps])
    else:
        for t in stamps:
            store.add_bar("ES", bar("ES", t))
    store.end_session()
    assert [b.timestamp.time() for b in store.get_bars("ES", interval=30)] == [time(14, 30), time(15, 30)]


# --------------------------------------------------------------------------- clock changes


def _zone_variant(name: str) -> Callable[[datetime], datetime]:
    """How a data source may stamp an instant: in the exchange's ZoneInfo, another ZoneInfo object of the same
    rules, UTC (two spellings), a fixed offset, or naive exchange-local wall time."""
    variants: dict[str, Callable[[datetime], datetime]] = {
        "zoneinfo": lambda t: t.astimezone(NY),
        "us_eastern": lambda t: t.astimezone(ZoneInfo("US/Eastern")),
        "timezone_utc": lambda t: t.astimezone(UTC),
        "zoneinfo_utc": lambda t: t.astimezone(ZoneInfo("UTC")),
        "fixed_offset": lambda t: t.astimezone(timezone(t.astimezone(NY).utcoffset())),  # type: ignore[arg-type]
        "naive_local": lambda t: t.astimezone(NY).replace(tzinfo=None),
    }
    return variants[name]


ZONE_VARIANTS = ["zoneinfo", "us_eastern", "timezone_utc", "zoneinfo_utc", "fixed_offset", "naive_local"]


@pytest.mark.parametrize("style", ZONE_VARIANTS)
@pytest.mark.parametrize("day", [date(2024, 3, 8), date(2024, 3, 11), date(2024, 11, 1), date(2024, 11, 4)])
def test_equity_sessions_around_both_clock_changes(style: str, day: date) -> None:
    """The sessions before and after each US change (the change is on a Sunday): 09:30 local whatever the
    stamp's zone; quality, 5m windows, gaps, the upkeep's fills and history agree across stamp styles."""
    stamp = _zone_variant(style)
    open_ = datetime.combine(day, time(9, 30), tzinfo=NY)
    full = [bar("X", stamp(open_ + i * M)) for i in range(390)]
    store = SessionData(historical_bars_trailing_days=1)
    store.start_new_session(day)
    store.add_bars_batch("X", [b for i, b in enumerate(full) if i not in (5, 6, 100)])
    assert store.get_session_metrics("X")["bar_quality"] == pytest.approx(100 * 387 / 390)
    fives = store.get_bars("X", interval=5)
    assert fives[0].timestamp == full[0].timestamp
    assert len(fives) == 78
    gaps = detect_gaps(store.session_clock, store.get_bars("X"), now=stamp(open_ + 390 * M))
    assert [(g.start.replace(tzinfo=None), g.bar_count) for g in gaps] == [
        (datetime.combine(day, time(9, 35)), 2),
        (datetime.combine(day, time(11, 10)), 1),
    ]
    DataUpkeepThread(store, InMemoryBarRepository(full)).run_once()
    assert store.get_session_metrics("X")["bar_quality"] == 100.0
    assert store.get_bars("X") == full
    store.start_new_session(day + timedelta(days=1))
    assert list(store.get_symbol_data("X").historical_bars[1]) == [day]  # type: ignore[union-attr]


@pytest.mark.parametrize("style", ZONE_VARIANTS)
def test_overnight_session_across_spring_forward(style: str) -> None:
    """A weekend-trading overnight market (18:00-17:00 New York, weekends on) whose Sunday session crosses
    the spring change: 1320 real minutes, the skipped hour is no gap, missing minutes on both sides are found
    and filled, windows follow the wall clock."""
    stamp = _zone_variant(style)
    calendar = RegularHoursCalendar(time(18, 0), time(17, 0), NY, weekends=True)
    day = date(2024, 3, 10)
    open_utc = datetime(2024, 3, 9, 18, 0, tzinfo=NY).astimezone(UTC)
    full = [bar("X", stamp(open_utc + i * M)) for i in range(1320)]
    assert len(expected_minutes(calendar, day)) == 1320
    store = SessionData(calendar=calendar)
    store.start_new_session(day)
    store.add_bars_batch("X", [b for i, b in enumerate(full) if i not in (10, 479, 480, 700)])
    assert store.get_session_metrics("X")["bar_quality"] == pytest.approx(100 * 1316 / 1320)
    gaps = detect_gaps(store.session_clock, store.get_bars("X"), now=stamp(open_utc + 1320 * M))
    assert [g.bar_count for g in gaps] == [
        1,
        1,
        1,
        1,
    ]  # 01:59 EST and 03:00 EDT are two runs: the hour between is not a session minute
    DataUpkeepThread(store, InMemoryBarRepository(full)).run_once()
    assert store.get_bar_count("X") == 1320
    assert store.get_session_metrics("X")["bar_quality"] == 100.0
    store.end_session()
    assert sum(b.volume for b in store.get_bars("X", interval=15)) == 1320 * 10


# Stamps that tell the two passes of the repeated hour apart keep both (1440 bars); one ZoneInfo and naive
# wall time cannot (Python compares them by wall time), so the second pass replaces the first (guide, "Other
# markets"): 1380 bars. Either way the session has 1380 wall minutes to count.
KEEPS_BOTH_PASSES = {"timezone_utc": True, "zoneinfo_utc": True, "fixed_offset": True}


@pytest.mark.parametrize("style", ZONE_VARIANTS)
def test_overnight_session_across_fall_back(style: str) -> None:
    """The same market's Sunday session across the autumn change: 1440 real minutes, 1380 wall minutes.
    Minutes missing before and after the repeated hour are found (as wall minutes) and filled; quality ends
    at 100; the 15-minute windows hold every stored bar's volume."""
    stamp = _zone_variant(style)
    calendar = RegularHoursCalendar(time(18, 0), time(17, 0), NY, weekends=True)
    day = date(2024, 11, 3)
    open_utc = datetime(2024, 11, 2, 18, 0, tzinfo=NY).astimezone(UTC)
    full = [bar("X", stamp(open_utc + i * M)) for i in range(1440)]
    assert len(expected_minutes(calendar, day)) == 1380
    store = SessionData(calendar=calendar)
    store.start_new_session(day)
    store.add_bars_batch("X", [b for i, b in enumerate(full) if i not in (10, 1000)])  # 18:10 EDT, 09:40 EST
    stored = 1438 if KEEPS_BOTH_PASSES.get(style) else 1378
    assert store.get_bar_count("X") == stored
    assert store.get_session_metrics("X")["bar_quality"] == pytest.approx(100 * 1378 / 1380)
    gaps = detect_gaps(store.session_clock, store.get_bars("X"), now=stamp(open_utc + 1440 * M))
    assert [(g.start.replace(tzinfo=None), g.bar_count) for g in gaps] == [
        (datetime(2024, 11, 2, 18, 10), 1),
        (datetime(2024, 11, 3, 9, 40), 1),
    ]
    DataUpkeepThread(store, InMemoryBarRepository(full)).run_once()
    assert store.get_bar_count("X") == stored + 2
    assert store.get_session_metrics("X")["bar_quality"] == 100.0
    store.end_session()
    assert sum(b.volume for b in store.get_bars("X", interval=15)) == (stored + 2) * 10


@pytest.mark.parametrize("style", ["timezone_utc", "fixed_offset", "zoneinfo"])
def test_coordinator_replays_a_24_7_fall_back_night_as_of_each_item(style: str) -> None:
    """The stream coordinator (worker thread + this consumer) through 00:00-04:00 New York on the autumn
    night: every item is the latest bar while the consumer holds it when the stamps tell the passes apart;
    with one ZoneInfo the second pass replaces the first (the latest bar is the first pass's 01:59)."""
    from sessiondata import BacktestStreamCoordinator, StreamType, TimeProvider

    stamp = _zone_variant(style)
    calendar = RegularHoursCalendar(time(0), time(0), NY, weekends=True)
    start = datetime(2024, 11, 3, 0, 0, tzinfo=NY).astimezone(UTC)
    bars = [bar("X", stamp(start + i * M), 100 + i % 3) for i in range(300)]  # 5 real hours, 4 wall hours
    store = SessionData(calendar=calendar)
    coordinator = BacktestStreamCoordinator(store, time_provider=TimeProvider(timezone=NY))
    coordinator.feed_data_list("X", StreamType.BAR, bars)
    seen: list[Bar] = []
    mismatched = 0
    try:
        for item in coordinator.merged_stream():
            seen.append(item)
            mismatched += store.get_latest_bar("X") != item
    finally:
        coordinator.stop_worker(timeout=10)
    assert seen == bars
    if KEEPS_BOTH_PASSES.get(style):
        assert (mismatched, store.get_bar_count("X")) == (0, 300)
    else:
        assert (mismatched, store.get_bar_count("X")) == (59, 240)  # 01:00-01:58 EST under 01:59 EDT
    assert store.get_session_metrics("X")["bar_quality"] == 100.0


@pytest.mark.parametrize("on_out_of_order", ["raise", "drop"])
def test_coordinator_on_naive_bars_through_the_repeated_hour(on_out_of_order: str) -> None:
    """Naive wall time cannot order the two passes: the replay stops with an out-of-order error at the
    second pass's 01:00, or drops 01:00-01:58 of it (its 01:59 corrects the first pass's): the guide."""
    from sessiondata import BacktestStreamCoordinator, CoordinatorError, StreamType, TimeProvider

    calendar = RegularHoursCalendar(time(0), time(0), NY, weekends=True)
    start = datetime(2024, 11, 3, 0, 0, tzinfo=NY).astimezone(UTC)
    bars = [bar("X", _zone_variant("naive_local")(start + i * M)) for i in range(300)]
    store = SessionData(calendar=calendar)
    coordinator = BacktestStreamCoordinator(
        store,
        time_provider=TimeProvider(timezone=NY),
        on_out_of_order=on_out_of_order,  # type: ignore[arg-type]
    )
    coordinator.feed_data_list("X", StreamType.BAR, bars)
    seen: list[Bar] = []
    try:
        if on_out_of_order == "raise":
            with pytest.raises(CoordinatorError, match="out-of-order"):
                seen.extend(coordinator.merged_stream())
            assert seen == bars[:120]
            return
        seen.extend(coordinator.merged_stream())
    finally:
        coordinator.stop_worker(timeout=10)
    assert seen == bars[:120] + bars[179:]
    assert store.get_bar_count("X") == 240
    assert store.get_bars("X")[119] == bars[179]  # 01:59, corrected by the second pass's


# --------------------------------------------------------------------------- inputs at the edges


def test_first_and_last_minute_and_a_bar_at_end_time() -> None:
    """09:29 (before the open) and 16:00 (at end_time) are stored but not derived nor counted in quality;
    09:30 and 15:59 are the session's first and last minutes; 15:59 completes the last windows."""
    store = SessionData()
    day = datetime(2024, 1, 8)
    stamps = [
        day.replace(hour=9, minute=29),
        day.replace(hour=9, minute=30),
        day.replace(hour=15, minute=59),
        day.replace(hour=16),
    ]
    store.add_bars_batch("SPY", [bar("SPY", t) for t in stamps])
    assert [b.timestamp for b in store.get_bars("SPY")] == stamps
    assert store.get_session_metrics("SPY")["bar_quality"] == pytest.approx(100 * 2 / 390)
    assert [b.timestamp.time() for b in store.get_bars("SPY", interval=15)] == [time(9, 30), time(15, 45)]
    assert store.get_forming_bar("SPY", 15) is None
    assert store.get_bars("SPY", interval=15)[-1].volume == 10  # 16:00 is not in the 15:45 window
    only_before = SessionData()
    only_before.add_bar("SPY", bar("SPY", day.replace(hour=9, minute=0)))
    assert only_before.get_session_metrics("SPY")["bar_quality"] == 0.0
    assert only_before.get_bars("SPY", interval=5) == []
    assert only_before.get_forming_bar("SPY", 5) is None


def test_lower_case_symbols_duplicates_and_out_of_order_batches() -> None:
    store = SessionData()
    t0 = datetime(2024, 1, 8, 9, 30)
    store.add_bars_batch(
        "spy",
        [bar("spy", t0 + 2 * M), bar("Spy", t0, volume=5), bar("SPY", t0 + M), bar("spy", t0, volume=7)],
    )
    assert store.get_active_symbols() == {"SPY"}
    assert [b.timestamp for b in store.get_bars("sPy")] == [t0, t0 + M, t0 + 2 * M]
    assert store.get_bars("SPY")[0].volume == 7  # the later duplicate in the batch is a correction
    assert store.get_session_metrics("spy")["session_volume"] == 7 + 10 + 10  # never double-counted
    assert store.get_latest_bars_multi(["spy", "nope"]) == {"SPY": store.get_latest_bar("SPY"), "NOPE": None}


@pytest.mark.parametrize(
    "make",
    [
        lambda t: Bar("X", t, math.nan, 1, 1, 1, 1),
        lambda t: Bar("X", t, 1, math.inf, 1, 1, 1),
        lambda t: Bar("X", t, 1, 1, -1, 1, 1),
        lambda t: Bar("X", t, 1, 1, 1, 1, -1),
        lambda t: Bar("X", t, 1, 1, 1, 1, math.nan),
        lambda t: Bar("X", t, 1, 1, 1, 1, math.inf),
        lambda t: Tick("X", t, math.nan, 1),
        lambda t: Tick("X", t, 1, -1),
        lambda t: Quote("X", t, 1, math.inf, 1, 1),
        lambda t: Quote("X", t, 1, 1, 1, -1),
    ],
)
def test_impossible_values_are_refused(make: Callable[[datetime], object]) -> None:
    with pytest.raises(InvalidDataError):
        make(datetime(2024, 1, 8, 9, 30))


@pytest.mark.parametrize("first_aware", [False, True])
def test_mixing_naive_and_aware_leaves_the_store_as_it_was(first_aware: bool) -> None:
    store = SessionData(calendar=CRYPTO)
    naive = datetime(2018, 4, 5, 0, 0)
    aware = datetime(2018, 4, 5, 0, 5, tzinfo=UTC)
    first, other = (aware, naive) if first_aware else (naive, aware)
    store.add_bar("BTC", bar("BTC", first))
    before = store.get_symbol_data("BTC")
    with pytest.raises(InvalidDataError):
        store.add_bars_batch("BTC", [bar("BTC", first + M), bar("BTC", other + 10 * M)])
    with pytest.raises(InvalidDataError):
        store.add_bar("BTC", bar("BTC", other + 20 * M))
    assert store.get_symbol_data("BTC") is before or store.get_symbol_data("BTC") == before
    assert store.get_bar_count("BTC") == 1


def test_empty_batches_and_unknown_symbols_everywhere() -> None:
    store = SessionData(calendar=GLOBEX)
    store.add_bars_batch("ES", [])
    store.add_ticks_batch("ES", [])
    store.add_quotes_batch("ES", [])
    assert store.get_bar_count("ES") == 0
    assert store.get_latest_bar("ES") is None
    t = datetime(2013, 10, 6, 17, 0, tzinfo=CHI)
    for symbol in ("NOPE", None, 5, ""):
        assert store.get_symbol_data(symbol) is None  # type: ignore[arg-type]
        assert store.get_latest_bar(symbol) is None  # type: ignore[arg-type]
        assert store.get_last_n_bars(symbol, 3) == []  # type: ignore[arg-type]
        assert store.get_bars_since(symbol, t) == []  # type: ignore[arg-type]
        assert store.get_bars(symbol, 15) == []  # type: ignore[arg-type]
        assert store.get_bar_count(symbol, 5) == 0  # type: ignore[arg-type]
        assert store.get_session_metrics(symbol) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [0, -5, 2, 3, 7, 5.0, "5", None, True])
def test_an_interval_neither_1_nor_configured_is_a_value_error_checked_first(interval: object) -> None:
    store = SessionData(calendar=GLOBEX)
    store.add_bar("ES", bar("ES", datetime(2013, 10, 6, 17, 0, tzinfo=CHI)))
    reads: list[Callable[[], object]] = [
        lambda: store.get_latest_bar("NOPE", interval),  # type: ignore[arg-type]
        lambda: store.get_last_n_bars("ES", 2, interval),  # type: ignore[arg-type]
        lambda: store.get_bars_since("NOPE", datetime(2013, 10, 6, tzinfo=CHI), interval),  # type: ignore[arg-type]
        lambda: store.get_bars("ES", interval),  # type: ignore[arg-type]
        lambda: store.get_bar_count("NOPE", interval),  # type: ignore[arg-type]
        lambda: store.get_latest_bars_multi([], interval),  # type: ignore[arg-type]
    ]
    for read in reads:
        with pytest.raises(ValueError):
            read()


# ----------------------------------------------------------------- real threads on an overnight store


@pytest.mark.usefixtures("switch_often")
def test_lock_free_readers_see_whole_writes_across_midnight() -> None:
    """A writer streams a Globex evening across local midnight in batches of 3 while readers check every
    snapshot they take: bars, metrics and quality agree within the snapshot, and reads complete while the
    write lock is held by another thread."""
    store = SessionData(calendar=GLOBEX)
    open_ = datetime(2013, 10, 6, 17, 0, tzinfo=CHI)
    bars = [bar("ES", open_ + i * M, volume=1) for i in range(480)]  # 17:00 to 00:59
    done = threading.Event()
    problems: list[str] = []

    def read() -> None:
        while not done.is_set():
            snap = store.get_symbol_data("ES")
            if snap is None:
                continue
            n = len(snap.bars_1m)
            if n % 3 or snap.session_volume != n or snap.bar_quality != 100.0 or snap.get_bar_count() != n:
                problems.append(
                    f"torn snapshot: {n} bars, volume {snap.session_volume}, quality {snap.bar_quality}"
                )
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        for i in range(0, len(bars), 3):
            store.add_bars_batch("ES", bars[i : i + 3])
        got: list[int] = []
        with store.write_lock:
            probe = threading.Thread(target=lambda: got.append(store.get_bar_count("ES")))
            probe.start()
            probe.join(timeout=10)
        assert got == [480]
    finally:
        done.set()
        for r in readers:
            r.join(timeout=10)
    assert problems == []
    assert [b.timestamp for b in store.get_bars("ES", interval=15)][28] == datetime(
        2013, 10, 7, 0, 0, tzinfo=CHI
    )


def test_live_upkeep_thread_fills_a_gap_across_midnight_and_stops_in_time() -> None:
    """The upkeep in live mode (no clock: gaps up to the newest bar) runs its own thread: it fills the
    minutes missing across local midnight of a Globex evening, wakes on a later write to fill a new gap, and
    `stop(timeout)` returns within its timeout with the thread finished."""
    store = SessionData(calendar=GLOBEX)
    start = datetime(2013, 10, 7, 23, 50, tzinfo=CHI)
    full = [bar("ES", start + i * M) for i in range(40)]
    store.start_new_session(date(2013, 10, 8))
    store.add_bars_batch("ES", [b for i, b in enumerate(full[:30]) if i not in range(8, 13)])  # 23:58-00:02

    def wait_for_count(n: int) -> None:
        version = 0
        while store.get_bar_count("ES") < n:
            got = store.wait_for_update("ES", after_version=version, timeout=30)
            assert got is not None, f"no write within 30 s; {store.get_bar_count('ES')} of {n} bars"
            version = got

    keeper = DataUpkeepThread(store, InMemoryBarRepository(full), period=1.0)
    with keeper:
        wait_for_count(30)
        assert [store.get_provenance("ES", b.timestamp) for b in full[8:13]] == [Provenance.GAP_FILLED] * 5
        store.add_bars_batch("ES", [full[35], full[39]])  # 00:25 and 00:29: 00:20-00:24, 00:26-00:28 missing
        wait_for_count(40)
    assert keeper.status()["running"] is False
    assert store.get_bars("ES") == full
    # From the 17:00 open to 00:29: 450 trading minutes, 40 of them with a bar.
    assert store.get_session_metrics("ES")["bar_quality"] == pytest.approx(100 * 40 / 450)
