"""Timestamps read from text, parsed once and sharing one `datetime.timezone` object per UTC offset.

Why: Python compares two aware datetimes cheaply only when they carry the very same ``tzinfo`` object;
otherwise each comparison asks both for their UTC offset first. `datetime.fromisoformat` makes a new
``timezone`` object for every timestamp it parses, so 100 symbols' bars of one minute, read from a
repository, would carry 100 zones and every comparison between them (the replay's merge, the upkeep's
checks) would take the slow path. `fixed_zone` hands out one shared object per offset, and `IsoParser`
parses each distinct text once (100 symbols share each minute's text) and gives every reader of it the same
`datetime`, whose zone is the shared one. The values are exactly what ``datetime.fromisoformat`` returns:
equal, with an equal fixed-offset ``timezone`` (UTC as `datetime.timezone.utc`, as there).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["IsoParser", "fixed_zone", "shared_zone"]

# Offsets seen in real data are a handful; the bound only keeps hostile text from growing the table.
_MAX_ZONES = 256
_ZONES: dict[timedelta, timezone] = {}


def fixed_zone(offset: timedelta) -> timezone:
    """The shared `datetime.timezone` for ``offset`` (``timezone.utc`` for zero).

    O(1). Thread-safety: any thread (two threads creating the same zone at once get one of them; either is
    equal to the other).
    """
    zone = _ZONES.get(offset)
    if zone is None:
        zone = timezone(offset)
        if len(_ZONES) < _MAX_ZONES:
            zone = _ZONES.setdefault(offset, zone)
    return zone


def shared_zone(ts: datetime) -> datetime:
    """``ts`` carrying the shared `fixed_zone` of its UTC offset (the same value), or ``ts`` itself when it is
    naive. For a timestamp just parsed from ISO text, whose zone is a fixed offset. O(1)."""
    offset = ts.utcoffset()
    return ts if offset is None else ts.replace(tzinfo=fixed_zone(offset))


class IsoParser:
    """``datetime.fromisoformat``, remembered per text: ``IsoParser(max_entries)(text)``.

    Each distinct text is parsed once and the same `datetime` returned for it after that, its zone (for an
    aware one) the shared `fixed_zone` of its offset. Holds at most ``max_entries`` texts: when full, it
    forgets all of them and starts again (a replay reads minute after minute, so older texts are rarely
    asked again; clearing costs less than keeping an order).

    Thread-safety: any thread; two threads parsing one text at once may each parse it (the results are
    equal). O(len(text)) for a new text, one dict lookup for a known one.
    """

    __slots__ = ("_max", "_parsed", "lookup")

    def __init__(self, max_entries: int = 16384) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self._max = max_entries
        self._parsed: dict[str, datetime] = {}
        #: The known texts' `datetime` or ``None``: a bound ``dict.get`` for hot loops, which then call the
        #: parser itself for a ``None`` (``lookup(text) or parser(text)``).
        self.lookup = self._parsed.get

    def __call__(self, text: str) -> datetime:
        """``text`` parsed as `datetime.fromisoformat` does (raising its `ValueError` for bad text)."""
        found = self._parsed.get(text)
        if found is not None:
            return found
        ts = shared_zone(datetime.fromisoformat(text))
        parsed = self._parsed
        if len(parsed) >= self._max:
            parsed.clear()
        parsed[text] = ts
        return ts

    def __len__(self) -> int:
        return len(self._parsed)
