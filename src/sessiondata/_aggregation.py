"""Derived bars (5m, 15m, any whole number of minutes), maintained incrementally from 1-minute bars.

Windows are aligned to the session's open in the exchange's zone (09:30, 09:35, ... for 5 minutes); the last
window of a session ends at the close even when that makes it shorter (a 7-minute series ends with a
5-minute window at 16:00). Only regular-session minutes are derived.

A `DerivedState` is immutable: `DerivedState.add` returns the next state (or the same object when nothing
changed), so a store write that fails half way simply drops it and a snapshot can hold the state that
produced its bars.

Why the forming window holds no running aggregate: a 1-minute bar that lands in the forming window changes
nothing here (the state is returned as is, no allocation), and the forming bar is aggregated from the
1-minute series only when someone asks for it (`forming_bar`, O(k) for a k-minute window). A window's bar is
built once, from the 1-minute series, when it completes: O(k) once per k bars, so O(1) amortized per bar.
A late or corrected bar re-derives only the window it falls in (O(k + log n)).

A window completes when its last minute arrives, when a bar of a later window (or any later bar outside the
session) arrives, or at `flush` (the store's ``end_session``). Completed windows live in a `Series`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from ._calendar import SessionClock
from ._models import Bar
from ._series import Series

__all__ = ["DerivedState", "aggregate", "derive_from_scratch", "window_of"]

_MINUTE = timedelta(minutes=1)

# A window still forming: (session date, window index, start timestamp, end timestamp).
_Forming = tuple[date, int, datetime, datetime]


def window_of(bar_ts: datetime, offset: int, session_len: int, interval: int) -> tuple[int, datetime, int]:
    """``(index, window start timestamp, window length in minutes)`` of the minute ``offset``.

    The start keeps the 1-minute bar's timezone style (naive stays naive). O(1).
    """
    index = offset // interval
    start = index * interval
    length = min(interval, session_len - start)
    minute = bar_ts - timedelta(seconds=bar_ts.second, microseconds=bar_ts.microsecond)
    return index, minute - (offset - start) * _MINUTE, length


def aggregate(symbol: str, timestamp: datetime, bars: Iterable[Bar]) -> Bar | None:
    """One bar from ``bars`` (time order): first open, max high, min low, last close, summed volume. O(k)."""
    it = iter(bars)
    first = next(it, None)
    if first is None:
        return None
    high, low, close, volume = first.high, first.low, first.close, first.volume
    for b in it:
        high = max(high, b.high)
        low = min(low, b.low)
        close = b.close
        volume += b.volume
    return Bar(symbol, timestamp, first.open, high, low, close, volume)


def _window_bar(symbol: str, start: datetime, end: datetime, bars_1m: Series[Bar]) -> Bar:
    b = aggregate(symbol, start, bars_1m.between(start, end))
    assert b is not None, "a derived window always holds the bar that opened or changed it"
    return b


class DerivedState:
    """One derived interval's state: completed bars, the forming window, and the newest completed window.

    Immutable. Safe to read from any thread; `add`, `passed` and `flush` are called by the store's writer
    under its lock and return a new state (or ``self`` when nothing changed).
    """

    __slots__ = ("bars", "completed", "forming", "interval")

    def __init__(
        self,
        interval: int,
        bars: Series[Bar] | None = None,
        forming: _Forming | None = None,
        completed: tuple[date, int] | None = None,
    ) -> None:
        self.interval = interval
        self.bars: Series[Bar] = bars if bars is not None else Series()
        self.forming = forming
        self.completed = completed

    def forming_bar(self, symbol: str, bars_1m: Series[Bar]) -> Bar | None:
        """The partial bar of the window still forming (aggregated from ``bars_1m``), or ``None``.

        O(k + log n)."""
        f = self.forming
        if f is None:
            return None
        return aggregate(symbol, f[2], bars_1m.between(f[2], f[3]))

    def flush(self, symbol: str, bars_1m: Series[Bar]) -> DerivedState:
        """Complete the forming window (end of session). O(k + log n)."""
        f = self.forming
        if f is None:
            return self
        bars, _ = self.bars.upserted(_window_bar(symbol, f[2], f[3], bars_1m))
        return DerivedState(self.interval, bars, None, (f[0], f[1]))

    def passed(self, symbol: str, ts: datetime, bars_1m: Series[Bar]) -> DerivedState:
        """Complete the forming window if a later bar outside the session, stamped ``ts``, shows its end has
        passed (a post-close or next-morning bar). O(1), or O(k + log n) when it completes."""
        f = self.forming
        if f is None or ts < f[3]:
            return self
        return self.flush(symbol, bars_1m)

    def add(self, bar: Bar, day: date, offset: int, session_len: int, bars_1m: Series[Bar]) -> DerivedState:
        """The state after ``bar`` (already stored in ``bars_1m``) arrived at minute ``offset`` of ``day``.

        O(1) while the bar stays in the forming window; O(k + log n) when a window completes or a late bar
        re-derives a completed one.
        """
        k = self.interval
        index = offset // k
        end_offset = min(index * k + k, session_len)
        f = self.forming
        if f is not None and f[1] == index and f[0] == day:
            if offset != end_offset - 1:
                return self  # the forming bar is computed on read: nothing to do
            bars, _ = self.bars.upserted(_window_bar(bar.symbol, f[2], f[3], bars_1m))
            return DerivedState(k, bars, None, (day, index))
        key = (day, index)
        if (f is None or key > (f[0], f[1])) and (self.completed is None or key > self.completed):
            bars = self.bars
            completed = self.completed
            if f is not None:
                bars, _ = bars.upserted(_window_bar(bar.symbol, f[2], f[3], bars_1m))
                completed = (f[0], f[1])
            _, start, length = window_of(bar.timestamp, offset, session_len, k)
            end = start + length * _MINUTE
            if offset == end_offset - 1:
                bars, _ = bars.upserted(_window_bar(bar.symbol, start, end, bars_1m))
                return DerivedState(k, bars, None, key)
            return DerivedState(k, bars, (day, index, start, end), completed)
        # A late or corrected bar for a window that has already completed: re-derive that window only.
        _, start, length = window_of(bar.timestamp, offset, session_len, k)
        bars, _ = self.bars.upserted(_window_bar(bar.symbol, start, start + length * _MINUTE, bars_1m))
        return DerivedState(k, bars, f, self.completed)


def derive_from_scratch(bars: Iterable[Bar], clock: SessionClock, interval: int) -> list[Bar]:
    """Reference aggregation of 1-minute ``bars`` (any order) into ``interval``-minute bars. O(n log n).

    Every window with at least one regular-session bar, forming or not. The store's invariant checker and
    the tests compare the store's completed bars plus its forming bar against this.
    """
    windows: dict[tuple[date, int], tuple[datetime, list[Bar]]] = {}
    for b in sorted(bars, key=lambda x: x.timestamp):
        loc = clock.locate(b.timestamp)
        if loc is None:
            continue
        day, offset, session_len = loc
        index, start, _ = window_of(b.timestamp, offset, session_len, interval)
        windows.setdefault((day, index), (start, []))[1].append(b)
    out: list[Bar] = []
    for k in sorted(windows):
        start, members = windows[k]
        agg = aggregate(members[0].symbol, start, members)
        assert agg is not None
        out.append(agg)
    return out
