"""Derived bars and bar quality nobody has read are owed by writes and settled by the first read: the
answers must not depend on when, how often, or from which thread anyone reads.

With lazy derivation (the store's default) a write of in-order bars only appends them; a read of derived
bars (`SymbolSessionData.read_derived`, remembering what it settled for later readers) or of bar quality
(`SymbolSessionData.bar_quality`, which derives no window), a look by the store itself
(`SymbolSessionData.derived`, settling from the base alone) or a write that is not an in-order append
brings them up to date in one run. A read never changes how the store writes. So stores fed the same writes
must give equal answers at every common read point whichever way they are read: one read after every write,
one read rarely, and one only looked at through `SymbolSessionData.derived`. Snapshots taken along the way
must still answer as they did when they were taken, however far the store has moved on.
"""

from __future__ import annotations

import sys
import threading
import time as wall
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_snapshot, check_store
from sessiondata import Bar, SessionData, SymbolSessionData

NY = ZoneInfo("America/New_York")
DAY = date(2025, 3, 10)  # the Monday after the spring switch
INTERVALS = [(5, 15), (7,), (5, 15, 30), (3, 60)]


def instant(day: date, minute: int, second: int, aware: bool) -> datetime:
    naive = datetime.combine(day, time(9, 30)) + timedelta(minutes=minute, seconds=second)
    if not aware:
        return naive
    return naive.replace(tzinfo=NY).astimezone(timezone.utc)


def bar_at(ts: datetime, volume: int) -> Bar:
    price = 50.0 + (volume % 11)
    return Bar("QQQ", ts, price, price + 0.5, price - 0.25, price + 0.125, volume)


Answers = tuple[dict[int, tuple[list[Bar], Bar | None]], float]


def derived_answers(snap: SymbolSessionData) -> Answers:
    """Everything a reader can see of the derived series of one snapshot, and its bar quality."""
    derived = {k: (list(series), snap.get_forming_bar(k)) for k, series in snap.bars_derived.items()}
    return derived, snap.bar_quality


def peeked_answers(snap: SymbolSessionData) -> Answers:
    """`derived_answers` through `SymbolSessionData.derived` (the store's own bookkeeping read)."""
    derived = {k: (list(s.bars), s.forming_bar(snap.symbol, snap.bars_1m)) for k, s in snap.derived.items()}
    return derived, snap.bar_quality


# One step of a session: ("bar", later day?, minute, second, volume), ("batch", count), ("end",), ("read",)
# or ("hold",). Minutes cover pre-market, the session, its close and after hours.
steps = st.one_of(
    st.tuples(
        st.just("bar"),
        st.sampled_from([0, 0, 0, 0, 1]),
        st.one_of(st.integers(-4, 30), st.integers(380, 394)),
        st.sampled_from([0, 0, 0, 20]),
        st.integers(1, 900),
    ),
    st.tuples(st.just("batch"), st.integers(1, 25)),
    st.tuples(st.just("end")),
    st.tuples(st.just("read")),
    st.tuples(st.just("hold")),
)


@settings(max_examples=80, deadline=None)
@given(
    intervals=st.sampled_from(INTERVALS),
    aware=st.booleans(),
    program=st.lists(steps, min_size=1, max_size=60),
    shuffle=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), max_size=4),
)
def test_reading_rarely_or_after_every_write_gives_the_same_answers(
    intervals: tuple[int, ...],
    aware: bool,
    program: list[tuple[object, ...]],
    shuffle: list[tuple[int, int]],
) -> None:
    # Bar steps mostly in time order (the logged path), a few swapped (inserts that settle the log first).
    bar_steps = sorted((s for s in program if s[0] == "bar"), key=lambda s: (s[1], s[2], s[3]))
    for i, j in shuffle:
        if i < len(bar_steps) and j < len(bar_steps):
            bar_steps[i], bar_steps[j] = bar_steps[j], bar_steps[i]
    ordered = iter(bar_steps)
    program = [next(ordered) if s[0] == "bar" else s for s in program]

    eager = SessionData(derived_intervals=intervals, derivation="eager")  # read after every write
    lazy = SessionData(derived_intervals=intervals)  # read only at "read" steps
    peeked = SessionData(derived_intervals=intervals)  # never read: looked at without marking
    stores = (eager, lazy, peeked)
    held: list[tuple[SymbolSessionData, SymbolSessionData, Answers]] = []
    batch_minute = 31
    for step in program:
        kind = step[0]
        if kind == "bar":
            _, later, minute, second, volume = step
            assert isinstance(later, int)
            assert isinstance(minute, int)
            assert isinstance(second, int)
            assert isinstance(volume, int)
            bar = bar_at(instant(DAY + timedelta(days=later), minute, second, aware), volume)
            for store in stores:
                store.add_bar("QQQ", bar)
        elif kind == "batch":  # an in-order run in the middle of the day, after whatever is stored
            count = step[1]
            assert isinstance(count, int)
            last = lazy.get_latest_bar("QQQ")
            start = batch_minute if last is None else None
            base = instant(DAY, batch_minute, 0, aware) if start is not None else None
            if base is None:
                assert last is not None
                base = last.timestamp + timedelta(minutes=1)
            run = [bar_at(base + timedelta(minutes=i), 7 * i + 1) for i in range(count)]
            for store in stores:
                store.add_bars_batch("QQQ", run)
        elif kind == "end":
            for store in stores:
                store.end_session()
        snap_e = eager.get_symbol_data("QQQ")
        if snap_e is None:
            continue
        answers = derived_answers(snap_e)
        snap_l = lazy.get_symbol_data("QQQ")
        snap_p = peeked.get_symbol_data("QQQ")
        assert snap_l is not None
        assert snap_p is not None
        if kind == "read":
            assert derived_answers(snap_l) == answers
            assert peeked_answers(snap_p) == answers
        elif kind == "hold":
            held.append((snap_l, snap_p, answers))  # read only at the end, after the store moved on
    assert peeked.get_symbol_data("QQQ") is None or all(
        s.writer.derived_pending is not None for s in peeked.snapshot().values()
    ), "looking switched the store to deriving as bars arrive"
    assert lazy.get_symbol_data("QQQ") is None or all(
        s.writer.derived_pending is not None for s in lazy.snapshot().values()
    ), "a reader switched a lazy store to deriving as bars arrive: readers must not steer the writer"
    snap_e = eager.get_symbol_data("QQQ")
    if snap_e is not None:
        final = derived_answers(snap_e)
        for store in (lazy, peeked):
            snap = store.get_symbol_data("QQQ")
            assert snap is not None
            assert peeked_answers(snap) == final
            assert derived_answers(snap) == final
    for snap_l, snap_p, answers in reversed(held):  # newest first: older ones start before the memos
        assert derived_answers(snap_l) == answers
        assert peeked_answers(snap_p) == answers
    for store in stores:
        check_store(store)


def session(minutes: range, day: date = DAY) -> list[Bar]:
    return [bar_at(instant(day, m, 0, False), 100 + m) for m in minutes]


def test_a_derived_read_after_a_whole_session_of_writes_sees_every_window() -> None:
    store = SessionData(derived_intervals=(5, 15))
    for bar in session(range(-30, 420)):  # pre-market, the session and after hours, one bar at a time
        store.add_bar("QQQ", bar)
    assert store.get_bar_count("QQQ", 5) == 78
    assert store.get_bar_count("QQQ", 15) == 26
    five = store.get_bars("QQQ", 5)
    assert five[0].timestamp == datetime(2025, 3, 10, 9, 30)
    assert five[-1].timestamp == datetime(2025, 3, 10, 15, 55)
    assert five[0].volume == sum(100 + m for m in range(5))
    assert store.get_forming_bar("QQQ", 5) is None
    check_store(store)


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_batch_of_the_next_day_is_logged_apart_from_the_day_before(batch_first: bool) -> None:
    """The next day's minutes come later in the day than the last logged ones: they must not run on from
    them as if they were the same session (here into the very window still forming the day before)."""
    day1 = session(range(8))  # 09:30-09:37: the 09:35 window is forming
    day2 = session(range(8, 12), DAY + timedelta(days=1))  # 09:38-09:41 the next day
    store = SessionData(derived_intervals=(5,))
    if batch_first:
        store.add_bars_batch("QQQ", day1)
    else:
        for bar in day1:
            store.add_bar("QQQ", bar)
    store.add_bars_batch("QQQ", day2)
    fresh = SessionData(derived_intervals=(5,))
    fresh.register_symbol("QQQ")
    fresh.get_latest_bar("QQQ", 5)  # read from the start: derived as bars arrive
    for bar in day1 + day2:
        fresh.add_bar("QQQ", bar)
    assert [b.timestamp for b in store.get_bars("QQQ", 5)] == [
        datetime(2025, 3, 10, 9, 30),
        datetime(2025, 3, 10, 9, 35),
        datetime(2025, 3, 11, 9, 35),
    ]
    assert store.get_bars("QQQ", 5) == fresh.get_bars("QQQ", 5)
    assert store.get_forming_bar("QQQ", 5) == fresh.get_forming_bar("QQQ", 5)
    check_store(store)


def test_end_session_completes_the_forming_window_of_bars_nobody_read() -> None:
    store = SessionData(derived_intervals=(5,))
    for bar in session(range(12)):  # 09:30-09:41: window 09:40 forming
        store.add_bar("QQQ", bar)
    before = store.get_symbol_data("QQQ")
    store.end_session()
    store.end_session()  # again: nothing more to complete
    assert [b.timestamp.minute for b in store.get_bars("QQQ", 5)] == [30, 35, 40]
    assert store.get_forming_bar("QQQ", 5) is None
    assert before is not None
    assert len(before.bars_derived[5]) == 2  # the snapshot before the flush still shows two
    assert before.get_forming_bar(5) == store.get_bars("QQQ", 5)[-1]
    # Late data after the end is accepted and derived.
    store.add_bar("QQQ", bar_at(instant(DAY, 12, 0, False), 5))
    store.end_session()
    assert store.get_bars("QQQ", 5)[-1].volume == 110 + 111 + 5
    check_store(store)


def test_history_keeps_derived_bars_that_were_never_read() -> None:
    store = SessionData(
        derived_intervals=(5, 15), historical_bars_trailing_days=2, historical_bars_types=(1, 5, 15)
    )
    store.start_new_session(DAY)
    for bar in session(range(390)):
        store.add_bar("QQQ", bar)
    store.start_new_session(DAY + timedelta(days=1))
    history = store.get_historical_bars("QQQ", 15)
    assert len(history[DAY]) == 26
    assert history[DAY][0].volume == sum(100 + m for m in range(15))


def test_readers_settling_concurrently_with_a_writer_see_consistent_snapshots() -> None:
    """Readers on several threads settle the same log from different versions while the writer extends it,
    until one of them reads (then the writer derives as bars arrive while the others still settle older
    snapshots); every snapshot any of them sees must equal its definition from scratch. Every 25 bars the
    writer waits (with a deadline) until each reader has checked a snapshot that recent, so the threads
    interleave."""
    store = SessionData(derived_intervals=(5, 15))
    bars = session(range(-10, 400)) + session(range(200), DAY + timedelta(days=1))
    errors: list[BaseException] = []
    done = threading.Event()
    seen = [0, 0, 0]  # per reader: the newest bars_version it has checked
    progress = threading.Condition()

    def reader(slot: int) -> None:
        try:
            while not done.is_set():
                snap = store.get_symbol_data("QQQ")
                if snap is not None:
                    if slot == 0 and len(snap.bars_1m) > 300:
                        snap.get_latest_bar(5)  # a read: the writer derives as bars arrive from then on
                    else:
                        snap.read_derived()  # settles the log, racing the other readers
                    check_snapshot(snap, store.session_clock, 0)
                    with progress:
                        seen[slot] = snap.bars_version
                        progress.notify_all()
        except BaseException as e:  # reported in the test thread
            errors.append(e)
            with progress:
                seen[slot] = sys.maxsize
                progress.notify_all()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(3)]
    try:
        for t in threads:
            t.start()
        for i, bar in enumerate(bars):
            store.add_bar("QQQ", bar)
            if i == 420:
                store.end_session()  # a flush child, settled by whichever reader comes first
            if i % 25 == 24:
                version = store.version
                with progress:
                    caught_up = progress.wait_for(lambda v=version: min(seen) >= v, timeout=30)
                    assert caught_up, "readers stalled"
    finally:
        done.set()
        deadline = wall.monotonic() + 30
        for t in threads:
            t.join(max(0.0, deadline - wall.monotonic()))
        sys.setswitchinterval(old)
    assert not any(t.is_alive() for t in threads), "a reader did not finish before its deadline"
    assert not errors, errors
    check_store(store)
    fresh = SessionData(derived_intervals=(5, 15))
    fresh.add_bars_batch("QQQ", bars[:421])
    fresh.end_session()
    for bar in bars[421:]:
        fresh.add_bar("QQQ", bar)
    for k in (5, 15):
        assert store.get_bars("QQQ", k) == fresh.get_bars("QQQ", k)
        assert store.get_forming_bar("QQQ", k) == fresh.get_forming_bar("QQQ", k)


def test_derivation_is_a_store_option_readers_do_not_change() -> None:
    with pytest.raises(ValueError, match="derivation"):
        SessionData(derivation="sometimes")
    lazy = SessionData(derived_intervals=(5,))
    eager = SessionData(derived_intervals=(5,), derivation="eager")
    assert (lazy.derivation, eager.derivation) == ("lazy", "eager")
    for m in range(12):
        bar = bar_at(instant(DAY, m, 0, False), 10 + m)
        lazy.add_bar("QQQ", bar)
        eager.add_bar("QQQ", bar)
        assert lazy.get_bars("QQQ", 5) == eager.get_bars("QQQ", 5)  # read after every write
        lazy_snap, eager_snap = lazy.get_symbol_data("QQQ"), eager.get_symbol_data("QQQ")
        assert lazy_snap is not None
        assert eager_snap is not None
        assert lazy_snap.writer.derived_pending is not None, "a read switched the lazy store to eager"
        assert eager_snap.writer.derived_pending is None
    lazy.start_new_session(DAY + timedelta(days=1))
    eager.start_new_session(DAY + timedelta(days=1))
    assert lazy.register_symbol("QQQ").writer.derived_pending is not None
    assert eager.register_symbol("QQQ").writer.derived_pending is None
