"""The per-chunk Arrow batches behind `to_arrow`: every version's table equals one built from scratch from
its bars, whatever was written after it, and callers cannot change the shared buffers."""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, SessionData, SymbolSessionData, clear_column_cache, store_to_arrow, to_arrow

pa = pytest.importorskip("pyarrow")

T0 = datetime(2024, 1, 2, 9, 30)
FIELDS = ("open", "high", "low", "close", "volume")


def _bar(minute: int, bump: float = 0.0, tz: Any = None) -> Bar:
    base = 100.0 + (minute % 17) * 0.25 + bump
    t = T0.replace(tzinfo=tz) + timedelta(minutes=minute)
    return Bar("SPY", t, base, base + 1.0, base - 1.0, base + 0.5, 1_000 + minute + bump)


def _from_scratch(bars: list[Bar], zone: str | None) -> Any:
    """The table `to_arrow` must give, built directly from the bar objects."""
    aware = bool(bars) and bars[0].timestamp.utcoffset() is not None
    ts = pa.array([b.timestamp for b in bars], pa.timestamp("us", zone if aware else None))
    columns = {"timestamp": ts.cast(pa.timestamp("ns", (zone or "UTC") if aware else None))}
    columns.update({f: pa.array([float(getattr(b, f)) for b in bars], pa.float64()) for f in FIELDS})
    return pa.table(columns)


def _snap(store: SessionData) -> SymbolSessionData:
    snap = store.get_symbol_data("SPY")
    assert snap is not None
    return snap


def _check(snap: SymbolSessionData, n: int | None, zone: str | None) -> None:
    bars = list(snap.bars_1m) if n is None else snap.get_last_n_bars(n)
    got = to_arrow(snap, n=n, tz=zone)
    assert got.equals(_from_scratch(bars, zone)), (n, zone)


writes = st.lists(
    st.tuples(st.sampled_from(["append", "correct", "insert"]), st.integers(0, 10_000), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=40, deadline=None)
@given(
    initial=st.integers(1, 1_500),
    ops=writes,
    n=st.one_of(st.none(), st.integers(1, 1_600)),
    aware=st.booleans(),
    read_old_first=st.booleans(),
)
def test_every_version_reads_as_a_table_built_from_scratch(
    initial: int, ops: list[tuple[str, int, bool]], n: int | None, aware: bool, read_old_first: bool
) -> None:
    clear_column_cache()
    tz = timezone.utc if aware else None
    zone = "America/New_York" if aware else None
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [_bar(2 * i, tz=tz) for i in range(initial)])
    top = 2 * initial
    versions = [_snap(store)]
    for what, at, read_now in ops:
        if what == "append":
            store.add_bar("SPY", _bar(top, tz=tz))
            top += 1
        elif what == "correct":  # replaces a stored bar (even minutes below 2 * initial exist)
            store.add_bar("SPY", _bar(2 * (at % initial), bump=0.125, tz=tz))
        else:  # a late bar into a gap (or a correction of one inserted before)
            store.add_bar("SPY", _bar(2 * (at % initial) + 1, tz=tz))
        versions.append(_snap(store))
        if read_now and not read_old_first:
            _check(versions[-1], n, zone)
    # Old versions read (first, or again) after every later write: their chunks' buffers were filled
    # further by newer versions in between.
    for snap in versions if read_old_first else reversed(versions):
        _check(snap, n, zone)
        _check(snap, n, None if not aware else "UTC")


def test_the_shared_buffers_are_read_only() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [_bar(i) for i in range(600)])
    table = to_arrow(_snap(store))
    for column in table.columns:
        for chunk in column.chunks:
            buffer = chunk.buffers()[1]
            assert not buffer.is_mutable
            with pytest.raises(TypeError):
                memoryview(buffer)[0] = 0


def test_a_zone_object_and_several_symbols_give_the_same_values() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [_bar(i, tz=timezone.utc) for i in range(1_100)])
    one = store_to_arrow(store, "SPY", tz=timezone(timedelta(hours=-5)))
    assert one.schema.field("timestamp").type == pa.timestamp("ns", "-05:00")
    both = store_to_arrow(store, ["SPY"], tz="UTC")
    assert both.drop_columns(["symbol"]).equals(to_arrow(_snap(store), tz="UTC"))
    assert both.column("close").num_chunks == 1


def test_concurrent_readers_get_correct_tables_while_a_writer_appends() -> None:
    store = SessionData(derived_intervals=())
    store.add_bars_batch("SPY", [_bar(i) for i in range(400)])
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                _check(_snap(store), 390, None)
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)
            stop.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=reader) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for i in range(400, 1_400):
            store.add_bar("SPY", _bar(i))
            if stop.is_set():
                break
    finally:
        stop.set()
        sys.setswitchinterval(old)
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "reader did not stop"
    assert not errors, errors[0]
