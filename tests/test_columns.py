"""Columnar reads (`sessiondata._columns`): columns equal the records they come from, for every series and
range form, never go stale across snapshot versions, and cannot be used to change the store."""

from __future__ import annotations

import calendar
import gc
import random
import sys
import threading
import weakref
from array import array
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, Quote, SessionData, SymbolSessionData, Tick
from sessiondata import _columns as C

T0 = datetime(2024, 1, 2, 9, 30)
NY = timezone(timedelta(hours=-5))


def make_bar(i: int, *, t0: datetime = T0, symbol: str = "SPY", bump: float = 0.0) -> Bar:
    base = 100.0 + (i % 17) * 0.25 + bump
    return Bar(symbol, t0 + timedelta(minutes=i), base, base + 1.0, base - 1.0, base + 0.5, 1_000 + i)


def make_tick(i: int, t0: datetime = T0) -> Tick:
    return Tick("SPY", t0 + timedelta(seconds=i // 2), 50.0 + i * 0.01, float(i % 5))


def make_quote(i: int, t0: datetime = T0) -> Quote:
    return Quote("SPY", t0 + timedelta(seconds=i), 10.0 + i * 0.01, 10.02 + i * 0.01, i % 3, 100 + i)


def expected_ns(ts: datetime) -> int:
    """Epoch nanoseconds by an independent route: naive values are wall clock read as UTC."""
    tt = ts.utctimetuple() if ts.utcoffset() is not None else ts.timetuple()
    return calendar.timegm(tt) * 1_000_000_000 + ts.microsecond * 1_000


def field_values(items: Sequence[Any], field: str) -> list[Any]:
    if field == "timestamp":
        return [expected_ns(x.timestamp) for x in items]
    return [float(getattr(x, field)) for x in items]


@pytest.fixture
def filled() -> SessionData:
    """1,300 1-minute bars (three chunks and a part), derived 5m/15m bars, ticks and quotes."""
    store = SessionData()
    store.add_bars_batch("SPY", [make_bar(i) for i in range(1_300)])
    store.add_ticks_batch("SPY", [make_tick(i) for i in range(700)])
    store.add_quotes_batch("SPY", [make_quote(i) for i in range(600)])
    return store


def snap_of(store: SessionData, symbol: str = "SPY") -> SymbolSessionData:
    snap = store.get_symbol_data(symbol)
    assert snap is not None
    return snap


def series_items(snap: SymbolSessionData, series: C.SeriesSpec) -> list[Any]:
    if series == "ticks":
        return list(snap.ticks)
    if series == "quotes":
        return list(snap.quotes)
    assert isinstance(series, int)
    return list(snap.bars_1m if series == 1 else snap.bars_derived[series])


KINDS: list[tuple[C.SeriesSpec, str]] = [(1, "bars"), (5, "bars"), (15, "bars"), ("ticks", "ticks")]
KINDS.append(("quotes", "quotes"))


# --------------------------------------------------------------------- equality


@pytest.mark.parametrize(("series", "kind"), KINDS)
def test_every_field_and_range_form_matches_the_records(
    filled: SessionData, series: C.SeriesSpec, kind: str
) -> None:
    snap = snap_of(filled)
    items = series_items(snap, series)
    assert items, "fixture must fill every series"
    mid = items[len(items) // 3].timestamp
    late = items[2 * len(items) // 3].timestamp
    forms: list[tuple[dict[str, Any], list[Any]]] = [
        ({}, items),
        ({"n": 390}, items[-390:]),
        ({"n": 1}, items[-1:]),
        ({"n": len(items) + 10}, items),
        ({"n": 0}, []),
        ({"n": -3}, []),
        ({"start": mid}, [x for x in items if x.timestamp >= mid]),
        ({"end": mid}, [x for x in items if x.timestamp < mid]),
        ({"start": mid, "end": late}, [x for x in items if mid <= x.timestamp < late]),
        ({"start": late, "end": mid}, []),
        ({"start": T0 - timedelta(days=1), "end": T0}, []),
    ]
    for kwargs, want in forms:
        for field in ("timestamp", *C.COLUMN_FIELDS[kind]):
            col = C.get_column(snap, field, series=series, **kwargs)
            assert col.typecode == ("q" if field == "timestamp" else "d")
            assert col.tolist() == field_values(want, field), (kwargs, field)
        assert C.get_timestamps(snap, series=series, **kwargs) == [x.timestamp for x in want]


def test_store_conveniences_read_the_current_snapshot(filled: SessionData) -> None:
    snap = snap_of(filled)
    assert C.store_column(filled, "spy", "close", n=5) == C.get_column(snap, "close", n=5)
    assert C.store_timestamps(filled, "SPY", series=5, n=3) == C.get_timestamps(snap, series=5, n=3)
    filled.add_bar("SPY", make_bar(1_300))
    assert C.store_column(filled, "SPY", "close", n=1).tolist() == [make_bar(1_300).close]


def test_unknown_symbol_and_none_snapshot_give_empty_results(filled: SessionData) -> None:
    assert C.store_column(filled, "NOPE", "close") == array("d")
    assert C.store_column(filled, "NOPE", "timestamp", series="ticks") == array("q")
    assert C.store_timestamps(filled, "NOPE", n=5) == []
    assert C.get_column(None, "bid", series="quotes") == array("d")
    assert C.get_timestamps(None) == []


def test_bad_arguments_are_value_errors(filled: SessionData) -> None:
    snap = snap_of(filled)
    with pytest.raises(ValueError, match="no field 'price'"):
        C.get_column(snap, "price")
    with pytest.raises(ValueError, match="no field 'close'"):
        C.get_column(snap, "close", series="ticks")
    with pytest.raises(ValueError, match="not configured"):
        C.get_column(snap, "close", series=7)
    with pytest.raises(ValueError, match="not configured"):
        C.store_column(filled, "UNKNOWN", "close", series=7)  # interval checked before the symbol
    with pytest.raises(ValueError, match="series must be"):
        C.get_column(snap, "close", series="trades")
    with pytest.raises(ValueError, match="not both"):
        C.get_column(snap, "close", n=3, start=T0)
    with pytest.raises(ValueError, match="n must be an int"):
        C.get_column(snap, "close", n=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start must be a datetime"):
        C.get_column(snap, "close", start="2024-01-02")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        C.get_column(snap, "close", start=T0.replace(tzinfo=timezone.utc))


def test_aware_timestamps_are_true_instants() -> None:
    store = SessionData()
    t0 = datetime(2024, 3, 8, 9, 30, tzinfo=NY)
    bars = [make_bar(i, t0=t0) for i in range(5)]
    store.add_bars_batch("SPY", bars)
    got = C.store_column(store, "SPY", "timestamp").tolist()
    assert got == [int(b.timestamp.timestamp()) * 1_000_000_000 for b in bars]
    assert got == [expected_ns(b.timestamp.astimezone(timezone.utc)) for b in bars]


def test_sub_second_timestamps_are_exact() -> None:
    store = SessionData()
    t0 = datetime(2024, 1, 2, 9, 30, 0, 123_456)
    store.add_ticks_batch("SPY", [make_tick(i, t0) for i in range(4)])
    got = C.store_column(store, "SPY", "timestamp", series="ticks").tolist()
    assert got == [expected_ns(t.timestamp) for t in store.get_ticks("SPY")]
    assert got[0] % 1_000_000_000 == 123_456_000


def test_integer_valued_prices_come_back_as_floats() -> None:
    store = SessionData()
    store.add_bar("SPY", Bar("SPY", T0, 10, 12, 9, 11, 7))
    assert C.store_column(store, "SPY", "high").tolist() == [12.0]
    assert C.store_column(store, "SPY", "volume").tolist() == [7.0]


# ------------------------------------------------------------ caching and staleness


def test_old_snapshots_keep_their_columns_after_appends_corrections_and_inserts() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [make_bar(i) for i in range(0, 1_200, 2)])
    history: list[tuple[SymbolSessionData, list[float]]] = []

    def read_and_remember() -> None:
        snap = store.get_symbol_data("SPY")
        assert snap is not None
        col = C.get_column(snap, "close", n=700).tolist()
        assert col == [b.close for b in snap.get_last_n_bars(700)]
        history.append((snap, col))

    rng = random.Random(3)
    for step in range(300):
        read_and_remember()
        what = step % 3
        if what == 0:  # append
            store.add_bar("SPY", make_bar(1_200 + step))
        elif what == 1:  # correction of a stored bar
            i = 2 * rng.randrange(600)
            store.add_bar("SPY", make_bar(i, bump=rng.choice((0.125, 0.375))))
        else:  # late bar into a gap
            store.add_bar("SPY", make_bar(2 * rng.randrange(600) + 1))
    read_and_remember()
    for snap, col in history:
        assert C.get_column(snap, "close", n=700).tolist() == col
        assert C.get_column(snap, "close").tolist() == [b.close for b in snap.bars_1m]


def test_repeated_numpy_read_of_an_unchanged_snapshot_returns_the_same_array(filled: SessionData) -> None:
    np = pytest.importorskip("numpy")
    snap = snap_of(filled)
    first = C.to_numpy(snap, "close", n=390)
    assert C.to_numpy(snap, "close", n=390) is first
    assert C.to_numpy(snap, "close", start=snap.bars_1m[len(snap.bars_1m) - 390].timestamp) is first
    filled.add_bar("SPY", make_bar(1_300))
    newer = C.store_to_numpy(filled, "SPY", "close", n=390)
    assert newer is not first
    np.testing.assert_array_equal(newer[:-1], first[1:])


def test_the_chunk_cache_does_not_keep_dead_series_alive() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [make_bar(i) for i in range(600)])
    probe = weakref.ref(store.get_last_n_bars("SPY", 1)[0])
    assert C.store_column(store, "SPY", "close").tolist()
    del store
    gc.collect()
    # Reading enough other chunks triggers a sweep (the cache sweeps whenever it has doubled, from at least
    # 64 entries), which drops entries whose chunk only the cache holds.
    others = []
    for k in range(2 * len(C._registry) + 70):
        s = SessionData(derived_intervals=())
        s.add_bar("SPY", make_bar(k))
        C.store_column(s, "SPY", "close")
        others.append(s)
    gc.collect()
    assert probe() is None


# ----------------------------------------------------------------- immutability


def test_array_copies_belong_to_the_caller(filled: SessionData) -> None:
    col = C.store_column(filled, "SPY", "close", n=10)
    want = col.tolist()
    col[0] = -1.0
    col.append(5.0)
    assert C.store_column(filled, "SPY", "close", n=10).tolist() == want
    assert filled.get_last_n_bars("SPY", 10)[0].close == want[0]


def test_numpy_arrays_are_read_only_for_good(filled: SessionData) -> None:
    pytest.importorskip("numpy")
    snap = snap_of(filled)
    arrays = [C.to_numpy(snap, "close", n=400), C.to_numpy(snap, "timestamp", series=5)]
    arrays += list(C.to_numpy(snap, series="quotes").values())
    arrays.append(C.to_numpy(snap, n=50, structured=True))
    for arr in arrays:
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        with pytest.raises(ValueError):
            arr[:1] = arr[:1]


def test_dataframes_are_copies(filled: SessionData) -> None:
    pytest.importorskip("pandas")
    frame = C.store_to_dataframe(filled, "SPY", n=5)
    want = frame["close"].tolist()
    frame.loc[frame.index[0], "close"] = -1.0
    assert C.store_to_dataframe(filled, "SPY", n=5)["close"].tolist() == want
    assert C.store_to_numpy(filled, "SPY", "close", n=5).tolist() == want


# ----------------------------------------------------------------------- numpy


def test_numpy_forms(filled: SessionData) -> None:
    np = pytest.importorskip("numpy")
    snap = snap_of(filled)
    bars = snap.get_last_n_bars(390, 5)
    one = C.to_numpy(snap, "high", series=5, n=390)
    assert one.dtype == np.float64
    assert one.tolist() == [b.high for b in bars]
    every = C.to_numpy(snap, series=5, n=390)
    assert list(every) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert every["timestamp"].dtype == np.dtype("datetime64[ns]")
    naive = every["timestamp"].astype("datetime64[us]").tolist()
    assert naive == [b.timestamp for b in bars]  # naive in, naive out
    chosen = C.to_numpy(snap, ["volume", "close"], series=5, n=390)
    assert list(chosen) == ["volume", "close"]
    rec = C.to_numpy(snap, series=5, n=390, structured=True)
    assert rec.dtype.names == ("timestamp", "open", "high", "low", "close", "volume")
    for name in rec.dtype.names:
        np.testing.assert_array_equal(rec[name], every[name])
    ticks = C.to_numpy(snap, ["price", "size"], series="ticks", structured=True)
    assert ticks["size"].tolist() == [t.size for t in snap.ticks]
    empty = C.to_numpy(None, series="quotes")
    assert all(len(v) == 0 for v in empty.values())
    assert C.store_to_numpy(filled, "NOPE", "close").shape == (0,)
    assert len(C.to_numpy(snap, "close", n=0)) == 0
    with pytest.raises(ValueError, match="duplicates"):
        C.to_numpy(snap, ["close", "close"])
    with pytest.raises(ValueError, match="no field"):
        C.to_numpy(snap, "bid")


def test_numpy_missing_is_a_clear_import_error(monkeypatch: pytest.MonkeyPatch, filled: SessionData) -> None:
    monkeypatch.setattr(C, "_numpy_kit", None)
    monkeypatch.setattr(C, "_modules", {})
    monkeypatch.setitem(sys.modules, "numpy", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"sessiondata\[numpy\]"):
        C.store_to_numpy(filled, "SPY", "close")
    with pytest.raises(ImportError, match=r"sessiondata\[pandas\]"):
        C.store_to_dataframe(filled, "SPY")
    assert C.store_column(filled, "SPY", "close", n=2).tolist()  # the no-extra path still works


# ----------------------------------------------------------------------- pandas


def test_dataframe_of_one_symbol(filled: SessionData) -> None:
    pd = pytest.importorskip("pandas")
    snap = snap_of(filled)
    frame = C.to_dataframe(snap, series=15)
    bars = list(snap.bars_derived[15])
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.index.name == "timestamp"
    assert frame.index.tz is None
    assert list(frame.index) == [pd.Timestamp(b.timestamp) for b in bars]
    assert frame["low"].tolist() == [b.low for b in bars]
    quotes = C.store_to_dataframe(filled, "SPY", series="quotes", n=4)
    assert quotes["ask_size"].tolist() == [float(q.ask_size) for q in snap.get_quotes()[-4:]]
    empty = C.store_to_dataframe(filled, "NOPE", series="ticks")
    assert list(empty.columns) == ["price", "size"]
    assert len(empty) == 0
    with pytest.raises(ValueError, match="naive"):
        C.to_dataframe(snap, tz="America/New_York")


def test_dataframe_of_aware_data_is_utc_or_the_given_zone() -> None:
    pd = pytest.importorskip("pandas")
    store = SessionData()
    t0 = datetime(2024, 3, 8, 9, 30, tzinfo=NY)
    store.add_bars_batch("SPY", [make_bar(i, t0=t0) for i in range(3)])
    frame = C.store_to_dataframe(store, "SPY")
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp(t0)
    local = C.store_to_dataframe(store, "SPY", tz="America/New_York")
    assert local.index[0].hour == 9
    assert local.index[0] == pd.Timestamp(t0)


def test_dataframe_of_several_symbols(filled: SessionData) -> None:
    pytest.importorskip("pandas")
    filled.add_bars_batch("QQQ", [make_bar(i, symbol="QQQ", bump=3.0) for i in range(20)])
    frame = C.store_to_dataframe(filled, ["qqq", "SPY", "NOPE"], n=10)
    assert frame.index.names == ["symbol", "timestamp"]
    assert list(frame.index.get_level_values("symbol").unique()) == ["QQQ", "SPY"]
    assert frame.loc["QQQ"]["close"].tolist() == [b.close for b in filled.get_last_n_bars("QQQ", 10)]
    assert frame.loc["SPY"]["close"].tolist() == [b.close for b in filled.get_last_n_bars("SPY", 10)]
    assert len(C.store_to_dataframe(filled, [])) == 0
    with pytest.raises(ValueError, match="duplicates"):
        C.store_to_dataframe(filled, ["SPY", "spy"])


def test_dataframe_of_several_symbols_refuses_mixed_awareness(filled: SessionData) -> None:
    pytest.importorskip("pandas")
    filled.add_bar("AWARE", make_bar(0, symbol="AWARE", t0=T0.replace(tzinfo=timezone.utc)))
    with pytest.raises(ValueError, match="aware"):
        C.store_to_dataframe(filled, ["SPY", "AWARE"])
    utc_only = C.store_to_dataframe(filled, ["AWARE", "NOPE"], tz="America/New_York")
    assert str(utc_only.index.get_level_values("timestamp").tz) == "America/New_York"


# ------------------------------------------------------------ properties, threads


@st.composite
def bar_sets(draw: st.DrawFn) -> tuple[list[Bar], list[tuple[int | None, int | None, int | None]]]:
    minutes = draw(st.lists(st.integers(0, 3_000), min_size=0, max_size=1_400, unique=True))
    rng = random.Random(draw(st.integers(0, 2**32)))
    bars = []
    for m in minutes:
        low = rng.uniform(1.0, 500.0)
        high = low + rng.uniform(0.0, 5.0)
        bars.append(
            Bar(
                "SPY",
                T0 + timedelta(minutes=m),
                rng.uniform(low, high),
                high,
                low,
                rng.uniform(low, high),
                rng.choice((0, rng.randint(1, 10**9), rng.uniform(0, 1e6))),
            )
        )
    reads = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(-2, 1_500)),
                st.one_of(st.none(), st.integers(-10, 3_010)),
                st.one_of(st.none(), st.integers(-10, 3_010)),
            ),
            max_size=6,
        )
    )
    return bars, reads


@settings(max_examples=40, deadline=None)
@given(bar_sets())
def test_columns_equal_the_bars_for_random_bar_sets(
    case: tuple[list[Bar], list[tuple[int | None, int | None, int | None]]],
) -> None:
    bars, reads = case
    store = SessionData(derived_intervals=())
    snaps = []
    for i in range(0, len(bars), 97):  # out of order: the minutes were drawn in random order
        store.add_bars_batch("SPY", bars[i : i + 97])
        snaps.append(snap_of(store))
    for snap in snaps:
        stored = list(snap.bars_1m)
        for n, a, b in reads:
            kwargs: dict[str, Any]
            if n is not None:
                want, kwargs = (stored[-n:] if n > 0 else []), {"n": n}
            else:
                start = None if a is None else T0 + timedelta(minutes=a)
                end = None if b is None else T0 + timedelta(minutes=b)
                want = [
                    x
                    for x in stored
                    if (start is None or x.timestamp >= start) and (end is None or x.timestamp < end)
                ]
                kwargs = {"start": start, "end": end}
            for field in ("timestamp", "open", "volume"):
                assert C.get_column(snap, field, **kwargs).tolist() == field_values(want, field)


def test_concurrent_readers_see_consistent_columns_while_a_writer_appends() -> None:
    store = SessionData(derived_intervals=(5,))
    store.add_bars_batch("SPY", [make_bar(i) for i in range(400)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                snap = snap_of(store)
                for series in (1, 5):
                    want = snap.get_last_n_bars(390, series)
                    assert C.get_column(snap, "close", series=series, n=390).tolist() == [
                        b.close for b in want
                    ]
                    assert C.get_column(snap, "timestamp", series=series, n=390).tolist() == [
                        expected_ns(b.timestamp) for b in want
                    ]
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
            stop.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=reader) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for i in range(400, 1_600):
            store.add_bar("SPY", make_bar(i))
            if stop.is_set():
                break
    finally:
        stop.set()
        sys.setswitchinterval(old)
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "reader did not stop"
    assert not errors, errors[0]


def test_timestamps_outside_the_int64_nanosecond_range_are_a_clear_error() -> None:
    store = SessionData(derived_intervals=())
    far = datetime(2300, 1, 2, 9, 30)
    store.add_bars_batch("SPY", [make_bar(i, t0=far) for i in range(3)])
    with pytest.raises(ValueError, match="int64-nanosecond range"):
        C.store_column(store, "SPY", "timestamp")
    with pytest.raises(ValueError, match="int64-nanosecond range"):
        C.store_column(store, "SPY", "timestamp", n=1)
    assert C.store_column(store, "SPY", "close").tolist() == [b.close for b in store.get_bars("SPY")]
    assert C.store_timestamps(store, "SPY", n=1) == [far + timedelta(minutes=2)]


def test_reads_stay_correct_after_the_cache_is_cleared(filled: SessionData) -> None:
    want = [b.volume for b in filled.get_last_n_bars("SPY", 700)]
    assert C.store_column(filled, "SPY", "volume", n=700).tolist() == want
    C.clear_column_cache()
    assert C.store_column(filled, "SPY", "volume", n=700).tolist() == want
    filled.add_bar("SPY", make_bar(1_300))
    C.clear_column_cache()
    assert C.store_column(filled, "SPY", "volume", n=1).tolist() == [make_bar(1_300).volume]
