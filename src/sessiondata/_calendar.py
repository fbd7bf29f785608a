"""Trading calendars: which minutes belong to each regular session, in the exchange's timezone.

A calendar answers two questions about a *session date*: `session_hours(day)`, the local open and close
times of that date's regular session (``None`` when the exchange is closed), and `breaks(day)`, the local
``(start, end)`` of any breaks inside it (a lunch break, a daily maintenance halt). Everything else (minute
offsets, alignment of derived windows, gap detection, bar quality) is arithmetic on those answers, done in
the exchange's zone so that a session on a daylight-saving change day still opens at 09:30 local time.

A session closes on its session date, at ``close``; it opens on that date at ``open`` when ``open`` is
earlier than ``close``, else on the evening before (CME Globex: ``(17:00, 16:15)`` opens Sunday 17:00 for
Monday's session). A close of 00:00 is the midnight that ends the date, so ``(00:00, 00:00)`` is the whole
calendar day (a 24/7 market) and ``(17:00, 17:00)`` a 24-hour session from the evening before. A break is
placed where it falls inside its session (``(15:15, 15:30)`` on the closing date, ``(22:00, 22:30)`` on the
opening evening). `session_span` is that rule, in one place.

Two calendars ship: `RegularHoursCalendar` (the same hours every weekday, needs nothing extra) and
`ExchangeCalendar`, a bridge to the optional ``exchange_calendars`` package (extra
``sessiondata[calendars]``) for real holidays, early closes and breaks, for every calendar it has (``CMES``
and ``24/7`` included). The bridge imports that package only when it is constructed, so the core never
needs it.

Timestamps may be naive (read as exchange-local wall time) or timezone-aware (converted to the exchange
zone first). Minutes are counted in wall-clock minutes from the session's open: offset 0 is the first
minute, and offsets run on across local midnight. Wall minutes that do not exist (the hour skipped when
clocks go forward inside an overnight session) are cut out of the session like a break; the hour repeated
when clocks go back shares its wall minutes (its offsets).

A *minute key* (`minute_key`) numbers wall-clock minutes: ``date.toordinal() * 1440 + minute of day``. Keys
of consecutive minutes are consecutive integers, also across midnight, which lets gap detection work with
integer sets instead of datetimes.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from typing import Any, NamedTuple, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

__all__ = [
    "ClockChange",
    "ExchangeCalendar",
    "RegularHoursCalendar",
    "SessionCalendar",
    "SessionClock",
    "SessionCursor",
    "SessionSpan",
    "Stretch",
    "WallStretch",
    "minute_key",
    "minute_of_day",
    "regular_hours",
    "session_span",
    "to_exchange_local",
    "zone_of",
]

_MINUTES_PER_DAY = 1440
_DAY = timedelta(days=1)
_NO_BREAKS: tuple[tuple[time, time], ...] = ()


@runtime_checkable
class SessionCalendar(Protocol):
    """What the store, the gap detector and the coordinator need to know about an exchange.

    Sessions are keyed by session date. ``(open, close)`` places a session on its date: the close is on the
    session date (00:00 meaning the midnight that ends it) and the open is the latest ``open`` time before
    it, at most 24 hours earlier, so an open later than the close is on the evening before, and
    ``00:00``-``00:00`` is the whole day.

    Thread-safety: the store's writer, the upkeep thread and readers call a calendar from any thread at
    once, so an implementation must answer concurrent calls (the built-in ones are immutable, or guard their
    caches). The library asks each date once and caches the answer (`SessionClock`), so a method may take
    O(log sessions) but should not do I/O on every call."""

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone; naive timestamps are read as wall time in it."""
        ...

    def session_hours(self, day: date) -> tuple[time, time] | None:
        """Local ``(open, close)`` of ``day``'s regular session, or ``None`` if there is none. Expected
        complexity: O(log sessions) or better."""
        ...

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        """Local ``(start, end)`` of each break inside ``day``'s session (half-open), in time order;
        ``()`` when there is none. Break minutes are not trading minutes. Expected complexity: O(log
        sessions + breaks) or better."""
        ...


class SessionSpan(NamedTuple):
    """A session's open and close in minutes from the local midnight that starts its session date: ``open``
    is negative for a session opening on the evening before, ``close`` is at most 1440 (the next midnight)."""

    open: int
    close: int


def session_span(open_: time, close: time) -> SessionSpan:
    """Where ``(open, close)`` local times put a session relative to its session date (the module rule):
    the close is on the session date (00:00 meaning the midnight that ends it), the open is the latest
    ``open`` time before the close, at most 24 hours earlier. O(1)."""
    end = minute_of_day(close) or _MINUTES_PER_DAY
    start = minute_of_day(open_)
    if start >= end:
        start -= _MINUTES_PER_DAY
    return SessionSpan(start, end)


def zone_of(value: str | tzinfo) -> tzinfo:
    """``value`` as a `tzinfo` (a string is an IANA zone name). O(1)."""
    return ZoneInfo(value) if isinstance(value, str) else value


def regular_hours(calendar: SessionCalendar) -> tuple[time, time] | None:
    """The calendar's regular ``(open, close)``: its ``start_time`` and ``end_time`` when it has both (the
    built-in calendars do; an `ExchangeCalendar`'s are the hours most of its sessions keep), else ``None``
    (a custom calendar that states no single pair of hours). O(1)."""
    start = getattr(calendar, "start_time", None)
    end = getattr(calendar, "end_time", None)
    if isinstance(start, time) and isinstance(end, time):
        return start, end
    return None


def _check_breaks(breaks: Iterable[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    out = tuple((start, end) for start, end in breaks)
    for start, end in out:
        if not (isinstance(start, time) and isinstance(end, time)):
            raise ValueError(f"a break is a (start, end) pair of times, got {(start, end)!r}")
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("break times are exchange-local wall times: pass naive times")
        if minute_of_day(start) == minute_of_day(end):
            raise ValueError(f"break {start}-{end} is empty")
    return out


class RegularHoursCalendar:
    """The built-in calendar: the same hours every weekday, no holidays.

    ``start_time``/``end_time`` follow the module rule: ``start_time`` later than (or equal to)
    ``end_time`` is an overnight session that opens on the evening before its session date (e.g.
    ``time(17, 0), time(16, 15)`` for CME Globex), and ``time(0, 0), time(0, 0)`` is the whole day.
    Saturdays and Sundays have no session unless ``weekends=True`` (a 24/7 market); an overnight session
    dated Monday still opens on Sunday evening. ``breaks`` are local ``(start, end)`` daily pauses (e.g.
    ``[(time(15, 15), time(15, 30))]``, the CME equity-index halt of 2013); a pause may cross midnight, and
    holds wherever it overlaps a session (one that began before the open pauses the session's first minutes).
    ``weekdays_only`` is the older spelling: ``weekdays_only=False`` means ``weekends=True``.
    For real holidays and early closes use `ExchangeCalendar` (extra ``sessiondata[calendars]``).

    Thread-safety: immutable after construction; any thread may call it. Every method is O(1).
    """

    __slots__ = ("_breaks", "_end", "_start", "_tz", "_weekends")

    def __init__(
        self,
        start_time: time = time(9, 30),
        end_time: time = time(16, 0),
        timezone: str | tzinfo = "America/New_York",
        *,
        weekends: bool = False,
        breaks: Iterable[tuple[time, time]] = (),
        weekdays_only: bool | None = None,
    ) -> None:
        if start_time.tzinfo is not None or end_time.tzinfo is not None:
            raise ValueError("start_time and end_time are exchange-local wall times: pass naive times")
        self._start = start_time
        self._end = end_time
        self._tz = zone_of(timezone)
        self._weekends = weekends if weekdays_only is None else not weekdays_only
        self._breaks = _check_breaks(breaks)

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone; naive timestamps are read as wall time in it. O(1)."""
        return self._tz

    @property
    def start_time(self) -> time:
        """Local time every session opens (on the evening before when not before ``end_time``). O(1)."""
        return self._start

    @property
    def end_time(self) -> time:
        """Local time every session closes. O(1)."""
        return self._end

    @property
    def weekends(self) -> bool:
        """Whether Saturdays and Sundays are session dates. O(1)."""
        return self._weekends

    def session_hours(self, day: date) -> tuple[time, time] | None:
        """``(start_time, end_time)``, or ``None`` when ``day`` is a Saturday or Sunday without
        ``weekends``. O(1)."""
        if not self._weekends and day.weekday() >= 5:
            return None
        return self._start, self._end

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        """The configured breaks (the same every session). O(1)."""
        return self._breaks

    def _key(self) -> tuple[object, ...]:
        return self._start, self._end, str(self._tz), self._weekends, self._breaks

    def __eq__(self, other: object) -> bool:
        """Equal when it keeps the same sessions: the same hours, zone (by name), weekends and breaks.
        O(breaks)."""
        if not isinstance(other, RegularHoursCalendar):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        extra = f", breaks={list(self._breaks)}" if self._breaks else ""
        return (
            f"RegularHoursCalendar({self._start}, {self._end}, {self._tz!s}, "
            f"weekends={self._weekends}{extra})"
        )


def _time_of(minute: int) -> time:
    return time((minute // 60) % 24, minute % 60)


class ExchangeCalendar:
    """A `SessionCalendar` backed by ``exchange_calendars`` (optional extra ``sessiondata[calendars]``).

    Gives real holidays (``session_hours`` is ``None``), early closes (e.g. XNYS closes at 13:00 the day after
    Thanksgiving), breaks (e.g. XHKG's 12:00-13:00 lunch), sessions that open on the evening before (``CMES``:
    17:00 Chicago time the day before) and whole-day sessions (``24/7``). ``name`` is any calendar code
    ``exchange_calendars`` knows, or an already built ``exchange_calendars.ExchangeCalendar``;
    ``start``/``end`` bound the dates it knows (``exchange_calendars`` defaults to about 20 years back and 1
    year ahead). Asking about a date outside those bounds is a `ValueError` rather than a silent "closed".

    ``exchange_calendars`` is imported here, on construction, never at module import. Construction converts
    the whole schedule once (O(sessions), a few milliseconds; building the underlying calendar takes about
    0.1 s), so every later answer is a dict lookup: exchange_calendars' own lookups are far too slow for
    per-bar use. A schedule that the module rule (`session_span`) cannot express (a session longer than
    24 hours, or closing after its session date) is a `ValueError`; no calendar of exchange_calendars 4.x
    has one.

    ``start_time``/``end_time`` are its *regular* hours: the ``(open, close)`` most of its sessions keep
    (ties go to the pair kept by the later session), so ``XNYS`` reads 09:30/16:00 although it closes at
    13:00 on early-close days, and ``CMES`` 17:00/16:00. They describe the calendar in one pair, as a
    `RegularHoursCalendar`'s do; the hours of a given date are ``session_hours(day)``.

    Thread-safety: immutable after construction; any thread may call it. ``session_hours`` and ``breaks``
    are O(1).
    """

    __slots__ = ("_breaks", "_first", "_hours", "_last", "_name", "_regular", "_tz")

    def __init__(
        self,
        name: str | Any = "XNYS",
        *,
        start: date | str | None = None,
        end: date | str | None = None,
    ) -> None:
        try:
            import exchange_calendars as xcals  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ModuleNotFoundError as exc:  # the optional extra is not installed
            raise ModuleNotFoundError(
                "ExchangeCalendar needs the optional package exchange_calendars: "
                "pip install 'sessiondata[calendars]'"
            ) from exc
        if isinstance(name, str):
            kwargs: dict[str, Any] = {}
            if start is not None:
                kwargs["start"] = str(start)
            if end is not None:
                kwargs["end"] = str(end)
            try:
                cal = xcals.get_calendar(name, **kwargs)
            except xcals.errors.InvalidCalendarName:
                raise ValueError(
                    f"unknown exchange calendar {name!r}: use a code exchange_calendars knows "
                    "(exchange_calendars.get_calendar_names()), e.g. XNYS, XLON, CMES, 24/7"
                ) from None
        else:
            if start is not None or end is not None:
                raise ValueError("start/end apply only when ExchangeCalendar builds the calendar from a name")
            cal = name
        self._name: str = str(cal.name)
        tz = ZoneInfo(str(cal.tz))
        self._tz = tz
        hours, breaks = _convert_schedule(cal.schedule, tz, self._name)
        self._hours: dict[date, tuple[time, time]] = hours
        self._breaks: dict[date, tuple[tuple[time, time], ...]] = breaks
        self._first: date = cal.first_session.date()
        self._last: date = cal.last_session.date()
        self._regular = _most_kept(hours.values())

    @property
    def start_time(self) -> time | None:
        """The regular open: the open most sessions keep (see the class docstring); ``None`` only for a
        calendar without sessions. O(1)."""
        return None if self._regular is None else self._regular[0]

    @property
    def end_time(self) -> time | None:
        """The regular close: the close most sessions keep (early closes are not it); ``None`` only for a
        calendar without sessions. O(1)."""
        return None if self._regular is None else self._regular[1]

    @property
    def name(self) -> str:
        """The exchange code, e.g. ``"XNYS"``."""
        return self._name

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone; naive timestamps are read as wall time in it. O(1)."""
        return self._tz

    @property
    def first_session(self) -> date:
        """The first date this calendar knows about."""
        return self._first

    @property
    def last_session(self) -> date:
        """The last date this calendar knows about."""
        return self._last

    def _check_bounds(self, day: date) -> None:
        if not self._first <= day <= self._last:
            raise ValueError(
                f"{day} is outside the {self._name} calendar's range {self._first}..{self._last}: "
                "build ExchangeCalendar(..., start=..., end=...) to cover it"
            )

    def session_hours(self, day: date) -> tuple[time, time] | None:
        """Local ``(open, close)`` of ``day``, ``None`` on a holiday or weekend. O(1).

        Raises `ValueError` for a date outside ``first_session..last_session``."""
        found = self._hours.get(day)
        if found is None:
            self._check_bounds(day)
        return found

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        """Local ``(start, end)`` of ``day``'s break(s), ``()`` if none or closed. O(1)."""
        found = self._breaks.get(day)
        if found is not None:
            return found
        self._check_bounds(day)
        return _NO_BREAKS

    def __repr__(self) -> str:
        return f"ExchangeCalendar({self._name!r}, {self._first}..{self._last})"


def _most_kept(hours: Iterable[tuple[time, time]]) -> tuple[time, time] | None:
    """The ``(open, close)`` pair that occurs most often in ``hours`` (in date order); of pairs as frequent,
    the one that occurs last. ``None`` for no hours. O(len(hours))."""
    counts: dict[tuple[time, time], int] = {}
    last: dict[tuple[time, time], int] = {}
    for i, pair in enumerate(hours):
        counts[pair] = counts.get(pair, 0) + 1
        last[pair] = i
    if not counts:
        return None
    return max(counts, key=lambda pair: (counts[pair], last[pair]))


def _convert_schedule(
    schedule: Any, tz: ZoneInfo, name: str
) -> tuple[dict[date, tuple[time, time]], dict[date, tuple[tuple[time, time], ...]]]:
    """Turn an ``exchange_calendars`` schedule (UTC timestamps) into local-time dicts, vectorized.

    Each time becomes whole minutes from the local midnight starting its session label, so a session that
    opened the evening before is negative; `session_span` must give the same minutes back."""
    labels = [ts.date() for ts in schedule.index]
    midnights = schedule.index.tz_localize(None) if schedule.index.tz is not None else schedule.index

    def minutes(col: str) -> list[Any]:
        local = schedule[col].dt.tz_convert(tz).dt.tz_localize(None)
        return ((local - midnights.values).dt.total_seconds() // 60).tolist()  # type: ignore[no-any-return]

    opens, closes = minutes("open"), minutes("close")
    b_starts, b_ends = minutes("break_start"), minutes("break_end")
    hours: dict[date, tuple[time, time]] = {}
    breaks: dict[date, tuple[tuple[time, time], ...]] = {}
    for day, o, c, bs, be in zip(labels, opens, closes, b_starts, b_ends, strict=True):
        pair = (_time_of(int(o)), _time_of(int(c)))
        if session_span(*pair) != (o, c):
            raise ValueError(
                f"the {name} calendar's session of {day} (open {int(o)}, close {int(c)} minutes from its "
                "local midnight) is longer than 24 hours or closes after its session date"
            )
        hours[day] = pair
        # NaT (no break that day) comes back as NaN.
        if not (math.isnan(bs) or math.isnan(be)) and bs < be:
            breaks[day] = ((_time_of(int(bs)), _time_of(int(be))),)
        else:
            breaks[day] = _NO_BREAKS
    return hours, breaks


def to_exchange_local(ts: datetime, tz: tzinfo) -> datetime:
    """``ts`` as naive exchange-local wall time: naive input is returned as is. O(1)."""
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(tz).replace(tzinfo=None)


def minute_of_day(t: time | datetime) -> int:
    """Minutes since local midnight (seconds dropped). O(1)."""
    return t.hour * 60 + t.minute


def minute_key(ts: datetime) -> int:
    """The wall-clock minute key of ``ts`` in its own zone: ``toordinal() * 1440 + minute of day``.

    Seconds are dropped. Consecutive minutes have consecutive keys, across midnight too. O(1)."""
    return ts.toordinal() * _MINUTES_PER_DAY + ts.hour * 60 + ts.minute


class _Piece(NamedTuple):
    """The part of one session's span that falls on one local date, in that date's minutes of day."""

    lo: int  # first minute of the piece
    hi: int  # end of the piece (exclusive)
    day: date  # the session date
    open: int  # the session's open in this local date's minutes (negative: the evening before)
    length: int  # the session's length in wall minutes


_UTC = timezone.utc


class ClockChange(NamedTuple):
    """Where the exchange zone's clocks change inside one session (`SessionClock.clock_change`), and how
    wall-clock windows of that session map to instants (`bounds`).

    The rule (see docs/architecture.md, "Derived windows across a clock change"): windows are wall-clock
    windows of the session's minute offsets, whatever zone the bars are stamped in. The hour clocks going
    forward skip is cut out (a window's bounds that fall in it move to the first minute after it); the hour
    clocks going back repeat shares its wall windows, so a window there holds the bars of both passes: it
    starts at its first pass and ends at its second, less the real time between (its ``hole``). Immutable."""

    #: The exchange's zone.
    tz: tzinfo
    #: The session's open, naive exchange wall time (offset 0).
    open_wall: datetime
    #: The zone's UTC offset before the change, and after it.
    before: timedelta
    after: timedelta
    #: The instant the clocks change, naive UTC.
    at: datetime

    def bounds(
        self, first: int, stop: int, tz: tzinfo
    ) -> tuple[datetime, datetime, tuple[datetime, datetime] | None]:
        """``(start, end, hole)`` of the window of wall minute offsets ``first <= x < stop``, for bars
        stamped with ``tz``: the window holds the bars with ``start <= timestamp < end`` outside ``hole``
        (half-open; ``None`` but for a window of the repeated hour, stamped in a zone other than the
        exchange's). Bars stamped in the exchange zone itself compare by wall time (Python compares datetimes
        of one tzinfo so), so theirs are wall times, moved out of a skipped hour; else instants, as ``tz``.
        O(1)."""
        a = self.open_wall + timedelta(minutes=first)
        b = self.open_wall + timedelta(minutes=stop)
        if tz is self.tz:
            return self._existing(a).replace(tzinfo=tz), self._existing(b).replace(tzinfo=tz), None
        # The instants whose wall time lies in [a, b): before the change at offset `before`, after it at
        # `after`. Clocks going forward leave the two pieces adjacent (or one empty); going back, they
        # overlap in wall time and stand an hour apart in real time (the hole).
        at = self.at
        s1, e1 = a - self.before, min(b - self.before, at)
        s2, e2 = max(a - self.after, at), b - self.after
        hole = None
        if s1 >= e1:
            start, end = (s2, e2) if s2 < e2 else (at, at)
        elif s2 >= e2:
            start, end = s1, e1
        else:
            start, end = s1, e2
            if e1 != s2:
                hole = (_instant(e1, tz), _instant(s2, tz))
        return _instant(start, tz), _instant(end, tz), hole

    def _existing(self, wall: datetime) -> datetime:
        """``wall`` (naive exchange wall time), or the end of the skipped hour when clocks going forward skip
        it. O(1)."""
        if self.after > self.before and self.at + self.before <= wall < self.at + self.after:
            return self.at + self.after
        return wall


def _instant(utc: datetime, tz: tzinfo) -> datetime:
    """The naive UTC ``utc`` as an aware datetime in ``tz``. O(1)."""
    aware = utc.replace(tzinfo=_UTC)
    return aware if tz is _UTC else aware.astimezone(tz)


class SessionClock:
    """Fast session arithmetic over a calendar, keyed by session date: cached opens, lengths, trading
    segments and keys, and the session (date, offset) of any timestamp.

    A session may open on the evening before its date or last the whole day: `locate` and `session_date`
    find the session holding a timestamp whichever local date it falls on, and `hours`, `segments` and
    `session_keys` give minutes from the local midnight that starts the session date (negative on the
    evening before).

    Thread-safety: the caches are dicts filled on first use of a date (concurrent fills store equal values)
    and `functools.lru_cache`s (thread-safe), so any thread may call it. Each call is O(1) after a date's
    first lookup, except `session_keys` for a new ``(date, zone)`` pair, which is O(session minutes).

    Attributes:
        calendar: The calendar it computes over.
        tz: The calendar's time zone.
    """

    __slots__ = ("_breaks", "_cache", "_changes", "_keys", "_pieces", "_segments", "calendar", "tz")

    def __init__(self, calendar: SessionCalendar) -> None:
        self.calendar = calendar
        self.tz = calendar.timezone
        self._cache: dict[date, tuple[int, int] | None] = {}
        self._segments: dict[date, tuple[tuple[int, int], ...]] = {}
        # Per local date: the pieces of the sessions that fall on it, in time order (usually one).
        self._pieces: dict[date, tuple[_Piece, ...]] = {}
        # Per date: the break minutes as half-open offset ranges from the open, or None (the common case).
        self._breaks: dict[date, tuple[tuple[int, int], ...] | None] = {}
        # Per date: the clock change inside its session, or None (the common case).
        self._changes: dict[date, ClockChange | None] = {}
        # Bounded: a long backtest touches many dates, each key tuple holds one int per session minute.
        self._keys: Callable[[date, tzinfo | None], tuple[int, ...]] = functools.lru_cache(maxsize=256)(
            self._build_keys
        )

    def hours(self, day: date) -> tuple[int, int] | None:
        """``(open, session length in minutes)`` for session date ``day``, or ``None`` when closed. ``open``
        counts minutes from the local midnight starting ``day``: negative for a session that opens on the
        evening before. The length is in wall minutes, at most 1440. O(1) after the date's first lookup."""
        try:
            return self._cache[day]
        except KeyError:
            pass
        found = self.calendar.session_hours(day)
        value = None
        if found is not None:
            span = session_span(*found)
            value = (span.open, span.close - span.open)
        self._cache[day] = value
        return value

    def _pieces_of(self, local_day: date) -> tuple[_Piece, ...]:
        try:
            return self._pieces[local_day]
        except KeyError:
            pass
        found: list[_Piece] = []
        hours = self.hours(local_day)
        if hours is not None:
            found.append(_Piece(max(0, hours[0]), hours[0] + hours[1], local_day, hours[0], hours[1]))
        nxt = local_day + _DAY
        try:
            later = self.hours(nxt)
        except ValueError:  # past the end of a bounded calendar: no session known to open tonight
            later = None
        if later is not None and later[0] < 0:
            open_ = later[0] + _MINUTES_PER_DAY
            found.append(_Piece(open_, _MINUTES_PER_DAY, nxt, open_, later[1]))
        value = tuple(found)
        self._pieces[local_day] = value
        return value

    def locate(self, ts: datetime) -> tuple[date, int, int] | None:
        """``(session date, minute offset from the open, session length)`` if ``ts`` falls in a trading
        minute of a regular session, else ``None`` (no session, before the open, at or after the close, or
        inside a break). Offsets count wall minutes from the open (break minutes included, so windows stay
        aligned to the open), across local midnight too; seconds are dropped. O(1)."""
        found = self.position(ts)
        if found is not None:
            cuts = self._break_offsets(found[0])
            if cuts is not None:
                offset = found[1]
                for lo, hi in cuts:
                    if lo <= offset < hi:
                        return None
        return found

    def position(self, ts: datetime) -> tuple[date, int, int] | None:
        """`locate` with the minutes that do not trade inside a session's span (its breaks, wall minutes a
        clock change skips) answered too: ``(session date, offset, session length)`` when ``ts`` lies
        between a session's open and close, else ``None``. Where a print stamped in a break belongs (the
        derived window holding it). O(1). Thread-safety: as every method of the clock."""
        local = ts if ts.tzinfo is None else ts.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        for piece in self._pieces_of(local.date()):
            if piece.lo <= minute < piece.hi:
                return piece.day, minute - piece.open, piece.length
        return None

    def session_date(self, ts: datetime) -> date:
        """The session date ``ts`` belongs to: the date of the session whose span (open to close, breaks
        included) holds it, else its exchange-local date. Use it wherever a timestamp's day is meant
        (rollover, history keys, replay days): it is the local date except on an overnight session's opening
        evening. O(1)."""
        local = ts if ts.tzinfo is None else ts.astimezone(self.tz)
        minute = local.hour * 60 + local.minute
        day = local.date()
        for piece in self._pieces_of(day):
            if piece.lo <= minute < piece.hi:
                return piece.day
        return day

    def session_bounds(self, day: date, aware: bool = False) -> tuple[datetime, datetime] | None:
        """The local ``(open, close)`` of session date ``day`` as datetimes (naive wall time, or aware in
        the exchange zone), or ``None`` when closed. The open may be on the evening before. O(1)."""
        hours = self.hours(day)
        if hours is None:
            return None
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz if aware else None)
        return midnight + timedelta(minutes=hours[0]), midnight + timedelta(minutes=hours[0] + hours[1])

    def date_bounds(self, day: date, aware: bool = False) -> tuple[datetime, datetime]:
        """The wall-time range ``[start, end)`` that belongs to session date ``day``: from its open when that
        is on the evening before, else from its local midnight, up to where the next date's range starts.
        The ranges of consecutive dates tile the time line, so one pass over them sees every timestamp once,
        in the session it belongs to (what a replay of whole days needs; ``day`` need not be a session).
        Naive, or aware in the exchange zone. O(1)."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz if aware else None)
        return (
            midnight + timedelta(minutes=self._range_start(day, True)),
            midnight + timedelta(minutes=_MINUTES_PER_DAY + self._range_start(day + _DAY, False)),
        )

    def _range_start(self, day: date, strict: bool) -> int:
        try:
            hours = self.hours(day)
        except ValueError:  # the next date of a bounded calendar: nothing known opens before its midnight
            if strict:
                raise
            hours = None
        return 0 if hours is None else min(0, hours[0])

    def clock_change(self, day: date) -> ClockChange | None:
        """The change of the exchange zone's UTC offset inside session date ``day``'s session (clocks going
        forward or back), or ``None`` when the offset holds all session long (the common case) or there is
        no session. A session is assumed to hold at most one change (every zone's rules space them months
        apart). O(1) after the date's first lookup, which is O(log session minutes) on a change day."""
        try:
            return self._changes[day]
        except KeyError:
            pass
        value = None
        hours = self.hours(day)
        if hours is not None:
            tz = self.tz
            open_wall = datetime(day.year, day.month, day.day) + timedelta(minutes=hours[0])
            close_wall = open_wall + timedelta(minutes=hours[1])
            before = open_wall.replace(tzinfo=tz).utcoffset()
            after = (close_wall - _MINUTE).replace(tzinfo=tz).utcoffset()
            if before is not None and after is not None and before != after:
                at = self._change_instant(open_wall - before, after)
                value = ClockChange(tz, open_wall, before, after, at)
        self._changes[day] = value
        return value

    def _change_instant(self, lo: datetime, after: timedelta) -> datetime:
        """The first whole minute (naive UTC) from ``lo`` on, within a day, whose UTC offset in the exchange
        zone is ``after``: the instant its clocks change. O(log 1440)."""
        tz = self.tz
        low, high = 0, _MINUTES_PER_DAY + 60
        while low < high:
            mid = (low + high) // 2
            if (lo + timedelta(minutes=mid)).replace(tzinfo=_UTC).astimezone(tz).utcoffset() == after:
                high = mid
            else:
                low = mid + 1
        return lo + timedelta(minutes=low)

    def _break_offsets(self, day: date) -> tuple[tuple[int, int], ...] | None:
        try:
            return self._breaks[day]
        except KeyError:
            pass
        hours = self.hours(day)
        value: tuple[tuple[int, int], ...] | None = None
        if hours is not None:
            # Everything of [open, close) outside the segments, a break at the open or close included.
            open_, close = hours[0], hours[0] + hours[1]
            edges = [(open_, open_), *self.segments(day), (close, close)]
            gaps = [(end - open_, nxt - open_) for (_, end), (nxt, _) in pairwise(edges) if end < nxt]
            value = tuple(gaps) or None
        self._breaks[day] = value
        return value

    def stretch(self, day: date, offset: int) -> tuple[int, int]:
        """The half-open offsets ``(first, end)`` of the stretch of trading minutes of ``day``'s session
        (the session between breaks) that holds the trading minute ``offset``; ``(offset, offset + 1)`` if
        ``offset`` is not a trading minute. O(breaks) after the date's first lookup."""
        hours = self.hours(day)
        if hours is not None:
            for first, end in self.segments(day):
                if first <= offset + hours[0] < end:
                    return first - hours[0], end - hours[0]
        return offset, offset + 1

    def non_trading(self, day: date) -> tuple[tuple[int, int], ...]:
        """The minute offsets of ``day``'s session that are no trading minutes (its breaks, and wall minutes
        a clock change skips) as half-open ``(first, end)`` ranges, in order; ``()`` when every minute
        trades. O(1) after the date's first lookup. Thread-safety: as every method of the clock."""
        return self._break_offsets(day) or ()

    def trading_minutes_through(self, day: date, offset: int) -> int:
        """How many trading minutes of ``day``'s session lie in offsets ``0..offset`` (break minutes are not
        trading minutes): the denominator of bar quality. ``offset + 1`` on a day without breaks. O(1)."""
        cuts = self._break_offsets(day)
        if cuts is None:
            return offset + 1
        return offset + 1 - sum(max(0, min(hi, offset + 1) - lo) for lo, hi in cuts)

    def local_date(self, ts: datetime) -> date:
        """The exchange-local date of ``ts`` (see `session_date` for the session it belongs to). O(1)."""
        return (ts if ts.tzinfo is None else ts.astimezone(self.tz)).date()

    def segments(self, day: date) -> tuple[tuple[int, int], ...]:
        """The trading minutes of session date ``day`` as half-open ``(first, end)`` ranges of minutes from
        the local midnight starting ``day`` (negative on the evening before), in order: the session with its
        breaks, and any wall minutes a clock change skips, cut out; ``()`` when closed. O(1) after the
        date's first lookup."""
        try:
            return self._segments[day]
        except KeyError:
            pass
        hours = self.hours(day)
        value: tuple[tuple[int, int], ...] = ()
        if hours is not None:
            open_, close = hours[0], hours[0] + hours[1]
            parts: list[tuple[int, int]] = []
            pos = open_
            for cut_lo, cut_hi in sorted(self._cuts(day, open_, close)):
                lo, hi = max(cut_lo, pos), min(cut_hi, close)
                if lo >= hi:
                    continue
                if lo > pos:
                    parts.append((pos, lo))
                pos = hi
            if pos < close:
                parts.append((pos, close))
            value = tuple(parts)
        self._segments[day] = value
        return value

    def _cuts(self, day: date, open_: int, close: int) -> list[tuple[int, int]]:
        """The minutes of ``day``'s session ``[open_, close)`` that do not trade: breaks, each at its
        occurrence starting in the 24 hours from the open and at the one before (a break that began before
        the open, e.g. a daily pause 23:30-00:30 of a 24/7 session, still holds the session's first
        minutes; `segments` clips both to the session, as it clips a break running past the close), and
        wall minutes that do not exist in the zone."""
        # A calendar written before breaks existed may lack the method: it has no breaks.
        get_breaks = getattr(self.calendar, "breaks", None)
        cuts: list[tuple[int, int]] = []
        for b_start, b_end in get_breaks(day) if get_breaks is not None else ():
            lo = open_ + (minute_of_day(b_start) - open_) % _MINUTES_PER_DAY
            hi = lo + (minute_of_day(b_end) - minute_of_day(b_start)) % _MINUTES_PER_DAY
            cuts.append((lo, hi))
            if hi - _MINUTES_PER_DAY > open_:
                cuts.append((lo - _MINUTES_PER_DAY, hi - _MINUTES_PER_DAY))
        base = day.toordinal() * _MINUTES_PER_DAY
        if self._aware(base + open_).utcoffset() != self._aware(base + close - 1).utcoffset():
            # A clock change inside the session (rare: once per date, O(session minutes)).
            cuts.extend((m, m + 1) for m in range(open_, close) if not self._exists(base + m))
        return cuts

    def _exists(self, key: int) -> bool:
        wall = self._aware(key)
        return wall.astimezone(_UTC).astimezone(self.tz).replace(tzinfo=None) == wall.replace(tzinfo=None)

    def session_keys(self, day: date, tz: tzinfo | None = None) -> tuple[int, ...]:
        """The `minute_key` of every trading minute of session date ``day`` (breaks excluded), ascending, as
        wall time in ``tz``; ``None`` means exchange-local wall time (naive timestamps).

        O(1) when cached (the 256 most recent ``(day, tz)`` pairs), else O(session minutes)."""
        try:
            return self._keys(day, tz)
        except TypeError:  # an unhashable tzinfo cannot be a cache key
            return self._build_keys(day, tz)

    def _build_keys(self, day: date, tz: tzinfo | None) -> tuple[int, ...]:
        base = day.toordinal() * _MINUTES_PER_DAY
        local = [base + m for first, end in self.segments(day) for m in range(first, end)]
        if tz is None or tz is self.tz or not local:
            return tuple(local)
        # Wall time in another zone: a constant shift unless a UTC-offset change falls inside the session.
        first_dt = self._aware(local[0])
        last_dt = self._aware(local[-1])
        shift_first = minute_key(first_dt.astimezone(tz)) - local[0]
        shift_last = minute_key(last_dt.astimezone(tz)) - local[-1]
        if shift_first == shift_last:
            return tuple(k + shift_first for k in local)
        return tuple(minute_key(self._aware(k).astimezone(tz)) for k in local)

    def _aware(self, key: int) -> datetime:
        return self.minute_start(key, True)

    def minute_start(self, key: int, aware: bool) -> datetime:
        """The start of the exchange-local minute ``key``: naive wall time, or aware in the exchange zone.
        O(1)."""
        day, minute = divmod(key, _MINUTES_PER_DAY)
        d = date.fromordinal(day)
        return datetime(d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=self.tz if aware else None)


# timedelta(minutes=i) for every minute of a day (wall-clock arithmetic on a session's bounds).
_MINUTES_OF_DAY = tuple(timedelta(minutes=i) for i in range(_MINUTES_PER_DAY + 1))
_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
# `SessionCursor.last`'s timestamp before the first `place`: its tzinfo is this module's own object, which no
# caller's timestamp carries, so the remembered answer is never consulted for it.
_NEVER = datetime.min.replace(tzinfo=timezone(timedelta(0), "no timestamp placed yet"))


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of trading minutes of one session on one local date: ``[start, end)``, the session or the
    part of it between breaks, cut at local midnight (an overnight session has a piece on each date).
    ``start``/``end`` are naive exchange wall time (for naive bars) or aware in the exchange zone."""

    start: datetime
    end: datetime
    session_date: date
    #: The session's open in minutes from the stretch's local midnight (exchange wall time; negative when
    #: the session opened the evening before): a bar's offset is its minute of day minus this.
    open_minute: int
    session_length: int
    #: Break minutes of the session before the stretch (trading minutes through offset ``o`` are
    #: ``o + 1 - breaks_before`` inside it).
    breaks_before: int


@dataclass(frozen=True, slots=True)
class WallStretch:
    """An aware `Stretch` as wall time in one foreign ``tz``: a bar with that tzinfo (or an equal one), dated
    ``year-month-day`` there, with ``first <= hour * 60 + minute < end`` is in the stretch, at offset
    ``hour * 60 + minute - open_minute``. Lets a bar be located from its own fields, without
    ``astimezone``."""

    tz: tzinfo
    year: int
    month: int
    day: int
    first: int
    end: int
    session_date: date
    open_minute: int
    session_length: int
    breaks_before: int


def wall_stretch(stretch: Stretch, tz: tzinfo | None) -> WallStretch | None:
    """The aware ``stretch`` as wall time in ``tz``, or ``None`` when that is not one unbroken span of whole
    minutes of one date (an offset that changes inside the stretch, in either zone; an offset with seconds;
    a stretch that crosses midnight in ``tz``). O(1)."""
    if tz is None:
        return None
    open_, end = stretch.start, stretch.end
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
    return WallStretch(
        tz=tz,
        year=first_w.year,
        month=first_w.month,
        day=first_w.day,
        first=start,
        end=start + length,
        session_date=stretch.session_date,
        open_minute=stretch.open_minute - shift,
        session_length=stretch.session_length,
        breaks_before=stretch.breaks_before,
    )


class SessionCursor:
    """`SessionClock.locate` for a writer walking bars in time order: the per-bar O(1) locator.

    Consecutive bars nearly always fall in one stretch of trading minutes (a session day, or the part of it
    between breaks); the cursor remembers the last one found, so a located bar costs two comparisons and
    some integer arithmetic instead of a date lookup. It remembers a naive stretch (exchange wall time) and
    an aware one (in the exchange zone, which compares as wall time against ``astimezone(tz)``), and the
    aware one again as wall time in the tzinfo of the last aware bar located (`WallStretch`), so a bar with
    that tzinfo is located from its own fields, without the ~250 ns ``astimezone``.

    `place` also remembers its last answer: in a merged replay the bars of every symbol of one minute arrive
    one after another, so all but the first of them are answered by one comparison.

    Thread-safety: any thread; a cursor may be shared. Each thing it remembers (a stretch, the last answer
    with its timestamp) is one immutable record read once per call and replaced by one reference store,
    and any remembered record that holds a timestamp answers it as the clock would; threads sharing a
    cursor only cost each other the remembered stretch (a slower, still exact, answer). The store's writer
    keeps its own cursor for that reason, and its lazily settling readers share another.
    """

    __slots__ = ("aware", "clock", "last", "naive", "tz", "wall")

    def __init__(self, clock: SessionClock) -> None:
        self.clock = clock
        self.tz = clock.tz
        self.naive: Stretch | None = None
        self.aware: Stretch | None = None
        self.wall: WallStretch | None = None
        # ``(timestamp, answer)`` of the last `place` (`_NEVER` until the first call): one record, replaced
        # by one reference store, so that a cursor shared between threads never pairs one call's timestamp
        # with another's answer.
        self.last: tuple[datetime, tuple[date, int, int, int] | None] = (_NEVER, None)

    def locate(self, ts: datetime) -> tuple[date, int, int] | None:
        """`SessionClock.locate` (``(session date, offset, session length)`` or ``None``), remembering the
        stretch found. O(1)."""
        aware = ts.tzinfo is not None
        local = ts.astimezone(self.tz) if aware else ts
        s = self.aware if aware else self.naive
        if s is not None and s.start <= local < s.end:
            return s.session_date, local.hour * 60 + local.minute - s.open_minute, s.session_length
        found = self.clock.locate(ts)
        if found is not None:
            self._remember(found, local, ts.tzinfo)
        return found

    def _remember(self, found: tuple[date, int, int], local: datetime, tz: tzinfo | None) -> None:
        day, offset, length = found
        minute = local.hour * 60 + local.minute
        # The open in the minutes of ts's own local date: negative when the session opened the evening
        # before it, past 1440 never (a session closes on its date). Segments count from the session date's
        # midnight; `shift` (0, or 1440 on the opening evening) moves them to ts's date, where the stretch
        # is cut at midnight so that every minute of it has one date and one offset formula.
        open_minute = minute - offset
        hours = self.clock.hours(day)
        assert hours is not None  # located in that session
        shift = open_minute - hours[0]
        zone = None if tz is None else self.tz
        for first, end in self.clock.segments(day):  # the trading stretch holding ts (breaks cut out)
            lo, hi = max(first + shift, 0), min(end + shift, _MINUTES_PER_DAY)
            if lo <= minute < hi:
                midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
                stretch = Stretch(
                    start=midnight + _MINUTES_OF_DAY[lo],
                    end=midnight + _MINUTES_OF_DAY[hi],
                    session_date=day,
                    open_minute=open_minute,
                    session_length=length,
                    breaks_before=offset + 1 - self.clock.trading_minutes_through(day, offset),
                )
                if tz is not None:
                    self.aware = stretch
                    self.wall = wall_stretch(stretch, tz)
                else:
                    self.naive = stretch
                return

    def place(self, ts: datetime) -> tuple[date, int, int, int] | None:
        """`locate` plus the bar-quality denominator: ``(session date, offset, session length, trading
        minutes of the session through the offset)``, or ``None`` outside every session. O(1); the hot
        path of the store's writer, so the remembered stretch (naive) or the last answer and the remembered
        wall stretch (aware) are checked first, inline."""
        tz = ts.tzinfo
        if tz is None:
            # Naive: the stretch check first. It costs what comparing with the last answer costs, and
            # answers every bar of the stretch, so the last answer is neither checked nor kept here.
            s = self.naive
            if s is not None and s.start <= ts < s.end:
                offset = ts.hour * 60 + ts.minute - s.open_minute
                return s.session_date, offset, s.session_length, offset + 1 - s.breaks_before
        last, last_place = self.last
        # The same object (a repository's shared timestamps), or compared only when both share one tzinfo
        # object (or are naive): then ``==`` compares fields (~30 ns), while across tzinfo objects it costs
        # 400-900 ns, more than placing afresh. (Reading ``ts.minute`` first costs more than ``==``.)
        if ts is last or (tz is last.tzinfo and ts == last):
            return last_place
        placed: tuple[date, int, int, int] | None
        if tz is not None:
            w = self.wall
            if w is not None and (tz is w.tz or tz == w.tz) and ts.day == w.day and ts.month == w.month:
                minute = ts.hour * 60 + ts.minute
                if ts.year == w.year and w.first <= minute < w.end:
                    offset = minute - w.open_minute
                    placed = w.session_date, offset, w.session_length, offset + 1 - w.breaks_before
                    self.last = (ts, placed)
                    return placed
        found = self.locate(ts)
        if found is None:
            placed = None
        else:
            day, offset, length = found
            placed = day, offset, length, self.clock.trading_minutes_through(day, offset)
        self.last = (ts, placed)
        return placed

    def span(self, stamps: Sequence[datetime], lo: int, hi: int) -> tuple[date | None, int, int, list[int]]:
        """Where the in-order timestamps ``stamps[lo:hi]`` (one timezone style) start: ``(session date,
        session length, j, offsets)`` for the longest ``stamps[lo:j]`` in one session date with offsets that
        do not go back, or ``(None, 0, lo + 1, [])`` when ``stamps[lo]`` is outside every session.
        O(j - lo): naive stamps in the remembered stretch are cut with one bisection."""
        ts = stamps[lo]
        found = self.locate(ts)
        if found is None:
            return None, 0, lo + 1, []
        day, offset, length = found
        s = self.naive
        if ts.tzinfo is None and s is not None and s.start <= ts < s.end:
            # Naive: every stamp before the stretch's end is in it (wall time is the timestamp itself).
            j = bisect_left(stamps, s.end, lo + 1, hi)
            open_minute = s.open_minute
            return day, length, j, [t.hour * 60 + t.minute - open_minute for t in stamps[lo:j]]
        offsets = [offset]  # aware: one conversion per stamp, while the day holds and offsets do not go back
        j = lo + 1
        while j < hi:
            nxt = self.locate(stamps[j])
            if nxt is None or nxt[0] != day or nxt[1] < offsets[-1]:
                break
            offsets.append(nxt[1])
            j += 1
        return day, length, j, offsets
