"""Memory accounting: how many bars, derived bars, ticks and quotes a store holds, and about how many bytes.

`memory_usage` walks each symbol's current snapshot and adds up ``sys.getsizeof`` of:

* every record (`Bar`, `Tick`, `Quote`) and every object it refers to (symbol string, ``datetime``,
  prices, volume, sizes), each **object counted once** however many records share it (a derived bar's
  open is the very ``float`` of its first 1-minute bar; its timestamp often is that bar's ``datetime``).
  Objects the interpreter keeps anyway are not counted: ``None``, booleans, the cached small ints (-5..256),
  and ``tzinfo`` objects (shared by the whole process);
* the containers that hold the records: each `Series` object, its tuple of chunks, every chunk list (its
  allocated capacity, which is what ``getsizeof`` reports), the tuples of chunk minima and start positions
  with their ints, the historical-bar tuples and mappings, the provenance overrides, the derived-bar state,
  the record of what a lazy store's bars are owed (`sessiondata.core.derived`: its base quality state and
  the readers' memos) and the snapshot object itself.

Derived bars are counted as they are held: measuring never builds the derived bars of a symbol nobody has read
(they are owed; the 1-minute bars they are owed from are counted once, as bars).

What is not counted: the store object, its lock and configuration, the calendar's caches, older snapshot
versions that readers still hold, Python's allocator overhead (pymalloc pools, dict/list slack beyond what
``getsizeof`` reports) and the process-wide column cache of `sessiondata._columns`, reported separately as
`MemoryReport.column_cache_bytes`. On realistic data the estimate is within 15% of what ``tracemalloc``
sees allocated for building the store (tests/test_memory.py checks it on 50,000 bars with ticks and quotes).

Shared objects are attributed to the first category walked, in this order per symbol: 1-minute bars,
derived bars, historical bars, ticks, quotes; symbols are walked in sorted order.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ._columns import column_cache_bytes
from .core.derived import Deferred
from .core.series import Series
from .core.snapshot import SymbolSessionData

if TYPE_CHECKING:
    from .core.store import SessionData

__all__ = ["MemoryReport", "SymbolMemory", "memory_usage", "snapshot_memory_usage"]

_SMALL_INTS = range(-5, 257)
_getsizeof = sys.getsizeof


@attrs.frozen(slots=True)
class SymbolMemory:
    """One symbol's counts and estimated bytes: ``sys.getsizeof`` of every record, of every object a record
    refers to (each shared object counted once) and of the containers holding them. Immutable: safe to
    share between threads.

    ``derived_bars`` maps each derived interval to its count of completed bars; ``historical_bars`` counts
    the bars of every interval and day kept. ``bytes`` is the sum of the ``*_bytes`` fields plus
    ``other_bytes`` (the snapshot, derived state and provenance overrides).

    Attributes:
        symbol: The symbol.
        bars: 1-minute bars in the session.
        derived_bars: Completed derived bars, by interval.
        ticks: Ticks in the session.
        quotes: Quotes in the session.
        historical_bars: Historical bars kept, every interval and day.
        bars_bytes: Estimated bytes of the 1-minute bars.
        derived_bytes: Estimated bytes of the derived bars (or of their log while nobody reads them).
        historical_bytes: Estimated bytes of the historical bars.
        ticks_bytes: Estimated bytes of the ticks.
        quotes_bytes: Estimated bytes of the quotes.
        other_bytes: Estimated bytes of the snapshot itself, derived state and provenance overrides.
    """

    symbol: str
    bars: int
    derived_bars: Mapping[int, int]
    ticks: int
    quotes: int
    historical_bars: int
    bars_bytes: int
    derived_bytes: int
    historical_bytes: int
    ticks_bytes: int
    quotes_bytes: int
    other_bytes: int

    @property
    def bytes(self) -> int:
        """Estimated bytes held for this symbol. O(1)."""
        return (
            self.bars_bytes
            + self.derived_bytes
            + self.historical_bytes
            + self.ticks_bytes
            + self.quotes_bytes
            + self.other_bytes
        )


@attrs.frozen(slots=True)
class MemoryReport:
    """Per-symbol `SymbolMemory` and store-wide totals. Immutable: safe to share between threads.

    ``total_bytes`` is the store's data (the sum of the symbols' ``bytes``, shared objects once);
    ``column_cache_bytes`` is the process-wide column cache (see `clear_column_cache`), not part of it.

    Attributes:
        symbols: Each symbol's `SymbolMemory`, by symbol.
        column_cache_bytes: Bytes held by the process-wide column cache (not part of any symbol).
    """

    symbols: Mapping[str, SymbolMemory]
    column_cache_bytes: int

    @property
    def total_bytes(self) -> int:
        """Estimated bytes of every symbol's data. O(symbols)."""
        return sum(m.bytes for m in self.symbols.values())

    @property
    def bars(self) -> int:
        """1-minute bars in all symbols. O(symbols)."""
        return sum(m.bars for m in self.symbols.values())

    @property
    def derived_bars(self) -> int:
        """Completed derived bars, all intervals and symbols. O(symbols × intervals)."""
        return sum(sum(m.derived_bars.values()) for m in self.symbols.values())

    @property
    def ticks(self) -> int:
        """Ticks in all symbols. O(symbols)."""
        return sum(m.ticks for m in self.symbols.values())

    @property
    def quotes(self) -> int:
        """Quotes in all symbols. O(symbols)."""
        return sum(m.quotes for m in self.symbols.values())

    @property
    def historical_bars(self) -> int:
        """Historical bars kept, all intervals, days and symbols. O(symbols)."""
        return sum(m.historical_bars for m in self.symbols.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the totals and the per-symbol figures. O(symbols)."""
        return {
            "total_bytes": self.total_bytes,
            "column_cache_bytes": self.column_cache_bytes,
            "bars": self.bars,
            "derived_bars": self.derived_bars,
            "ticks": self.ticks,
            "quotes": self.quotes,
            "historical_bars": self.historical_bars,
            "symbols": {
                sym: {
                    **attrs.asdict(m, recurse=False),
                    "derived_bars": {str(k): v for k, v in m.derived_bars.items()},
                    "bytes": m.bytes,
                }
                for sym, m in self.symbols.items()
            },
        }


class _Sizer:
    """Adds up ``getsizeof`` of objects not seen before. Holds the ids only while the walked data is alive
    (the caller keeps the snapshots referenced), so an id cannot be reused during one walk."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def one(self, obj: object) -> int:
        if obj is None or type(obj) is bool or isinstance(obj, tzinfo):
            return 0
        if type(obj) is int and obj in _SMALL_INTS:
            return 0
        key = id(obj)
        if key in self.seen:
            return 0
        self.seen.add(key)
        return _getsizeof(obj)

    def nested(self, obj: object) -> int:
        """``obj`` and, for a tuple, its members (small state tuples of dates, ints, datetimes). O(len)."""
        total = self.one(obj)
        if isinstance(obj, tuple):
            for part in obj:
                total += self.one(part)
        return total

    def records(self, items: Iterable[Any]) -> int:
        """Each record (an attrs slots class) and the objects in its fields. O(records × fields)."""
        total = 0
        one = self.one
        for rec in items:
            total += one(rec)
            for name in rec.__slots__:
                if name != "__weakref__":
                    total += one(getattr(rec, name))
        return total

    def series(self, s: Series[Any]) -> int:
        """A `Series`: the records plus its chunk lists and index tuples. O(len)."""
        total = self.one(s)
        for part in s.storage():
            total += self.one(part)
        return total + self.records(s)


def _held_states(snapshot: SymbolSessionData) -> Mapping[int, Any]:
    """The derived states ``snapshot`` holds now, without settling a deferred derivation (measuring must
    not build what nobody has read): the newest settled ones its readers remembered, or its base."""
    writer = snapshot.writer
    pending = writer.derived_pending
    if pending is None:
        return writer.derived_base
    if pending.memos:
        return pending.memos[0].states
    return pending.base if pending.base is not None else writer.derived_base


def _deferred_bytes(cell: Deferred | None, sizer: _Sizer) -> int:
    """A lineage's owed work (see `sessiondata.core.derived`): the cell, its base quality state, its memo
    tuples, and its parent's. O(memos)."""
    total = 0
    while cell is not None:
        total += sizer.one(cell) + sizer.nested(cell.base_quality)
        total += sizer.one(cell.memos) + sizer.nested(cell.quality_memo)
        for memo in cell.memos:
            total += sizer.nested(memo)
        cell = cell.parent
    return total


def snapshot_memory_usage(snapshot: SymbolSessionData) -> SymbolMemory:
    """Counts and estimated bytes of one snapshot, estimated as `SymbolMemory` says.

    Complexity: O(records × fields). Thread-safety: any thread, lock-free (the snapshot is immutable).
    """
    return _measure(snapshot, _Sizer())


def _measure(snapshot: SymbolSessionData, sizer: _Sizer) -> SymbolMemory:
    bars_bytes = sizer.series(snapshot.bars_1m)
    derived_bytes = 0
    derived_counts: dict[int, int] = {}
    held = _held_states(snapshot)
    other = sizer.one(snapshot) + sizer.one(held)
    for k, state in held.items():
        derived_counts[k] = len(state.bars)
        derived_bytes += sizer.series(state.bars)
        other += sizer.one(state) + sizer.nested(state.forming) + sizer.nested(state.completed)
        other += sizer.nested(state.anchor)
    historical_bytes = sizer.one(snapshot.historical_bars)
    historical_count = 0
    for per_day in snapshot.historical_bars.values():
        historical_bytes += sizer.one(per_day)
        for day, bars in per_day.items():
            historical_count += len(bars)
            historical_bytes += sizer.one(day) + sizer.one(bars) + sizer.records(bars)
    ticks_bytes = sizer.series(snapshot.ticks)
    quotes_bytes = sizer.series(snapshot.quotes)
    overrides = snapshot.writer.provenance_overrides
    other += sizer.one(overrides) + sizer.series(overrides.marks)
    for ts in overrides:
        other += sizer.one(ts)
    writer = snapshot.writer
    other += sizer.nested(writer.quality_state) + _deferred_bytes(writer.derived_pending, sizer)
    return SymbolMemory(
        symbol=snapshot.symbol,
        bars=len(snapshot.bars_1m),
        derived_bars=MappingProxyType(derived_counts),
        ticks=len(snapshot.ticks),
        quotes=len(snapshot.quotes),
        historical_bars=historical_count,
        bars_bytes=bars_bytes,
        derived_bytes=derived_bytes,
        historical_bytes=historical_bytes,
        ticks_bytes=ticks_bytes,
        quotes_bytes=quotes_bytes,
        other_bytes=other,
    )


def memory_usage(store: SessionData, symbols: Iterable[str] | None = None) -> MemoryReport:
    """Counts and estimated bytes per symbol and in total for ``store`` (or only ``symbols``; unknown ones
    are left out). Objects shared between symbols are counted once, for the first symbol in sorted order.

    Complexity: O(records × fields) over the symbols walked (about a second per million bars): meant for
    monitoring and tests, not for a hot loop. Thread-safety: any thread, lock-free; takes one snapshot of
    the store, so each symbol's figures are consistent in themselves and writers are never blocked.
    """
    snaps = store.snapshot()
    wanted = sorted(snaps) if symbols is None else sorted({s.strip().upper() for s in symbols})
    sizer = _Sizer()
    out = {}
    for sym in wanted:
        snap = snaps.get(sym)
        if snap is not None:
            out[sym] = _measure(snap, sizer)
    return MemoryReport(symbols=MappingProxyType(out), column_cache_bytes=column_cache_bytes())
