"""`SessionData`: the store. One write lock, immutable per-symbol snapshots, lock-free reads.

Writers (the stream coordinator, the upkeep thread, user code) serialize on one `threading.RLock`. A write
builds the symbol's next `SymbolSessionData` from the current one (sharing structure, see `_series`) and
publishes it with one reference assignment; if anything in the write is invalid, nothing is published and
the store is exactly as it was. Readers take the current snapshot with one dict read, never lock, and never
wait for a writer.

Change notification: every write bumps a store-wide version counter and stamps the symbol's series it
changed (``bars_version``, ``ticks_version``, ``quotes_version``) with it, so versions only ever grow, even
across ``start_new_session`` and ``clear_all``. `SessionData.wait_for_update` blocks until a symbol (or any
symbol) has a version newer than one already seen.
"""

from __future__ import annotations

import logging
import math
import operator
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from functools import reduce
from itertools import islice
from operator import attrgetter
from types import MappingProxyType
from typing import Any, TypeVar

from ._aggregation import (
    DerivedState,
    Segment,
    advance_in_order,
    complete_newest,
    derive_from_scratch,
    inside_span,
)
from ._calendar import RegularHoursCalendar, SessionCalendar, SessionClock
from ._deferred import Deferred, check_deferred
from ._models import Bar, InvalidDataError, Provenance, Quote, Tick, check_record
from ._publication import PublicationGate, StoreState
from ._series import Series
from ._snapshot import SymbolSessionData, check_interval

__all__ = ["SessionData", "get_session_data", "reset_session_data"]

logger = logging.getLogger("sessiondata.store")

_MINUTE = timedelta(minutes=1)
# An enum member read through its class costs ~90 ns on Python 3.11 (an attribute lookup on the enum's
# metaclass); the write path compares against this module constant instead.
_STREAMED = Provenance.STREAMED
_K = TypeVar("_K")
_V = TypeVar("_V")
# Incremental bar-quality state: (session date, distinct minutes present, newest minute offset, the 1-minute
# series whose newest bar is the bar at that minute, or None when unknown; see `_append_newest`).
_Quality = tuple[date, int, int, "Series[Bar] | None"]


def _symbol_key(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidDataError(f"symbol must be a non-empty str, got {symbol!r}")
    return symbol.strip().upper()


_new_snapshot = tuple.__new__
# `_apply_*` build snapshots positionally (one C call); this pins the field order they rely on.
_SNAPSHOT_FIELDS = (
    "symbol",
    "bars_1m",
    "derived_base",
    "bar_quality",
    "quotes",
    "ticks",
    "session_volume",
    "session_high",
    "session_low",
    "historical_bars",
    "bars_version",
    "ticks_version",
    "quotes_version",
    "provenance_overrides",
    "quality_state",
    "tz_aware",
    "derived_skip",
    "derived_pending",
)
assert SymbolSessionData._fields == _SNAPSHOT_FIELDS


def _mixed_timezones(kind: str, symbol: str, ts: datetime, stored_aware: bool) -> InvalidDataError:
    aware = ts.tzinfo is not None
    return InvalidDataError(
        f"{kind}.timestamp={ts.isoformat()} is {'aware' if aware else 'naive'} but {symbol}'s stored "
        f"timestamps are {'aware' if stored_aware else 'naive'}: one symbol's series never mixes the two"
    )


def _copied(mapping: Mapping[_K, _V]) -> dict[_K, _V]:
    """A dict copy of a snapshot's read-only mapping. ``dict(proxy)`` goes through the generic mapping
    protocol (~6x slower than copying the dict behind a `MappingProxyType`). O(len)."""
    if type(mapping) is MappingProxyType:
        return mapping.copy()
    return dict(mapping)


def _quality_of(qs: _Quality, clock: SessionClock) -> float:
    """Bar quality from the incremental state: distinct trading minutes present per trading minute elapsed
    (break minutes are not trading minutes). O(1)."""
    return 100.0 * qs[1] / clock.trading_minutes_through(qs[0], qs[2])


_NO_OFFSETS: list[int] = []


def _quality_of_day(series: Series[Bar], clock: SessionClock, day: date, bar: Bar, offset: int) -> _Quality:
    """Quality state for the first regular bar of a newer session date: count what that date already
    holds (usually nothing but ``bar``). O(log n + k)."""
    ts = bar.timestamp
    open_ts = ts - timedelta(seconds=ts.second, microseconds=ts.microsecond) - offset * _MINUTE
    hours = clock.hours(day)
    assert hours is not None
    offsets = {offset}
    for m in series.between(open_ts, open_ts + hours[1] * _MINUTE):
        found = clock.locate(m.timestamp)
        if found is not None:
            offsets.add(found[1])
    return (day, len(offsets), max(offsets), None)


# A stretch of trading minutes the locator remembers (see `_Locator.naive`).
_Stretch = tuple[datetime, datetime, date, int, int, int]
# An aware stretch as wall time in one tzinfo: (tzinfo, year, month, day, first minute of day, end minute of
# day, session date, the minute of day (in that tzinfo) of the session's open, session length, break minutes
# before the stretch). A bar of that tzinfo and date with ``first <= hour * 60 + minute < end`` is in the
# stretch, at offset ``hour * 60 + minute - open``.
_Wall = tuple[tzinfo, int, int, int, int, int, date, int, int, int]


class _Locator:
    """`SessionClock.locate` for the write path, remembering the last session day it found.

    Consecutive bars nearly always fall in one stretch of trading minutes (a session day, or the part of it
    between breaks); for them a located bar costs two comparisons and some integer arithmetic instead of a
    date lookup. The bounds are kept both naive (exchange wall time) and aware (in the exchange zone, which
    compares as wall time against ``astimezone(tz)``).
    Used only by writers, under the store's lock.
    """

    __slots__ = ("aware", "clock", "naive", "tz", "wall")

    def __init__(self, clock: SessionClock) -> None:
        self.clock = clock
        self.tz = clock.tz
        # (open, end, session date, open minute of day, session length, break minutes before the stretch):
        # [open, end) is the stretch. The last lets the writer compute bar quality without a calendar call.
        self.naive: _Stretch | None = None
        self.aware: _Stretch | None = None
        # The aware stretch again, as wall time in the tzinfo of the last aware bar located in it (see
        # `_Wall`): a bar with that tzinfo (or an equal fixed offset) is located from its own fields,
        # without the ~250 ns `astimezone` and the ~200 ns comparisons of datetimes with foreign tzinfos.
        self.wall: _Wall | None = None

    def locate(self, ts: datetime) -> tuple[date, int, int] | None:
        """`SessionClock.locate`, remembering the day found. O(1)."""
        aware = ts.tzinfo is not None
        local = ts.astimezone(self.tz) if aware else ts
        bounds = self.aware if aware else self.naive
        if bounds is not None and bounds[0] <= local < bounds[1]:
            return bounds[2], local.hour * 60 + local.minute - bounds[3], bounds[4]
        found = self.clock.locate(ts)
        if found is not None:
            day, offset, length = found
            minute = local.hour * 60 + local.minute
            for first, end in self.clock.segments(day):  # the trading stretch holding ts (breaks cut out)
                if first <= minute < end:
                    midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz if aware else None)
                    bounds = (
                        midnight + _MINUTES_OF_DAY[first],
                        midnight + _MINUTES_OF_DAY[end],
                        day,
                        minute - offset,
                        length,
                        offset + 1 - self.clock.trading_minutes_through(day, offset),
                    )
                    if aware:
                        self.aware = bounds
                        self.wall = _wall_of(bounds, ts.tzinfo)
                    else:
                        self.naive = bounds
                    break
        return found


_MICROSECOND = timedelta(microseconds=1)


def _wall_of(bounds: _Stretch, tz: tzinfo | None) -> _Wall | None:
    """The aware stretch ``bounds`` as wall time in ``tz``, or ``None`` when that is not one unbroken span of
    whole minutes of one date (an offset that changes inside the stretch, in either zone; an offset with
    seconds; a stretch that crosses midnight in ``tz``)."""
    if tz is None:
        return None
    open_, end = bounds[0], bounds[1]
    last = end - _MICROSECOND
    if open_.utcoffset() != last.utcoffset():
        return None
    first_w, last_w = open_.astimezone(tz), last.astimezone(tz)
    offset = first_w.utcoffset()
    if offset is None or offset != last_w.utcoffset() or offset % _MINUTE or first_w.date() != last_w.date():
        return None
    start = first_w.hour * 60 + first_w.minute
    length = (end - open_) // _MINUTE  # one tzinfo: wall-time difference, real as the offset holds
    # Exchange-local minute = wall minute in tz + shift, all through the stretch.
    shift = open_.hour * 60 + open_.minute - start
    return (
        tz,
        first_w.year,
        first_w.month,
        first_w.day,
        start,
        start + length,
        bounds[2],
        bounds[3] - shift,
        bounds[4],
        bounds[5],
    )


# timedelta(minutes=i) for every minute of a day (wall-clock arithmetic on a session's bounds).
_MINUTES_OF_DAY = tuple(timedelta(minutes=i) for i in range(24 * 60 + 1))
_ts_of = attrgetter("timestamp")
_tz_of = attrgetter("tzinfo")
_volume_of = attrgetter("volume")
_high_of = attrgetter("high")
_low_of = attrgetter("low")


def _append_newest(
    snap: SymbolSessionData, bar: Bar, version: int, locator: _Locator
) -> SymbolSessionData | None:
    """`_apply_bars` for the hot case: one streamed ``bar``, newer than every stored bar, of the symbol's
    timezone style, in the session day last located (or outside any session), and, while its derived bars
    are unread, one its log can take. ``None`` when any of that does not hold (the caller then takes
    `_apply_bars`). Pure. O(1) amortized."""
    (
        symbol,
        series,
        derived,
        quality,
        quotes,
        ticks,
        volume,
        high,
        low,
        history,
        _,
        ticks_version,
        quotes_version,
        overrides,
        qs,
        tz_aware,
        skip,
        pending,
    ) = snap
    if pending is not None and (pending.wanted or pending.end != series._len):
        # Read since (switch to deriving as bars arrive), or its log runs past this snapshot (after a write
        # that failed): the general path settles it first.
        return None
    ts = bar.timestamp
    tz = ts.tzinfo
    if (tz is not None) is not tz_aware:
        return None
    # The bar's place in the stretch of trading minutes last located: (day, offset, session length, break
    # minutes before the stretch), or day None when it is not there.
    day: date | None = None
    if tz is None:
        bounds = locator.naive
        if bounds is not None and bounds[0] <= ts < bounds[1]:
            day = bounds[2]
            offset = ts.hour * 60 + ts.minute - bounds[3]
            session_len = bounds[4]
            breaks = bounds[5]
    else:
        w = locator.wall
        if (
            w is not None
            and (tz is w[0] or tz == w[0])
            and ts.day == w[3]
            and ts.month == w[2]
            and ts.year == w[1]
        ):
            minute = ts.hour * 60 + ts.minute
            if w[4] <= minute < w[5]:
                day = w[6]
                offset = minute - w[7]
                session_len = w[8]
                breaks = w[9]
        else:
            bounds = locator.aware
            local = ts.astimezone(locator.tz)
            if bounds is not None and bounds[0] <= local < bounds[1]:
                day = bounds[2]
                offset = local.hour * 60 + local.minute - bounds[3]
                session_len = bounds[4]
                breaks = bounds[5]
    if day is not None:
        if qs is None or day != qs[0]:
            return None  # a new session day counts its quality from scratch: rare, the general path
        if qs[3] is series and offset > qs[2]:
            # This path stored the newest bar, at minute qs[2]: a bar of a later minute is newer, which
            # needs no timestamp comparison (an aware one with a foreign tzinfo costs ~200 ns).
            appended: Series[Bar] | None = series.appended(bar)
        else:
            appended = series.appended_if_newer(bar)
        if appended is None:
            return None
        if offset > qs[2]:
            count = qs[1] + 1
            # `_quality_of`, with the stretch's break minutes instead of a calendar call.
            quality = 100.0 * count / (offset + 1 - breaks)
            qs = (day, count, offset, appended)
        else:
            qs = (day, qs[1], offset, appended)
        if pending is not None:
            # Derived bars nobody has read yet: owed, not built. Log the bar's minute (see `_deferred`);
            # inline, `Deferred.log_bar`'s common case: the next minute of the newest stretch.
            segs = pending.segs
            last = segs[-1] if segs else None
            offsets = None if last is None else last.offsets
            if offsets is not None and offsets[-1] <= offset and last.day is day:  # type: ignore[union-attr]
                offsets.append(offset)
                pending.end += 1
            else:
                pending.log_bar(day, session_len, offset)
        elif skip is not None and skip[0] is derived and skip[1] <= offset <= skip[2] and skip[3] == day:
            # Inside every forming window (the common case, one check for all intervals): nothing changes
            # before the earliest last minute, and that minute completes windows.
            if offset == skip[2]:
                own = _copied(derived)
                lo, hi = complete_newest(own, symbol, appended, offset, session_len)
                derived = MappingProxyType(own)
                skip = (derived, lo, hi, day) if lo < hi else None
        else:
            own_derived: dict[int, DerivedState] | None = None
            for k, state in derived.items():
                f = state.forming
                if f is not None and f[0] == day and f[4] <= offset <= f[5]:
                    # Its last minute completes the window; before that, nothing changes.
                    now = state.close_newest(symbol, appended, session_len) if offset == f[5] else state
                else:
                    now = state.add(bar, day, offset, session_len, appended, True)
                if now is not state:
                    if own_derived is None:
                        own_derived = _copied(derived)
                    own_derived[k] = now
            if own_derived is not None:
                derived = MappingProxyType(own_derived)
            lo, hi = inside_span(derived.values(), day, session_len)
            skip = (derived, lo, hi, day) if lo < hi else None
    elif locator.locate(ts) is None:
        appended = series.appended_if_newer(bar)
        if appended is None:
            return None
        if pending is not None:
            pending.log_bar(None, 0, 0)
        else:
            own_derived = None
            for k, state in derived.items():
                passed = state.passed(symbol, ts, appended)
                if passed is not state:
                    if own_derived is None:
                        own_derived = _copied(derived)
                    own_derived[k] = passed
            if own_derived is not None:
                derived = MappingProxyType(own_derived)
    else:
        return None  # a session day not yet located: the general path (it also fills the locator)
    h = bar.high
    if high is None or h > high:
        high = h
    b_low = bar.low
    if low is None or b_low < low:
        low = b_low
    return _new_snapshot(
        SymbolSessionData,
        (
            symbol,
            appended,
            derived,
            quality,
            quotes,
            ticks,
            volume + bar.volume,
            high,
            low,
            history,
            version,
            ticks_version,
            quotes_version,
            overrides,
            qs,
            tz_aware,
            skip,
            pending,
        ),
    )


def _in_order_prefix(
    bars: Sequence[Bar], last_ts: datetime | None, tz_aware: bool | None
) -> tuple[int, list[datetime]]:
    """How many leading ``bars`` can be appended as they are: strictly increasing timestamps, newer than
    ``last_ts``, all of one timezone style (the stored one, if any); and every bar's timestamp.
    O(len(bars))."""
    stamps = list(map(_ts_of, bars))
    zones = set(map(_tz_of, stamps))
    aware = stamps[0].tzinfo is not None if tz_aware is None else tz_aware
    one_style = (None not in zones) if aware else (len(zones) == 1 and None in zones)
    if (
        one_style
        and (last_ts is None or last_ts < stamps[0])
        and all(map(operator.lt, stamps, islice(stamps, 1, None)))
    ):
        return len(bars), stamps
    n = 0
    prev = last_ts
    for ts in stamps:
        if (ts.tzinfo is not None) is not aware or (prev is not None and not prev < ts):
            break
        prev = ts
        n += 1
    return n, stamps


def _apply_bars(
    snap: SymbolSessionData,
    bars: Sequence[Bar],
    provenance: Provenance,
    clock: SessionClock,
    version: int,
    replace: bool = True,
    locator: _Locator | None = None,
) -> tuple[SymbolSessionData, int]:
    """``snap`` with ``bars`` added in order, and how many were stored: the whole write path for bars.

    With ``replace=False`` a bar whose timestamp is already stored is skipped instead of replacing it.
    Pure: returns a new snapshot and changes nothing reachable from ``snap`` (a `Series` append writes past
    the end ``snap`` can see). Raises `InvalidDataError` for a naive/aware mix. O(1) amortized per in-order
    bar; see `SessionData.add_bar` for the rest.

    A leading run of bars that are in order and newer than every stored bar (a stream's batch) is appended
    in one piece: one series extension, metrics from builtins over the run, one locate per session day,
    and each derived window built once (`advance_in_order`). The rest goes bar by bar.
    """
    stored = 0
    symbol = snap.symbol
    series = snap.bars_1m
    volume = snap.session_volume
    high = snap.session_high
    low = snap.session_low
    own_overrides: dict[datetime, Provenance] | None = None
    qs = snap.quality_state
    quality = snap.bar_quality
    # While nobody has read the derived bars (``pending`` set, see `_deferred`), an in-order run only
    # extends the log and anything else settles it first; the snapshot stays in that mode unless a reader
    # asked for them since (``wanted``): then the store derives as bars arrive from now on.
    pending = snap.derived_pending
    lazy = pending is not None
    derived: Mapping[int, DerivedState] = snap.derived_base
    if pending is not None and (pending.wanted or pending.end != series._len):
        derived = pending.settled(series, symbol)
        lazy = not pending.wanted
        pending = None
    own_derived: dict[int, DerivedState] | None = None
    tz_aware = snap.tz_aware
    if locator is None:
        locator = _Locator(clock)
    locate = locator.locate
    last = series.last()
    last_ts = None if last is None else last.timestamp

    run_len, stamps = _in_order_prefix(bars, last_ts, tz_aware) if bars else (0, [])
    if run_len:
        run = bars if run_len == len(bars) else bars[:run_len]
        if run_len < len(stamps):
            del stamps[run_len:]
        before = series
        series = series.extended(run)
        last_ts = stamps[-1]
        tz_aware = last_ts.tzinfo is not None
        stored = run_len
        volumes = list(map(_volume_of, run))
        total = sum(volumes, volume)
        if type(total) is not int:  # floats: add in arrival order, exactly as one bar at a time would
            total = reduce(operator.add, volumes, volume)
        volume = total
        h = max(map(_high_of, run))
        if high is None or h > high:
            high = h
        lo = min(map(_low_of, run))
        if low is None or lo < low:
            low = lo
        if provenance is not _STREAMED:
            own_overrides = _copied(snap.provenance_overrides)
            own_overrides.update(dict.fromkeys(stamps, provenance))
        segments: list[Segment] = []
        q_day, q_count, q_newest = (qs[0], qs[1], qs[2]) if qs is not None else (None, 0, -1)
        q_changed = False
        i = 0
        while i < run_len:
            ts = stamps[i]
            loc = locate(ts)
            if loc is None:
                segments.append((None, 0, i, i + 1, _NO_OFFSETS))
                i += 1
                continue
            day, offset, session_len = loc
            stretch = locator.naive
            if not tz_aware and stretch is not None and stretch[0] <= ts < stretch[1]:
                # Naive: every bar before the stretch's end is in it (wall time is the timestamp itself).
                j = bisect_left(stamps, stretch[1], i + 1, run_len)
                open_minute = stretch[3]
                offsets = [t.hour * 60 + t.minute - open_minute for t in stamps[i:j]]
            else:  # aware: one conversion per bar, while the day holds and offsets do not go back
                offsets = [offset]
                j = i + 1
                while j < run_len:
                    nxt = locate(stamps[j])
                    if nxt is None or nxt[0] != day or nxt[1] < offsets[-1]:
                        break
                    offsets.append(nxt[1])
                    j += 1
            segments.append((day, session_len, i, j, offsets))
            # Bar quality as bar-by-bar adds would count it: a new minute is one past the newest so far.
            first_new = 0
            if day != q_day and (q_day is None or day > q_day):
                # The first bar of a newer session day: earlier bars of the run are not in that day.
                q_day, q_count, q_newest, _ = _quality_of_day(before, clock, day, run[i], offset)
                q_changed = True
                first_new = 1
            if day == q_day:
                first_new = bisect_right(offsets, q_newest, first_new)
                if first_new < len(offsets):
                    q_count += len(set(offsets[first_new:]))
                    q_newest = offsets[-1]
                    q_changed = True
            i = j
        if q_changed:
            assert q_day is not None
            qs = (q_day, q_count, q_newest, None)
            quality = _quality_of(qs, clock)
        if lazy:
            if pending is None:
                pending = Deferred(derived, before._len)
            pending.log_run(segments)  # derivation owed to the first reader
        elif derived:
            advanced = advance_in_order(derived, symbol, stamps, segments, before, run)
            if advanced is not None:
                derived = own_derived = advanced
    if pending is not None and run_len < len(bars):
        derived = pending.settled(series, symbol)  # the rest goes bar by bar, from the settled states
        pending = None

    shifted = False  # a bar was inserted before the newest: the series' indices moved
    for bar in bars[run_len:] if run_len else bars:
        ts = bar.timestamp
        if (ts.tzinfo is not None) is not tz_aware:
            if tz_aware is not None:
                raise _mixed_timezones("Bar", symbol, ts, tz_aware)
            tz_aware = ts.tzinfo is not None
        old: Bar | None = None
        in_order = last_ts is None or last_ts < ts
        if in_order:
            series = series.appended(bar)
            last_ts = ts
        elif not replace and series.find(ts) is not None:
            continue
        else:
            series, old = series.upserted(bar)
            if old is None:
                shifted = True
        stored += 1
        if old is None:
            volume += bar.volume
            if high is None or bar.high > high:
                high = bar.high
            if low is None or bar.low < low:
                low = bar.low
        else:
            volume += bar.volume - old.volume
            if bar.high >= old.high or (high is not None and old.high < high):
                high = bar.high if high is None or bar.high > high else high
            else:  # the replaced bar held the session high: rescan, O(n), only on such a correction
                high = max(b.high for b in series)
            if bar.low <= old.low or (low is not None and old.low > low):
                low = bar.low if low is None or bar.low < low else low
            else:
                low = min(b.low for b in series)
        if old is not None or provenance is not _STREAMED:
            if own_overrides is None:
                own_overrides = _copied(snap.provenance_overrides)
            own_overrides[ts] = Provenance.CORRECTION if provenance is _STREAMED else provenance

        loc = locate(ts)
        if loc is None:
            if in_order:
                for k, state in derived.items():
                    passed = state.passed(symbol, ts, series)
                    if passed is not state:
                        if own_derived is None:
                            derived = own_derived = _copied(derived)
                        own_derived[k] = passed
            continue
        day, offset, session_len = loc
        if qs is None or day > qs[0]:
            qs = _quality_of_day(series, clock, day, bar, offset)
            quality = _quality_of(qs, clock)
        elif old is None and day == qs[0]:
            if in_order:
                new_minute = offset > qs[2]
            else:
                minute = ts - timedelta(seconds=ts.second, microseconds=ts.microsecond)
                new_minute = series.count_between(minute, minute + _MINUTE) == 1
            if new_minute:
                qs = (day, qs[1] + 1, offset if offset > qs[2] else qs[2], None)
                quality = _quality_of(qs, clock)
        for k, state in derived.items():
            f = state.forming
            if f is not None and f[4] <= offset < f[5] and f[0] == day:
                continue  # inside the forming window: `state.add` would return `state` (see `is_inside`)
            added = state.add(bar, day, offset, session_len, series, in_order)
            if added is not state:
                if own_derived is None:
                    derived = own_derived = _copied(derived)
                own_derived[k] = added
    if not stored:
        return snap, 0
    if shifted and any(s.anchor is not None for s in derived.values()):
        derived = own_derived = {k: s.without_anchor() for k, s in derived.items()}
    if own_derived is not None:
        derived = MappingProxyType(own_derived)
    if lazy and pending is None:
        pending = Deferred(derived, series._len)  # still nobody reading: log from here
    new = _new_snapshot(
        SymbolSessionData,
        (
            symbol,
            series,
            derived,
            quality,
            snap.quotes,
            snap.ticks,
            volume,
            high,
            low,
            snap.historical_bars,
            version,
            snap.ticks_version,
            snap.quotes_version,
            snap.provenance_overrides if own_overrides is None else MappingProxyType(own_overrides),
            qs,
            tz_aware,
            snap.derived_skip,  # stale once `derived` changed: its first item says which mapping it is for
            pending,
        ),
    )
    return new, stored


def _apply_items(
    snap: SymbolSessionData, items: Iterable[Tick] | Iterable[Quote], kind: str, version: int
) -> SymbolSessionData:
    """``snap`` with ticks (``kind="Tick"``) or quotes (``"Quote"``) inserted in time order, equal times
    in arrival order. Pure, like `_apply_bars`. O(1) amortized per in-order item."""
    series: Series[Any] = snap.ticks if kind == "Tick" else snap.quotes
    tz_aware = snap.tz_aware
    for item in items:
        ts = item.timestamp
        if (ts.tzinfo is not None) is not tz_aware:
            if tz_aware is not None:
                raise _mixed_timezones(kind, snap.symbol, ts, tz_aware)
            tz_aware = ts.tzinfo is not None
        series = series.inserted(item)
    if kind == "Tick":
        return snap._replace(ticks=series, ticks_version=version, tz_aware=tz_aware)
    return snap._replace(quotes=series, quotes_version=version, tz_aware=tz_aware)


def _flushed(snap: SymbolSessionData, version: int) -> SymbolSessionData:
    """``snap`` with every forming derived window completed (end of session). O(intervals * k); O(1)
    while nobody has read its derived bars: the flush is owed too, first in a child log (see `Deferred`)."""
    pending = snap.derived_pending
    if pending is not None and pending.parent is None and not pending.wanted:
        return snap._replace(derived_pending=Deferred(None, snap.bars_1m._len, pending), bars_version=version)
    derived = MappingProxyType({k: s.flush(snap.symbol, snap.bars_1m) for k, s in snap.derived.items()})
    # Still unread: keep logging from here; read: derive as bars arrive.
    pending = None if pending is None or pending.wanted else Deferred(derived, snap.bars_1m._len)
    return snap._replace(derived_base=derived, derived_pending=pending, bars_version=version)


class SessionData:
    """Per-symbol session data for one process: bars, derived bars, ticks, quotes, metrics, history.

    Writes serialize on ``self._lock`` (an `RLock`, also exposed as `write_lock`); each write is atomic and
    leaves the store unchanged if it raises. Reads take no lock: each answers from one immutable
    `SymbolSessionData` snapshot and never waits for a writer. Unknown symbols read as ``None``, ``[]``,
    ``0`` or ``{}``; an invalid ``interval`` is a `ValueError`, checked first.

    Derived bars are derived for readers: until a symbol's are first read in a session, a write only logs
    where its bars fall, and that first read (of any derived interval, from any snapshot) derives the bars
    written so far, once, O(1) amortized per bar; from the next write on they are derived as bars arrive,
    and derived reads cost what the complexities below say (see `sessiondata._deferred`).

    Configuration is keyword-only and readable as attributes. ``calendar`` (optional) replaces the built-in
    "same hours every day" session with any `SessionCalendar` (e.g. real holidays and early closes).
    """

    def __init__(
        self,
        *,
        start_time: time = time(9, 30),
        end_time: time = time(16, 0),
        timezone: str | tzinfo = "America/New_York",
        derived_intervals: Iterable[int] = (5, 15),
        historical_bars_trailing_days: int = 0,
        historical_bars_types: Iterable[int] = (1,),
        calendar: SessionCalendar | None = None,
    ) -> None:
        intervals = tuple(derived_intervals)
        for k in intervals:
            if not isinstance(k, int) or isinstance(k, bool) or k < 2:
                raise ValueError(f"derived_intervals must be whole numbers of minutes >= 2, got {k!r}")
        if len(set(intervals)) != len(intervals):
            raise ValueError(f"derived_intervals has duplicates: {intervals!r}")
        self._calendar: SessionCalendar = calendar or RegularHoursCalendar(start_time, end_time, timezone)
        self._clock = SessionClock(self._calendar)
        self._locator = _Locator(self._clock)
        self._start_time = start_time
        self._end_time = end_time
        self._intervals = tuple(sorted(intervals))
        self._interval_map: Mapping[int, None] = dict.fromkeys(self._intervals)
        self.historical_bars_trailing_days = historical_bars_trailing_days
        self.historical_bars_types = tuple(historical_bars_types)
        self._check_history_config()

        # Guards every write: the contents of `_snapshots` (values replaced, or the whole dict replaced when
        # a symbol is added or removed), `_version`, `session_ended` and `current_session_date`.
        self._lock = threading.RLock()
        # Guards nothing but the wake-up of `wait_for_update` callers; never held while writing.
        self._changed = threading.Condition(threading.Lock())
        self._waiters = 0
        # The writers' dict. Readers read `_view`: the same dict, unless a `PublicationGate` is held (see
        # `hold_publication`); `_gate` is that gate, and the lifecycle readers see is then the gate's.
        self._snapshots: dict[str, SymbolSessionData] = {}
        self._view = self._snapshots
        self._gate: PublicationGate | None = None
        self._version = 0
        self._session_ended = False
        self._current_session_date: date | None = None
        logger.debug("SessionData created (%s, derived %s)", self._calendar, self._intervals)

    # ---------------------------------------------------------------- config

    @property
    def start_time(self) -> time:
        """Local time the regular session opens (the default calendar's hours)."""
        return self._start_time

    @property
    def end_time(self) -> time:
        """Local time the regular session closes."""
        return self._end_time

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone; naive timestamps are read as wall time in it."""
        return self._clock.tz

    @property
    def derived_intervals(self) -> tuple[int, ...]:
        """The derived bar intervals kept, in minutes, ascending."""
        return self._intervals

    @property
    def calendar(self) -> SessionCalendar:
        """The trading calendar session arithmetic uses."""
        return self._calendar

    @property
    def session_clock(self) -> SessionClock:
        """Cached session arithmetic over `calendar` (shared with the upkeep thread and coordinator)."""
        return self._clock

    @property
    def write_lock(self) -> threading.RLock:
        """The lock every write holds. Readers never take it; holding it blocks writers only."""
        return self._lock

    @property
    def version(self) -> int:
        """Store-wide count of writes; grows on every write. Racy by nature: a lock-free read. O(1).

        While a `PublicationGate` is held, the version of what readers see."""
        gate = self._gate
        return self._version if gate is None else gate.version

    @property
    def session_ended(self) -> bool:
        """True after `end_session` until the next `start_new_session` (as readers see it). O(1)."""
        gate = self._gate
        return self._session_ended if gate is None else gate.session_ended

    @property
    def current_session_date(self) -> date | None:
        """The date given to the last `start_new_session` (as readers see it), or ``None``. O(1)."""
        gate = self._gate
        return self._current_session_date if gate is None else gate.current_session_date

    # ------------------------------------------------------------ publication

    def hold_publication(self) -> PublicationGate:
        """Hold every later write back from readers until the returned gate publishes it (see
        `sessiondata._publication`): how a replay shows its consumer the store as of the item in hand.

        Readers keep answering from the state of now; writes go on as usual. Raises `RuntimeError` if a
        gate is already held. O(symbols). Thread-safety: takes the write lock.
        """
        with self._lock:
            if self._gate is not None:
                raise RuntimeError("a publication gate is already held on this store")
            gate = PublicationGate(
                self._view, self.writer_state(), self._lock, self._install_view, self._end_gate, self._notify
            )
            self._snapshots = gate.heads
            self._gate = gate
            return gate

    def writer_state(self) -> StoreState:
        """Every symbol's newest snapshot and the lifecycle as writers left them, including writes a
        `PublicationGate` still holds back from readers (for a writer that builds on them, such as the
        upkeep inside a replay). O(symbols). Thread-safety: takes the write lock."""
        with self._lock:
            return StoreState(
                MappingProxyType(dict(self._snapshots)),
                self._session_ended,
                self._current_session_date,
                self._version,
            )

    def _set_heads(self, snaps: dict[str, SymbolSessionData]) -> None:
        """Replace the writers' dict (lock held): published at once, or logged as one step under a gate."""
        gate = self._gate
        if gate is None:
            self._snapshots = self._view = snaps
        else:
            state = StoreState(snaps, self._session_ended, self._current_session_date, self._version)
            self._snapshots = gate.record_full(snaps, state)

    def _install_view(self, view: dict[str, SymbolSessionData]) -> None:
        self._view = view

    def _end_gate(self) -> None:
        snaps = dict(self._snapshots)
        self._snapshots = self._view = snaps
        self._gate = None

    def _check_history_config(self) -> None:
        days = self.historical_bars_trailing_days
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ValueError(f"historical_bars_trailing_days must be an int >= 0, got {days!r}")
        for k in self.historical_bars_types:
            if k != 1 and k not in self._interval_map:
                raise ValueError(
                    f"historical_bars_types contains {k!r}: each must be 1 or a derived interval "
                    f"{self._intervals}"
                )

    # ---------------------------------------------------------------- writes

    def _current(self, symbol: str) -> SymbolSessionData:
        """The symbol's snapshot, or a new empty one stamped with the next version (so that a symbol
        registered again after `clear_all` never shows a version lower than before)."""
        snap = self._snapshots.get(symbol)
        if snap is None:
            v = self._version + 1
            snap = SymbolSessionData.empty(symbol, self._intervals)._replace(
                bars_version=v, ticks_version=v, quotes_version=v
            )
        return snap

    def _publish(self, changed: Mapping[str, SymbolSessionData]) -> None:
        """Make ``changed`` visible to readers (called with the lock held)."""
        snaps = self._snapshots
        if all(sym in snaps for sym in changed):
            for sym, snap in changed.items():
                snaps[sym] = snap  # replacing a value never disturbs a reader iterating the dict
        else:
            grown = dict(snaps)
            grown.update(changed)
            self._set_heads(grown)
        self._notify()

    def _publish_one(self, symbol: str, snap: SymbolSessionData) -> None:
        """`_publish` for the one-symbol write, the hot path (called with the lock held)."""
        snaps = self._snapshots
        if symbol in snaps:
            snaps[symbol] = snap
        else:
            grown = dict(snaps)
            grown[symbol] = snap
            self._set_heads(grown)
        if self._waiters:
            self._notify()

    def _notify(self) -> None:
        if self._waiters:
            with self._changed:
                self._changed.notify_all()

    def register_symbol(self, symbol: str) -> SymbolSessionData:
        """Start tracking ``symbol`` (upper-cased); idempotent. Returns its snapshot.

        Thread-safety: takes the write lock; O(1) when known, O(symbols) the first time.
        """
        sym = _symbol_key(symbol)
        snap = self._snapshots.get(sym)
        if snap is not None:
            return snap
        with self._lock:
            snap = self._snapshots.get(sym)
            if snap is None:
                snap = self._current(sym)
                self._version += 1
                self._publish({sym: snap})
                logger.debug("registered symbol %s", sym)
            return snap

    def add_bar(
        self, symbol: str, bar: Bar, *, provenance: Provenance = Provenance.STREAMED, replace: bool = True
    ) -> bool:
        """Store a 1-minute ``bar`` for ``symbol`` (auto-registered) at its place in time.

        A bar with the timestamp of a stored bar replaces it (a correction: metrics stay exact, volume is
        never double-counted). Updates metrics, bar quality and derived bars incrementally. ``provenance``
        records where the bar came from (`Provenance.GAP_FILLED` for repository fills); a streamed bar that
        replaces another is recorded as a `Provenance.CORRECTION`. With ``replace=False`` a stored bar with
        the same timestamp is kept and ``bar`` is dropped (how the upkeep thread fills gaps without ever
        overwriting streamed data). Returns whether ``bar`` was stored.

        Raises `InvalidDataError` (store unchanged) if ``bar`` is not a `Bar`, is for another symbol, or mixes
        naive and aware timestamps with the symbol's stored data.

        Complexity: O(1) amortized in time order (plus O(n / 512) when a chunk fills); out of order or a
        replacement O(log n + 512 + n / 512); a replacement that removes the session high or low rescans,
        O(n). Thread-safety: takes the write lock; waits only for other writers.
        """
        with self._lock:
            snaps = self._snapshots
            snap = snaps.get(symbol)
            if snap is not None and type(bar) is Bar and bar.symbol == symbol:
                if provenance is _STREAMED:
                    new = _append_newest(snap, bar, self._version + 1, self._locator)
                    if new is not None:
                        self._version += 1
                        snaps[symbol] = new  # replacing a value never disturbs a reader iterating the dict
                        if self._waiters:  # tested here, so the common case costs no call
                            self._notify()
                        return True
                sym = symbol
            else:
                sym = symbol if snap is not None else _symbol_key(symbol)
                if type(bar) is not Bar or bar.symbol != sym:
                    check_record(Bar, bar, symbol=sym)
                snap = self._current(sym)
            version = self._version + 1
            new, stored = _apply_bars(snap, (bar,), provenance, self._clock, version, replace, self._locator)
            if stored or sym not in self._snapshots:
                self._version = version
                self._publish_one(sym, new)
            return stored == 1

    def _add_checked_bar(self, symbol: str, bar: Bar) -> bool:
        """`add_bar` (streamed, replacing) for a writer that has already checked ``type(bar) is Bar`` and
        ``bar.symbol == symbol`` with ``symbol`` upper-case: the stream coordinator, which checks every item
        it pulls. Skips only those checks; anything off the fast path goes through `add_bar`. Same
        complexity and thread-safety as `add_bar`."""
        with self._lock:
            snaps = self._snapshots
            snap = snaps.get(symbol)
            if snap is not None:
                new = _append_newest(snap, bar, self._version + 1, self._locator)
                if new is not None:
                    self._version += 1
                    snaps[symbol] = new
                    if self._waiters:  # tested here, so the common case costs no call
                        self._notify()
                    return True
            return self.add_bar(symbol, bar)

    def add_bars_batch(
        self,
        symbol: str,
        bars: Iterable[Bar],
        *,
        provenance: Provenance = Provenance.STREAMED,
        replace: bool = True,
    ) -> int:
        """`add_bar` on each bar in order, all or nothing, published as one snapshot.

        Returns how many bars were stored (fewer than given only with ``replace=False``).

        Raises `InvalidDataError` (store unchanged) if any bar is invalid for this symbol.
        Complexity: a leading run of bars in time order and newer than every stored bar (a stream's batch) is
        appended in one piece, O(k + n / 512) for k bars plus O(k) for derived bars built once per window;
        the rest costs what `add_bar` costs per bar. Thread-safety: one write lock acquisition; readers see
        either none or all of the batch.
        """
        sym = _symbol_key(symbol)
        items = list(bars)
        for bar in items:
            if type(bar) is not Bar or bar.symbol != sym:
                check_record(Bar, bar, symbol=sym)
        if not items:
            return 0
        with self._lock:
            version = self._version + 1
            new, stored = _apply_bars(
                self._current(sym), items, provenance, self._clock, version, replace, self._locator
            )
            if stored or sym not in self._snapshots:
                self._version = version
                self._publish_one(sym, new)
            return stored

    def add_tick(self, symbol: str, tick: Tick) -> None:
        """Store ``tick`` in time order (after stored ticks with the same timestamp).

        O(1) amortized in time order, else O(log n + 512 + n / 512). Thread-safety: takes the write lock.
        """
        self.add_ticks_batch(symbol, (tick,))

    def add_ticks_batch(self, symbol: str, ticks: Iterable[Tick]) -> None:
        """`add_tick` on each tick in order, all or nothing, published as one snapshot."""
        sym = _symbol_key(symbol)
        items = list(ticks)
        for t in items:
            check_record(Tick, t, symbol=sym)
        if not items:
            return
        with self._lock:
            version = self._version + 1
            new = _apply_items(self._current(sym), items, "Tick", version)
            self._version = version
            self._publish_one(sym, new)

    def add_quote(self, symbol: str, quote: Quote) -> None:
        """Store ``quote`` in time order (after stored quotes with the same timestamp).

        O(1) amortized in time order, else O(log n + 512 + n / 512). Thread-safety: takes the write lock.
        """
        self.add_quotes_batch(symbol, (quote,))

    def add_quotes_batch(self, symbol: str, quotes: Iterable[Quote]) -> None:
        """`add_quote` on each quote in order, all or nothing, published as one snapshot."""
        sym = _symbol_key(symbol)
        items = list(quotes)
        for q in items:
            check_record(Quote, q, symbol=sym)
        if not items:
            return
        with self._lock:
            version = self._version + 1
            new = _apply_items(self._current(sym), items, "Quote", version)
            self._version = version
            self._publish_one(sym, new)

    def end_session(self) -> None:
        """Mark the session ended and complete every forming derived bar.

        Writes after this are accepted as late data for the session in memory. O(symbols).
        Thread-safety: takes the write lock.
        """
        with self._lock:
            self._version += 1
            changed = {}
            for sym, snap in self._snapshots.items():
                pending = snap.derived_pending
                if (pending is not None and pending.owes()) or any(
                    s.forming is not None for s in snap.derived_base.values()
                ):
                    changed[sym] = _flushed(snap, self._version)
            self._session_ended = True
            self._publish(changed)
            if self._gate is not None:
                self._set_heads(self._snapshots)
            logger.info("session %s ended", self._current_session_date)

    def start_new_session(self, session_date: date) -> None:
        """Begin ``session_date``: clear all session data, keep configuration and registered symbols.

        Ends the running session first if `end_session` was not called. When
        ``historical_bars_trailing_days > 0`` the ended session's bars (for each interval in
        ``historical_bars_types``) are kept in ``historical_bars[interval][date]``, keyed by the ended
        session's ``current_session_date`` (or, if none was set, the exchange date of its newest bar); only
        the newest ``historical_bars_trailing_days`` sessions are kept.

        O(total bars kept in history + symbols). Thread-safety: takes the write lock.
        """
        if isinstance(session_date, datetime):
            session_date = session_date.date()  # a timestamp names its (own wall-clock) date
        if not isinstance(session_date, date):
            raise InvalidDataError(f"session_date must be a date, got {session_date!r}")
        with self._lock:
            self._check_history_config()
            if not self._session_ended:
                self.end_session()
            ended = self._current_session_date
            self._version += 1
            version = self._version
            fresh = {}
            for sym, snap in self._snapshots.items():
                new = SymbolSessionData.empty(sym, self._intervals)
                fresh[sym] = new._replace(
                    historical_bars=self._rolled_history(snap, ended),
                    bars_version=version,
                    ticks_version=version,
                    quotes_version=version,
                )
            self._current_session_date = session_date
            self._session_ended = False
            self._set_heads(fresh)
            self._notify()
            logger.info("session %s started (%d symbols)", session_date, len(fresh))

    def _rolled_history(
        self, snap: SymbolSessionData, ended: date | None
    ) -> Mapping[int, Mapping[date, Series[Bar]]]:
        days = self.historical_bars_trailing_days
        if days == 0:
            return MappingProxyType({})
        last = snap.bars_1m.last()
        key = (
            ended if ended is not None else (None if last is None else self._clock.local_date(last.timestamp))
        )
        out: dict[int, Mapping[date, Series[Bar]]] = {}
        for k in self.historical_bars_types:
            kept = dict(snap.historical_bars.get(k, {}))
            series = snap.bars_1m if k == 1 else snap.derived[k].bars
            if key is not None and len(series):
                kept[key] = series  # immutable: the next session starts a new one, so no copy
            for old in sorted(kept)[: max(0, len(kept) - days)]:
                del kept[old]
            out[k] = MappingProxyType(kept)
        return MappingProxyType(out)

    def clear_all(self) -> None:
        """Forget everything: symbols, data, history, session state. O(1).

        Versions keep growing (a waiter never sees one go back). Thread-safety: takes the write lock.
        """
        with self._lock:
            self._version += 1
            self._current_session_date = None
            self._session_ended = False
            self._set_heads({})
            self._notify()
            logger.info("all session data cleared")

    # ----------------------------------------------------------------- reads

    def get_symbol_data(self, symbol: str) -> SymbolSessionData | None:
        """The symbol's current immutable snapshot, or ``None``. O(1); lock-free."""
        snaps = self._view
        snap = snaps.get(symbol)
        if snap is None and isinstance(symbol, str):
            snap = snaps.get(symbol.strip().upper())
        return snap

    def get_latest_bar(self, symbol: str, interval: int = 1) -> Bar | None:
        """The bar with the greatest timestamp, or ``None``. O(1); lock-free."""
        if interval != 1 or type(interval) is not int:
            check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        if snap is None:
            return None
        if interval == 1:
            return snap.bars_1m.last()
        # `read_derived`, with its common case (derived as bars arrive) inline.
        derived = snap.derived_base if snap.derived_pending is None else snap.read_derived()
        return derived[interval].bars.last()

    def get_last_n_bars(self, symbol: str, n: int, interval: int = 1) -> list[Bar]:
        """The last ``n`` bars, oldest → newest; ``[]`` for ``n <= 0``. O(n), independent of the series
        length; lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_last_n_bars(n, interval)

    def get_bars_since(self, symbol: str, timestamp: datetime, interval: int = 1) -> list[Bar]:
        """Bars with ``timestamp >= t``, oldest → newest. O(log n + k); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_bars_since(timestamp, interval)

    def get_bars(
        self,
        symbol: str,
        interval: int = 1,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Bars with ``start <= timestamp < end`` (half-open), oldest → newest. O(log n + k); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_bars(interval, start, end)

    def get_bar_count(self, symbol: str, interval: int = 1) -> int:
        """Number of bars in the series. O(1); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return 0 if snap is None else snap.get_bar_count(interval)

    def get_latest_bars_multi(self, symbols: Iterable[str], interval: int = 1) -> dict[str, Bar | None]:
        """``{SYMBOL: latest bar or None}`` for each symbol. O(len(symbols)); lock-free, and each symbol's
        answer comes from that symbol's snapshot at the moment it is read."""
        check_interval(interval, self._interval_map)
        out: dict[str, Bar | None] = {}
        for symbol in symbols:
            sym = symbol.strip().upper()
            snap = self._view.get(sym)
            out[sym] = None if snap is None else snap.get_latest_bar(interval)
        return out

    def get_forming_bar(self, symbol: str, interval: int) -> Bar | None:
        """The partial bar of the derived window still forming, or ``None``. O(k + log n); lock-free.

        ``interval`` must be a configured derived interval (1-minute bars have no forming bar)."""
        if interval == 1:
            raise ValueError("interval=1 has no forming bar: 1-minute bars are stored as they arrive")
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.get_forming_bar(interval)

    def get_provenance(self, symbol: str, timestamp: datetime) -> Provenance | None:
        """Where the stored 1-minute bar at ``timestamp`` came from, or ``None``. O(log n); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.get_provenance(timestamp)

    def get_ticks(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Tick]:
        """Ticks with ``start <= timestamp < end``, in time order. O(log n + k); lock-free."""
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_ticks(start, end)

    def get_quotes(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Quote]:
        """Quotes with ``start <= timestamp < end``, in time order. O(log n + k); lock-free."""
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_quotes(start, end)

    def get_latest_tick(self, symbol: str) -> Tick | None:
        """The newest tick, or ``None``. O(1); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.ticks.last()

    def get_latest_quote(self, symbol: str) -> Quote | None:
        """The newest quote, or ``None``. O(1); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.quotes.last()

    def get_historical_bars(self, symbol: str, interval: int = 1) -> dict[date, Series[Bar]]:
        """``{session date: bars}`` of the trailing sessions kept for ``interval`` (each an immutable,
        time-ordered `Series`). O(days); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        if snap is None:
            return {}
        return dict(snap.historical_bars.get(interval, {}))

    def get_session_metrics(self, symbol: str) -> dict[str, Any]:
        """``{}`` for an unknown symbol, else ``symbol, session_volume, session_high, session_low,
        last_update, bar_quality, bar_count`` (plus tick/quote counts and versions). O(1); lock-free."""
        snap = self.get_symbol_data(symbol)
        return {} if snap is None else snap.get_session_metrics()

    def get_active_symbols(self) -> set[str]:
        """A copy of the registered symbols. O(symbols); lock-free."""
        return set(self._view)

    def snapshot(self) -> Mapping[str, SymbolSessionData]:
        """Every symbol's current snapshot, as one read-only mapping. O(symbols); lock-free.

        Each value is consistent in itself; values of different symbols may come from different writes
        (hold `write_lock` around the call for a cross-symbol instant).
        """
        return MappingProxyType(dict(self._view))

    # -------------------------------------------------------------- waiting

    def wait_for_update(
        self,
        symbol: str | None = None,
        *,
        after_version: int,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> int | None:
        """Block until ``symbol`` (or, with ``None``, any symbol) has a version above ``after_version``.

        Returns that newer version (`SymbolSessionData.version`, or `version` for the whole store), or
        ``None`` if ``timeout`` seconds passed first, or ``cancel`` was set (a thread's stop signal: set it,
        then call `wake_waiters`). Returns at once if the data is already newer.
        Thread-safety: any thread except one holding the write lock (which would wait for itself). Waits on
        a condition variable separate from the write lock, so waiting never slows writers down.
        """
        if symbol is not None:
            sym = _symbol_key(symbol)

            def current() -> int:
                snap = self._view.get(sym)
                return 0 if snap is None else snap.version
        else:

            def current() -> int:
                return self.version

        with self._changed:
            self._waiters += 1
            try:
                ok = self._changed.wait_for(
                    lambda: current() > after_version or (cancel is not None and cancel.is_set()), timeout
                )
            finally:
                self._waiters -= 1
        if not ok or current() <= after_version:
            return None
        return current()

    def wake_waiters(self) -> None:
        """Wake every `wait_for_update` caller so it re-checks its ``cancel`` event.

        O(waiters); any thread."""
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """Raise `AssertionError` unless every snapshot is internally consistent. O(total data); for tests.

        Checks: series sorted (bars strictly, ticks/quotes non-decreasing); metrics equal to what the bars
        imply; completed + forming derived bars equal a from-scratch aggregation; bar quality equal to its
        definition; history within the configured number of days.
        """
        for sym, snap in dict(self._snapshots).items():
            check_snapshot(snap, self._clock, self.historical_bars_trailing_days)
            assert snap.symbol == sym


def check_snapshot(snap: SymbolSessionData, clock: SessionClock, trailing_days: int) -> None:
    """Raise `AssertionError` unless ``snap`` is internally consistent (see `check_invariants`)."""
    bars = snap.bars_1m
    bars.check_invariants(unique=True)
    if snap.derived_pending is not None:
        check_deferred(snap.derived_pending, bars)
    snap.ticks.check_invariants(unique=False)
    snap.quotes.check_invariants(unique=False)
    items: list[Bar] = list(bars)
    assert all(b.symbol == snap.symbol for b in items)
    volumes = [b.volume for b in items]
    if all(type(v) is int for v in volumes):
        assert snap.session_volume == sum(volumes), "session_volume"
    else:  # float sums depend on the order of the additions, and bars arrive in any order
        assert math.isclose(snap.session_volume, math.fsum(volumes), rel_tol=1e-9, abs_tol=1e-9), "volume"
    assert snap.session_high == (max(b.high for b in items) if items else None), "session_high"
    assert snap.session_low == (min(b.low for b in items) if items else None), "session_low"
    assert snap.bar_quality == expected_quality(items, clock), "bar_quality"
    for k, state in snap.derived.items():
        state.bars.check_invariants(unique=True)
        produced = list(state.bars)
        forming = state.forming_bar(snap.symbol, bars)
        if forming is not None:
            assert not produced or produced[-1].timestamp < forming.timestamp
            produced.append(forming)
        assert produced == derive_from_scratch(items, clock, k), f"derived {k}m bars"
    for per_day in snap.historical_bars.values():
        assert len(per_day) <= trailing_days


def expected_quality(bars: Sequence[Bar], clock: SessionClock) -> float:
    """Bar quality from its definition, by a full scan (the reference for the incremental value)."""
    per_day: dict[date, set[int]] = {}
    for b in bars:
        loc = clock.locate(b.timestamp)
        if loc is not None:
            per_day.setdefault(loc[0], set()).add(loc[1])
    if not per_day:
        return 0.0
    day = max(per_day)
    minutes = per_day[day]
    return 100.0 * len(minutes) / clock.trading_minutes_through(day, max(minutes))


_instance: SessionData | None = None
# Guards the creation and the reset of `_instance`; readers of an existing instance never take it.
_instance_lock = threading.Lock()


def get_session_data() -> SessionData:
    """The process-wide `SessionData`, created on first call (exactly once, even under concurrent first
    calls). O(1); thread-safe."""
    inst = _instance
    if inst is not None:
        return inst
    return _create_instance()


def _create_instance() -> SessionData:
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = SessionData()
            logger.debug("process-wide SessionData created")
        return _instance


def reset_session_data() -> None:
    """Drop the process-wide instance; the next `get_session_data` creates a new one. Thread-safe."""
    global _instance
    with _instance_lock:
        _instance = None
