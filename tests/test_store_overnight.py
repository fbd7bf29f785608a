"""The store, the upkeep and rollover on sessions that cross local midnight (CME Globex, with the 2013
daily halt) and on 24/7 sessions, from generated bars: every minute regular, quality 100%, derived windows
equal to an independent aggregation anchored at the open, gaps around midnight found and filled, rollover
into the next overnight session with history kept, and the default calendar's weekends.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from reference import aggregate_elapsed
from sessiondata import Bar, DataUpkeepThread, InMemoryBarRepository, SessionData
from sessiondata._calendar import RegularHoursCalendar, SessionCalendar
from sessiondata._gaps import detect_gaps

CHI = ZoneInfo("America/Chicago")
UTC = timezone.utc
M = timedelta(minutes=1)
CME_2013 = RegularHoursCalendar(time(17, 0), time(16, 15), CHI, breaks=[(time(15, 15), time(15, 30))])
CRYPTO = RegularHoursCalendar(time(0), time(0), "UTC", weekends=True)
# 11 does not divide the 420 minutes from 17:00 to midnight: an 11-minute window spans midnight.
INTERVALS = (5, 15, 11, 60)
MONDAY = date(2013, 10, 7)


def trading_minutes(
    open_: datetime, close: datetime, halts: Iterable[tuple[datetime, datetime]] = ()
) -> list[datetime]:
    """Every minute start in [open_, close) outside the halts, by plain datetime stepping."""
    cut = list(halts)
    out = []
    t = open_
    while t < close:
        if not any(lo <= t < hi for lo, hi in cut):
            out.append(t)
        t += M
    return out


def cme_session(day: date) -> list[datetime]:
    """The naive Chicago minute starts of ``day``'s 2013 Globex session: the evening before 17:00 to 16:15,
    without the 15:15-15:30 halt."""
    evening = datetime.combine(day - timedelta(days=1), time(17))
    halt = (datetime.combine(day, time(15, 15)), datetime.combine(day, time(15, 30)))
    return trading_minutes(evening, datetime.combine(day, time(16, 15)), [halt])


def make_bars(stamps: Sequence[datetime], symbol: str = "ES", seed: int = 0) -> list[Bar]:
    rng = random.Random(seed)
    bars = []
    price = 1675.0
    for ts in stamps:
        o = price
        c = round(o + rng.choice((-0.5, -0.25, 0.0, 0.25, 0.5)), 2)
        bars.append(Bar(symbol, ts, o, max(o, c) + 0.25, min(o, c) - 0.25, c, rng.randint(1, 500)))
        price = c
    return bars


def styled(stamps: Sequence[datetime], style: str) -> list[datetime]:
    if style == "naive":
        return list(stamps)
    zone: tzinfo = CHI if style == "zone" else UTC
    return [t.replace(tzinfo=CHI).astimezone(zone) for t in stamps]


def store_for(calendar: SessionCalendar, *, read_first: bool, **kw: object) -> SessionData:
    store = SessionData(calendar=calendar, derived_intervals=INTERVALS, **kw)  # type: ignore[arg-type]
    if read_first:  # derived bars read before the writes: derived as bars arrive, not on the first read
        store.register_symbol("ES")
        store.get_bars("ES", 5)
    return store


def write(store: SessionData, bars: Sequence[Bar], batch: bool) -> None:
    if batch:
        store.add_bars_batch("ES", bars)
    else:
        for b in bars:
            store.add_bar("ES", b)


@pytest.mark.parametrize("style", ["naive", "zone", "utc"])
@pytest.mark.parametrize("batch", [False, True], ids=["bar-by-bar", "batch"])
@pytest.mark.parametrize("read_first", [False, True], ids=["lazy", "eager"])
def test_whole_cme_session_across_midnight_and_the_halt(style: str, batch: bool, read_first: bool) -> None:
    stamps = styled(cme_session(MONDAY), style)
    bars = make_bars(stamps)
    store = store_for(CME_2013, read_first=read_first)
    write(store, bars, batch)
    clock = store.session_clock
    assert all(clock.locate(b.timestamp) is not None for b in bars)  # every minute regular
    assert {clock.session_date(b.timestamp) for b in bars} == {MONDAY}
    assert store.get_session_metrics("ES")["bar_quality"] == 100.0
    store.end_session()
    assert store.get_session_metrics("ES")["bar_quality"] == 100.0
    open_, _ = (t if style == "naive" else t.replace(tzinfo=CHI) for t in clock.session_bounds(MONDAY))  # type: ignore[union-attr]
    for k in INTERVALS:
        assert store.get_bars("ES", k) == aggregate_elapsed(bars, open_, k), k
    store.check_invariants()


@pytest.mark.parametrize("batch", [False, True], ids=["bar-by-bar", "batch"])
@pytest.mark.parametrize("read_first", [False, True], ids=["lazy", "eager"])
def test_whole_24_7_sessions(batch: bool, read_first: bool) -> None:
    store = store_for(CRYPTO, read_first=read_first, historical_bars_trailing_days=3)
    days = [date(2018, 4, 6), date(2018, 4, 7), date(2018, 4, 8)]  # Friday to Sunday
    for i, day in enumerate(days):
        start = datetime.combine(day, time(0), tzinfo=UTC)
        bars = make_bars(trading_minutes(start, start + timedelta(days=1)), seed=i)
        store.start_new_session(day)
        write(store, bars, batch)
        assert store.get_session_metrics("ES")["bar_quality"] == 100.0
        store.end_session()
        for k in INTERVALS:
            assert store.get_bars("ES", k) == aggregate_elapsed(bars, start, k)
    store.start_new_session(date(2018, 4, 9))
    snap = store.get_symbol_data("ES")
    assert snap is not None
    assert sorted(snap.historical_bars[1]) == days
    assert all(len(snap.historical_bars[1][d]) == 1440 for d in days)


def test_gaps_around_midnight_are_found_and_filled_by_the_upkeep() -> None:
    everything = make_bars(styled(cme_session(MONDAY), "zone"))
    missing = {datetime(2013, 10, 6, 23, 58, tzinfo=CHI) + i * M for i in range(4)}
    streamed = [b for b in everything if b.timestamp not in missing]
    store = SessionData(calendar=CME_2013, derived_intervals=INTERVALS)
    store.start_new_session(MONDAY)
    upto = [b for b in streamed if b.timestamp < datetime(2013, 10, 7, 2, 0, tzinfo=CHI)]
    store.add_bars_batch("ES", upto)
    gaps = detect_gaps(store.session_clock, upto, upto[-1].timestamp + M)
    assert [(g.start, g.bar_count) for g in gaps] == [(datetime(2013, 10, 6, 23, 58, tzinfo=CHI), 4)]
    assert store.get_session_metrics("ES")["bar_quality"] < 100.0
    up = DataUpkeepThread(store, InMemoryBarRepository(everything))
    status = up.run_once()
    assert status["symbols"]["ES"]["gaps_found"] == 4
    assert status["symbols"]["ES"]["bars_filled"] == 4
    assert store.get_session_metrics("ES")["bar_quality"] == 100.0
    assert store.get_bars("ES") == [
        b for b in everything if b.timestamp < datetime(2013, 10, 7, 2, 0, tzinfo=CHI)
    ]
    open_ = datetime(2013, 10, 6, 17, tzinfo=CHI)
    store.end_session()
    assert store.get_bars("ES", 11) == aggregate_elapsed(store.get_bars("ES"), open_, 11)


def test_rollover_into_the_next_overnight_session_keeps_history() -> None:
    store = SessionData(calendar=CME_2013, derived_intervals=INTERVALS, historical_bars_trailing_days=2)
    monday = make_bars(cme_session(MONDAY))
    tuesday = make_bars(cme_session(MONDAY + timedelta(days=1)), seed=1)
    store.start_new_session(monday[0].timestamp)  # a timestamp on the opening evening names Monday
    assert store.current_session_date == MONDAY
    store.add_bars_batch("ES", monday)
    # Monday 17:00 is Tuesday's session, whichever local date it has.
    store.start_new_session(store.session_clock.session_date(tuesday[0].timestamp))
    assert store.current_session_date == MONDAY + timedelta(days=1)
    for b in tuesday[:500]:  # 17:00 to 01:19, across midnight
        store.add_bar("ES", b)
    snap = store.get_symbol_data("ES")
    assert snap is not None
    assert list(snap.historical_bars[1]) == [MONDAY]
    assert list(snap.historical_bars[1][MONDAY]) == monday
    assert snap.bar_quality == 100.0
    assert snap.bars_1m[0] == tuesday[0]
    assert store.get_bars("ES", 60) == aggregate_elapsed(tuesday[:480], tuesday[0].timestamp, 60)
    # Without an explicit date the ended session is keyed by its session date (Monday), not by the newest
    # bar's local date (Sunday evening).
    bare = SessionData(calendar=CME_2013, historical_bars_trailing_days=1)
    bare.add_bars_batch("ES", monday[:420])
    bare.start_new_session(MONDAY + timedelta(days=1))
    snap = bare.get_symbol_data("ES")
    assert snap is not None
    assert list(snap.historical_bars[1]) == [MONDAY]


def test_dst_change_inside_an_overnight_session() -> None:
    # Clocks go forward at 02:00 on Sunday 2013-03-10, inside the session opening Saturday 17:00 CST.
    cal = RegularHoursCalendar(time(17, 0), time(16, 0), CHI, weekends=True)
    day = date(2013, 3, 10)
    open_utc = datetime(2013, 3, 9, 23, 0, tzinfo=UTC)
    real = [open_utc + i * M for i in range(22 * 60)]  # every real minute: 23 wall hours, 22 real
    for style in (UTC, CHI):
        bars = make_bars([t.astimezone(style) for t in real])
        store = SessionData(calendar=cal, derived_intervals=(5, 60))
        store.add_bars_batch("ES", bars)
        assert store.get_session_metrics("ES")["bar_quality"] == 100.0
        assert {store.session_clock.session_date(b.timestamp) for b in bars} == {day}
        store.end_session()
        assert len(store.get_bars("ES", 60)) == 22  # the skipped wall hour has no window
        assert len(store.get_bars("ES", 5)) == 22 * 12
        assert store.get_bars("ES", 60)[9].timestamp.astimezone(CHI).hour == 3  # 01:00, then 03:00


def test_weekend_bars_are_outside_the_default_calendar() -> None:
    store = SessionData()
    saturday = [datetime(2025, 3, 8, 9, 30) + i * M for i in range(30)]
    store.add_bars_batch("SPY", make_bars(saturday, "SPY"))
    assert store.get_session_metrics("SPY")["bar_quality"] == 0.0
    store.end_session()
    assert store.get_bars("SPY", 5) == []
    assert store.get_bar_count("SPY") == 30  # stored, not derived
    assert store.session_clock.locate(saturday[0]) is None


def test_replay_starts_each_overnight_session_on_its_opening_evening() -> None:
    import threading

    from sessiondata import BacktestStreamCoordinator, StreamType

    store = SessionData(calendar=CME_2013, historical_bars_trailing_days=2)
    monday = make_bars(styled(cme_session(MONDAY), "zone"))
    tuesday = make_bars(styled(cme_session(MONDAY + timedelta(days=1)), "zone")[:100], seed=1)
    halted = make_bars(
        [
            datetime(2013, 10, 7, 15, 20, tzinfo=CHI),  # the halt
            datetime(2013, 10, 7, 16, 30, tzinfo=CHI),  # the daily shutdown
            datetime(2013, 10, 6, 16, 59, tzinfo=CHI),  # Sunday before the open
        ]
    )
    items = sorted([*monday, *halted, *tuesday], key=lambda b: b.timestamp)
    coord = BacktestStreamCoordinator(store)
    coord.register_stream("ES", StreamType.BAR, iter(items))
    seen: list[Bar] = []

    def consume() -> None:
        seen.extend(coord.merged_stream())

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "merged_stream did not end"
    assert seen == [*monday, *tuesday]  # the halt, the shutdown and Sunday afternoon are filtered
    # Monday's session ended at its close, not at local midnight: its history holds exactly its bars.
    assert store.current_session_date == MONDAY + timedelta(days=1)
    snap = store.get_symbol_data("ES")
    assert snap is not None
    assert list(snap.historical_bars[1]) == [MONDAY]
    assert list(snap.historical_bars[1][MONDAY]) == monday
    assert snap.bar_quality == 100.0


@pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")
def test_early_close_with_xnys_gives_no_false_gaps() -> None:
    pytest.importorskip("exchange_calendars", reason="exchange_calendars not installed (extra calendars)")
    ny = ZoneInfo("America/New_York")
    half_day = date(2011, 11, 25)  # the day after Thanksgiving: NYSE closed at 13:00
    morning = make_bars(
        [
            t.replace(tzinfo=ny)
            for t in trading_minutes(datetime(2011, 11, 25, 9, 30), datetime(2011, 11, 25, 13))
        ],
        "SPY",
    )
    evening = datetime(2011, 11, 25, 16, 0, tzinfo=ny)
    found = {}
    for name, calendar in (("XNYS", "XNYS"), ("built-in", None)):
        store = SessionData(calendar=calendar)
        store.start_new_session(half_day)
        store.add_bars_batch("SPY", morning)
        store.end_session()
        assert store.get_session_metrics("SPY")["bar_quality"] == 100.0
        gaps = detect_gaps(store.session_clock, store.get_bars("SPY"), evening)
        status = DataUpkeepThread(store).run_once()["symbols"]["SPY"]
        found[name] = (sum(g.bar_count for g in gaps), status["gaps_found"])
    assert found == {"XNYS": (0, 0), "built-in": (180, 180)}
