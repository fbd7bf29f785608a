"""The bar CSV format: reading (strict and lenient), line numbers of bad rows, writing, file names."""

from __future__ import annotations

import io
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InvalidDataError
from sessiondata._csvio import (
    HEADER,
    CsvBarReader,
    CsvFormatError,
    RejectedRow,
    interval_from_filename,
    read_csv_bars,
    symbol_from_filename,
    write_csv_bars,
)

GOOD = [
    "2013-10-07T09:30:00-04:00,167.43,167.52,167.41,167.44,816453",
    "2013-10-07T09:31:00-04:00,167.44,167.5,167.4,167.45,1000",
    "2013-10-07T09:32:00-04:00,167.45,167.46,167.42,167.43,2500",
]
HEADER_LINE = ",".join(HEADER)

# README row counts of data/real/quantconnect_lean.
REAL_ROWS = {"SPY": 4839, "AIG": 2558, "BAC": 3466, "AAPL": 2303, "TWX": 1200, "SHY": 652}


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- file names ---


@pytest.mark.parametrize(
    ("name", "symbol"),
    [("SPY_1m.csv", "SPY"), ("spy_1m.CSV", "SPY"), ("BRK.B_2013.csv", "BRK.B"), ("AAPL.csv", "AAPL")],
)
def test_symbol_from_filename(name: str, symbol: str) -> None:
    assert symbol_from_filename(Path("/some/dir") / name) == symbol


@pytest.mark.parametrize("name", ["_1m.csv", "SPY_1m.txt", "SPY", ".csv"])
def test_symbol_from_filename_rejects_names_without_a_symbol(name: str) -> None:
    with pytest.raises(ValueError, match="SYMBOL_"):
        symbol_from_filename(name)


@pytest.mark.parametrize(
    ("name", "interval"),
    [
        ("SPY_1m.csv", 1),
        ("SPY_60m.csv", 60),
        ("SPY_5M_2013.csv", 5),
        ("SPY.csv", None),
        ("SPY_2013.csv", None),
    ],
)
def test_interval_from_filename(name: str, interval: int | None) -> None:
    assert interval_from_filename(name) == interval


# --- strict reading ---


def test_reads_rows_keeping_offsets_and_integer_volume(tmp_path: Path) -> None:
    bars = read_csv_bars(write(tmp_path, "SPY_1m.csv", [HEADER_LINE, *GOOD]))
    assert len(bars) == 3
    first = bars[0]
    assert first == Bar("SPY", datetime(2013, 10, 7, 9, 30, tzinfo=timezone(-timedelta(hours=4))),
                        167.43, 167.52, 167.41, 167.44, 816453)  # fmt: skip
    assert first.timestamp.utcoffset() == -timedelta(hours=4)
    assert type(first.volume) is int


def test_explicit_symbol_overrides_the_file_name(tmp_path: Path) -> None:
    bars = read_csv_bars(write(tmp_path, "data.csv", [HEADER_LINE, *GOOD]), symbol="qqq")
    assert {b.symbol for b in bars} == {"QQQ"}


def test_naive_timestamps_z_suffix_bom_crlf_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "X_1m.csv"
    path.write_bytes(
        b"\xef\xbb\xbf Timestamp ,OPEN,high,low,close,volume\r\n"
        b"2020-01-02T09:30:00,1,2,0.5,1.5,10.5\r\n\r\n"
        b"2020-01-02T09:31:00,1,2,0.5,1.5,0\r\n"
    )
    bars = read_csv_bars(path)
    assert [b.timestamp for b in bars] == [datetime(2020, 1, 2, 9, 30), datetime(2020, 1, 2, 9, 31)]
    assert bars[0].volume == 10.5
    zulu = read_csv_bars(write(tmp_path, "Z_1m.csv", [HEADER_LINE, "2020-01-02T14:30:00Z,1,1,1,1,1"]))
    assert zulu[0].timestamp == datetime(2020, 1, 2, 14, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("2013-10-07T09:33:00-04:00,167.4,167.5,167.3", "expected 6 fields"),
        ("2013-10-07T09:33:00-04:00,167.4,167.5,167.3,167.4,100,7", "expected 6 fields"),
        ("not-a-time,167.4,167.5,167.3,167.4,100", "timestamp"),
        ("2013-10-07T09:33:00-04:00,167.4,abc,167.3,167.4,100", "high: not a number"),
        ("2013-10-07T09:33:00-04:00,167.4,167.5,167.3,167.4,lots", "volume: not a number"),
        ("2013-10-07T09:33:00-04:00,nan,167.5,167.3,167.4,100", "open"),
        ("2013-10-07T09:33:00-04:00,167.4,167.2,167.3,167.4,100", "high"),
        ("2013-10-07T09:33:00-04:00,167.4,167.5,167.3,167.4,-1", "volume"),
        ("2013-10-07T09:33:00-04:00,0,167.5,167.3,167.4,100", "open"),
        ("2013-10-07T09:33:00,167.4,167.5,167.3,167.4,100", "UTC offset"),
        # No NUL byte here: Python 3.10's csv module refuses those itself, with its own message.
        ("\x01\x02garbage\x7f", "expected 6 fields"),
        ('"' + "x" * 200_000 + '",1,1,1,1,1', "malformed CSV"),
    ],
)
def test_a_bad_row_raises_with_its_line_number(tmp_path: Path, bad_line: str, reason: str) -> None:
    path = write(tmp_path, "SPY_1m.csv", [HEADER_LINE, GOOD[0], GOOD[1], bad_line, GOOD[2]])
    with pytest.raises(CsvFormatError, match=reason) as info:
        read_csv_bars(path)
    err = info.value
    assert err.line == 4
    assert err.path == str(path)
    assert f"{path}, line 4" in str(err)
    assert isinstance(err, InvalidDataError)
    assert isinstance(err, ValueError)
    # The same file read leniently: that row alone is skipped and reported.
    reader = CsvBarReader(path, skip_bad_rows=True)
    assert [b.timestamp.minute for b in reader] == [30, 31, 32]
    assert [r.line for r in reader.rejected] == [4]
    assert reason in reader.rejected[0].reason


def test_undecodable_bytes_fail_as_that_row(tmp_path: Path) -> None:
    path = tmp_path / "SPY_1m.csv"
    lines = [HEADER_LINE, *GOOD]
    path.write_bytes(
        ("\n".join(lines[:3]) + "\n").encode() + b"2013-10-07T09:32:00-04:00,16\xff\xfe,1,1,1,1\n"
    )
    with pytest.raises(CsvFormatError, match="open: not a number") as info:
        read_csv_bars(path)
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty file"),
        (b"open,high,low,close,volume,timestamp\n", "expected the header"),
        (b"2013-10-07T09:30:00-04:00,167.43,167.52,167.41,167.44,816453\n", "expected the header"),
        (bytes(range(256)) * 4, "header"),
    ],
)
def test_a_missing_or_wrong_header_is_line_1(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "SPY_1m.csv"
    path.write_bytes(content)
    for skip in (False, True):  # a bad header is fatal even in lenient mode
        with pytest.raises(CsvFormatError, match=match) as info:
            list(CsvBarReader(path, skip_bad_rows=skip))
        assert info.value.line == 1


def test_error_survives_pickling() -> None:
    err = CsvFormatError("bad", path="/x/SPY_1m.csv", line=7)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.line, str(copy)) == (err.path, err.line, str(err))


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_csv_bars(tmp_path / "NOPE_1m.csv")


# --- lenient reading ---


def test_lenient_mode_skips_and_records_bad_rows(tmp_path: Path) -> None:
    lines = [
        HEADER_LINE,
        GOOD[0],
        "2013-10-07T09:31:00-04:00,1,1,1",  # line 3
        GOOD[1],
        "   ",
        "2013-10-07T09:32:00-04:00,5,4,3,3,1",  # line 6: high < low
        GOOD[2],
    ]
    reader = CsvBarReader(write(tmp_path, "SPY_1m.csv", lines), skip_bad_rows=True)
    bars = list(reader)
    assert [b.timestamp.minute for b in bars] == [30, 31, 32]
    assert [r.line for r in reader.rejected] == [3, 6]
    assert all(isinstance(r, RejectedRow) and r.reason for r in reader.rejected)
    assert reader.rows == 5
    with pytest.raises(RuntimeError):
        list(reader)


def test_reading_a_stream_needs_a_symbol() -> None:
    stream = io.StringIO("\n".join([HEADER_LINE, *GOOD]))
    with pytest.raises(ValueError, match="symbol"):
        CsvBarReader(stream)
    bars = list(CsvBarReader(io.StringIO("\n".join([HEADER_LINE, *GOOD])), "spy"))
    assert len(bars) == 3
    assert bars[0].symbol == "SPY"


# --- real data ---


def test_reads_every_real_file_with_the_readme_row_counts(real_data: Path) -> None:
    folder = real_data / "quantconnect_lean"
    for symbol, rows in REAL_ROWS.items():
        path = folder / f"{symbol}_1m.csv"
        bars = read_csv_bars(path)
        assert len(bars) == rows
        texts = [line.split(",", 1)[0] for line in path.read_text().splitlines()[1:]]
        assert [b.timestamp.isoformat() for b in bars] == texts  # offsets kept exactly


def test_writing_real_data_reads_back_identical_bars_and_text(real_data: Path, tmp_path: Path) -> None:
    source = real_data / "quantconnect_lean" / "SHY_1m.csv"
    bars = read_csv_bars(source)
    out = tmp_path / "SHY_1m.csv"
    assert write_csv_bars(out, bars) == len(bars)
    assert read_csv_bars(out) == bars

    # Prices may lose trailing zeros ("84.20" -> "84.2"); timestamps are written exactly as read.
    def stamps(path: Path) -> list[str]:
        return [line.split(",", 1)[0] for line in path.read_text().splitlines()]

    assert stamps(out) == stamps(source)


# --- writing ---

offsets = st.one_of(
    st.none(),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)
prices = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def bar_lists(draw: st.DrawFn) -> list[Bar]:
    tz = draw(offsets)
    stamps = draw(
        st.lists(
            st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
            max_size=20,
        )
    )
    result = []
    for ts in stamps:
        low, high = sorted(draw(st.tuples(prices, prices)))
        o = draw(st.floats(min_value=low, max_value=high))
        c = draw(st.floats(min_value=low, max_value=high))
        volume = draw(st.one_of(st.integers(0, 10**12), st.floats(0, 1e12)))
        result.append(Bar("sym", ts.replace(tzinfo=tz), o, high, low, c, volume))
    return result


@settings(max_examples=150, deadline=None)
@given(bar_lists())
def test_write_then_read_round_trips_exactly(bars: list[Bar]) -> None:
    buffer = io.StringIO()
    assert write_csv_bars(buffer, bars) == len(bars)
    buffer.seek(0)
    back = list(CsvBarReader(buffer, "SYM"))
    assert back == bars
    for a, b in zip(back, bars, strict=True):
        assert a.timestamp.utcoffset() == b.timestamp.utcoffset()
        assert type(a.volume) is type(b.volume)


def test_write_rejects_non_bars() -> None:
    with pytest.raises(InvalidDataError, match="expected a Bar"):
        write_csv_bars(io.StringIO(), [object()])  # type: ignore[list-item]


def test_an_unterminated_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "SPY_1m.csv",
        [
            "timestamp,open,high,low,close,volume",
            "2020-01-02T09:30:00,10,11,9,10,100",
            '2020-01-02T09:31:00,"10,11,9,10,100',
            "2020-01-02T09:32:00,10,11,9,10,100",
            "2020-01-02T09:33:00,10,11,9,10,100",
        ],
    )
    with pytest.raises(CsvFormatError, match="quoted field opens here and runs to line 5") as caught:
        read_csv_bars(path)
    assert caught.value.line == 3
    reader = CsvBarReader(path, skip_bad_rows=True)
    assert len(list(reader)) == 1
    assert [r.line for r in reader.rejected] == [3]


def test_rows_of_one_offset_share_one_zone_object(tmp_path: Path) -> None:
    # The values fromisoformat gives, but one zone object per offset (shared with other files and the
    # repositories): a replay compares these timestamps with each other, and equal zone objects compare fast.
    path = tmp_path / "SPY_1m.csv"
    path.write_text("\n".join([",".join(HEADER), *GOOD]) + "\n")
    other = tmp_path / "AIG_1m.csv"
    other.write_text("\n".join([",".join(HEADER), *GOOD[:1]]) + "\n")
    bars = read_csv_bars(path) + read_csv_bars(other)
    assert [b.timestamp for b in bars] == [datetime.fromisoformat(r.split(",")[0]) for r in GOOD + GOOD[:1]]
    assert len({id(b.timestamp.tzinfo) for b in bars}) == 1
    assert bars[0].timestamp.tzinfo == timezone(timedelta(hours=-4))
