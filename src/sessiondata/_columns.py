"""Columnar reads for analysis code: one field of a series (or all of them) as arrays, in time order.

Indicator code works on closes, highs and volumes, not on lists of `Bar` objects. This module hands out the
fields of any series of a `SymbolSessionData` snapshot (1-minute bars, a derived interval, ticks, quotes)
as columns, for the last ``n`` items, a half-open ``[start, end)`` time range, or the whole series:

* with no extra dependency: `get_column` gives ``array.array('d')`` for every value field and
  ``array.array('q')`` for ``"timestamp"`` (epoch nanoseconds, see below); `get_timestamps` gives the
  ``datetime`` objects themselves. Every call returns a new array the caller owns.
* with ``sessiondata[numpy]``: `to_numpy` gives read-only ``float64`` / ``datetime64[ns]`` arrays, one field,
  a dict of fields, or a structured array. They are backed by immutable ``bytes``, so even
  ``arr.flags.writeable = True`` is refused: a caller can never change what another caller (or the store)
  sees.
* with ``sessiondata[pandas]``: `to_dataframe` (one snapshot, indexed by timestamp) and `store_to_dataframe`
  (one symbol, or several under a ``(symbol, timestamp)`` `MultiIndex`). Frames are fresh copies.
* with ``sessiondata[parquet]`` (pyarrow): `to_arrow` and `store_to_arrow`, the same columns and options as
  a `pyarrow.Table` (a ``symbol`` column instead of the index level for several symbols). Its arrays are
  slices of cached per-chunk Arrow batches (no copy, no Python objects) over buffers Arrow sees as
  read-only, so callers cannot change them either (see `_ArrowChunk`).

numpy, pandas and pyarrow are imported lazily, on the first call that needs them; without them those calls
raise `ImportError` naming the extra to install. The ``store_*`` functions take a `SessionData` and a symbol
and read its current snapshot (unknown symbol: empty result; invalid ``interval``: `ValueError`, checked
first).

Field types. Every value field (prices, volume, sizes) is ``float64`` / ``'d'``: the models type them as
``float`` and accept fractional volumes (crypto), and every integer a float64 holds exactly (below 2**53)
survives unchanged. The only integer column is the timestamp.

Timestamps as integers: nanoseconds since the epoch, computed exactly from the ``datetime`` (integer
arithmetic on its days, seconds and microseconds; no float rounding). An **aware** timestamp gives the true
instant (nanoseconds since 1970-01-01T00:00Z). A **naive** timestamp gives its wall-clock reading counted
from the naive 1970-01-01T00:00, i.e. it is read *as if* it were UTC, exactly as numpy's ``datetime64`` and
pandas' naive ``Timestamp`` represent naive values: converting back gives the same naive ``datetime``, and no
timezone (nor daylight-saving ambiguity) is invented. In pandas, naive series get a naive index and aware
series an index in UTC, or in ``tz=`` when given.

Caching, and why it is per chunk. A `Series` is a tuple of chunk lists (at most ``2 * LOAD`` items each)
shared between versions; an item below a chunk's length is never written again (see `series`). So the
column of a chunk's first ``L`` items is valid forever, for every version that shares the chunk. Columns are
therefore cached **per chunk** in a module registry keyed by the chunk's identity, and a version that only
appended extends the tail chunk's column by the new items (a copy of at most ``2 * LOAD`` floats, a
``memcpy``) instead of rebuilding anything. Reading the last ``n`` converts only items no earlier read
converted, then copies ``n`` values: O(n + new items), never O(series length).

Measured ("last 390 closes as numpy", a writer appending one bar between reads, so each read is the first
of a new version; ``benchmarks/bench_columns.py``, one run, ratios to the obvious
``np.array([b.close for b in get_last_n_bars(390)])``):

* a whole-series column cached in the series' per-version memo (`Series.memo`) and sliced: every append
  is a new version with an empty memo, so each read rebuilds the whole column: at 100,000 bars ~600x
  *slower* than the objects;
* converting the 390 objects on each read (all a per-version answer cache gives when each version is read
  once): no faster than the objects (0.7x);
* per-chunk columns (chosen): one conversion per appended bar plus two small copies: 6x faster than the
  objects, the same at 1,000 and 100,000 bars (ratio 0.9x); on an unchanged snapshot, 12x.

Arrow keeps its own per-chunk state in the same registry entry (`_ArrowChunk`): one buffer per field with
room for a full chunk, filled in place as items are first read, and one `pyarrow.RecordBatch` over them
built once per chunk. A table is then one ``slice`` of each spanned chunk's batch plus
``Table.from_batches``: no Arrow array is built per read. Measured (``benchmarks/bench_parquet.py``, a
writer appending one bar between reads of the last 390 bars, one run): rebuilding six arrays and a table
from the bytes columns on each read cost 1.43x ``to_numpy`` of every field; the per-chunk batches 0.44x.
The price is memory: a chunk's Arrow buffers have ``2 * LOAD`` slots whatever its length (48 KiB for bars).
One table of several chunks has chunked columns (`store_to_arrow` of several symbols combines them).

On top of that, read-only numpy answers are memoised per `Series` version (`Series.memo` and
`Series.remember`, the memo a `Series` offers for derived read-only views; keyed here under ``_CACHE_KEY``;
at most ``_MAX_CACHED`` answers per version): a repeated read of an unchanged snapshot returns the same
array object in O(1).

Registry lifetime. Each registry entry holds its chunk, so a chunk's ``id`` cannot be reused while its entry
exists (an ``id`` is only unique among living objects). Entries are swept when the registry has doubled since
the last sweep: an entry whose chunk is referenced by nothing but the entry (``sys.getrefcount``; CPython) is
dropped. So the cache keeps chunks of series that died only until the next sweep; `clear_column_cache`
drops it all at once (e.g. after `SessionData.clear_all` when no more reads follow).

Thread-safety. Every function may be called from any thread, concurrently, with no lock: it reads one
immutable snapshot and never waits for the writer or for other readers. Two readers may fill the same cache
slot concurrently; both build the same value from immutable data and the last write wins, which is
harmless. A cached value is stored only once complete (one reference assignment), so nobody ever reads one
half-built.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Union

from .core.series import LOAD, Series
from .core.snapshot import SymbolSessionData, check_interval

if TYPE_CHECKING:
    from .core.store import SessionData

__all__ = [
    "COLUMN_FIELDS",
    "SeriesSpec",
    "clear_column_cache",
    "column_cache_bytes",
    "get_column",
    "get_timestamps",
    "store_column",
    "store_timestamps",
    "store_to_arrow",
    "store_to_dataframe",
    "store_to_numpy",
    "to_arrow",
    "to_dataframe",
    "to_numpy",
]

logger = logging.getLogger("sessiondata.columns")

SeriesSpec = Union[int, str]  # noqa: UP007 - a runtime alias must work on 3.10
"""Which series to read: ``1`` (1-minute bars), a configured derived interval (``5``), ``"ticks"`` or
``"quotes"``."""

COLUMN_FIELDS: Mapping[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume"),
    "ticks": ("price", "size"),
    "quotes": ("bid", "ask", "bid_size", "ask_size"),
}
"""The value fields of each kind of series (each also has ``"timestamp"``)."""

TIMESTAMP = "timestamp"

_CACHE_KEY = "sessiondata._columns"
_NO_ITEMS: Series[Any] = Series()  # what an unknown symbol reads from
_MAX_CACHED = 16

# ----------------------------------------------------------------- timestamps

_EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NS_PER_SECOND = 1_000_000_000
_NS_MIN = datetime(1677, 9, 22)
_NS_MAX = datetime(2262, 4, 11)
_NS_DTYPE = "datetime64[ns]"


def _epoch_ns(ts: datetime) -> int:
    """Exact nanoseconds since the epoch; naive values are read as if UTC (see the module docstring)."""
    d: timedelta = ts - (_EPOCH_NAIVE if ts.utcoffset() is None else _EPOCH_UTC)
    return (d.days * 86_400 + d.seconds) * _NS_PER_SECOND + d.microseconds * 1_000


# ------------------------------------------------------------ chunk registry


class _ChunkColumns:
    """The columns built so far for one chunk list: ``{field: bytes of its first len(bytes) // 8 items}``.

    Columns are immutable ``bytes`` of native float64 / int64 values: slicing and joining them is one
    ``memcpy``, and they can back numpy arrays that nobody can make writeable. Holds the chunk so its
    ``id`` (the registry key) stays unique while the entry lives. A column is only ever replaced by a
    longer one.
    """

    __slots__ = ("arrow", "chunk", "cols")

    def __init__(self, chunk: list[Any]) -> None:
        self.chunk = chunk
        self.cols: dict[str, bytes] = {}
        self.arrow: _ArrowChunk | None = None  # built by the first Arrow read of this chunk


# id(chunk) -> its columns. Written by any reader without a lock: each write is one dict assignment of a
# complete value (see "Thread-safety" in the module docstring).
_registry: dict[int, _ChunkColumns] = {}
_sweep_at = 64
_getrefcount: Callable[[Any], int] | None = getattr(sys, "getrefcount", None)
_ITEM = 8  # bytes per value: float64 and int64 alike
_pack_float = struct.Struct("=d").pack
_pack_int = struct.Struct("=q").pack


def _refs_of_an_unshared_chunk() -> int:
    """What ``sys.getrefcount(entry.chunk)`` reports when only the entry holds the chunk (calibrated)."""
    if _getrefcount is None:
        return -1
    entry = _ChunkColumns([])  # kept in a variable, as in `_sweep`: the entry must outlive the call
    return _getrefcount(entry.chunk)


_UNSHARED_REFS = _refs_of_an_unshared_chunk()


def _sweep() -> None:
    """Drop entries whose chunk nothing else references; reset everything without refcounts. O(entries)."""
    global _sweep_at
    before = len(_registry)
    if _getrefcount is None:
        _registry.clear()
    else:
        for key, entry in _registry.copy().items():
            if _getrefcount(entry.chunk) <= _UNSHARED_REFS and _registry.get(key) is entry:
                _registry.pop(key, None)
    _sweep_at = max(64, 2 * len(_registry))
    logger.debug("column cache swept: %d -> %d chunks", before, len(_registry))


def clear_column_cache() -> None:
    """Forget every cached chunk column (they are rebuilt on demand). O(entries).

    Thread-safety: any thread; readers running concurrently just rebuild what they need.
    """
    global _sweep_at
    _registry.clear()
    _sweep_at = 64


def column_cache_bytes() -> int:
    """Bytes held by the process-wide column cache (its columns and entries, not the chunks it keeps
    alive, which belong to the series). O(entries). Thread-safety: any thread; a racy estimate."""
    total = sys.getsizeof(_registry)
    for entry in _registry.copy().values():
        cols = entry.cols.copy()
        total += sys.getsizeof(entry) + sys.getsizeof(cols) + sum(sys.getsizeof(c) for c in cols.values())
        arrow = entry.arrow
        if arrow is not None:
            total += arrow.nbytes()
    return total


def _convert(items: Sequence[Any], field: str) -> bytes:
    """``field`` of ``items`` as native float64 (int64 epoch ns for the timestamp) bytes. O(len(items))."""
    try:
        if field == TIMESTAMP:
            if len(items) == 1:
                return _pack_int(_epoch_ns(items[0].timestamp))
            return array("q", [_epoch_ns(x.timestamp) for x in items]).tobytes()
        if len(items) == 1:
            return _pack_float(getattr(items[0], field))
        return array("d", map(attrgetter(field), items)).tobytes()
    except (OverflowError, struct.error) as exc:
        bad = next((x for x in items if not _NS_MIN <= x.timestamp.replace(tzinfo=None) < _NS_MAX), None)
        if field == TIMESTAMP and bad is not None:
            raise ValueError(
                f"timestamp {bad.timestamp.isoformat()} is outside the int64-nanosecond range "
                "(years 1677-2262) of timestamp columns"
            ) from exc
        raise


def _column_of_chunk(chunk: list[Any], length: int, field: str) -> bytes:
    """A column of at least ``chunk[:length]``'s ``field`` (the caller slices it to ``length``).

    O(items not converted before) plus, when extending, a copy of at most ``2 * LOAD`` values.
    """
    key = id(chunk)
    entry = _registry.get(key)
    if entry is None or entry.chunk is not chunk:
        entry = _ChunkColumns(chunk)
        _registry[key] = entry
        if len(_registry) > _sweep_at:
            _sweep()
    cols = entry.cols
    col = cols.get(field)
    have = 0 if col is None else len(col) // _ITEM
    if col is not None and have >= length:
        return col
    fresh = _convert(chunk[have:length], field)
    if col is not None:
        fresh = col + fresh
    cols[field] = fresh  # one assignment of a complete value: never seen half-built
    return fresh


# ------------------------------------------------------------ request parsing


def _series_of(snapshot: SymbolSessionData, series: SeriesSpec) -> tuple[str, Series[Any]]:
    if type(series) is int and series == 1:
        return "bars", snapshot.bars_1m
    if series == "ticks":
        return "ticks", snapshot.ticks
    if series == "quotes":
        return "quotes", snapshot.quotes
    if isinstance(series, str):
        raise ValueError(f"series must be 1, a derived interval, 'ticks' or 'quotes', got {series!r}")
    interval = check_interval(series, snapshot.writer.derived_base)
    return "bars", snapshot.bars_1m if interval == 1 else snapshot.read_derived()[interval].bars


def _kind_without_snapshot(series: SeriesSpec, intervals: Iterable[int] | None) -> str:
    """The kind of ``series`` when there is no snapshot to ask (unknown symbol); validates it."""
    if series in ("ticks", "quotes"):
        return str(series)
    if isinstance(series, str):
        raise ValueError(f"series must be 1, a derived interval, 'ticks' or 'quotes', got {series!r}")
    if intervals is None:
        if type(series) is not int or series < 1:
            raise ValueError(f"interval must be a positive whole number of minutes, got {series!r}")
    else:
        check_interval(series, dict.fromkeys(intervals))
    return "bars"


_ALLOWED = {kind: frozenset((TIMESTAMP, *fields)) for kind, fields in COLUMN_FIELDS.items()}


def _check_fields(kind: str, fields: Iterable[str]) -> None:
    allowed = _ALLOWED[kind]
    for f in fields:
        if f not in allowed:
            raise ValueError(f"{kind} have no field {f!r}: choose from {(TIMESTAMP, *COLUMN_FIELDS[kind])}")


def _check_range(n: int | None, start: datetime | None, end: datetime | None) -> None:
    if start is None and end is None and (n is None or type(n) is int):
        return
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise ValueError(f"n must be an int or None, got {n!r}")
        if start is not None or end is not None:
            raise ValueError("give either n (the last n items) or start/end (a time range), not both")
    for name, value in (("start", start), ("end", end)):
        if value is not None and not isinstance(value, datetime):
            raise ValueError(f"{name} must be a datetime or None, got {value!r}")


def _positions(
    s: Series[Any], n: int | None, start: datetime | None, end: datetime | None
) -> tuple[int, int]:
    """``[lo, hi)`` item positions answering the request. O(log len)."""
    size = len(s)
    if n is not None:
        return max(0, size - n) if n > 0 else size, size
    if start is None and end is None:
        return 0, size
    first = s.first()
    if first is not None:
        aware = first.timestamp.utcoffset() is not None
        for name, bound in (("start", start), ("end", end)):
            if bound is not None and (bound.utcoffset() is not None) is not aware:
                raise ValueError(
                    f"{name}={bound.isoformat()} is {'aware' if not aware else 'naive'} but the series' "
                    f"timestamps are {'aware' if aware else 'naive'}"
                )
    lo = 0 if start is None else s.count_between(None, start)
    hi = size if end is None else s.count_between(None, end)
    return lo, max(lo, hi)


def _column_bytes(s: Series[Any], lo: int, hi: int, field: str) -> bytes:
    """``field`` of the items at ``[lo, hi)`` as native bytes. O(hi - lo + items not converted before)."""
    if lo >= hi:
        return b""
    # `Series.chunks_from`: the series' own chunks; its invariant that owned slots never change is what
    # makes per-chunk columns valid for every version.
    parts = []
    registry = _registry
    for chunk, base, length in s.chunks_from(lo):
        if base >= hi:
            break
        entry = registry.get(id(chunk))
        if entry is not None and entry.chunk is chunk:
            cols = entry.cols
            col = cols.get(field)
            if col is None:
                col = cols[field] = _convert(chunk[:length], field)
            elif len(col) < length * _ITEM:
                # Extending the tail chunk after appends: the hot path under a writer, kept inline.
                col = cols[field] = col + _convert(chunk[len(col) // _ITEM : length], field)
        else:
            col = _column_of_chunk(chunk, length, field)
        parts.append(col[(lo - base) * _ITEM if lo > base else 0 : min(hi - base, length) * _ITEM])
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _as_array(data: bytes, field: str) -> array[Any]:
    out = array("q" if field == TIMESTAMP else "d")
    out.frombytes(data)
    return out


# ------------------------------------------------------------------ no extras


def get_column(
    snapshot: SymbolSessionData | None,
    field: str,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> array[Any]:
    """One field of a series, oldest → newest, as a new ``array('d')`` (``array('q')`` for ``"timestamp"``,
    epoch nanoseconds).

    Range: the last ``n`` items (``n <= 0``: empty), or ``start <= timestamp < end`` (either bound may be
    ``None``), or, with neither, the whole series; ``n`` together with a bound is a `ValueError`. A
    ``snapshot`` of ``None`` (an unknown symbol) gives an empty array. Raises `ValueError` for an unknown
    ``series`` or ``field``, or a bound whose awareness differs from the series' timestamps.

    Complexity: O(k + log len) for k items returned, plus the conversion of items no earlier call converted
    (each chunk's column is built once and shared by every later snapshot holding that chunk).
    Thread-safety: any thread, lock-free, never waits.
    """
    _check_range(n, start, end)
    if snapshot is None:
        _check_fields(_kind_without_snapshot(series, None), (field,))
        return _as_array(b"", field)
    kind, s = _series_of(snapshot, series)
    _check_fields(kind, (field,))
    lo, hi = _positions(s, n, start, end)
    return _as_array(_column_bytes(s, lo, hi, field), field)


def get_timestamps(
    snapshot: SymbolSessionData | None,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[datetime]:
    """The ``datetime`` timestamps of a series (as stored, naive or aware), oldest → newest, as a new list.

    Range arguments as in `get_column`. O(k + log len). Thread-safety: any thread, lock-free.
    """
    _check_range(n, start, end)
    if snapshot is None:
        _kind_without_snapshot(series, None)
        return []
    _, s = _series_of(snapshot, series)
    lo, hi = _positions(s, n, start, end)
    return [x.timestamp for x in s[lo:hi]]


# --------------------------------------------------------------------- numpy


_modules: dict[str, Any] = {}


def _import(name: str, extra: str) -> Any:
    """``name`` imported on first use; `ImportError` naming the extra when it is not installed."""
    module = _modules.get(name)
    if module is not None:
        return module
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"this sessiondata function needs {name}, which is not installed: "
            f"pip install 'sessiondata[{extra}]'"
        ) from exc
    _modules[name] = module
    return module


class _Numpy:
    """numpy and the two dtypes every column uses, resolved once (a dtype object is cheaper to pass)."""

    __slots__ = ("float64", "np", "ns")

    def __init__(self, np: Any) -> None:
        self.np = np
        self.float64 = np.dtype(np.float64)
        self.ns = np.dtype(_NS_DTYPE)


_numpy_kit: _Numpy | None = None


def _numpy(extra: str) -> _Numpy:
    global _numpy_kit
    kit = _numpy_kit
    if kit is None:
        kit = _numpy_kit = _Numpy(_import("numpy", extra))
    return kit


def _remember(s: Series[Any], key: tuple[Any, ...], value: Any) -> None:
    # Two readers may race here; the loser's value is dropped, costing one rebuild later.
    s.remember(key, value, _MAX_CACHED)


def _cached_numpy(kit: _Numpy, s: Series[Any], lo: int, hi: int, field: str) -> Any:
    key = (_CACHE_KEY, field, lo, hi)
    got = s.memo(key)
    if got is not None:
        return got
    # Backed by immutable bytes: numpy refuses to make it writeable again.
    got = kit.np.frombuffer(_column_bytes(s, lo, hi, field), kit.ns if field == TIMESTAMP else kit.float64)
    _remember(s, key, got)
    return got


def _structured(kit: _Numpy, s: Series[Any], lo: int, hi: int, fields: Sequence[str]) -> Any:
    key = (_CACHE_KEY, "structured", tuple(fields), lo, hi)
    got = s.memo(key)
    if got is None:
        np = kit.np
        dtype = np.dtype([(f, kit.ns if f == TIMESTAMP else kit.float64) for f in fields])
        out = np.empty(hi - lo, dtype=dtype)
        for f in fields:
            out[f] = _cached_numpy(kit, s, lo, hi, f)
        got = np.frombuffer(out.tobytes(), dtype=dtype)
        _remember(s, key, got)
    return got


def _field_list(kind: str, fields: str | Sequence[str] | None) -> list[str]:
    if fields is None:
        return [TIMESTAMP, *COLUMN_FIELDS[kind]]
    chosen = [fields] if isinstance(fields, str) else list(fields)
    _check_fields(kind, chosen)
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"fields has duplicates: {chosen!r}")
    return chosen


def to_numpy(
    snapshot: SymbolSessionData | None,
    fields: str | Sequence[str] | None = None,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    structured: bool = False,
) -> Any:
    """Columns as read-only numpy arrays (needs ``sessiondata[numpy]``).

    ``fields`` a str: one array (``float64``; ``datetime64[ns]`` for ``"timestamp"``). ``fields`` a
    sequence, or ``None`` for ``"timestamp"`` plus every value field of the series: a ``{field: array}``
    dict, or with ``structured=True`` one structured array with those fields. Range arguments as in
    `get_column`; ``None`` snapshot: empty arrays. Arrays cannot be made writeable (``ValueError`` from
    numpy), so they can be shared freely; the same request on an unchanged snapshot returns the same arrays.

    Complexity: O(k + log len) plus conversion of items no earlier call converted; O(1) when this
    snapshot already answered the same request. Thread-safety: any thread, lock-free, never waits.
    """
    kit = _numpy_kit or _numpy("numpy")
    if type(n) is int and start is None and end is None and type(fields) is str and snapshot is not None:
        # The call indicator loops make on every bar (one field, last n of 1-minute bars), inlined: it
        # must cost a small fraction of building the array from objects.
        if type(series) is int and series == 1:
            s = snapshot.bars_1m
            allowed = _ALLOWED["bars"]
        else:
            kind, s = _series_of(snapshot, series)
            allowed = _ALLOWED[kind]
        if fields in allowed and not structured:
            size = len(s)
            lo = size - n if 0 < n < size else (0 if n > 0 else size)
            key = (_CACHE_KEY, fields, lo, size)
            got = s.memo(key)
            if got is not None:
                return got
            got = kit.np.frombuffer(
                _column_bytes(s, lo, size, fields), kit.ns if fields == TIMESTAMP else kit.float64
            )
            _remember(s, key, got)
            return got
    _check_range(n, start, end)
    if snapshot is None:
        kind = _kind_without_snapshot(series, None)
        chosen = _field_list(kind, fields)
        s = _NO_ITEMS
        lo = hi = 0
    else:
        kind, s = _series_of(snapshot, series)
        chosen = _field_list(kind, fields)
        lo, hi = _positions(s, n, start, end)
    if structured:
        return _structured(kit, s, lo, hi, chosen)
    if isinstance(fields, str):
        return _cached_numpy(kit, s, lo, hi, fields)
    return {f: _cached_numpy(kit, s, lo, hi, f) for f in chosen}


# -------------------------------------------------------------------- pandas


def _frame(pd: Any, kit: _Numpy, kind: str, s: Series[Any], lo: int, hi: int) -> tuple[Any, bool | None]:
    """A DataFrame of every field of ``s[lo:hi]`` indexed by naive or UTC timestamps, and the awareness."""
    fields = COLUMN_FIELDS[kind]
    first = s.first()
    aware = None if first is None else first.timestamp.utcoffset() is not None
    ns = _cached_numpy(kit, s, lo, hi, TIMESTAMP)
    index = pd.DatetimeIndex(ns, name=TIMESTAMP)
    if aware:
        index = index.tz_localize("UTC")
    data = {f: _cached_numpy(kit, s, lo, hi, f) for f in fields}
    return pd.DataFrame(data, index=index, columns=list(fields), copy=True), aware


def _localized(frame: Any, aware: bool | None, tz: Any, what: str) -> Any:
    if tz is None or aware is None:
        return frame
    if not aware:
        raise ValueError(f"tz={tz!r} given but {what} has naive timestamps (no instant to convert)")
    return frame.tz_convert(tz)


def to_dataframe(
    snapshot: SymbolSessionData | None,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tz: Any = None,
) -> Any:
    """A new pandas DataFrame of every field of a series, indexed by ``timestamp`` (needs
    ``sessiondata[pandas]``).

    Columns: ``open, high, low, close, volume`` (bars), ``price, size`` (ticks) or ``bid, ask, bid_size,
    ask_size`` (quotes), all ``float64``. The index is naive for naive data; for aware data it is in UTC,
    or converted to ``tz`` (e.g. ``"America/New_York"``) when given (``tz`` with naive data is a
    `ValueError`). Range arguments as in `get_column`. The frame owns its data: changing it changes nothing
    else.

    Complexity: O(k + log len) plus conversion of items no earlier call converted. Thread-safety: any
    thread, lock-free, never waits.
    """
    pd = _import("pandas", "pandas")
    kit = _numpy("pandas")
    _check_range(n, start, end)
    if snapshot is None:
        kind = _kind_without_snapshot(series, None)
        s = _NO_ITEMS
        lo = hi = 0
    else:
        kind, s = _series_of(snapshot, series)
        lo, hi = _positions(s, n, start, end)
    frame, aware = _frame(pd, kit, kind, s, lo, hi)
    return _localized(frame, aware, tz, "this series")


# ---------------------------------------------------------- store conveniences


def _store_snapshot(store: SessionData, symbol: str, series: SeriesSpec) -> SymbolSessionData | None:
    # The contract checks an invalid interval before looking at the symbol.
    _kind_without_snapshot(series, store.derived_intervals)
    return store.get_symbol_data(symbol)


def store_column(
    store: SessionData,
    symbol: str,
    field: str,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> array[Any]:
    """`get_column` on ``symbol``'s current snapshot in ``store`` (unknown symbol: empty array).

    Complexity and thread-safety as `get_column` (one lock-free snapshot read first).
    """
    return get_column(_store_snapshot(store, symbol, series), field, series=series, n=n, start=start, end=end)


def store_timestamps(
    store: SessionData,
    symbol: str,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[datetime]:
    """`get_timestamps` on ``symbol``'s current snapshot (unknown symbol: ``[]``). As `get_timestamps`."""
    return get_timestamps(_store_snapshot(store, symbol, series), series=series, n=n, start=start, end=end)


def store_to_numpy(
    store: SessionData,
    symbol: str,
    fields: str | Sequence[str] | None = None,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    structured: bool = False,
) -> Any:
    """`to_numpy` on ``symbol``'s current snapshot (unknown symbol: empty arrays). As `to_numpy`."""
    return to_numpy(
        _store_snapshot(store, symbol, series),
        fields,
        series=series,
        n=n,
        start=start,
        end=end,
        structured=structured,
    )


def store_to_dataframe(
    store: SessionData,
    symbols: str | Iterable[str],
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tz: Any = None,
) -> Any:
    """A new DataFrame for one symbol (a str: indexed by ``timestamp``, as `to_dataframe`) or several (an
    iterable: indexed by ``(symbol, timestamp)``, symbols upper-cased, in the order given, each from its own
    current snapshot). ``n``, ``start`` and ``end`` apply to each symbol. Unknown symbols contribute no rows.
    Mixing naive and aware symbols is a `ValueError` (their timestamps cannot share an index).

    Complexity: the sum of the `to_dataframe` costs, plus the concatenation. Thread-safety: any thread,
    lock-free; each symbol's rows are consistent in themselves, symbols may come from different writes.
    """
    if isinstance(symbols, str):
        return to_dataframe(
            _store_snapshot(store, symbols, series), series=series, n=n, start=start, end=end, tz=tz
        )
    pd = _import("pandas", "pandas")
    kit = _numpy("pandas")
    _check_range(n, start, end)
    kind = _kind_without_snapshot(series, store.derived_intervals)
    names = [sym.strip().upper() for sym in symbols]
    if len(set(names)) != len(names):
        raise ValueError(f"symbols has duplicates: {names!r}")
    frames = []
    awareness: dict[bool, str] = {}
    for sym in names:
        snap = store.get_symbol_data(sym)
        if snap is None:
            s = _NO_ITEMS
            lo = hi = 0
        else:
            kind, s = _series_of(snap, series)
            lo, hi = _positions(s, n, start, end)
        frame, aware = _frame(pd, kit, kind, s, lo, hi)
        if aware is not None and hi > lo:
            awareness.setdefault(aware, sym)
        frames.append(frame)
    if len(awareness) > 1:
        raise ValueError(
            f"{awareness[True]} has aware timestamps but {awareness[False]} naive ones: "
            "they cannot share one index"
        )
    aware_all = next(iter(awareness), None)
    if aware_all:
        # Empty frames get the same UTC index type so the concatenated level is uniformly aware.
        frames = [f if f.index.tz is not None else f.tz_localize("UTC") for f in frames]
    if not frames:
        out, _ = _frame(pd, kit, kind, _NO_ITEMS, 0, 0)
        out.index = pd.MultiIndex.from_arrays(
            [pd.Index([], dtype=object), out.index], names=["symbol", TIMESTAMP]
        )
        return out
    out = pd.concat(frames, keys=names, names=["symbol", TIMESTAMP])
    if tz is not None:
        if aware_all is False:
            raise ValueError(f"tz={tz!r} given but the symbols have naive timestamps (no instant to convert)")
        if aware_all:
            out = out.tz_convert(tz, level=TIMESTAMP)
    return out


# --------------------------------------------------------------------- arrow


class _ArrowChunk:
    """One chunk's columns for Arrow: a fixed-capacity buffer per field, filled in place, and per
    timestamp type one `pyarrow.RecordBatch` of the full capacity over those buffers.

    Why: building Arrow arrays costs ~2 µs each, so rebuilding every column after each append (the bytes
    columns are new objects then) made `to_arrow` under a writer ~1.4x slower than `to_numpy`. Here a
    version's rows of this chunk are one ``batch.slice`` of a batch built once. That is valid because the
    first ``filled`` values of each buffer are never written again (they mirror chunk slots that never
    change, see `_series`); appends only write past ``filled``, which no slice handed out covers.

    The buffers reach Arrow as read-only ``foreign_buffer`` views (``is_mutable`` is false, writing through
    a memoryview of one is refused): callers cannot change them; only this class writes, through the
    private ``bytearray``. Concurrent fillers write the same values (converted from immutable items) to the
    same places, and ``filled`` is raised only after a filler's own writes are complete.
    """

    __slots__ = ("batches", "buffers", "capacity", "filled", "raw")

    def __init__(self, pa: Any, fields: Sequence[str], capacity: int) -> None:
        self.capacity = capacity
        self.filled = 0
        self.raw: dict[str, memoryview] = {}
        self.buffers: dict[str, Any] = {}
        for f in fields:
            store = bytearray(capacity * _ITEM)
            # A ctypes view pins the bytearray (no resize) and gives its address; the Arrow buffer keeps
            # the view, hence the bytearray, alive.
            pinned = (ctypes.c_char * len(store)).from_buffer(store)
            self.raw[f] = memoryview(store)
            self.buffers[f] = pa.foreign_buffer(ctypes.addressof(pinned), len(store), base=pinned)
        self.batches: dict[Any, Any] = {}

    def nbytes(self) -> int:
        return self.capacity * _ITEM * len(self.raw)

    def fill(self, chunk: list[Any], length: int) -> None:
        """Convert ``chunk[filled:length]`` into every field's buffer. O(new items)."""
        have = self.filled
        if have >= length:
            return
        items = chunk[have:length]
        for f, raw in self.raw.items():
            raw[have * _ITEM : length * _ITEM] = _convert(items, f)
        self.filled = length  # published only once every field holds the values

    def batch(self, pa: Any, zone: Any, schema: Any) -> Any:
        """The full-capacity batch of ``schema`` over the buffers; ``zone`` (its timestamp's zone label,
        see `_schema`) is the key: hashing a schema costs microseconds. O(1) once built."""
        got = self.batches.get(zone)
        if got is None:
            cap = self.capacity
            arrays = [pa.Array.from_buffers(t, cap, [None, self.buffers[n]]) for n, t in _named(schema)]
            got = self.batches[zone] = pa.RecordBatch.from_arrays(arrays, schema=schema)
        return got


def _named(schema: Any) -> list[tuple[str, Any]]:
    return [(field.name, field.type) for field in schema]


def _arrow_entry(pa: Any, chunk: list[Any], length: int, schema: Any) -> _ArrowChunk:
    """The Arrow state of ``chunk``, filled to at least ``length`` items. O(items not converted before)."""
    entry = _registry.get(id(chunk))
    if entry is None or entry.chunk is not chunk:
        _column_of_chunk(chunk, 0, TIMESTAMP)  # registers the chunk (and sweeps) like the bytes columns
        entry = _registry[id(chunk)]
    arrow = entry.arrow
    if arrow is None or arrow.capacity < length:
        # Chunks hold at most 2 * LOAD items; a larger capacity only guards against that changing.
        arrow = _ArrowChunk(pa, schema.names, max(2 * LOAD, length))
        arrow.fill(chunk, length)
        entry.arrow = arrow
    else:
        arrow.fill(chunk, length)
    return arrow


_schemas: dict[tuple[str, Any], Any] = {}


def _schema(pa: Any, kind: str, aware: bool | None, tz: Any) -> tuple[Any, Any]:
    """``(zone, schema)``: the timestamp's zone label (``None``: naive; ``tz`` or ``"UTC"``) and the table
    schema, ``timestamp`` then the float64 fields. Cached for zone names (a type costs ~1 µs to build)."""
    key = (kind, None if not aware else (tz if tz is not None else "UTC"))
    got = _schemas.get(key) if isinstance(key[1], str | None) else None
    if got is None:
        float64 = pa.float64()
        got = pa.schema(
            [(TIMESTAMP, pa.timestamp("ns", key[1])), *((f, float64) for f in COLUMN_FIELDS[kind])]
        )
        if isinstance(key[1], str | None):
            _schemas[key] = got
    return key[1], got


def _arrow_table(pa: Any, s: Series[Any], lo: int, hi: int, layout: tuple[Any, Any]) -> Any:
    """``s[lo:hi]`` as a table of ``layout`` (from `_schema`): a slice of each chunk's cached batch, no copy.

    O(chunks spanned + items not converted before)."""
    zone, schema = layout
    batches = []
    if lo < hi:
        for chunk, base, length in s.chunks_from(lo):
            if base >= hi:
                break
            start = lo - base if lo > base else 0
            stop = min(hi - base, length)
            batch = _arrow_entry(pa, chunk, length, schema).batch(pa, zone, schema)
            batches.append(batch.slice(start, stop - start))
    return pa.Table.from_batches(batches, schema=schema)


def _aware(s: Series[Any], lo: int, hi: int, tz: Any) -> bool | None:
    """Whether ``s[lo:hi]`` has aware timestamps (``None``: no rows); ``tz`` with naive data: ValueError."""
    first = s.first()
    aware = None if first is None or hi <= lo else first.timestamp.utcoffset() is not None
    if tz is not None and aware is False:
        raise ValueError(f"tz={tz!r} given but this series has naive timestamps (no instant to convert)")
    return aware


def to_arrow(
    snapshot: SymbolSessionData | None,
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tz: Any = None,
) -> Any:
    """A `pyarrow.Table` of every field of a series (needs ``sessiondata[parquet]``): ``timestamp`` then
    the columns `to_dataframe` gives, all ``float64``.

    ``timestamp`` is ``timestamp[ns]`` for naive data and ``timestamp[ns, tz=UTC]`` (or ``tz`` when given,
    e.g. ``"America/New_York"``: the same instants, labelled with that zone) for aware data; ``tz`` with
    naive data is a `ValueError`. Range arguments as in `get_column`; a ``None`` snapshot gives an empty
    table. The arrays share the immutable cached column bytes: no copy is made, nothing can change them.

    Complexity: O(k + log len) plus conversion of items no earlier call converted (the same cache as
    `to_numpy`); O(1) when this snapshot already answered the same request (the same table is returned).
    Thread-safety: any thread, lock-free, never waits.
    """
    pa = _import("pyarrow", "parquet")
    _check_range(n, start, end)
    if snapshot is None:
        kind = _kind_without_snapshot(series, None)
        s: Series[Any] = _NO_ITEMS
        lo = hi = 0
    else:
        kind, s = _series_of(snapshot, series)
        lo, hi = _positions(s, n, start, end)
    # Memoised per version like the numpy answers (a table is immutable); a zone object that is not a
    # name is not a reliable key, so only names are.
    key = (_CACHE_KEY, "arrow", lo, hi, tz) if tz is None or isinstance(tz, str) else None
    got = None if key is None else s.memo(key)
    if got is None:
        got = _arrow_table(pa, s, lo, hi, _schema(pa, kind, _aware(s, lo, hi, tz), tz))
        if key is not None:
            _remember(s, key, got)
    return got


def store_to_arrow(
    store: SessionData,
    symbols: str | Iterable[str],
    *,
    series: SeriesSpec = 1,
    n: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    tz: Any = None,
) -> Any:
    """A `pyarrow.Table` for one symbol (a str: as `to_arrow`) or several (an iterable: a first column
    ``symbol``, upper-cased, then `to_arrow`'s columns; the symbols' rows one after another, in the order
    given, each from its own current snapshot). The same options as `store_to_dataframe`: ``n``, ``start``
    and ``end`` apply to each symbol, unknown symbols contribute no rows, duplicates and mixing naive with
    aware symbols are `ValueError`. Needs ``sessiondata[parquet]``.

    Complexity: O(rows + symbols) plus conversion of items no earlier call converted; the columns are
    concatenated once. Thread-safety: any thread, lock-free; each symbol's rows are consistent in
    themselves, symbols may come from different writes.
    """
    if isinstance(symbols, str):
        return to_arrow(
            _store_snapshot(store, symbols, series), series=series, n=n, start=start, end=end, tz=tz
        )
    pa = _import("pyarrow", "parquet")
    _check_range(n, start, end)
    kind = _kind_without_snapshot(series, store.derived_intervals)
    names = [sym.strip().upper() for sym in symbols]
    if len(set(names)) != len(names):
        raise ValueError(f"symbols has duplicates: {names!r}")
    pieces: list[tuple[str, int, int, Series[Any]]] = []
    awareness: dict[bool, str] = {}
    for sym in names:
        snap = store.get_symbol_data(sym)
        if snap is None:
            continue
        kind, s = _series_of(snap, series)
        lo, hi = _positions(s, n, start, end)
        first = s.first()
        if hi > lo and first is not None:
            awareness.setdefault(first.timestamp.utcoffset() is not None, sym)
            pieces.append((sym, lo, hi, s))
    if len(awareness) > 1:
        raise ValueError(
            f"{awareness[True]} has aware timestamps but {awareness[False]} naive ones: "
            "they cannot share one column"
        )
    if tz is not None and awareness.get(False):
        raise ValueError(f"tz={tz!r} given but the symbols have naive timestamps (no instant to convert)")
    layout = _schema(pa, kind, next(iter(awareness), None), tz)
    tables = [_arrow_table(pa, s, lo, hi, layout) for _, lo, hi, s in pieces]
    # One contiguous array per column, as a caller concatenating symbols would expect (this copies).
    data = (pa.concat_tables(tables) if tables else layout[1].empty_table()).combine_chunks()
    symbol_column = pa.array([sym for sym, lo, hi, _ in pieces for _ in range(hi - lo)], pa.string())
    return data.add_column(0, "symbol", symbol_column)
