"""`SymbolSessionData`: one symbol's immutable snapshot, and every read answered from it.

The store publishes a new snapshot on every write; a reader takes the current one with a single reference
read and answers from it alone, so everything read from one snapshot is mutually consistent (bars, derived
bars, metrics, quality, versions) and no read ever waits for a writer.

With the store's ``derivation="lazy"`` (the default) derived bars and bar quality are owed rather than
built: the first read of them from a snapshot settles that snapshot's owed bars (`read_derived`,
`bar_quality`), O(1) amortized per bar appended since the last settled version, and answers as if they had
been derived and counted as the bars arrived. A read never changes what the store writes: the settled
versions a reader remembers (`Deferred`'s memos) are a cache only readers use; the store settles from the
base itself (`derived`).

Sequences returned by the read methods are fresh lists (oldest → newest); the store never changes them.
The fields ``bars_1m``, ``ticks``, ``quotes`` and the values of ``bars_derived`` are `Series`: read-only,
indexable, iterable sequences shared with other snapshots.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from sessiondata._calendar import SessionCursor
from sessiondata._models import Bar, Provenance, Quote, Tick

from .derived import Deferred
from .provenance import EMPTY_PROVENANCE, ProvenanceMap
from .quality import QualityState
from .series import Series
from .windows import DerivedState

__all__ = ["SymbolSessionData", "WriterState", "check_interval"]

_EMPTY_MAP: Mapping[Any, Any] = MappingProxyType({})


def check_interval(interval: object, configured: Mapping[int, Any]) -> int:
    """Return ``interval`` if it is 1 or a configured derived interval, else raise `ValueError`. O(1)."""
    if type(interval) is int and (interval == 1 or interval in configured):
        return interval
    if not isinstance(interval, int) or isinstance(interval, bool):
        raise ValueError(f"interval must be a whole number of minutes, got {interval!r}")
    if interval <= 0:
        raise ValueError(f"interval must be a positive number of minutes, got {interval!r}")
    raise ValueError(
        f"interval={interval} is not configured: use 1 or one of {sorted(configured)} "
        "(SessionData(derived_intervals=...))"
    )


class WriterState(NamedTuple):
    """The store's own state for one symbol, carried by each snapshot in one opaque slot
    (`SymbolSessionData.writer`): what the writer needs to build the next snapshot, and nothing a reader
    asks for. Immutable, like the snapshot; built by the writer (one per write) and read by the writer and
    the store's bookkeeping (memory accounting, invariant checks).

    The bar-quality state is four flat fields (``quality_*``, `QualityState` as a record through
    `quality_state`) rather than a nested record: they change on every streamed bar a store deriving
    eagerly takes, so its hot lane builds one record per bar instead of two (a named tuple costs ~100 ns
    more to build than a plain one). A lazy store's hot lane builds none: it owes the work
    (``derived_pending``), and its snapshots share one `WriterState` until a write that settles."""

    #: The derived states when ``derived_pending`` is None; else stale (`SymbolSessionData.derived` settles).
    derived_base: Mapping[int, DerivedState]
    #: Where each bar that was not simply streamed came from (persistent: O(log n) per mark).
    provenance_overrides: ProvenanceMap
    #: True once a bar, tick or quote fixed whether this symbol's timestamps are timezone-aware.
    tz_aware: bool | None
    #: ``(derived, lo, hi, day)``: while ``derived`` is this very mapping, a 1-minute bar at minute offset
    #: ``lo <= offset <= hi`` of ``day`` lies inside every forming window, so one check skips all intervals
    #: (at ``hi``, the earliest last minute, windows complete). ``None``: unknown.
    derived_skip: tuple[Mapping[int, DerivedState], int, int, date] | None = None
    #: While the store derives lazily: the work its in-order bars since the last settle are owed (derived
    #: states and bar quality, see `sessiondata.core.derived`); ``derived_base``, the ``quality_*`` fields
    #: and ``quality`` are then stale. None when the store derives and counts as bars arrive.
    derived_pending: Deferred | None = None
    #: `QualityState.day`, or None before the first bar located in a session (then no quality state).
    quality_day: date | None = None
    #: `QualityState.minutes`.
    quality_minutes: int = 0
    #: `QualityState.newest`.
    quality_newest: int = -1
    #: `QualityState.marker`.
    quality_marker: int | None = None
    #: The session volume as an exact fraction with its count of float volumes
    #: (`sessiondata.core.volume.ExactSum`) while a float volume is stored (``session_volume`` is then its
    #: correctly rounded value); None while it is an exact `int`.
    volume_exact: tuple[int, int, int] | None = None
    #: Bar quality (`SymbolSessionData.bar_quality`) when ``derived_pending`` is None; else stale.
    quality: float = 0.0

    @property
    def quality_state(self) -> QualityState | None:
        """The bar-quality state as one record, or None before the first located bar. O(1)."""
        day = self.quality_day
        if day is None:
            return None
        return QualityState(day, self.quality_minutes, self.quality_newest, self.quality_marker)


class SymbolSessionData(NamedTuple):
    """One symbol's session data at one instant. Immutable; safe to share between any threads.

    Fields (contract): ``symbol, bars_1m, bars_derived, bar_quality, quotes, ticks, session_volume,
    session_high, session_low, last_update, historical_bars``. Also ``bars_version``, ``ticks_version``,
    ``quotes_version``: the store-wide write count at the last write that changed that series, so a reader
    can tell what changed since it last looked, and ``version``, the greatest of them.

    A `NamedTuple` rather than an attrs class because the store builds one per write: a tuple is built in
    one C call (~0.1 µs) where a frozen 16-field attrs instance costs ~1.2 µs, most of a write's budget.
    Treat it as a record; its tuple-ness is an implementation detail.

    Attributes:
        symbol: The symbol.
        bars_storage: Where the session's 1-minute bars live: a `Series` that may hold newer bars of later
            snapshots past ``bar_count`` (read `bars_1m`, this snapshot's own version).
        bar_count: How many 1-minute bars this snapshot holds.
        quotes: The session's quotes, oldest first (an immutable `Series`).
        ticks: The session's ticks, oldest first (an immutable `Series`).
        session_volume: The session volume.
        session_high: The session high, or `None` without bars.
        session_low: The session low, or `None` without bars.
        historical_bars: Bars of ended sessions: ``historical_bars[interval][date]`` is a tuple of bars.
        latest_bar: The newest 1-minute bar (``bars_1m.last()``), or `None`: the hottest read, one field.
        writer: The store's own state for this symbol (`WriterState`): opaque to readers.
    """

    symbol: str
    # The 1-minute bars as a storage and a count, not one `Series` per version: an in-order write appends to
    # the storage in place and builds no series object (`Series.grown`); readers get `bars_1m`.
    bars_storage: Series[Bar]
    bar_count: int
    quotes: Series[Quote]
    ticks: Series[Tick]
    session_volume: float
    session_high: float | None
    session_low: float | None
    historical_bars: Mapping[int, Mapping[date, Series[Bar]]]
    bars_version: int
    ticks_version: int
    quotes_version: int
    # ``bars_1m.last()``, kept by the writer so that the hottest read is one field.
    latest_bar: Bar | None
    writer: WriterState

    @classmethod
    def empty(
        cls,
        symbol: str,
        intervals: tuple[int, ...],
        owed: SessionCursor | None = None,
        ended: bool = False,
    ) -> SymbolSessionData:
        """A snapshot with no data for ``symbol`` and an empty series per derived interval. With ``owed``
        (a lazy store's readers' cursor, see `Deferred`) its bars' derivation and bar quality are owed to
        the first reader; without, the writer derives and counts as bars arrive. ``ended``: registered
        after the session ended (see `DerivedState.ended`). O(k)."""
        base = MappingProxyType({k: DerivedState(k, ended=ended) for k in intervals})
        return cls(
            symbol=symbol,
            bars_storage=Series(),
            bar_count=0,
            quotes=Series(),
            ticks=Series(),
            session_volume=0,
            session_high=None,
            session_low=None,
            historical_bars=_EMPTY_MAP,
            bars_version=0,
            ticks_version=0,
            quotes_version=0,
            latest_bar=None,
            writer=WriterState(
                derived_base=base,
                provenance_overrides=EMPTY_PROVENANCE,
                tz_aware=None,
                derived_skip=None,
                derived_pending=None if owed is None else Deferred(base, None, 0, owed),
            ),
        )

    @property
    def derived(self) -> Mapping[int, DerivedState]:
        """``{interval: DerivedState}`` at this snapshot, for the store's own use (the writer, history,
        checks): with lazy derivation, the owed bars settled from the base itself (`Deferred.derive`),
        reading and remembering nothing a reader remembered, so what the store does with it never depends
        on reads.

        O(1) when derived as bars arrive; else O(bars owed since the writer last settled, + k per window
        built), every call. Thread-safety: any thread, lock-free (pure)."""
        writer = self.writer
        pending = writer.derived_pending
        if pending is None:
            return writer.derived_base
        return pending.derive(self.bars_1m, self.symbol)

    def read_derived(self) -> Mapping[int, DerivedState]:
        """`derived`, for a reader of derived bars: with lazy derivation the owed bars are settled from the
        newest version a reader remembered, and the result remembered for later readers (`Deferred.settled`:
        a racy but idempotent cache the writer never reads). A read never changes what the store writes:
        eager or lazy derivation is the store's option (`SessionData`'s ``derivation``).

        O(1) once settled; the first read after new bars pays their derivation, O(1) amortized per bar.
        Thread-safety: any thread, lock-free."""
        writer = self.writer
        pending = writer.derived_pending
        if pending is None:
            return writer.derived_base
        return pending.settled(self.bars_1m, self.symbol)

    # ------------------------------------------------------------ contract fields

    @property
    def bars_1m(self) -> Series[Bar]:
        """The session's 1-minute bars, oldest first (an immutable `Series`). O(1): a view of the storage at
        this snapshot's count, remembered for the next reader. Thread-safety: any thread, lock-free."""
        return self.bars_storage.view(self.bar_count)

    @property
    def bars_derived(self) -> Mapping[int, Series[Bar]]:
        """``{interval: completed derived bars}`` for every configured derived interval. O(k)."""
        return MappingProxyType({k: s.bars for k, s in self.read_derived().items()})

    @property
    def bar_quality(self) -> float:
        """The session's bar quality, a percentage (0-100): see the contract. O(1) when counted as bars
        arrived or already settled at this snapshot; with lazy derivation the first read after new bars
        counts them, O(1) amortized per bar (`Deferred.quality`: never derives a window). Thread-safety: any
        thread, lock-free."""
        writer = self.writer
        pending = writer.derived_pending
        if pending is None:
            return writer.quality
        return pending.quality_after(self.bars_storage, self.bar_count, self.latest_bar)

    @property
    def last_update(self) -> datetime | None:
        """The greatest 1-minute bar timestamp, or ``None``. O(1)."""
        last = self.latest_bar
        return None if last is None else last.timestamp

    @property
    def tz_aware(self) -> bool | None:
        """True once a bar, tick or quote fixed this symbol's timestamps as timezone-aware, False as naive;
        None before. One symbol never mixes the two. O(1)."""
        return self.writer.tz_aware

    @property
    def version(self) -> int:
        """The newest of the bars, ticks and quotes versions: grows on every write to this symbol. O(1)."""
        return max(self.bars_version, self.ticks_version, self.quotes_version)

    # ---------------------------------------------------------------- reads

    def _series(self, interval: int) -> Series[Bar]:
        if interval == 1 and type(interval) is int:
            return self.bars_1m
        writer = self.writer
        derived = writer.derived_base  # its keys are the configured intervals, settled or not
        check_interval(interval, derived)
        if writer.derived_pending is not None:
            derived = self.read_derived()
        return derived[interval].bars

    def get_latest_bar(self, interval: int = 1) -> Bar | None:
        """The bar with the greatest timestamp, or ``None``. O(1)."""
        if interval == 1 and type(interval) is int:
            return self.latest_bar
        return self._series(interval).last()

    def get_last_n_bars(self, n: int, interval: int = 1) -> list[Bar]:
        """The last ``n`` bars, oldest → newest; ``[]`` for ``n <= 0``. O(n), not O(len). Raises
        `TypeError` if ``n`` is not an int."""
        if type(n) is not int:
            try:
                n = operator.index(n)  # an int subclass or an integer-like (numpy) count
            except TypeError:
                raise TypeError(f"n must be an int (a count of bars), got {n!r}") from None
        return self._series(interval).last_n(n)

    def get_bars_since(self, timestamp: datetime, interval: int = 1) -> list[Bar]:
        """Bars with ``timestamp >= t``, oldest → newest. O(log n + k). Raises `TypeError` for a
        ``timestamp`` that is not a datetime, `ValueError` for one of the other timezone style than the
        symbol's bars (naive against aware)."""
        series = self._series(interval)
        try:
            return series.since(timestamp)
        except TypeError:
            raise self._query_error(series, False, timestamp=timestamp) from None

    def get_bars(
        self, interval: int = 1, start: datetime | None = None, end: datetime | None = None
    ) -> list[Bar]:
        """Bars with ``start <= timestamp < end`` (half-open; ``None`` is unbounded). O(log n + k). Raises
        `TypeError` for a bound that is not a datetime or None, `ValueError` for one of the other timezone
        style than the symbol's bars."""
        series = self._series(interval)
        try:
            return series.between(start, end)
        except TypeError:
            raise self._query_error(series, True, start=start, end=end) from None

    def _query_error(self, series: Series[Bar], optional: bool, **bounds: object) -> Exception:
        """The clear error for query bounds a series could not compare with its bars (off the hot path:
        only after the comparison failed). ``optional``: ``None`` is a valid bound (unbounded)."""
        first = series.first()
        for name, value in bounds.items():
            if value is None and optional:
                continue
            if not isinstance(value, datetime):
                return TypeError(f"{name} must be a datetime{' or None' if optional else ''}, got {value!r}")
            if first is not None and (value.tzinfo is None) != (first.timestamp.tzinfo is None):
                style = "naive" if value.tzinfo is None else "timezone-aware"
                bars = "timezone-aware" if value.tzinfo is None else "naive"
                return ValueError(
                    f"{name}={value.isoformat()} is {style}, but {self.symbol}'s bars are {bars}: "
                    "query with the bars' timestamp style"
                )
        return TypeError(f"cannot compare the query bounds {bounds!r} with {self.symbol}'s bars")

    def get_bar_count(self, interval: int = 1) -> int:
        """How many bars the series holds. O(1)."""
        if interval == 1 and type(interval) is int:
            return self.bar_count
        return len(self._series(interval))

    def get_forming_bar(self, interval: int) -> Bar | None:
        """The partial bar of the derived window still forming (not in ``get_bars``), or ``None``.

        O(k + log n) for a k-minute window (aggregated on read)."""
        if interval == 1:
            raise ValueError("interval=1 has no forming bar: 1-minute bars are stored as they arrive")
        check_interval(interval, self.writer.derived_base)
        return self.read_derived()[interval].forming_bar(self.symbol, self.bars_1m)

    def get_provenance(self, timestamp: datetime) -> Provenance | None:
        """Where the 1-minute bar stamped ``timestamp`` came from, or ``None`` if there is none. O(log n)."""
        if self.bars_1m.find(timestamp) is None:
            return None
        return self.writer.provenance_overrides.of(timestamp)

    def get_ticks(self, start: datetime | None = None, end: datetime | None = None) -> list[Tick]:
        """Ticks with ``start <= timestamp < end``, in time order (arrival order for equal times), as a new
        list. O(log n + k) for k returned."""
        return self.ticks.between(start, end)

    def get_quotes(self, start: datetime | None = None, end: datetime | None = None) -> list[Quote]:
        """Quotes with ``start <= timestamp < end``, in time order (arrival order for equal times), as a new
        list. O(log n + k) for k returned."""
        return self.quotes.between(start, end)

    def get_session_metrics(self) -> dict[str, Any]:
        """The contract's metrics dict (plus versions and tick/quote counts). O(1), but for a lazy store's
        owed bar quality (see `bar_quality`)."""
        return {
            "symbol": self.symbol,
            "session_volume": self.session_volume,
            "session_high": self.session_high,
            "session_low": self.session_low,
            "last_update": self.last_update,
            "bar_quality": self.bar_quality,
            "bar_count": self.bar_count,
            "tick_count": len(self.ticks),
            "quote_count": len(self.quotes),
            "bars_version": self.bars_version,
            "ticks_version": self.ticks_version,
            "quotes_version": self.quotes_version,
        }

    def __repr__(self) -> str:
        return (
            f"<SymbolSessionData {self.symbol}: {self.bar_count} bars, {len(self.ticks)} ticks, "
            f"{len(self.quotes)} quotes, quality={self.bar_quality:.1f}%, version={self.version}>"
        )
