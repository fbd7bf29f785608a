"""Bar quality, counted incrementally: the state a writer or a settling reader carries, and how an in-order
run of 1-minute bars moves it.

Bar quality is the distinct trading minutes of the newest located session date that hold a 1-minute bar,
over the trading minutes from the session's start through the newest of them (break minutes are not trading
minutes). `QualityState` is that count. `cut_run` cuts an in-order run into the stretches the window
machine takes (`Segment`) and `count_run` counts the minutes it adds: the one logic behind a batch's
in-order run (the writer) and a lazy store's owed bars (`sessiondata.core.derived`, settled by whoever
reads them).
Every function here is pure.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple

from sessiondata._calendar import SessionClock, SessionCursor
from sessiondata._models import Bar

from .series import Series
from .windows import Segment

__all__ = [
    "COMPARE_TIMES",
    "QualityState",
    "count_minute",
    "count_run",
    "cut_run",
    "first_marker",
    "first_of_wall_minute",
    "quality_of",
    "quality_of_day",
]

_MINUTE = timedelta(minutes=1)
_UTC = timezone.utc
_NO_OFFSETS: list[int] = []

# `QualityState.marker` on a session date whose clocks change (never any snapshot's bar count). There the
# hot lane's shortcut, that a bar of a later wall minute is newer, does not hold: where clocks go back, a
# late bar of the repeated hour's first pass has a later wall minute than bars of its second pass, though it
# is older. So on such a day every streamed bar is compared by timestamp.
COMPARE_TIMES = -1


class QualityState(NamedTuple):
    """The incremental bar-quality state, as one record (`WriterState.quality_state`): what the general
    write path drafts with and a lazy store's owed bars settle into. A snapshot stores it as four fields
    of its `WriterState`."""

    #: The session date bar quality counts (the newest located).
    day: date
    #: Distinct trading minutes of that date with a bar.
    minutes: int
    #: Minute offset of the newest of them.
    newest: int
    #: The bar count of the snapshot whose newest bar the hot lane stored at minute ``newest``, or None when
    #: unknown: while the count is still that, a bar of a later minute is newer without comparing
    #: timestamps (every other write path either keeps the newest bar's minute or changes the count). On a
    #: session date whose clocks change, always ``-1`` (`COMPARE_TIMES`): there a later wall minute does
    #: not mean a newer bar.
    marker: int | None


def quality_of(qs: QualityState | None, clock: SessionClock) -> float:
    """Bar quality from the incremental state (0.0 without one): distinct trading minutes present per
    trading minute elapsed. O(1)."""
    if qs is None:
        return 0.0
    return 100.0 * qs.minutes / clock.trading_minutes_through(qs.day, qs.newest)


def first_marker(clock: SessionClock, day: date) -> int | None:
    """The marker a quality state of ``day`` starts with: `COMPARE_TIMES` when its clocks change, else
    None (unknown until the hot lane stores a bar). O(1) after the date's first lookup."""
    return None if clock.clock_change(day) is None else COMPARE_TIMES


def count_minute(
    q_day: date | None, q_minutes: int, q_newest: int, day: date, offset: int
) -> tuple[date, int, int] | None:
    """The quality state's ``(day, minutes, newest)`` after a bar at minute ``offset`` of session ``day``
    that is newer than every bar counted: a newer day starts its count with this minute (the series holds
    no bar of a day newer than the newest located), a later minute adds one, the same minute none. None when
    ``offset`` is earlier than the newest counted minute of the same day (clocks went back inside the
    session: `count_run` or the general write path counts a repeated wall minute once). The per-bar step of
    the eager hot lane and of a lazy store's settle. O(1)."""
    # ``is`` first: the cursor hands out one date object per stretch, and comparing two dates costs a rich
    # comparison.
    if day is not q_day and day != q_day:
        return day, 1, offset
    assert q_day is not None
    if offset > q_newest:
        return q_day, q_minutes + 1, offset
    if offset == q_newest:
        return q_day, q_minutes, offset
    return None


def quality_of_day(
    series: Series[Bar], clock: SessionClock, day: date, ts: datetime, offset: int
) -> QualityState:
    """Quality state for the first regular bar (stamped ``ts``, at minute ``offset``) of a newer session
    date: count what that date already holds in ``series`` (usually nothing but that bar). O(log n + k)."""
    # The session's bounds from the calendar, as wall time in the exchange zone (naive for naive bars):
    # not the bar's timestamp less its offset, which is off by the hour a clock change skips or repeats.
    bounds = clock.session_bounds(day, aware=ts.tzinfo is not None)
    assert bounds is not None
    offsets = {offset}
    for m in series.between(*bounds):
        found = clock.locate(m.timestamp)
        if found is not None and found[0] == day:
            offsets.add(found[1])
    return QualityState(day, len(offsets), max(offsets), first_marker(clock, day))


def _other_pass_has_bar(series: Series[Bar], tz: tzinfo, ts: datetime) -> bool:
    """Whether ``series`` holds a bar in the other pass of ``ts``'s exchange-local wall minute, when clocks
    going back in zone ``tz`` repeat that minute (an aware ``ts`` only: naive wall time cannot tell the two
    passes apart). Bar quality counts wall minutes, so such a minute is present once. O(log n)."""
    if ts.tzinfo is None:
        return False
    local = ts.astimezone(tz)
    other = local.replace(fold=1 - local.fold, second=0, microsecond=0)
    if other.utcoffset() == local.utcoffset():
        return False  # not a repeated wall minute: the common case
    # In UTC, so that the bisection compares instants whatever zone the stored bars are stamped in.
    start = other.astimezone(_UTC)
    return series.count_between(start, start + _MINUTE) > 0


def first_of_wall_minute(series: Series[Bar], tz: tzinfo, ts: datetime, stored_after: bool) -> bool:
    """Whether the bar stamped ``ts`` (stored in ``series``) is the only bar of its exchange-local wall
    minute, or, with ``stored_after=False`` (bars later than it in ``series`` are not its rivals: an in-order
    run just stored), the first. O(log n)."""
    minute = ts.replace(second=0, microsecond=0)
    if stored_after:
        alone = series.count_between(minute, minute + _MINUTE) == 1
    else:
        alone = series.count_between(minute, ts) == 0
    return alone and not _other_pass_has_bar(series, tz, ts)


def cut_run(stamps: Sequence[datetime], cursor: SessionCursor) -> list[Segment]:
    """An in-order run (its timestamps ``stamps``, one timezone style) cut by ``cursor`` into the stretches
    the window machine takes (`Segment`): in one session date at minute offsets that never go back, or
    outside every session. O(len(run)): naive stamps in one stretch are cut with one bisection."""
    span = cursor.span
    segments: list[Segment] = []
    n = len(stamps)
    i = 0
    while i < n:
        day, session_len, j, offsets = span(stamps, i, n)
        segments.append(Segment(day, session_len, i, j, offsets if day is not None else _NO_OFFSETS))
        i = j
    return segments


def count_run(
    qs: QualityState | None,
    segments: Sequence[Segment],
    stamps: Sequence[datetime],
    after: Series[Bar],
    start: int,
    clock: SessionClock,
) -> QualityState | None:
    """The quality state ``qs`` after an in-order run (``stamps``, cut into ``segments`` by `cut_run`),
    counted as bar-by-bar adds would count it: a new minute is one past the newest so far. ``after``: the
    1-minute series with the run, which starts at position ``start``. Returns ``qs`` itself when the run
    adds no minute. O(len(run)), plus O(log n) per bar in a wall minute that clocks going back repeat and
    O(n / 512 + k) per newer session date."""
    q_day, q_count, q_newest = (qs.day, qs.minutes, qs.newest) if qs is not None else (None, 0, -1)
    q_changed = False
    for day, _, i, _, offsets in segments:
        if day is None:
            continue
        first_new = 0
        if day != q_day and (q_day is None or day > q_day):
            # The first bar of a newer session day: earlier bars of the run are not in that day.
            before = after.head(start)  # built only here: O(n / 512), once a session date
            q_day, q_count, q_newest, _ = quality_of_day(before, clock, day, stamps[i], offsets[0])
            q_changed = True
            first_new = 1
        if day == q_day:
            back = bisect_left(offsets, q_newest, first_new)
            if back > first_new:  # earlier wall minutes than counted: clocks went back in the session
                # Each bar there adds a minute when it is the first of its wall minute (bars after it in
                # ``after`` belong to the run: not its rivals).
                added = sum(
                    first_of_wall_minute(after, clock.tz, stamps[k], False)
                    for k in range(i + first_new, i + back)
                )
                q_count += added
                q_changed = q_changed or added > 0
                first_new = back
            first_new = bisect_right(offsets, q_newest, first_new)
            if first_new < len(offsets):
                q_count += len(set(offsets[first_new:]))
                q_newest = offsets[-1]
                q_changed = True
    if not q_changed:
        return qs
    assert q_day is not None
    return QualityState(q_day, q_count, q_newest, first_marker(clock, q_day))
