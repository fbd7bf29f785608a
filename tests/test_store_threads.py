"""Real threads against one `SessionData`: consistent snapshots under contention, lock-free reads, singleton.

Thread switches are forced as often as the interpreter allows (``sys.setswitchinterval(1e-6)``, restored after
each test) to shake out races. No test depends on timing to pass: threads get generous ``join(timeout)``
deadlines and the test asserts they finished; nothing sleeps.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from reference import check_snapshot, check_store
from sessiondata import Bar, SessionData, SymbolSessionData, Tick, get_session_data, reset_session_data

D = date(2025, 1, 2)
DEADLINE = 60.0


def at(i: int, day: date = D) -> datetime:
    return datetime.combine(day, time(9, 30)) + timedelta(minutes=i)


def mk(sym: str, i: int, price: float = 100.0, vol: int = 10, day: date = D) -> Bar:
    return Bar(sym, at(i, day), price, price + 1, price - 1, price + 0.5, vol)


pytestmark = pytest.mark.usefixtures("switch_often")  # every test here runs its threads switching often


class Crew:
    """Threads whose exceptions are collected and re-raised by `join_all`, so no failure is silent."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def spawn(self, fn: Callable[[], None], name: str) -> threading.Thread:
        def run() -> None:
            try:
                fn()
            except BaseException as e:
                self.errors.append(e)

        t = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(t)
        t.start()
        return t

    def join_all(self, timeout: float = DEADLINE) -> None:
        for t in self.threads:
            t.join(timeout)
        stuck = [t.name for t in self.threads if t.is_alive()]
        assert not stuck, f"threads did not finish by the deadline: {stuck}"
        if self.errors:
            raise self.errors[0]


def check_reader_view(store: SessionData, snap: SymbolSessionData) -> None:
    """Everything one snapshot says is mutually consistent (the store's checker plus the read methods)."""
    check_snapshot(snap, store.session_clock, store.historical_bars_trailing_days)
    bars = snap.get_last_n_bars(10**9)
    assert all(a.timestamp < b.timestamp for a, b in itertools.pairwise(bars)), (
        "sorted, no duplicate timestamps"
    )
    m = snap.get_session_metrics()
    assert m["bar_count"] == len(bars) == snap.get_bar_count()
    assert m["session_volume"] == sum(b.volume for b in bars)
    assert m["session_high"] == (max(b.high for b in bars) if bars else None)
    assert m["session_low"] == (min(b.low for b in bars) if bars else None)
    assert m["last_update"] == (bars[-1].timestamp if bars else None)
    assert snap.get_latest_bar() == (bars[-1] if bars else None)
    ticks = list(snap.ticks)
    assert all(a.timestamp <= b.timestamp for a, b in itertools.pairwise(ticks))


def test_many_writers_and_readers_see_only_consistent_snapshots() -> None:
    store = SessionData()
    n = 240
    crew = Crew()
    writers_done = threading.Event()
    reads = [0]

    def in_order(sym: str) -> Callable[[], None]:
        def run() -> None:
            for i in range(0, n, 2):  # even minutes, in time order
                store.add_bar(sym, mk(sym, i, 100 + i % 7, vol=i))

        return run

    def late_and_corrections(sym: str) -> Callable[[], None]:
        def run() -> None:
            for i in range(n - 1, 0, -2):  # odd minutes, newest first: mostly out of order
                store.add_bar(sym, mk(sym, i, 100 + i % 5, vol=i))
            for i in range(0, n, 10):  # corrections, some of bars not yet written
                store.add_bar(sym, mk(sym, i, 90, vol=1))

        return run

    def batches(sym: str) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, n, 30):
                store.add_bars_batch(sym, [mk(sym, i, 120, vol=3) for i in range(start, start + 30)])
                store.add_ticks_batch(sym, [Tick(sym, at(start + k % 3), 100, k) for k in range(5)])

        return run

    def reader(sym: str) -> Callable[[], None]:
        def run() -> None:
            last_version = -1
            last_count = 0
            while not writers_done.is_set():
                snap = store.get_symbol_data(sym)
                if snap is None:
                    continue
                check_reader_view(store, snap)
                # Bars are only ever added here, so a later snapshot never shows fewer or an older version.
                assert snap.version >= last_version
                assert snap.get_bar_count() >= last_count
                last_version, last_count = snap.version, snap.get_bar_count()
                last10 = store.get_last_n_bars(sym, 10)
                assert all(a.timestamp < b.timestamp for a, b in itertools.pairwise(last10))
                window = store.get_bars(sym, 5, at(0), at(60))
                assert all(a.timestamp < b.timestamp for a, b in itertools.pairwise(window))
                reads[0] += 1

        return run

    readers = [crew.spawn(reader(s), f"reader-{s}-{k}") for s in ("AAPL", "MSFT") for k in range(2)]
    writer_crew = Crew()
    for s in ("AAPL", "MSFT"):
        writer_crew.spawn(in_order(s), f"in-order-{s}")
        writer_crew.spawn(late_and_corrections(s), f"late-{s}")
    writer_crew.spawn(batches("SPY"), "batches-SPY")
    try:
        writer_crew.join_all()
    finally:
        writers_done.set()
    crew.join_all()
    assert readers
    assert reads[0] > 0

    for s in ("AAPL", "MSFT"):
        bars = store.get_bars(s)
        assert [b.timestamp for b in bars] == [at(i) for i in range(n)]
        # Minutes divisible by 10 were written twice (the value, and a correction to volume 1) by two threads
        # in no fixed order: whichever came last is stored, never both.
        for i, b in enumerate(bars):
            assert b.volume in ({i, 1} if i % 10 == 0 else {i})
        assert store.get_session_metrics(s)["session_volume"] == sum(b.volume for b in bars)
    assert store.get_bar_count("SPY") == n
    assert len(store.get_ticks("SPY")) == 5 * (n // 30)
    check_store(store)


def test_readers_stay_consistent_across_session_rollovers() -> None:
    store = SessionData(historical_bars_trailing_days=2, historical_bars_types=(1, 5))
    crew = Crew()
    stop = threading.Event()
    days = [date(2025, 1, 2 + k) for k in range(4)]

    def writer() -> None:
        for day in days:
            for i in range(60):
                store.add_bar("AAPL", mk("AAPL", i, 100 + i % 3, day=day))

    def lifecycle() -> None:
        for day in days:
            store.start_new_session(day)
            store.end_session()

    def reader() -> None:
        while not stop.is_set():
            snap = store.get_symbol_data("AAPL")
            if snap is not None:
                check_reader_view(store, snap)
                for per_day in snap.historical_bars.values():
                    assert len(per_day) <= 2

    crew.spawn(reader, "reader-1")
    crew.spawn(reader, "reader-2")
    work = Crew()
    work.spawn(writer, "writer")
    work.spawn(lifecycle, "lifecycle")
    try:
        work.join_all()
    finally:
        stop.set()
    crew.join_all()
    check_store(store)


def test_reads_complete_while_another_thread_holds_the_write_lock() -> None:
    store = SessionData()
    store.add_bars_batch("AAPL", [mk("AAPL", i) for i in range(20)])
    assert store.write_lock is store._lock
    held = threading.Event()
    release = threading.Event()
    released = threading.Event()

    def holder() -> None:
        with store.write_lock:
            held.set()
            release.wait(DEADLINE)
            released.set()

    results: dict[str, Any] = {}

    def reader() -> None:
        results["bars"] = store.get_bars("AAPL")
        results["latest"] = store.get_latest_bar("AAPL")
        results["last"] = store.get_last_n_bars("AAPL", 3)
        results["since"] = store.get_bars_since("AAPL", at(15))
        results["count"] = store.get_bar_count("AAPL")
        results["multi"] = store.get_latest_bars_multi(["AAPL", "MSFT"])
        results["metrics"] = store.get_session_metrics("AAPL")
        results["symbols"] = store.get_active_symbols()
        results["snap"] = store.get_symbol_data("AAPL")
        results["derived"] = store.get_bars("AAPL", 5)
        results["forming"] = store.get_forming_bar("AAPL", 15)
        results["timeout"] = store.wait_for_update("AAPL", after_version=10**9, timeout=0.01)

    crew = Crew()
    crew.spawn(holder, "holder")
    try:
        assert held.wait(DEADLINE), "holder never got the lock"
        r = threading.Thread(target=reader, name="reader", daemon=True)
        r.start()
        r.join(DEADLINE)
        assert not r.is_alive(), "a read waited for the write lock"
        assert not released.is_set(), "the lock was still held while the reads ran"
    finally:
        release.set()
        crew.join_all()
    assert results["count"] == 20
    assert len(results["bars"]) == 20
    assert results["latest"] == mk("AAPL", 19)
    assert results["multi"] == {"AAPL": mk("AAPL", 19), "MSFT": None}
    assert results["symbols"] == {"AAPL"}
    assert results["timeout"] is None


def test_writers_block_while_the_write_lock_is_held() -> None:
    store = SessionData()
    store.add_bar("AAPL", mk("AAPL", 0))
    held = threading.Event()
    release = threading.Event()
    attempting = threading.Event()
    finished = threading.Event()

    def holder() -> None:
        with store.write_lock:
            held.set()
            release.wait(DEADLINE)
            # Still holding: the writer must not have got through.
            assert not finished.is_set(), "a write completed while another thread held the write lock"
            assert store.get_bar_count("AAPL") == 1

    def writer() -> None:
        attempting.set()
        store.add_bar("AAPL", mk("AAPL", 1))
        finished.set()

    crew = Crew()
    crew.spawn(holder, "holder")
    assert held.wait(DEADLINE)
    w = threading.Thread(target=writer, name="writer", daemon=True)
    w.start()
    try:
        assert attempting.wait(DEADLINE)
        w.join(0.05)  # an unblocked write would be done long before; a blocked one must still be waiting
        assert w.is_alive(), "the writer did not wait for the lock"
        assert not finished.is_set(), "the writer did not wait for the lock"
        assert store.get_bar_count("AAPL") == 1
    finally:
        release.set()
        crew.join_all()
    w.join(DEADLINE)
    assert not w.is_alive(), "the writer did not finish after the lock was released"
    assert finished.is_set()
    assert store.get_bar_count("AAPL") == 2
    check_store(store)


def test_wait_for_update_never_misses_the_last_write() -> None:
    store = SessionData()
    n = 300
    seen: list[int] = []

    def consumer() -> None:
        version = 0
        while True:
            got = store.wait_for_update("AAPL", after_version=version, timeout=DEADLINE)
            assert got is not None, "timed out waiting for an update"
            assert got > version, "woke without newer data"
            version = got
            seen.append(store.get_bar_count("AAPL"))
            if seen[-1] == n:
                return

    def producer() -> None:
        for i in range(n):
            store.add_bar("AAPL", mk("AAPL", i))

    crew = Crew()
    crew.spawn(consumer, "consumer")
    crew.spawn(producer, "producer")
    crew.join_all()
    assert seen[-1] == n
    assert seen == sorted(seen)


@pytest.mark.parametrize("round_", range(10))
def test_singleton_under_concurrent_first_calls(round_: int) -> None:
    reset_session_data()
    k = 16
    barrier = threading.Barrier(k)
    got: list[SessionData] = []
    lock = threading.Lock()

    def first_call() -> None:
        barrier.wait(DEADLINE)
        inst = get_session_data()
        with lock:
            got.append(inst)

    crew = Crew()
    for j in range(k):
        crew.spawn(first_call, f"caller-{j}")
    crew.join_all()
    assert len(got) == k
    assert len({id(x) for x in got}) == 1, "more than one process-wide instance was created"
    assert got[0] is get_session_data()
