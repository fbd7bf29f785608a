"""Speed of columnar reads (`sessiondata._columns`) against building arrays from `Bar` objects, as ratios.

The operation: "the last 390 closes as a numpy array", as an indicator loop asks for it on every bar.
The floor it is compared with is the obvious code: ``np.array([b.close for b in get_last_n_bars(390)])``.

Two situations, each at 1,000 and 100,000 stored bars (issue 9's targets: >= 5x faster than the floor, and
flat in the series length):

* **unchanged snapshot**: the same snapshot read again and again (a second indicator on the same bar);
* **under a writer**: between two reads, one bar is appended (`add_bar`), so every read is the first read
  of a new snapshot version. Setup (untimed) appends ``STEPS`` bars one by one and keeps each version's
  snapshot; the timed block reads the last 390 closes of each version in order. Reported per read.
  The 1,000-bar store is rebuilt each round; the 100,000-bar store is reused and grows by ``STEPS`` bars
  per round (to at most 100,000 + rounds × ``STEPS``).

Two rejected strategies are measured the same way under the writer, to back the choice explained in the
`_columns` docstring: a whole-series column rebuilt for each new version and sliced, and converting the 390
objects per read (what a per-version answer cache costs when every version is read once).

Run: ``.venv/bin/python -m pytest benchmarks/bench_columns.py -p no:cacheprovider --benchmark-only``.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from memory_per_bar import session_bars
from ratios import Ratio, Results
from sessiondata import Bar, SessionData, SymbolSessionData
from sessiondata._columns import store_to_numpy, to_numpy

np = pytest.importorskip("numpy")


SYMBOL = "SPY"
N = 390
SMALL, LARGE = 1_000, 100_000
STEPS = 200  # versions read per timed round under the writer
ROUNDS = 25
SIZES = {"1k": SMALL, "100k": LARGE}

RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "last 390 closes, unchanged snapshot @100k: list comprehension / ours",
        "floor.listcomp unchanged @100k",
        "ours.to_numpy unchanged @100k",
        (">=", 5),
    ),
    Ratio(
        "last 390 closes, writer appends between reads @100k: list comprehension / ours",
        "floor.listcomp writer @100k",
        "ours.to_numpy writer @100k",
        (">=", 5),
    ),
    Ratio(
        "last 390 closes, writer appends between reads @1k: list comprehension / ours",
        "floor.listcomp writer @1k",
        "ours.to_numpy writer @1k",
        (">=", 5),
    ),
    Ratio(
        "ours unchanged snapshot: 100k bars / 1k bars",
        "ours.to_numpy unchanged @100k",
        "ours.to_numpy unchanged @1k",
        ("<=", 1.5),
    ),
    Ratio(
        "ours under the writer: 100k bars / 1k bars",
        "ours.to_numpy writer @100k",
        "ours.to_numpy writer @1k",
        ("<=", 1.5),
    ),
    Ratio(
        "rejected: whole-series column per version / ours, writer @100k",
        "alt.whole-series column writer @100k",
        "ours.to_numpy writer @100k",
        note="a whole-series cache is invalidated by every append",
    ),
    Ratio(
        "rejected: convert 390 objects per read / ours, writer @100k",
        "alt.convert last n writer @100k",
        "ours.to_numpy writer @100k",
        note="what a per-version answer cache costs when each version is read once",
    ),
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


@functools.cache
def _bars() -> list[Bar]:
    """Enough bars in time order for the large store and every round's appends, built once."""
    return list(session_bars(LARGE + (ROUNDS + 5) * STEPS))


def _store(size: int) -> SessionData:
    store = SessionData()
    store.add_bars_batch(SYMBOL, _bars()[:size])
    return store


def floor_listcomp(snap: SymbolSessionData) -> Any:
    return np.array([b.close for b in snap.get_last_n_bars(N)])


def ours(snap: SymbolSessionData) -> Any:
    return to_numpy(snap, "close", n=N)


_close = attrgetter("close")


def alt_whole_series(snap: SymbolSessionData) -> Any:
    return np.frombuffer(array("d", map(_close, snap.bars_1m)))[-N:]


def alt_convert_last_n(snap: SymbolSessionData) -> Any:
    return np.frombuffer(array("d", map(_close, snap.get_last_n_bars(N))))


# --------------------------------------------------------------------------------- unchanged snapshot


@pytest.mark.benchmark(group="last 390 closes, unchanged snapshot")
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("how", ["floor.listcomp", "ours.to_numpy"])
def test_unchanged_snapshot(benchmark: BenchmarkFixture, results: Results, size: str, how: str) -> None:
    store = _store(SIZES[size])
    want = [b.close for b in store.get_last_n_bars(SYMBOL, N)]
    if how == "ours.to_numpy":
        got = benchmark(store_to_numpy, store, SYMBOL, "close", n=N)
    else:
        got = benchmark(lambda: np.array([b.close for b in store.get_last_n_bars(SYMBOL, N)]))
    assert got.tolist() == want
    results.record(f"{how} unchanged @{size}", benchmark)


# ------------------------------------------------------------------------------------ under a writer

READERS: dict[str, Callable[[SymbolSessionData], Any]] = {
    "floor.listcomp": floor_listcomp,
    "ours.to_numpy": ours,
    "alt.whole-series column": alt_whole_series,
    "alt.convert last n": alt_convert_last_n,
}
CASES = [
    ("floor.listcomp", "1k"),
    ("ours.to_numpy", "1k"),
    ("floor.listcomp", "100k"),
    ("ours.to_numpy", "100k"),
    ("alt.convert last n", "100k"),
    ("alt.whole-series column", "100k"),
]


@pytest.mark.benchmark(group="last 390 closes, writer appends between reads")
@pytest.mark.parametrize(("how", "size"), CASES)
def test_under_writer(benchmark: BenchmarkFixture, results: Results, how: str, size: str) -> None:
    read = READERS[how]
    bars = _bars()
    state: dict[str, Any] = {"store": None, "next": SIZES[size]}
    slow = how == "alt.whole-series column"
    steps = 10 if slow else STEPS

    def setup() -> tuple[tuple[list[SymbolSessionData]], dict[str, Any]]:
        if state["store"] is None or size == "1k":
            state["store"], state["next"] = _store(SIZES[size]), SIZES[size]
        store: SessionData = state["store"]
        snaps = []
        for bar in bars[state["next"] : state["next"] + steps]:
            store.add_bar(SYMBOL, bar)
            snap = store.get_symbol_data(SYMBOL)
            assert snap is not None
            snaps.append(snap)
        state["next"] += steps
        state["snaps"] = snaps
        return (snaps,), {}

    def read_each(snaps: list[SymbolSessionData]) -> None:
        for snap in snaps:
            read(snap)

    # pytest-benchmark's pedantic() has no annotations.
    benchmark.pedantic(  # type: ignore[no-untyped-call]
        read_each, setup=setup, rounds=5 if slow else ROUNDS, warmup_rounds=0 if slow else 1
    )
    last = state["snaps"][-1]
    assert read(last).tolist() == [b.close for b in last.get_last_n_bars(N)]
    results.record(f"{how} writer @{size}", benchmark, ops=steps)
