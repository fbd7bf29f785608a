"""Memory accounting (`sessiondata._memory`): exact counts, and a byte estimate within 15% of tracemalloc."""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sessiondata import Bar, Quote, SessionData, Tick
from sessiondata._columns import get_column
from sessiondata._memory import memory_usage, snapshot_memory_usage

T0 = datetime(2024, 1, 2, 9, 30)
TOLERANCE = 0.15


def session_bars(n: int, *, symbol: str = "SPY", seed: int = 1) -> Iterator[Bar]:
    """Realistic regular-session 1-minute bars: own datetime, four distinct floats, an int volume each."""
    rng = random.Random(seed)
    price = 100.0
    for i in range(n):
        day, minute = divmod(i, 390)
        ts = T0 + timedelta(days=day, minutes=minute)
        o = round(price, 2)
        c = round(price * (1 + rng.uniform(-1e-3, 1e-3)), 2)
        h = round(max(o, c) + rng.choice((0.0, 0.01, 0.02)), 2)
        lo = round(min(o, c) - rng.choice((0.0, 0.01, 0.02)), 2)
        yield Bar(symbol, ts, o, h, lo, c, rng.randint(1_000, 250_000))
        price = c


def fill(store: SessionData, bars: int, ticks: int, quotes: int) -> None:
    it = session_bars(bars)
    while batch := [b for _, b in zip(range(390), it, strict=False)]:
        store.add_bars_batch("SPY", batch)
    store.add_ticks_batch(
        "SPY", [Tick("SPY", T0 + timedelta(seconds=i), 100 + i * 0.001, i % 300 + 1) for i in range(ticks)]
    )
    store.add_quotes_batch(
        "SPY",
        [
            Quote("SPY", T0 + timedelta(seconds=i), 100 + i * 0.001, 100.01 + i * 0.001, 300 + i, 400 + i)
            for i in range(quotes)
        ],
    )


def test_estimate_is_within_tolerance_of_tracemalloc() -> None:
    derived = (5, 15)  # derived bars share floats and datetimes with 1-minute bars: counted once
    fill(SessionData(derived_intervals=derived), 2_000, 100, 100)  # warm process-wide caches first
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = SessionData(derived_intervals=derived)
        fill(store, 50_000, 5_000, 5_000)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    report = memory_usage(store)
    assert report.bars == 50_000
    assert report.ticks == report.quotes == 5_000
    assert abs(report.total_bytes - traced) <= TOLERANCE * traced, (report.total_bytes, traced)


def test_counts_per_symbol_and_in_total() -> None:
    store = SessionData(historical_bars_trailing_days=2, historical_bars_types=(1, 5))
    store.start_new_session(date(2024, 1, 2))
    store.add_bars_batch("SPY", list(session_bars(390)))
    store.start_new_session(date(2024, 1, 3))  # the first session rolls into history
    store.add_bars_batch("SPY", list(session_bars(60)))
    store.add_bars_batch("QQQ", list(session_bars(30, symbol="QQQ")))
    store.add_tick("QQQ", Tick("QQQ", T0, 10.0, 0))
    store.add_quote("SPY", Quote("SPY", T0, 10.0, 10.5, 1, 2))
    store.register_symbol("IDLE")
    for symbol in ("SPY", "QQQ"):
        store.get_bars(symbol, 5)  # read: the store holds derived bars from now on (unread, it owes them)

    report = memory_usage(store)
    assert list(report.symbols) == ["IDLE", "QQQ", "SPY"]
    spy, qqq, idle = report.symbols["SPY"], report.symbols["QQQ"], report.symbols["IDLE"]
    assert (spy.bars, dict(spy.derived_bars), spy.ticks, spy.quotes) == (60, {5: 12, 15: 4}, 0, 1)
    assert spy.historical_bars == 390 + 78
    assert (qqq.bars, dict(qqq.derived_bars), qqq.ticks, qqq.quotes) == (30, {5: 6, 15: 2}, 1, 0)
    assert idle.bars == idle.ticks == idle.quotes == 0
    assert report.bars == 90
    assert report.derived_bars == 24
    assert report.historical_bars == 468
    assert report.total_bytes == spy.bytes + qqq.bytes + idle.bytes
    assert spy.historical_bytes > spy.bars_bytes > 0
    assert spy.quotes_bytes > spy.ticks_bytes  # an empty series is a few small objects
    assert set(memory_usage(store, ["spy", "nope"]).symbols) == {"SPY"}
    json.dumps(report.as_dict())
    assert memory_usage(SessionData()).total_bytes == 0


def test_objects_shared_between_records_are_counted_once() -> None:
    store = SessionData(derived_intervals=(5,))
    store.add_bars_batch("SPY", list(session_bars(390)))
    snap = store.get_symbol_data("SPY")
    assert snap is not None
    one = next(iter(snap.bars_derived[5]))  # a read: from here the snapshot holds its derived bars
    usage = snapshot_memory_usage(snap)
    # A derived bar's open, high, low and close are floats of its 1-minute bars, already counted there.
    record_alone = sys.getsizeof(one)
    unshared_fields = sys.getsizeof(one.volume) + sys.getsizeof(one.symbol)
    per_derived_bar = usage.derived_bytes / usage.derived_bars[5]
    assert per_derived_bar < record_alone + unshared_fields + 4 * sys.getsizeof(1.0)
    assert per_derived_bar >= record_alone


def test_measuring_never_builds_derived_bars_nobody_read() -> None:
    """A store whose derived bars nobody has read holds a log of what it owes, not derived bars: the report
    counts that log, and measuring leaves it owed (a later read still builds the bars, once)."""
    unread = SessionData(derived_intervals=(5, 15))
    unread.add_bars_batch("SPY", list(session_bars(390)))
    read = SessionData(derived_intervals=(5, 15))
    read.add_bars_batch("SPY", list(session_bars(390)))
    assert read.get_bar_count("SPY", 5) == 78
    owed, held = memory_usage(unread).symbols["SPY"], memory_usage(read).symbols["SPY"]
    assert dict(owed.derived_bars) == {5: 0, 15: 0}
    assert owed.derived_bytes < held.derived_bytes / 10  # a few empty series objects, not 104 bars
    assert dict(held.derived_bars) == {5: 78, 15: 26}
    assert held.derived_bytes > 0
    assert owed.other_bytes > 0
    assert owed.bytes < held.bytes
    assert dict(memory_usage(unread).symbols["SPY"].derived_bars) == {5: 0, 15: 0}  # still owed
    assert unread.get_bar_count("SPY", 15) == 26


def test_column_cache_is_reported_apart() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", list(session_bars(1_000)))
    before = memory_usage(store)
    assert len(get_column(store.get_symbol_data("SPY"), "close")) == 1_000
    after = memory_usage(store)
    assert after.total_bytes == before.total_bytes
    assert after.column_cache_bytes >= before.column_cache_bytes + 8 * 1_000
