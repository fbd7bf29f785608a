"""Bar, Tick and Quote: what the contract accepts, what it rejects, and how the records behave as values.

Every impossible value must raise `InvalidDataError` (a `ValueError`) whose message names the field and the
value; real-but-odd data (crossed quotes, zero-size ticks) must be accepted.
"""

from __future__ import annotations

import copy
import math
import pickle
import weakref
from datetime import date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InvalidDataError, Quote, SessionData, Tick
from sessiondata._models import _trusted_bar_by_descriptors, trusted_bar

TS = datetime(2025, 1, 2, 9, 30)
BAR_OK: dict[str, Any] = {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100}
TICK_OK: dict[str, Any] = {"price": 10.0, "size": 5}
QUOTE_OK: dict[str, Any] = {"bid": 10.0, "ask": 10.1, "bid_size": 3, "ask_size": 4}

BAD_PRICES = [math.nan, math.inf, -math.inf, 0, 0.0, -0.0, -1, -1.5]
BAD_AMOUNTS = [-1, -0.5, -math.inf, math.inf, math.nan]


def _assert_names(err: pytest.ExceptionInfo[InvalidDataError], field: str, value: object) -> None:
    msg = str(err.value)
    assert field in msg, msg
    assert repr(value) in msg or str(value) in msg, msg


def test_invalid_data_error_is_a_value_error() -> None:
    assert issubclass(InvalidDataError, ValueError)


# ------------------------------------------------------------------------------------------- Bar


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", BAD_PRICES, ids=repr)
def test_bar_rejects_impossible_price(field: str, value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar("AAPL", TS, **{**BAR_OK, field: value})
    _assert_names(err, field, value)


@pytest.mark.parametrize("value", BAD_AMOUNTS, ids=repr)
def test_bar_rejects_impossible_volume(value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar("AAPL", TS, **{**BAR_OK, "volume": value})
    _assert_names(err, "volume", value)


def test_bar_accepts_zero_volume() -> None:
    assert Bar("AAPL", TS, **{**BAR_OK, "volume": 0}).volume == 0


def test_bar_rejects_high_below_low() -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar("AAPL", TS, open=10.0, high=9.5, low=10.5, close=10.0, volume=1)
    msg = str(err.value)
    for part in ("high", "9.5", "low", "10.5"):
        assert part in msg, msg


@pytest.mark.parametrize(
    ("field", "value"), [("open", 11.5), ("open", 8.5), ("close", 11.01), ("close", 8.99)]
)
def test_bar_rejects_open_or_close_outside_range(field: str, value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar("AAPL", TS, **{**BAR_OK, field: value})
    _assert_names(err, field, value)


@pytest.mark.parametrize("symbol", ["", "   "])
def test_bar_rejects_empty_symbol(symbol: str) -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar(symbol, TS, **BAR_OK)
    _assert_names(err, "symbol", symbol)


@pytest.mark.parametrize(
    "value", [date(2025, 1, 2), "2025-01-02T09:30:00", 1735810200, None], ids=lambda v: type(v).__name__
)
def test_bar_rejects_timestamp_that_is_not_a_datetime(value: object) -> None:
    with pytest.raises(InvalidDataError) as err:
        Bar("AAPL", value, **BAR_OK)  # type: ignore[arg-type]
    _assert_names(err, "timestamp", value)


def test_bar_edge_values_accepted() -> None:
    # open == high == low == close is a flat minute; tiny positive prices are real (penny stocks, crypto).
    flat = Bar("X", TS, 5e-9, 5e-9, 5e-9, 5e-9, 0)
    assert flat.low == flat.high
    Bar("X", TS, open=9.0, high=11.0, low=9.0, close=11.0, volume=1)  # open at low, close at high


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-5, max_value=50),
            st.sampled_from([9.0, 10.0, 11.0]),
        ),
        min_size=5,
        max_size=5,
    )
)
def test_bar_valid_exactly_when_contract_says(values: list[float]) -> None:
    o, h, lo, c, v = values
    prices_ok = all(math.isfinite(p) and p > 0 for p in (o, h, lo, c))
    valid = prices_ok and math.isfinite(v) and v >= 0 and lo <= h and lo <= o <= h and lo <= c <= h
    if valid:
        bar = Bar("aapl", TS, o, h, lo, c, v)
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (o, h, lo, c, v)
    else:
        with pytest.raises(InvalidDataError):
            Bar("aapl", TS, o, h, lo, c, v)


# ------------------------------------------------------------------------------------------ Tick


@pytest.mark.parametrize("value", BAD_PRICES, ids=repr)
def test_tick_rejects_impossible_price(value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Tick("AAPL", TS, **{**TICK_OK, "price": value})
    _assert_names(err, "price", value)


@pytest.mark.parametrize("value", BAD_AMOUNTS, ids=repr)
def test_tick_rejects_impossible_size(value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Tick("AAPL", TS, **{**TICK_OK, "size": value})
    _assert_names(err, "size", value)


def test_tick_zero_size_accepted() -> None:
    assert Tick("AAPL", TS, 10.0, 0).size == 0


def test_tick_rejects_empty_symbol_and_bad_timestamp() -> None:
    with pytest.raises(InvalidDataError) as err:
        Tick("", TS, **TICK_OK)
    _assert_names(err, "symbol", "")
    with pytest.raises(InvalidDataError) as err2:
        Tick("AAPL", date(2025, 1, 2), **TICK_OK)  # type: ignore[arg-type]
    _assert_names(err2, "timestamp", date(2025, 1, 2))


# ----------------------------------------------------------------------------------------- Quote


@pytest.mark.parametrize("field", ["bid", "ask"])
@pytest.mark.parametrize("value", BAD_PRICES, ids=repr)
def test_quote_rejects_impossible_price(field: str, value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Quote("AAPL", TS, **{**QUOTE_OK, field: value})
    _assert_names(err, field, value)


@pytest.mark.parametrize("field", ["bid_size", "ask_size"])
@pytest.mark.parametrize("value", BAD_AMOUNTS, ids=repr)
def test_quote_rejects_impossible_size(field: str, value: float) -> None:
    with pytest.raises(InvalidDataError) as err:
        Quote("AAPL", TS, **{**QUOTE_OK, field: value})
    _assert_names(err, field, value)


def test_quote_crossed_and_zero_sizes_accepted() -> None:
    crossed = Quote("AAPL", TS, bid=10.2, ask=10.0, bid_size=0, ask_size=0)
    assert crossed.bid > crossed.ask
    locked = Quote("AAPL", TS, bid=10.0, ask=10.0, bid_size=1, ask_size=1)
    assert locked.bid == locked.ask


def test_quote_rejects_empty_symbol_and_bad_timestamp() -> None:
    with pytest.raises(InvalidDataError) as err:
        Quote("", TS, **QUOTE_OK)
    _assert_names(err, "symbol", "")
    with pytest.raises(InvalidDataError) as err2:
        Quote("AAPL", "09:30", **QUOTE_OK)  # type: ignore[arg-type]
    _assert_names(err2, "timestamp", "09:30")


# --------------------------------------------------------------------------------- value behaviour


def _records(symbol: str, ts: datetime) -> list[Any]:
    return [
        Bar(symbol, ts, **BAR_OK),
        Tick(symbol, ts, **TICK_OK),
        Quote(symbol, ts, **QUOTE_OK),
    ]


def test_field_order_matches_contract() -> None:
    assert [f.name for f in attrs.fields(Bar)] == [
        "symbol",
        "timestamp",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    assert [f.name for f in attrs.fields(Tick)] == ["symbol", "timestamp", "price", "size"]
    assert [f.name for f in attrs.fields(Quote)] == [
        "symbol",
        "timestamp",
        "bid",
        "ask",
        "bid_size",
        "ask_size",
    ]
    bar = Bar("A", TS, 1.0, 2.0, 0.5, 1.5, 7)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (1.0, 2.0, 0.5, 1.5, 7)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_symbol_upper_cased(index: int) -> None:
    assert _records("aApl", TS)[index].symbol == "AAPL"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_records_are_frozen(index: int) -> None:
    rec = _records("AAPL", TS)[index]
    with pytest.raises(AttributeError):
        rec.symbol = "MSFT"
    with pytest.raises(AttributeError):
        rec.timestamp = TS + timedelta(minutes=1)
    assert rec.symbol == "AAPL"
    assert rec.timestamp == TS
    assert not hasattr(rec, "__dict__"), "records use slots"


@pytest.mark.parametrize("index", [0, 1, 2])
def test_records_equal_by_value_and_hashable(index: int) -> None:
    a = _records("aapl", TS)[index]
    b = _records("AAPL", TS)[index]
    c = _records("AAPL", TS + timedelta(minutes=1))[index]
    assert a == b
    assert a is not b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1


def test_naive_and_aware_timestamps_both_accepted_as_given() -> None:
    aware = datetime(2025, 1, 2, 14, 30, tzinfo=timezone.utc)
    assert Bar("A", aware, **BAR_OK).timestamp is aware
    assert Bar("A", TS, **BAR_OK).timestamp.tzinfo is None


# --- timestamps at the ends of what datetime can hold -----------------------------------------------------

UTC_MINUS_12 = timezone(timedelta(hours=-12))
EDGE_TIMESTAMPS = [
    datetime(1, 1, 1, 9, 30, tzinfo=timezone.utc),  # before datetime.min in New York
    datetime(1, 1, 1, 9, 30),
    datetime(9999, 12, 31, 14, 0, tzinfo=UTC_MINUS_12),  # after datetime.max in UTC
    datetime(9999, 12, 31, 23, 59),
    datetime.min,
    datetime.max,
]


@pytest.mark.parametrize("ts", EDGE_TIMESTAMPS, ids=str)
def test_records_refuse_the_first_and_last_years(ts: datetime) -> None:
    with pytest.raises(InvalidDataError, match=r"timestamp.*years 2-9998"):
        Bar("SPY", ts, 10.0, 11.0, 9.0, 10.0, 100)
    with pytest.raises(InvalidDataError, match="timestamp"):
        Tick("SPY", ts, 10.0, 1)
    with pytest.raises(InvalidDataError, match="timestamp"):
        Quote("SPY", ts, 10.0, 10.1, 1, 1)


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2, 1, 1, 9, 30, tzinfo=timezone.utc),
        datetime(2, 1, 1, 0, 0),
        datetime(9998, 12, 31, 23, 59, tzinfo=UTC_MINUS_12),
        datetime(9998, 12, 31, 15, 59),
    ],
    ids=str,
)
def test_the_store_takes_the_years_just_inside(ts: datetime) -> None:
    store = SessionData()
    store.add_bar("SPY", Bar("SPY", ts, 10.0, 11.0, 9.0, 10.0, 100))
    store.add_tick("SPY", Tick("SPY", ts, 10.0, 1))
    store.end_session()
    assert store.get_bar_count("SPY") == 1


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(0.01, 1e6),
    spread=st.floats(0, 1e3),
    volume=st.one_of(st.integers(0, 10**12), st.floats(0, 1e12)),
    aware=st.booleans(),
)
def test_trusted_bar_is_the_bar_the_constructor_builds(
    low: float, spread: float, volume: float, aware: bool
) -> None:
    ts = datetime(2024, 3, 4, 9, 30, tzinfo=timezone.utc if aware else None)
    fields = ("SPY", ts, low, low + spread, low, low + spread, volume)
    # The builder this Python uses, and the one for Pythons that refuse the `__class__` assignment.
    for make in (trusted_bar, _trusted_bar_by_descriptors):
        _check_trusted(make(*fields), Bar(*fields))


def _check_trusted(made: Bar, built: Bar) -> None:
    assert type(made) is Bar
    assert made == built
    assert hash(made) == hash(built)
    assert attrs.astuple(made) == attrs.astuple(built)
    assert repr(made) == repr(built)
    assert pickle.loads(pickle.dumps(made)) == built
    assert copy.copy(made) == built
    assert weakref.ref(made)() is made
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.close = 1.0  # type: ignore[misc]
