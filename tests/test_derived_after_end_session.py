"""After `end_session()` every derived window is complete: a late 1-minute bar (accepted as late data for
the session in memory) re-derives or adds a completed window, never one that is forming, whether derived
lazily or eagerly, streamed or in a batch, for a symbol known before the end or first seen after it. Derived
history after `start_new_session` is still the aggregation of the 1-minute history.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_store, derive_from_scratch
from sessiondata import Bar, SessionData

DAY = date(2025, 1, 2)
OPEN = datetime.combine(DAY, time(9, 30))
M = timedelta(minutes=1)
INTERVALS = (5, 15)


def bar(symbol: str, minute: int, volume: int = 10) -> Bar:
    price = 100.0 + minute % 7
    return Bar(symbol, OPEN + minute * M, price, price + 1, price - 1, price + 0.5, volume)


def add(store: SessionData, bars: list[Bar], batch: bool) -> None:
    if batch:
        store.add_bars_batch(bars[0].symbol, bars)
    else:
        for b in bars:
            store.add_bar(b.symbol, b)


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
@pytest.mark.parametrize("batch", [False, True], ids=["streamed", "batch"])
@pytest.mark.parametrize("late_symbol", [False, True], ids=["known", "registered_after"])
def test_a_late_bar_after_end_session_leaves_no_window_forming(
    derivation: str, batch: bool, late_symbol: bool
) -> None:
    store = SessionData(derivation=derivation, derived_intervals=INTERVALS)
    store.start_new_session(DAY)
    symbol = "LATE" if late_symbol else "SPY"
    add(store, [bar("SPY", m) for m in range(7)], batch)  # 09:30-09:36
    store.end_session()
    add(store, [bar(symbol, 10, volume=3)], batch)  # 09:40, after the end
    for k in INTERVALS:
        assert store.get_forming_bar(symbol, k) is None, k
        assert store.get_forming_bar("SPY", k) is None, k
    assert [(b.timestamp, b.volume) for b in store.get_bars(symbol, 5)][-1] == (OPEN + 10 * M, 3)
    fifteen = store.get_bars(symbol, 15)
    assert fifteen[-1].timestamp == OPEN
    assert fifteen[-1].volume == (73 if not late_symbol else 3)
    # A second late bar in the same window re-derives it, still complete.
    add(store, [bar(symbol, 11, volume=4)], batch)
    assert store.get_forming_bar(symbol, 5) is None
    assert store.get_bars(symbol, 5)[-1].volume == 7
    check_store(store)


# A session: in-order minutes before the end, then late minutes (any order, corrections included) after it.
minutes = st.lists(st.integers(0, 389), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    before=minutes,
    after=st.lists(st.integers(-30, 420), min_size=1, max_size=20),
    derivation=st.sampled_from(["lazy", "eager"]),
    batch=st.booleans(),
    read_between=st.booleans(),
)
def test_every_window_is_complete_after_end_session(
    before: list[int], after: list[int], derivation: str, batch: bool, read_between: bool
) -> None:
    store = SessionData(
        derivation=derivation,
        derived_intervals=INTERVALS,
        historical_bars_trailing_days=1,
        historical_bars_types=(1, *INTERVALS),
    )
    store.start_new_session(DAY)
    add(store, [bar("SPY", m, m + 1) for m in sorted(set(before))], batch)
    store.end_session()
    for n, m in enumerate(after):
        store.add_bar("SPY", bar("SPY", m, n + 1))
        if read_between:
            store.get_bars("SPY", 5)
        for k in INTERVALS:
            assert store.get_forming_bar("SPY", k) is None, (k, m)
    ones = store.get_bars("SPY")
    regular = sum(b.volume for b in ones if OPEN <= b.timestamp < OPEN + 390 * M)
    clock = store.session_clock
    for k in INTERVALS:
        assert sum(b.volume for b in store.get_bars("SPY", k)) == regular, k
        assert store.get_bars("SPY", k) == derive_from_scratch(ones, clock, k), k
    check_store(store)
    store.start_new_session(DAY + timedelta(days=1))
    history = store.get_symbol_data("SPY")
    assert history is not None
    assert list(history.historical_bars[1][DAY]) == ones
    for k in INTERVALS:
        assert list(history.historical_bars[k][DAY]) == derive_from_scratch(ones, clock, k), k
