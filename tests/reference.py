"""Reference implementations the tests hold the store to: from-scratch derivation, bar quality by its
definition, and a snapshot's full consistency check. Slow and obvious on purpose; the store's own
`SessionData.check_invariants` checks only its structural invariants."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from sessiondata import Bar, SessionData, SymbolSessionData
from sessiondata._calendar import SessionClock
from sessiondata.core.windows import aggregate, window_of

__all__ = ["aggregate_elapsed", "check_snapshot", "check_store", "derive_from_scratch", "expected_quality"]


def derive_from_scratch(bars: Iterable[Bar], clock: SessionClock, interval: int) -> list[Bar]:
    """Aggregation of 1-minute ``bars`` (any order) into ``interval``-minute bars. O(n log n).

    Every window holding at least one bar of a trading minute, forming or not; a window aggregates every
    bar stamped inside it (prints made during an intraday break included, as the incremental path does).
    """
    ordered = sorted(bars, key=lambda x: x.timestamp)
    stamps = [b.timestamp for b in ordered]
    windows: dict[tuple[date, int], tuple[datetime, int]] = {}
    for b in ordered:
        loc = clock.locate(b.timestamp)
        if loc is None:
            continue
        day, offset, session_len = loc
        index, start, length = window_of(b.timestamp, offset, session_len, interval)
        windows.setdefault((day, index), (start, length))
    out: list[Bar] = []
    for k in sorted(windows):
        start, length = windows[k]
        lo = bisect_left(stamps, start)
        hi = bisect_left(stamps, start + timedelta(minutes=length))
        agg = aggregate(ordered[lo].symbol, start, ordered[lo:hi])
        assert agg is not None
        out.append(agg)
    return out


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
    else:  # float sums depend on the order of the additions, and bars arrive in any order
        assert math.isclose(snap.session_volume, math.fsum(volumes), rel_tol=1e-9, abs_tol=1e-9), "volume"
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
