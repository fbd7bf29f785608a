"""Reading a `SqliteBarRepository`: rows come back as the bars written, checked all the same (SQLite refuses
a row another program writes or changes that `Bar` would refuse; in a file made before that constraint the
row is stored, and reading it is an `InvalidDataError`, as ``Bar(...)`` would raise), and `iter_bars` streams
exactly what `get_bars` returns. A replay reads a run of consecutive dates as one streamed query."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InMemoryBarRepository, InvalidDataError, SessionData
from sessiondata._managers import DataManager
from sessiondata._repository import SqliteBarRepository

EST = timezone(timedelta(hours=-5))
M = timedelta(minutes=1)
OPEN = datetime(2024, 3, 4, 9, 30, tzinfo=EST)
PAST = datetime(1900, 1, 1, tzinfo=timezone.utc)
FUTURE = datetime(2100, 1, 1, tzinfo=timezone.utc)


def _bars(symbol: str, n: int, start: datetime = OPEN) -> list[Bar]:
    return [Bar(symbol, start + i * M, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100 + i) for i in range(n)]


# Table ``bars`` as files made before it held the check as a constraint (the same columns and key).
_LEGACY_SCHEMA = """
CREATE TABLE bars (
    symbol TEXT NOT NULL, interval INTEGER NOT NULL, ts_key INTEGER NOT NULL, ts TEXT NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume NOT NULL,
    PRIMARY KEY (symbol, interval, ts_key)
) WITHOUT ROWID;
CREATE TABLE symbols (symbol TEXT NOT NULL PRIMARY KEY, aware INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
"""


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[SqliteBarRepository]:
    with SqliteBarRepository(tmp_path / "bars.db") as r:
        r.add_bars(_bars("SPY", 10))
        yield r


@pytest.fixture
def legacy_repo(tmp_path: Path) -> Iterator[SqliteBarRepository]:
    """A repository in a file made before the check was the table's constraint."""
    path = tmp_path / "legacy.db"
    with closing(sqlite3.connect(path)) as raw:
        raw.executescript(_LEGACY_SCHEMA)
    with SqliteBarRepository(path) as r:
        r.add_bars(_bars("SPY", 10))
        yield r


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("open", "'abc'"),  # text in a number column
        ("low", "-1.0"),
        ("high", "0.5"),  # below low
        ("close", "100.0"),  # above high
        ("open", "9e999"),  # infinite
        ("volume", "-3"),
        ("volume", "9e999"),
        ("volume", "x'00'"),  # a blob
        ("ts", "'0001-01-01T00:00:00+00:00'"),  # a year no Bar may hold
        ("ts", "'9999-01-01T00:00:00+00:00'"),
        ("high", "'abc'"),
        ("low", "'abc'"),
        ("close", "'abc'"),
        ("volume", "'5'"),  # text, kept as text (the column has no type)
    ],
)
def test_a_row_changed_by_another_program_is_refused(
    repo: SqliteBarRepository, legacy_repo: SqliteBarRepository, column: str, value: str
) -> None:
    change = f"UPDATE bars SET {column} = {value} WHERE ts_key = (SELECT MIN(ts_key) FROM bars)"
    # A file made now: SQLite refuses the change itself (the check is the table's constraint), and the
    # rows read back are the bars written.
    with closing(sqlite3.connect(repo.path)) as raw, raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(change)
    assert repo.get_bars("SPY", PAST, FUTURE) == _bars("SPY", 10)
    assert list(repo.iter_bars("SPY", PAST, FUTURE)) == _bars("SPY", 10)
    # A file made before the constraint: the row is stored, and refused when read.
    assert legacy_repo.get_bars("SPY", PAST, FUTURE) == _bars("SPY", 10)
    with closing(sqlite3.connect(legacy_repo.path)) as raw, raw:
        raw.execute(change)
    with pytest.raises(InvalidDataError):
        legacy_repo.get_bars("SPY", PAST, FUTURE)
    with pytest.raises(InvalidDataError):
        list(legacy_repo.iter_bars("SPY", PAST, FUTURE))


def test_a_file_made_before_the_constraint_is_read_and_written_as_before(
    legacy_repo: SqliteBarRepository,
) -> None:
    report = legacy_repo.add_bars(_bars("SPY", 12))  # the first 10 are stored already
    assert (report.added, report.duplicates) == (2, 10)
    assert legacy_repo.get_bars("SPY", PAST, FUTURE) == _bars("SPY", 12)
    assert list(legacy_repo.iter_bars("SPY", PAST, FUTURE, chunk=5)) == _bars("SPY", 12)


def test_rows_read_back_are_real_bars(repo: SqliteBarRepository) -> None:
    got = repo.get_bars("spy", PAST, FUTURE)
    assert got == _bars("SPY", 10)
    assert all(b.symbol is got[0].symbol for b in got)  # one (interned) symbol string
    assert got[0].symbol == "SPY"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(0, 300),
    chunk=st.integers(1, 70),
    lo=st.integers(-5, 305),
    hi=st.integers(-5, 305),
)
def test_iter_bars_streams_what_get_bars_returns(
    tmp_path_factory: pytest.TempPathFactory, n: int, chunk: int, lo: int, hi: int
) -> None:
    with SqliteBarRepository(tmp_path_factory.mktemp("db") / "bars.db") as r:
        r.add_bars(_bars("AAA", n))
        start, end = OPEN + lo * M, OPEN + hi * M
        assert list(r.iter_bars("AAA", start, end, chunk=chunk)) == r.get_bars("AAA", start, end)
        assert list(r.iter_bars("BBB", start, end, chunk=chunk)) == []


def test_iter_bars_refuses_a_chunk_below_one(repo: SqliteBarRepository) -> None:
    with pytest.raises(ValueError, match="chunk"):
        list(repo.iter_bars("SPY", PAST, FUTURE, chunk=0))


class CountingRepo:
    """An in-memory repository that counts the range reads a replay makes, by kind."""

    def __init__(self, bars: list[Bar]) -> None:
        self.inner = InMemoryBarRepository(bars)
        self.calls: dict[str, int] = {"get_bars": 0, "iter_bars": 0}

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.calls["get_bars"] += 1
        return self.inner.get_bars(symbol, start, end, interval)

    def iter_bars(self, symbol: str, start: datetime, end: datetime) -> Iterator[Bar]:
        self.calls["iter_bars"] += 1
        return iter(self.inner.get_bars(symbol, start, end))

    def time_range(self, symbol: str, interval: int = 1) -> Any:
        return self.inner.time_range(symbol, interval)

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        return self.inner.dates(symbol, interval)


def test_a_replay_reads_consecutive_dates_in_one_query_per_symbol() -> None:
    days = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 8)]  # a run of 3, then 1
    bars = [
        b
        for s in ("AAA", "BBB")
        for d in days
        for b in _bars(s, 30, datetime(d.year, d.month, d.day, 9, 30, tzinfo=EST))
    ]
    repo = CountingRepo(bars)
    report = DataManager(SessionData(), repository=repo).replay(["AAA", "BBB"], days, upkeep=False)
    assert report.bars == len(bars)
    assert repo.calls == {"get_bars": 0, "iter_bars": 2 * 2}  # per symbol: the run of 3 dates, then 1


def test_symbols_read_back_share_each_minutes_timestamp(tmp_path: Path) -> None:
    # A replay reads 100 symbols of the same minutes: each minute's text is parsed once, and bars sharing
    # one timestamp object (and one zone object) compare fast in the merge, the store and the upkeep.
    with SqliteBarRepository(tmp_path / "bars.db") as r:
        r.add_bars(_bars("SPY", 5) + _bars("QQQ", 5))
        spy = r.get_bars("SPY", PAST, FUTURE)
        qqq = list(r.iter_bars("QQQ", PAST, FUTURE))
    assert [b.timestamp for b in spy] == [OPEN + i * M for i in range(5)]
    assert all(a.timestamp is b.timestamp for a, b in zip(spy, qqq, strict=True))
    assert len({id(b.timestamp.tzinfo) for b in spy + qqq}) == 1
    assert spy[0].timestamp.tzinfo == EST
