"""Replay throughput of `sessiondata.parallel.replay_many` against the number of local workers.

The workload: the real QuantConnect SPY/AIG/BAC 1-minute bars (six sessions), each copied under
``COPIES`` symbol names (``SPY00``, ``AIG00``, ...: the same real bars, renamed) into one SQLite repository,
replayed with the default settings (regular session, derived 5m/15m bars, upkeep thread on) in tasks of
``GROUP`` symbols × one date. The unit of work (``ops``) is one **symbol-session**: one symbol's regular
session of about 390 bars.

Measured, per symbol-session (median of ``ROUNDS`` rounds, each a whole `replay_many` call):

* ``parallel inline (1 worker)``: ``workers=1``, every task in this process: the cost of the work itself.
* ``parallel pool (2 workers)``: ``workers=2``, a `ProcessPoolExecutor` started (``spawn``) by each call,
  so the figure includes starting two Python processes and importing the library in them.
* ``parallel dask (2 workers)``: a Dask ``LocalCluster`` of 2 worker processes × 1 thread started once
  before timing (as a long-lived cluster is): steady-state cost, no process start in the figure. Skipped
  without ``distributed``.

Ratios (``conftest.py`` prints them; time / time, so a speed-up is the inline time over the parallel time):
``inline / pool`` and ``inline / dask`` are the speed-ups of two workers over one on this 2-core machine
(at most 2x). The notes give the per-symbol-session cost the cluster estimate in ``docs/parallel.md`` starts
from. Run::

    .venv/bin/python -m pytest benchmarks/bench_parallel.py -p no:cacheprovider --benchmark-only
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import attrs
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from ratios import Ratio, Results
from sessiondata import CsvBarRepository, SqliteBarRepository
from sessiondata.parallel import replay_many

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "quantconnect_lean"
BASE = ("SPY", "AIG", "BAC")
COPIES = 20  # 60 symbols
GROUP = 10  # symbols per task: 6 groups x 6 dates = 36 tasks
DATES = 6
SYMBOL_SESSIONS = len(BASE) * COPIES * DATES
ROUNDS = 5
FIRST_DATE = [date(2013, 10, 4)]


INLINE = "parallel inline (1 worker)"
POOL = "parallel pool (2 workers)"
DASK = "parallel dask (2 workers)"

RATIOS = (
    Ratio(
        "speed-up: inline 1 worker / pool 2 workers",
        INLINE,
        POOL,
        note="pool figure includes spawning its 2 processes on every call",
    ),
    Ratio("speed-up: inline 1 worker / dask 2 workers", INLINE, DASK, note="cluster started before timing"),
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real market data not found at {REAL}")
    csv = CsvBarRepository(REAL)
    path = tmp_path_factory.mktemp("parallel") / "bars.db"
    with SqliteBarRepository(path) as repo:
        for base in BASE:
            first, last = csv.time_range(base) or (None, None)
            assert first is not None
            assert last is not None
            bars = csv.get_bars(base, first, last + (last - first))
            for i in range(COPIES):
                repo.add_bars(attrs.evolve(b, symbol=f"{base}{i:02d}") for b in bars)
    return path


def _symbols() -> list[str]:
    return [f"{base}{i:02d}" for i in range(COPIES) for base in BASE]


def _run(database: Path, **engine: Any) -> None:
    results = replay_many(database, _symbols(), group_size=GROUP, **engine)
    sessions = sum(len(r.summaries) for r in results if r.ok)
    if sessions != SYMBOL_SESSIONS:
        raise AssertionError(f"replayed {sessions} symbol-sessions, expected {SYMBOL_SESSIONS}")


def _note(results: Results, name: str, benchmark: BenchmarkFixture) -> None:
    stats = benchmark.stats
    if stats is None or not stats.stats:
        return
    per = stats.stats.median / SYMBOL_SESSIONS
    results.notes[f"{name}: ms per symbol-session"] = round(per * 1e3, 3)
    results.notes[f"{name}: symbol-sessions per second"] = round(1 / per, 1)


@pytest.mark.benchmark(group="parallel")
def test_inline(benchmark: BenchmarkFixture, results: Results, database: Path) -> None:
    benchmark.pedantic(_run, args=(database,), kwargs={"workers": 1}, rounds=ROUNDS, iterations=1)
    results.record(INLINE, benchmark, ops=SYMBOL_SESSIONS)
    _note(results, INLINE, benchmark)


@pytest.mark.benchmark(group="parallel")
def test_pool(benchmark: BenchmarkFixture, results: Results, database: Path) -> None:
    benchmark.pedantic(_run, args=(database,), kwargs={"workers": 2}, rounds=ROUNDS, iterations=1)
    results.record(POOL, benchmark, ops=SYMBOL_SESSIONS)
    _note(results, POOL, benchmark)
    # What starting the pool costs, alone: one task of one symbol-session on a 2-process pool.
    began = time.perf_counter()
    replay_many(database, ["SPY00", "AIG00"], FIRST_DATE, group_size=1, workers=2)
    results.notes["pool: one call of 2 one-symbol tasks (process start dominated), s"] = round(
        time.perf_counter() - began, 3
    )


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.benchmark(group="parallel")
def test_dask(benchmark: BenchmarkFixture, results: Results, database: Path, dask_client: Any) -> None:
    _run(database, client=dask_client)  # warm the workers (imports) before timing
    benchmark.pedantic(_run, args=(database,), kwargs={"client": dask_client}, rounds=ROUNDS, iterations=1)
    results.record(DASK, benchmark, ops=SYMBOL_SESSIONS)
    _note(results, DASK, benchmark)
