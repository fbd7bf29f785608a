"""`ParquetBarRepository` and `write_parquet_bars`: the same answers as the other repositories, every
timestamp unit and zone style, hive and flat layouts, reads that touch only what a query needs, and bad
input reported as `InvalidDataError` naming the file and the column."""

from __future__ import annotations

import importlib
import math
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import (
    Bar,
    CsvBarRepository,
    DataManager,
    IndexedBarRepository,
    InMemoryBarRepository,
    InvalidDataError,
    ParquetBarRepository,
    SessionData,
    SessionDataError,
    SqliteBarRepository,
)
from sessiondata._parquet import write_parquet_bars

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

NY = ZoneInfo("America/New_York")
T0 = datetime(2024, 3, 8, 9, 30)


def _table(
    stamps: list[datetime], unit: str = "us", tz: str | None = None, volume: Any = None, **extra: Any
) -> Any:
    n = len(stamps)
    prices = [100.0 + i for i in range(n)]
    return pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp(unit, tz)),
            "open": prices,
            "high": [p + 1 for p in prices],
            "low": [p - 1 for p in prices],
            "close": prices,
            "volume": volume
            if volume is not None
            else pa.array([10 * (i + 1) for i in range(n)], pa.int64()),
            **extra,
        }
    )


def _write(path: Path, table: Any, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return path


def _minutes(n: int, start: datetime = T0) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(n)]


# --- units, zones, volumes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize(
    ("tz", "zone"),
    [
        (None, None),
        ("UTC", timezone.utc),
        ("America/New_York", NY),
        ("+04:00", timezone(timedelta(hours=4))),
        ("-05:30", timezone(-timedelta(hours=5, minutes=30))),
    ],
)
def test_every_unit_and_zone_style_reads_back_in_the_datas_style(
    tmp_path: Path, unit: str, tz: str | None, zone: Any
) -> None:
    stamps = _minutes(5) if tz is None else [t.replace(tzinfo=zone) for t in _minutes(5)]
    _write(tmp_path / "symbol=SPY" / "a.parquet", _table(stamps, unit, tz))
    repo = ParquetBarRepository(tmp_path)
    lo, hi = stamps[1], stamps[4]
    bars = repo.get_bars("spy", lo, hi)
    assert [b.timestamp for b in bars] == stamps[1:4]
    for b in bars:  # the data's style: naive stays naive, a zone stays that zone
        assert b.timestamp.tzinfo == zone if zone is not None else b.timestamp.tzinfo is None
        assert b.symbol == "SPY"
    assert bars[0] == Bar("SPY", stamps[1], 101.0, 102.0, 100.0, 101.0, 20)
    assert repo.time_range("SPY") == (stamps[0], stamps[-1])
    assert repo.dates("SPY") == [date(2024, 3, 8)]
    # One zone object per zone across reads (the replay compares bars of many reads; shared zones are fast).
    again = ParquetBarRepository(tmp_path).get_bars("spy", lo, hi)
    assert all(a.timestamp.tzinfo is b.timestamp.tzinfo for a, b in zip(bars, again, strict=True))


def test_int_and_float_volumes_keep_their_type(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=A" / "x.parquet", _table(_minutes(2), volume=pa.array([1, 2], pa.int32())))
    _write(tmp_path / "symbol=B" / "x.parquet", _table(_minutes(2), volume=pa.array([0.5, 2.25])))
    repo = ParquetBarRepository(tmp_path)
    a = repo.get_bars("A", T0, T0 + timedelta(hours=1))
    b = repo.get_bars("B", T0, T0 + timedelta(hours=1))
    assert [(type(x.volume), x.volume) for x in a] == [(int, 1), (int, 2)]
    assert [x.volume for x in b] == [0.5, 2.25]


def test_a_query_bound_far_outside_the_nanosecond_range_still_works(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=A" / "x.parquet", _table(_minutes(3), "ns"))
    repo = ParquetBarRepository(tmp_path)
    assert len(repo.get_bars("A", datetime(1, 1, 1), datetime(9999, 1, 1))) == 3


def test_dates_are_those_of_the_zone_written(tmp_path: Path) -> None:
    # 20:30 New York on 8 March is 01:30 UTC on the 9th: the zone's own date is the 8th.
    evening = datetime(2024, 3, 8, 20, 30, tzinfo=NY)
    _write(tmp_path / "symbol=A" / "x.parquet", _table([evening], tz="America/New_York"))
    _write(tmp_path / "symbol=B" / "x.parquet", _table([evening], tz="UTC"))
    repo = ParquetBarRepository(tmp_path)
    assert repo.dates("A") == [date(2024, 3, 8)]
    assert repo.dates("B") == [date(2024, 3, 9)]


# --- layouts -----------------------------------------------------------------------------------------------


def test_a_flat_file_with_a_symbol_column_answers_like_a_hive_dataset(tmp_path: Path) -> None:
    stamps = _minutes(4)
    # Rows of two symbols interleaved and out of time order; one repeated timestamp (the first is kept).
    order = [3, 0, 2, 1]
    table = _table([stamps[i] for i in order] * 2, symbol=["AAA"] * 4 + ["BBB"] * 4)
    dup = _table([stamps[0]], symbol=["AAA"]).set_column(1, "open", pa.array([100.5]))
    flat = _write(tmp_path / "flat.parquet", pa.concat_tables([table, dup]))
    repo = ParquetBarRepository(flat)
    assert repo.symbols() == ["AAA", "BBB"]
    bars = repo.get_bars("AAA", stamps[0], stamps[3])
    assert [b.timestamp for b in bars] == stamps[:3]
    assert bars[0].open == 101.0  # the first row of that timestamp in file order, not the later duplicate
    assert repo.get_bars("CCC", stamps[0], stamps[3]) == []
    assert repo.time_range("BBB") == (stamps[0], stamps[3])
    assert repo.time_range("CCC") is None
    assert repo.dates("CCC") == []


@pytest.mark.parametrize("dictionary", [False, True])
def test_a_symbol_column_written_in_lower_case_or_padded_is_found(tmp_path: Path, dictionary: bool) -> None:
    # `symbols()` names them upper-cased, as the store does; a query by that name must find their rows.
    stamps = _minutes(3)
    symbols = ["spy"] * 3 + [" Aig "] * 3 + ["BAC"] * 3
    table = _table(stamps * 3, symbol=pa.array(symbols).dictionary_encode() if dictionary else symbols)
    repo = ParquetBarRepository(_write(tmp_path / "mixed.parquet", table))
    assert repo.symbols() == ["AIG", "BAC", "SPY"]
    for symbol in ("SPY", "spy", "AIG", "BAC"):
        bars = repo.get_bars(symbol, stamps[0], stamps[-1] + timedelta(minutes=1))
        assert [b.timestamp for b in bars] == stamps, symbol
        assert {b.symbol for b in bars} == {symbol.upper()}


def test_a_dataset_of_several_files_per_symbol_merges_them_in_path_order(tmp_path: Path) -> None:
    stamps = _minutes(6)
    _write(tmp_path / "symbol=SPY" / "b.parquet", _table(stamps[3:]))
    first = _table(stamps[:4]).set_column(1, "open", pa.array([100.0, 101.0, 102.0, 102.5]))
    _write(tmp_path / "symbol=SPY" / "a.parquet", first)
    repo = ParquetBarRepository(tmp_path)
    bars = repo.get_bars("SPY", stamps[0], stamps[-1] + timedelta(minutes=1))
    assert [b.timestamp for b in bars] == stamps
    assert bars[3].open == 102.5  # a.parquet comes first in path order: its bar of that minute wins
    assert repo.symbols() == ["SPY"]


def test_a_file_out_of_time_order_is_answered_in_time_order(tmp_path: Path) -> None:
    stamps = _minutes(6)
    _write(tmp_path / "symbol=A" / "x.parquet", _table([stamps[i] for i in (4, 1, 0, 5, 3, 2)]))
    bars = ParquetBarRepository(tmp_path).get_bars("A", stamps[1], stamps[5])
    assert [b.timestamp for b in bars] == stamps[1:5]


def test_interval_partitions_and_columns_key_the_bars(tmp_path: Path) -> None:
    stamps = _minutes(3)
    _write(tmp_path / "symbol=A" / "interval=1" / "x.parquet", _table(stamps))
    _write(tmp_path / "symbol=A" / "interval=5" / "x.parquet", _table(stamps[:1]))
    _write(tmp_path / "symbol=B" / "x.parquet", _table(stamps, interval=pa.array([1, 60, 60], pa.int16())))
    repo = ParquetBarRepository(tmp_path)
    end = stamps[-1] + timedelta(minutes=1)
    assert len(repo.get_bars("A", stamps[0], end)) == 3
    assert len(repo.get_bars("A", stamps[0], end, interval=5)) == 1
    assert [b.timestamp for b in repo.get_bars("B", stamps[0], end, interval=60)] == stamps[1:]
    assert repo.get_bars("B", stamps[0], end, interval=15) == []
    assert repo.time_range("B", 60) == (stamps[1], stamps[2])


def test_a_bad_interval_partition_is_invalid_data(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=A" / "interval=0" / "x.parquet", _table(_minutes(1)))
    with pytest.raises(InvalidDataError, match="interval=0"):
        ParquetBarRepository(tmp_path)


def test_an_empty_directory_holds_nothing(tmp_path: Path) -> None:
    repo = ParquetBarRepository(tmp_path)
    assert repo.symbols() == []
    assert repo.get_bars("SPY", T0, T0 + timedelta(hours=1)) == []


def test_it_is_an_indexed_repository() -> None:
    assert issubclass(ParquetBarRepository, IndexedBarRepository)


# --- reading only what a query needs -----------------------------------------------------------------------


def _corrupt_row_group(path: Path, row_group: int) -> None:
    """Overwrite the data pages of one row group, leaving the footer (and the other row groups) intact."""
    md = pq.read_metadata(path)
    data = bytearray(path.read_bytes())
    rg = md.row_group(row_group)
    for c in range(rg.num_columns):
        col = rg.column(c)
        begin = col.dictionary_page_offset or col.data_page_offset
        data[begin : begin + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    path.write_bytes(bytes(data))


def test_a_query_reads_only_the_row_groups_its_range_overlaps(tmp_path: Path) -> None:
    stamps = _minutes(40)
    path = _write(tmp_path / "symbol=SPY" / "x.parquet", _table(stamps), row_group_size=10)
    _corrupt_row_group(path, 0)
    repo = ParquetBarRepository(tmp_path)
    # Rows 20-29 sit in row group 2: readable although row group 0 is garbage.
    assert [b.timestamp for b in repo.get_bars("SPY", stamps[20], stamps[30])] == stamps[20:30]
    with pytest.raises(InvalidDataError, match=r"x\.parquet"):
        repo.get_bars("SPY", stamps[0], stamps[5])


def test_a_query_opens_only_its_symbols_files(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=GOOD" / "x.parquet", _table(_minutes(3)))
    bad = tmp_path / "symbol=ZZZ" / "x.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"not parquet at all")
    repo = ParquetBarRepository(tmp_path)
    assert len(repo.get_bars("GOOD", T0, T0 + timedelta(hours=1))) == 3
    assert repo.symbols() == ["GOOD", "ZZZ"]  # from the partition names, nothing read
    with pytest.raises(InvalidDataError, match=r"symbol=ZZZ.*not a Parquet file"):
        repo.get_bars("ZZZ", T0, T0 + timedelta(hours=1))


def test_legacy_int96_timestamps_are_read_whole_row_groups(tmp_path: Path) -> None:
    stamps = _minutes(20)
    table = _table(stamps, "ns", symbol=["A"] * 20)
    _write(tmp_path / "x.parquet", table, row_group_size=5, use_deprecated_int96_timestamps=True)
    repo = ParquetBarRepository(tmp_path / "x.parquet")
    assert [b.timestamp for b in repo.get_bars("A", stamps[7], stamps[12])] == stamps[7:12]


def test_symbols_of_a_mixed_layout_and_an_unreadable_symbol_column(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=HIVE" / "x.parquet", _table(_minutes(2)))
    flat = _write(tmp_path / "flat.parquet", _table(_minutes(2), symbol=["flat", "FLAT"]))
    repo = ParquetBarRepository(tmp_path)
    assert repo.symbols() == ["FLAT", "HIVE"]
    # The column is matched upper-cased, as `symbols()` names it: the lower-case row is FLAT's too.
    assert [b.timestamp for b in repo.get_bars("flat", T0, T0 + timedelta(hours=1))] == _minutes(2)
    _corrupt_row_group(flat, 0)
    with pytest.raises(InvalidDataError, match=r"flat\.parquet: cannot read column symbol"):
        ParquetBarRepository(tmp_path).symbols()


def test_a_dictionary_encoded_symbol_column_is_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.parquet", _table(_minutes(2), symbol=pa.array(["A", "B"]).dictionary_encode())
    )
    assert [b.timestamp for b in ParquetBarRepository(path).get_bars("B", T0, T0 + timedelta(hours=1))] == [
        _minutes(2)[1]
    ]


def test_row_groups_without_statistics_are_read_whole(tmp_path: Path) -> None:
    stamps = _minutes(20)
    _write(
        tmp_path / "x.parquet", _table(stamps, symbol=["A"] * 20), row_group_size=5, write_statistics=False
    )
    repo = ParquetBarRepository(tmp_path / "x.parquet")
    assert [b.timestamp for b in repo.get_bars("A", stamps[7], stamps[12])] == stamps[7:12]


# --- bad input ---------------------------------------------------------------------------------------------


def test_a_file_that_is_not_parquet_is_invalid_data_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    path.write_text("timestamp,open\n")
    with pytest.raises(InvalidDataError, match=r"bars\.parquet"):
        ParquetBarRepository(path)


def test_a_path_that_does_not_exist_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ParquetBarRepository(tmp_path / "nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["close"]), r"missing column\(s\) close"),
        (lambda t: t.drop_columns(["symbol"]), r"missing column\(s\) symbol"),
        (lambda t: t.set_column(1, "open", pa.array(["1"] * 3)), "column open must be floating point"),
        (lambda t: t.set_column(5, "volume", pa.array(["1"] * 3)), "column volume must be integer or"),
        (lambda t: t.set_column(0, "timestamp", pa.array(["x"] * 3)), "column timestamp must be a timestamp"),
        (lambda t: t.set_column(6, "symbol", pa.array([1] * 3)), "column symbol must be a string"),
        (lambda t: t.append_column("interval", pa.array([1.0] * 3)), "column interval must be an integer"),
    ],
)
def test_missing_columns_and_wrong_types_name_the_file_and_column(
    tmp_path: Path, change: Any, message: str
) -> None:
    path = _write(tmp_path / "x.parquet", change(_table(_minutes(3), symbol=["A"] * 3)))
    repo = ParquetBarRepository(path)
    with pytest.raises(InvalidDataError, match=message) as err:
        repo.get_bars("A", T0, T0 + timedelta(hours=1))
    assert "x.parquet" in str(err.value)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("close", math.nan, "close"), ("open", None, "open"), ("high", -1.0, "high"), ("volume", -5, "volume")],
)
def test_bad_values_name_the_file_and_column_and_nothing_is_stored(
    tmp_path: Path, column: str, value: Any, message: str
) -> None:
    table = _table(_minutes(3))
    index = table.schema.get_field_index(column)
    values = table.column(column).to_pylist()
    values[1] = value
    table = table.set_column(index, column, pa.array(values, table.schema.field(column).type))
    _write(tmp_path / "symbol=A" / "x.parquet", table)
    manager = DataManager(SessionData(), repository=ParquetBarRepository(tmp_path))
    with pytest.raises(InvalidDataError, match=message) as err:
        manager.repository.get_bars("A", T0, T0 + timedelta(hours=1))  # type: ignore[union-attr]
    assert "x.parquet" in str(err.value)
    with pytest.raises(SessionDataError, match=r"x\.parquet"):  # the replay's source error wraps it
        manager.replay(["A"], [T0.date()], upkeep=False)
    assert manager.session_data.get_bar_count("A") == 0


def test_null_and_sub_microsecond_timestamps_are_invalid_data(tmp_path: Path) -> None:
    stamps = pa.array([T0, None], pa.timestamp("us"))
    _write(tmp_path / "symbol=A" / "x.parquet", _table(_minutes(2)).set_column(0, "timestamp", stamps))
    fine = 1_709_890_200_000_000_001  # 2024-03-08T09:30:00.000000001
    _write(
        tmp_path / "symbol=B" / "x.parquet",
        _table(_minutes(1)).set_column(0, "timestamp", pa.array([fine], pa.timestamp("ns"))),
    )
    repo = ParquetBarRepository(tmp_path)
    with pytest.raises(InvalidDataError, match="column timestamp has 1 null"):
        repo.get_bars("A", T0, T0 + timedelta(hours=1))
    with pytest.raises(InvalidDataError, match="sub-microsecond"):
        repo.get_bars("B", T0, T0 + timedelta(hours=1))


def test_one_symbol_mixing_naive_and_zoned_files_is_invalid_data(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=A" / "a.parquet", _table(_minutes(1)))
    _write(tmp_path / "symbol=A" / "b.parquet", _table(_minutes(1, T0.replace(tzinfo=NY)), tz="UTC"))
    with pytest.raises(InvalidDataError, match="do not mix"):
        ParquetBarRepository(tmp_path).get_bars("A", T0, T0 + timedelta(hours=1))


def test_query_arguments_are_checked_like_the_other_repositories(tmp_path: Path) -> None:
    _write(tmp_path / "symbol=A" / "x.parquet", _table(_minutes(3)))
    repo = ParquetBarRepository(tmp_path)
    aware = T0.replace(tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        repo.get_bars("A", aware, aware + timedelta(hours=1))
    with pytest.raises(ValueError, match="symbol"):
        repo.get_bars("", T0, T0)
    with pytest.raises(ValueError, match="interval"):
        repo.get_bars("A", T0, T0, interval=0)
    assert repo.get_bars("A", T0 + timedelta(hours=1), T0) == []


def test_without_pyarrow_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.import_module

    def fake(name: str, package: str | None = None) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"sessiondata\[parquet\]"):
        ParquetBarRepository(tmp_path)


# --- writing -----------------------------------------------------------------------------------------------


def test_write_parquet_bars_keeps_zones_offsets_and_intervals(tmp_path: Path) -> None:
    ny = [Bar("A", t.replace(tzinfo=NY), 1.0, 1.0, 1.0, 1.0, 1) for t in _minutes(2)]
    fixed = [
        Bar("B", t.replace(tzinfo=timezone(timedelta(hours=-4))), 1.0, 1.0, 1.0, 1.0, 1.5)
        for t in _minutes(2)
    ]
    mixed = [
        Bar("C", T0.replace(tzinfo=timezone(timedelta(hours=-4))), 1.0, 1.0, 1.0, 1.0, 1),
        Bar("C", T0.replace(month=12, tzinfo=timezone(timedelta(hours=-5))), 1.0, 1.0, 1.0, 1.0, 1),
    ]
    report = write_parquet_bars(tmp_path, [*ny, *fixed, *mixed, ny[0]], name="x")
    assert (report.added, report.duplicates) == (6, 1)
    hourly = write_parquet_bars(
        tmp_path, [Bar("A", T0.replace(tzinfo=NY), 2.0, 2.0, 2.0, 2.0, 9)], interval=60
    )
    assert hourly.added == 1
    repo = ParquetBarRepository(tmp_path)
    far = (datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert repo.get_bars("A", *far) == ny
    assert [b.timestamp.tzinfo for b in repo.get_bars("A", *far)] == [NY, NY]
    assert repo.get_bars("B", *far) == fixed
    assert repo.get_bars("B", *far)[0].timestamp.utcoffset() == timedelta(hours=-4)
    assert repo.get_bars("C", *far) == mixed  # the same instants, stored in UTC
    assert repo.get_bars("A", *far, interval=60)[0].volume == 9


def test_write_parquet_bars_stores_utc_offsets_as_utc_and_leaves_no_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    utc = [Bar("A", t.replace(tzinfo=timezone.utc), 1.0, 1.0, 1.0, 1.0, 1) for t in _minutes(2)]
    write_parquet_bars(tmp_path / "ok", utc)
    assert pq.read_schema(tmp_path / "ok" / "symbol=A" / "part-0.parquet").field("timestamp").type.tz == "UTC"

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_bars(tmp_path / "bad", utc)
    assert list((tmp_path / "bad" / "symbol=A").iterdir()) == []


def test_write_parquet_bars_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="expected a Bar"):
        write_parquet_bars(tmp_path, [Bar("A", T0, 1.0, 1.0, 1.0, 1.0, 1), "nope"])  # type: ignore[list-item]
    with pytest.raises(InvalidDataError, match="do not mix"):
        write_parquet_bars(
            tmp_path,
            [Bar("A", T0, 1.0, 1.0, 1.0, 1.0, 1), Bar("A", T0.replace(tzinfo=NY), 1.0, 1.0, 1.0, 1.0, 1)],
        )
    assert list(tmp_path.iterdir()) == []


# --- against the other repositories ------------------------------------------------------------------------

_bar_minutes = st.lists(st.integers(0, 600), min_size=1, max_size=60, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(minutes=_bar_minutes, lo=st.integers(-5, 610), span=st.integers(0, 200), rows=st.integers(1, 16))
def test_range_queries_match_the_in_memory_repository(
    tmp_path_factory: pytest.TempPathFactory, minutes: list[int], lo: int, span: int, rows: int
) -> None:
    bars = [Bar("A", T0 + timedelta(minutes=m), 1.0 + m, 2.0 + m, 0.5 + m, 1.0 + m, m) for m in minutes]
    folder = tmp_path_factory.mktemp("prop")
    write_parquet_bars(folder, bars, row_group_size=rows)
    parquet = ParquetBarRepository(folder)
    memory = InMemoryBarRepository(bars)
    start = T0 + timedelta(minutes=lo)
    end = start + timedelta(minutes=span)
    assert parquet.get_bars("A", start, end) == memory.get_bars("A", start, end)
    assert parquet.time_range("A") == memory.time_range("A")
    assert parquet.dates("A") == memory.dates("A")


def test_concurrent_first_queries_agree(tmp_path: Path) -> None:
    stamps = _minutes(300)
    for sym in ("A", "B", "C"):
        _write(tmp_path / f"symbol={sym}" / "x.parquet", _table(stamps), row_group_size=50)
    repo = ParquetBarRepository(tmp_path)
    expected = {s: ParquetBarRepository(tmp_path).get_bars(s, stamps[40], stamps[260]) for s in "ABC"}
    results: list[tuple[str, list[Bar]]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(sym: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append((sym, repo.get_bars(sym, stamps[40], stamps[260])))
        except BaseException as exc:  # reported below: a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in "ABCABC"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(results) == 6
    assert all(bars == expected[sym] for sym, bars in results)


@pytest.mark.realdata
def test_real_data_round_trips_against_csv_and_sqlite(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "quantconnect_lean"
    csv = CsvBarRepository(folder)
    with SqliteBarRepository(tmp_path / "bars.db") as sqlite:
        for path in sorted(folder.glob("*_1m.csv")):
            sqlite.import_csv(path)
        for sym in csv.symbols():
            first, last = csv.time_range(sym)  # type: ignore[misc]
            write_parquet_bars(tmp_path / "pq", csv.get_bars(sym, first, last + timedelta(minutes=1)))
        parquet = ParquetBarRepository(tmp_path / "pq")
        assert parquet.symbols() == csv.symbols()
        for sym in csv.symbols():
            first, last = csv.time_range(sym)  # type: ignore[misc]
            end = last + timedelta(minutes=1)
            assert (
                parquet.get_bars(sym, first, end)
                == sqlite.get_bars(sym, first, end)
                == csv.get_bars(sym, first, end)
            )
            assert parquet.time_range(sym) == sqlite.time_range(sym)
            assert parquet.dates(sym) == sqlite.dates(sym) == csv.dates(sym)
            mid = first + (last - first) / 2
            window = (mid, mid + timedelta(minutes=30))
            assert parquet.get_bars(sym, *window) == sqlite.get_bars(sym, *window)


@pytest.mark.realdata
def test_real_data_replays_the_same_from_parquet_as_from_csv(real_data: Path, tmp_path: Path) -> None:
    folder = real_data / "quantconnect_lean"
    csv = CsvBarRepository(folder)
    for sym in ("SPY", "AIG"):
        first, last = csv.time_range(sym)  # type: ignore[misc]
        write_parquet_bars(tmp_path, csv.get_bars(sym, first, last + timedelta(minutes=1)))
    days = [date(2013, 10, 7), date(2013, 10, 8)]
    reports = [
        DataManager(SessionData(), repository=repo).replay(["SPY", "AIG"], days, drop_minutes=3, seed=1)
        for repo in (csv, ParquetBarRepository(tmp_path))
    ]
    assert [s.as_dict() for s in reports[0].sessions] == [s.as_dict() for s in reports[1].sessions]
    assert reports[0].bars == reports[1].bars > 0
