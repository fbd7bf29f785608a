"""Gap detection: the regular-session minutes that have ended without a 1-minute bar, grouped into gaps.

`detect_gaps` compares the bars present with the trading minutes a `SessionCalendar` expects, up to "now",
and returns maximal runs of missing minutes as `Gap` objects. It is pure (no store, no threads), so the store,
the upkeep thread and user code can all call it. Closed days, intraday breaks and the missing afternoon of a
half day are not gaps, because the calendar does not expect those minutes; a minute is missing only once it
has ended (``minute start + 1 minute <= now``), so the future is never reported.

Speed comes from integer arithmetic: every timestamp becomes a `minute_key` (wall-clock minutes) in its own
zone, the calendar's expected minutes are converted once per ``(date, zone)`` and cached by the
`SessionClock`, and the check is set membership on ints. A full 390-minute session takes tens of
microseconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from itertools import chain
from operator import attrgetter

import attrs

from ._calendar import SessionCalendar, SessionClock, minute_key, to_exchange_local
from ._models import Bar

__all__ = ["Gap", "detect_gaps", "expected_minutes"]

_MINUTE = timedelta(minutes=1)
# Offsets from the midnight before a session date's (a session may open the evening before), precomputed:
# building gap bounds is then one addition each.
_MINUTES = tuple(timedelta(minutes=i) for i in range(2 * 1440 + 1))
_TIMESTAMP = attrgetter("timestamp")
_TZINFO = attrgetter("tzinfo")


@attrs.frozen(slots=True)
class Gap:
    """A maximal run of consecutive missing regular-session minutes. Immutable: safe to share between
    threads.

    ``start`` is the start of the first missing minute; ``end`` is **exclusive**: the end of the last
    missing minute, i.e. the start of the minute after it (a gap of the single minute 13:47 is
    ``start=13:47, end=13:48, bar_count=1``). So ``end - start == bar_count`` minutes, and ``[start, end)``
    is exactly the half-open range to ask a repository for. A gap never spans a break or two sessions.
    Timestamps are naive exchange-local wall time for naive input, aware in the exchange's zone otherwise.

    Attributes:
        start: The start of the first missing minute.
        end: The end of the last missing minute (exclusive).
        bar_count: The number of missing minutes, ``(end - start)`` in minutes.
    """

    start: datetime
    end: datetime
    bar_count: int

    @property
    def minutes(self) -> tuple[datetime, ...]:
        """The start of every missing minute in the gap, in order. O(bar_count)."""
        return tuple(self.start + i * _MINUTE for i in range(self.bar_count))


def _clock_of(calendar: SessionCalendar | SessionClock) -> SessionClock:
    if isinstance(calendar, SessionClock):
        return calendar
    if not (hasattr(calendar, "session_hours") and hasattr(calendar, "timezone")):
        raise ValueError(f"calendar must be a SessionCalendar or a SessionClock, got {calendar!r}")
    return SessionClock(calendar)


def _timestamps(present: Iterable[Bar] | Iterable[datetime]) -> Sequence[datetime]:
    if isinstance(present, (list, tuple)) and (not present or isinstance(present[0], datetime)):
        return present  # already timestamps: no copy
    it = iter(present)
    first = next(it, None)
    if first is None:
        return []
    if isinstance(first, datetime):
        return [first, *it]
    try:
        return list(map(_TIMESTAMP, chain((first,), it)))
    except AttributeError as exc:
        raise ValueError(f"present must hold Bars or datetimes only: {exc}") from None


def _present_keys(stamps: Sequence[datetime], aware: bool) -> dict[tzinfo | None, set[int]]:
    """The minute keys present, grouped by zone (keys are wall time in that zone)."""
    if not stamps:
        return {}
    try:
        zones = set(map(_TZINFO, stamps))
    except AttributeError:
        raise ValueError("present must hold Bars or datetimes only") from None
    if (None in zones) if aware else (zones != {None}):
        raise ValueError(
            f"present has {'naive' if aware else 'aware'} timestamps but now is "
            f"{'aware' if aware else 'naive'}: use one style throughout"
        )
    if len(zones) == 1:
        # The common case (one symbol's bars share one zone, or equal fixed offsets): one pass, no grouping.
        return {zones.pop(): {ts.toordinal() * 1440 + ts.hour * 60 + ts.minute for ts in stamps}}
    groups: dict[tzinfo | None, set[int]] = {}
    for ts in stamps:
        groups.setdefault(ts.tzinfo, set()).add(minute_key(ts))
    return groups


def detect_gaps(
    calendar: SessionCalendar | SessionClock,
    present: Iterable[Bar] | Iterable[datetime],
    now: datetime,
    *,
    start: datetime | date | None = None,
) -> list[Gap]:
    """The missing regular-session minutes from ``start`` up to ``now``, as sorted maximal `Gap` objects.

    ``calendar`` says which minutes are expected (pass the store's `SessionData.session_clock` to reuse its
    caches; a bare calendar gets a fresh clock per call, correct but slower the first time per date).
    ``present`` holds the bars, or their timestamps, that exist (any order; bars of other sessions or outside
    the regular session are ignored; seconds are dropped, so a bar stamped 09:31:30 covers 09:31).

    A minute counts as missing when it is a trading minute of its session date (closed days, breaks and the
    afternoon of an early close are not), it has ended (``minute start + 1 minute <= now``), it is not before
    ``start``, and no present timestamp falls in it. ``start`` is a datetime (minutes starting before it are
    not reported), a date (from that session date's open), or ``None``: the session holding ``now`` (its
    session date, `SessionClock.session_date`), i.e. the current session only. Sessions are those of the
    calendar, so an overnight session's minutes on the evening before its date belong to it.

    ``now``, ``start`` and ``present`` are all naive (exchange-local wall time) or all aware (any zones,
    converted exactly, also across a daylight-saving change); the gaps come back naive, or aware in the
    exchange's zone. Mixing styles is a `ValueError`, as are values of the wrong type.

    Complexity: O(n + m) for n timestamps present and m expected minutes, plus O(days) for a range of dates;
    no datetime is built except for the gaps' bounds. Thread-safety: pure; any thread may call it
    concurrently (the clock's caches are thread-safe).
    """
    clock = _clock_of(calendar)
    if not isinstance(now, datetime):
        raise ValueError(f"now must be a datetime, got {now!r}")
    aware = now.tzinfo is not None
    now_local = to_exchange_local(now, clock.tz)
    # Minute k has ended iff k + 1 <= now (in minutes), i.e. k < floor(now).
    end_key = minute_key(now_local)
    start_key: int | None = None
    if start is None:
        first_day = clock.session_date(now_local)
    elif isinstance(start, datetime):
        if (start.tzinfo is not None) is not aware:
            raise ValueError("start and now must both be naive or both be timezone-aware")
        start_local = to_exchange_local(start, clock.tz)
        first_day = clock.session_date(start_local)
        start_key = minute_key(start_local) + (1 if start_local.second or start_local.microsecond else 0)
    elif isinstance(start, date):
        first_day = start
    else:
        raise ValueError(f"start must be a datetime, a date or None, got {start!r}")

    groups = _present_keys(_timestamps(present), aware)
    single = next(iter(groups.items())) if len(groups) == 1 else None
    gaps: list[Gap] = []
    for ordinal in range(first_day.toordinal(), clock.session_date(now_local).toordinal() + 1):
        day = date.fromordinal(ordinal)
        local = clock.session_keys(day)
        if not local:
            continue
        lo = 0 if start_key is None else bisect_left(local, start_key)
        hi = bisect_left(local, end_key)
        if lo >= hi:
            continue
        if single is not None:
            zone, keys = single
            theirs = clock.session_keys(day, zone)
            missing = [local[i] for i in range(lo, hi) if theirs[i] not in keys]
        elif not groups:
            missing = list(local[lo:hi])
        else:
            pairs = [(clock.session_keys(day, zone), keys) for zone, keys in groups.items()]
            missing = [local[i] for i in range(lo, hi) if not any(t[i] in k for t, k in pairs)]
        if missing:
            base = (ordinal - 1) * 1440  # the midnight starting the evening before the session date
            _add_runs(missing, base, clock.minute_start(base, aware), gaps)
    return gaps


def _add_runs(missing: list[int], base: int, midnight: datetime, out: list[Gap]) -> None:
    """Group one session's ascending minute keys into runs of consecutive keys (a break ends a run).

    ``midnight`` is the 00:00 of key ``base`` in the output style; adding minutes to it is wall-clock
    arithmetic, also for an aware midnight (same tzinfo), which is what exchange-local minute starts need."""
    minutes = _MINUTES
    run_start = prev = missing[0]
    for k in missing[1:]:
        if k != prev + 1:
            out.append(
                Gap(
                    midnight + minutes[run_start - base],
                    midnight + minutes[prev + 1 - base],
                    prev - run_start + 1,
                )
            )
            run_start = k
        prev = k
    out.append(
        Gap(midnight + minutes[run_start - base], midnight + minutes[prev + 1 - base], prev - run_start + 1)
    )


def expected_minutes(
    calendar: SessionCalendar | SessionClock,
    day: date,
    *,
    now: datetime | None = None,
    aware: bool = False,
) -> list[datetime]:
    """The start of every trading minute of ``day``'s regular session (breaks excluded), in order.

    With ``now``, only the minutes that have ended by then (``start + 1 minute <= now``). Naive
    exchange-local wall times, or with ``aware=True`` aware in the exchange's zone. ``[]`` on a closed day.
    ``len(expected_minutes(...))`` is the denominator of bar quality.

    Complexity: O(session minutes). Thread-safety: pure; any thread.
    """
    clock = _clock_of(calendar)
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"day must be a date, got {day!r}")
    keys = clock.session_keys(day)
    if now is not None:
        if not isinstance(now, datetime):
            raise ValueError(f"now must be a datetime, got {now!r}")
        keys = keys[: bisect_left(keys, minute_key(to_exchange_local(now, clock.tz)))]
    return [clock.minute_start(k, aware) for k in keys]
