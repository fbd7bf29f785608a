"""Parquet in and Arrow out, each against a floor measured in the same run (issue 17's targets).

* **A 30-minute range of one symbol** from a 1,000-symbol × 20-session dataset (7.8 million 1-minute bars,
  America/New_York timestamps): `ParquetBarRepository.get_bars` (hive ``symbol=X`` partitions, one file
  per symbol, row groups of 1,024 rows, the layout ``sessiondata import --parquet`` writes) against the same
  query on a `SqliteBarRepository` holding the same rows (target: at most 5x), and against reading the
  whole dataset with pyarrow (``pyarrow.dataset(...).to_table()``, no `Bar` built; target: the query at
  least 20x faster). Each query asks for another symbol and session, in a fixed order; the repository's
  per-symbol footer index is warm (built by a first query outside the timing), as it is after a replay's
  first day. The same query on a cold repository is reported without a target.
* **`store_to_arrow` of 390 bars** against `store_to_numpy` of all fields of the same 390 bars, both on a
  new snapshot version per read (a writer appends one bar between reads, so neither can answer from its
  per-version memo): target at most 1x. The unchanged-snapshot pair is reported without a target.

Building the two datasets takes about a minute (the SQLite file is ~1 GB); they live in a temporary
directory for the run. Run: ``.venv/bin/python -m pytest benchmarks/bench_parquet.py -p no:cacheprovider
--benchmark-only``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from memory_per_bar import session_bars
from ratios import Ratio, Results
from sessiondata import (
    ParquetBarRepository,
    SessionData,
    SqliteBarRepository,
    SymbolSessionData,
    store_to_arrow,
    to_arrow,
    to_numpy,
)

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")
np = pytest.importorskip("numpy")

SYMBOLS = 1_000
SESSIONS = 20
MINUTES = 390
EST = timezone(timedelta(hours=-5))  # January: New York is on standard time all month
FIRST_DAY = datetime(2024, 1, 2)
QUERIES = 50  # (symbol, session) pairs per timed round

RATIOS: tuple[Ratio, ...] = (
    Ratio(
        "30-minute range of one symbol, 1,000 symbols x 20 sessions: Parquet / SQLite",
        "parquet.get_bars 30min warm",
        "sqlite.get_bars 30min",
        ("<=", 5),
    ),
    Ratio(
        "the whole dataset read with pyarrow / a 30-minute Parquet query",
        "parquet.read whole dataset",
        "parquet.get_bars 30min warm",
        (">=", 20),
    ),
    Ratio(
        "30-minute range, cold repository (footer index built) / warm",
        "parquet.get_bars 30min cold",
        "parquet.get_bars 30min warm",
        note="the first query of a symbol reads its files' footers once",
    ),
    Ratio(
        "390 bars, writer appends between reads: store_to_arrow / to_numpy of all fields",
        "arrow.to_arrow 390 writer",
        "numpy.to_numpy all fields 390 writer",
        ("<=", 1),
    ),
    Ratio(
        "390 bars, unchanged snapshot: store_to_arrow / to_numpy of all fields",
        "arrow.store_to_arrow 390 unchanged",
        "numpy.store_to_numpy all fields 390 unchanged",
    ),
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


def _session_keys() -> Any:
    """Microseconds since the epoch (UTC) of every bar of one symbol: 20 sessions of 09:30-15:59 EST."""
    days = [FIRST_DAY + timedelta(days=d) for d in range(SESSIONS * 7 // 5 + 2)]
    sessions = [d for d in days if d.weekday() < 5][:SESSIONS]
    opens = np.array([int((d.replace(hour=9, minute=30, tzinfo=EST)).timestamp()) for d in sessions])
    minutes = np.arange(MINUTES) * 60
    return ((opens[:, None] + minutes[None, :]).ravel() * 1_000_000).astype(np.int64), sessions


def _prices(seed: int, n: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    close = 50.0 + np.cumsum(rng.normal(0, 0.02, n)).round(2)
    close = np.maximum(close, 1.0)
    spread = rng.uniform(0.01, 0.05, n).round(2)
    return {
        "open": close,
        "high": close + spread,
        "low": close - spread,
        "close": close,
        "volume": rng.integers(100, 10_000, n),
    }


@pytest.fixture(scope="module")
def datasets() -> Iterator[dict[str, Any]]:
    keys, sessions = _session_keys()
    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as tmp:
        root = Path(tmp) / "parquet"
        db = Path(tmp) / "bars.db"
        SqliteBarRepository(db).close()  # the repository's own schema
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        stamps = [
            (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(k))).astimezone(EST)
            for k in keys
        ]
        iso = [t.isoformat() for t in stamps]
        key_list = keys.tolist()
        for i in range(SYMBOLS):
            sym = f"S{i:04d}"
            values = _prices(i, len(keys))
            table = pa.table(
                {
                    "timestamp": pa.array(keys, pa.int64()).cast(pa.timestamp("us", "America/New_York")),
                    **{f: pa.array(values[f]) for f in ("open", "high", "low", "close", "volume")},
                }
            )
            (root / f"symbol={sym}").mkdir(parents=True)
            pq.write_table(table, root / f"symbol={sym}" / "part-0.parquet", row_group_size=1024)
            cols = [values[f].tolist() for f in ("open", "high", "low", "close", "volume")]
            conn.executemany(
                "INSERT INTO bars VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
                zip([sym] * len(key_list), key_list, iso, *cols, strict=True),
            )
            conn.execute("INSERT INTO symbols VALUES (?, 1)", (sym,))
        conn.commit()
        conn.close()
        yield {"root": root, "db": db, "sessions": sessions}


def _queries(sessions: list[datetime]) -> list[tuple[str, datetime, datetime]]:
    out = []
    for q in range(QUERIES):
        sym = f"S{(q * 397) % SYMBOLS:04d}"
        day = sessions[(q * 7) % SESSIONS]
        start = day.replace(hour=11 + q % 4, minute=(q * 13) % 30, tzinfo=EST)
        out.append((sym, start, start + timedelta(minutes=30)))
    return out


@pytest.mark.benchmark(group="30-minute range of one symbol")
@pytest.mark.parametrize("how", ["parquet.get_bars 30min warm", "sqlite.get_bars 30min"])
def test_range_query(
    benchmark: BenchmarkFixture, results: Results, datasets: dict[str, Any], how: str
) -> None:
    queries = _queries(datasets["sessions"])
    if how.startswith("parquet"):
        repo: Any = ParquetBarRepository(datasets["root"])
    else:
        repo = SqliteBarRepository(datasets["db"])
    for sym, start, end in queries:  # warm: footers read, SQLite pages cached
        repo.get_bars(sym, start, end)

    def run() -> int:
        return sum(len(repo.get_bars(sym, start, end)) for sym, start, end in queries)

    assert benchmark(run) == 30 * QUERIES
    results.record(how, benchmark, ops=QUERIES)


@pytest.mark.benchmark(group="30-minute range of one symbol")
def test_range_query_cold(benchmark: BenchmarkFixture, results: Results, datasets: dict[str, Any]) -> None:
    queries = _queries(datasets["sessions"])
    fresh = {"repo": None}

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        fresh["repo"] = ParquetBarRepository(datasets["root"])
        return (), {}

    def run() -> int:
        repo = fresh["repo"]
        assert repo is not None
        return sum(len(repo.get_bars(sym, start, end)) for sym, start, end in queries)

    assert benchmark.pedantic(run, setup=setup, rounds=5) == 30 * QUERIES
    results.record("parquet.get_bars 30min cold", benchmark, ops=QUERIES)


@pytest.mark.benchmark(group="30-minute range of one symbol")
def test_read_whole_dataset(benchmark: BenchmarkFixture, results: Results, datasets: dict[str, Any]) -> None:
    def run() -> int:
        rows: int = (
            ds.dataset(os.fspath(datasets["root"]), format="parquet", partitioning="hive").to_table().num_rows
        )
        return rows

    assert benchmark.pedantic(run, rounds=3) == SYMBOLS * SESSIONS * MINUTES
    results.record("parquet.read whole dataset", benchmark)


# --------------------------------------------------------------------------------------- Arrow out

STEPS = 200


def _writer_snapshots() -> tuple[SessionData, Iterator[list[SymbolSessionData]]]:
    bars = list(session_bars(390 + STEPS * 40))
    store = SessionData()
    store.add_bars_batch("SPY", bars[:390])

    def rounds() -> Iterator[list[SymbolSessionData]]:
        at = 390
        while True:
            snaps = []
            for bar in bars[at : at + STEPS]:
                store.add_bar("SPY", bar)
                snap = store.get_symbol_data("SPY")
                assert snap is not None
                snaps.append(snap)
            at += STEPS
            yield snaps

    return store, rounds()


@pytest.mark.benchmark(group="390 bars as columns, writer appends between reads")
@pytest.mark.parametrize("how", ["arrow.to_arrow 390 writer", "numpy.to_numpy all fields 390 writer"])
def test_columns_under_writer(benchmark: BenchmarkFixture, results: Results, how: str) -> None:
    _, rounds = _writer_snapshots()
    arrow = how.startswith("arrow")

    def setup() -> tuple[tuple[list[SymbolSessionData]], dict[str, Any]]:
        return (next(rounds),), {}

    def read_each(snaps: list[SymbolSessionData]) -> None:
        if arrow:
            for snap in snaps:
                to_arrow(snap, n=390)
        else:
            for snap in snaps:
                to_numpy(snap, n=390)

    benchmark.pedantic(read_each, setup=setup, rounds=30)
    results.record(how, benchmark, ops=STEPS)


@pytest.mark.benchmark(group="390 bars as columns, unchanged snapshot")
@pytest.mark.parametrize(
    "how", ["arrow.store_to_arrow 390 unchanged", "numpy.store_to_numpy all fields 390 unchanged"]
)
def test_columns_unchanged(benchmark: BenchmarkFixture, results: Results, how: str) -> None:
    store = SessionData()
    store.add_bars_batch("SPY", list(session_bars(390)))
    if how.startswith("arrow"):
        table = benchmark(store_to_arrow, store, "SPY")
        assert table.num_rows == 390
    else:
        from sessiondata import store_to_numpy

        got = benchmark(store_to_numpy, store, "SPY")
        assert len(got["close"]) == 390
    results.record(how, benchmark)
