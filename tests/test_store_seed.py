"""The seed plan's test plan (``seed/phase1-session-data-plan.md``, "Testing Plan"), made synchronous.

Changes from the seed, all deliberate: ``await`` is gone; minutes are ``base + timedelta(minutes=i)`` (the
seed's ``datetime(2025, 1, 1, 9, 30 + i)`` breaks past i = 29, and its ``datetime(..., 9, 30, i)`` past
59 seconds); the asyncio "thread safety" test uses real threads; the timing test asserts behaviour only.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest

from reference import check_store
from sessiondata import Bar, SessionData, SymbolSessionData, get_session_data, reset_session_data

BASE = datetime(2025, 1, 1, 9, 30)


def minute(i: int) -> datetime:
    return BASE + timedelta(minutes=i)


@pytest.fixture
def session_data() -> SessionData:
    """A fresh process-wide instance for each test, as the seed does it."""
    reset_session_data()
    return get_session_data()


def test_register_symbol(session_data: SessionData) -> None:
    symbol_data = session_data.register_symbol("AAPL")

    assert isinstance(symbol_data, SymbolSessionData)
    assert symbol_data.symbol == "AAPL"
    assert "AAPL" in session_data.get_active_symbols()
    assert len(symbol_data.bars_1m) == 0


def test_add_bar(session_data: SessionData) -> None:
    bar = Bar(symbol="AAPL", timestamp=minute(0), open=150.0, high=151.0, low=149.0, close=150.5, volume=1000)

    session_data.add_bar("AAPL", bar)

    bars = session_data.get_bars("AAPL")
    assert len(bars) == 1
    assert bars[0].close == 150.5

    metrics = session_data.get_session_metrics("AAPL")
    assert metrics["session_volume"] == 1000
    assert metrics["session_high"] == 151.0
    assert metrics["session_low"] == 149.0
    check_store(session_data)


def test_add_bars_batch(session_data: SessionData) -> None:
    bars = [
        Bar(
            symbol="AAPL",
            timestamp=minute(i),
            open=150.0 + i,
            high=151.0 + i,
            low=149.0 + i,
            close=150.5 + i,
            volume=1000 * (i + 1),
        )
        for i in range(10)
    ]

    session_data.add_bars_batch("AAPL", bars)

    stored_bars = session_data.get_bars("AAPL")
    assert len(stored_bars) == 10
    assert stored_bars == bars

    metrics = session_data.get_session_metrics("AAPL")
    assert metrics["bar_count"] == 10
    assert metrics["session_volume"] == sum(b.volume for b in bars)
    check_store(session_data)


def test_session_lifecycle(session_data: SessionData) -> None:
    session_date = date(2025, 1, 1)

    session_data.start_new_session(session_date)
    assert session_data.current_session_date == session_date
    assert not session_data.session_ended

    bar = Bar(symbol="AAPL", timestamp=minute(0), open=150.0, high=151.0, low=149.0, close=150.5, volume=1000)
    session_data.add_bar("AAPL", bar)

    session_data.end_session()
    assert session_data.session_ended

    session_data.start_new_session(date(2025, 1, 2))
    bars = session_data.get_bars("AAPL")
    assert len(bars) == 0  # data cleared
    assert "AAPL" in session_data.get_active_symbols()  # the symbol stays registered
    assert session_data.current_session_date == date(2025, 1, 2)
    assert not session_data.session_ended


def test_get_bars_with_filters(session_data: SessionData) -> None:
    bars = [
        Bar(symbol="AAPL", timestamp=minute(i), open=150.0, high=151.0, low=149.0, close=150.5, volume=1000)
        for i in range(10)
    ]
    session_data.add_bars_batch("AAPL", bars)

    filtered = session_data.get_bars("AAPL", start=minute(5))
    assert filtered == bars[5:]  # bars 5-9

    filtered = session_data.get_bars("AAPL", end=minute(5))
    assert filtered == bars[:5]  # bars 0-4

    filtered = session_data.get_bars("AAPL", start=minute(2), end=minute(7))
    assert filtered == bars[2:7]  # bars 2-6


def test_thread_safety(session_data: SessionData) -> None:
    """Writers for three symbols at once, on real threads."""
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def add_bars_task(symbol: str, count: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(count):
                bar = Bar(
                    symbol=symbol,
                    timestamp=minute(i),
                    open=150.0,
                    high=151.0,
                    low=149.0,
                    close=150.5,
                    volume=1000,
                )
                session_data.add_bar(symbol, bar)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=add_bars_task, args=(s, 10)) for s in ("AAPL", "GOOGL", "MSFT")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a writer did not finish"
    assert not errors, errors

    assert len(session_data.get_bars("AAPL")) == 10
    assert len(session_data.get_bars("GOOGL")) == 10
    assert len(session_data.get_bars("MSFT")) == 10
    check_store(session_data)


def _hundred(symbol: str = "AAPL", *, step_prices: bool = True) -> list[Bar]:
    d = 1.0 if step_prices else 0.0
    return [
        Bar(
            symbol=symbol,
            timestamp=minute(i),
            open=150.0 + d * i,
            high=151.0 + d * i,
            low=149.0 + d * i,
            close=150.5 + d * i,
            volume=1000,
        )
        for i in range(100)
    ]


def test_get_latest_bar(session_data: SessionData) -> None:
    session_data.add_bars_batch("AAPL", _hundred())

    latest = session_data.get_latest_bar("AAPL")
    assert latest is not None
    assert latest.close == 150.5 + 99

    all_bars = session_data.get_bars("AAPL")
    assert latest == all_bars[-1]


def test_get_last_n_bars(session_data: SessionData) -> None:
    session_data.add_bars_batch("AAPL", _hundred())

    last_20 = session_data.get_last_n_bars("AAPL", 20)
    assert len(last_20) == 20
    assert last_20[0].close == 150.5 + 80
    assert last_20[-1].close == 150.5 + 99

    all_bars = session_data.get_last_n_bars("AAPL", 200)
    assert len(all_bars) == 100


def test_get_bars_since(session_data: SessionData) -> None:
    session_data.add_bars_batch("AAPL", _hundred(step_prices=False))

    since_time = minute(20)  # 09:50
    recent = session_data.get_bars_since("AAPL", since_time)

    assert len(recent) == 80  # bars 20-99
    assert all(b.timestamp >= since_time for b in recent)
    assert recent[0].timestamp == since_time


def test_get_bar_count(session_data: SessionData) -> None:
    session_data.add_bars_batch("AAPL", _hundred(step_prices=False))
    assert session_data.get_bar_count("AAPL") == 100


def test_get_latest_bars_multi(session_data: SessionData) -> None:
    for symbol in ["AAPL", "GOOGL", "MSFT"]:
        # The seed's closes (150.5 + i) rise above its high of 151.0, which is an impossible bar: keep the
        # closes and widen the high instead.
        bars = [
            Bar(
                symbol=symbol,
                timestamp=minute(i),
                open=150.0,
                high=max(151.0, 150.5 + i),
                low=149.0,
                close=150.5 + i,
                volume=1000,
            )
            for i in range(10)
        ]
        session_data.add_bars_batch(symbol, bars)

    latest_bars = session_data.get_latest_bars_multi(["AAPL", "GOOGL", "MSFT"])

    assert len(latest_bars) == 3
    for symbol in ["AAPL", "GOOGL", "MSFT"]:
        bar = latest_bars[symbol]
        assert bar is not None
        assert bar.close == 150.5 + 9


def test_latest_bar_many_calls(session_data: SessionData) -> None:
    """The seed's timing test, as behaviour: 1000 bars, 1000 reads, always the newest bar (no timing)."""
    bars = [
        Bar(
            symbol="AAPL",
            timestamp=minute(i),
            open=150.0,
            high=151.0,
            low=149.0,
            close=150.5,
            volume=1000 + i,
        )
        for i in range(1000)
    ]
    session_data.add_bars_batch("AAPL", bars)

    results = {session_data.get_latest_bar("AAPL") for _ in range(1000)}
    assert results == {bars[-1]}
    assert session_data.get_bar_count("AAPL") == 1000
    check_store(session_data)
