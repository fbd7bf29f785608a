"""Trading calendars: which minutes of a date belong to the regular session, in the exchange's timezone.

A calendar answers one question, `session_hours(day)`: the local open and close times of ``day``'s regular
session, or ``None`` when the exchange is closed. Everything else (minute offsets, alignment of derived
windows, gap detection, bar quality) is arithmetic on that answer, done in the exchange's zone so that a
session on a daylight-saving change day still opens at 09:30 local time.

Timestamps may be naive (read as exchange-local wall time) or timezone-aware (converted to the exchange
zone first). Minutes are counted from the session's open: offset 0 is the first minute.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

__all__ = [
    "RegularHoursCalendar",
    "SessionCalendar",
    "SessionClock",
    "minute_of_day",
    "to_exchange_local",
]


@runtime_checkable
class SessionCalendar(Protocol):
    """What the store, the gap detector and the coordinator need to know about an exchange."""

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone; naive timestamps are read as wall time in it."""
        ...

    def session_hours(self, day: date) -> tuple[time, time] | None:
        """Local ``(open, close)`` of ``day``'s regular session, or ``None`` if there is none."""
        ...


def _zone(value: str | tzinfo) -> tzinfo:
    return ZoneInfo(value) if isinstance(value, str) else value


class RegularHoursCalendar:
    """The built-in calendar: the same hours every day (or every weekday), no holidays.

    ``weekdays_only=False`` (the store's default, as the contract defines the regular session by time of day
    alone) treats every date as a session; ``True`` closes Saturdays and Sundays, which is what gap detection
    over a range of dates wants. For real holidays and early closes use the ``exchange_calendars`` bridge
    (extra ``sessiondata[calendars]``).

    Thread-safety: immutable after construction; any thread may call it. ``session_hours`` is O(1).
    """

    __slots__ = ("_end", "_start", "_tz", "_weekdays_only")

    def __init__(
        self,
        start_time: time = time(9, 30),
        end_time: time = time(16, 0),
        timezone: str | tzinfo = "America/New_York",
        *,
        weekdays_only: bool = False,
    ) -> None:
        if not start_time < end_time:
            raise ValueError(f"start_time={start_time} must be before end_time={end_time}")
        if start_time.tzinfo is not None or end_time.tzinfo is not None:
            raise ValueError("start_time and end_time are exchange-local wall times: pass naive times")
        self._start = start_time
        self._end = end_time
        self._tz = _zone(timezone)
        self._weekdays_only = weekdays_only

    @property
    def timezone(self) -> tzinfo:
        return self._tz

    @property
    def start_time(self) -> time:
        return self._start

    @property
    def end_time(self) -> time:
        return self._end

    def session_hours(self, day: date) -> tuple[time, time] | None:
        if self._weekdays_only and day.weekday() >= 5:
            return None
        return self._start, self._end

    def __repr__(self) -> str:
        return (
            f"RegularHoursCalendar({self._start}, {self._end}, {self._tz!s}, "
            f"weekdays_only={self._weekdays_only})"
        )


def to_exchange_local(ts: datetime, tz: tzinfo) -> datetime:
    """``ts`` as naive exchange-local wall time: naive input is returned as is. O(1)."""
    if ts.tzinfo is None:
        return ts
    return ts.astimezone(tz).replace(tzinfo=None)


def minute_of_day(t: time | datetime) -> int:
    """Minutes since local midnight (seconds dropped). O(1)."""
    return t.hour * 60 + t.minute


class SessionClock:
    """Fast per-date session arithmetic over a calendar: a cache of each date's open and length in minutes.

    Thread-safety: the cache is a dict filled on first use of a date; concurrent fills store equal values,
    so any thread may call it. Each call is O(1) after a date's first lookup.
    """

    __slots__ = ("_cache", "calendar", "tz")

    def __init__(self, calendar: SessionCalendar) -> None:
        self.calendar = calendar
        self.tz = calendar.timezone
        self._cache: dict[date, tuple[int, int] | None] = {}

    def hours(self, day: date) -> tuple[int, int] | None:
        """``(open minute of day, session length in minutes)`` for ``day``, or ``None`` when closed."""
        try:
            return self._cache[day]
        except KeyError:
            pass
        found = self.calendar.session_hours(day)
        value = None
        if found is not None:
            open_, close = found
            value = (minute_of_day(open_), minute_of_day(close) - minute_of_day(open_))
        self._cache[day] = value
        return value

    def locate(self, ts: datetime) -> tuple[date, int, int] | None:
        """``(session date, minute offset from the open, session length)`` if ``ts`` falls in a regular
        session, else ``None``. Offsets count whole minutes; seconds are dropped. O(1)."""
        local = ts if ts.tzinfo is None else ts.astimezone(self.tz)
        day = local.date()
        hours = self.hours(day)
        if hours is None:
            return None
        offset = local.hour * 60 + local.minute - hours[0]
        if 0 <= offset < hours[1]:
            return day, offset, hours[1]
        return None

    def local_date(self, ts: datetime) -> date:
        """The exchange-local date of ``ts``. O(1)."""
        return (ts if ts.tzinfo is None else ts.astimezone(self.tz)).date()
