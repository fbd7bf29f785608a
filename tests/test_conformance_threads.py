"""Black-box conformance of `BacktestStreamCoordinator` and `TimeProvider` with the contract's "Threads"
rows, written from the contract's text through the public API only.

The strongest check here is a reference: while the consumer handles an item known at ``K``, every public
read of the store (from the consumer's thread and from another thread) must answer exactly what a fresh
store answers after the same items known at or before ``K`` were written to it one by one, in merged order,
with the sessions rolled where the exchange date changes. That says both halves of the as-of rule at once:
nothing known later is visible, and nothing known earlier (or the item in hand) is missing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    ClockError,
    CoordinatorError,
    Quote,
    SessionData,
    StreamType,
    Tick,
    TimeProvider,
    store_column,
    store_timestamps,
)

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
DAYS = (date(2025, 1, 2), date(2025, 1, 3))
SYMBOLS = ("BBB", "AAA", "CCC")  # registered out of alphabetical order on purpose: ties go by symbol
RANK = {Bar: 0, Tick: 1, Quote: 2}
DEADLINE = 30.0


def known(item: Any) -> datetime:
    """The contract's known time: a bar's end, a tick's or a quote's timestamp."""
    ts: datetime = item.timestamp
    return ts + M if isinstance(item, Bar) else ts


def local_date(ts: datetime) -> date:
    return (ts if ts.tzinfo is None else ts.astimezone(NY)).date()


def market(zone: tzinfo | None) -> dict[tuple[str, StreamType], list[Any]]:
    """Bars, ticks and quotes of three symbols over two sessions, with holes, with known times that tie across
    symbols and kinds (a tick at hh:mm:00 ties with the bar of the minute before), and one quiet symbol."""
    streams: dict[tuple[str, StreamType], list[Any]] = {}
    for si, sym in enumerate(SYMBOLS):
        bars: list[Any] = []
        ticks: list[Any] = []
        quotes: list[Any] = []
        for day in DAYS:
            t0 = datetime(day.year, day.month, day.day, 9, 30, tzinfo=zone)
            for i in range(33):
                if (i + si) % 7 == 3:
                    continue
                p = 100.0 + si + (i % 5) * 0.25
                bars.append(Bar(sym, t0 + i * M, p, p + 0.5, p - 0.5, p + 0.25, 10 + i))
            for j in range(40):
                ticks.append(Tick(sym, t0 + timedelta(seconds=30 * j + 15 * si), 100.0 + j * 0.01, j))
            for j in range(30):
                quotes.append(Quote(sym, t0 + timedelta(seconds=60 * j), 99.9, 100.1, 1 + j, 2))
        streams[sym, StreamType.BAR] = bars
        streams[sym, StreamType.TICK] = ticks
        streams[sym, StreamType.QUOTE] = quotes
    streams["EMPTY", StreamType.BAR] = []  # an empty stream changes nothing
    return streams


def expected_order(streams: dict[tuple[str, StreamType], list[Any]]) -> list[Any]:
    """The contract's merge: by known time, then kind (bar, tick, quote), then symbol, then registration."""
    keyed = []
    for reg, ((sym, _kind), items) in enumerate(streams.items()):
        for pos, item in enumerate(items):
            keyed.append(((known(item), RANK[type(item)], sym, reg, pos), item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def answers(store: SessionData, symbols: tuple[str, ...] = SYMBOLS) -> tuple[Any, ...]:
    """Every public read a strategy might make, as one comparable value."""
    out: list[Any] = [store.session_ended, store.current_session_date, sorted(store.get_active_symbols())]
    out.append(store.get_latest_bars_multi(symbols))
    out.append(store.get_latest_bars_multi(symbols, 5))
    for sym in symbols:
        snap = store.get_symbol_data(sym)
        out.append(
            None
            if snap is None
            else (
                list(snap.bars_1m),
                list(snap.ticks),
                list(snap.quotes),
                snap.session_volume,
                snap.bar_quality,
            )
        )
        out.append(store.get_session_metrics(sym))
        out.append(store.get_bars(sym))
        out.append(store.get_last_n_bars(sym, 3))
        out.append(store.get_bar_count(sym))
        out.append(store.get_ticks(sym))
        out.append(store.get_quotes(sym))
        out.append((store.get_latest_tick(sym), store.get_latest_quote(sym)))
        for k in (5, 15):
            out.append((store.get_bars(sym, k), store.get_forming_bar(sym, k), store.get_bar_count(sym, k)))
        out.append(list(store_column(store, sym, "close")))
        out.append(store_timestamps(store, sym, series=5))
    return tuple(out)


def reference(order: list[Any]) -> list[tuple[Any, ...]]:
    """What the store must answer at each item of ``order``: a fresh store after every item known at or before
    it, written one by one (a session started at each new exchange date, as the replay does)."""
    ref = SessionData()
    per_item: list[tuple[Any, ...]] = []
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and known(order[j]) == known(order[i]):
            item = order[j]
            day = local_date(item.timestamp)
            if ref.current_session_date != day:
                ref.start_new_session(day)
            if isinstance(item, Bar):
                ref.add_bar(item.symbol, item)
            elif isinstance(item, Tick):
                ref.add_tick(item.symbol, item)
            else:
                ref.add_quote(item.symbol, item)
            j += 1
        state = answers(ref)
        per_item.extend([state] * (j - i))
        i = j
    return per_item


def register(
    coord: BacktestStreamCoordinator, streams: dict[tuple[str, StreamType], list[Any]], style: str
) -> None:
    for (sym, kind), items in streams.items():
        if style == "list":
            coord.feed_data_list(sym, kind, items)
        elif style == "tuple":
            coord.register_stream(sym, kind, tuple(items))
        else:
            coord.register_stream(sym, kind, (x for x in items))  # a generator: might block, pulled lazily


class Peer:
    """Another thread that reads the store and the clock when asked, while the consumer waits (real threads,
    deadlines, no naps): the contract's as-of rule holds for every reader, not only the consumer."""

    def __init__(self, store: SessionData, clock: TimeProvider) -> None:
        self.store, self.clock = store, clock
        self.ask = threading.Event()
        self.done = threading.Event()
        self.quit = threading.Event()
        self.result: tuple[Any, ...] = ()
        self.thread = threading.Thread(target=self._run, name="peer-reader")
        self.thread.start()

    def _run(self) -> None:
        while not self.quit.is_set():
            if self.ask.wait(0.05):
                self.ask.clear()
                self.result = (answers(self.store), self.clock.now())
                self.done.set()

    def read(self) -> tuple[Any, ...]:
        self.done.clear()
        self.ask.set()
        assert self.done.wait(DEADLINE), "the peer reader did not answer"
        return self.result

    def close(self) -> None:
        self.quit.set()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive()


def burn(stop: threading.Event) -> None:
    """A CPU-bound neighbour thread (load), until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(1000):
            x += 1


def run_replay(
    streams: dict[tuple[str, StreamType], list[Any]],
    *,
    switch: float,
    style: str,
    queue: int,
    batch: int,
    load: bool = False,
    peer_every: int = 0,
) -> tuple[list[Any], list[tuple[Any, ...]], list[datetime]]:
    """One replay; returns the items, the store's answers and the clock's time at each item (and checks, at
    every ``peer_every``-th item, that another thread reads the same answers and time)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    stop = threading.Event()
    burner = threading.Thread(target=burn, args=(stop,)) if load else None
    store = SessionData()
    clock = TimeProvider(timezone=NY)
    coord = BacktestStreamCoordinator(store, time_provider=clock, max_queue_size=queue, batch_size=batch)
    peer = Peer(store, clock) if peer_every else None
    items: list[Any] = []
    states: list[tuple[Any, ...]] = []
    times: list[datetime] = []
    try:
        if burner is not None:
            burner.start()
        register(coord, streams, style)
        for item in coord.merged_stream():
            items.append(item)
            states.append(answers(store))
            times.append(clock.now())
            if peer is not None and len(items) % peer_every == 0:
                assert peer.read() == (states[-1], times[-1]), item
        assert coord.stop_worker(DEADLINE)
    finally:
        stop.set()
        if burner is not None:
            burner.join(DEADLINE)
        if peer is not None:
            peer.close()
        sys.setswitchinterval(old)
    return items, states, times


@pytest.fixture(scope="module")
def naive_market() -> dict[tuple[str, StreamType], list[Any]]:
    return market(None)


@pytest.fixture(scope="module")
def naive_reference(naive_market: dict[tuple[str, StreamType], list[Any]]) -> list[tuple[Any, ...]]:
    return reference(expected_order(naive_market))


@pytest.mark.parametrize(
    ("style", "queue", "batch"),
    [("list", 1, 1), ("tuple", 7, 3), ("generator", 512, 128), ("list", 10**6, 10**5)],
    ids=["tight", "odd", "default-generators", "huge"],
)
def test_each_item_sees_exactly_the_store_as_of_its_known_time(
    naive_market: dict[tuple[str, StreamType], list[Any]],
    naive_reference: list[tuple[Any, ...]],
    style: str,
    queue: int,
    batch: int,
) -> None:
    items, states, times = run_replay(
        naive_market, switch=1e-6, style=style, queue=queue, batch=batch, peer_every=37
    )
    assert items == expected_order(naive_market)
    assert times == [known(x) for x in items]  # now(): the item's known time, in the consumer's thread
    for n, (got, want) in enumerate(zip(states, naive_reference, strict=True)):
        assert got == want, f"item #{n} {items[n]!r}"


def test_two_runs_agree_whatever_the_switch_interval_and_load(
    naive_market: dict[tuple[str, StreamType], list[Any]],
) -> None:
    fast = run_replay(naive_market, switch=1e-6, style="generator", queue=3, batch=2)
    slow = run_replay(naive_market, switch=0.05, style="list", queue=512, batch=128, load=True)
    assert fast == slow


def test_aware_timestamps_in_other_zones_follow_the_same_rules() -> None:
    """Aware stamps, one symbol in UTC and the others in the exchange's zone: merged on the instant, sessions
    by the exchange date, answers as of each item."""
    streams = market(NY)
    utc = ZoneInfo("UTC")
    for kind in StreamType:
        streams["CCC", kind] = [
            attrs.evolve(x, timestamp=x.timestamp.astimezone(utc)) for x in streams["CCC", kind]
        ]
    order = expected_order(streams)
    items, states, times = run_replay(streams, switch=1e-6, style="list", queue=5, batch=2)
    assert items == order
    assert [t.astimezone(utc) for t in times] == [known(x).astimezone(utc) for x in items]
    assert states == reference(order)


def test_sources_are_pulled_lazily_and_an_infinite_one_stops() -> None:
    pulled = 0

    def forever() -> Iterator[Bar]:
        nonlocal pulled
        t = datetime(2025, 1, 2, 9, 30)
        while True:
            pulled += 1
            yield Bar("INF", t, 1.0, 1.0, 1.0, 1.0, 1)
            t += M

    store = SessionData()
    coord = BacktestStreamCoordinator(store, extended_hours=True, max_queue_size=16, batch_size=4)
    before = set(threading.enumerate())
    coord.register_stream("INF", StreamType.BAR, forever())
    assert pulled == 0  # registering pulls nothing
    with coord:  # stops the worker also if an assertion fails (no thread left for later tests)
        stream = coord.merged_stream()
        taken = [next(stream) for _ in range(10)]
        coord.pause()
        assert coord.wait_paused(DEADLINE)
        # The worker runs ahead by at most the buffer, the batch it gathers and the one being handed over.
        assert pulled <= len(taken) + 16 + 2 * 4 + 2
        began = time.monotonic()
        assert coord.stop_worker(timeout=5.0) is True  # True: the worker has ended
        assert time.monotonic() - began < 5.0 + 2.0  # slack for a loaded 2-core machine
        assert set(threading.enumerate()) - before == set()
        rest = list(stream)  # what was buffered, then the end
        assert [b.timestamp for b in taken + rest] == [
            taken[0].timestamp + i * M for i in range(len(taken + rest))
        ]
        assert coord.status()["state"] == "stopped"


def test_a_source_raising_midway_delivers_what_came_before_then_fails() -> None:
    def flaky() -> Iterator[Bar]:
        t = datetime(2025, 1, 2, 9, 30)
        for i in range(5):
            yield Bar("ERR", t + i * M, 1.0, 1.0, 1.0, 1.0, 1)
        raise ConnectionError("feed lost")

    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    coord.register_stream("ERR", StreamType.BAR, flaky())
    coord.feed_data_list(
        "OK",
        StreamType.BAR,
        [Bar("OK", datetime(2025, 1, 2, 9, 30) + i * M, 1, 1, 1, 1, 1) for i in range(3)],
    )
    got: list[Any] = []

    def consume() -> None:
        for item in coord.merged_stream():
            got.append(item)
            assert store.get_latest_bar(item.symbol) == item  # as of each item, also on the way to a fault

    with pytest.raises(CoordinatorError) as err:
        consume()
    assert "feed lost" in repr(err.value.__cause__)
    assert sum(1 for x in got if x.symbol == "ERR") == 5
    assert coord.status()["state"] == "failed"
    assert "feed lost" in coord.status()["error"]
    assert coord.stop_worker(DEADLINE)


def test_merged_stream_before_start_twice_and_with_only_empty_streams() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    bars = [Bar("A", datetime(2025, 1, 2, 9, 30) + i * M, 1, 1, 1, 1, 1) for i in range(4)]
    coord.feed_data_list("A", StreamType.BAR, bars)
    coord.register_stream("B", StreamType.TICK, iter(()))
    assert list(coord.merged_stream()) == bars  # starts the worker itself; ends when every stream is done
    assert list(coord.merged_stream()) == []  # a second call: the replay has ended
    assert coord.stop_worker(DEADLINE)

    only_empty = BacktestStreamCoordinator(SessionData())
    only_empty.register_stream("Z", StreamType.BAR, [])
    assert list(only_empty.merged_stream()) == []
    assert only_empty.stop_worker(DEADLINE)


def test_a_second_consumer_at_once_is_refused() -> None:
    coord = BacktestStreamCoordinator(SessionData())
    coord.feed_data_list(
        "A", "bar", [Bar("A", datetime(2025, 1, 2, 9, 30) + i * M, 1, 1, 1, 1, 1) for i in range(50)]
    )
    first = coord.merged_stream()
    next(first)
    with pytest.raises(RuntimeError):
        next(coord.merged_stream())
    assert coord.stop_worker(DEADLINE)


def test_pause_stops_the_replay_within_the_documented_run_ahead() -> None:
    """After `wait_paused`, the consumer can take only what the worker had produced (at most the buffer plus
    two batches beyond what it took); the clock and the store stay as of the last item it took; `resume`
    goes on with nothing lost. A helper thread drains with a deadline: if pausing did not hold the worker,
    it would take the whole replay."""
    store = SessionData()
    clock = TimeProvider()
    queue, batch = 8, 2
    coord = BacktestStreamCoordinator(store, time_provider=clock, max_queue_size=queue, batch_size=batch)
    t0 = datetime(2025, 1, 2, 9, 30)
    for sym in ("A", "B"):
        coord.feed_data_list(sym, "bar", [Bar(sym, t0 + i * M, 1, 1, 1, 1, 1) for i in range(100)])
    stream = coord.merged_stream()
    taken = [next(stream) for _ in range(10)]
    coord.pause()
    assert coord.wait_paused(DEADLINE)
    more: list[Any] = []
    taker = threading.Thread(target=lambda: more.extend(stream))
    taker.start()
    taker.join(0.3)  # a bound on a wait that must not end while paused, not a nap
    assert taker.is_alive()
    assert len(more) <= queue + 2 * batch
    last = (taken + more)[-1]
    assert clock.now() == known(last)
    assert store.get_latest_bar(last.symbol) == last
    coord.resume()
    taker.join(DEADLINE)
    assert not taker.is_alive()
    assert len(taken) + len(more) == 200
    assert coord.stop_worker(DEADLINE)


def test_stop_returns_within_its_timeout_while_nobody_consumes_a_full_buffer() -> None:
    coord = BacktestStreamCoordinator(SessionData(), max_queue_size=4, batch_size=2)
    coord.feed_data_list(
        "A", "bar", [Bar("A", datetime(2025, 1, 2, 9, 30) + i * M, 1, 1, 1, 1, 1) for i in range(300)]
    )
    before = set(threading.enumerate())
    coord.start_worker()
    deadline = time.monotonic() + DEADLINE
    while not coord.status()["waiting_for_consumer"]:  # the worker blocks on the full buffer
        assert time.monotonic() < deadline
        time.sleep(0.001)
    began = time.monotonic()
    assert coord.stop_worker(timeout=5.0) is True
    assert time.monotonic() - began < 5.0 + 2.0  # slack for a loaded 2-core machine
    assert set(threading.enumerate()) - before == set()


def test_deregister_before_start_replays_none_of_that_stream() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    t0 = datetime(2025, 1, 2, 9, 30)
    coord.feed_data_list("A", "bar", [Bar("A", t0 + i * M, 1, 1, 1, 1, 1) for i in range(5)])
    coord.feed_data_list("B", "tick", [Tick("B", t0 + i * M, 1, 1) for i in range(5)])
    assert coord.deregister_stream("b", "tick") is True
    assert coord.deregister_stream("B", "tick") is False
    assert [x.symbol for x in coord.merged_stream()] == ["A"] * 5
    assert store.get_ticks("B") == []


def test_session_boundaries_mid_replay_and_the_clock_before_and_after() -> None:
    """A replay across three dates (a weekend between): each item sees its own session, open, the previous
    ones in history; `now()` is a `ClockError` before the first item, the last known time after."""
    store = SessionData(historical_bars_trailing_days=2)
    clock = TimeProvider()
    with pytest.raises(ClockError):
        clock.now()
    coord = BacktestStreamCoordinator(store, time_provider=clock)
    days = (date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6))
    bars = [
        Bar("A", datetime(d.year, d.month, d.day, 15, 57) + i * M, 1, 1, 1, 1, 1)
        for d in days
        for i in range(3)
    ]
    coord.feed_data_list("A", "bar", bars)
    for item in coord.merged_stream():
        assert store.current_session_date == item.timestamp.date()
        assert store.session_ended is False
        assert sorted(store.get_historical_bars("A")) == [d for d in days if d < item.timestamp.date()][-2:]
        assert [b.timestamp for b in store.get_bars("A")][-1] == item.timestamp
    assert clock.now() == bars[-1].timestamp + M
    assert store.session_ended is True  # the last session ended at exhaustion
    assert coord.stop_worker(DEADLINE)


def test_live_clock_reads_the_wall_clock_in_the_exchange_zone() -> None:
    live = TimeProvider("live", timezone="Asia/Tokyo")
    before = datetime.now(ZoneInfo("UTC"))
    now = live.now()
    after = datetime.now(ZoneInfo("UTC"))
    assert now.utcoffset() == timedelta(hours=9)
    assert before <= now <= after
    with pytest.raises(ClockError):
        live.advance_to(now + M)
    with pytest.raises(ValueError):
        BacktestStreamCoordinator(SessionData(), time_provider=live)
