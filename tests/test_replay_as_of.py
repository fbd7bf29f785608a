"""A replay looks to the strategy exactly as the market did: while the consumer of `merged_stream()` handles
an item, every read of the store answers as of that item (nothing known later is visible), and two replays of
the same inputs give the same items and the same answers at each item, whatever the thread timing.

The consumer here reads every symbol through the public API at every item and checks it against what it
has been handed so far: each symbol's bar, tick and quote counts equal what it received (so the item in
hand is visible and nothing later is), derived and forming bars end no later than the item's known time, and
the lifecycle (`session_ended`, `current_session_date`) is the one of the item's session.
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataManager,
    InMemoryBarRepository,
    Quote,
    SessionData,
    StreamType,
    SystemManager,
    Tick,
)
from sessiondata._csvio import read_csv_bars

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
DAYS = (date(2024, 3, 4), date(2024, 3, 5))
DEADLINE = 60.0


def known(item: Any) -> datetime:
    ts: datetime = item.timestamp
    return ts + M if type(item) is Bar else ts


def session_bars(symbol: str, day: date, *, aware: bool, seed: int, skip: float = 0.1) -> list[Bar]:
    """Regular-session bars with random holes (so symbols are not in lock-step)."""
    rng = random.Random(f"{symbol}{day}{seed}")
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY if aware else None)
    out = []
    price = 100.0
    for i in range(390):
        if rng.random() < skip:
            continue
        price += rng.choice((-0.1, 0.0, 0.1))
        out.append(Bar(symbol, start + i * M, price, price + 0.2, price - 0.2, price, rng.randint(1, 900)))
    return out


def ticks_of(symbol: str, day: date, *, aware: bool, n: int) -> list[Tick]:
    rng = random.Random(f"t{symbol}{day}")
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY if aware else None)
    seconds = sorted(rng.randrange(0, 390 * 60) for _ in range(n))
    return [Tick(symbol, start + timedelta(seconds=s), 50.0, 1) for s in seconds]


def quotes_of(symbol: str, day: date, *, aware: bool, n: int) -> list[Quote]:
    rng = random.Random(f"q{symbol}{day}")
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY if aware else None)
    seconds = sorted(rng.randrange(0, 390 * 60) for _ in range(n))
    return [Quote(symbol, start + timedelta(seconds=s), 49.9, 50.1, 1, 1) for s in seconds]


def generator(items: list[Any]) -> Iterator[Any]:
    yield from items  # a source that might block: batched like a list, offered to the consumer while pulled


def answers(store: SessionData, symbols: list[str], intervals: tuple[int, ...]) -> tuple[Any, ...]:
    """Everything a strategy might read, as one comparable value."""
    out: list[Any] = [store.session_ended, store.current_session_date, store.version]
    for s in symbols:
        out.append(store.get_session_metrics(s))
        out.append(store.get_latest_bar(s))
        out.append(store.get_latest_tick(s))
        out.append(store.get_latest_quote(s))
        for k in intervals:
            out.append(store.get_latest_bar(s, k))
            out.append(store.get_forming_bar(s, k))
    return tuple(out)


def check_as_of(
    store: SessionData, item: Any, seen: Counter[tuple[str, type]], day: date, intervals: tuple[int, ...]
) -> None:
    """The store, read now, shows what was handed over up to ``item`` (the item included), and nothing
    known after ``item``'s known time (items sharing it may be visible before they are handed over)."""
    k = known(item)
    assert store.current_session_date == day
    assert store.session_ended is False
    for sym in {s for s, _ in seen}:
        assert store.get_bar_count(sym) >= seen[sym, Bar], (item, sym)
        snap = store.get_symbol_data(sym)
        assert snap is not None
        assert len(snap.ticks) >= seen[sym, Tick], (item, sym)
        assert len(snap.quotes) >= seen[sym, Quote], (item, sym)
        quote = store.get_latest_quote(sym)
        assert quote is None or quote.timestamp <= k
        tick = store.get_latest_tick(sym)
        assert tick is None or tick.timestamp <= k
        last = snap.bars_1m.last()
        assert last is None or last.timestamp + M <= k, (item, last)
        metrics = store.get_session_metrics(sym)
        assert metrics["last_update"] is None or metrics["last_update"] + M <= k
        for n in intervals:
            derived = store.get_latest_bar(sym, n)
            assert derived is None or derived.timestamp + n * M <= k or store.session_ended
            forming = store.get_forming_bar(sym, n)
            assert forming is None or forming.timestamp < k


def run_checked(
    coord: BacktestStreamCoordinator,
    store: SessionData,
    intervals: tuple[int, ...],
    tz: Any,
    before: tuple[Any, ...] = (),
) -> list[Any]:
    """Consume ``coord`` checking the store and the clock at every item (``before``: items an earlier
    consumer already took, counted, not checked)."""
    seen: Counter[tuple[str, type]] = Counter()
    out = []
    day: date | None = None
    for item in before:
        ts = item.timestamp
        day = (ts if ts.tzinfo is None else ts.astimezone(tz)).date()
        seen[item.symbol, type(item)] += 1
    clock = coord.time_provider
    for item in coord.merged_stream():
        ts = item.timestamp
        d = (ts if ts.tzinfo is None else ts.astimezone(tz)).date()
        if d != day:
            seen.clear()
            day = d
        seen[item.symbol, type(item)] += 1
        check_as_of(store, item, seen, d, intervals)
        assert clock.now() == known(item), item  # the clock too reads as of the item in hand
        out.append(item)
    return out


BUFFERS = {"tight": (1, 1), "default": (4096, 128), "huge": (10**7, 10**5)}


@pytest.mark.parametrize("buffer", list(BUFFERS))
@pytest.mark.parametrize("aware", [False, True], ids=["naive", "aware"])
@pytest.mark.parametrize("intervals", [(), (5, 15)], ids=["1m", "derived"])
def test_a_consumer_never_sees_a_later_item(buffer: str, aware: bool, intervals: tuple[int, ...]) -> None:
    symbols = [f"S{i:02d}" for i in range(6)]
    store = SessionData(derived_intervals=intervals)
    size, batch = BUFFERS[buffer]
    coord = BacktestStreamCoordinator(store, max_queue_size=size, batch_size=batch)
    expected = 0
    for i, s in enumerate(symbols):
        bars = [b for d in DAYS for b in session_bars(s, d, aware=aware, seed=1)]
        # Half the symbols come from generators (handed over one by one), half from lists.
        coord.register_stream(s, StreamType.BAR, generator(bars) if i % 2 else bars)
        expected += len(bars)
    for s in symbols[:2]:
        ticks = [t for d in DAYS for t in ticks_of(s, d, aware=aware, n=300)]
        quotes = [q for d in DAYS for q in quotes_of(s, d, aware=aware, n=200)]
        coord.register_stream(s, StreamType.TICK, generator(ticks))
        coord.register_stream(s, StreamType.QUOTE, quotes)
        expected += len(ticks) + len(quotes)
    out = run_checked(coord, store, intervals, NY)
    assert len(out) == expected
    # After the replay every write is visible, the last session ended.
    assert store.session_ended is True
    assert sum(store.get_bar_count(s) for s in symbols) == sum(
        type(x) is Bar for x in out if x.timestamp.date() == DAYS[-1]
    )


@pytest.mark.realdata
def test_real_data_replay_never_shows_the_future(real_data: Path) -> None:
    lean = real_data / "quantconnect_lean"
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    for sym in ("SPY", "AIG", "BAC"):
        bars = [b for b in read_csv_bars(lean / f"{sym}_1m.csv") if b.timestamp.date() <= date(2013, 10, 7)]
        coord.register_stream(sym, StreamType.BAR, bars)
    out = run_checked(coord, store, (5, 15), NY)
    assert len(out) > 1500


def test_a_replay_nobody_consumes_still_delivers_everything() -> None:
    store = SessionData()
    bars = session_bars("AAA", DAYS[0], aware=False, seed=2)
    coord = BacktestStreamCoordinator(store, max_queue_size=10**6)
    coord.feed_data_list("AAA", StreamType.BAR, bars)
    coord.start_worker()
    thread = coord._thread
    assert thread is not None
    thread.join(DEADLINE)
    assert coord.status()["state"] == "finished"
    assert store.get_bars("AAA") == bars
    assert store.session_ended is True


def two_day_replay(
    coord: BacktestStreamCoordinator,
    symbols: list[str],
    *,
    done: threading.Event | None = None,
    skip: float = 0.1,
) -> int:
    """Register bars of ``symbols`` over `DAYS` (the last symbol from a generator that sets ``done`` once
    it is exhausted); returns how many items the replay has."""
    total = 0
    for i, s in enumerate(symbols):
        bars = [b for d in DAYS for b in session_bars(s, d, aware=True, seed=8 + i, skip=skip)]
        total += len(bars)
        if i == len(symbols) - 1 and done is not None:

            def signalling(items: list[Bar] = bars) -> Iterator[Bar]:
                yield from items
                done.set()

            coord.register_stream(s, StreamType.BAR, signalling(), blocking=False)
        else:
            coord.register_stream(s, StreamType.BAR, bars)
    return total


def test_a_consumer_attaching_after_the_replay_ran_reads_as_of_each_item() -> None:
    symbols = ["AAA", "BBB", "CCC"]
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=10**6)
    total = two_day_replay(coord, symbols)
    coord.start_worker()
    thread = coord._thread
    assert thread is not None
    thread.join(DEADLINE)
    assert coord.status()["state"] == "finished"
    # Nobody consumes yet: readers see everything the replay wrote, and the clock at its end.
    assert store.session_ended is True
    assert store.current_session_date == DAYS[-1]
    last_day = [s for s in symbols if store.get_bar_count(s)]
    assert last_day == symbols
    # A consumer attaching now still reads the store and the clock as of each item (then everything).
    out = run_checked(coord, store, (5, 15), NY)
    assert len(out) == total
    assert store.session_ended is True
    assert coord.time_provider.now() == known(out[-1])


def test_a_consumer_attaching_while_the_worker_waits_on_a_full_buffer_reads_as_of_each_item() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=64, batch_size=16)
    pulled = threading.Event()

    def slow_start(items: list[Bar]) -> Iterator[Bar]:
        for i, item in enumerate(items):
            if i == 15:
                pulled.set()  # ~45 items written, two batches of 16 handed over to nobody
            yield item

    bars = [b for d in DAYS for b in session_bars("ZZZ", d, aware=True, seed=9)]
    coord.register_stream("ZZZ", StreamType.BAR, slow_start(bars), blocking=False)
    total = two_day_replay(coord, ["AAA", "BBB"]) + len(bars)
    try:
        coord.start_worker()
        assert pulled.wait(DEADLINE)  # the worker ran ahead of nobody (it stops at a full buffer, 64)
        assert store.get_bar_count("AAA") > 1  # readers follow the writers while nobody consumes
        out = run_checked(coord, store, (5,), NY)
    finally:
        coord.stop_worker(timeout=DEADLINE)
    assert len(out) == total


def test_a_consumer_taking_over_from_one_that_left_reads_as_of_each_item() -> None:
    store = SessionData(derived_intervals=())
    coord = BacktestStreamCoordinator(store, max_queue_size=64, batch_size=16)
    bars = session_bars("AAA", DAYS[0], aware=False, seed=13, skip=0.0)
    once = Bar("BBB", bars[2].timestamp, 1.0, 1.0, 1.0, 1.0, 1)  # its one write is in the dropped range
    pulled = threading.Event()

    def signalling() -> Iterator[Bar]:
        for i, item in enumerate(bars):
            if i == 20:
                pulled.set()  # the first batch (16 items) was handed over to nobody
            yield item

    coord.register_stream("AAA", StreamType.BAR, signalling(), blocking=False)
    coord.register_stream("BBB", StreamType.BAR, [once])
    try:
        coord.start_worker()
        assert pulled.wait(DEADLINE)
        stream = coord.merged_stream()
        assert next(stream) == bars[0]
        stream.close()  # leaves with the rest of its batch unhandled: those items are not handed out again
        assert store.get_bar_count("AAA") > 1  # nobody consumes: readers follow the writers
        for item in coord.merged_stream():
            # The store holds every bar up to the item in hand (the dropped ones too), nothing later.
            assert store.get_bar_count("AAA") == bars.index(item) + 1
            assert store.get_bar_count("BBB") == 1
            assert coord.time_provider.now() == known(item)
    finally:
        coord.stop_worker(timeout=DEADLINE)


def test_a_system_manager_replay_reads_as_of_each_item_however_it_was_started() -> None:
    symbols = ["AAA", "BBB", "CCC"]
    # The repository holds what the streams hold: the upkeep (a listener) finds no gap to fill.
    bars = [
        b
        for i, s in enumerate(symbols)
        for d in DAYS
        for b in session_bars(s, d, aware=True, seed=8 + i, skip=0.0)
    ]
    store = SessionData()
    done = threading.Event()
    # A buffer that holds the whole replay (2,340 items), so the worker finishes before the consumer comes.
    system = SystemManager(
        store, repository=InMemoryBarRepository(bars), coordinator_options={"max_queue_size": 10**4}
    )
    try:
        total = two_day_replay(system.coordinator, symbols, done=done, skip=0.0)
        system.start()  # the worker starts before anybody consumes
        assert done.wait(DEADLINE)  # every item was pulled (and written) before the consumer comes
        out = run_checked(system.coordinator, store, (5, 15), NY)
    finally:
        system.stop()
    assert len(out) == total


def test_the_clock_reads_as_of_the_consumer_in_other_threads() -> None:
    symbols = [f"S{i}" for i in range(4)]
    store = SessionData(derived_intervals=())
    coord = BacktestStreamCoordinator(store, max_queue_size=256, batch_size=32)
    for s in symbols:
        coord.register_stream(s, StreamType.BAR, session_bars(s, DAYS[0], aware=False, seed=12))
    clock = coord.time_provider
    finished = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not finished.is_set():
            if not clock.is_set or store.session_ended:
                continue
            t = clock.now()  # the clock first: the store read after it is as of t or later
            newest = [b.timestamp + M for s in symbols if (b := store.get_latest_bar(s)) is not None]
            if not store.session_ended and (not newest or max(newest) < t):
                errors.append(f"the clock read {t} while the store showed bars known up to {newest}")
                return

    thread = threading.Thread(target=reader)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        stream = coord.merged_stream()
        first = next(stream)
        thread.start()
        n = 1 + sum(1 for _ in stream if not errors)
    finally:
        finished.set()
        sys.setswitchinterval(old)
        thread.join(DEADLINE)
    assert not errors, errors[0]
    assert first is not None
    assert n > 1000


# ------------------------------------------------------------------------------------------- determinism


def recorded_replay(switch: float, *, burn: bool) -> list[tuple[Any, tuple[Any, ...]]]:
    """Replay a mix of sources, recording the store's answers at every item."""
    symbols = [f"S{i}" for i in range(6)]
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=64, batch_size=8)
    for i, s in enumerate(symbols):
        bars = [b for d in DAYS for b in session_bars(s, d, aware=i % 2 == 0, seed=3, skip=0.3)]
        coord.register_stream(s, StreamType.BAR, generator(bars) if i % 3 == 0 else bars)
    ticks = [t for d in DAYS for t in ticks_of("S1", d, aware=False, n=150)]
    coord.register_stream("S1", StreamType.TICK, generator(ticks))
    stop = threading.Event()

    def burner() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    hog = threading.Thread(target=burner, daemon=True)
    if burn:
        hog.start()
    try:
        return [(item, answers(store, symbols, (5, 15))) for item in coord.merged_stream()]
    finally:
        stop.set()
        sys.setswitchinterval(old)
        if burn:
            hog.join(DEADLINE)


def test_replays_are_the_same_whatever_the_thread_timing() -> None:
    fast = recorded_replay(1e-6, burn=False)
    slow = recorded_replay(0.05, burn=True)
    assert len(fast) == len(slow) > 3000
    for i, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a == b, i


def manager_replay(switch: float) -> list[tuple[Any, tuple[Any, ...]]]:
    symbols = ["AAA", "BBB", "CCC"]
    repo = InMemoryBarRepository(
        [b for s in symbols for d in DAYS for b in session_bars(s, d, aware=True, seed=4, skip=0.02)]
    )
    store = SessionData()
    manager = DataManager(store, repository=repo)
    seen: list[tuple[Any, tuple[Any, ...]]] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    try:
        report = manager.replay(
            symbols,
            drop_minutes=7,
            seed=11,
            upkeep=True,
            on_item=lambda item: seen.append((item, answers(store, symbols, (5,)))),
        )
    finally:
        sys.setswitchinterval(old)
    assert report.upkeep_faults == 0
    for session in report.sessions:
        for summary in session.symbols.values():
            # Every dropped minute is back; what is still open is missing from the repository too.
            assert summary.gaps_filled == summary.dropped
            assert summary.gaps_filled + summary.gaps_open == summary.gaps_found
    return seen


def test_a_managed_replay_with_upkeep_and_dropped_minutes_is_deterministic() -> None:
    first = manager_replay(1e-6)
    second = manager_replay(0.05)
    assert len(first) == len(second) > 2000
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        assert a == b, i
    # The upkeep filled minutes during the replay, never later than the consumer's item.
    for item, view in first:
        for metrics in view[3::2]:
            if isinstance(metrics, dict) and metrics.get("last_update") is not None:
                assert metrics["last_update"] + M <= known(item)


def test_the_item_in_hand_is_visible_with_aware_timestamps_of_another_zone() -> None:
    store = SessionData(derived_intervals=())
    coord = BacktestStreamCoordinator(store, max_queue_size=4, batch_size=2)
    utc = [
        Bar("U", datetime(2024, 3, 4, 14, 30, tzinfo=timezone.utc) + i * M, 1.0, 1.0, 1.0, 1.0, 1)
        for i in range(30)
    ]
    ny = session_bars("N", DAYS[0], aware=True, seed=5)[:40]
    coord.register_stream("U", StreamType.BAR, utc)
    coord.register_stream("N", StreamType.BAR, generator(ny))
    run_checked(coord, store, (), NY)


def test_the_version_grows_with_the_consumer_and_wakes_waiters() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=10**6, batch_size=64)
    coord.feed_data_list("AAA", StreamType.BAR, session_bars("AAA", DAYS[0], aware=False, seed=6))
    seen: list[int] = []
    woken: list[int | None] = []
    stream = coord.merged_stream()
    seen.append(store.version)
    next(stream)
    waiter = threading.Thread(
        target=lambda: woken.append(store.wait_for_update(after_version=store.version, timeout=DEADLINE))
    )
    waiter.start()
    for _ in stream:
        seen.append(store.version)
    waiter.join(DEADLINE)
    assert seen == sorted(seen)
    assert len(set(seen)) > 300  # one write per item: the version moves item by item
    assert woken[0] is not None


def test_a_consumer_that_leaves_early_publishes_what_was_buffered() -> None:
    store = SessionData()
    bars = session_bars("AAA", DAYS[0], aware=False, seed=7)
    coord = BacktestStreamCoordinator(store, max_queue_size=10**6, batch_size=16)
    coord.register_stream("AAA", StreamType.BAR, bars)
    got = []
    for item in coord.merged_stream():
        got.append(item)
        if len(got) == 10:
            assert store.get_bar_count("AAA") == 10
            break  # the generator is closed: what the worker handed over is published
    assert coord.stop_worker(timeout=DEADLINE)
    assert store.get_bars("AAA") == bars[: store.get_bar_count("AAA")]
    assert store.get_bar_count("AAA") >= coord.status()["delivered"]  # all written, once stopped


@pytest.mark.parametrize("sizes", [(2, 4), (7, 64), (128, 4096)], ids=["2", "7", "128"])
def test_what_an_item_sees_does_not_depend_on_where_batches_end(sizes: tuple[int, int]) -> None:
    """Items sharing a known time may see each other (the consumer publishes a known time at once), but
    the view at each item is the same whatever the batch and buffer sizes."""

    def replay(batch: int, size: int) -> list[tuple[Any, tuple[Any, ...]]]:
        symbols = ["AAA", "BBB", "CCC"]
        store = SessionData()
        coord = BacktestStreamCoordinator(store, max_queue_size=size, batch_size=batch)
        for s in symbols:
            coord.register_stream(s, StreamType.BAR, session_bars(s, DAYS[0], aware=False, seed=14, skip=0.2))
        coord.register_stream("AAA", StreamType.TICK, generator(ticks_of("AAA", DAYS[0], aware=False, n=80)))
        return [(item, answers(store, symbols, (5,))) for item in coord.merged_stream()]

    reference = replay(3, 3)
    other = replay(*sizes)
    assert len(reference) == len(other) > 900
    for i, (a, b) in enumerate(zip(reference, other, strict=True)):
        assert a == b, i


# ------------------------------------------------------------------------------- sources that might block


def kind_replay(kind: str, batch: int) -> list[tuple[Any, tuple[Any, ...]]]:
    """Replay bars and ticks from lists, generators, or both, recording the store's answers at every item."""
    symbols = ["AAA", "BBB", "CCC", "DDD"]
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=max(batch, 64), batch_size=batch)
    for i, s in enumerate(symbols):
        bars = [b for d in DAYS for b in session_bars(s, d, aware=i % 2 == 0, seed=21, skip=0.2)]
        as_gen = kind == "generator" or (kind == "mixed" and i % 2 == 0)
        coord.register_stream(s, StreamType.BAR, generator(bars) if as_gen else bars)
    ticks = [t for d in DAYS for t in ticks_of("BBB", d, aware=False, n=120)]
    coord.register_stream("BBB", StreamType.TICK, generator(ticks) if kind != "list" else ticks)
    return [(item, answers(store, symbols, (5,))) for item in coord.merged_stream()]


@pytest.mark.parametrize(("kind", "batch"), [("generator", 128), ("mixed", 7), ("generator", 1)])
def test_generators_and_lists_give_the_same_items_and_answers(kind: str, batch: int) -> None:
    """A source that might block is batched like a list: what each item sees is the same for lists and
    generators (items sharing a known time see each other, whatever kind of source they come from)."""
    reference = kind_replay("list", 128)
    other = kind_replay(kind, batch)
    assert len(reference) == len(other) > 2500
    for i, (a, b) in enumerate(zip(reference, other, strict=True)):
        assert a == b, i


def test_no_item_whose_known_time_ended_waits_behind_a_stalled_generator() -> None:
    """A generator stalls (waits for the consumer) after ``k`` bars. Every item known before its last bar
    reaches the consumer while it is stalled, although the worker gathered them into a batch it had not
    handed over: the consumer takes them on offer. The stall ends only when they have all arrived (or at a
    deadline: then the test fails). Items sharing the stalled source's last known time wait for its next
    item (it might be known then too), then everything is delivered, each item read as of itself."""
    symbols = ["AAA", "BBB", "CCC"]
    day = DAYS[0]
    lists = {s: session_bars(s, day, aware=False, seed=31, skip=0.0)[:60] for s in symbols}
    stalled = session_bars("GEN", day, aware=False, seed=31, skip=0.0)[:40]
    k = 25
    stall_known = known(stalled[k - 1])
    before = sum(1 for bars in [*lists.values(), stalled] for b in bars if known(b) < stall_known)
    reached, release = threading.Event(), threading.Event()
    released_by_consumer: list[bool] = []

    def stalling() -> Iterator[Bar]:
        yield from stalled[:k]
        reached.set()
        released_by_consumer.append(release.wait(DEADLINE))
        yield from stalled[k:]

    store = SessionData()
    # Batches far larger than what is written before the stall: without the offer nothing is handed over.
    coord = BacktestStreamCoordinator(store, max_queue_size=4096, batch_size=1024)
    for s in symbols:
        coord.register_stream(s, StreamType.BAR, lists[s])
    coord.register_stream("GEN", StreamType.BAR, stalling())
    coord.start_worker()
    assert reached.wait(DEADLINE)  # the worker is inside the stalled pull before anyone consumes
    got: list[Any] = []
    seen: Counter[tuple[str, type]] = Counter()
    for item in coord.merged_stream():
        got.append(item)
        seen[item.symbol, type(item)] += 1
        check_as_of(store, item, seen, day, ())
        if len(got) == before:
            assert not release.is_set()
            assert all(known(x) < stall_known for x in got)
            release.set()
    assert released_by_consumer == [True]
    assert len(got) == sum(map(len, lists.values())) + len(stalled)
    assert coord.status()["state"] == "finished"
