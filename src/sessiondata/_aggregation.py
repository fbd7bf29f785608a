"""Derived bars (5m, 15m, any whole number of minutes), maintained incrementally from 1-minute bars.

Windows are aligned to the session's open in the exchange's zone (09:30, 09:35, ... for 5 minutes); the last
window of a session ends at the close even when that makes it shorter (a 7-minute series ends with a
5-minute window at 16:00). Only regular-session minutes are derived.

A `DerivedState` is immutable: `DerivedState.add` returns the next state, so a store write that fails half
way simply drops it, and a snapshot can hold the state that produced its bars. Per 1-minute bar the work is
O(1) amortized: an in-order bar folds into the forming window; a bar for a later window completes the forming
one; a late or corrected bar re-derives only the window it falls in (from the 1-minute series, O(k + log n)).

A window completes when its last minute arrives, when a bar of a later window arrives, or at `flush` (the
store's ``end_session``). Completed windows are emitted into the derived `Series`; the forming window is
readable separately (`DerivedState.forming_bar`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import NamedTuple

from ._calendar import SessionClock
from ._models import Bar
from ._series import Series

__all__ = ["DerivedState", "Window", "aggregate", "derive_from_scratch", "window_of"]

_MINUTE = timedelta(minutes=1)


class Window(NamedTuple):
    """A window's running aggregate. ``key`` orders windows: ``(session date, window index)``."""

    key: tuple[date, int]
    timestamp: datetime
    length: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    last: datetime


def window_of(bar_ts: datetime, offset: int, session_len: int, interval: int) -> tuple[int, datetime, int]:
    """``(index, window start timestamp, window length in minutes)`` of the minute ``offset``.

    The start keeps the 1-minute bar's timezone style (naive stays naive). O(1).
    """
    index = offset // interval
    start = index * interval
    length = min(interval, session_len - start)
    minute = bar_ts.replace(second=0, microsecond=0)
    return index, minute - (offset - start) * _MINUTE, length


def aggregate(symbol: str, timestamp: datetime, bars: Iterable[Bar]) -> Bar | None:
    """One bar from ``bars`` (time order): first open, max high, min low, last close, summed volume."""
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


def _window_bar(symbol: str, w: Window) -> Bar:
    return Bar(symbol, w.timestamp, w.open, w.high, w.low, w.close, w.volume)


class DerivedState:
    """One derived interval's state: its completed bars, the forming window, and the newest completed key.

    Immutable; every method is O(1) amortized except re-deriving a window, O(k + log n). Safe to read from
    any thread; `add`/`flush` are called by the store's writer under its lock.
    """

    __slots__ = ("bars", "completed", "forming", "interval")

    def __init__(
        self,
        interval: int,
        bars: Series[Bar] | None = None,
        forming: Window | None = None,
        completed: tuple[date, int] | None = None,
    ) -> None:
        self.interval = interval
        self.bars: Series[Bar] = bars if bars is not None else Series()
        self.forming = forming
        self.completed = completed

    def forming_bar(self, symbol: str) -> Bar | None:
        """The partial bar of the window still forming, or ``None``. O(1)."""
        return None if self.forming is None else _window_bar(symbol, self.forming)

    def flush(self, symbol: str) -> DerivedState:
        """Complete the forming window (end of session). O(1) amortized."""
        w = self.forming
        if w is None:
            return self
        bars, _ = self.bars.upserted(_window_bar(symbol, w))
        return DerivedState(self.interval, bars, None, w.key)

    def passed(self, symbol: str, ts: datetime) -> DerivedState:
        """Complete the forming window if a bar outside the session at ``ts`` shows its end has passed.

        A post-close or next-morning bar is "a later bar" for the last window of a session. O(1).
        """
        w = self.forming
        if w is None or ts < w.timestamp + w.length * _MINUTE:
            return self
        return self.flush(symbol)

    def add(
        self,
        bar: Bar,
        day: date,
        offset: int,
        session_len: int,
        bars_1m: Series[Bar],
        *,
        in_order: bool,
    ) -> DerivedState:
        """The state after ``bar`` (already stored in ``bars_1m``) arrived at minute ``offset`` of ``day``.

        ``in_order`` is true when ``bar`` is a new bar later than every other stored bar, so it can fold
        into the forming window without looking at the 1-minute series.
        """
        index, start, length = window_of(bar.timestamp, offset, session_len, self.interval)
        key = (day, index)
        last_minute = offset == index * self.interval + length - 1
        w = self.forming
        if w is not None and key == w.key:
            if in_order:
                w = Window(
                    key,
                    w.timestamp,
                    length,
                    w.open,
                    bar.high if bar.high > w.high else w.high,
                    bar.low if bar.low < w.low else w.low,
                    bar.close,
                    w.volume + bar.volume,
                    bar.timestamp,
                )
            else:
                w = self._rederive(bar.symbol, key, start, length, bars_1m)
            if last_minute:
                return DerivedState(
                    self.interval, self.bars.upserted(_window_bar(bar.symbol, w))[0], None, key
                )
            return DerivedState(self.interval, self.bars, w, self.completed)
        if (w is None or key > w.key) and (self.completed is None or key > self.completed):
            bars = self.bars
            completed = self.completed
            if w is not None:
                bars, _ = bars.upserted(_window_bar(bar.symbol, w))
                completed = w.key
            if in_order:
                new = Window(
                    key, start, length, bar.open, bar.high, bar.low, bar.close, bar.volume,
                    bar.timestamp,
                )  # fmt: skip
            else:
                new = self._rederive(bar.symbol, key, start, length, bars_1m)
            if last_minute:
                return DerivedState(self.interval, bars.upserted(_window_bar(bar.symbol, new))[0], None, key)
            return DerivedState(self.interval, bars, new, completed)
        # A late or corrected bar for a window that has already completed: re-derive that window only.
        redone = self._rederive(bar.symbol, key, start, length, bars_1m)
        bars, _ = self.bars.upserted(_window_bar(bar.symbol, redone))
        return DerivedState(self.interval, bars, self.forming, self.completed)

    @staticmethod
    def _rederive(
        symbol: str, key: tuple[date, int], start: datetime, length: int, bars_1m: Series[Bar]
    ) -> Window:
        """The window re-aggregated from the stored 1-minute bars (which hold the bar that triggered it)."""
        members = bars_1m.between(start, start + length * _MINUTE)
        b = aggregate(symbol, start, members)
        assert b is not None, "a re-derived window always holds the bar that triggered it"
        return Window(key, start, length, b.open, b.high, b.low, b.close, b.volume, members[-1].timestamp)


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
