"""The deprecated `sessiondata.session_tracker` keeps working, warns once at import, and reads the store."""

from __future__ import annotations

import sys
import threading
import warnings
from datetime import date, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from sessiondata import Bar, get_session_data

DAY = date(2025, 1, 2)
T0 = datetime(2025, 1, 2, 9, 30)


def _fresh_import() -> tuple[ModuleType, list[warnings.WarningMessage]]:
    sys.modules.pop("sessiondata.session_tracker", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import sessiondata.session_tracker  # noqa: F401 - cached: no second warning
        import sessiondata.session_tracker as module
    return module, caught


@pytest.fixture
def st() -> ModuleType:
    module, _ = _fresh_import()
    module.reset_session_tracker()
    return module


def test_import_warns_once_with_category_message_and_location() -> None:
    _, caught = _fresh_import()
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1
    assert "get_session_data" in str(deprecations[0].message)
    assert deprecations[0].filename == __file__  # the importing line, not importlib's


def zeroed(m: Any, symbol: str, day: date) -> bool:
    return (m.symbol, m.date, m.session_volume, m.session_high, m.session_low, m.last_update) == (
        symbol, day, 0, None, None, None,
    )  # fmt: skip


def test_update_and_read_metrics(st: ModuleType) -> None:
    tracker = st.get_session_tracker()
    assert zeroed(tracker.get_session_metrics("AAPL", DAY), "AAPL", DAY)
    first = tracker.update_session("aapl", DAY, 151.0, 149.0, 1000, T0)
    assert (first.session_volume, first.session_high, first.last_update) == (1000, 151.0, T0)
    tracker.update_session("AAPL", DAY, 152.5, 150.0, 500, T0 + timedelta(minutes=1))
    assert first.session_volume == 1000  # a copy: later updates do not change it
    m = tracker.get_session_metrics("AAPL", DAY)
    assert (m.symbol, m.date, m.session_volume, m.session_high, m.session_low) == (
        "AAPL",
        DAY,
        1500,
        152.5,
        149.0,
    )
    assert m.last_update == T0 + timedelta(minutes=1)
    # Another date is another session.
    assert zeroed(
        tracker.get_session_metrics("AAPL", DAY + timedelta(days=1)), "AAPL", DAY + timedelta(days=1)
    )


def test_old_callers_read_without_a_none_check(st: ModuleType) -> None:
    tracker = st.get_session_tracker()
    m = tracker.get_session_metrics("NEW", DAY)
    fresh = not (m.last_update and m.session_volume > 0)  # the old callers' idiom, no `is None` check
    assert fresh


def test_returned_metrics_are_copies(st: ModuleType) -> None:
    tracker = st.SessionTracker()
    tracker.update_session("AAPL", DAY, 151.0, 149.0, 1000, T0)
    m = tracker.get_session_metrics("AAPL", DAY)
    m.update_from_bar(999.0, 1.0, 5, T0)
    assert tracker.get_session_metrics("AAPL", DAY).session_high == 151.0


def test_session_metrics_update_from_bar(st: ModuleType) -> None:
    m = st.SessionMetrics(date=DAY, symbol="X")
    m.update_from_bar(10.0, 9.0, 100, T0 + timedelta(minutes=5))
    m.update_from_bar(11.0, 9.5, 50, T0)  # an older bar does not move last_update back
    assert (m.session_volume, m.session_high, m.session_low, m.last_update) == (
        150,
        11.0,
        9.0,
        T0 + timedelta(minutes=5),
    )


def test_reset_session_and_clear_all(st: ModuleType) -> None:
    tracker = st.SessionTracker()
    tracker.update_session("A", DAY, 2.0, 1.0, 1, T0)
    tracker.update_session("B", DAY, 2.0, 1.0, 1, T0)
    tracker.reset_session("a", DAY)
    assert zeroed(tracker.get_session_metrics("A", DAY), "A", DAY)
    assert tracker.get_session_metrics("B", DAY).session_volume == 1
    tracker.clear_all()
    assert zeroed(tracker.get_session_metrics("B", DAY), "B", DAY)


def test_reset_session_zeroes_what_the_store_holds_too(st: ModuleType) -> None:
    store = get_session_data()
    store.start_new_session(DAY)
    store.add_bar("SPY", Bar("SPY", T0, 100.0, 101.0, 99.0, 100.5, 10))
    tracker = st.get_session_tracker()
    assert tracker.get_session_metrics("SPY", DAY).session_volume == 10
    tracker.reset_session("SPY", DAY)
    assert zeroed(tracker.get_session_metrics("SPY", DAY), "SPY", DAY)


def test_singleton_and_reset(st: ModuleType) -> None:
    a = st.get_session_tracker()
    assert st.get_session_tracker() is a
    st.reset_session_tracker()
    assert st.get_session_tracker() is not a


def test_reads_fall_back_to_the_store(st: ModuleType) -> None:
    store = get_session_data()
    store.start_new_session(DAY)
    store.add_bar("SPY", Bar("SPY", T0, 100.0, 101.0, 99.0, 100.5, 10))
    store.add_bar("SPY", Bar("SPY", T0 + timedelta(minutes=1), 100.5, 102.0, 100.0, 101.0, 20))
    m = st.get_session_tracker().get_session_metrics("spy", DAY)
    assert (m.session_volume, m.session_high, m.session_low, m.last_update) == (
        30,
        102.0,
        99.0,
        T0 + timedelta(minutes=1),
    )
    assert st.get_session_tracker().get_session_metrics("SPY", DAY - timedelta(days=1)).last_update is None


def test_store_without_session_date_uses_bar_dates(st: ModuleType) -> None:
    get_session_data().add_bar("SPY", Bar("SPY", T0, 100.0, 101.0, 99.0, 100.5, 10))
    tracker = st.get_session_tracker()
    assert tracker.get_session_metrics("SPY", DAY).session_volume == 10
    assert zeroed(tracker.get_session_metrics("SPY", DAY + timedelta(days=1)), "SPY", DAY + timedelta(days=1))
    assert zeroed(tracker.get_session_metrics("QQQ", DAY), "QQQ", DAY)


def test_concurrent_updates_are_not_lost(st: ModuleType) -> None:
    tracker = st.get_session_tracker()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        start = threading.Barrier(4)

        def work(i: int) -> None:
            start.wait()
            for j in range(500):
                tracker.update_session("AAPL", DAY, 100.0 + i, 50.0 - i, 1, T0 + timedelta(seconds=j))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
    finally:
        sys.setswitchinterval(old)
    m = tracker.get_session_metrics("AAPL", DAY)
    assert (m.session_volume, m.session_high, m.session_low) == (2000, 103.0, 47.0)


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("", DAY, 2.0, 1.0, 1, T0), "symbol"),
        (("A", T0, 2.0, 1.0, 1, T0), "session_date"),
        (("A", "2025-01-02", 2.0, 1.0, 1, T0), "session_date"),
        (("A", DAY, float("nan"), 1.0, 1, T0), "bar_high"),
        (("A", DAY, 2.0, 0.0, 1, T0), "bar_low"),
        (("A", DAY, 2.0, float("inf"), 1, T0), "bar_low"),
        (("A", DAY, 1.0, 2.0, 1, T0), "bar_high=1.0 is below bar_low=2.0"),
        (("A", DAY, 2.0, 1.0, -5, T0), "bar_volume"),
        (("A", DAY, 2.0, 1.0, float("nan"), T0), "bar_volume"),
        (("A", DAY, 2.0, 1.0, 1, "09:30"), "timestamp"),
    ],
)
def test_update_session_refuses_impossible_values_and_changes_nothing(
    st: ModuleType, args: tuple[Any, ...], names: str
) -> None:
    from sessiondata import InvalidDataError

    tracker = st.SessionTracker()
    tracker.update_session("A", DAY, 3.0, 2.0, 10, T0)
    before = tracker.get_session_metrics("A", DAY)
    with pytest.raises(InvalidDataError, match=names):
        tracker.update_session(*args)
    assert tracker.get_session_metrics("A", DAY) == before
