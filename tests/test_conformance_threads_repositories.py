"""Black-box conformance of the repositories with the contract's rows: ``get_bars(symbol, start, end,
interval=1)`` is half-open and in time order with bounds naive or aware (in another zone too), and every
repository (SQLite, CSV, in memory, Parquet when pyarrow is installed) gives the same answers for the same
bars; ``SqliteBarRepository.import_csv`` reports ``added``, ``duplicates`` and ``rejected`` and takes the
symbol from the file name ``SYMBOL_*.csv``."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sessiondata import (
    Bar,
    CsvBarRepository,
    CsvFormatError,
    InMemoryBarRepository,
    SqliteBarRepository,
)

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
M = timedelta(minutes=1)
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def sparse_days(symbol: str, zone: Any) -> list[Bar]:
    """Every 7th minute of five sessions across the 2025 spring clock change (Sunday 9 March)."""
    t0 = datetime(2025, 3, 7, 9, 30, tzinfo=zone)
    return [
        Bar(symbol, t0 + timedelta(days=d, minutes=i), 100.0, 101.0, 99.0, 100.5, 1000 + i)
        for d in range(5)
        for i in range(0, 390, 7)
    ]


def write_csv(path: Path, rows: list[Bar]) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{b.timestamp.isoformat()},{b.open},{b.high},{b.low},{b.close},{b.volume}" for b in rows]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def repositories(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    naive = sparse_days("NV", None)
    aware = sparse_days("AW", NY)
    folder = tmp_path_factory.mktemp("repos")
    csv_dir = folder / "csv"
    csv_dir.mkdir()
    write_csv(csv_dir / "NV_1m.csv", naive[::-1])  # newest first: order is the repository's job
    write_csv(csv_dir / "AW_1m.csv", aware[::-1])
    sqlite = SqliteBarRepository(folder / "bars.db")
    for name in ("NV_1m.csv", "AW_1m.csv"):
        assert sqlite.import_csv(csv_dir / name).added == len(naive)
    repos: dict[str, Any] = {
        "sqlite": sqlite,
        "csv": CsvBarRepository(csv_dir),
        "memory": InMemoryBarRepository(naive + aware),
    }
    if HAS_PYARROW:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from sessiondata import ParquetBarRepository

        for symbol, rows, zone in (("NV", naive, None), ("AW", aware, "America/New_York")):
            part = folder / "parquet" / f"symbol={symbol}"
            part.mkdir(parents=True)
            table = pa.table(
                {
                    "timestamp": pa.array([b.timestamp for b in rows], pa.timestamp("us", tz=zone)),
                    **{f: [float(getattr(b, f)) for b in rows] for f in ("open", "high", "low", "close")},
                    "volume": [b.volume for b in rows],
                }
            )
            pq.write_table(table, part / "part-0.parquet", row_group_size=50)
        repos["parquet"] = ParquetBarRepository(folder / "parquet")
    yield repos
    sqlite.close()


def instant(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc) if ts.tzinfo is not None else ts


QUERIES = [
    ("NV", datetime(2025, 3, 7, 9, 30), datetime(2025, 3, 10, 10, 0)),
    ("NV", datetime(2025, 3, 7, 9, 37), datetime(2025, 3, 7, 9, 44)),  # 09:37 in, 09:44 out
    ("AW", datetime(2025, 3, 7, 9, 37, tzinfo=NY), datetime(2025, 3, 7, 9, 44, tzinfo=NY)),
    (
        "AW",
        datetime(2025, 3, 7, 14, 37, tzinfo=timezone.utc),
        datetime(2025, 3, 7, 14, 44, tzinfo=timezone.utc),
    ),
    ("AW", datetime(2025, 3, 7, 23, 37, tzinfo=TOKYO), datetime(2025, 3, 11, 23, 44, tzinfo=TOKYO)),
    (
        "AW",
        datetime(2025, 3, 9, 0, 0, tzinfo=NY),
        datetime(2025, 3, 11, 0, 0, tzinfo=NY),
    ),  # across the change
    ("aw", datetime(2025, 3, 10, 9, 30, tzinfo=NY), datetime(2025, 3, 10, 16, 0, tzinfo=NY)),
    ("NV", datetime(2025, 3, 7, 9, 44), datetime(2025, 3, 7, 9, 37)),  # empty range
    ("ZZ", datetime(2025, 3, 7, 9, 30), datetime(2025, 3, 7, 16, 0)),  # unknown symbol
]


@pytest.mark.parametrize("query", QUERIES, ids=[f"{q[0]}-{i}" for i, q in enumerate(QUERIES)])
def test_every_repository_answers_the_same_half_open_range_in_time_order(
    repositories: dict[str, Any], query: tuple[str, datetime, datetime]
) -> None:
    symbol, start, end = query
    expected = (
        sorted(
            (
                b
                for b in sparse_days(symbol.upper(), NY if symbol.upper() == "AW" else None)
                if start <= b.timestamp < end
            ),
            key=lambda b: instant(b.timestamp),
        )
        if symbol.upper() in ("AW", "NV")
        else []
    )
    for name, repo in repositories.items():
        got = repo.get_bars(symbol, start, end)
        assert [instant(b.timestamp) for b in got] == [instant(b.timestamp) for b in expected], name
        assert [(b.symbol, b.open, b.high, b.low, b.close, b.volume) for b in got] == [
            (b.symbol, b.open, b.high, b.low, b.close, b.volume) for b in expected
        ], name
        assert all(type(b.volume) is int for b in got), name
        assert all((b.timestamp.tzinfo is None) == (symbol.upper() == "NV") for b in got), name


@pytest.mark.parametrize(
    ("symbol", "start"),
    [("NV", datetime(2025, 3, 7, 9, 30, tzinfo=NY)), ("AW", datetime(2025, 3, 7, 9, 30))],
    ids=["aware-bounds-on-naive", "naive-bounds-on-aware"],
)
def test_every_repository_refuses_bounds_of_the_other_style(
    repositories: dict[str, Any], symbol: str, start: datetime
) -> None:
    for name, repo in repositories.items():
        with pytest.raises(ValueError):  # noqa: PT012 - one call per repository
            repo.get_bars(symbol, start, start + 60 * M)
            pytest.fail(name)


def test_import_csv_reports_added_duplicates_rejected_and_names_the_symbol(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rows = (
        "timestamp,open,high,low,close,volume\n"
        "2025-01-02T09:30:00,1,2,0.5,1.5,10\n"
        "2025-01-02T09:31:00,1,2,0.5,1.5,10\n"
        "2025-01-02T09:31:00,1,2,0.5,1.7,11\n"  # the same minute again: a duplicate
        "not-a-time,1,2,0.5,1.5,10\n"
        "2025-01-02T09:32:00,1,0.5,2,1.5,10\n"  # high < low
        "2025-01-02T09:33:00,1,2,0.5,1.5,-1\n"  # negative volume
        "2025-01-02T09:34:00,1,2,0.5,1.5,10\n"
    )
    csv = tmp_path / "brk.b_2025_1m.csv"
    csv.write_text(rows)
    repo = SqliteBarRepository(tmp_path / "x.db")
    request.addfinalizer(repo.close)
    with pytest.raises(CsvFormatError, match="line 5"):
        repo.import_csv(csv)
    assert repo.symbols() == []  # all or nothing
    report = repo.import_csv(csv, skip_bad_rows=True)
    assert (report.added, report.duplicates, report.rejected) == (3, 1, 3)
    assert repo.symbols() == ["BRK.B"]  # from the file name, upper-cased
    again = repo.import_csv(csv, skip_bad_rows=True)
    assert (again.added, again.duplicates, again.rejected) == (0, 4, 3)
    named = repo.import_csv(csv, symbol="other", skip_bad_rows=True)
    assert named.added == 3
    assert repo.symbols() == ["BRK.B", "OTHER"]
    first = repo.get_bars("BRK.B", datetime(2025, 1, 2, 9, 30), datetime(2025, 1, 2, 9, 35))
    assert [b.close for b in first] == [1.5, 1.5, 1.5]  # the first row of a minute is kept


def test_add_bars_counts_and_keeps_the_first_of_a_key(tmp_path: Path) -> None:
    t0 = datetime(2025, 1, 2, 9, 30)
    batch = [Bar("A", t0 + i * M, 1.0, 1.0, 1.0, 1.0, i) for i in range(5)]
    with SqliteBarRepository(tmp_path / "a.db") as sqlite:
        for repo in (sqlite, InMemoryBarRepository()):
            first = repo.add_bars(batch[:3])
            second = repo.add_bars([*batch[2:], Bar("A", t0 + 4 * M, 2.0, 2.0, 2.0, 2.0, 99)])
            assert (first.added, first.duplicates) == (3, 0)
            assert (second.added, second.duplicates) == (2, 2)
            assert repo.get_bars("A", t0, t0 + 10 * M) == batch
