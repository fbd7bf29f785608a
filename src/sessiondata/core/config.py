"""The store's configuration keywords: which hours and zone a store keeps, and when two configurations agree.

`SessionData` takes ``start_time``/``end_time``/``timezone`` or a ``calendar``. With a calendar the
calendar decides: its zone and its regular hours (`regular_hours`) are what the store keeps and what its
attributes read, and an explicit keyword that says otherwise is a `ValueError` (`check_against_calendar`)
instead of being dropped without a word. `StoreOptions` names every keyword, for `get_session_data(**config)`,
which compares a later call's keywords with the process-wide store's (`differing_option`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import time, tzinfo
from typing import Any, TypedDict

from sessiondata._calendar import ExchangeCalendar, SessionCalendar, regular_hours, zone_of

__all__ = [
    "HOURS_KEYWORDS",
    "StoreOptions",
    "check_against_calendar",
    "differing_option",
    "reuse_calendar",
    "same_zone",
]

#: The keywords that describe the sessions themselves, which a calendar decides when one is given.
HOURS_KEYWORDS = ("start_time", "end_time", "timezone")


class StoreOptions(TypedDict, total=False):
    """`SessionData`'s constructor keywords, each optional (`get_session_data`'s ``**config``)."""

    start_time: time
    end_time: time
    timezone: str | tzinfo
    derived_intervals: Iterable[int]
    historical_bars_trailing_days: int
    historical_bars_types: Iterable[int]
    calendar: SessionCalendar | str | None
    derivation: str


def same_zone(a: tzinfo, b: tzinfo) -> bool:
    """Whether ``a`` and ``b`` are the same zone: equal, or of the same name (``ZoneInfo("UTC")`` and
    ``datetime.timezone.utc``; two `zoneinfo` loads of one key). O(1)."""
    return a == b or str(a) == str(b)


def check_against_calendar(calendar: SessionCalendar, explicit: Mapping[str, Any]) -> None:
    """Raise `ValueError` naming both values when a keyword in ``explicit`` (``start_time``, ``end_time``,
    ``timezone``, only those the caller passed) differs from ``calendar``'s own. An hour keyword given with a
    calendar that states no regular hours (`regular_hours` is ``None``) cannot hold either: refused too.
    O(1)."""
    hours = regular_hours(calendar)
    for name, value in explicit.items():
        if name == "timezone":
            theirs: object = calendar.timezone
            if same_zone(zone_of(value), calendar.timezone):
                continue
        elif hours is None:
            raise ValueError(
                f"{name}={value} cannot apply: the calendar {calendar!r} states no regular hours (its "
                "session_hours(day) decide each date); leave out start_time/end_time"
            )
        else:
            theirs = hours[0] if name == "start_time" else hours[1]
            if value == theirs:
                continue
        raise ValueError(
            f"{name}={value} contradicts the calendar's {name} {theirs} ({calendar!r}): with calendar= the "
            f"calendar decides the sessions; leave out {name} or pass the calendar's own value"
        )


def differing_option(store: Any, wanted: Any, key: str) -> tuple[object, object] | None:
    """``(store's value, wanted's value)`` of configuration keyword ``key`` when the stores ``store`` and
    ``wanted`` disagree on it, else ``None``. Values are compared for what they mean: zones by name,
    interval lists as sets, calendars by equality. O(intervals)."""
    mine, theirs = getattr(store, key), getattr(wanted, key)
    if key == "timezone":
        same = same_zone(mine, theirs)
    elif key == "historical_bars_types":
        same = set(mine) == set(theirs)
    else:
        same = mine == theirs
    return None if same else (mine, theirs)


def reuse_calendar(options: StoreOptions, current: SessionCalendar) -> StoreOptions:
    """``options`` with a ``calendar`` exchange code replaced by ``current`` when that is the same exchange's
    `ExchangeCalendar` (so comparing against it builds no second copy, ~0.1 s). O(1)."""
    code = options.get("calendar")
    if isinstance(code, str) and isinstance(current, ExchangeCalendar) and current.name == code:
        return {**options, "calendar": current}
    return options
