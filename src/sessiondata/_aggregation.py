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
from ._models import Bar, trusted_bar
from ._series import Series

__all__ = ["DerivedState", "aggregate", "derive_from_scratch", "window_of"]

_MINUTE = timedelta(minutes=1)
# timedelta(minutes=i) for every minute of a day: window arithmetic runs on every window change, and
# building timedeltas dominated it.
_MINUTES = tuple(timedelta(minutes=i) for i in range(24 * 60 + 1))

# A window still forming: (session date, window index, start timestamp, end timestamp, first minute offset,
# last minute offset). The offsets let the store skip `add` for a bar inside the window (see `is_inside`).
_Forming = tuple[date, int, datetime, datetime, int, int]


def window_of(bar_ts: datetime, offset: int, session_len: int, interval: int) -> tuple[int, datetime, int]:
    """``(index, window start timestamp, window length in minutes)`` of the minute ``offset``.

    The start keeps the 1-minute bar's timezone style (naive stays naive). O(1).
    """
    index = offset // interval
    start = index * interval
    length = min(interval, session_len - start)
    if bar_ts.second or bar_ts.microsecond:
        bar_ts -= timedelta(seconds=bar_ts.second, microseconds=bar_ts.microsecond)
    return index, bar_ts - _MINUTES[offset - start], length


def aggregate(symbol: str, timestamp: datetime, bars: Iterable[Bar]) -> Bar | None:
    """One bar from ``bars`` (time order): first open, max high, min low, last close, summed volume. O(k)."""
    it = iter(bars)
    first = next(it, None)
    if first is None:
        return None
    high, low, close, volume = first.high, first.low, first.close, first.volume
    for b in it:
        if b.high > high:  # noqa: PLR1730 - a comparison is cheaper than a call to max()
            high = b.high
        if b.low < low:  # noqa: PLR1730
            low = b.low
        close = b.close
        volume += b.volume
    return trusted_bar(symbol, timestamp, first.open, high, low, close, volume)


def _window_bar(
    symbol: str, start: datetime, end: datetime, bars_1m: Series[Bar], span: int | None = None
) -> Bar | None:
    """The bar of window ``[start, end)``.

    ``span`` (the window's length + 1) says the window's bars are the newest ones: read the series' tail
    instead of searching it, unless the tail does not reach back past ``start`` (bars stamped with seconds).
    """
    members: list[Bar] | None = None
    if span is not None:
        tail = bars_1m.last_n(span)
        if len(tail) < span or tail[0].timestamp < start:
            i = 0
            j = len(tail)
            while i < j and tail[i].timestamp < start:
                i += 1
            while j > i and tail[j - 1].timestamp >= end:
                j -= 1
            members = tail[i:j]
    if members is None:
        members = bars_1m.between(start, end)
    return aggregate(symbol, start, members)


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
        bars = _with_window(self.bars, symbol, f, bars_1m)
        # An empty window (opened ahead by `_next_window`) never held a bar: it has not completed.
        return DerivedState(self.interval, bars, None, self.completed if bars is self.bars else (f[0], f[1]))

    def passed(self, symbol: str, ts: datetime, bars_1m: Series[Bar]) -> DerivedState:
        """Complete the forming window if a later bar outside the session, stamped ``ts``, shows its end has
        passed (a post-close or next-morning bar). O(1), or O(k + log n) when it completes."""
        f = self.forming
        if f is None or ts < f[3]:
            return self
        return self.flush(symbol, bars_1m)

    def is_inside(self, day: date, offset: int) -> bool:
        """True if minute ``offset`` of ``day`` lies in the forming window before its last minute: then
        `add` would change nothing. O(1); the store calls it inline to skip the call to `add`."""
        f = self.forming
        return f is not None and f[4] <= offset < f[5] and f[0] == day

    def add(
        self, bar: Bar, day: date, offset: int, session_len: int, bars_1m: Series[Bar], in_order: bool
    ) -> DerivedState:
        """The state after ``bar`` (already stored in ``bars_1m``) arrived at minute ``offset`` of ``day``.

        ``in_order``: ``bar`` is newer than every other stored bar (so its window's bars are the newest).
        O(1) while the bar stays in the forming window; O(k + log n) when a window completes or a late bar
        re-derives a completed one.
        """
        k = self.interval
        index = offset // k
        end_offset = min(index * k + k, session_len)
        f = self.forming
        newest = bars_1m[-1].timestamp
        if f is not None and f[1] == index and f[0] == day:
            if offset != end_offset - 1:
                return self  # the forming bar is computed on read: nothing to do
            bars = _with_window(self.bars, bar.symbol, f, bars_1m, k + 1 if in_order else None)
            return DerivedState(k, bars, _next_window(f, session_len, k, newest), (day, index))
        key = (day, index)
        if (f is None or key > (f[0], f[1])) and (self.completed is None or key > self.completed):
            bars = self.bars
            completed = self.completed
            if f is not None:
                bars = _with_window(bars, bar.symbol, f, bars_1m, k + 2 if in_order else None)
                completed = (f[0], f[1])
            _, start, length = window_of(bar.timestamp, offset, session_len, k)
            new = (day, index, start, start + _MINUTES[length], index * k, end_offset - 1)
            if offset == end_offset - 1 or newest >= new[3]:
                # Its last minute is here, or a later bar already is: the window is complete.
                bars = _with_window(bars, bar.symbol, new, bars_1m, 2 if in_order else None)
                return DerivedState(k, bars, _next_window(new, session_len, k, newest), key)
            return DerivedState(k, bars, new, completed)
        # A late or corrected bar for a window that has already completed: re-derive that window only.
        _, start, length = window_of(bar.timestamp, offset, session_len, k)
        redone = (day, index, start, start + _MINUTES[length], index * k, end_offset - 1)
        return DerivedState(k, _with_window(self.bars, bar.symbol, redone, bars_1m), f, self.completed)


def _with_window(
    bars: Series[Bar], symbol: str, window: _Forming, bars_1m: Series[Bar], span: int | None = None
) -> Series[Bar]:
    """``bars`` with ``window``'s bar (re)placed, or unchanged if no 1-minute bar falls in it."""
    b = _window_bar(symbol, window[2], window[3], bars_1m, span)
    return bars if b is None else bars.upserted(b)[0]


def _next_window(done: _Forming, session_len: int, k: int, newest: datetime) -> _Forming | None:
    """The window after ``done``, opened empty as soon as ``done`` completes, so that the next bar (which
    usually falls in it) costs nothing. ``None`` after the session's last window, or when the newest stored
    bar is already past its end (it would be complete as soon as a bar landed in it). O(1)."""
    first = done[5] + 1
    if first >= session_len:
        return None
    last = min(first + k, session_len) - 1
    end = done[3] + _MINUTES[last - first + 1]
    if newest >= end:
        return None
    return (done[0], done[1] + 1, done[3], end, first, last)


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
