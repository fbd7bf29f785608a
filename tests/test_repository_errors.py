"""Hostile storage under the SQLite repository: corrupt pages, a locked file, a read-only open, a volume too
big for SQLite's INTEGER, and a many-file import that fails (or is interrupted) part way.

Every failure surfaces as the library's own error (`InvalidDataError`, `CsvFormatError`, `RepositoryError`),
never a raw `sqlite3` one, and leaves the repository exactly as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sessiondata import (
    Bar,
    CsvBarRepository,
    CsvFormatError,
    InvalidDataError,
    RepositoryError,
    SessionDataError,
    SqliteBarRepository,
)

T0 = datetime(2020, 1, 2, 9, 30)
ALL = (datetime(2000, 1, 1), datetime(2100, 1, 1))


def bars(n: int, symbol: str = "SPY", volume: int = 100) -> list[Bar]:
    return [Bar(symbol, T0 + timedelta(minutes=i), 10.0, 11.0, 9.0, 10.0, volume) for i in range(n)]


def csv_file(folder: Path, name: str, volumes: list[str]) -> Path:
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [f"{(T0 + timedelta(minutes=i)).isoformat()},10,11,9,10,{v}" for i, v in enumerate(volumes)]
    path = folder / name
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqliteBarRepository]:
    with SqliteBarRepository(tmp_path / "bars.db") as r:
        yield r


def test_corrupt_pages_are_invalid_data_not_sqlite_errors(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as r:
        r.add_bars(bars(2000))
    data = bytearray(db.read_bytes())
    for page in range(4096, len(data), 4096):  # every b-tree page but the header's: an unknown page type
        data[page] = 0xFF
    db.write_bytes(bytes(data))
    with pytest.raises(InvalidDataError, match="malformed") as caught, SqliteBarRepository(db) as r:
        r.get_bars("SPY", *ALL)
    assert not isinstance(caught.value, sqlite3.Error)
    with SqliteBarRepository(db, read_only=True) as r:
        for read in (r.symbols, lambda: r.dates("SPY"), lambda: r.time_range("SPY")):
            with pytest.raises(InvalidDataError, match="malformed"):
                read()


def test_a_file_locked_past_the_busy_timeout_is_a_repository_error(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db, busy_timeout=0.01) as r:
        r.add_bars(bars(3))
        with closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(RepositoryError, match="locked") as caught:
                r.add_bars(bars(5, "AIG"))
            other.execute("ROLLBACK")
        assert isinstance(caught.value, SessionDataError)
        assert isinstance(caught.value, OSError)
        assert r.symbols() == ["SPY"]  # nothing of the failed write
        assert r.add_bars(bars(5, "AIG")).added == 5  # and the repository still works


def test_busy_timeout_must_be_a_duration(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="busy_timeout"):
        SqliteBarRepository(tmp_path / "bars.db", busy_timeout=-1)
    assert not (tmp_path / "bars.db").exists()


def test_read_only_reads_and_never_writes(tmp_path: Path) -> None:
    db = tmp_path / "bars.db"
    with SqliteBarRepository(db) as r:
        r.add_bars(bars(10))
    with SqliteBarRepository(db, read_only=True) as ro:
        assert ro.get_bars("SPY", *ALL) == bars(10)
        assert (ro.symbols(), ro.dates("SPY")) == (["SPY"], [T0.date()])
        assert ro.time_range("SPY") == (T0, T0 + timedelta(minutes=9))
        with pytest.raises(RepositoryError, match="read-only"):
            ro.add_bars(bars(3, "AIG"))
    with SqliteBarRepository(db) as r:
        assert r.symbols() == ["SPY"]


def test_read_only_never_creates_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SqliteBarRepository(tmp_path / "missing.db", read_only=True)
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(InvalidDataError, match="not a sessiondata"):
        SqliteBarRepository(empty, read_only=True)
    assert empty.stat().st_size == 0


def test_read_only_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"hello, not a database\n" * 300)
    with pytest.raises(InvalidDataError, match=r"junk\.db"):
        SqliteBarRepository(junk, read_only=True)


# --- a volume SQLite's INTEGER cannot hold -----------------------------------------------------------------

HUGE = 10**20  # 21 digits; SQLite's INTEGER is at most 2**63 - 1 (19 digits)


def test_add_bars_refuses_a_volume_sqlite_cannot_hold(repo: SqliteBarRepository) -> None:
    repo.add_bars(bars(2))
    batch = [*bars(5, "AIG"), Bar("AIG", T0 + timedelta(minutes=9), 10.0, 11.0, 9.0, 10.0, HUGE)]
    with pytest.raises(InvalidDataError, match="64-bit"):
        repo.add_bars(batch)
    assert repo.symbols() == ["SPY"]
    assert repo.add_bars([Bar("AIG", T0, 10.0, 11.0, 9.0, 10.0, 2**63 - 1)]).added == 1  # the largest fits
    assert repo.get_bars("AIG", *ALL)[0].volume == 2**63 - 1


def test_a_float_volume_beyond_int64_is_stored_as_a_float(repo: SqliteBarRepository) -> None:
    big = Bar("SPY", T0, 10.0, 11.0, 9.0, 10.0, 1e20)
    assert repo.add_bars([big]).added == 1
    assert repo.get_bars("SPY", *ALL) == [big]


def test_import_names_the_line_of_a_huge_volume(repo: SqliteBarRepository, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "SPY_1m.csv", ["100", "200", str(HUGE), "300"])
    with pytest.raises(CsvFormatError, match="64-bit") as caught:
        repo.import_csv(path)
    assert caught.value.line == 4
    assert repo.symbols() == []


def test_skip_bad_rows_skips_a_huge_volume(repo: SqliteBarRepository, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "SPY_1m.csv", ["100", "200", str(HUGE), "300"])
    report = repo.import_csv(path, skip_bad_rows=True)
    assert (report.added, report.rejected, report.rejected_lines) == (3, 1, (4,))
    assert [b.volume for b in repo.get_bars("SPY", *ALL)] == [100, 200, 300]


# --- several files, one transaction ------------------------------------------------------------------------


def test_import_csv_files_is_all_or_nothing(repo: SqliteBarRepository, tmp_path: Path) -> None:
    repo.add_bars(bars(2, "OLD"))
    good = csv_file(tmp_path, "SPY_1m.csv", ["100", "200"])
    bad = csv_file(tmp_path, "AIG_1m.csv", ["100", "-5"])
    with pytest.raises(CsvFormatError, match="volume") as caught:
        repo.import_csv_files([good, bad])
    assert (caught.value.path, caught.value.line) == (str(bad), 3)
    assert repo.symbols() == ["OLD"]  # the good file, read first, was not kept either
    assert repo.get_bars("SPY", *ALL) == []


def test_import_csv_files_reports_each_file_in_order(repo: SqliteBarRepository, tmp_path: Path) -> None:
    first = csv_file(tmp_path, "SPY_1m.csv", ["100", "200"])
    second = csv_file(tmp_path, "AIG_1m.csv", ["1", "x", "3"])
    seen: list[tuple[Path, int]] = []
    reports = repo.import_csv_files(
        [first, second], skip_bad_rows=True, on_file=lambda p, r: seen.append((p, r.added))
    )
    assert [(r.added, r.rejected_lines) for r in reports] == [(2, ()), (2, (3,))]
    assert seen == [(first, 2), (second, 2)]
    assert repo.symbols() == ["AIG", "SPY"]


def test_an_interrupted_import_keeps_nothing(repo: SqliteBarRepository, tmp_path: Path) -> None:
    first = csv_file(tmp_path, "SPY_1m.csv", ["100", "200"])
    second = csv_file(tmp_path, "AIG_1m.csv", ["1", "2"])

    def interrupt(path: Path, report: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the first file

    with pytest.raises(KeyboardInterrupt):
        repo.import_csv_files([first, second], on_file=interrupt)
    assert repo.symbols() == []
    # The write lock and the transaction were released:
    assert repo.import_csv_files([first, second])[0].added == 2


def test_import_csv_files_checks_every_path_before_writing(repo: SqliteBarRepository, tmp_path: Path) -> None:
    good = csv_file(tmp_path, "SPY_1m.csv", ["100"])
    with pytest.raises(FileNotFoundError, match="nope"):
        repo.import_csv_files([good, tmp_path / "nope_1m.csv"])
    assert repo.symbols() == []


# --- arguments at the edges --------------------------------------------------------------------------------


def test_query_bounds_at_the_ends_of_datetime(repo: SqliteBarRepository) -> None:
    aware = [Bar("SPY", datetime(2020, 1, 2, 9, 30, tzinfo=timezone.utc), 10.0, 11.0, 9.0, 10.0, 1)]
    repo.add_bars(aware)
    low = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))  # before datetime.min in UTC
    high = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))  # after datetime.max in UTC
    assert repo.get_bars("SPY", low, high) == aware


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file path"):
        SqliteBarRepository(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        CsvBarRepository(tmp_path / "missing")
    a_file = csv_file(tmp_path, "SPY_1m.csv", ["1"])
    with pytest.raises(NotADirectoryError):
        CsvBarRepository(a_file)
    (tmp_path / "_1m.csv").write_text("not a symbol's file\n")  # names no symbol: not listed
    assert CsvBarRepository(tmp_path).symbols() == ["SPY"]
