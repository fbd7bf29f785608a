"""End-to-end replay speed of `BacktestStreamCoordinator`, beside floors measured in the same run.

The workload: one regular session of 1-minute bars for 100 symbols (39,000 bars), each timestamp parsed with
``datetime.fromisoformat`` from an ISO string with a UTC offset, exactly as bars read from the real CSV files
arrive (so every bar owns its own ``tzinfo`` object, which makes datetime comparisons slow; see below).

Measured, per bar (median of rounds; each round replays the whole session into a fresh store, built untimed):

* ``coordinator (5,15)``: the whole replay, merge + clock + store writes with derived 5m/15m bars + the
  consumer thread reading ``merged_stream()``. This is the issue's figure (target 250,000 bars/s).
* ``coordinator ()``: the same with no derived intervals.
* ``coordinator null-store``: the same with a store whose ``add_bar`` does nothing (the coordinator's own
  cost).
* ``store only (5,15)``: ``add_bar`` of the already merged sequence in one thread, no coordinator: the part
  of the replay that belongs to the store.
* floor ``heapq.merge``: a bare ``heapq.merge`` of the same 100 lists on ``timestamp``.
* floor ``heapq.merge (int keys)``: the same merge on precomputed integer keys: the least any merge can cost.

The ratios to the floors and the bars/s figures are printed by ``conftest.py`` at the end of the run
(``bars_per_second`` notes). Run::

    .venv/bin/python -m pytest benchmarks/bench_coordinator.py -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

import functools
import heapq
import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ratios import Ratio, Results
from sessiondata import Bar, SessionData
from sessiondata.replay.coordinator import BacktestStreamCoordinator, StreamType

SYMBOLS = 100
MINUTES = 390
BARS = SYMBOLS * MINUTES
ROUNDS = 5
NY = ZoneInfo("America/New_York")
TARGET_BARS_PER_SECOND = 250_000


RATIOS = (
    Ratio("coordinator (5,15) / heapq.merge", "coordinator (5,15)", "floor heapq.merge"),
    Ratio("coordinator (5,15) / heapq.merge (int keys)", "coordinator (5,15)", "floor heapq.merge int keys"),
    Ratio("coordinator (5,15) / store only (5,15)", "coordinator (5,15)", "store only (5,15)"),
    Ratio("coordinator () / heapq.merge", "coordinator ()", "floor heapq.merge"),
    Ratio("coordinator null-store / heapq.merge", "coordinator null-store", "floor heapq.merge"),
    Ratio(
        "coordinator null-store / heapq.merge (int keys)",
        "coordinator null-store",
        "floor heapq.merge int keys",
    ),
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


@functools.cache
def _streams() -> dict[str, list[Bar]]:
    start = datetime(2024, 3, 4, 9, 30, tzinfo=NY)
    out = {}
    for i in range(SYMBOLS):
        symbol = f"S{i:03d}"
        price = 20.0 + i
        bars = []
        for m in range(MINUTES):
            ts = datetime.fromisoformat((start + timedelta(minutes=m)).isoformat())
            price += 0.01 if (m * 7 + i) % 3 else -0.01
            bars.append(Bar(symbol, ts, price, price + 0.05, price - 0.05, price, 100 + m))
        out[symbol] = bars
    return out


class _NullStore(SessionData):
    """A store whose bar writes do nothing: isolates the coordinator's own cost."""

    def add_bar(self, symbol: str, bar: Bar, **kwargs: Any) -> bool:
        return True


def _coordinator(store: SessionData) -> BacktestStreamCoordinator:
    coord = BacktestStreamCoordinator(store)
    for symbol, bars in _streams().items():
        coord.register_stream(symbol, StreamType.BAR, bars)
    return coord


def _replay(coord: BacktestStreamCoordinator) -> None:
    count = 0
    for _ in coord.merged_stream():
        count += 1
    if count != BARS:
        raise AssertionError(f"replayed {count} bars, expected {BARS}")


def _note_speed(results: Results, name: str, benchmark: BenchmarkFixture) -> None:
    stats = benchmark.stats
    if stats is None or not stats.stats:
        return
    per_second = BARS / stats.stats.median
    results.notes[f"bars_per_second {name}"] = round(per_second)
    if name == "coordinator (5,15)":
        verdict = "met" if per_second >= TARGET_BARS_PER_SECOND else "MISSED"
        results.notes["target 250,000 bars/s end-to-end"] = f"{per_second:,.0f} bars/s: {verdict}"


@pytest.mark.benchmark(group="replay")
@pytest.mark.parametrize(
    ("name", "make_store"),
    [
        ("coordinator (5,15)", lambda: SessionData(derived_intervals=(5, 15))),
        ("coordinator ()", lambda: SessionData(derived_intervals=())),
        ("coordinator null-store", lambda: _NullStore(derived_intervals=())),
    ],
)
def test_coordinator_replay(
    benchmark: BenchmarkFixture, results: Results, name: str, make_store: Callable[[], SessionData]
) -> None:
    _streams()
    benchmark.pedantic(
        _replay, setup=lambda: ((_coordinator(make_store()),), {}), rounds=ROUNDS, iterations=1
    )
    results.record(name, benchmark, ops=BARS)
    _note_speed(results, name, benchmark)


@pytest.mark.benchmark(group="replay")
def test_store_only(benchmark: BenchmarkFixture, results: Results) -> None:
    merged = list(heapq.merge(*_streams().values(), key=operator.attrgetter("timestamp")))

    def write(store: SessionData) -> None:
        add = store.add_bar
        for bar in merged:
            add(bar.symbol, bar)

    def setup() -> tuple[tuple[SessionData], dict[str, Any]]:
        store = SessionData(derived_intervals=(5, 15))
        store.start_new_session(merged[0].timestamp.date())
        return (store,), {}

    benchmark.pedantic(write, setup=setup, rounds=ROUNDS, iterations=1)
    results.record("store only (5,15)", benchmark, ops=BARS)
    _note_speed(results, "store only (5,15)", benchmark)


@pytest.mark.benchmark(group="replay")
def test_floor_heapq_merge(benchmark: BenchmarkFixture, results: Results) -> None:
    lists = list(_streams().values())
    key = operator.attrgetter("timestamp")

    def merge() -> None:
        for _ in heapq.merge(*lists, key=key):
            pass

    benchmark.pedantic(merge, rounds=ROUNDS, iterations=1)
    results.record("floor heapq.merge", benchmark, ops=BARS)
    _note_speed(results, "floor heapq.merge", benchmark)


@pytest.mark.benchmark(group="replay")
def test_floor_heapq_merge_int_keys(benchmark: BenchmarkFixture, results: Results) -> None:
    lists = [[(m, i) for m in range(MINUTES)] for i in range(SYMBOLS)]

    def merge() -> None:
        for _ in heapq.merge(*lists):
            pass

    benchmark.pedantic(merge, rounds=ROUNDS, iterations=1)
    results.record("floor heapq.merge int keys", benchmark, ops=BARS)
    _note_speed(results, "floor heapq.merge int keys", benchmark)
