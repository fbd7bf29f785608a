"""`stop_worker()` and `pause()` take effect within their bound even when every item is being skipped, and
the upkeep's `stop()` keeps its bound while it sifts a huge wrong answer from a repository."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from fakes import HungRepository
from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataUpkeepThread,
    SessionData,
    StreamType,
    TimeProvider,
)

M = timedelta(minutes=1)
DEADLINE = 10.0


def outside_the_session() -> Iterator[Bar]:
    """Bars at 03:00 on ever later days: all filtered out (pre-market), forever."""
    start = datetime(2024, 3, 4, 3, 0)
    for i in itertools.count():
        yield Bar("AAA", start + timedelta(days=i // 60, minutes=i % 60), 1.0, 1.0, 1.0, 1.0, 1)


def late_after_one(first: Bar) -> Iterator[Bar]:
    """One bar, then bars before it forever: all dropped as out of order."""
    yield first
    while True:
        yield Bar("AAA", first.timestamp - M, 1.0, 1.0, 1.0, 1.0, 1)


def skipping_sources() -> dict[str, tuple[Any, dict[str, Any]]]:
    first = Bar("AAA", datetime(2024, 3, 4, 10, 0), 1.0, 1.0, 1.0, 1.0, 1)
    return {
        "outside": (outside_the_session, {}),
        "dropped": (lambda: late_after_one(first), {"on_out_of_order": "drop"}),
    }


def wait_until_skipping(coord: BacktestStreamCoordinator) -> None:
    """Deadline-bounded wait until the worker has skipped items (so it is inside the run of skips)."""
    done = threading.Event()
    end = DEADLINE
    while end > 0:
        status = coord.status()
        if status["filtered"] + status["dropped_out_of_order"] > 100:
            return
        done.wait(0.001)
        end -= 0.001
    raise AssertionError("the worker never skipped an item")


@pytest.mark.parametrize("kind", ["outside", "dropped"])
def test_stop_worker_ends_a_worker_that_only_skips(kind: str) -> None:
    make, options = skipping_sources()[kind]
    coord = BacktestStreamCoordinator(SessionData(), **options)
    coord.register_stream("AAA", StreamType.BAR, make())
    coord.start_worker()
    wait_until_skipping(coord)
    assert coord.stop_worker(timeout=DEADLINE) is True
    assert coord.status()["worker_alive"] is False


@pytest.mark.parametrize("kind", ["outside", "dropped"])
def test_pause_parks_a_worker_that_only_skips(kind: str) -> None:
    make, options = skipping_sources()[kind]
    store = SessionData()
    coord = BacktestStreamCoordinator(store, **options)
    coord.register_stream("AAA", StreamType.BAR, make())
    coord.start_worker()
    wait_until_skipping(coord)
    coord.pause()
    assert coord.wait_paused(DEADLINE)
    assert coord.status()["state"] == "paused"
    coord.resume()
    assert coord.stop_worker(timeout=DEADLINE) is True


class HugeWrongAnswer:
    """A repository whose every answer is 400,000 bars outside the asked range."""

    def __init__(self) -> None:
        ts = datetime(2020, 1, 2, 9, 30)
        bar = Bar("AAA", ts, 1.0, 1.0, 1.0, 1.0, 1)
        self.answer = [bar] * 400_000
        self.answered = threading.Event()

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.answered.set()
        return self.answer


def test_upkeep_stop_keeps_its_bound_while_sifting_a_huge_answer() -> None:
    store = SessionData()
    store.start_new_session(date(2024, 3, 4))
    store.add_bar("AAA", Bar("AAA", datetime(2024, 3, 4, 9, 30), 1.0, 1.0, 1.0, 1.0, 1))
    store.add_bar("AAA", Bar("AAA", datetime(2024, 3, 4, 9, 45), 1.0, 1.0, 1.0, 1.0, 1))
    repo = HugeWrongAnswer()
    up = DataUpkeepThread(store, repo, fetch_timeout=DEADLINE)
    starter = threading.Thread(target=up.start, daemon=True)  # start() runs the first pass in its caller
    starter.start()
    assert repo.answered.wait(DEADLINE)
    # Sifting 400,000 wrong bars takes seconds; stop must not wait for it.
    assert up.stop(timeout=1.0) is True
    starter.join(DEADLINE)
    assert not starter.is_alive()
    assert store.get_bar_count("AAA") == 2


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_upkeep_stopped_during_its_first_pass_starts_nothing_after(mode: str) -> None:
    # `start` runs the first pass in its caller; a `stop` from another thread meanwhile must win: no thread
    # started and no clock subscription made after `stop` returned (a later clock move runs no pass).
    store = SessionData()
    store.start_new_session(date(2024, 3, 4))
    store.add_bar("AAA", Bar("AAA", datetime(2024, 3, 4, 9, 30), 1.0, 1.0, 1.0, 1.0, 1))
    store.add_bar("AAA", Bar("AAA", datetime(2024, 3, 4, 9, 45), 1.0, 1.0, 1.0, 1.0, 1))
    clock = TimeProvider(mode, start=datetime(2024, 3, 4, 10, 0)) if mode == "backtest" else None
    repo = HungRepository(DEADLINE)
    up = DataUpkeepThread(store, repo, time_provider=clock, fetch_timeout=DEADLINE)
    starter = threading.Thread(target=up.start, daemon=True)
    starter.start()
    assert repo.called.wait(DEADLINE)
    up.stop(timeout=0.5)
    repo.release.set()
    starter.join(DEADLINE)
    assert not starter.is_alive()
    passes = up.status()["passes"]
    if clock is not None:
        clock.advance_to(datetime(2024, 3, 4, 10, 30))
    assert up.status()["passes"] == passes
    assert up.status()["running"] is False
    assert up.is_alive() is False
    assert up.stop(timeout=DEADLINE) is True


def test_upkeep_stop_racing_the_thread_start_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # `stop` from another thread just as `start` creates the background thread (after the first pass):
    # `stop` must neither fail ("cannot join thread before it is started") nor miss the thread.
    entered, stop_called = threading.Event(), threading.Event()
    real_thread = threading.Thread

    class PausingThread(real_thread):
        def start(self) -> None:
            if self.name == "sessiondata-upkeep":
                entered.set()
                stop_called.wait(0.5)  # bounded: with `stop` waiting for the start, this just times out
            super().start()

    store = SessionData()
    up = DataUpkeepThread(store, None)
    monkeypatch.setattr(threading, "Thread", PausingThread)
    starter = real_thread(target=up.start, daemon=True)
    starter.start()
    assert entered.wait(DEADLINE)
    outcome: list[object] = []

    def stopper() -> None:
        stop_called.set()
        try:
            outcome.append(up.stop(timeout=DEADLINE))
        except Exception as exc:
            outcome.append(exc)

    t = real_thread(target=stopper, daemon=True)
    t.start()
    t.join(DEADLINE)
    starter.join(DEADLINE)
    assert outcome == [True]
    assert up.is_alive() is False


def test_upkeep_stop_keeps_its_bound_while_a_live_pass_waits_for_the_write_lock() -> None:
    """`stop` takes neither the store's write lock nor the pass lock: with a live pass blocked on the write
    lock (held here), it returns at its deadline, reporting the thread still running; once the lock is
    free the pass ends and a second `stop` reports everything finished."""
    entered = threading.Event()

    class Store(SessionData):
        def writer_state(self) -> Any:
            if threading.current_thread().name == "sessiondata-upkeep":
                entered.set()
            return super().writer_state()

    store = Store()
    store.start_new_session(date(2024, 3, 4))
    up = DataUpkeepThread(store, None, period=DEADLINE)
    up.start()
    results: list[bool] = []
    with store.write_lock:
        store.add_bar("AAA", Bar("AAA", datetime(2024, 3, 4, 9, 30), 1.0, 1.0, 1.0, 1.0, 1))  # wakes it
        assert entered.wait(DEADLINE)
        stopper = threading.Thread(target=lambda: results.append(up.stop(timeout=0.05)))
        stopper.start()
        stopper.join(DEADLINE)
        assert not stopper.is_alive()
        assert results == [False]  # returned while the pass still waited for the lock held here
    assert up.stop(timeout=DEADLINE) is True
    assert not up.is_alive()
