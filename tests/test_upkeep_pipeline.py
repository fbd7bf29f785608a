"""The upkeep in a backtest: it acts at simulated times inside the replay's pipeline (never on wall-clock
wake-ups, never ahead of the consumer), and it backfills a registered symbol that has no bars yet."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataUpkeepThread,
    InMemoryBarRepository,
    Provenance,
    SessionData,
    StreamType,
    TimeProvider,
)

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
DAY = date(2024, 3, 4)


def minute_bars(symbol: str, n: int, *, aware: bool, first: int = 0) -> list[Bar]:
    start = datetime(2024, 3, 4, 9, 30, tzinfo=NY if aware else None)
    return [Bar(symbol, start + i * M, 10.0, 10.5, 9.5, 10.0, 100 + i) for i in range(first, first + n)]


@pytest.mark.parametrize("aware", [False, True], ids=["naive", "aware"])
def test_a_registered_symbol_without_bars_is_backfilled(aware: bool) -> None:
    repo = InMemoryBarRepository(minute_bars("QUIET", 60, aware=aware) + minute_bars("LOUD", 60, aware=aware))
    store = SessionData()
    store.start_new_session(DAY)
    store.register_symbol("QUIET")
    clock = TimeProvider("backtest", start=minute_bars("X", 1, aware=aware, first=40)[0].timestamp)
    up = DataUpkeepThread(store, repo, time_provider=clock)
    up.run_once()
    # Up to one minute before the clock: 09:30 .. 10:08.
    assert store.get_bars("QUIET") == minute_bars("QUIET", 39, aware=aware)
    assert store.get_provenance("QUIET", minute_bars("QUIET", 1, aware=aware)[0].timestamp) is (
        Provenance.GAP_FILLED
    )
    assert up.status()["symbols"]["QUIET"]["open_gaps"] == []


@pytest.mark.parametrize("aware", [False, True], ids=["naive", "aware"])
def test_without_a_clock_the_style_comes_from_the_repository(aware: bool) -> None:
    repo = InMemoryBarRepository(minute_bars("QUIET", 30, aware=aware))
    store = SessionData()
    store.start_new_session(DAY)
    store.register_symbol("QUIET")
    store.end_session()  # the whole session is due
    up = DataUpkeepThread(store, repo)
    up.run_once()
    assert store.get_bars("QUIET") == minute_bars("QUIET", 30, aware=aware)
    assert up.status()["faults"] == []


class RecordingRepo:
    """A repository that records, for each fetch, the simulated time when it was asked."""

    def __init__(self, inner: Any, clock: TimeProvider) -> None:
        self.inner = inner
        self.clock = clock
        self.asked: list[tuple[datetime, datetime]] = []

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.asked.append((end, self.clock.now()))
        result: list[Bar] = self.inner.get_bars(symbol, start, end, interval)
        return result

    def time_range(self, symbol: str) -> tuple[datetime, datetime] | None:
        return self.inner.time_range(symbol)  # type: ignore[no-any-return]


def test_backtest_upkeep_fills_in_the_pipeline_never_ahead_of_the_consumer() -> None:
    full = minute_bars("AAA", 120, aware=False)
    other = minute_bars("BBB", 120, aware=False)
    streamed = [b for i, b in enumerate(full) if i % 10 != 3]
    store = SessionData()
    clock = TimeProvider("backtest")
    repo = RecordingRepo(InMemoryBarRepository(full), clock)
    up = DataUpkeepThread(store, repo, time_provider=clock, period=0.001)
    coord = BacktestStreamCoordinator(
        store, time_provider=clock, session_listeners=[up], max_queue_size=10**6
    )
    coord.feed_data_list("AAA", StreamType.BAR, streamed)
    coord.feed_data_list("BBB", StreamType.BAR, other)
    up.start()
    try:
        assert not up.is_alive()  # backtest mode: no thread that wakes on writes
        for item in coord.merged_stream():
            # A missing minute is back by the time the replay is two minutes past it, never earlier.
            have = {b.timestamp for b in store.get_bars("AAA")}
            for b in full:
                if b.timestamp + 2 * M < item.timestamp + M:
                    assert b.timestamp in have, (item, b)
                elif b.timestamp + M > item.timestamp + M:
                    assert b.timestamp not in have, (item, b)
    finally:
        assert up.stop(timeout=5.0)
        coord.stop_worker()
    assert store.get_bars("AAA") == full
    # Every fetch asked for minutes that had ended a minute before the simulated time of the moment, but
    # the last pass, once the session ended: it looks at the whole session.
    close = datetime(2024, 3, 4, 16, 0)
    assert repo.asked
    assert all(end <= now - M for end, now in repo.asked if end != close)
    assert up.status()["symbols"]["AAA"]["bars_filled"] == len(full) - len(streamed)


@pytest.mark.parametrize("aware", [False, True], ids=["naive", "aware"])
def test_a_pass_visits_only_symbols_that_may_miss_a_minute(aware: bool) -> None:
    """Passes run each simulated minute; a symbol complete up to the pass's time costs a comparison, not a
    visit: only the symbol with missing minutes is visited, at most twice per missing minute."""
    symbols = [f"S{i:02d}" for i in range(20)]
    full = {s: minute_bars(s, 390, aware=aware) for s in symbols}
    gappy = symbols[7]
    store = SessionData()
    clock = TimeProvider("backtest")
    up = DataUpkeepThread(store, InMemoryBarRepository(full[gappy]), time_provider=clock)
    coord = BacktestStreamCoordinator(store, time_provider=clock, session_listeners=[up])
    for s in symbols:
        streamed = [b for i, b in enumerate(full[s]) if s != gappy or i not in (100, 200, 201)]
        coord.feed_data_list(s, StreamType.BAR, streamed)
    up.start()
    try:
        assert sum(1 for _ in coord.merged_stream()) == 20 * 390 - 3
    finally:
        assert up.stop(timeout=5.0)
        coord.stop_worker()
    status = up.status()
    assert store.get_bars(gappy) == full[gappy]
    assert status["symbols"][gappy]["bars_filled"] == 3
    assert status["passes"] >= 390  # a pass each simulated minute
    # Before: every pass visited every symbol (20 x 390 visits).
    assert 1 <= status["symbols_visited"] <= 2 * 3, status["symbols_visited"]
