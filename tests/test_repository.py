"""Bar repositories: SQLite (on a real file), CSV directory and in-memory, against the real data."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InvalidDataError
from sessiondata._csvio import CsvFormatError, read_csv_bars, write_csv_bars
from sessiondata._repository import (
    BarRepository,
    CsvBarRepository,
    ImportReport,
    InMemoryBarRepository,
    SqliteBarRepository,
)

UTC = timezone.utc
EST = timezone(timedelta(hours=-5))
EDT = timezone(timedelta(hours=-4))
PAST = datetime(1900, 1, 1, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

# README row counts of data/real/quantconnect_lean.
REAL_ROWS = {"SPY": 4839, "AIG": 2558, "BAC": 3466, "AAPL": 2303, "TWX": 1200, "SHY": 652}


@pytest.fixture
def lean(real_data: Path) -> Path:
    return real_data / "quantconnect_lean"


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Iterator[SqliteBarRepository]:
    with SqliteBarRepository(tmp_path / "bars.db") as repo:
        yield repo


@pytest.fixture
def loaded(sqlite_repo: SqliteBarRepository, lean: Path) -> SqliteBarRepository:
    for symbol in REAL_ROWS:
        sqlite_repo.import_csv(lean / f"{symbol}_1m.csv")
    return sqlite_repo


def bar(ts: datetime, symbol: str = "T", price: float = 10.0, volume: float = 100) -> Bar:
    return Bar(symbol, ts, price, price + 1, price - 1, price, volume)


def exact(bars: list[Bar]) -> list[tuple[str, Bar]]:
    """Bars with their timestamps' text: equal only if the offsets are equal too."""
    return [(b.timestamp.isoformat(), b) for b in bars]


# --- SQLite with the real data ---


def test_import_counts_match_the_readme(sqlite_repo: SqliteBarRepository, lean: Path) -> None:
    for symbol, rows in REAL_ROWS.items():
        report = sqlite_repo.import_csv(lean / f"{symbol}_1m.csv")
        assert report == ImportReport(added=rows, duplicates=0, rejected=0)
    assert sqlite_repo.symbols() == sorted(REAL_ROWS)
    for symbol, rows in REAL_ROWS.items():
        assert len(sqlite_repo.get_bars(symbol, PAST, FUTURE)) == rows


def test_bars_round_trip_exactly_and_persist(loaded: SqliteBarRepository, lean: Path) -> None:
    for symbol in REAL_ROWS:
        path = lean / f"{symbol}_1m.csv"
        expected = read_csv_bars(path)
        got = loaded.get_bars(symbol.lower(), PAST, FUTURE)
        assert exact(got) == exact(expected)
        texts = [line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]]
        assert [b.timestamp.isoformat() for b in got] == texts
        assert all(type(b.volume) is int for b in got)
    loaded.close()
    with SqliteBarRepository(loaded.path) as again:
        assert exact(again.get_bars("SHY", PAST, FUTURE)) == exact(read_csv_bars(lean / "SHY_1m.csv"))


def test_file_is_in_wal_mode(loaded: SqliteBarRepository) -> None:
    with closing(sqlite3.connect(loaded.path)) as raw, raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_range_queries_across_the_shy_dst_change(loaded: SqliteBarRepository, lean: Path) -> None:
    every = read_csv_bars(lean / "SHY_1m.csv")
    # Between the close of Fri 2008-03-07 (EST) and the open of Mon 2008-03-10 (EDT): the README's
    # 2 post-close rows of Friday and 2 pre-market rows of Monday.
    between = loaded.get_bars(
        "SHY", datetime(2008, 3, 7, 16, tzinfo=EST), datetime(2008, 3, 10, 9, 30, tzinfo=EDT)
    )
    assert len(between) == 4
    assert [b.timestamp.utcoffset() for b in between] == [timedelta(hours=-5)] * 2 + [timedelta(hours=-4)] * 2
    windows = [
        (datetime(2008, 3, 7, 15, 50, tzinfo=EST), datetime(2008, 3, 10, 9, 40, tzinfo=EDT)),
        (datetime(2008, 3, 7, 9, 30, tzinfo=EST), datetime(2008, 3, 7, 16, tzinfo=EST)),
        (datetime(2008, 3, 10, 9, 30, tzinfo=EDT), datetime(2008, 3, 10, 16, tzinfo=EDT)),
        # Monday 09:30 EDT is 13:30 UTC, but 08:30 in Friday's offset: a bound in the "wrong" offset
        # still means the same instant.
        (datetime(2008, 3, 10, 8, 30, tzinfo=EST), datetime(2008, 3, 10, 8, 45, tzinfo=EST)),
    ]
    for start, end in windows:
        expected = [b for b in every if start <= b.timestamp < end]
        assert expected
        for s, e in ((start, end), (start.astimezone(UTC), end.astimezone(UTC))):
            assert exact(loaded.get_bars("SHY", s, e)) == exact(expected)
    monday_open = loaded.get_bars(
        "SHY", datetime(2008, 3, 10, 9, 30, tzinfo=EDT), datetime(2008, 3, 10, 9, 31, tzinfo=EDT)
    )
    assert [b.timestamp.isoformat() for b in monday_open] == ["2008-03-10T09:30:00-04:00"]


def test_reimport_is_idempotent(loaded: SqliteBarRepository, lean: Path) -> None:
    again = loaded.import_csv(lean / "SPY_1m.csv")
    assert again == ImportReport(added=0, duplicates=REAL_ROWS["SPY"], rejected=0)
    bars = read_csv_bars(lean / "AIG_1m.csv")
    assert loaded.add_bars(bars) == ImportReport(added=0, duplicates=len(bars))
    assert len(loaded.get_bars("SPY", PAST, FUTURE)) == REAL_ROWS["SPY"]
    assert len(loaded.get_bars("AIG", PAST, FUTURE)) == REAL_ROWS["AIG"]


def test_first_write_wins_and_duplicates_within_a_batch_count(sqlite_repo: SqliteBarRepository) -> None:
    ts = datetime(2020, 1, 2, 14, 30, tzinfo=UTC)
    same_instant = ts.astimezone(EST)
    report = sqlite_repo.add_bars(
        [bar(ts, price=10), bar(same_instant, price=20), bar(ts + timedelta(minutes=1))]
    )
    assert report == ImportReport(added=2, duplicates=1)
    got = sqlite_repo.get_bars("T", PAST, FUTURE)
    assert [b.open for b in got] == [10, 10]
    assert got[0].timestamp.utcoffset() == timedelta(0)


def corrupt_copy(lean: Path, tmp_path: Path, line: int, text: str) -> Path:
    lines = (lean / "SPY_1m.csv").read_text().splitlines()
    lines[line - 1] = text
    path = tmp_path / "SPY_bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_bad_row_imports_nothing_and_names_its_line(
    loaded: SqliteBarRepository, lean: Path, tmp_path: Path
) -> None:
    with SqliteBarRepository(tmp_path / "other.db") as repo:
        repo.import_csv(lean / "AIG_1m.csv")
        bad = corrupt_copy(lean, tmp_path, 2000, "2013-10-08T12:00:00-04:00,167.0,166.0,167.5,167.0,100")
        with pytest.raises(CsvFormatError) as info:
            repo.import_csv(bad)
        assert info.value.line == 2000
        assert info.value.path == str(bad)
        assert "line 2000" in str(info.value)
        assert repo.get_bars("SPY", PAST, FUTURE) == []
        assert repo.symbols() == ["AIG"]
        assert len(repo.get_bars("AIG", PAST, FUTURE)) == REAL_ROWS["AIG"]
        # A file already partly stored is not touched either.
        with pytest.raises(CsvFormatError):
            loaded.import_csv(bad)
        assert exact(loaded.get_bars("SPY", PAST, FUTURE)) == exact(read_csv_bars(lean / "SPY_1m.csv"))


def test_skip_mode_imports_the_good_rows_and_reports_the_bad(
    sqlite_repo: SqliteBarRepository, lean: Path, tmp_path: Path
) -> None:
    lines = (lean / "SPY_1m.csv").read_text().splitlines()
    lines[9] = "garbage"  # line 10
    lines[99] = lines[99].replace(",", ";")  # line 100
    bad = tmp_path / "SPY_1m.csv"
    bad.write_text("\n".join(lines) + "\n")
    report = sqlite_repo.import_csv(bad, skip_bad_rows=True)
    assert (report.added, report.duplicates, report.rejected) == (REAL_ROWS["SPY"] - 2, 0, 2)
    assert report.rejected_lines == (10, 100)
    assert all(r.reason for r in report.rejected_rows)
    # Importing the intact file afterwards adds exactly the two rows that were skipped.
    fixed = sqlite_repo.import_csv(lean / "SPY_1m.csv")
    assert (fixed.added, fixed.duplicates) == (2, REAL_ROWS["SPY"] - 2)
    assert exact(sqlite_repo.get_bars("SPY", PAST, FUTURE)) == exact(read_csv_bars(lean / "SPY_1m.csv"))


def test_import_symbol_and_interval_from_the_file_name(
    sqlite_repo: SqliteBarRepository, real_data: Path, lean: Path
) -> None:
    sqlite_repo.import_csv(lean / "hourly_crosscheck" / "SPY_60m.csv")
    assert len(sqlite_repo.get_bars("SPY", PAST, FUTURE, interval=60)) == 42
    assert sqlite_repo.get_bars("SPY", PAST, FUTURE) == []
    report = sqlite_repo.import_csv(real_data / "pyalgotrade" / "SPY_1m.csv", symbol="spy2011", interval=1)
    assert report.added == len(sqlite_repo.get_bars("SPY2011", PAST, FUTURE)) > 0


# --- arguments, kinds of timestamps, lifecycle ---


@pytest.fixture(params=["sqlite", "memory"])
def writable(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[SqliteBarRepository | InMemoryBarRepository]:
    if request.param == "sqlite":
        with SqliteBarRepository(tmp_path / "w.db") as repo:
            yield repo
    else:
        yield InMemoryBarRepository()


def test_bad_arguments_raise_value_error(writable: SqliteBarRepository | InMemoryBarRepository) -> None:
    t0 = datetime(2020, 1, 2, 9, 30, tzinfo=UTC)
    writable.add_bars([bar(t0)])
    t1 = t0 + timedelta(hours=1)
    for interval in (0, -1, True, 1.0, "1"):
        with pytest.raises(ValueError, match="interval"):
            writable.get_bars("T", t0, t1, interval=interval)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="interval"):
            writable.add_bars([bar(t0)], interval=interval)  # type: ignore[arg-type]
    for symbol in ("", "  ", None, 5):
        with pytest.raises(ValueError, match="symbol"):
            writable.get_bars(symbol, t0, t1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start"):
        writable.get_bars("T", "2020-01-02", t1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end"):
        writable.get_bars("T", t0, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both"):
        writable.get_bars("T", t0, t1.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        writable.get_bars("T", t0.replace(tzinfo=None), t1.replace(tzinfo=None))
    with pytest.raises(InvalidDataError, match="expected a Bar"):
        writable.add_bars([bar(t1), "not a bar"])  # type: ignore[list-item]
    assert writable.get_bars("t", t0, t1) == [bar(t0)]
    assert writable.get_bars("T", t1, t0) == []
    assert writable.get_bars("T", t0, t0) == []
    assert writable.get_bars("UNKNOWN", t0.replace(tzinfo=None), t1.replace(tzinfo=None)) == []
    assert writable.get_bars("T", t0, t1, interval=5) == []


def test_naive_timestamps_work_and_never_mix_with_aware(
    writable: SqliteBarRepository | InMemoryBarRepository,
) -> None:
    naive = [bar(datetime(2020, 1, 2, 9, 30) + timedelta(minutes=i), "N") for i in range(10)]
    assert writable.add_bars(naive).added == 10
    got = writable.get_bars("N", datetime(2020, 1, 2, 9, 32), datetime(2020, 1, 2, 9, 35))
    assert exact(got) == exact(naive[2:5])
    assert all(b.timestamp.tzinfo is None for b in got)
    aware = bar(datetime(2020, 1, 3, 9, 30, tzinfo=UTC), "N")
    with pytest.raises(InvalidDataError, match="do not mix"):
        writable.add_bars([aware])
    mixed = [bar(datetime(2020, 1, 2, 9, 30, tzinfo=UTC), "M"), bar(datetime(2020, 1, 2, 9, 31), "M")]
    with pytest.raises(InvalidDataError, match="do not mix"):
        writable.add_bars(mixed)
    # Both failed writes were all or nothing.
    assert writable.get_bars("M", PAST, FUTURE) == []
    assert len(writable.get_bars("N", datetime(1900, 1, 1), datetime(2100, 1, 1))) == 10
    assert writable.symbols() == ["N"]


def test_intervals_are_kept_apart(writable: SqliteBarRepository | InMemoryBarRepository) -> None:
    t0 = datetime(2020, 1, 2, 9, 30, tzinfo=UTC)
    writable.add_bars([bar(t0, price=5)], interval=5)
    writable.add_bars([bar(t0, price=6)])
    assert [b.open for b in writable.get_bars("T", PAST, FUTURE, interval=5)] == [5]
    assert [b.open for b in writable.get_bars("T", PAST, FUTURE, interval=1)] == [6]


def test_closed_sqlite_repository_refuses_calls(tmp_path: Path) -> None:
    with SqliteBarRepository(tmp_path / "c.db") as repo:
        repo.add_bars([bar(datetime(2020, 1, 2, tzinfo=UTC))])
    with pytest.raises(ValueError, match="closed"):
        repo.get_bars("T", PAST, FUTURE)
    with pytest.raises(ValueError, match="closed"):
        repo.add_bars([])
    repo.close()  # idempotent


def test_sqlite_rejects_files_that_are_not_bar_repositories(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(InvalidDataError, match=r"garbage\.db"):
        SqliteBarRepository(garbage)
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as raw, raw:
        raw.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(InvalidDataError, match="not a sessiondata"):
        SqliteBarRepository(other)
    with pytest.raises(FileNotFoundError):
        SqliteBarRepository(tmp_path / "missing" / "x.db")
    with pytest.raises(ValueError, match="InMemoryBarRepository"):
        SqliteBarRepository(":memory:")
    with SqliteBarRepository(tmp_path / "fine.db") as repo, pytest.raises(FileNotFoundError):
        repo.import_csv(tmp_path / "NOPE_1m.csv")


def test_every_repository_satisfies_the_protocol(tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    with SqliteBarRepository(tmp_path / "p.db") as repo:
        assert isinstance(repo, BarRepository)
    assert isinstance(InMemoryBarRepository(), BarRepository)
    assert isinstance(CsvBarRepository(tmp_path / "csv"), BarRepository)


# --- the three repositories agree ---


def test_csv_and_memory_repositories_equal_sqlite_on_the_real_data(
    loaded: SqliteBarRepository, lean: Path
) -> None:
    csv_repo = CsvBarRepository(lean)
    memory = InMemoryBarRepository()
    for symbol in REAL_ROWS:
        memory.add_bars(read_csv_bars(lean / f"{symbol}_1m.csv"))
    assert csv_repo.symbols() == memory.symbols() == loaded.symbols()
    for symbol in REAL_ROWS:
        every = loaded.get_bars(symbol, PAST, FUTURE)
        windows = [(PAST, FUTURE)]
        for day in sorted({b.timestamp.date() for b in every}):
            tz = next(b.timestamp.tzinfo for b in every if b.timestamp.date() == day)
            open_ = datetime(day.year, day.month, day.day, 9, 30, tzinfo=tz)
            windows += [
                (open_, open_ + timedelta(minutes=30)),
                (open_ + timedelta(hours=3), open_ + timedelta(hours=4)),
            ]
        for start, end in windows:
            expected = exact(loaded.get_bars(symbol, start, end))
            assert exact(csv_repo.get_bars(symbol, start, end)) == expected
            assert exact(memory.get_bars(symbol, start, end)) == expected
    assert len(CsvBarRepository(lean / "hourly_crosscheck").get_bars("AAPL", PAST, FUTURE, interval=60)) == 21


def test_csv_repository_loads_lazily_and_reports_a_bad_file(lean: Path, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    shutil.copy(lean / "TWX_1m.csv", folder / "TWX_1m.csv")
    lines = (lean / "AIG_1m.csv").read_text().splitlines()
    lines[41] = lines[41].rsplit(",", 1)[0]  # line 42 loses its volume
    (folder / "AIG_1m.csv").write_text("\n".join(lines) + "\n")
    (folder / "notes.txt").write_text("ignored")
    repo = CsvBarRepository(folder)
    assert repo.symbols() == ["AIG", "TWX"]
    assert len(repo.get_bars("TWX", PAST, FUTURE)) == REAL_ROWS["TWX"]
    for _ in range(2):  # the failure is not cached as an empty symbol
        with pytest.raises(CsvFormatError) as info:
            repo.get_bars("AIG", PAST, FUTURE)
        assert info.value.line == 42
    assert repo.get_bars("SPY", PAST, FUTURE) == []
    with pytest.raises(FileNotFoundError):
        CsvBarRepository(tmp_path / "nope")
    with pytest.raises(NotADirectoryError):
        CsvBarRepository(folder / "notes.txt")


def test_csv_repository_warns_of_rows_repeating_a_timestamp(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t0 = datetime(2020, 1, 2, 9, 30, tzinfo=EST)
    bars = [bar(t0 + timedelta(minutes=i), "X") for i in range(5)]
    twice = Bar("X", bars[2].timestamp, 9.0, 9.5, 8.5, 9.0, 1)  # a second row for 09:32, other prices
    write_csv_bars(tmp_path / "X_1m.csv", [*bars[:3], twice, *bars[3:]])
    write_csv_bars(tmp_path / "Y_1m.csv", bars[:2])
    with caplog.at_level("WARNING", logger="sessiondata.repository"):
        assert CsvBarRepository(tmp_path).get_bars("X", PAST, FUTURE) == bars  # the first row kept
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1
    assert "X_1m.csv: 1 row(s) repeat a timestamp already read for X" in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="sessiondata.repository"):
        CsvBarRepository(tmp_path).get_bars("Y", PAST, FUTURE)
    assert not caplog.records


def test_csv_repository_merges_files_of_one_symbol(tmp_path: Path) -> None:
    t0 = datetime(2020, 1, 2, 9, 30, tzinfo=EST)
    day1 = [bar(t0 + timedelta(minutes=i), "X") for i in range(5)]
    day2 = [bar(t0 + timedelta(days=1, minutes=i), "X") for i in range(5)]
    write_csv_bars(tmp_path / "X_1m_day2.csv", day2)
    write_csv_bars(tmp_path / "X_1m_day1.csv", [*day1, day2[0]])
    repo = CsvBarRepository(tmp_path)
    assert repo.get_bars("X", PAST, FUTURE) == day1 + day2


# --- property: a range query is a filter of a plain list ---

offsets = st.sampled_from([UTC, EST, EDT, timezone(timedelta(hours=5, minutes=30))])
minutes = st.integers(min_value=0, max_value=3 * 24 * 60)
BASE = datetime(2008, 3, 7)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Bar], list[tuple[str, datetime, datetime]]]:
    bars: list[Bar] = []
    for symbol, aware in (("AWARE", True), ("NAIVE", False), ("OTHER", True)):
        for m in draw(st.lists(minutes, max_size=25)):
            tz = draw(offsets) if aware else None
            ts = BASE + timedelta(minutes=m)
            bars.append(bar(ts.replace(tzinfo=tz), symbol, price=draw(st.sampled_from([1.5, 2.25, 100.0]))))
    queries = []
    for _ in range(draw(st.integers(1, 5))):
        symbol = draw(st.sampled_from(["AWARE", "NAIVE", "OTHER"]))
        tz = draw(offsets) if symbol != "NAIVE" else None
        a, b = draw(minutes), draw(minutes)
        queries.append(
            (
                symbol,
                (BASE + timedelta(minutes=a)).replace(tzinfo=tz),
                (BASE + timedelta(minutes=b)).replace(tzinfo=tz),
            )
        )
    return bars, queries


def model(bars: list[Bar], symbol: str, start: datetime, end: datetime) -> list[Bar]:
    first: dict[datetime, Bar] = {}
    for b in bars:
        if b.symbol == symbol:
            first.setdefault(b.timestamp, b)  # aware timestamps hash and compare by instant
    return sorted((b for b in first.values() if start <= b.timestamp < end), key=lambda b: b.timestamp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_get_bars_equals_filtering_a_plain_list(
    data: tuple[list[Bar], list[tuple[str, datetime, datetime]]],
) -> None:
    bars, queries = data
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for symbol in ("AWARE", "NAIVE", "OTHER"):
            rows = [b for b in bars if b.symbol == symbol]
            if rows:
                write_csv_bars(folder / f"{symbol}_1m.csv", rows)
        memory = InMemoryBarRepository()
        half = len(bars) // 2
        memory.add_bars(bars[:half])
        memory.add_bars(bars[half:])
        csv_repo = CsvBarRepository(folder)
        with SqliteBarRepository(folder / "p.db") as sqlite_repo:
            first = sqlite_repo.add_bars(bars[:half])
            second = sqlite_repo.add_bars(bars[half:])
            distinct = len({(b.symbol, b.timestamp) for b in bars})
            assert first.added + second.added == distinct
            assert first.duplicates + second.duplicates == len(bars) - distinct
            for symbol, start, end in queries:
                expected = exact(model(bars, symbol, start, end))
                assert exact(sqlite_repo.get_bars(symbol, start, end)) == expected
                assert exact(memory.get_bars(symbol, start, end)) == expected
                assert exact(csv_repo.get_bars(symbol, start, end)) == expected


# --- threads ---


def test_concurrent_readers_see_whole_transactions_while_a_writer_imports(
    loaded: SqliteBarRepository, tmp_path: Path, switch_often: None
) -> None:
    # BAC is written again under a new name, one transaction per session day; readers must only ever see
    # whole days, in order, while SPY (already stored) always reads back complete.
    bac = loaded.get_bars("BAC", PAST, FUTURE)
    days = sorted({b.timestamp.date() for b in bac})
    per_day = [
        [
            Bar("NEW", b.timestamp, b.open, b.high, b.low, b.close, b.volume)
            for b in bac
            if b.timestamp.date() == d
        ]
        for d in days
    ]
    spy_window = (datetime(2013, 10, 8, 10, tzinfo=EDT), datetime(2013, 10, 8, 10, 30, tzinfo=EDT))
    spy_expected = loaded.get_bars("SPY", *spy_window)
    errors: list[BaseException] = []
    seen_counts: list[int] = []
    writer_done = threading.Event()

    def reader() -> None:
        try:
            reads = 0
            while not writer_done.is_set() or reads < 20:
                got = loaded.get_bars("NEW", PAST, FUTURE)
                n_days = len({b.timestamp.date() for b in got})
                assert got == [b for day in per_day[:n_days] for b in day]
                assert loaded.get_bars("SPY", *spy_window) == spy_expected
                seen_counts.append(n_days)
                reads += 1
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        try:
            for day in per_day:
                assert loaded.add_bars(day).added == len(day)
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer_done.set()

    threads = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(4)]
    threads.append(threading.Thread(target=writer, name="writer"))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert loaded.get_bars("NEW", PAST, FUTURE) == [b for day in per_day for b in day]
    assert seen_counts  # the readers really ran


def test_concurrent_writers_of_the_same_file_add_each_row_once(
    sqlite_repo: SqliteBarRepository, lean: Path, switch_often: None
) -> None:
    reports: list[ImportReport] = []
    errors: list[BaseException] = []

    def importer() -> None:
        try:
            reports.append(sqlite_repo.import_csv(lean / "TWX_1m.csv"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=importer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(r.added for r in reports) == [0, 0, REAL_ROWS["TWX"]]
    assert sum(r.duplicates for r in reports) == 2 * REAL_ROWS["TWX"]


def test_csv_repository_concurrent_first_reads_agree(lean: Path, switch_often: None) -> None:
    repo = CsvBarRepository(lean)
    expected = read_csv_bars(lean / "BAC_1m.csv")
    results: list[list[Bar]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(repo.get_bars("BAC", PAST, FUTURE))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(results) == 6
    assert all(r == expected for r in results)


def test_memory_repository_readers_and_writer(switch_often: None) -> None:
    t0 = datetime(2020, 1, 2, 9, 30, tzinfo=EST)
    batches = [[bar(t0 + timedelta(minutes=10 * k + i)) for i in range(10)] for k in range(50)]
    repo = InMemoryBarRepository()
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                got = repo.get_bars("T", PAST, FUTURE)
                assert len(got) % 10 == 0
                assert got == [b for batch in batches[: len(got) // 10] for b in batch]
        except BaseException as exc:
            errors.append(exc)

    def writer() -> None:
        try:
            for batch in batches:
                repo.add_bars(batch)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(repo.get_bars("T", PAST, FUTURE)) == 500


def test_extreme_bounds_cover_everything(writable: SqliteBarRepository | InMemoryBarRepository) -> None:
    stored = [bar(datetime(2020, 1, 2, 9, 30, tzinfo=EST)), bar(datetime(2020, 1, 2, 9, 31, tzinfo=EST))]
    writable.add_bars(stored)
    plus, minus = timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))
    for low in (datetime.min.replace(tzinfo=plus), datetime.min.replace(tzinfo=minus)):
        for high in (datetime.max.replace(tzinfo=plus), datetime.max.replace(tzinfo=minus)):
            assert writable.get_bars("T", low, high) == stored


def test_time_range_and_dates_agree_across_repositories(loaded: SqliteBarRepository, lean: Path) -> None:
    csv_repo = CsvBarRepository(lean)
    memory = InMemoryBarRepository(read_csv_bars(lean / "SHY_1m.csv"))
    every = loaded.get_bars("SHY", PAST, FUTURE)
    expected_range = (every[0].timestamp, every[-1].timestamp)
    expected_dates = sorted({b.timestamp.date() for b in every})
    for repo in (loaded, csv_repo, memory):
        found = repo.time_range("shy")
        assert found == expected_range
        assert [t.isoformat() for t in found] == [t.isoformat() for t in expected_range]  # offsets kept
        assert repo.dates("SHY") == expected_dates
        assert repo.time_range("NOPE") is None
        assert repo.dates("NOPE") == []
        assert repo.time_range("SHY", interval=60) is None
    assert expected_dates == [datetime(2008, 3, 7).date(), datetime(2008, 3, 10).date()]
