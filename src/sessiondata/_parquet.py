"""Parquet bars: `ParquetBarRepository` reads a Parquet file or dataset; `write_parquet_bars` writes one.

Needs the optional extra ``sessiondata[parquet]`` (pyarrow), imported on first use: the package imports
without it, and making a repository without it raises `ImportError` naming the extra.

Layout read. ``path`` is one Parquet file or a directory of them (searched recursively; names starting
with ``.`` or ``_`` are skipped, as pyarrow does). The symbol is a hive partition (``symbol=SPY/...``) or a
``symbol`` column (string); an optional ``interval`` partition or integer column gives the bar length in
minutes (without one every bar is a 1-minute bar). Columns: ``timestamp`` of any Arrow timestamp unit (s,
ms, us, ns), naive or with a zone; ``open, high, low, close`` floating point; ``volume`` integer or
floating point. Other columns are ignored.

What a query reads. Each file's footer (its row groups' min/max statistics) is read once, the first time a
symbol in it is asked for, and kept; a `get_bars` then opens only the files of that symbol's partition (or,
in a flat layout, whose ``symbol`` statistics admit it) and reads only the row groups whose ``timestamp``
statistics overlap the range, and only the columns a bar needs. So a 30-minute range of one symbol in a
1,000-symbol dataset reads one or two row groups of one file (``benchmarks/bench_parquet.py``). Row groups
written without statistics are read whole, which is correct but slower.

Answers follow the other repositories (`sessiondata._repository`'s docstring): half-open ranges in time
order, upper-cased symbols, ``[]`` for an unknown one. Timestamps keep the data's style: a naive column
gives naive datetimes; a zoned one gives datetimes in that zone (a fixed-offset `datetime.timezone` for an
offset such as ``+04:00``, `datetime.timezone.utc` for UTC, else `zoneinfo.ZoneInfo`); sub-microsecond
parts are refused (a `datetime` cannot hold them). Volumes keep their type (int or float). Bars are
validated as `Bar` validates them. A timestamp found twice for one symbol and interval keeps the first,
in file-path order then row order (as `CsvBarRepository` keeps the first file's). Bad input (not Parquet,
a missing column, a column of the wrong type, a null or NaN price) raises `InvalidDataError` naming the file
and the column; a repository is read-only, so nothing anywhere is changed by it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ._csvio import PathLike
from ._models import Bar, InvalidDataError

# The argument checks every repository shares (one logic in one place).
from ._repository import ImportReport, _mixing_error
from ._repository import _check_interval as check_interval
from ._repository import _check_kind as check_kind
from ._repository import _check_range as check_range
from ._repository import _check_symbol as check_symbol
from ._zones import fixed_zone

__all__ = ["ParquetBarRepository", "write_parquet_bars"]

_PRICES = ("open", "high", "low", "close")
_BAR_COLUMNS = ("timestamp", *_PRICES, "volume")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)
# Parquet's timestamp units (from a column's logical type) in nanoseconds.
_PARQUET_UNIT_NS = {"milliseconds": 1_000_000, "microseconds": 1_000, "nanoseconds": 1}
_QUARTER_HOUR_US = 15 * 60 * 1_000_000
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _pyarrow() -> Any:
    """The pyarrow modules this one uses, imported on first use."""
    try:
        pa = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.compute")
        importlib.import_module("pyarrow.dataset")
        importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise ImportError(
            "Parquet needs pyarrow, which is not installed: pip install 'sessiondata[parquet]'"
        ) from exc
    return pa


def _zone(name: str | None) -> tzinfo | None:
    """The Python zone of an Arrow timestamp type's ``tz`` (``None`` for a naive column)."""
    if name is None:
        return None
    if name in ("UTC", "Z", "+00:00", "Etc/UTC"):
        return timezone.utc
    fixed = _OFFSET.match(name)
    if fixed:
        sign = -1 if fixed.group(1) == "-" else 1
        # The shared zone object of the offset: the replay compares bars of many reads and symbols.
        return fixed_zone(sign * timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3))))
    return ZoneInfo(name)


def _us_key(ts: datetime) -> int:
    """Microseconds since the epoch: of the instant (aware) or of the wall-clock value read as UTC (naive),
    which is how Arrow stores the two. Exact, and right for bounds far outside the ns range."""
    offset = ts.utcoffset()
    return (ts.replace(tzinfo=None) - _EPOCH) // _US - (0 if offset is None else offset // _US)


def _datetimes(keys: Sequence[int], zone: tzinfo | None) -> list[datetime]:
    """Datetimes of microsecond keys, in ``zone`` (naive for ``None``). O(k)."""
    if zone is None:
        return [_EPOCH + timedelta(microseconds=k) for k in keys]
    if zone is timezone.utc:
        return [_EPOCH_UTC + timedelta(microseconds=k) for k in keys]
    return [(_EPOCH_UTC + timedelta(microseconds=k)).astimezone(zone) for k in keys]


@attrs.frozen
class _RowGroup:
    """One row group a symbol may have rows in: its id and ``timestamp`` range in microseconds (both
    ``None`` when the file has no statistics)."""

    index: int
    low: int | None
    high: int | None

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.low is None or self.high is None or (self.low < hi and self.high >= lo)


@attrs.frozen
class _Part:
    """The rows of one file that may hold a symbol: which row groups, and how to read them."""

    path: str
    metadata: Any  # pyarrow.parquet.FileMetaData: read once, so queries skip the footer
    row_groups: tuple[_RowGroup, ...]
    filters: tuple[str, ...]  # the columns rows are picked by besides the timestamp: symbol, interval
    symbol_column: bool
    interval: int | None  # the partition's interval; None: an interval column, or none at all (1)
    interval_column: bool


@attrs.frozen
class _Symbol:
    """What a symbol's queries need: its parts, in path order, and the zone of its timestamps."""

    parts: tuple[_Part, ...]
    aware: bool
    zone: tzinfo | None


class _File:
    """One discovered file: its path and hive partition values (symbol upper-cased, interval)."""

    __slots__ = ("interval", "path", "symbol")

    def __init__(self, path: str, symbol: str | None, interval: int | None) -> None:
        self.path = path
        self.symbol = symbol
        self.interval = interval


class ParquetBarRepository:
    """Bars in a Parquet file or a directory dataset: ``ParquetBarRepository(path)`` (read-only).

    Layout: ``path`` is one Parquet file or a directory of them (recursively; names starting with ``.`` or
    ``_`` are skipped). The symbol is a hive partition (``symbol=SPY/...``) or a string ``symbol`` column
    (matched upper-cased and stripped, as the store names symbols); an optional ``interval`` partition or
    integer column gives the bar length in minutes (1 without one). Columns: ``timestamp`` of any Arrow unit
    (s, ms, us, ns), naive or with a zone; ``open, high, low, close`` floating point; ``volume`` integer or
    floating point; other columns are ignored. `sessiondata import --parquet` (the command line) writes this
    layout.

    Reads: a query opens only the files of the symbol's partition (in a flat layout, those whose ``symbol``
    statistics admit it), reads only the row groups whose ``timestamp`` statistics overlap the range, and
    only the bar columns. Answers follow `BarRepository`: half-open ranges in time order, ``[]`` for an
    unknown symbol; a timestamp found twice keeps the first (in file-path order, then row order).
    Timestamps keep the data's style: naive stays naive, a zoned column gives datetimes in that zone (a
    fixed-offset `datetime.timezone` for ``+04:00``, `datetime.timezone.utc` for UTC, else a
    `zoneinfo.ZoneInfo`); volumes keep their type.

    Errors: a ``path`` that does not exist is `FileNotFoundError`; a file that is not Parquet, a missing
    column, a column of the wrong type, a null or NaN price or a sub-microsecond timestamp is an
    `InvalidDataError` naming the file and the column. Needs ``sessiondata[parquet]`` (`ImportError`
    naming it otherwise). Making one lists the files; no data is read until a query.

    Thread-safety: every method may be called from any thread. A symbol's first query reads the footers of
    the files that may hold it under one lock, so concurrent first queries read them once and wait for each
    other; every later query takes no lock and reads with its own file handles.

    Attributes:
        path: The Parquet file or dataset directory, as given.
    """

    def __init__(self, path: PathLike) -> None:
        self._pa = _pyarrow()
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such file or directory: {self.path}")
        ds = self._pa.dataset
        try:
            dataset = ds.dataset(os.fspath(self.path), format="parquet", partitioning="hive")
        except (self._pa.ArrowException, OSError) as exc:
            raise InvalidDataError(
                f"{self.path}: cannot open it as a Parquet file or dataset: {exc}"
            ) from exc
        files = []
        for fragment in dataset.get_fragments():
            keys = ds.get_partition_keys(fragment.partition_expression)
            sym = keys.get("symbol")
            interval = keys.get("interval")
            files.append(
                _File(
                    fragment.path,
                    None if sym is None else str(sym).strip().upper(),
                    None if interval is None else self._partition_interval(fragment.path, interval),
                )
            )
        files.sort(key=lambda f: f.path)
        self._files = files
        self._partitioned = bool(files) and all(f.symbol is not None for f in files)
        # path -> FileMetaData, filled on first use (two racing fills store equal values).
        self._metadata: dict[str, Any] = {}
        self._symbols: dict[str, _Symbol | None] = {}  # written only under _index_lock; read without it
        self._extent: dict[tuple[str, int], tuple[list[int], tzinfo | None]] = {}  # time_range/dates memo
        self._index_lock = threading.Lock()  # guards building a symbol's index and publishing it

    @staticmethod
    def _partition_interval(path: str, value: object) -> int:
        if type(value) is not int or value < 1:
            raise InvalidDataError(f"{path}: partition interval={value!r} is not a positive whole number")
        return value

    # -- discovery ---------------------------------------------------------------------------------------

    def _footer(self, path: str) -> Any:
        md = self._metadata.get(path)
        if md is None:
            try:
                md = self._pa.parquet.read_metadata(path)
            except (self._pa.ArrowException, OSError) as exc:
                raise InvalidDataError(f"{path}: not a Parquet file: {exc}") from exc
            self._metadata[path] = md
        return md

    def _part(self, file: _File, symbol: str) -> tuple[_Part, str | None] | None:
        """The row groups of ``file`` that may hold ``symbol`` (None: none), and the file's zone name."""
        md = self._footer(file.path)
        schema = md.schema.to_arrow_schema()
        zone_name = _check_schema(self._pa, file, schema)
        names = schema.names
        symbol_column = file.symbol is None
        interval_column = "interval" in names and file.interval is None
        index = {name: i for i, name in enumerate(md.schema.names)}
        groups = []
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            if symbol_column and not _may_hold(rg, index["symbol"], symbol):
                continue
            low, high = _range_of(rg, index["timestamp"])
            groups.append(_RowGroup(g, low, high))
        if not groups:
            return None
        extra = (("symbol",) if symbol_column else ()) + (("interval",) if interval_column else ())
        part = _Part(file.path, md, tuple(groups), extra, symbol_column, file.interval, interval_column)
        return part, zone_name

    def _symbol(self, symbol: str) -> _Symbol | None:
        if symbol in self._symbols:
            return self._symbols[symbol]
        with self._index_lock:
            if symbol in self._symbols:
                return self._symbols[symbol]
            parts: list[_Part] = []
            zones: dict[str | None, str] = {}
            for file in self._files:
                if file.symbol is not None and file.symbol != symbol:
                    continue
                found = self._part(file, symbol)
                if found is not None:
                    parts.append(found[0])
                    zones.setdefault(found[1], file.path)
            entry = None
            if parts:
                if None in zones and len(zones) > 1:
                    raise InvalidDataError(
                        f"{symbol}'s timestamps are naive in {zones[None]} but zoned in "
                        f"{next(p for z, p in zones.items() if z is not None)} (do not mix the two)"
                    )
                # Files in different zones hold the same kind of instants: answer in the first file's zone.
                zone_name = next(iter(zones))
                entry = _Symbol(tuple(parts), zone_name is not None, _zone(zone_name))
            self._symbols[symbol] = entry  # published only once complete
            return entry

    # -- reads -------------------------------------------------------------------------------------------

    def _read(
        self, part: _Part, symbol: str, interval: int, lo: int, hi: int, columns: tuple[str, ...]
    ) -> tuple[list[int], Any]:
        """Rows of ``part`` for ``symbol``/``interval`` with ``lo <= key < hi``, in file order: their
        microsecond keys and a table of ``columns``. Reads only the overlapping row groups."""
        if (part.interval or 1) != interval and not part.interval_column:
            return [], None
        ids = [g.index for g in part.row_groups if g.overlaps(lo, hi)]
        if not ids:
            return [], None
        pa = self._pa
        pc = pa.compute
        try:
            # Small reads: no read-ahead buffering, and no thread pool (its hand-offs cost more than the
            # decoding of a row group or two; measured in benchmarks/bench_parquet.py).
            # An open file, not a path: skips pyarrow's file-system resolution, a third of a small read.
            with pa.OSFile(part.path) as source:
                reader = pa.parquet.ParquetFile(source, metadata=part.metadata, pre_buffer=False)
                table = reader.read_row_groups(
                    ids, columns=["timestamp", *columns, *part.filters], use_threads=False
                )
        except (pa.ArrowException, OSError) as exc:
            raise InvalidDataError(f"{part.path}: cannot read its bars: {exc}") from exc
        ts = _microseconds(pa, part.path, table.column("timestamp"))
        if not part.filters and _in_order(pc, ts):
            # The usual file: one symbol, rows in time order. Then the range is a slice whose ends are
            # counts of smaller keys (cheaper than masking and filtering every column).
            i = pc.sum(pc.less(ts, lo)).as_py() or 0
            j = pc.sum(pc.less(ts, hi)).as_py() or 0
            found: list[int] = ts.slice(i, j - i).to_pylist()
            return found, (table.slice(i, j - i) if found and columns else None)
        mask = pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi))
        if part.symbol_column:
            mask = pc.and_(mask, pc.equal(_upper_symbols(pa, table.column("symbol")), symbol))
        if part.interval_column:
            mask = pc.and_(mask, pc.equal(table.column("interval"), interval))
        keys: list[int] = ts.filter(mask).to_pylist()
        return keys, (table.filter(mask) if keys and columns else None)

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= timestamp < end``, oldest first, as a new list.

        Reads only the symbol's files, of those only the row groups whose statistics overlap the range,
        and only the bar columns: O(rows in those row groups + k log k). The symbol's first query also reads
        the footers of the files that may hold it (see the class docstring). Raises `InvalidDataError` for
        bad data (naming the file and the column) and `ValueError` for bad arguments. Any thread; lock-free
        after the symbol's first query.
        """
        symbol = check_symbol(symbol)
        interval = check_interval(interval)
        query_aware = check_range(start, end)
        entry = self._symbol(symbol)
        if entry is None:
            return []
        check_kind(symbol, entry.aware, query_aware)
        if not start < end:
            return []
        lo, hi = _us_key(start), _us_key(end)
        keys: list[int] = []
        bars: list[Bar] = []
        for part in entry.parts:
            found, table = self._read(part, symbol, interval, lo, hi, _BAR_COLUMNS[1:])
            if not found:
                continue
            columns = [table.column(name).to_pylist() for name in _BAR_COLUMNS[1:]]
            try:
                bars.extend(map(Bar, [symbol] * len(found), _datetimes(found, entry.zone), *columns))
            except InvalidDataError as exc:
                raise InvalidDataError(f"{part.path}: {exc}") from exc
            keys.extend(found)
        return _in_time_order(keys, bars)

    def _keys(self, symbol: str, interval: int) -> tuple[list[int], tzinfo | None] | None:
        """Every timestamp key of ``symbol``/``interval``, sorted and distinct (memoised), and the zone."""
        memo = self._extent.get((symbol, interval))
        if memo is not None:
            return memo
        entry = self._symbol(symbol)
        if entry is None:
            return None
        keys: set[int] = set()
        for part in entry.parts:
            keys.update(self._read(part, symbol, interval, _KEY_MIN, _KEY_MAX, ())[0])
        memo = self._extent[symbol, interval] = (sorted(keys), entry.zone)  # the same value if raced
        return memo

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        """``(first, last)`` stored timestamps of ``symbol`` (in the data's style), or ``None``.

        The first call per symbol and interval reads the symbol's ``timestamp`` column (O(rows)); later
        calls are O(1). Any thread.
        """
        found = self._keys(check_symbol(symbol), check_interval(interval))
        if found is None or not found[0]:
            return None
        keys, zone = found
        first, last = _datetimes((keys[0], keys[-1]), zone)
        return first, last

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        """The dates holding bars of ``symbol``, in the timestamps' own zone (naive: as written).

        O(rows) on the first call per symbol and interval (see `time_range`), then O(distinct quarter
        hours). Any thread.
        """
        found = self._keys(check_symbol(symbol), check_interval(interval))
        if found is None:
            return []
        keys, zone = found
        # Every zone offset in use is a whole number of quarter hours, so one timestamp per quarter hour
        # gives every date.
        quarters = sorted({k // _QUARTER_HOUR_US * _QUARTER_HOUR_US for k in keys})
        return sorted({ts.date() for ts in _datetimes(quarters, zone)})

    def symbols(self) -> list[str]:
        """The symbols in the dataset, sorted. From the partition names when every file is under a
        ``symbol=`` partition (no data read), else by reading every file's ``symbol`` column: O(rows).
        Any thread."""
        if self._partitioned:
            return sorted({f.symbol for f in self._files if f.symbol is not None})
        pa = self._pa
        found: set[str] = set()
        for file in self._files:
            if file.symbol is not None:
                found.add(file.symbol)
                continue
            _check_schema(pa, file, self._footer(file.path).schema.to_arrow_schema())
            try:
                column = pa.parquet.read_table(file.path, columns=["symbol"]).column("symbol")
            except (pa.ArrowException, OSError) as exc:
                raise InvalidDataError(f"{file.path}: cannot read column symbol: {exc}") from exc
            found.update(str(s).strip().upper() for s in pa.compute.unique(column).to_pylist() if s)
        return sorted(found)


_KEY_MIN = -(2**63)
_KEY_MAX = 2**63 - 1


def _in_time_order(keys: list[int], bars: list[Bar]) -> list[Bar]:
    """``bars`` by timestamp key, the first of equal keys kept. O(k) when already in order (the usual
    case: one file, written in time order), else O(k log k)."""
    if all(a < b for a, b in pairwise(keys)):
        return bars
    out: list[Bar] = []
    last: int | None = None
    for i in sorted(range(len(keys)), key=keys.__getitem__):  # stable: the first of equal keys first
        if keys[i] != last:
            out.append(bars[i])
            last = keys[i]
    return out


def _in_order(pc: Any, keys: Any) -> bool:
    """Whether the int64 ``keys`` never decrease. O(n) in Arrow, no Python objects."""
    n = len(keys)
    return n < 2 or bool(pc.all(pc.greater_equal(keys.slice(1), keys.slice(0, n - 1))).as_py())


def _check_schema(pa: Any, file: _File, schema: Any) -> str | None:
    """Raise `InvalidDataError` naming the file and column unless ``schema`` holds bars; returns the
    timestamp's zone name (``None``: naive)."""
    types = pa.types
    missing = [name for name in _BAR_COLUMNS if name not in schema.names]
    if file.symbol is None and "symbol" not in schema.names:
        missing.append("symbol (a column or a symbol=X partition)")
    if missing:
        raise InvalidDataError(f"{file.path}: missing column(s) {', '.join(missing)}")
    checks = [("timestamp", types.is_timestamp, "a timestamp")]
    checks += [(name, types.is_floating, "floating point") for name in _PRICES]
    checks.append(("volume", lambda t: types.is_integer(t) or types.is_floating(t), "integer or floating"))
    if file.symbol is None:
        checks.append(("symbol", _is_text(types), "a string"))
    if file.interval is None and "interval" in schema.names:
        checks.append(("interval", types.is_integer, "an integer"))
    for name, ok, wanted in checks:
        kind = schema.field(name).type
        if not ok(kind):
            raise InvalidDataError(f"{file.path}: column {name} must be {wanted}, got {kind}")
    zone: str | None = schema.field("timestamp").type.tz
    return zone


def _is_text(types: Any) -> Any:
    def ok(kind: Any) -> bool:
        if types.is_dictionary(kind):
            kind = kind.value_type
        return bool(types.is_string(kind) or types.is_large_string(kind))

    return ok


def _may_hold(row_group: Any, column: int, symbol: str) -> bool:
    """Whether a row group's ``symbol`` statistics admit ``symbol`` (no statistics: it may). Symbols are
    matched upper-cased and stripped, so bounds that are not written that way admit every symbol (upper-
    casing does not keep the order of the values between them)."""
    stats = row_group.column(column).statistics
    if stats is None or not stats.has_min_max:
        return True
    low, high = stats.min, stats.max
    if not (isinstance(low, str) and isinstance(high, str)):
        return True
    if low != low.strip().upper() or high != high.strip().upper():
        return True
    return low <= symbol <= high


def _upper_symbols(pa: Any, column: Any) -> Any:
    """A ``symbol`` column as the store names symbols (upper-cased, stripped), for matching. O(rows)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    return pa.compute.utf8_upper(pa.compute.utf8_trim_whitespace(column))


def _range_of(row_group: Any, column: int) -> tuple[int | None, int | None]:
    """A row group's ``timestamp`` min and max in microseconds (floored), or ``(None, None)``."""
    meta = row_group.column(column)
    stats = meta.statistics
    if stats is None or not stats.has_min_max or stats.logical_type is None:
        return None, None
    # The raw values are in the Parquet column's own unit, which may differ from the Arrow type's (a
    # seconds column is stored in milliseconds).
    # (A legacy INT96 column has no such unit: its row groups are read whole.)
    unit_ns = _PARQUET_UNIT_NS.get(json.loads(stats.logical_type.to_json()).get("timeUnit"))
    low, high = stats.min_raw, stats.max_raw
    if unit_ns is None or not isinstance(low, int) or not isinstance(high, int):
        return None, None
    return low * unit_ns // 1000, high * unit_ns // 1000


def _microseconds(pa: Any, path: str, column: Any) -> Any:
    """A timestamp column as int64 microseconds (see `_us_key`); `InvalidDataError` for a null or a
    sub-microsecond part."""
    if column.null_count:
        raise InvalidDataError(f"{path}: column timestamp has {column.null_count} null value(s)")
    if column.type.unit != "us":
        try:
            column = column.cast(pa.timestamp("us", column.type.tz), safe=True)
        except pa.ArrowInvalid as exc:
            raise InvalidDataError(
                f"{path}: column timestamp has a sub-microsecond part, which a datetime cannot hold: {exc}"
            ) from exc
    return column.cast(pa.int64())


# --- writing ----------------------------------------------------------------------------------------------


def _zone_name(symbol: str, stamps: Sequence[datetime]) -> str | None:
    """The Arrow zone for one symbol's timestamps: ``None`` (naive), the `zoneinfo` key they share, the
    fixed offset they share (``+HH:MM``), else ``UTC`` (instants are kept either way)."""
    aware = stamps[0].utcoffset() is not None
    for ts in stamps:
        if (ts.utcoffset() is not None) is not aware:
            raise _mixing_error(symbol, aware)
    if not aware:
        return None
    zones = {ts.tzinfo for ts in stamps}
    only = next(iter(zones)) if len(zones) == 1 else None
    if isinstance(only, ZoneInfo):
        return only.key
    offsets = {ts.utcoffset() for ts in stamps}
    if len(offsets) == 1:
        offset = next(iter(offsets))
        if offset:
            minutes = int(offset.total_seconds()) // 60
            sign = "-" if minutes < 0 else "+"
            return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return "UTC"


def _table(pa: Any, symbol: str, bars: list[Bar], interval: int) -> Any:
    stamps = [b.timestamp for b in bars]
    zone = _zone_name(symbol, stamps)
    volumes = [b.volume for b in bars]
    columns = {
        "timestamp": pa.array([_us_key(ts) for ts in stamps], pa.int64()).cast(pa.timestamp("us", zone)),
        **{name: pa.array([float(getattr(b, name)) for b in bars], pa.float64()) for name in _PRICES},
        "volume": pa.array(volumes, pa.int64() if all(type(v) is int for v in volumes) else pa.float64()),
    }
    if interval != 1:
        columns["interval"] = pa.array([interval] * len(bars), pa.int32())
    return pa.table(columns)


def write_parquet_bars(
    directory: PathLike,
    bars: Iterable[Bar],
    *,
    name: str = "part-0",
    interval: int = 1,
    row_group_size: int = 1024,
) -> ImportReport:
    """Write ``bars`` as a hive-partitioned dataset `ParquetBarRepository` reads back: per symbol, the file
    ``directory/symbol=SYM/<name>.parquet``, sorted by timestamp, one row per timestamp (the first bar of a
    repeated timestamp is kept, the others counted as duplicates), in row groups of ``row_group_size``.

    Timestamps are stored in microseconds, naive when the bars' are, else in the zone they share (a
    ``zoneinfo`` key or a fixed offset) or in UTC (same instants). Volumes are int64 when every volume is an
    int, else float64. A bar ``interval`` other than 1 adds an ``interval`` column. Each file is written to
    a temporary name and renamed, so a reader never sees half a file and an error leaves none behind; a
    file of the same name is replaced. Raises `InvalidDataError` for something that is not a `Bar` or a
    symbol mixing naive and aware timestamps (before anything is written). O(m log m). Any thread; writers
    of the same file must not run concurrently.
    """
    pa = _pyarrow()
    interval = check_interval(interval)
    per_symbol: dict[str, dict[datetime, Bar]] = {}
    count = 0
    for bar in bars:
        if not isinstance(bar, Bar):
            raise InvalidDataError(f"expected a Bar, got {type(bar).__name__}: {bar!r}")
        count += 1
        per_symbol.setdefault(bar.symbol, {}).setdefault(bar.timestamp, bar)
    tables = {
        sym: _table(pa, sym, sorted(kept.values(), key=lambda b: _us_key(b.timestamp)), interval)
        for sym, kept in per_symbol.items()
    }
    root = Path(directory)
    for sym, table in tables.items():
        folder = root / f"symbol={sym}"
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".", suffix=".parquet.tmp", dir=folder)
        os.close(handle)
        try:
            pa.parquet.write_table(table, temp, row_group_size=row_group_size)
            os.replace(temp, folder / f"{name}.parquet")
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    added = sum(t.num_rows for t in tables.values())
    return ImportReport(added=added, duplicates=count - added)
