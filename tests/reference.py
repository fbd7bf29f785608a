"""Reference implementations the tests hold the store to: from-scratch derivation, bar quality by its
definition, a snapshot's full consistency check, and a CSV reader that does not use the library's. Slow
and obvious on purpose; the store's own `SessionData.check_invariants` checks only its structural
invariants."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from sessiondata import Bar, SessionData, SymbolSessionData
from sessiondata._calendar import SessionClock

__all__ = [
    "aggregate_elapsed",
    "check_snapshot",
    "check_store",
    "derive_from_scratch",
    "expected_quality",
    "iter_csv_bars",
    "read_csv_bars",
]


def derive_from_scratch(bars: Iterable[Bar], clock: SessionClock, interval: int) -> list[Bar]:
    """Aggregation of 1-minute ``bars`` (any order) into ``interval``-minute bars, from the definition.
    O(n log n + windows * interval).

    A session's windows are wall-clock windows of the exchange zone: minute offsets ``[i * interval,
    min((i + 1) * interval, session length))`` from the open's wall time, whatever zone the bars are stamped
    in. So a day whose clocks change needs no special case here: the hour clocks going forward skip has no
    wall minute (no bar lands there), and both passes of the hour clocks going back share one wall window.
    A window exists when a bar of one of its trading minutes (`SessionClock.locate`) does; it aggregates
    every bar whose exchange wall minute lies in it (prints made during an intraday break included, as the
    incremental path does), in time order. Its timestamp is its first wall minute: naive for naive bars,
    else the first instant whose exchange wall time has reached it (the minute after a skipped hour, for a
    window that starts in it; the first pass of a repeated one), in the zone of its first bar.
    """
    ordered = sorted(bars, key=_instant)
    by_wall: dict[datetime, list[Bar]] = {}
    for b in ordered:
        by_wall.setdefault(_wall_minute(b.timestamp, clock), []).append(b)
    windows: dict[tuple[date, int], tuple[datetime, int, int]] = {}
    for b in ordered:
        loc = clock.locate(b.timestamp)
        if loc is None:
            continue
        day, offset, session_len = loc
        open_wall = _wall_minute(b.timestamp, clock) - timedelta(minutes=offset)
        index = offset // interval
        windows.setdefault(
            (day, index), (open_wall, index * interval, min((index + 1) * interval, session_len))
        )
    out: list[Bar] = []
    for key in sorted(windows):
        open_wall, first, stop = windows[key]
        walls = (open_wall + timedelta(minutes=m) for m in range(first, stop))
        members = sorted((b for w in walls for b in by_wall.get(w, ())), key=_instant)
        lead = members[0]
        start = open_wall + timedelta(minutes=first)
        tz = lead.timestamp.tzinfo
        if tz is not None:
            start = _first_instant_at_wall(start, clock.tz).astimezone(tz)
        volumes = [m.volume for m in members]
        # The contract's "summed volume": exact for ints, correctly rounded for fractional units.
        volume = sum(volumes) if all(type(v) is int for v in volumes) else math.fsum(volumes)
        out.append(
            Bar(
                lead.symbol,
                start,
                lead.open,
                max(m.high for m in members),
                min(m.low for m in members),
                members[-1].close,
                volume,
            )
        )
    return out


def _instant(b: Bar) -> datetime:
    """A sort key in real time: aware stamps as UTC (one tzinfo would compare wall times, blind to a
    repeated hour's second pass), naive ones as they are."""
    ts = b.timestamp
    return ts if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _wall_minute(ts: datetime, clock: SessionClock) -> datetime:
    """``ts``'s minute in exchange wall time, naive."""
    wall = ts if ts.tzinfo is None else ts.astimezone(clock.tz).replace(tzinfo=None)
    return wall.replace(second=0, microsecond=0)


def _first_instant_at_wall(wall: datetime, tz: tzinfo) -> datetime:
    """The first instant (UTC) whose wall time in ``tz`` is ``wall`` or, when clocks skip it, the first
    later wall minute that exists: by trying both folds and walking forward a minute at a time."""
    while True:
        found = [
            inst
            for fold in (0, 1)
            for inst in [wall.replace(tzinfo=tz, fold=fold).astimezone(timezone.utc)]
            if inst.astimezone(tz).replace(tzinfo=None) == wall
        ]
        if found:
            return min(found)
        wall += timedelta(minutes=1)


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


def check_snapshot(snap: SymbolSessionData, clock: SessionClock, trailing_days: int) -> None:
    """Raise `AssertionError` unless ``snap`` agrees with the references: metrics equal to what its bars
    imply, completed + forming derived bars equal to a from-scratch aggregation, bar quality equal to its
    definition, derived history equal to the aggregation of the 1-minute history beside it, history within
    ``trailing_days`` sessions; and the store's own structural checks."""
    SessionData.check_snapshot(snap, trailing_days)
    items: list[Bar] = list(snap.bars_1m)
    volumes = [b.volume for b in items]
    if all(type(v) is int for v in volumes):
        assert snap.session_volume == sum(volumes), "session_volume"
    else:  # fractional units: correctly rounded, whatever order the bars arrived in
        assert snap.session_volume == math.fsum(volumes), "session_volume"
    assert snap.session_high == (max(b.high for b in items) if items else None), "session_high"
    assert snap.session_low == (min(b.low for b in items) if items else None), "session_low"
    assert snap.bar_quality == expected_quality(items, clock), "bar_quality"
    for k, state in snap.derived.items():
        produced = list(state.bars)
        forming = state.forming_bar(snap.symbol, snap.bars_1m)
        if forming is not None:
            assert not produced or produced[-1].timestamp < forming.timestamp
            produced.append(forming)
        assert produced == derive_from_scratch(items, clock, k), f"derived {k}m bars"
    one_minute = snap.historical_bars.get(1)
    if one_minute is not None:
        for k, per_day in snap.historical_bars.items():
            if k == 1:
                continue
            for day, bars in per_day.items():
                assert list(bars) == derive_from_scratch(one_minute.get(day, ()), clock, k), f"history {k}m"


def check_store(store: SessionData) -> None:
    """`SessionData.check_invariants` plus `check_snapshot` on every symbol's current snapshot."""
    store.check_invariants()
    for snap in store.snapshot().values():
        check_snapshot(snap, store.session_clock, store.historical_bars_trailing_days)


def aggregate_elapsed(bars: Sequence[Bar], open_: datetime, k: int) -> list[Bar]:
    """Windows of ``k`` minutes of elapsed time from ``open_``: open of the first bar, max high, min low,
    close of the last, summed volume. Knows nothing of offsets, breaks, dates or the close (a window the
    close cuts short simply holds fewer bars), so it checks the store's offset arithmetic independently."""
    groups: dict[int, list[Bar]] = {}
    for b in bars:
        groups.setdefault((b.timestamp - open_) // timedelta(minutes=k), []).append(b)
    return [
        Bar(
            g[0].symbol,
            open_ + i * timedelta(minutes=k),
            g[0].open,
            max(b.high for b in g),
            min(b.low for b in g),
            g[-1].close,
            sum(b.volume for b in g),
        )
        for i, g in sorted(groups.items())
    ]


def iter_csv_bars(path: Path, symbol: str) -> Iterator[Bar]:
    """The bars of a CSV file in the data README's layout (``timestamp,open,high,low,close,volume``, ISO
    timestamps), one row at a time as a data feed would hand them over, parsed here rather than by the
    library, so a test compares the library with the file itself. Whole volumes as ``int``, fractional
    ones (BTC) as ``float``. O(1) a row."""
    with path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            yield Bar(
                symbol,
                datetime.fromisoformat(r["timestamp"]),
                float(r["open"]),
                float(r["high"]),
                float(r["low"]),
                float(r["close"]),
                int(r["volume"]) if r["volume"].isdigit() else float(r["volume"]),
            )


def read_csv_bars(path: Path, symbol: str) -> list[Bar]:
    """`iter_csv_bars`, all of them in a list. O(rows)."""
    return list(iter_csv_bars(path, symbol))
