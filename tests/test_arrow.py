"""`to_arrow` and `store_to_arrow`: the same columns, rows and options as the pandas answers, for every
series and range form, as Arrow tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, Quote, SessionData, Tick, store_to_arrow, store_to_dataframe, to_arrow

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

T0 = datetime(2024, 1, 2, 9, 30)
EST = timezone(timedelta(hours=-5))


def _bar(i: int, t0: datetime = T0, symbol: str = "SPY") -> Bar:
    base = 100.0 + (i % 13) * 0.25
    return Bar(symbol, t0 + timedelta(minutes=i), base, base + 1.0, base - 1.0, base + 0.5, 1_000 + i)


@pytest.fixture
def store() -> SessionData:
    s = SessionData()
    s.add_bars_batch("SPY", [_bar(i) for i in range(1_100)])
    s.add_bars_batch("AIG", [_bar(i, symbol="AIG") for i in range(0, 390, 2)])
    s.add_ticks_batch("SPY", [Tick("SPY", T0 + timedelta(seconds=i), 50.0 + i, i % 4) for i in range(50)])
    s.add_quotes_batch("SPY", [Quote("SPY", T0 + timedelta(seconds=i), 9.0, 9.5, 1, 2) for i in range(30)])
    return s


def _same_as_frame(table: Any, frame: Any) -> None:
    """The table holds the frame's index (as columns) and columns, value for value."""
    expected = frame.reset_index()
    assert table.column_names == list(expected.columns)
    got = table.to_pandas()
    for name in table.column_names:
        left, right = got[name].tolist(), expected[name].tolist()
        assert left == right, name


@settings(max_examples=30, deadline=None)
@given(
    series=st.sampled_from([1, 5, 15, "ticks", "quotes"]),
    n=st.one_of(st.none(), st.integers(-2, 1_200)),
    window=st.one_of(st.none(), st.tuples(st.integers(-10, 1_200), st.integers(0, 400))),
)
def test_one_symbol_matches_store_to_dataframe(series: Any, n: int | None, window: Any) -> None:
    store = SessionData()
    store.add_bars_batch("SPY", [_bar(i) for i in range(1_100)])
    store.add_ticks_batch("SPY", [Tick("SPY", T0 + timedelta(seconds=i), 50.0 + i, i % 4) for i in range(50)])
    store.add_quotes_batch(
        "SPY", [Quote("SPY", T0 + timedelta(seconds=i), 9.0, 9.5, 1, 2) for i in range(30)]
    )
    bounds: dict[str, Any] = {}
    if window is not None and n is None:
        start = T0 + timedelta(minutes=window[0])
        bounds = {"start": start, "end": start + timedelta(minutes=window[1])}
    table = store_to_arrow(store, "spy", series=series, n=n, **bounds)
    _same_as_frame(table, store_to_dataframe(store, "spy", series=series, n=n, **bounds))
    assert table.schema.field("timestamp").type == pa.timestamp("ns")


def test_several_symbols_have_a_symbol_column_in_the_order_given(store: SessionData) -> None:
    table = store_to_arrow(store, ["aig", "NOPE", "spy"], n=3)
    assert table.column("symbol").to_pylist() == ["AIG"] * 3 + ["SPY"] * 3
    _same_as_frame(table, store_to_dataframe(store, ["aig", "NOPE", "spy"], n=3))
    assert table.column("close").to_pylist() == [b.close for b in store.get_last_n_bars("AIG", 3)] + [
        b.close for b in store.get_last_n_bars("SPY", 3)
    ]


def test_several_symbols_of_nothing_give_an_empty_table_with_the_columns(store: SessionData) -> None:
    table = store_to_arrow(store, ["NOPE"], series="ticks")
    assert table.num_rows == 0
    assert table.column_names == ["symbol", "timestamp", "price", "size"]
    assert to_arrow(None).column_names == ["timestamp", "open", "high", "low", "close", "volume"]
    assert store_to_arrow(store, "NOPE").num_rows == 0
    assert store_to_arrow(store, ["SPY", "AIG"], n=0).num_rows == 0


def test_aware_data_is_utc_or_the_zone_given() -> None:
    store = SessionData()
    store.add_bars_batch("SPY", [_bar(i, T0.replace(tzinfo=EST)) for i in range(5)])
    store.add_bars_batch("AIG", [_bar(i, T0.replace(tzinfo=EST), "AIG") for i in range(5)])
    utc = store_to_arrow(store, "SPY")
    assert utc.schema.field("timestamp").type == pa.timestamp("ns", "UTC")
    assert utc.column("timestamp").to_pylist()[0] == T0.replace(tzinfo=EST)
    ny = store_to_arrow(store, ["SPY", "AIG"], tz="America/New_York")
    assert ny.schema.field("timestamp").type == pa.timestamp("ns", "America/New_York")
    assert ny.column("timestamp").to_pylist()[5] == T0.replace(tzinfo=EST)
    _same_as_frame(ny, store_to_dataframe(store, ["SPY", "AIG"], tz="America/New_York"))


def test_bad_requests_are_value_errors(store: SessionData) -> None:
    aware = SessionData()
    aware.add_bar("X", _bar(0, T0.replace(tzinfo=EST), "X"))
    aware.add_bar("Y", _bar(0, symbol="Y"))
    with pytest.raises(ValueError, match="naive"):
        store_to_arrow(store, "SPY", tz="UTC")
    with pytest.raises(ValueError, match="naive"):
        store_to_arrow(store, ["SPY"], tz="UTC")
    with pytest.raises(ValueError, match="cannot share"):
        store_to_arrow(aware, ["X", "Y"])
    with pytest.raises(ValueError, match="duplicates"):
        store_to_arrow(store, ["SPY", "spy"])
    with pytest.raises(ValueError, match="interval"):
        store_to_arrow(store, ["SPY"], series=7)
    with pytest.raises(ValueError, match="either n"):
        to_arrow(store.get_symbol_data("SPY"), n=3, start=T0)


def test_a_table_outlives_later_writes(store: SessionData) -> None:
    table = store_to_arrow(store, "SPY", n=2)
    closes = table.column("close").to_pylist()
    store.add_bar("SPY", _bar(2_000))
    assert table.column("close").to_pylist() == closes
    assert store_to_arrow(store, "SPY", n=1).column("timestamp").to_pylist() == [
        T0 + timedelta(minutes=2_000)
    ]
