"""The store's write path: one symbol's next snapshot from its current one.

`append_newest` is the hot lane (one streamed bar newer than every stored one, in the session day the
cursor last located); everything else goes through `apply_bars` and its `SymbolWriter` draft: batches,
out-of-order inserts, corrections, gap fills. Ticks and quotes: `apply_items`; the end of a session:
`flushed`. Every function here is pure (returns a new snapshot, changes nothing a reader can see) and
runs only under the store's write lock.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from itertools import islice
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from sessiondata._calendar import SessionClock, SessionCursor
from sessiondata._models import Bar, InvalidDataError, Provenance, Quote, Tick

from .derived import Deferred
from .quality import (
    COMPARE_TIMES,
    QualityState,
    count_minute,
    count_run,
    cut_run,
    first_marker,
    first_of_wall_minute,
    quality_of,
    quality_of_day,
)
from .series import Series
from .snapshot import SymbolSessionData, WriterState
from .volume import add_volume, add_volumes
from .windows import DerivedState, Window, advance_in_order, advance_newest, advance_passed, own_copy

__all__ = ["SymbolWriter", "append_newest", "apply_bars", "apply_items", "flushed"]

# An enum member read through its class costs ~90 ns on Python 3.11 (an attribute lookup on the enum's
# metaclass); the write path compares against this module constant instead.
_STREAMED = Provenance.STREAMED
# ``SymbolSessionData.derived_skip``: ``(derived, lo, hi, day)``.
_Skip = tuple[Mapping[int, DerivedState], int, int, date]

_new_tuple = tuple.__new__
# The write path builds snapshots positionally (one C call); this pins the field order it relies on.
_SNAPSHOT_FIELDS = (
    "symbol",
    "bars_storage",
    "bar_count",
    "quotes",
    "ticks",
    "session_volume",
    "session_high",
    "session_low",
    "historical_bars",
    "bars_version",
    "ticks_version",
    "quotes_version",
    "latest_bar",
    "writer",
)
assert SymbolSessionData._fields == _SNAPSHOT_FIELDS
_WRITER_FIELDS = (
    "derived_base",
    "provenance_overrides",
    "tz_aware",
    "derived_skip",
    "derived_pending",
    "quality_day",
    "quality_minutes",
    "quality_newest",
    "quality_marker",
    "volume_exact",
    "quality",
)
assert WriterState._fields == _WRITER_FIELDS


def _mixed_timezones(kind: str, symbol: str, ts: datetime, stored_aware: bool) -> InvalidDataError:
    aware = ts.tzinfo is not None
    return InvalidDataError(
        f"{kind}.timestamp={ts.isoformat()} is {'aware' if aware else 'naive'} but {symbol}'s stored "
        f"timestamps are {'aware' if stored_aware else 'naive'}: one symbol's series never mixes the two"
    )


# `WriterState`'s quality fields before the first located bar.
_NO_QUALITY = (None, 0, -1, None)


_ts_of = attrgetter("timestamp")
_tz_of = attrgetter("tzinfo")
_volume_of = attrgetter("volume")
_high_of = attrgetter("high")
_low_of = attrgetter("low")


def append_newest(
    snap: SymbolSessionData, bar: Bar, version: int, locator: SessionCursor
) -> SymbolSessionData | None:
    """`apply_bars` for the hot case: one streamed ``bar``, newer than every stored bar, of the symbol's
    timezone style; when the store derives eagerly, also in the session day of its bar quality or a newer
    one (or outside any session). ``None`` when any of that does not hold (the caller then takes
    `apply_bars`). Pure. O(1) amortized.

    A lazy store's snapshot owes its derived bars and bar quality (`Deferred`): the bar is only appended and
    the writer state shared, which is what keeps this lane a third of an eager one's cost."""
    (
        symbol,
        storage,
        count,
        quotes,
        ticks,
        volume,
        high,
        low,
        history,
        _,
        ticks_version,
        quotes_version,
        latest,
        w,
    ) = snap
    ts = bar.timestamp
    if latest is None or (ts.tzinfo is not None) is not w.tz_aware:
        return None
    h = bar.high
    if high is None or h > high:
        high = h
    b_low = bar.low
    if low is None or b_low < low:
        low = b_low
    total = volume + bar.volume
    if w.derived_pending is not None:
        # Lazy: owed, not counted (see `Deferred`). A newer bar is all this lane needs to know.
        if not latest.timestamp < ts:
            return None
        storage = storage.grown(count, bar)
    else:
        counted = _counted(w, bar, storage, count, latest, locator, symbol)
        if counted is None:
            return None
        storage, w = counted
    if type(total) is not int:  # fractional units: the exact sum, correctly rounded (`add_volume`)
        total, v_exact = add_volume(volume, w.volume_exact, bar.volume)
        w = w._replace(volume_exact=v_exact)
    return _new_tuple(
        SymbolSessionData,
        (
            symbol,
            storage,
            count + 1,
            quotes,
            ticks,
            total,
            high,
            low,
            history,
            version,
            ticks_version,
            quotes_version,
            bar,
            w,
        ),
    )


def _counted(
    w: WriterState,
    bar: Bar,
    storage: Series[Bar],
    count: int,
    latest: Bar,
    locator: SessionCursor,
    symbol: str,
) -> tuple[Series[Bar], WriterState] | None:
    """`append_newest` for a store that derives eagerly: ``bar`` (newer than every stored bar, if it is
    one this lane takes) appended to ``storage`` of ``count`` bars, and the writer state counting its bar
    quality and stepping its derived windows; None when the general path must take it. O(intervals)."""
    derived, overrides, tz_aware, skip, pending, q_day, q_minutes, q_newest, q_marker, v_exact, quality = w
    ts = bar.timestamp
    place = locator.place(ts)
    if place is not None:
        day, offset, session_len, elapsed = place
        counted = count_minute(q_day, q_minutes, q_newest, day, offset)
        if counted is None:
            # Newer, yet at an earlier wall minute: clocks went back inside the session. The general path
            # counts the repeated minute once and keeps ``q_newest`` the greatest minute.
            return None
        # While this lane stored the newest bar, at minute q_newest of q_day (the marker is this snapshot's
        # count), a bar of a later minute is newer, which needs no timestamp comparison (an aware one with a
        # foreign tzinfo costs ~200 ns).
        if not (q_marker == count and offset > q_newest and day is q_day) and not latest.timestamp < ts:
            return None
        storage = storage.grown(count, bar)
        if counted[0] is not q_day:
            # A newer session day (never an earlier one: the bar is the newest): its own marker.
            q_marker = first_marker(locator.clock, day)
            quality = 100.0 * counted[1] / elapsed  # `quality_of`, without a calendar call
        elif counted[1] != q_minutes:
            quality = 100.0 * counted[1] / elapsed
        q_day, q_minutes, q_newest = counted
        if q_marker != COMPARE_TIMES:
            q_marker = count + 1
        if not (skip is not None and skip[0] is derived and skip[1] <= offset < skip[2] and skip[3] == day):
            # Not inside every forming window before the earliest last minute (there, the common case, one
            # check for all intervals says nothing changes): the window machine steps each interval.
            derived, skip = _newest_states(
                derived, bar, storage.view(count + 1), day, offset, session_len, locator.clock
            )
    else:  # outside every session
        if not latest.timestamp < ts:
            return None
        storage = storage.grown(count, bar)
        derived = advance_passed(derived, symbol, ts, storage.view(count + 1), locator.clock)
    return storage, _new_tuple(
        WriterState,
        (derived, overrides, tz_aware, skip, pending, q_day, q_minutes, q_newest, q_marker, v_exact, quality),
    )


def _newest_states(
    derived: Mapping[int, DerivedState],
    bar: Bar,
    appended: Series[Bar],
    day: date,
    offset: int,
    session_len: int,
    clock: SessionClock,
) -> tuple[Mapping[int, DerivedState], _Skip | None]:
    """`append_newest`'s derived states after ``bar`` (just appended, newer than every other) at minute
    ``offset`` of ``day``, the window machine's step for the newest bar (`advance_newest`), and the new
    skip span. O(intervals), or O(k) per window completed."""
    derived, lo, hi = advance_newest(derived, bar, appended, day, offset, session_len, clock)
    return derived, ((derived, lo, hi, day) if lo < hi else None)


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


class SymbolWriter:
    """One symbol's next state, drafted from its snapshot: the bar write path (`apply_bars`) for every write
    the hot lane (`append_newest`) does not take: a batch, an out-of-order insert, a correction, a gap fill.

    ``add_run`` appends an in-order run in one piece; ``add_bar`` adds one bar anywhere; ``freeze`` returns
    the new snapshot. Derived windows move through the window machine (`DerivedState.step` per bar,
    `advance_in_order` per run) and each window a write changes is built once, at ``freeze``.
    Writers only, under the store's lock; a draft that raises is dropped and the store is unchanged.
    """

    __slots__ = (
        "builds",
        "clock",
        "cursor",
        "derived",
        "high",
        "last_ts",
        "lazy",
        "low",
        "overrides",
        "owed_cursor",
        "own_derived",
        "pending",
        "provenance",
        "qs",
        "quality",
        "rebuilt",
        "series",
        "shifted",
        "snap",
        "stored",
        "symbol",
        "tz_aware",
        "volume",
        "volume_exact",
    )

    def __init__(
        self, snap: SymbolSessionData, provenance: Provenance, clock: SessionClock, cursor: SessionCursor
    ) -> None:
        self.snap = snap
        self.symbol = snap.symbol
        self.provenance = provenance
        self.clock = clock
        self.cursor = cursor
        self.series = snap.bars_1m
        self.volume = snap.session_volume
        self.volume_exact = snap.writer.volume_exact
        self.high = snap.session_high
        self.low = snap.session_low
        state = snap.writer
        self.overrides = state.provenance_overrides
        self.qs = state.quality_state
        self.quality = state.quality
        self.tz_aware = state.tz_aware
        last = self.series.last()
        self.last_ts = None if last is None else last.timestamp
        self.stored = 0
        self.shifted = False  # a bar was inserted before the newest: the series' indices moved
        # Lazy (``pending`` set, see `Deferred`): an in-order run is owed like a streamed bar, and anything
        # else settles first (``derived``, ``qs`` and ``quality`` are stale until then); the snapshot stays
        # lazy (the store's option decides, not readers).
        pending = state.derived_pending
        self.lazy = pending is not None
        # The readers' cursor each `Deferred` of this lineage places owed bars with.
        self.owed_cursor = cursor if pending is None else pending.cursor
        self.derived: Mapping[int, DerivedState] = state.derived_base
        self.pending = pending
        self.own_derived: dict[int, DerivedState] | None = None
        # Per interval, the windows the bar-by-bar part (re)builds, by start: built once each at `freeze`.
        self.builds: dict[int, dict[datetime, Window]] = {}
        # Per interval, ``(day, first, last)`` of the newest window added to `builds` (a plain tuple: a
        # `Window`'s named fields are read through a descriptor CPython does not specialise, and a fill
        # asks this for every bar and interval).
        self.rebuilt: dict[int, tuple[date, int, int]] = {}

    def _own(self) -> dict[int, DerivedState]:
        own = self.own_derived
        if own is None:
            own = self.own_derived = own_copy(self.derived)
            self.derived = own
        return own

    def settle(self) -> None:
        """Do what the owed bars are owed (derived states, bar quality) before a write that is not an
        in-order append, from the base itself (never from a reader's memo, see `Deferred.derive`).
        O(bars owed)."""
        pending = self.pending
        if pending is not None:
            self.derived = pending.derive(self.series, self.symbol)
            self.qs = pending.derive_quality(self.series)
            self.quality = quality_of(self.qs, self.clock)
            self.pending = None

    # ------------------------------------------------------------------ an in-order run

    def add_run(self, run: Sequence[Bar], stamps: list[datetime]) -> None:
        """Append ``run`` (in order, newer than every stored bar, one timezone style; ``stamps`` its
        timestamps) in one piece: one series extension, metrics from builtins, and, unless the store is
        lazy (then owed), one locate per stretch and each derived window built once.
        O(len(run) + windows * k)."""
        before = self.series
        self.series = before.extended(run)
        self.last_ts = stamps[-1]
        self.tz_aware = stamps[-1].tzinfo is not None
        self.stored += len(run)
        self.volume, self.volume_exact = add_volumes(self.volume, self.volume_exact, map(_volume_of, run))
        h = max(map(_high_of, run))
        if self.high is None or h > self.high:
            self.high = h
        lo = min(map(_low_of, run))
        if self.low is None or lo < self.low:
            self.low = lo
        if self.provenance is not _STREAMED:
            self.overrides = self.overrides.marked(stamps, self.provenance)
        if self.pending is not None:
            return  # owed, like a streamed bar (see `Deferred`)
        segments = cut_run(stamps, self.cursor)
        qs = count_run(self.qs, segments, stamps, self.series, before.size, self.clock)
        if qs is not self.qs:
            self.qs = qs
            self.quality = quality_of(qs, self.clock)
        if self.derived:
            advanced = advance_in_order(self.derived, self.symbol, stamps, segments, before, run, self.clock)
            if advanced is not None:
                self.derived = self.own_derived = advanced

    # ---------------------------------------------------------------------- one bar

    def add_bar(self, bar: Bar, replace: bool) -> None:
        """Add one bar at its place (``replace=False``: skip it when its timestamp is stored). Raises
        `InvalidDataError` for a naive/aware mix. O(1) amortized in order, else O(log n + 512 + n / 512)."""
        ts = bar.timestamp
        tz_aware = self.tz_aware
        if (ts.tzinfo is not None) is not tz_aware:
            if tz_aware is not None:
                raise _mixed_timezones("Bar", self.symbol, ts, tz_aware)
            self.tz_aware = ts.tzinfo is not None
        old: Bar | None = None
        last_ts = self.last_ts
        in_order = last_ts is None or last_ts < ts
        if in_order:
            self.series = self.series.appended(bar)
            self.last_ts = ts
        elif not replace and self.series.find(ts) is not None:
            return
        else:
            self.series, old = self.series.upserted(bar)
            if old is None:
                self.shifted = True
        self.stored += 1
        self._account(bar, old)
        if old is not None or self.provenance is not _STREAMED:
            marked_as = Provenance.CORRECTION if self.provenance is _STREAMED else self.provenance
            self.overrides = self.overrides.marked((ts,), marked_as)
        loc = self.cursor.locate(ts)
        if loc is None:
            if in_order:
                for k, state in self.derived.items():
                    passed = state.passed(self.symbol, ts, self.series, self.clock)
                    if passed is not state:
                        self._own()[k] = passed
            else:
                self._late_outside(ts)
            return
        day, offset, session_len = loc
        self._count_quality(bar, day, offset, old is None, in_order)
        self._step(day, offset, session_len, ts)

    def _late_outside(self, ts: datetime) -> None:
        """After a bar stamped ``ts`` outside every trading minute was stored out of order: when it lies in
        a break (or a skipped wall minute) inside a derived window that has formed, that window aggregates
        it, so it is rebuilt at `freeze`. O(intervals * log n)."""
        for k, state in self.derived.items():
            window = state.formed_window_at(ts, self.clock)
            if window is not None:
                self._own()
                self.builds.setdefault(k, {})[window.start] = window

    def _account(self, bar: Bar, old: Bar | None) -> None:
        """Session volume, high and low after ``bar`` was stored, replacing ``old`` (or not). O(1); a
        replacement that removes the session high or low rescans, O(n)."""
        high, low = self.high, self.low
        self.volume, self.volume_exact = add_volume(
            self.volume, self.volume_exact, bar.volume, None if old is None else old.volume
        )
        if old is None:
            if high is None or bar.high > high:
                self.high = bar.high
            if low is None or bar.low < low:
                self.low = bar.low
            return
        if bar.high >= old.high or (high is not None and old.high < high):
            self.high = bar.high if high is None or bar.high > high else high
        else:  # the replaced bar held the session high: rescan, O(n), only on such a correction
            self.high = max(b.high for b in self.series)
        if bar.low <= old.low or (low is not None and old.low > low):
            self.low = bar.low if low is None or bar.low < low else low
        else:
            self.low = min(b.low for b in self.series)

    def _count_quality(self, bar: Bar, day: date, offset: int, added: bool, in_order: bool) -> None:
        qs = self.qs
        if qs is None or day > qs.day:
            self.qs = quality_of_day(self.series, self.clock, day, bar.timestamp, offset)
            self.quality = quality_of(self.qs, self.clock)
        elif added and day == qs.day:
            if in_order and offset >= qs.newest:
                new_minute = offset > qs.newest
            else:  # a late bar, or a newer one in a wall minute that clocks going back repeat
                new_minute = first_of_wall_minute(self.series, self.clock.tz, bar.timestamp, not in_order)
            if new_minute:
                self.qs = QualityState(
                    day, qs.minutes + 1, max(offset, qs.newest), first_marker(self.clock, day)
                )
                self.quality = quality_of(self.qs, self.clock)

    def _step(self, day: date, offset: int, session_len: int, ts: datetime) -> None:
        """The window machine's step for the bar just stored at minute ``offset`` of ``day``, each interval;
        the windows it completes or re-derives are built at `freeze`. O(intervals)."""
        last_ts = self.last_ts
        assert last_ts is not None  # a bar is stored
        rebuilt = self.rebuilt
        for k, state in self.derived.items():
            r = rebuilt.get(k)
            if r is not None and r[1] <= offset <= r[2] and r[0] == day:
                # In a window this write already rebuilds (a fill's next minute): completed, so `step`
                # would re-derive it again. Asked first: in a fill it answers all but a window's first bar.
                continue
            if state.is_inside(day, offset):
                continue  # `state.step` would change nothing
            moved = state.step(day, offset, session_len, ts, last_ts, self.clock)
            if moved is not None:
                own = self._own()
                # A late bar re-derives a completed window and leaves the machine where it was: no new
                # state (anchors an insert invalidates are dropped at `freeze`).
                if moved[0] is not state.forming or moved[1] != state.completed:
                    own[k] = state.moved(moved[0], moved[1])
                if moved[2]:
                    # Built once, at `freeze`: a fill of many bars into one window builds it once.
                    self.builds.setdefault(k, {}).update((w.start, w) for w, _ in moved[2])
                    w = moved[2][-1][0]
                    rebuilt[k] = (w.day, w.first, w.last)

    # ------------------------------------------------------------------------ freeze

    def freeze(self, version: int) -> SymbolSessionData:
        """The new snapshot, stamped ``version``. O(windows built * k + intervals)."""
        derived = self.derived
        own = self.own_derived
        for k, windows in self.builds.items():
            assert own is not None
            own[k] = own[k].with_windows(self.symbol, sorted(windows.values()), self.series)
        if self.shifted and any(s.anchor is not None for s in derived.values()):
            derived = own = {k: s.without_anchor() for k, s in derived.items()}
        if own is not None:
            derived = MappingProxyType(own)
        pending = self.pending
        if self.lazy and pending is None:
            # Settled for this write: owe from here.
            pending = Deferred(derived, self.qs, self.series.size, self.owed_cursor)
        snap = self.snap
        quality: tuple[date | None, int, int, int | None] = _NO_QUALITY if self.qs is None else self.qs
        return _new_tuple(
            SymbolSessionData,
            (
                self.symbol,
                self.series,
                self.series.size,
                snap.quotes,
                snap.ticks,
                self.volume,
                self.high,
                self.low,
                snap.historical_bars,
                version,
                snap.ticks_version,
                snap.quotes_version,
                self.series.last(),
                WriterState(
                    derived,
                    self.overrides,
                    self.tz_aware,
                    # Stale once `derived` changed: its first item says which mapping it is for.
                    snap.writer.derived_skip,
                    pending,
                    *quality,
                    self.volume_exact,
                    self.quality,
                ),
            ),
        )


def apply_bars(
    snap: SymbolSessionData,
    bars: Sequence[Bar],
    provenance: Provenance,
    clock: SessionClock,
    version: int,
    replace: bool = True,
    cursor: SessionCursor | None = None,
) -> tuple[SymbolSessionData, int]:
    """``snap`` with ``bars`` added in order, and how many were stored: the whole write path for bars.

    With ``replace=False`` a bar whose timestamp is already stored is skipped instead of replacing it.
    Pure: returns a new snapshot and changes nothing reachable from ``snap`` (a `Series` append writes past
    the end ``snap`` can see). Raises `InvalidDataError` for a naive/aware mix. O(1) amortized per in-order
    bar; see `SessionData.add_bar` for the rest.

    A leading run of bars that are in order and newer than every stored bar (a stream's batch) is appended
    in one piece (`SymbolWriter.add_run`); the rest goes bar by bar (`SymbolWriter.add_bar`).
    """
    writer = SymbolWriter(snap, provenance, clock, cursor if cursor is not None else SessionCursor(clock))
    run_len, stamps = _in_order_prefix(bars, writer.last_ts, writer.tz_aware) if bars else (0, [])
    if run_len:
        del stamps[run_len:]
        writer.add_run(bars if run_len == len(bars) else bars[:run_len], stamps)
    if run_len < len(bars):
        writer.settle()  # the rest goes bar by bar, from the settled states
        for bar in bars[run_len:] if run_len else bars:
            writer.add_bar(bar, replace)
    if not writer.stored:
        return snap, 0
    return writer.freeze(version), writer.stored


def apply_items(
    snap: SymbolSessionData, items: Iterable[Tick | Quote], kind: str, version: int
) -> SymbolSessionData:
    """``snap`` with ticks (``kind="Tick"``) or quotes (``"Quote"``) inserted in time order, equal times
    in arrival order. Pure, like `apply_bars`. O(1) amortized per in-order item."""
    series: Series[Any] = snap.ticks if kind == "Tick" else snap.quotes
    tz_aware = snap.writer.tz_aware
    for item in items:
        ts = item.timestamp
        if (ts.tzinfo is not None) is not tz_aware:
            if tz_aware is not None:
                raise _mixed_timezones(kind, snap.symbol, ts, tz_aware)
            tz_aware = ts.tzinfo is not None
        series = series.inserted(item)
    writer = snap.writer if tz_aware is snap.writer.tz_aware else snap.writer._replace(tz_aware=tz_aware)
    if kind == "Tick":
        return snap._replace(ticks=series, ticks_version=version, writer=writer)
    return snap._replace(quotes=series, quotes_version=version, writer=writer)


def flushed(snap: SymbolSessionData, version: int) -> SymbolSessionData:
    """``snap`` with every forming derived window completed (end of session). O(intervals * k); O(1)
    when derivation is lazy: the flush is owed too, in a child `Deferred`."""
    writer = snap.writer
    pending = writer.derived_pending
    if pending is not None and pending.parent is None:
        owed = Deferred(None, None, snap.bar_count, pending.cursor, pending)
        return snap._replace(writer=writer._replace(derived_pending=owed), bars_version=version)
    # `derived` settles from the base itself: a reader's memo never decides what the writer publishes.
    derived = MappingProxyType({k: s.flush(snap.symbol, snap.bars_1m) for k, s in snap.derived.items()})
    if pending is None:  # eager: derive as bars arrive
        return snap._replace(writer=writer._replace(derived_base=derived), bars_version=version)
    # Lazy, a flush already owed: settle the owed quality too, and owe from here.
    owed = Deferred(derived, pending.derive_quality(snap.bars_1m), snap.bar_count, pending.cursor)
    return snap._replace(
        writer=writer._replace(derived_base=derived, derived_pending=owed), bars_version=version
    )
