"""`BacktestStreamCoordinator`: merge order, no look-ahead, store writes, backpressure, faults, lifecycle.

Expected orders are computed here from the documented rules (sort by known time, then stream type, symbol,
registration order, source order), never read back from the coordinator. Threads are synchronized with
events and deadlines; nothing sleeps to let a thread "get there".
"""

from __future__ import annotations

import sys
import threading
import time as _time
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import check_store, iter_csv_bars, read_csv_bars
from sessiondata import Bar, InvalidDataError, Quote, SessionData, Tick, get_session_data
from sessiondata._clock import TimeProvider
from sessiondata.replay.coordinator import (
    BacktestStreamCoordinator,
    CoordinatorError,
    SessionBoundaryListener,
    StreamSourceError,
    StreamType,
)

NY = ZoneInfo("America/New_York")
D1 = date(2024, 3, 4)
D2 = date(2024, 3, 5)
MINUTE = timedelta(minutes=1)
TYPE_ORDER = {StreamType.BAR: 0, StreamType.TICK: 1, StreamType.QUOTE: 2}
DEADLINE = 30.0


def at(minute: int, second: int = 0, day: date = D1, *, tz: Any = NY) -> datetime:
    """``minute`` minutes after 09:30 on ``day`` (aware in New York unless ``tz=None``)."""
    return datetime.combine(day, time(9, 30), tzinfo=tz) + timedelta(minutes=minute, seconds=second)


def bar(symbol: str, ts: datetime, price: float = 10.0, volume: float = 100) -> Bar:
    return Bar(symbol, ts, price, price + 1, price - 1, price, volume)


def tick(symbol: str, ts: datetime, price: float = 10.0) -> Tick:
    return Tick(symbol, ts, price, 5)


def quote(symbol: str, ts: datetime) -> Quote:
    return Quote(symbol, ts, 9.9, 10.1, 100, 200)


def known_time(item: Any) -> datetime:
    return item.timestamp + MINUTE if isinstance(item, Bar) else item.timestamp


def kind(item: Any) -> StreamType:
    return {Bar: StreamType.BAR, Tick: StreamType.TICK, Quote: StreamType.QUOTE}[type(item)]


def drain(coord: BacktestStreamCoordinator) -> list[Any]:
    """Consume ``merged_stream()`` in a thread with a deadline (a hang fails the test instead of blocking)."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            out.extend(coord.merged_stream())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "merged_stream did not end"
    if errors:
        raise errors[0]
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Deadline-bounded wait for a condition another thread makes true (checked every millisecond)."""
    end = _time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if _time.monotonic() > end:
            return False
        pause.wait(0.001)
    return True


def expected_order(streams: list[tuple[str, StreamType, list[Any]]]) -> list[Any]:
    """The documented merge order, computed independently: a stable sort of everything on the rule key."""
    keyed = []
    for seq, (symbol, stype, items) in enumerate(streams):
        for i, item in enumerate(items):
            keyed.append(((known_time(item), TYPE_ORDER[stype], symbol, seq, i), item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


# ------------------------------------------------------------------ merge order (property)

SYMBOLS = ["AAA", "BBB", "CCC"]


@st.composite
def stream_sets(draw: st.DrawFn) -> list[tuple[str, StreamType, list[Any]]]:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(list(StreamType))), unique=True, max_size=7
        )
    )
    streams = []
    for symbol, stype in keys:
        if stype is StreamType.BAR:
            minutes = sorted(draw(st.sets(st.integers(0, 20), max_size=12)))
            items: list[Any] = [bar(symbol, at(m), 10 + m) for m in minutes]
        else:
            # Equal timestamps on purpose: several prints in the same second, and on bar ends.
            stamps = sorted(
                draw(st.lists(st.tuples(st.integers(0, 20), st.sampled_from([0, 0, 30])), max_size=12))
            )
            make = tick if stype is StreamType.TICK else quote
            items = [make(symbol, at(m, s)) for m, s in stamps]
        streams.append((symbol, stype, items))
    return streams


def replay(
    streams: list[tuple[str, StreamType, list[Any]]], *, generators: bool = False, **kwargs: Any
) -> tuple[list[Any], SessionData]:
    store = SessionData()
    coord = BacktestStreamCoordinator(store, **kwargs)
    for symbol, stype, items in streams:
        # A list iterator is known not to block (items are batched); a generator might (handed over singly).
        source = (x for x in items) if generators else iter(items)
        coord.register_stream(symbol, stype, source)
    return drain(coord), store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream_sets(), st.sampled_from([(64, 8), (1, 1), (5, 3)]), st.booleans())
def test_merge_follows_the_rules_and_is_deterministic(
    streams: list[tuple[str, StreamType, list[Any]]], sizes: tuple[int, int], generators: bool
) -> None:
    queue, batch = sizes
    expected = expected_order(streams)
    old = sys.getswitchinterval()
    runs = []
    try:
        for interval in (1e-6, 0.005, 1e-4):
            sys.setswitchinterval(interval)
            out, store = replay(streams, generators=generators, max_queue_size=queue, batch_size=batch)
            runs.append(out)
    finally:
        sys.setswitchinterval(old)
    assert runs[0] == expected  # sorted by the rules; nothing lost, nothing duplicated
    assert runs[1] == expected
    assert runs[2] == expected
    for symbol, stype, items in streams:
        if stype is StreamType.BAR:
            assert store.get_bars(symbol) == items
        elif stype is StreamType.TICK:
            assert store.get_ticks(symbol) == items
        else:
            assert store.get_quotes(symbol) == items


def test_tie_break_order_is_type_then_symbol_then_registration() -> None:
    t = at(5)
    streams: list[tuple[str, StreamType, list[Any]]] = [
        ("ZZZ", StreamType.QUOTE, [quote("ZZZ", t)]),
        ("BBB", StreamType.TICK, [tick("BBB", t)]),
        ("AAA", StreamType.QUOTE, [quote("AAA", t)]),
        ("BBB", StreamType.BAR, [bar("BBB", t - MINUTE)]),  # known at t
        ("AAA", StreamType.TICK, [tick("AAA", t), tick("AAA", t, 11.0)]),
        ("AAA", StreamType.BAR, [bar("AAA", t - MINUTE)]),
    ]
    out, _ = replay(streams)
    assert [(kind(i), i.symbol) for i in out] == [
        (StreamType.BAR, "AAA"),
        (StreamType.BAR, "BBB"),
        (StreamType.TICK, "AAA"),
        (StreamType.TICK, "AAA"),
        (StreamType.TICK, "BBB"),
        (StreamType.QUOTE, "AAA"),
        (StreamType.QUOTE, "ZZZ"),
    ]
    assert [i.price for i in out[2:4]] == [10.0, 11.0]  # one source keeps its order


def test_a_bar_comes_after_the_ticks_inside_its_minute() -> None:
    b = bar("AAA", at(0))
    ticks = [tick("AAA", at(0, 10)), tick("AAA", at(0, 59)), tick("AAA", at(1, 0)), tick("AAA", at(1, 1))]
    out, _ = replay([("AAA", StreamType.BAR, [b]), ("AAA", StreamType.TICK, ticks)])
    assert out == [ticks[0], ticks[1], b, ticks[2], ticks[3]]


def test_naive_and_aware_streams_merge_on_the_same_time_line() -> None:
    naive = [bar("AAA", at(m, tz=None)) for m in range(3)]
    aware_utc = [tick("BBB", at(m, 30).astimezone(timezone.utc)) for m in range(3)]
    out, store = replay([("AAA", StreamType.BAR, naive), ("BBB", StreamType.TICK, aware_utc)])
    assert out == [aware_utc[0], naive[0], aware_utc[1], naive[1], aware_utc[2], naive[2]]
    assert store.get_bars("AAA") == naive


def test_bars_parsed_with_their_own_offsets_merge_on_the_instant() -> None:
    # Each bar owns its tzinfo, as parsed from ISO strings. Equal wall times with different offsets, or on
    # different dates, are different instants even when pulled one after the other; equal instants tie.
    def bars(symbol: str, *stamps: str) -> list[Bar]:
        return [bar(symbol, datetime.fromisoformat(s)) for s in stamps]

    streams: list[tuple[str, StreamType, list[Any]]] = [
        ("AAA", StreamType.BAR, bars("AAA", "2024-03-04T10:00:00-05:00", "2024-03-04T11:05:00-05:00")),
        ("BBB", StreamType.BAR, bars("BBB", "2024-03-04T11:00:00-04:00", "2024-03-04T11:05:00-04:00")),
        ("CCC", StreamType.BAR, bars("CCC", "2024-03-04T15:00:00+00:00", "2024-03-04T15:30:00+00:00")),
        ("DDD", StreamType.BAR, bars("DDD", "2024-03-04T10:00:00-05:00", "2024-03-05T15:30:00+00:00")),
    ]
    out, store = replay(streams)
    expected = expected_order(streams)
    assert [(b.symbol, b.timestamp) for b in expected][4:] == [
        ("BBB", datetime(2024, 3, 4, 15, 5, tzinfo=timezone.utc)),
        ("CCC", datetime(2024, 3, 4, 15, 30, tzinfo=timezone.utc)),
        ("AAA", datetime(2024, 3, 4, 16, 5, tzinfo=timezone.utc)),
        ("DDD", datetime(2024, 3, 5, 15, 30, tzinfo=timezone.utc)),
    ]
    assert out == expected
    assert store.get_bars("DDD") == streams[3][2][1:]  # the first day rolled into history


@pytest.mark.parametrize("store_zone", ["UTC", "America/New_York"])
def test_zoneinfo_bars_in_the_dst_fold_merge_on_the_instant(store_zone: str) -> None:
    # 01:30 happens twice in New York on 2024-11-03 (fold=0 in EDT, fold=1 in EST an hour later), and one
    # tzinfo object carries both: the fold decides the instant, even for bars pulled one after the other.
    def ny(hour: int, minute: int, fold: int = 0) -> datetime:
        return datetime(2024, 11, 3, hour, minute, tzinfo=NY, fold=fold)

    aaa = [bar("AAA", ny(0, 59)), bar("AAA", ny(1, 30, fold=1))]
    bbb = [bar("BBB", ny(0, 59)), bar("BBB", ny(1, 30))]
    ccc = [bar("CCC", ny(0, 59)), bar("CCC", ny(1, 0, fold=1))]
    streams: list[tuple[str, StreamType, list[Any]]] = [
        ("AAA", StreamType.BAR, aaa),
        ("BBB", StreamType.BAR, bbb),
        ("CCC", StreamType.BAR, ccc),
    ]
    # In a New York store the clock itself moves through the repeated hour (01:31 EDT, then 01:01 EST).
    clock = TimeProvider(timezone=store_zone)
    coord = BacktestStreamCoordinator(
        SessionData(timezone=store_zone), time_provider=clock, extended_hours=True
    )
    for symbol, stype, items in streams:
        coord.register_stream(symbol, stype, items)
    # Not expected_order(): sorting datetimes that share a tzinfo ignores the fold too.
    assert drain(coord) == [aaa[0], bbb[0], ccc[0], bbb[1], ccc[1], aaa[1]]
    # The last bar's end, as an instant (`==` across zones is never true for a time in the fold: PEP 495).
    assert clock.now().astimezone(timezone.utc) == ny(1, 31, fold=1).astimezone(timezone.utc)


# ----------------------------------------------------------------------- no look-ahead


def test_no_look_ahead_clock_and_store_are_ready_when_an_item_arrives() -> None:
    store = SessionData()
    clock = TimeProvider(timezone="America/New_York")
    coord = BacktestStreamCoordinator(store, time_provider=clock, max_queue_size=2, batch_size=1)
    bars = {s: [bar(s, at(m), 10 + m) for m in range(30)] for s in SYMBOLS}
    ticks = [tick("AAA", at(m, 15)) for m in range(30)]
    for s, items in bars.items():
        coord.feed_data_list(s, StreamType.BAR, items)
    coord.feed_data_list("AAA", "tick", ticks)
    count = 0
    for item in coord.merged_stream():
        assert clock.now() >= known_time(item)
        if isinstance(item, Bar):
            assert clock.now() >= item.timestamp + MINUTE  # never before its minute is over
            assert store.get_bars(item.symbol, start=item.timestamp, end=item.timestamp + MINUTE) == [item]
        else:
            assert item in store.get_ticks(item.symbol, item.timestamp, item.timestamp + MINUTE)
        count += 1
    assert count == 3 * 30 + 30
    assert clock.now() == at(30)


def test_default_store_is_the_process_wide_one() -> None:
    coord = BacktestStreamCoordinator()
    assert coord.session_data is get_session_data()
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(0))])
    assert drain(coord) == [bar("AAA", at(0))]
    assert get_session_data().get_bar_count("AAA") == 1


def test_a_store_subclass_that_overrides_add_bar_receives_every_bar() -> None:
    """The coordinator writes through a shortcut of the store's own `add_bar`; a subclass that overrides
    `add_bar` (to log, filter or mirror bars) must still see every bar."""
    seen: list[Bar] = []

    class Recording(SessionData):
        def add_bar(self, symbol: str, bar: Bar, **kwargs: Any) -> bool:
            seen.append(bar)
            return super().add_bar(symbol, bar, **kwargs)

    store = Recording()
    coord = BacktestStreamCoordinator(store)
    bars = [bar("AAA", at(m), 10 + m) for m in range(6)]
    coord.feed_data_list("AAA", StreamType.BAR, bars)
    assert drain(coord) == bars
    assert seen == bars
    assert store.get_bars("AAA") == bars


# -------------------------------------------------------------------- sessions and days


def test_regular_session_filter_and_extended_hours() -> None:
    early = bar("AAA", datetime(2024, 3, 4, 9, 29, tzinfo=NY))
    first = bar("AAA", at(0))
    last = bar("AAA", datetime(2024, 3, 4, 15, 59, tzinfo=NY))
    late = bar("AAA", datetime(2024, 3, 4, 16, 0, tzinfo=NY))
    ticks = [
        tick("AAA", datetime(2024, 3, 4, 9, 29, 59, tzinfo=NY)),
        tick("AAA", datetime(2024, 3, 4, 15, 59, 59, tzinfo=NY)),
        tick("AAA", datetime(2024, 3, 4, 16, 0, 0, tzinfo=NY)),
    ]
    streams: list[tuple[str, StreamType, list[Any]]] = [
        ("AAA", StreamType.BAR, [early, first, last, late]),
        ("AAA", StreamType.TICK, ticks),
    ]
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    for s, t, items in streams:
        coord.feed_data_list(s, t, items)
    assert drain(coord) == [first, ticks[1], last]
    assert coord.status()["filtered"] == 4
    assert store.get_bars("AAA") == [first, last]

    out, store = replay(streams, extended_hours=True)
    assert out == [ticks[0], early, first, ticks[1], last, ticks[2], late]
    assert store.get_bars("AAA") == [early, first, last, late]


class Recorder:
    """A session listener that records what the store holds when the coordinator calls it."""

    def __init__(self, store: SessionData, symbols: list[str]) -> None:
        self.store = store
        self.symbols = symbols
        self.calls: list[tuple[date | None, bool, dict[str, dict[str, Any]]]] = []

    def run_once(self) -> None:
        metrics = {s: self.store.get_session_metrics(s) for s in self.symbols}
        self.calls.append((self.store.current_session_date, self.store.session_ended, metrics))


def test_multi_day_replay_rolls_sessions_and_runs_listeners() -> None:
    store = SessionData(historical_bars_trailing_days=5)
    recorder = Recorder(store, ["AAA"])
    assert isinstance(recorder, SessionBoundaryListener)
    coord = BacktestStreamCoordinator(store, session_listeners=[recorder])
    day1 = [bar("AAA", at(m, day=D1)) for m in range(3)]
    day2 = [bar("AAA", at(m, day=D2), 20) for m in range(2)]
    ticks2 = [tick("AAA", at(0, 30, day=D2))]
    coord.feed_data_list("AAA", StreamType.BAR, day1 + day2)
    coord.feed_data_list("AAA", StreamType.TICK, ticks2)
    out = drain(coord)
    assert out == [*day1, ticks2[0], *day2]
    # One call at the boundary (session 1 ended, not yet replaced), one when the streams ran out.
    assert [(d, ended, m["AAA"]["bar_count"]) for d, ended, m in recorder.calls] == [
        (D1, True, 3),
        (D2, True, 2),
    ]
    assert store.current_session_date == D2
    assert store.get_bars("AAA") == day2
    assert store.get_historical_bars("AAA")[D1] == tuple(day1)
    assert coord.status()["session_dates"] == [D1, D2]


def test_first_session_is_not_restarted_when_the_store_is_already_on_it() -> None:
    store = SessionData()
    store.start_new_session(D1)
    early = bar("AAA", at(0))
    store.add_bar("AAA", early)
    coord = BacktestStreamCoordinator(store, end_session_on_exhaustion=False)
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(1))])
    drain(coord)
    assert store.get_bar_count("AAA") == 2  # not cleared
    assert not store.session_ended


def test_listener_must_have_run_once() -> None:
    with pytest.raises(ValueError, match="run_once"):
        BacktestStreamCoordinator(SessionData(), session_listeners=[object()])  # type: ignore[list-item]


@pytest.mark.realdata
def test_real_data_replay_spy_aig_bac(real_data: Path) -> None:
    symbols = ["SPY", "AIG", "BAC"]
    folder = real_data / "quantconnect_lean"
    files = {s: folder / f"{s}_1m.csv" for s in symbols}
    # Expected per session, from the files: regular-session bars (09:30 <= local start < 16:00).
    expected: dict[date, dict[str, list[Bar]]] = {}
    for s in symbols:
        for b in read_csv_bars(files[s], s):
            local = b.timestamp.astimezone(NY)
            if time(9, 30) <= local.time() < time(16, 0):
                expected.setdefault(local.date(), {}).setdefault(s, []).append(b)
    dates = sorted(expected)
    assert len(dates) == 6

    store = SessionData(historical_bars_trailing_days=10)
    recorder = Recorder(store, symbols)
    clock = TimeProvider()
    coord = BacktestStreamCoordinator(store, time_provider=clock, session_listeners=[recorder])
    for s in symbols:
        coord.register_stream(s, StreamType.BAR, iter_csv_bars(files[s], s))
    out = drain(coord)

    everything = [b for d in dates for s in symbols for b in expected[d][s]]
    assert sorted(out, key=lambda b: (b.timestamp, b.symbol)) == sorted(
        everything, key=lambda b: (b.timestamp, b.symbol)
    )
    assert [known_time(b) for b in out] == sorted(known_time(b) for b in out)
    assert coord.status()["session_dates"] == dates
    assert coord.status()["filtered"] == sum(len(read_csv_bars(files[s], s)) for s in symbols) - len(
        everything
    )
    assert clock.now() == max(known_time(b) for b in everything)

    # The listener ran at each boundary and at the end, each time with the ended session still in the store.
    assert [c[0] for c in recorder.calls] == dates
    for (day, ended, metrics), d in zip(recorder.calls, dates, strict=True):
        assert ended
        assert day == d
        for s in symbols:
            bars = expected[d][s]
            m = metrics[s]
            assert m["bar_count"] == len(bars), (d, s)
            assert m["session_volume"] == sum(b.volume for b in bars), (d, s)
            assert m["session_high"] == max(b.high for b in bars), (d, s)
            assert m["session_low"] == min(b.low for b in bars), (d, s)
            assert m["last_update"] == bars[-1].timestamp, (d, s)
            assert m["bar_quality"] == pytest.approx(100.0 * len(bars) / 390), (d, s)
    # Every session's bars ended up in the store for that session.
    for s in symbols:
        history = store.get_historical_bars(s)
        for d in dates[:-1]:
            assert list(history[d]) == expected[d][s]
        assert store.get_bars(s) == expected[dates[-1]][s]
    check_store(store)


# --------------------------------------------------------------------- backpressure


def counting_bars(symbol: str, pulled: list[int]) -> Iterator[Bar]:
    """An endless 1-minute bar source that counts what was pulled from it."""
    t = datetime(2024, 3, 4, 0, 0, tzinfo=NY)
    while True:
        pulled[0] += 1
        yield bar(symbol, t)
        t += MINUTE


@pytest.mark.parametrize(("maxsize", "batch"), [(16, 4), (1, 1), (100, 100)])
def test_a_consumer_that_stops_reading_bounds_memory(maxsize: int, batch: int) -> None:
    pulled = [0]
    coord = BacktestStreamCoordinator(
        SessionData(derived_intervals=()), extended_hours=True, max_queue_size=maxsize, batch_size=batch
    )
    coord.register_stream("AAA", StreamType.BAR, counting_bars("AAA", pulled))
    stream = coord.merged_stream()
    taken = [next(stream) for _ in range(10)]
    assert [b.timestamp for b in taken] == [datetime(2024, 3, 4, 0, m, tzinfo=NY) for m in range(10)]
    # The worker fills the buffer and then blocks on it.
    assert wait_for(lambda: bool(coord.status()["waiting_for_consumer"]))
    status = coord.status()
    assert coord.queue_size() <= maxsize
    assert status["max_queued"] <= maxsize
    # Pulled: what the consumer took or holds in its current batch, the full buffer, one batch being handed
    # over, and the one pending item.
    assert pulled[0] <= 10 + batch + maxsize + batch + 1
    before = pulled[0]
    assert coord.stop_worker(timeout=10)
    assert pulled[0] == before
    assert coord.status()["state"] == "stopped"


# ---------------------------------------------------------------------------- faults


def raising_source(n: int) -> Iterator[Bar]:
    for m in range(n):
        yield bar("AAA", at(m))
    raise OSError("feed went away")


def test_a_source_that_raises_midway_surfaces_to_the_consumer() -> None:
    coord = BacktestStreamCoordinator(SessionData())
    coord.register_stream("AAA", StreamType.BAR, raising_source(5))
    coord.feed_data_list("BBB", StreamType.BAR, [bar("BBB", at(m)) for m in range(20)])
    received: list[Any] = []
    stream = coord.merged_stream()
    with pytest.raises(CoordinatorError) as info:
        received.extend(stream)
    source_error = info.value.__cause__
    assert isinstance(source_error, StreamSourceError)
    assert "AAA/bar" in str(source_error)
    assert isinstance(source_error.__cause__, OSError)
    # Everything processed before the failure was delivered first, in order.
    assert [b for b in received if b.symbol == "AAA"] == [bar("AAA", at(m)) for m in range(5)]
    assert received == sorted(received, key=lambda b: (known_time(b), b.symbol))
    assert coord.stop_worker(timeout=5.0)  # the worker may still be on its way out when the error arrives
    status = coord.status()
    assert status["state"] == "failed"
    assert "feed went away" in status["error"]
    assert not status["worker_alive"]
    with pytest.raises(CoordinatorError):  # asking again repeats the error, never a silent end
        list(coord.merged_stream())


def test_a_source_that_blocks_forever_does_not_block_stop() -> None:
    release = threading.Event()
    reached = threading.Event()

    def stuck() -> Iterator[Bar]:
        yield bar("AAA", at(0))
        yield bar("AAA", at(1))
        reached.set()
        release.wait()  # blocks until the test lets it go
        yield bar("AAA", at(2))

    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    coord.register_stream("AAA", StreamType.BAR, stuck())
    stream = coord.merged_stream()
    # Its known time ended when the next bar was pulled: offered to the consumer during the blocking pull.
    # (The bar at 1 waits: the stalled source might still yield another item known when it is.)
    assert next(stream) == bar("AAA", at(0))
    assert reached.wait(DEADLINE)
    started = _time.monotonic()
    assert coord.stop_worker(timeout=0.2) is False  # abandoned, and said so
    assert _time.monotonic() - started < 5.0
    assert list(stream) == []  # the consumer is released
    assert coord.status()["worker_alive"]
    release.set()  # the source returns: the abandoned worker exits without writing more
    assert wait_for(lambda: not coord.status()["worker_alive"])
    assert store.get_bars("AAA") == [bar("AAA", at(0)), bar("AAA", at(1))]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (tick("AAA", at(1)), "is not a Bar"),
        ("not a record", "is not a Bar"),
        (bar("ZZZ", at(1)), "'ZZZ'"),
    ],
)
def test_a_bad_item_is_an_error_naming_the_source(bad: Any, message: str) -> None:
    coord = BacktestStreamCoordinator(SessionData())
    coord.register_stream("AAA", StreamType.BAR, iter([bar("AAA", at(0)), bad]))
    with pytest.raises(CoordinatorError) as info:
        drain(coord)
    cause = info.value.__cause__
    assert isinstance(cause, InvalidDataError)
    assert "AAA/bar" in str(cause)
    assert message in str(cause)
    # feed_data_list checks eagerly and registers nothing.
    coord2 = BacktestStreamCoordinator(SessionData())
    with pytest.raises(InvalidDataError, match=message):
        coord2.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(0)), bad])
    assert coord2.status()["streams"] == 0


def test_out_of_order_inside_a_source_raises_or_is_dropped() -> None:
    items = [bar("AAA", at(0)), bar("AAA", at(2)), bar("AAA", at(1)), bar("AAA", at(3))]
    coord = BacktestStreamCoordinator(SessionData())
    coord.feed_data_list("AAA", StreamType.BAR, items)
    with pytest.raises(CoordinatorError) as info:
        drain(coord)
    assert isinstance(info.value.__cause__, InvalidDataError)
    assert "out-of-order item #2 in source AAA/bar" in str(info.value.__cause__)

    store = SessionData()
    coord = BacktestStreamCoordinator(store, on_out_of_order="drop")
    coord.feed_data_list("AAA", StreamType.BAR, items)
    assert drain(coord) == [items[0], items[1], items[3]]  # dropped, never reordered
    assert coord.status()["dropped_out_of_order"] == 1
    assert store.get_bars("AAA") == [items[0], items[1], items[3]]


def test_items_written_before_a_fault_are_delivered_before_the_error() -> None:
    # List sources are batched: the batch being gathered when the fault strikes is handed over too.
    aaa = [bar("AAA", at(m)) for m in range(5)] + [bar("AAA", at(2))]
    bbb = [bar("BBB", at(m)) for m in range(8)]
    store = SessionData()
    coord = BacktestStreamCoordinator(store, batch_size=64)
    coord.feed_data_list("AAA", StreamType.BAR, aaa)
    coord.feed_data_list("BBB", StreamType.BAR, bbb)
    received: list[Any] = []
    with pytest.raises(CoordinatorError, match="out-of-order item #5 in source AAA/bar"):
        received.extend(coord.merged_stream())
    # AAA's bar of 09:34 is the last one written: pulling after it finds the fault, before BBB's 09:34.
    assert received == [b for m in range(4) for b in (aaa[m], bbb[m])] + [aaa[4]]
    assert store.get_bars("AAA") == aaa[:5]
    assert store.get_bars("BBB") == bbb[:4]
    assert coord.status()["delivered"] == len(received)


def test_a_fault_shows_in_status_even_when_nobody_reads() -> None:
    # The buffer is full and no one reads when the fault strikes: the worker must not wait for room to hand
    # over its last batch before recording the error.
    items = [bar("AAA", at(m)) for m in range(6)] + [bar("AAA", at(1))]
    coord = BacktestStreamCoordinator(SessionData(), max_queue_size=4, batch_size=4)
    coord.feed_data_list("AAA", StreamType.BAR, items)
    coord.start_worker()
    assert coord._thread is not None
    coord._thread.join(timeout=10)  # a deadline, not a nap: the worker ends as soon as it has failed
    status = coord.status()
    assert status["state"] == "failed"
    assert "out-of-order item #6" in str(status["error"])
    received: list[Any] = []
    with pytest.raises(CoordinatorError):
        received.extend(coord.merged_stream())
    assert received == items[:6]  # every item written before the fault, then the error


def test_items_before_a_preset_clock_are_late() -> None:
    items = [bar("AAA", at(m)) for m in range(5)]
    clock = TimeProvider(start=at(3))
    coord = BacktestStreamCoordinator(SessionData(), time_provider=clock)
    coord.feed_data_list("AAA", StreamType.BAR, items)
    with pytest.raises(CoordinatorError, match="before the clock"):
        drain(coord)

    clock = TimeProvider(start=at(3))
    coord = BacktestStreamCoordinator(SessionData(), time_provider=clock, on_out_of_order="drop")
    coord.feed_data_list("AAA", StreamType.BAR, items)
    assert drain(coord) == items[2:]  # bar 2 ends at 09:33, the clock's time: not late
    assert coord.status()["dropped_late"] == 2


def test_a_failing_store_write_surfaces() -> None:
    store = SessionData()
    store.start_new_session(D1)  # so the replay keeps the session (and its bar) instead of starting afresh
    store.add_bar("AAA", bar("AAA", at(0, tz=None)))  # naive data stored: an aware bar cannot join it
    coord = BacktestStreamCoordinator(store)
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(1))])
    with pytest.raises(CoordinatorError) as info:
        drain(coord)
    assert isinstance(info.value.__cause__, InvalidDataError)


def test_a_store_write_failing_inside_a_known_time_delivers_the_items_written_before_it() -> None:
    # The worker writes a known time's items in one go: the ones written before the failing write are
    # delivered, then the error; none after it is written.
    class Failing(SessionData):
        def add_bar(self, symbol: str, bar: Bar, **kwargs: Any) -> bool:
            if symbol == "BBB" and bar.timestamp == at(1):
                raise OSError("disk full")
            return super().add_bar(symbol, bar, **kwargs)

    store = Failing()
    coord = BacktestStreamCoordinator(store)
    streams = {s: [bar(s, at(m)) for m in range(3)] for s in ("AAA", "BBB", "CCC")}
    for symbol, items in streams.items():
        coord.feed_data_list(symbol, StreamType.BAR, items)
    received: list[Any] = []
    with pytest.raises(CoordinatorError, match="disk full"):
        received.extend(coord.merged_stream())
    assert received == [streams[s][0] for s in ("AAA", "BBB", "CCC")] + [streams["AAA"][1]]
    assert store.get_bars("AAA") == streams["AAA"][:2]
    assert store.get_bars("CCC") == streams["CCC"][:1]
    assert coord.status()["delivered"] == len(received)


def test_records_of_a_subclass_replay_like_their_class() -> None:
    # A stream's records may be instances of a subclass of its record class (the checks are isinstance):
    # the worker writes them with the stream type's writer, as it writes the class's own.
    class TaggedBar(Bar):
        __slots__ = ()

    class TaggedTick(Tick):
        __slots__ = ()

    bars = [TaggedBar("AAA", at(m), 10.0, 10.0, 10.0, 10.0, 100) for m in range(3)]
    ticks = [TaggedTick("AAA", at(m, 30), 10.0, 1) for m in range(3)]
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    coord.register_stream("AAA", StreamType.BAR, bars)
    coord.register_stream("AAA", StreamType.TICK, ticks)
    assert drain(coord) == expected_order([("AAA", StreamType.BAR, bars), ("AAA", StreamType.TICK, ticks)])
    assert store.get_bars("AAA") == bars


def test_a_failing_listener_surfaces() -> None:
    class Broken:
        def run_once(self) -> None:
            raise RuntimeError("upkeep broke")

    coord = BacktestStreamCoordinator(SessionData(), session_listeners=[Broken()])
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(0, day=D1)), bar("AAA", at(0, day=D2))])
    with pytest.raises(CoordinatorError, match="upkeep broke"):
        drain(coord)


# -------------------------------------------------------------------- pause and stop


def slow_consumer_setup(**kwargs: Any) -> tuple[BacktestStreamCoordinator, TimeProvider, SessionData]:
    store = SessionData(derived_intervals=())
    clock = TimeProvider()
    coord = BacktestStreamCoordinator(store, time_provider=clock, **kwargs)
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(m)) for m in range(300)])
    return coord, clock, store


def test_pause_freezes_the_clock_and_resume_continues() -> None:
    coord, clock, store = slow_consumer_setup(max_queue_size=8, batch_size=2)
    stream = coord.merged_stream()
    first = [next(stream) for _ in range(3)]
    coord.pause()
    assert coord.wait_paused(DEADLINE)
    assert clock.now() == first[-1].timestamp + timedelta(minutes=1)  # as of the item in hand
    written = store.writer_state().version
    assert coord.status()["state"] == "paused"
    # Drain what was already queued: the writes do not move while paused, and readers see the store and
    # the clock as of the item in hand.
    buffered = [next(stream) for _ in range(coord.queue_size())]
    assert buffered
    assert clock.now() == buffered[-1].timestamp + timedelta(minutes=1)
    assert store.writer_state().version == written
    assert store.get_bar_count("AAA") == len(first) + len(buffered)
    coord.resume()
    rest = list(stream)
    assert first + buffered + rest == [bar("AAA", at(m)) for m in range(300)]
    assert clock.now() == at(300)
    assert coord.status()["state"] == "finished"


def test_stop_while_paused() -> None:
    coord, clock, _ = slow_consumer_setup(max_queue_size=4, batch_size=1)
    stream = coord.merged_stream()
    next(stream)
    coord.pause()
    assert coord.wait_paused(DEADLINE)
    frozen = clock.now()
    assert coord.stop_worker(timeout=10)
    assert coord.status()["state"] == "stopped"
    assert not coord.status()["worker_alive"]
    assert clock.now() == frozen
    assert len(list(stream)) <= 4  # only what was already buffered, then the end
    assert coord.stop_worker(timeout=1)  # idempotent


def test_stop_when_the_consumer_stopped_reading() -> None:
    coord, _, _ = slow_consumer_setup(max_queue_size=4, batch_size=2)
    stream = coord.merged_stream()
    next(stream)
    assert wait_for(lambda: bool(coord.status()["waiting_for_consumer"]))
    assert coord.stop_worker(timeout=10)


def test_pause_before_start_and_register_while_paused() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    a = [bar("AAA", at(m)) for m in range(5)]
    b = [bar("BBB", at(m)) for m in range(5)]
    coord.feed_data_list("AAA", StreamType.BAR, a)
    coord.pause()
    coord.start_worker()
    assert coord.wait_paused(DEADLINE)
    assert store.get_bar_count("AAA") == 0
    coord.feed_data_list("BBB", StreamType.BAR, b)  # joins the merge while the worker runs
    coord.deregister_stream("AAA", StreamType.BAR)
    coord.feed_data_list("AAA", StreamType.BAR, a[:2])  # re-registered: a new stream
    coord.resume()
    assert drain(coord) == [a[0], b[0], a[1], b[1], b[2], b[3], b[4]]


def test_deregister_before_start() -> None:
    coord = BacktestStreamCoordinator(SessionData())
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(0))])
    coord.feed_data_list("BBB", StreamType.BAR, [bar("BBB", at(0))])
    assert coord.deregister_stream("aaa", "bar")
    assert not coord.deregister_stream("AAA", StreamType.BAR)
    assert drain(coord) == [bar("BBB", at(0))]


def test_speed_control_paces_and_its_wait_is_interruptible() -> None:
    # 600 simulated seconds per second: 1 minute of data takes at least 0.1 s of wall time.
    coord, _, _ = slow_consumer_setup(speed=600.0)
    coord.deregister_stream("AAA", StreamType.BAR)
    coord.feed_data_list("BBB", StreamType.BAR, [bar("BBB", at(0)), bar("BBB", at(1))])
    started = _time.monotonic()
    assert len(drain(coord)) == 2
    assert _time.monotonic() - started >= 0.1

    # Almost frozen: the second bar would come after ~2 years; pause and stop still answer at once.
    coord, clock, _ = slow_consumer_setup(speed=1e-6)
    stream = coord.merged_stream()
    assert next(stream) == bar("AAA", at(0))
    coord.pause()
    assert coord.wait_paused(DEADLINE)
    coord.resume()
    assert clock.now() == at(1)
    started = _time.monotonic()
    assert coord.stop_worker(timeout=10)
    assert _time.monotonic() - started < 5.0


def test_lifecycle_errors_and_arguments() -> None:
    store = SessionData()
    coord = BacktestStreamCoordinator(store)
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(0))])
    with pytest.raises(ValueError, match="already registered"):
        coord.feed_data_list("aaa", StreamType.BAR, [])
    with pytest.raises(ValueError, match="stream_type"):
        coord.register_stream("AAA", "candle", [])
    with pytest.raises(ValueError, match="not iterable"):
        coord.register_stream("BBB", StreamType.BAR, 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidDataError):
        coord.register_stream("  ", StreamType.BAR, [])
    coord.start_worker()
    with pytest.raises(RuntimeError, match="once"):
        coord.start_worker()
    assert drain(coord) == [bar("AAA", at(0))]
    with pytest.raises(RuntimeError, match="ended"):
        coord.feed_data_list("BBB", StreamType.BAR, [])
    for kwargs in (
        {"speed": 0},
        {"speed": -1.0},
        {"on_out_of_order": "sort"},
        {"max_queue_size": 0},
        {"batch_size": 0},
        {"time_provider": TimeProvider("live")},
    ):
        with pytest.raises(ValueError):
            BacktestStreamCoordinator(store, **kwargs)
    with pytest.raises(ValueError, match="SessionData"):
        BacktestStreamCoordinator("store")  # type: ignore[arg-type]


def test_no_streams_ends_at_once_and_context_manager_stops() -> None:
    with BacktestStreamCoordinator(SessionData()) as coord:
        assert drain(coord) == []
        assert coord.status()["state"] == "finished"


def test_a_stream_registered_as_the_merge_runs_dry_joins_or_is_refused_never_lost() -> None:
    # The worker has pulled every source while the consumer still holds items: a stream registered now
    # either joins the replay or is refused with RuntimeError; it was accepted and silently dropped.
    # Whether it joins depends on how far the worker got, and so does the clock: a joining item known
    # before the clock is late. With ``on_out_of_order="drop"`` a late item is dropped and counted (with the
    # default the replay fails with an error naming it, as tested above), so every item of the joining stream
    # is delivered or counted as late: none is lost.
    store = SessionData()
    coord = BacktestStreamCoordinator(store, max_queue_size=10_000, on_out_of_order="drop")
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(m)) for m in range(300)])
    coord.start_worker()
    items = coord.merged_stream()
    first = next(items)
    assert wait_for(lambda: coord.status()["streams"] == 0)  # every source pulled to its end
    late = [bar("ZZZ", at(2)), bar("ZZZ", at(200))]
    refused = ""
    try:
        coord.register_stream("ZZZ", StreamType.BAR, late)
    except RuntimeError as exc:
        refused = str(exc)
    joined = not refused
    assert joined or "the replay has ended" in refused
    rest = [first, *items]
    zzz = [x for x in rest if x.symbol == "ZZZ"]
    if joined:
        # Delivered in order, or dropped as late (known before the clock); never both, never neither.
        assert zzz in (late, late[1:], [])
        assert len(zzz) + coord.status()["dropped_late"] == len(late)
        assert store.get_bar_count("ZZZ") == len(zzz)
    else:
        assert zzz == []
        assert store.get_bar_count("ZZZ") == 0
    assert coord.status()["state"] == "finished"


def test_registering_after_the_merge_ran_dry_is_refused() -> None:
    coord = BacktestStreamCoordinator(SessionData(), max_queue_size=10_000)
    coord.feed_data_list("AAA", StreamType.BAR, [bar("AAA", at(m)) for m in range(300)])
    # The consumer attaches first, then the stream starts the worker: a worker started before could finish
    # the whole replay before the consumer attached (it waits for an attached consumer only).
    items = coord.merged_stream()
    next(items)
    # The worker has left the merge and waits for the consumer at the end of the session.
    assert wait_for(lambda: coord.status()["waiting_for_consumer"] and coord.status()["streams"] == 0)
    with pytest.raises(RuntimeError, match="the replay has ended"):
        coord.register_stream("ZZZ", StreamType.BAR, [bar("ZZZ", at(250))])
    assert len(list(items)) == 299
