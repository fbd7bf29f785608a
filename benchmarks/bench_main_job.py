"""The main job as users run it, beside its parts, measured in the same run.

The workload: 100 symbols x 3 regular sessions of 1-minute bars (117,000 bars) in a SQLite repository,
timestamps with a UTC offset parsed by ``datetime.fromisoformat`` (as the real CSV files arrive), 3 random
minutes per symbol and session dropped from the stream in the ``(drop 3)`` variant (the upkeep fills them
from the repository).

Measured, per bar (median of rounds; each round replays into a fresh store, built untimed, after an untimed
``gc.collect()``, so that no round pays for collecting the garbage of the one before it: the main job
creates 117,000 long-lived `Bar` objects, and a cyclic collection over them landing in one round or another
moved its figure by 2x in earlier runs):

* ``main job``: `DataManager.replay` over the SQLite repository with the upkeep, the consumer iterating in
  the caller's thread: what ``sessiondata replay --db`` runs; ``main job (drop 3)`` with
  ``drop_minutes=3`` (the upkeep fills 900 minutes).
* ``coordinator only``: `BacktestStreamCoordinator` over the same bars from lists (no repository, no upkeep).
  Its timestamps are aware (as parsed); ``coordinator only naive`` replays the same bars with naive
  timestamps, the floor's kind. ``coordinator only (shared zones)``: the same aware bars with their
  timestamps as the repositories read them (`sessiondata._zones.IsoParser`: one `datetime` per distinct
  text, one zone object per offset). Python compares aware datetimes sharing a zone object ~8x faster than
  ones that each own theirs (as ``fromisoformat`` makes them), so the main job, which reads shared zones,
  is also given against this replay: the fair floor for what the main job adds.
* ``coordinator (no store writes)``: the naive replay into a store whose ``add_bar`` stores nothing: the
  coordinator's own cost (merge, clock, publication log and cuts, hand-over, consumer) without the store's
  write lane, so the two can be told apart. ``KnownTimeMerge naive``: the merge alone, in one thread
  (iterating its groups, as the coordinator does).
* ``repository read``: the main job's reading part alone, every symbol's sessions streamed from the SQLite
  repository as `Bar` objects; its floor ``bare sqlite3 select``: the same rows as tuples from a bare
  ``sqlite3`` SELECT (no `Bar`, no timestamp parsed).
* floor ``heapq.merge naive``: a bare ``heapq.merge`` on ``timestamp`` of the same bars with **naive**
  timestamps (a merge of aware timestamps that each own a ``tzinfo`` is ~9.5x slower and flatters any
  ratio taken to it).
* ``nautilus BacktestEngine`` (optional, skipped unless ``nautilus_trader`` is installed): NautilusTrader's
  single-threaded engine fed the same bars as ``Bar`` objects of one ``BarType`` per symbol, no strategy.

Targets (speed ratios, as time ratios here): the main job at >= 0.6x the coordinator-only replay (time
ratio <= 1.67); the coordinator-only replay at >= 0.25x the naive ``heapq.merge`` (time ratio <= 4.0); the
main job at >= 5x NautilusTrader's bars/s (time ratio <= 0.2). Run::

    .venv/bin/python -m pytest benchmarks/bench_main_job.py -p no:cacheprovider --benchmark-only --no-cov
"""

from __future__ import annotations

import functools
import gc
import heapq
import operator
import random
import sqlite3
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ratios import Ratio, Results
from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataManager,
    SessionData,
    SqliteBarRepository,
    StreamType,
)
from sessiondata._zones import IsoParser
from sessiondata.replay.merge import KnownTimeMerge, Source

SYMBOLS = 100
DAYS = (date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6))
MINUTES = 390
MISSING = 3  # minutes per symbol and session not streamed (dropped by the replay, filled by the upkeep)
BARS = SYMBOLS * len(DAYS) * MINUTES
ROUNDS = 5
NY = ZoneInfo("America/New_York")

RATIOS = (
    Ratio(
        "main job / coordinator only",
        "main job",
        "coordinator only",
        ("<=", 1 / 0.6),
        note="speed >= 0.6x the coordinator-only replay",
    ),
    Ratio(
        "main job / coordinator only (shared zones)",
        "main job",
        "coordinator only (shared zones)",
        note="the same bars with the repositories' shared zone objects (no target; see the docstring)",
    ),
    Ratio(
        "coordinator only / heapq.merge naive",
        "coordinator only",
        "floor heapq.merge naive",
        ("<=", 4.0),
        note="speed >= 0.25x a bare naive-timestamp merge",
    ),
    Ratio(
        "coordinator only naive / heapq.merge naive",
        "coordinator only naive",
        "floor heapq.merge naive",
        ("<=", 4.0),
        note="the same target with naive timestamps on both sides",
    ),
    Ratio(
        "coordinator (no store writes) / heapq.merge naive",
        "coordinator (no store writes)",
        "floor heapq.merge naive",
        note="the coordinator's own cost, without the store's write lane (no target)",
    ),
    Ratio(
        "KnownTimeMerge naive / heapq.merge naive",
        "KnownTimeMerge naive",
        "floor heapq.merge naive",
        note="the merge alone, one thread (no target)",
    ),
    Ratio(
        "main job (drop 3) / coordinator only",
        "main job (drop 3)",
        "coordinator only",
        note="the upkeep filling 3 dropped minutes per symbol and session (no target)",
    ),
    Ratio(
        "repository read / bare sqlite3 select",
        "repository read",
        "floor bare sqlite3 select",
        note="the main job's reading part: rows made Bars (no target)",
    ),
    Ratio(
        "main job / nautilus BacktestEngine",
        "main job",
        "nautilus BacktestEngine",
        ("<=", 0.2),
        note="speed >= 5x NautilusTrader (optional)",
    ),
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


@functools.cache
def _bars() -> dict[str, list[Bar]]:
    """Every symbol's bars over the three sessions (aware, each timestamp owning its tzinfo)."""
    out: dict[str, list[Bar]] = {}
    for i in range(SYMBOLS):
        symbol = f"S{i:03d}"
        rng = random.Random(i)
        price = 20.0 + i
        bars = []
        for day in DAYS:
            start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY)
            for m in range(MINUTES):
                ts = datetime.fromisoformat((start + timedelta(minutes=m)).isoformat())
                price += rng.choice((-0.01, 0.0, 0.01))
                bars.append(Bar(symbol, ts, price, price + 0.05, price - 0.05, price, 100 + m))
        out[symbol] = bars
    return out


@functools.cache
def _repository() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="sessiondata-bench-"))
    path = folder / "bars.db"
    repo = SqliteBarRepository(path)
    for bars in _bars().values():
        repo.add_bars(bars)
    repo.close()
    return path


def _note(results: Results, name: str, benchmark: BenchmarkFixture) -> None:
    stats = benchmark.stats
    if stats is not None and stats.stats:
        results.notes[f"bars_per_second {name}"] = round(BARS / stats.stats.median)


@pytest.mark.benchmark(group="main job")
@pytest.mark.parametrize(("name", "drop"), [("main job", 0), ("main job (drop 3)", MISSING)])
def test_main_job(benchmark: BenchmarkFixture, results: Results, name: str, drop: int) -> None:
    path = _repository()
    symbols = list(_bars())
    dropped = SYMBOLS * len(DAYS) * drop

    def run(manager: DataManager) -> None:
        report = manager.replay(symbols, DAYS, drop_minutes=drop, seed=1, upkeep=True)
        filled = sum(s.gaps_filled for session in report.sessions for s in session.symbols.values())
        if report.bars != BARS - dropped or filled != dropped:
            raise AssertionError(f"replayed {report.bars} bars, filled {filled}")

    opened: list[SqliteBarRepository] = []

    def setup() -> tuple[tuple[DataManager], dict[str, Any]]:
        gc.collect()
        opened.append(SqliteBarRepository(path))
        return (DataManager(SessionData(), repository=opened[-1]),), {}

    try:
        benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        for repo in opened:  # untimed; an unclosed connection is an error under the test configuration
            repo.close()
    results.record(name, benchmark, ops=BARS)
    _note(results, name, benchmark)


class _NoWrites(SessionData):
    """A measuring instrument, not a store: ``add_bar`` keeps nothing, so a replay into it costs the
    coordinator's own work only (the coordinator calls an overridden ``add_bar`` instead of its fast lane)."""

    def add_bar(self, symbol: str, bar: Bar, **_: Any) -> bool:
        return True


@functools.cache
def _naive_bars() -> dict[str, list[Bar]]:
    return {symbol: [Bar(*_naive(b)) for b in bars] for symbol, bars in _bars().items()}


@functools.cache
def _shared_zone_bars() -> dict[str, list[Bar]]:
    """`_bars` with timestamps as a repository reads them: one `datetime` per text, one zone per offset."""
    parse = IsoParser(max_entries=BARS)
    return {
        symbol: [Bar(b.symbol, parse(b.timestamp.isoformat()), *_naive(b)[2:]) for b in bars]
        for symbol, bars in _bars().items()
    }


@pytest.mark.benchmark(group="main job")
@pytest.mark.parametrize(
    ("name", "kind", "store"),
    [
        ("coordinator only", "aware", SessionData),
        ("coordinator only naive", "naive", SessionData),
        ("coordinator only (shared zones)", "shared", SessionData),
        ("coordinator (no store writes)", "naive", _NoWrites),
    ],
)
def test_coordinator_only(
    benchmark: BenchmarkFixture, results: Results, name: str, kind: str, store: type[SessionData]
) -> None:
    streams = {"aware": _bars, "naive": _naive_bars, "shared": _shared_zone_bars}[kind]()

    def run(coord: BacktestStreamCoordinator) -> None:
        count = sum(1 for _ in coord.merged_stream())
        if count != BARS:
            raise AssertionError(f"replayed {count} bars")

    def setup() -> tuple[tuple[BacktestStreamCoordinator], dict[str, Any]]:
        gc.collect()
        coord = BacktestStreamCoordinator(store())
        for symbol, bars in streams.items():
            coord.register_stream(symbol, StreamType.BAR, bars)
        return (coord,), {}

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    results.record(name, benchmark, ops=BARS)
    _note(results, name, benchmark)


@pytest.mark.benchmark(group="main job")
def test_known_time_merge_naive(benchmark: BenchmarkFixture, results: Results) -> None:
    streams = _naive_bars()
    clock = SessionData().session_clock

    def setup() -> tuple[tuple[KnownTimeMerge], dict[str, Any]]:
        merge = KnownTimeMerge(clock)
        sources = [Source(s, Bar, iter(bars), (0, s, i)) for i, (s, bars) in enumerate(streams.items())]
        merge.start(sources)
        return (merge,), {}

    def run(merge: KnownTimeMerge) -> None:
        count = sum([len(group.items) for group in merge.groups()])
        if count != BARS:
            raise AssertionError(f"merged {count} bars")

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    results.record("KnownTimeMerge naive", benchmark, ops=BARS)
    _note(results, "KnownTimeMerge naive", benchmark)


@pytest.mark.benchmark(group="main job")
def test_repository_read(benchmark: BenchmarkFixture, results: Results) -> None:
    """The main job's reading part: every symbol's three sessions streamed from the SQLite repository as
    `Bar`s (`SqliteBarRepository.iter_bars`, one query per symbol as `DataManager.replay` makes it)."""
    path = _repository()
    start = datetime(DAYS[0].year, DAYS[0].month, DAYS[0].day, tzinfo=NY)
    end = datetime(DAYS[-1].year, DAYS[-1].month, DAYS[-1].day, tzinfo=NY) + timedelta(days=1)

    def setup() -> tuple[tuple[SqliteBarRepository], dict[str, Any]]:
        gc.collect()
        return (SqliteBarRepository(path, read_only=True),), {}

    def run(repo: SqliteBarRepository) -> None:
        count = sum(len(list(repo.iter_bars(symbol, start, end))) for symbol in _bars())
        repo.close()
        if count != BARS:
            raise AssertionError(f"read {count} bars")

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    results.record("repository read", benchmark, ops=BARS)


@pytest.mark.benchmark(group="main job")
def test_floor_bare_sqlite3_select(benchmark: BenchmarkFixture, results: Results) -> None:
    """The floor of reading: the same rows' columns as tuples from a bare ``sqlite3`` SELECT (no `Bar`, no
    timestamp parsed)."""
    path = _repository()
    sql = (
        "SELECT ts, open, high, low, close, volume FROM bars "
        "WHERE symbol = ? AND interval = 1 AND ts_key >= ? AND ts_key < ? ORDER BY ts_key"
    )

    def setup() -> tuple[tuple[sqlite3.Connection], dict[str, Any]]:
        gc.collect()
        return (sqlite3.connect(path),), {}

    def run(conn: sqlite3.Connection) -> None:
        count = sum(len(conn.execute(sql, (symbol, -(2**62), 2**62)).fetchall()) for symbol in _bars())
        conn.close()
        if count != BARS:
            raise AssertionError(f"selected {count} rows")

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    results.record("floor bare sqlite3 select", benchmark, ops=BARS)


@pytest.mark.benchmark(group="main job")
def test_floor_heapq_merge_naive(benchmark: BenchmarkFixture, results: Results) -> None:
    lists = list(_naive_bars().values())
    key = operator.attrgetter("timestamp")

    def merge() -> None:
        for _ in heapq.merge(*lists, key=key):
            pass

    benchmark.pedantic(merge, setup=_collect, rounds=ROUNDS, iterations=1)
    results.record("floor heapq.merge naive", benchmark, ops=BARS)
    _note(results, "floor heapq.merge naive", benchmark)


def _collect() -> None:
    gc.collect()  # untimed, before a round (see the module docstring)


def _naive(b: Bar) -> tuple[Any, ...]:
    return (b.symbol, b.timestamp.replace(tzinfo=None), b.open, b.high, b.low, b.close, b.volume)


@pytest.mark.benchmark(group="main job")
def test_nautilus_backtest_engine(benchmark: BenchmarkFixture, results: Results) -> None:
    pytest.importorskip("nautilus_trader", reason="optional: pip install nautilus_trader")
    from nautilus_bars import engine_with_bars

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        engine = engine_with_bars(_bars())
        gc.collect()
        return (engine,), {}

    def run(engine: Any) -> None:
        engine.run()
        engine.dispose()

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    results.record("nautilus BacktestEngine", benchmark, ops=BARS)
    _note(results, "nautilus BacktestEngine", benchmark)
