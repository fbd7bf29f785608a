"""Benchmarks of the bar repositories, each beside a floor measured in the same run.

* Filling a 30-minute gap: ``SqliteBarRepository.get_bars`` of 30 SPY minutes from a file holding all the
  real data, against a bare ``sqlite3`` SELECT of the same rows (no `Bar` construction, no checks).
* Importing the real data into a new SQLite file (rows/s), against parsing the same files with the `csv`
  module alone and against reading them into validated `Bar`s without storing them.

Run: ``.venv/bin/python -m pytest benchmarks/bench_repository.py``; the ratios to each floor are printed at
the end of the module (the machine is shared, so only ratios measured together mean much).
"""

from __future__ import annotations

import csv
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sessiondata._csvio import CsvBarReader, read_csv_bars
from sessiondata._repository import CsvBarRepository, InMemoryBarRepository, SqliteBarRepository

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "quantconnect_lean"
FILES = sorted(REAL.glob("*_1m.csv")) if REAL.is_dir() else []
EDT = timezone(timedelta(hours=-4))
GAP_START = datetime(2013, 10, 8, 13, 0, tzinfo=EDT)
GAP_END = GAP_START + timedelta(minutes=30)

pytestmark = pytest.mark.skipif(not FILES, reason=f"real market data not found at {REAL}")


@pytest.fixture(scope="module")
def medians(request: pytest.FixtureRequest) -> Iterator[dict[str, float]]:
    """Collects each benchmark's median; prints the ratios to the floors when the module ends."""
    results: dict[str, float] = {}
    yield results
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    lines = ["", "bench_repository ratios (median time / floor's median time):"]
    pairs = [
        ("gap30_sqlite", "gap30_floor_bare_select"),
        ("gap30_memory", "gap30_floor_bare_select"),
        ("gap30_csv_repo", "gap30_floor_bare_select"),
        ("import_sqlite", "import_floor_csv_module"),
        ("import_sqlite", "import_floor_read_bars"),
    ]
    for name, floor in pairs:
        if name in results and floor in results:
            lines.append(
                f"  {name}: {results[name] * 1e3:.3f} ms = {results[name] / results[floor]:.2f} x {floor} "
                f"({results[floor] * 1e3:.3f} ms)"
            )
    rows = sum(1 for path in FILES for _ in path.open()) - len(FILES)
    for name in ("import_sqlite", "import_floor_read_bars", "import_floor_csv_module"):
        if name in results:
            lines.append(f"  {name}: {rows / results[name]:,.0f} rows/s ({rows} rows)")
    # Output written during a fixture's teardown is captured unless capturing is suspended.
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


def record(benchmark: Any, medians: dict[str, float], name: str) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        medians[name] = stats.stats.median


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteBarRepository]:
    with SqliteBarRepository(tmp_path_factory.mktemp("bench") / "bars.db") as repo:
        for path in FILES:
            repo.import_csv(path)
        yield repo


# --- filling a 30-minute gap ---


def test_gap30_sqlite(benchmark: Any, db: SqliteBarRepository, medians: dict[str, float]) -> None:
    benchmark.group = "fill a 30-minute gap"
    bars = benchmark(db.get_bars, "SPY", GAP_START, GAP_END)
    assert len(bars) == 30
    record(benchmark, medians, "gap30_sqlite")


def test_gap30_floor_bare_select(benchmark: Any, db: SqliteBarRepository, medians: dict[str, float]) -> None:
    benchmark.group = "fill a 30-minute gap"
    conn = sqlite3.connect(db.path)
    start_key = int(GAP_START.timestamp()) * 1_000_000
    end_key = int(GAP_END.timestamp()) * 1_000_000
    sql = (
        "SELECT ts, open, high, low, close, volume FROM bars "
        "WHERE symbol = ? AND interval = ? AND ts_key >= ? AND ts_key < ? ORDER BY ts_key"
    )
    try:
        rows = benchmark(lambda: conn.execute(sql, ("SPY", 1, start_key, end_key)).fetchall())
    finally:
        conn.close()
    assert len(rows) == 30
    record(benchmark, medians, "gap30_floor_bare_select")


def test_gap30_memory(benchmark: Any, medians: dict[str, float]) -> None:
    benchmark.group = "fill a 30-minute gap"
    repo = InMemoryBarRepository(read_csv_bars(REAL / "SPY_1m.csv"))
    bars = benchmark(repo.get_bars, "SPY", GAP_START, GAP_END)
    assert len(bars) == 30
    record(benchmark, medians, "gap30_memory")


def test_gap30_csv_repo(benchmark: Any, medians: dict[str, float]) -> None:
    benchmark.group = "fill a 30-minute gap"
    repo = CsvBarRepository(REAL)
    repo.get_bars("SPY", GAP_START, GAP_END)  # the first call loads the file; measure the cached reads
    bars = benchmark(repo.get_bars, "SPY", GAP_START, GAP_END)
    assert len(bars) == 30
    record(benchmark, medians, "gap30_csv_repo")


# --- importing the real data ---


def run_rounds(benchmark: Any, target: Callable[[], object], rounds: int = 8) -> object:
    return benchmark.pedantic(target, rounds=rounds, iterations=1, warmup_rounds=1)


def test_import_sqlite(benchmark: Any, medians: dict[str, float]) -> None:
    benchmark.group = "import the real data"
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000_000))

        def load() -> int:
            with SqliteBarRepository(Path(tmp) / f"import{next(counter)}.db") as repo:
                return sum(repo.import_csv(path).added for path in FILES)

        added = run_rounds(benchmark, load)
    assert added == sum(1 for path in FILES for _ in path.open()) - len(FILES)
    record(benchmark, medians, "import_sqlite")


def test_import_floor_read_bars(benchmark: Any, medians: dict[str, float]) -> None:
    benchmark.group = "import the real data"

    def read() -> int:
        return sum(sum(1 for _ in CsvBarReader(path)) for path in FILES)

    assert isinstance(run_rounds(benchmark, read), int)
    record(benchmark, medians, "import_floor_read_bars")


def test_import_floor_csv_module(benchmark: Any, medians: dict[str, float]) -> None:
    benchmark.group = "import the real data"

    def parse() -> int:
        count = 0
        for path in FILES:
            with path.open(newline="") as fh:
                count += sum(1 for _ in csv.reader(fh)) - 1
        return count

    assert isinstance(run_rounds(benchmark, parse), int)
    record(benchmark, medians, "import_floor_csv_module")
