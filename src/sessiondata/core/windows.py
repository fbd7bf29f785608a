"""Derived bars (5m, 15m, any whole number of minutes), maintained incrementally from 1-minute bars.

Windows are aligned to the session's open in the exchange's zone (09:30, 09:35, ... for 5 minutes); the last
window of a session ends at the close even when that makes it shorter (a 7-minute series ends with a
5-minute window at 16:00). Only regular-session minutes are derived.

A `DerivedState` is immutable: a step returns the next state (or the same object when nothing
changed), so a store write that fails half way simply drops it and a snapshot can hold the state that
produced its bars.

Why the forming window holds no running aggregate: a 1-minute bar that lands in the forming window changes
nothing here (the state is returned as is, no allocation), and the forming bar is aggregated from the
1-minute series only when someone asks for it (`forming_bar`, O(k) for a k-minute window). A window's bar is
built once, from the 1-minute series, when it completes: O(k) once per k bars, so O(1) amortized per bar.
A late or corrected bar re-derives only the window it falls in (O(k + log n)).

One window machine moves every window: `window_step`, one step for one stored 1-minute bar (which
window forms, which completed, which windows to (re)build), O(1) and building nothing. Three drivers run it
and build each window it names once, from the 1-minute series, each reading the members where that path
finds them: `advance_newest` for the streamed bar newer than every other (each completed window read in
place from the series' last chunk), `advance_in_order` for an in-order run (a batch, or a lazy reader
settling its log: bars inside the forming window are skipped by bisection, then each window's bar is built
once from the run's own list), and the writer's bar-by-bar path (`DerivedState.step`, then
`DerivedState.with_windows` once per write). The tests hold all three to a from-scratch derivation
(``tests/reference.py``) and to each other.

A window completes when its last minute arrives, when a bar of a later window (or any later bar outside the
session) arrives, or at `flush` (the store's ``end_session``; after it, a window a late bar opens completes at
once). Completed windows live in a `Series`.

On a day whose clocks change, windows stay wall-clock windows of the minute offsets: their aware bounds come
from the session clock (`ClockChange.bounds`: the skipped hour cut out, the repeated hour's windows shared
by both passes), not from arithmetic on a bar's timestamp, which is right on every other day and stays the
only work done there (see docs/architecture.md, "Derived windows across a clock change").
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from sessiondata._models import Bar, trusted_bar

from .series import EMPTY, Series

if TYPE_CHECKING:
    from sessiondata._calendar import ClockChange, SessionClock

__all__ = [
    "Anchor",
    "DerivedState",
    "Segment",
    "Window",
    "advance_in_order",
    "advance_newest",
    "advance_passed",
    "aggregate",
    "own_copy",
    "window_of",
    "window_step",
]

_MINUTE = timedelta(minutes=1)
_K = TypeVar("_K")
_V = TypeVar("_V")
_new_tuple = tuple.__new__
# timedelta(minutes=i) for every minute of a day: window arithmetic runs on every window change, and
# building timedeltas dominated it.
_MINUTES = tuple(timedelta(minutes=i) for i in range(24 * 60 + 1))
_NO_TIME = _MINUTES[0]


class Window(NamedTuple):
    """A derived window of one session: where it is (``day``, ``ordinal``: the ``ordinal``-th window of
    the session, from 0), its timestamps ``[start, end)``, and its minute offsets ``first..last`` from the
    open. The writer builds them with ``tuple.__new__`` (`_window`) on its hot paths.

    On a session whose clocks change (``zone``, see `ClockChange`), aware bounds come from the session
    clock, not from arithmetic on a bar's timestamp; a window of the repeated wall hour stamped in another
    zone then spans both passes of it, less the real time between them (``hole``, half-open)."""

    day: date
    ordinal: int
    start: datetime
    end: datetime
    first: int
    last: int
    hole: tuple[datetime, datetime] | None = None
    zone: ClockChange | None = None


def _window(
    day: date,
    ordinal: int,
    start: datetime,
    end: datetime,
    first: int,
    last: int,
    hole: tuple[datetime, datetime] | None,
    zone: ClockChange | None,
) -> Window:
    """`Window(...)` without its Python-level ``__new__``. O(1)."""
    window: Window = _new_tuple(Window, (day, ordinal, start, end, first, last, hole, zone))
    return window


def _placed(
    day: date,
    index: int,
    k: int,
    end_offset: int,
    ts: datetime,
    offset: int,
    session_len: int,
    clock: SessionClock | None,
) -> Window:
    """Window ``index`` (minute offsets ``index * k .. end_offset - 1``) of ``day``, placed from the bar
    stamped ``ts`` at minute ``offset``: by the session clock when the day's clocks change and ``ts`` is
    aware (`ClockChange.bounds`), else by minute arithmetic on ``ts`` (`window_of`). O(1)."""
    first = index * k
    tz = ts.tzinfo
    zone = None if clock is None or tz is None else clock.clock_change(day)
    if zone is None or tz is None:
        _, start, length = window_of(ts, offset, session_len, k)
        if _foreign_zone(tz, clock):
            minute = ts.replace(second=0, microsecond=0)
            start, end = _instant_window(minute, -_MINUTES[offset - first], _MINUTES[length], tz)  # type: ignore[arg-type]
        else:
            end = start + _MINUTES[length]
        return _window(day, index, start, end, first, end_offset - 1, None, None)
    start, end, hole = zone.bounds(first, end_offset, tz)
    return _window(day, index, start, end, first, end_offset - 1, hole, zone)


class Segment(NamedTuple):
    """A stretch of an in-order run, as `advance_in_order` sees it: bars ``start..stop-1`` of the run, all
    in the session of ``day`` (``session_len`` minutes) at minute ``offsets`` that never decrease; or, with
    ``day`` None (``session_len`` 0, no offsets), bars outside any session."""

    day: date | None
    session_len: int
    start: int
    stop: int
    offsets: list[int]


class Anchor(NamedTuple):
    """Where a forming window's members begin: ``bar``, the 1-minute bar just before the window's first
    member, stood at ``position`` in the 1-minute series when the window opened (see
    `DerivedState.anchor`)."""

    bar: Bar
    position: int


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


def _aggregate_range(symbol: str, timestamp: datetime, bars: Sequence[Bar], a: int, b: int) -> Bar:
    """`aggregate` of ``bars[a:b]`` (non-empty) without slicing them out. O(b - a)."""
    first = bars[a]
    high, low, volume = first.high, first.low, first.volume
    for i in range(a + 1, b):
        x = bars[i]
        if x.high > high:  # noqa: PLR1730 - a comparison is cheaper than a call to max()
            high = x.high
        if x.low < low:  # noqa: PLR1730
            low = x.low
        volume += x.volume
    if type(volume) is not int:
        # Fractional units: the correctly rounded sum, as the session volume (`sessiondata.core.volume`),
        # not the time-order float sum with noise in its last digits.
        volume = math.fsum([bars[i].volume for i in range(a, b)])
    ft = first.timestamp
    # Share the 1-minute bar's datetime (48 bytes less per derived bar) when it is the window's start. Only
    # compared when both have one tzinfo (or none): aware datetimes with different tzinfo objects (as each
    # parsed ISO string has) cost ~200 ns to compare, more than the saving is worth on the writer's path.
    # One tzinfo compares wall time, blind to `fold`: the second pass of a repeated hour is another instant.
    if ft.tzinfo is timestamp.tzinfo and ft == timestamp and ft.fold == timestamp.fold:
        timestamp = ft
    return trusted_bar(symbol, timestamp, first.open, high, low, bars[b - 1].close, volume)


def aggregate(symbol: str, timestamp: datetime, bars: Iterable[Bar]) -> Bar | None:
    """One bar from ``bars`` (time order): first open, max high, min low, last close, summed volume;
    ``None`` for no bars. O(k)."""
    members = bars if isinstance(bars, (list, tuple)) else list(bars)
    return _aggregate_range(symbol, timestamp, members, 0, len(members)) if members else None


def _window_bar(symbol: str, window: Window, bars_1m: Series[Bar]) -> Bar | None:
    """The bar of ``window``, its members found by search. O(k + log n)."""
    start, end, hole = window.start, window.end, window.hole
    if hole is None:
        return aggregate(symbol, start, bars_1m.between(start, end))
    return aggregate(symbol, start, bars_1m.between(start, hole[0]) + bars_1m.between(hole[1], end))


def _newest_bar(
    symbol: str,
    window: Window,
    span: int | None,
    bars_1m: Series[Bar],
    anchor: Anchor | None,
    day: date,
    offset: int,
) -> Bar | None:
    """The bar of ``window``, named by a step for the newest bar of ``bars_1m`` (at minute ``offset`` of
    ``day``): ``span`` (see `window_step`) bars at the end of the series hold its members and one bar before
    them, ``None``: search. ``anchor``: the window's anchor when it is the forming window the step completed.

    The members are read in place from the series' last chunk, bounded below by the anchor (checked by
    identity at its index: no timestamp comparison) or by the bar ``span`` from the end, and above by the
    newest bar (a member when its minute lies in the window). O(k), or O(k + log n) by search (a late bar's
    window, members across a chunk boundary, more members than minutes: bars stamped with seconds)."""
    start = window.start
    if span is None or window.hole is not None:
        # A window with a hole (both passes of a repeated wall hour, see `Window`) is read by search: the
        # bars from its first member up to the newest need not all be its members. A bar of the repeated
        # hour's second pass (stored in order by the writer's general path) may lie in the hole, after the
        # anchor of a window of the first pass, and belongs to the window of its own wall minute.
        return _window_bar(symbol, window, bars_1m)
    chunk, n, chunk_start = bars_1m.tail()
    # The newest bar is a member when its minute is one of the window's, else the first bar past it.
    b = n if window.first <= offset <= window.last and window.day == day else n - 1
    a = -1 if anchor is None else anchor.position - chunk_start
    if 0 <= a < n - 1 and chunk[a] is anchor.bar:  # type: ignore[union-attr]
        a += 1  # the anchor still stands where it did: every later item up to the newest is a member
    else:
        a = n - span
        if a < 0 or not chunk[a].timestamp < start:
            return _window_bar(symbol, window, bars_1m)
        a += 1
        while a < b and chunk[a].timestamp < start:
            a += 1
    return _aggregate_range(symbol, start, chunk, a, b) if a < b else None


class DerivedState(NamedTuple):
    """One derived interval's state: completed bars, the forming window, and the newest completed window.

    Immutable. Safe to read from any thread; `stepped_newest`, `moved`, `with_windows`, `passed` and
    `flush` are called by the store's writer under its lock and return a new state (or ``self`` when
    nothing changed).

    A `NamedTuple` rather than a slotted class because the writer builds one per completed window: a tuple
    is built in one C call, where five slot assignments cost twice as much.
    """

    interval: int
    bars: Series[Bar] = EMPTY
    forming: Window | None = None
    completed: tuple[date, int] | None = None
    # `Anchor`: the 1-minute bar just before the forming window's first member and its position in the
    # 1-minute series, set when `stepped_newest` opened the window ahead of the newest bar. While the series
    # still holds that very object at that index, the window's members are exactly the items after it, so
    # completing the window needs no timestamp comparison (aware ones with foreign tzinfos cost ~200 ns
    # each). A writer that inserts a bar out of order drops it (`without_anchor`).
    anchor: Anchor | None = None
    # The session ended (`flush`, the store's ``end_session``): a window a late bar opens completes at once,
    # so that every window stays complete until the next session (whose states start afresh).
    ended: bool = False

    def forming_bar(self, symbol: str, bars_1m: Series[Bar]) -> Bar | None:
        """The partial bar of the window still forming (aggregated from ``bars_1m``), or ``None``.

        O(k + log n)."""
        f = self.forming
        if f is None:
            return None
        return _window_bar(symbol, f, bars_1m)

    def flush(self, symbol: str, bars_1m: Series[Bar]) -> DerivedState:
        """Complete the forming window at the end of the session: from here on, a window a late bar opens
        completes at once (``ended``). O(k + log n)."""
        done = self._completed_forming(symbol, bars_1m)
        return done if done.ended else done._replace(ended=True)

    def _completed_forming(self, symbol: str, bars_1m: Series[Bar]) -> DerivedState:
        """This state with its forming window completed. O(k + log n)."""
        f = self.forming
        if f is None:
            return self
        bars = _with_window(self.bars, symbol, f, bars_1m)
        # An empty window (opened ahead by `_next_window`) never held a bar: it has not completed.
        completed = self.completed if bars is self.bars else (f.day, f.ordinal)
        return DerivedState(self.interval, bars, None, completed, None, self.ended)

    def without_anchor(self) -> DerivedState:
        """This state without its anchor (see ``anchor``), for a writer that shifted the 1-minute series
        by inserting a bar. O(1)."""
        if self.anchor is None:
            return self
        return self._replace(anchor=None)

    def passed(
        self, symbol: str, ts: datetime, bars_1m: Series[Bar], clock: SessionClock | None = None
    ) -> DerivedState:
        """The state after a bar outside every trading minute, stamped ``ts``, was appended to ``bars_1m``
        (newer than every other): the forming window completes if ``ts`` shows its end has passed (a
        post-close or next-morning bar); after the session ended (``ended``), a print inside a break
        re-derives the completed window holding it (`formed_window_at`; needs ``clock``). O(1), or
        O(k + log n) when a window is built."""
        f = self.forming
        if f is not None and ts >= f.end:
            return self._completed_forming(symbol, bars_1m)
        if self.ended:
            window = self.formed_window_at(ts, clock)
            if window is not None:
                return self.with_windows(symbol, [window], bars_1m)
        return self

    def print_window(self, ts: datetime, clock: SessionClock | None) -> Window | None:
        """The window that a bar stamped ``ts`` outside every trading minute lies in (a print inside a
        break, or in a wall minute clocks skip), whether or not it formed; ``None`` outside every session
        (or without a ``clock``). O(1)."""
        pos = None if clock is None else clock.position(ts)
        if pos is None:
            return None
        day, offset, session_len = pos
        k = self.interval
        index = offset // k
        end_offset = min(index * k + k, session_len)
        return _placed(day, index, k, end_offset, ts, offset, session_len, clock)

    def formed_window_at(self, ts: datetime, clock: SessionClock | None) -> Window | None:
        """The completed window holding a bar stamped ``ts`` outside every trading minute (`print_window`)
        when its bar is stored (it formed): that window aggregates every bar stamped inside it, so a print
        arriving after it formed (late, or after ``end_session``) re-derives it. ``None`` when the window
        has no bar among the completed ones: still forming or to come (its completion will aggregate the
        print), or never formed (a window of non-trading minutes only, or no trading bar in it yet: the bar
        that forms it will aggregate the print). O(log n)."""
        window = self.print_window(ts, clock)
        return window if window is not None and self.bars.find(window.start) is not None else None

    def is_inside(self, day: date, offset: int) -> bool:
        """True if minute ``offset`` of ``day`` lies in the forming window before its last minute: then
        `step` would change nothing. O(1); the writer asks it before each bar-by-bar step."""
        f = self.forming
        return f is not None and f.first <= offset < f.last and f.day == day

    def stepped_newest(
        self,
        bar: Bar,
        bars_1m: Series[Bar],
        day: date,
        offset: int,
        session_len: int,
        clock: SessionClock | None = None,
    ) -> DerivedState:
        """The state after ``bar``, just appended to ``bars_1m`` (newer than every other), at minute
        ``offset`` of ``day``: the window machine's `step`, each window it names built once, its
        members read in place from the series' last chunk (`_newest_bar`). ``self`` when nothing changes
        (the bar lies inside the forming window before its last minute). The streamed hot lane's step, per
        interval (see `advance_newest`).

        A forming window opened ahead of the newest bar (empty) is anchored at it (see ``anchor``). O(1);
        O(k) per window built (O(k + log n) for a re-derived window or members not all in the last chunk).
        Writers only (pure: returns a new state). ``clock``: see `window_step`."""
        k, bars, f, completed, anchor, ended = self
        moved = window_step(k, f, completed, day, offset, session_len, bar.timestamp, None, clock, ended)
        if moved is None:
            return self
        forming, completed, built = moved
        symbol = bar.symbol
        for window, span in built:
            made = _newest_bar(symbol, window, span, bars_1m, anchor if window is f else None, day, offset)
            if made is None:
                continue
            # A span says the window is newer than every completed one (its bar sorts last); None: a late
            # bar's window re-derived.
            bars = bars.appended(made) if span is not None else bars.upserted(made)[0]
        anchor = None
        if forming is not None and (forming.day != day or forming.first > offset):
            # Opened ahead, empty: the newest bar is the one just before its first member.
            anchor = _new_tuple(Anchor, (bar, bars_1m.size - 1))  # `Anchor(...)`, one C call
        return _new_tuple(DerivedState, (k, bars, forming, completed, anchor, ended))

    def step(
        self,
        day: date,
        offset: int,
        session_len: int,
        ts: datetime,
        newest: datetime,
        clock: SessionClock | None = None,
    ) -> tuple[Window | None, tuple[date, int] | None, tuple[tuple[Window, int | None], ...]] | None:
        """The window machine's step for one stored 1-minute bar stamped ``ts`` at minute ``offset`` of
        ``day`` (``newest``: the newest stored timestamp), without building any bar: ``None`` when nothing
        changes, else the forming window and newest completed key after it, and the windows whose bars it
        (re)builds, each with how many of the newest 1-minute bars hold its members when ``ts`` is the
        newest (a hint for `_window_bar`; ``None``: search). O(1). See `window_step`.
        """
        k, _, f, completed, _, ended = self
        return window_step(k, f, completed, day, offset, session_len, ts, newest, clock, ended)

    def moved(self, forming: Window | None, completed: tuple[date, int] | None) -> DerivedState:
        """This state with the window machine moved to ``forming``/``completed`` (see `step`), its bars
        not yet rebuilt (see `with_windows`). O(1)."""
        return DerivedState(self.interval, self.bars, forming, completed, None, self.ended)

    def with_windows(self, symbol: str, windows: Sequence[Window], bars_1m: Series[Bar]) -> DerivedState:
        """This state with the bar of each of ``windows`` (distinct, in time order) (re)built from
        ``bars_1m``, once each. Adjacent windows (a fill's) read their 1-minute bars in one piece.
        O(windows * k + runs * log n)."""
        bars = self.bars
        i = 0
        n = len(windows)
        while i < n:
            j = i + 1
            while j < n and windows[j].start == windows[j - 1].end:
                j += 1
            src = bars_1m.between(windows[i].start, windows[j - 1].end)
            if src:
                run = [(w, len(src)) for w in windows[i:j]]
                bars = _rebuilt(bars, symbol, run, src, [b.timestamp for b in src], 0)
            i = j
        return self._replace(bars=bars)


def window_step(
    k: int,
    f: Window | None,
    completed: tuple[date, int] | None,
    day: date,
    offset: int,
    session_len: int,
    ts: datetime,
    newest: datetime | None,
    clock: SessionClock | None = None,
    ended: bool = False,
) -> tuple[Window | None, tuple[date, int] | None, tuple[tuple[Window, int | None], ...]] | None:
    """The window machine's one step, for a ``k``-minute interval whose forming window is ``f`` and newest
    completed window ``completed``: see `DerivedState.step`. ``newest`` None: ``ts`` is the newest stored
    timestamp (no comparison needed). Every path that moves derived windows goes through here: the streamed
    bar (`DerivedState.stepped_newest`), the writer's bar-by-bar path (`DerivedState.step`) and the run
    `_advance` used by batches and lazy readers.

    A window the step places from a bar gets its bounds from ``clock`` when the day's clocks change and the
    bar is aware (`_placed`; ``None``: by arithmetic on the bar's timestamp, right on any other day); the
    windows after it in the session inherit that (`_next_window`). ``ended`` (the session ended): a window
    the step opens completes at once, none opens ahead. O(1).
    """
    index = offset // k
    end_offset = index * k + k
    if end_offset > session_len:  # noqa: PLR1730 - a comparison is cheaper than a call to min()
        end_offset = session_len
    if f is not None and f.ordinal == index and f.day == day:
        if offset != end_offset - 1:
            return None
        return _next_window(f, session_len, k, newest, clock), (day, index), ((f, k + 1),)
    key = (day, index)
    if (f is None or key > (f.day, f.ordinal)) and (completed is None or key > completed):
        new = _placed(day, index, k, end_offset, ts, offset, session_len, clock)
        done: tuple[tuple[Window, int | None], ...] = () if f is None else ((f, k + 2),)
        if ended or offset == end_offset - 1 or (newest is not None and newest >= new.end):
            # Its last minute is here, or a later bar already is, or the session ended: it is complete.
            return None if ended else _next_window(new, session_len, k, newest, clock), key, (*done, (new, 2))
        return new, completed if f is None else (f.day, f.ordinal), done
    # A late or corrected bar for a window that has already completed: re-derive that window only.
    redone = _placed(day, index, k, end_offset, ts, offset, session_len, clock)
    return f, completed, ((redone, None),)


def own_copy(mapping: Mapping[_K, _V]) -> dict[_K, _V]:
    """A dict copy of a snapshot's read-only mapping, to change and publish anew. ``dict(proxy)`` goes
    through the generic mapping protocol (~6x slower than copying the dict behind a `MappingProxyType`).
    O(len)."""
    if type(mapping) is MappingProxyType:
        return mapping.copy()
    return dict(mapping)


def advance_newest(
    derived: Mapping[int, DerivedState],
    bar: Bar,
    bars_1m: Series[Bar],
    day: date,
    offset: int,
    session_len: int,
    clock: SessionClock | None = None,
) -> tuple[Mapping[int, DerivedState], int, int]:
    """The derived states after ``bar``, just appended to ``bars_1m`` (newer than every other), at minute
    ``offset`` of ``day`` (``clock``: the session clock, see `window_step`): `DerivedState.stepped_newest` on
    each interval (``derived`` itself when no state changes, else a new read-only mapping); and
    ``(lo, hi)``, the minute offsets ``lo <= x <= hi`` of ``day`` where the next such bar needs no step:
    ``lo <= x < hi`` lie inside every forming window before its last minute (a step changes nothing there),
    and ``hi`` is the earliest last minute, where windows complete (``lo >= hi``: no such span, as when a
    state has no forming window on ``day``).

    The streamed hot lane's step: the writer calls it only when the bar lies outside that span or at its
    ``hi``. O(intervals), plus O(k) per window built. Writers only (pure)."""
    own: dict[int, DerivedState] | None = None
    lo = 0
    hi = session_len
    for k, state in derived.items():
        f = state.forming
        # `is_inside` without its call (this runs for every completing bar): a step would change nothing.
        if f is None or not (f.first <= offset < f.last and f.day == day):
            now = state.stepped_newest(bar, bars_1m, day, offset, session_len, clock)
            if now is not state:
                if own is None:
                    own = own_copy(derived)
                own[k] = now
                f = now.forming
            if f is None or f.day != day:
                hi = 0  # no span; keep stepping the other intervals
                continue
        if f.first > lo:  # noqa: PLR1730 - a comparison is cheaper than a call to max()
            lo = f.first
        if f.last < hi:  # noqa: PLR1730
            hi = f.last
    return (derived if own is None else MappingProxyType(own)), lo, hi


def advance_passed(
    derived: Mapping[int, DerivedState],
    symbol: str,
    ts: datetime,
    bars_1m: Series[Bar],
    clock: SessionClock | None = None,
) -> Mapping[int, DerivedState]:
    """The derived states after a bar outside every trading minute, stamped ``ts``, was appended to
    ``bars_1m`` (newer than every other): `DerivedState.passed` on each interval (a forming window whose end
    it passed completes, and after the session ended a print in a break re-derives the window holding it);
    ``derived`` itself when no state changes, else a new read-only mapping. `advance_newest`'s counterpart
    outside the session. O(intervals), or O(k) per window built. Writers only (pure)."""
    own: dict[int, DerivedState] | None = None
    for k, state in derived.items():
        passed = state.passed(symbol, ts, bars_1m, clock)
        if passed is not state:
            if own is None:
                own = own_copy(derived)
            own[k] = passed
    return derived if own is None else MappingProxyType(own)


def _with_window(bars: Series[Bar], symbol: str, window: Window, bars_1m: Series[Bar]) -> Series[Bar]:
    """``bars`` with ``window``'s bar (re)placed, or unchanged if no 1-minute bar falls in it."""
    b = _window_bar(symbol, window, bars_1m)
    if b is None:
        return bars
    appended = bars.appended_if_newer(b)  # a window usually completes after every earlier one
    return appended if appended is not None else bars.upserted(b)[0]


def _next_window(
    done: Window, session_len: int, k: int, newest: datetime | None, clock: SessionClock | None
) -> Window | None:
    """The window after ``done``, opened empty as soon as ``done`` completes, so that the next bar (which
    usually falls in it) costs nothing. ``None`` after the session's last window; when the newest stored
    bar is already past its end (it would be complete as soon as a bar landed in it; ``newest=None``: the
    caller knows it is not, as when ``done`` completed at its own last minute); and, with ``clock``, when
    the window holds minutes that do not trade (a break, an hour clocks skip): such a window forms only
    when a bar of one of its trading minutes lands in it (`_placed`), so prints stamped in a break never
    make a window of their own. O(1), or O(breaks) on a day with breaks."""
    first = done.last + 1
    if first >= session_len:
        return None
    stop = first + k
    if stop > session_len:  # noqa: PLR1730 - a comparison is cheaper than a call to min()
        stop = session_len
    if clock is not None:
        for lo, hi in clock.non_trading(done.day):
            if lo < stop and first < hi:
                return None
    zone = done.zone
    if zone is None:
        tz = done.end.tzinfo
        if _foreign_zone(tz, clock):
            start, end = _instant_window(done.end, _NO_TIME, _MINUTES[stop - first], tz)  # type: ignore[arg-type]
        else:
            start = done.end
            end = start + _MINUTES[stop - first]
        hole = None
    else:  # the day's clocks change: its bounds from the session clock, in the tzinfo of the bars
        # A window gets a zone only from an aware bar (`_placed`), so its start has a tzinfo.
        start, end, hole = zone.bounds(first, stop, done.start.tzinfo)  # type: ignore[arg-type]
    if newest is not None and newest >= end:
        return None
    return _window(done.day, done.ordinal + 1, start, end, first, stop - 1, hole, zone)


def _foreign_zone(tz: tzinfo | None, clock: SessionClock | None) -> bool:
    """Whether window bounds in ``tz`` need arithmetic on instants: ``tz`` is a zone with clock changes of
    its own (not a fixed offset, not the exchange's zone, whose change days take `ClockChange`). There,
    adding minutes to a wall time is off by the hour that zone's clocks skip or repeat: London stamps on a
    New York session on London's change day. O(1)."""
    return tz is not None and type(tz) is not timezone and clock is not None and tz is not clock.tz


def _instant_window(
    anchor: datetime, to_start: timedelta, length: timedelta, tz: tzinfo
) -> tuple[datetime, datetime]:
    """The window starting ``to_start`` after the instant ``anchor`` and lasting ``length`` real minutes,
    as ``(start, end)`` in ``tz``: arithmetic on instants, not on wall times, so that it holds across an
    hour ``tz``'s clocks skip or repeat (and a start in a skipped hour gets its real wall time). O(1): two
    conversions, for bars stamped in a foreign zone only."""
    u = anchor.astimezone(timezone.utc) + to_start
    return u.astimezone(tz), (u + length).astimezone(tz)


def _advance(
    state: DerivedState,
    stamps: Sequence[datetime],
    segments: Sequence[Segment],
    before: Series[Bar],
    clock: SessionClock | None,
) -> tuple[Window | None, tuple[date, int] | None, list[tuple[Window, int]]]:
    """`window_step` (or `DerivedState.passed` outside the session) bar by bar over an in-order run,
    without building any bar.

    Returns the forming window and the newest completed key after the run, and every window whose bar the
    run (re)builds, in the order the steps name them, each with how many bars of the run existed at that
    step: its bar is the aggregate of its 1-minute bars among ``before`` and those. (In order,
    a located bar that lands in an already built window re-derives it, so that is nearly always all of
    them; a bar in a break is not located and re-derives nothing.)
    O(windows * log(len(stamps))): bars inside the forming window are skipped by bisection.
    """
    k = state.interval
    f = state.forming
    completed = state.completed
    ended = state.ended
    windows: list[tuple[Window, int]] = []
    # Whether a bar of the run fell in the forming window (then it holds one): `flush` needs to know.
    filled = False
    for segment in segments:
        day, session_len, offsets = segment.day, segment.session_len, segment.offsets
        i, j = segment.start, segment.stop
        if day is None:  # outside the session: `passed`, bar by bar
            if ended:
                # After the session ended: a print inside a break re-derives the window holding it if that
                # window formed, before the run or earlier in it (`DerivedState.passed`).
                starts = {w.start for w, _ in windows}
                for x in range(i, j):
                    window = state.print_window(stamps[x], clock)
                    if window is None:
                        continue
                    if window.start in starts or state.bars.find(window.start) is not None:
                        windows.append((window, x + 1))
            if f is None:
                continue
            end = bisect_left(stamps, f.end, i, j)  # the bar that passes the window's end, if any
            if end > i and stamps[end - 1] >= f.start:
                filled = True  # e.g. a bar in a break: not a session minute, but the window's bar counts it
            if end < j:  # a later bar outside the session ends the window: `flush`
                windows.append((f, end + 1))
                # An empty window (opened ahead by `_next_window`) has not completed.
                if filled or before.count_between(f.start, f.end):
                    completed = (f.day, f.ordinal)
                f = None
            continue
        p = 0
        n = j - i
        while p < n:
            offset = offsets[p]
            if f is not None and f.first <= offset < f.last and f.day == day:
                # Inside the forming window before its last minute: a step changes nothing. Offsets of a
                # segment never decrease, so skip every such bar at once.
                filled = True
                p = bisect_left(offsets, f.last, p + 1, n)
                continue
            ts = stamps[i + p]
            p += 1
            upto = i + p  # bars of the run stored when the step handles this one
            moved = window_step(k, f, completed, day, offset, session_len, ts, None, clock, ended)
            if moved is None:
                filled = True  # in the forming window, at no last minute
                continue
            moved_to, completed, built = moved
            for w, _ in built:
                # The bar that completes a window it lies past is no member, even when its timestamp is
                # inside the window's span (a window opened in the wall hour clocks going forward skip,
                # stamped in another zone), as in `_newest_bar`.
                inside = w.first <= offset <= w.last and w.day == day
                windows.append((w, upto if inside else upto - 1))
            if moved_to is not f:
                # A new forming window holds this bar only when it opened at it (not ahead, empty).
                filled = moved_to is not None and moved_to.day == day and moved_to.first <= offset
            f = moved_to
    return f, completed, windows


def _rebuilt(
    bars: Series[Bar],
    symbol: str,
    windows: list[tuple[Window, int]],
    src: list[Bar],
    src_ts: list[datetime],
    skip: int,
) -> Series[Bar]:
    """``bars`` with the bar of each of ``windows`` (re)built from ``src`` (time order, holding every
    1-minute bar of those windows; ``src_ts`` its timestamps; its first ``skip`` bars come from before the
    run, so a window built when ``upto`` bars of the run were stored sees ``src[:skip + upto]``).
    O(windows * (k + log len(src)))."""
    built: list[Bar] = []
    count = len(windows)
    b = 0
    prev_end = None
    for n, (w, upto) in enumerate(windows):
        start = w.start
        if n + 1 < count and windows[n + 1][0].start == start:
            continue  # re-derived again next: that later build is the one that stands
        cut = skip + upto
        # Windows usually follow each other: the previous window's end index is this one's start.
        a = b if start == prev_end and b < cut else bisect_left(src_ts, start, 0, cut)
        prev_end = w.end
        b = bisect_left(src_ts, prev_end, a, cut)
        if a != b:
            hole = w.hole
            if hole is None:
                built.append(_aggregate_range(symbol, start, src, a, b))
                continue
            # Both passes of a repeated wall hour (see `Window`): the members on either side of the hole.
            h = bisect_left(src_ts, hole[0], a, b)
            members = src[a:h] + src[bisect_left(src_ts, hole[1], h, b) : b]
            if members:
                built.append(_aggregate_range(symbol, start, members, 0, len(members)))
    if all(x.timestamp < y.timestamp for x, y in pairwise(built)):
        return bars.upserted_run(built)  # appends them when they are all newer
    for bar in built:  # a window re-derived after a later one (a bar stamped with seconds, late)
        bars = bars.upserted(bar)[0]
    return bars


def advance_in_order(
    derived: Mapping[int, DerivedState],
    symbol: str,
    stamps: Sequence[datetime],
    segments: Sequence[Segment],
    before: Series[Bar],
    run: Sequence[Bar],
    clock: SessionClock | None = None,
) -> dict[int, DerivedState] | None:
    """The derived states after ``run`` (1-minute bars, each newer than every bar in ``before``, in order)
    was appended to ``before``; ``None`` when no state changes. ``stamps`` are the run's timestamps and
    ``segments`` cut the run into stretches (see `Segment`); ``clock``: see `window_step`.

    Equal to `DerivedState.stepped_newest` (or `passed` outside the session) bar by bar, but each window's bar
    is built once, from ``run`` and the tail of ``before``. O(windows built * k + log n).
    """
    steps = []
    min_start: datetime | None = None
    changed = False
    for k, state in derived.items():
        f, completed, windows = _advance(state, stamps, segments, before, clock)
        if windows:
            first = min(w.start for w, _ in windows)
            if min_start is None or first < min_start:
                min_start = first
        if windows or f is not state.forming or completed != state.completed:
            changed = True
        steps.append((k, state, f, completed, windows))
    if not changed:
        return None
    src: list[Bar] = []
    src_ts: list[datetime] = []
    if min_start is not None:
        src = list(run)
        if min_start < src[0].timestamp:
            src = before.since(min_start) + src
        src_ts = [b.timestamp for b in src[: len(src) - len(run)]] + list(stamps)
    out: dict[int, DerivedState] = {}
    for k, state, f, completed, windows in steps:
        if not windows and f is state.forming and completed == state.completed:
            out[k] = state
            continue
        bars = (
            _rebuilt(state.bars, symbol, windows, src, src_ts, len(src) - len(run)) if windows else state.bars
        )
        out[k] = DerivedState(k, bars, f, completed, None, state.ended)
    return out
