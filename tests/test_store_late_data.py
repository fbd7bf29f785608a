"""Late data after `end_session`: the ended session's derived history always equals the aggregation of its
1-minute history, whatever arrives between `end_session` and `start_new_session` (late bars, corrections,
the upkeep's boundary fills), read or unread, bar by bar or in batches."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from reference import check_store, derive_from_scratch
from sessiondata import Bar, Provenance, SessionData

DAY = date(2025, 3, 10)
OPEN = datetime(2025, 3, 10, 9, 30)
M = timedelta(minutes=1)


def bar(minute: int, price: float = 10.0, volume: int = 100) -> Bar:
    return Bar("T", OPEN + minute * M, price, price + 1, price - 1, price, volume)


def history_agrees(store: SessionData) -> None:
    clock = store.session_clock
    one = store.get_historical_bars("T", 1)
    for k in store.derived_intervals:
        derived = store.get_historical_bars("T", k)
        assert derived.keys() == one.keys()
        for day, bars in one.items():
            assert list(derived[day]) == derive_from_scratch(bars, clock, k), (k, day)


@pytest.mark.parametrize("read", [False, True], ids=["unread", "read"])
@pytest.mark.parametrize("batch", [False, True], ids=["add_bar", "batch"])
def test_a_late_bar_after_end_session_reaches_derived_history(read: bool, batch: bool) -> None:
    # The example: 09:30-09:36, end_session, a late 09:40 bar, start_new_session.
    store = SessionData(historical_bars_trailing_days=2, historical_bars_types=(1, 5, 15))
    store.start_new_session(DAY)
    for m in range(7):
        store.add_bar("T", bar(m))
    if read:
        store.get_bars("T", 5)
    store.end_session()
    if batch:
        store.add_bars_batch("T", [bar(10)])
    else:
        store.add_bar("T", bar(10))
    store.start_new_session(DAY + timedelta(days=1))
    assert len(store.get_historical_bars("T", 1)[DAY]) == 8
    assert [b.timestamp for b in store.get_historical_bars("T", 5)[DAY]] == [OPEN + m * M for m in (0, 5, 10)]
    history_agrees(store)


def test_late_corrections_and_boundary_fills_after_end_session() -> None:
    store = SessionData(historical_bars_trailing_days=1, historical_bars_types=(1, 5, 15))
    store.start_new_session(DAY)
    store.add_bars_batch("T", [bar(m) for m in (0, 1, 2, 20, 21)])
    store.end_session()
    store.add_bar("T", bar(1, price=12.0))  # a correction
    store.add_bars_batch("T", [bar(m) for m in range(3, 20)], provenance=Provenance.GAP_FILLED, replace=False)
    store.add_bar("T", bar(33))  # late, in a window of its own
    store.add_bar("T", bar(22, price=9.0), provenance=Provenance.GAP_FILLED, replace=False)
    check_store(store)
    store.start_new_session(DAY + timedelta(days=1))
    history_agrees(store)
    # 09:30 .. 09:50 (09:35 .. 09:45 filled) and 10:00
    assert len(store.get_historical_bars("T", 5)[DAY]) == 6
