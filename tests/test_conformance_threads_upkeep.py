"""Black-box conformance of `DataUpkeepThread` with the contract's row: ``start()`` runs a first pass at once,
``run_once()``, ``status()``, the context manager, ``stop(timeout)`` bound with a hung repository, faults
recorded (never a silent death), a registered symbol with no bars backfilled, gaps up to the clock's
``now()`` or, without a clock, up to the newest bar; live mode wakes on writes and at least every ``period``
seconds; backtest mode acts only at simulated times, deterministically, never on wall-clock wake-ups.
Public API only; a recording repository fake; deadlines, not naps."""

from __future__ import annotations

import random
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataUpkeepThread,
    InMemoryBarRepository,
    Provenance,
    SessionData,
    Tick,
    TimeProvider,
)

M = timedelta(minutes=1)
DAY = date(2025, 1, 2)
T0 = datetime(2025, 1, 2, 9, 30)
DEADLINE = 30.0
SLACK = 2.0  # what a bound may overrun by on a loaded 2-core machine (CI runs three suites at once)


def bars(symbol: str, n: int, *, skip: tuple[int, ...] = ()) -> list[Bar]:
    return [Bar(symbol, T0 + i * M, 100.0, 101.0, 99.0, 100.5, 10 + i) for i in range(n) if i not in skip]


class Recording:
    """A repository fake over an in-memory one: records every call; can fail, or hang until released."""

    def __init__(self, stored: list[Bar], *, fail: bool = False, hang: bool = False) -> None:
        self.inner = InMemoryBarRepository(stored)
        self.calls: list[tuple[str, datetime, datetime]] = []
        self.called = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        self.hang = hang

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.calls.append((symbol, start, end))
        self.called.set()
        if self.hang:
            self.release.wait(DEADLINE)
        if self.fail:
            raise OSError("share unreachable")
        return self.inner.get_bars(symbol, start, end, interval)


def store_with(*series: list[Bar]) -> SessionData:
    store = SessionData()
    store.start_new_session(DAY)
    for s in series:
        store.add_bars_batch(s[0].symbol, s)
    return store


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def new_threads(before: set[threading.Thread]) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t not in before and t.is_alive()}


def test_without_a_clock_gaps_up_to_the_newest_bar_and_an_empty_symbol_is_backfilled() -> None:
    store = store_with(bars("A", 10, skip=(3, 4)))
    store.register_symbol("B")  # registered, no bar yet
    repo = Recording(bars("A", 60) + bars("B", 60))
    upkeep = DataUpkeepThread(store, repo)
    status = upkeep.run_once()
    assert isinstance(status, dict)
    assert [b.timestamp for b in store.get_bars("A")] == [T0 + i * M for i in range(10)]
    assert store.get_provenance("A", T0 + 3 * M) is Provenance.GAP_FILLED
    b = [x.timestamp for x in store.get_bars("B")]
    assert b[0] == T0  # backfilled from the open
    assert b[-1] <= T0 + 9 * M  # never past the store's newest bar
    assert max(end for _s, _a, end in repo.calls) <= T0 + 10 * M
    assert status["bars_filled"] == 2 + len(b)


def test_with_a_clock_gaps_up_to_its_now_and_never_a_minute_not_yet_ended() -> None:
    store = store_with(bars("A", 10, skip=(3,)))
    clock = TimeProvider(start=T0 + 20 * M)
    repo = Recording(bars("A", 60))
    upkeep = DataUpkeepThread(store, repo, time_provider=clock)
    upkeep.run_once()
    stamps = [x.timestamp for x in store.get_bars("A")]
    assert T0 + 3 * M in stamps
    assert stamps[-1] + M < clock.now()  # minutes up to now() are looked for, none still running
    assert stamps[-1] >= T0 + 18 * M  # the documented lag: a minute is due one minute after it ended
    assert all(end <= clock.now() for _s, _a, end in repo.calls)


def test_backtest_mode_acts_only_at_simulated_times_and_is_deterministic() -> None:
    def run() -> tuple[list[Any], list[Any]]:
        store = store_with(bars("A", 5, skip=(2,)))
        clock = TimeProvider(start=T0 + 5 * M)
        repo = Recording(bars("A", 390))
        before = set(threading.enumerate())
        upkeep = DataUpkeepThread(store, repo, time_provider=clock, period=0.01)
        upkeep.start()  # the first pass at once, in this thread
        assert new_threads(before) == set()  # no thread in backtest mode
        assert store.get_provenance("A", T0 + 2 * M) is Provenance.GAP_FILLED
        passes = upkeep.status()["passes"]
        store.add_bar("A", Bar("A", T0 + 9 * M, 100.0, 101.0, 99.0, 100.5, 1))  # a write wakes nothing
        assert upkeep.status()["passes"] == passes
        seen = []
        for minute in range(6, 15):
            clock.advance_to(T0 + minute * M)  # the pass runs here, in the caller's thread
            seen.append([x.timestamp for x in store.get_bars("A")])
        assert seen[-1] == [T0 + i * M for i in range(13)]  # up to now - 2 minutes, the 9:39 streamed
        assert upkeep.stop(timeout=1.0) is True
        clock.advance_to(T0 + 30 * M)  # stopped: the clock's moves run no pass
        assert store.get_bar_count("A") == 13
        return seen, repo.calls

    assert run() == run()


def test_live_mode_first_pass_wakes_on_writes_and_every_period() -> None:
    store = store_with(bars("A", 10, skip=(3,)))
    repo = Recording(bars("A", 60))
    before = set(threading.enumerate())
    upkeep = DataUpkeepThread(store, repo, period=3600.0)
    upkeep.start()
    assert len(repo.calls) == 1  # the first pass ran before start() returned
    assert store.get_bar_count("A") == 10
    store.add_bar("A", Bar("A", T0 + 12 * M, 100.0, 101.0, 99.0, 100.5, 1))  # 09:40 and 09:41 missing now
    wait_for(lambda: store.get_bar_count("A") == 13, "a pass woken by the write (period is an hour)")
    assert upkeep.stop(timeout=DEADLINE) is True
    assert new_threads(before) == set()

    periodic = DataUpkeepThread(store, repo, period=0.02)
    periodic.start()
    first = periodic.status()["passes"]
    wait_for(lambda: periodic.status()["passes"] >= first + 3, "passes every period without writes")
    assert periodic.stop(timeout=DEADLINE) is True
    assert new_threads(before) == set()


def test_context_manager_starts_and_stops_the_thread() -> None:
    store = store_with(bars("A", 10, skip=(3,)))
    before = set(threading.enumerate())
    with DataUpkeepThread(store, Recording(bars("A", 60)), period=0.05) as upkeep:
        assert upkeep.status()["running"] is True
        assert store.get_bar_count("A") == 10
    assert upkeep.status()["running"] is False
    assert new_threads(before) == set()


@pytest.mark.parametrize("mode", ["live", "backtest"])
def test_run_once_after_stop_runs_a_whole_pass_and_a_later_stop_waits_for_its_fetch_thread(mode: str) -> None:
    """`stop` ends the upkeep's own passes; an explicit `run_once` after it still fills, as the same call on
    an upkeep never started (it filled nothing, silently: the pass took the stop for itself), and a later
    `stop` leaves no thread of it behind."""
    later = [b for b in bars("A", 20) if b.timestamp.minute % 3]  # gaps at :33, :36, :39...

    def run_once(stop_first: bool) -> tuple[list[Bar], int]:
        store = store_with(bars("A", 10))
        clock = TimeProvider(start=T0 + 10 * M) if mode == "backtest" else None
        upkeep = DataUpkeepThread(store, Recording(bars("A", 60)), time_provider=clock, period=0.05)
        if stop_first:
            upkeep.start()  # finds nothing to fill
            assert upkeep.stop(timeout=DEADLINE) is True
        store.add_bars_batch("A", later)
        if clock is not None:
            clock.advance_to(T0 + 20 * M)  # moves no pass of a stopped (or never started) upkeep
        held = store.get_bar_count("A")
        status = upkeep.run_once()
        assert status["fault_count"] == 0
        assert upkeep.stop(timeout=DEADLINE) is True
        return list(store.get_bars("A")), store.get_bar_count("A") - held

    before = set(threading.enumerate())
    after_stop = run_once(stop_first=True)
    assert after_stop == run_once(stop_first=False)
    assert after_stop[1] > 0
    assert new_threads(before) == set()


def test_stop_is_bounded_with_a_hung_repository_and_says_what_it_abandoned() -> None:
    store = store_with(bars("A", 10, skip=(3,)))
    repo = Recording(bars("A", 60), hang=True)
    upkeep = DataUpkeepThread(store, repo, period=0.05, fetch_timeout=DEADLINE)
    starter = threading.Thread(target=upkeep.start)
    starter.start()
    try:
        assert repo.called.wait(DEADLINE)
        began = time.monotonic()
        assert upkeep.stop(timeout=0.3) is False  # the fetch still hangs: abandoned, and said so
        assert time.monotonic() - began < 0.3 + SLACK
        starter.join(DEADLINE)
        assert not starter.is_alive()
        assert upkeep.status()["abandoned_fetches"] == 1
        assert upkeep.status()["running"] is False
    finally:
        repo.release.set()
        starter.join(DEADLINE)


def test_repository_faults_are_recorded_and_the_thread_lives_on() -> None:
    store = store_with(bars("A", 10, skip=(3,)))
    repo = Recording(bars("A", 60), fail=True)
    upkeep = DataUpkeepThread(store, repo, period=0.02, retry_base=0.01, retry_cap=0.02, jitter=0.0)
    upkeep.start()
    try:
        status = upkeep.status()
        assert status["fault_count"] >= 1
        assert "share unreachable" in status["last_error"]
        assert status["faults"][-1]["symbol"] == "A"
        repo.fail = False  # the share comes back: a later pass fills the minute
        wait_for(lambda: store.get_bar_count("A") == 10, "the retry after the repository recovered")
        assert upkeep.status()["running"] is True
    finally:
        assert upkeep.stop(timeout=DEADLINE) is True


def test_a_hand_wired_backtest_shows_a_fill_no_earlier_than_its_minute_ends_and_by_the_documented_lag() -> (
    None
):
    """A coordinator and an upkeep sharing one backtest clock (no manager): the missing 09:35 never shows
    while the consumer handles an item known before 09:36, and shows from the first item known at or after
    09:37 (the documented lag), the same in every run."""

    def run() -> list[tuple[Any, bool]]:
        store = SessionData()
        clock = TimeProvider()
        stream = bars("A", 12, skip=(5,))
        ticks = [Tick("A", T0 + timedelta(minutes=5, seconds=s), 100.0, 1) for s in (10, 50)]
        ticks += [Tick("A", T0 + timedelta(minutes=6, seconds=s), 100.0, 1) for s in (0, 30)]
        coord = BacktestStreamCoordinator(store, time_provider=clock, max_queue_size=4, batch_size=2)
        coord.feed_data_list("A", "bar", stream)
        coord.feed_data_list("A", "tick", ticks)
        upkeep = DataUpkeepThread(store, Recording(bars("A", 60)), time_provider=clock)
        upkeep.start()
        seen = []
        for item in coord.merged_stream():
            k = item.timestamp + M if isinstance(item, Bar) else item.timestamp
            filled = store.get_provenance("A", T0 + 5 * M) is Provenance.GAP_FILLED
            if k < T0 + 6 * M:
                assert not filled, item
            if k >= T0 + 7 * M:
                assert filled, item
            seen.append((item, filled))
        assert coord.stop_worker(DEADLINE)
        assert upkeep.stop(timeout=1.0)
        return seen

    first = run()
    assert any(filled for _item, filled in first)
    assert run() == first


class Sluggish:
    """A repository slower than the upkeep's fetch timeout: every fetch is given up and the next one gets a
    new fetch thread, so a pass starts fetch threads again and again (each empty answer is retried)."""

    def __init__(self) -> None:
        self.never = threading.Event()
        self.called = threading.Event()

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.called.set()
        self.never.wait(0.002)  # a bounded wait standing for a slow call
        return []


@pytest.mark.usefixtures("switch_often")
def test_stop_racing_the_first_pass_never_raises_and_true_means_every_thread_finished() -> None:
    """`stop` from another thread while `start`'s first pass is starting fetch threads (one per fetch: each
    times out): it returns a bool (never `RuntimeError: cannot join thread before it is started`), and True
    only with every thread the upkeep started finished."""
    rng = random.Random(5)
    before = set(threading.enumerate())
    for _ in range(300):
        store = store_with(bars("A", 200, skip=tuple(range(1, 200, 2))))
        repo = Sluggish()
        upkeep = DataUpkeepThread(
            store, repo, period=0.001, fetch_timeout=0.0005, retry_base=0.0, retry_cap=0.0, jitter=0.0
        )
        starter = threading.Thread(target=upkeep.start)
        starter.start()
        try:
            for _ in range(rng.randrange(3000)):  # spreads where the stop lands; no assertion depends on it
                pass
            # A stop before `start` began is undone by it (stop, then start, is a running upkeep): the
            # thread check holds for a stop after the first pass began fetching.
            began = repo.called.is_set()
            finished = upkeep.stop(timeout=DEADLINE)  # a bool, never an exception
            starter.join(DEADLINE)
            assert not starter.is_alive()
            if finished and began:
                assert new_threads(before) == set()
        finally:
            upkeep.stop(timeout=DEADLINE)
            starter.join(DEADLINE)
    assert new_threads(before) == set()
