"""The upkeep on a thin market (a 24/7 session where many minutes have no trade, as BTC-EUR): what it
finds, fills and keeps open, pass after pass, against a brute-force reference that rescans the whole
session at every pass.

Quiet minutes stay open all session, so the upkeep must not re-examine each of them at every pass; this
holds it to the same answers as the full rescan while bars stream in order, late bars land on open minutes,
corrections land on present ones, and the repository holds some of the missing minutes (filled) but not
all (retried, then left open).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import (
    Bar,
    DataUpkeepThread,
    InMemoryBarRepository,
    RegularHoursCalendar,
    SessionData,
    TimeProvider,
)
from sessiondata._zones import fixed_zone

M = timedelta(minutes=1)
DAY = date(2018, 4, 5)
OPEN = datetime(2018, 4, 5, 0, 0)  # exchange wall time (UTC)
N = 90  # streamed minutes from the open


def stamp(minute: int, zone: tzinfo | None) -> datetime:
    wall = OPEN + minute * M
    return wall if zone is None else wall.replace(tzinfo=timezone.utc).astimezone(zone)


def bar(minute: int, zone: tzinfo | None, volume: float = 0.5) -> Bar:
    return Bar("BTCEUR", stamp(minute, zone), 5000.0, 5001.0, 4999.0, 5000.5, volume)


def open_minutes(up: DataUpkeepThread) -> set[int]:
    entry = up.status()["symbols"].get("BTCEUR")
    if entry is None:
        return set()
    out = set()
    for start, _end, count in entry["open_gaps"]:
        first = start if start.tzinfo is None else start.astimezone(timezone.utc).replace(tzinfo=None)
        out |= {int((first - OPEN) / M) + k for k in range(count)}
    return out


def stored_minutes(store: SessionData) -> set[int]:
    out = set()
    for b in store.get_bars("BTCEUR"):
        ts = b.timestamp if b.timestamp.tzinfo is None else b.timestamp.astimezone(timezone.utc)
        out.add(int((ts.replace(tzinfo=None) - OPEN) / M))
    return out


def model_fills(
    retries: dict[int, tuple[int, float]], missing: set[int], held: set[int], seconds: float
) -> int:
    """One pass of the documented fill schedule (no jitter, ``max_retries=2``, ``retry_base=30``) over the
    model's open minutes; returns the repository calls made (one per run of consecutive due minutes)."""
    for m in list(retries):
        if m not in missing:
            del retries[m]  # a bar arrived for it
    for m in missing:
        retries.setdefault(m, (0, 0.0))
    due = sorted(m for m, (a, d) in retries.items() if a < 2 and d <= seconds)
    calls = sum(1 for k, m in enumerate(due) if k == 0 or due[k - 1] != m - 1)
    for m in due:
        if m in held:
            del retries[m]
        else:
            a = retries[m][0] + 1
            retries[m] = (a, seconds + 30.0 * 2 ** (a - 1))
    return calls


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    style=st.sampled_from(["naive", "fixed", "other offset", "utc"]),
    traded=st.floats(0.2, 0.9),
    in_repository=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_found_filled_and_open_minutes_match_a_full_rescan(
    data: st.DataObject, style: str, traded: float, in_repository: float, seed: int
) -> None:
    import random

    rng = random.Random(seed)
    zone: Any = {
        "naive": None,
        "fixed": fixed_zone(timedelta(0)),  # the zone object stamps parsed from "+00:00" share
        "other offset": fixed_zone(timedelta(hours=2)),  # the same instants, stamped in another offset
        "utc": timezone.utc,
    }[style]
    streamed = {m for m in range(N) if m == 0 or rng.random() < traded}
    quiet = set(range(N)) - streamed
    held = {m for m in quiet if rng.random() < in_repository}  # the repository has these; never streamed
    calendar = RegularHoursCalendar(time(0), time(0), "UTC", weekends=True)
    store = SessionData(calendar=calendar)
    store.start_new_session(DAY)
    clock = TimeProvider("backtest", timezone="UTC", start=stamp(0, zone))
    repo = InMemoryBarRepository([bar(m, zone) for m in sorted(held)])
    up = DataUpkeepThread(store, repo, time_provider=clock, max_retries=2, retry_base=30.0, jitter=0.0)
    found: set[int] = set()  # every minute a full rescan ever saw missing at a pass
    retries: dict[int, tuple[int, float]] = {}  # the model's open minutes: (attempts, due) as documented
    attempts = 0  # the model's repository calls
    try:
        for i in range(N + 3):
            if i in streamed:
                store.add_bar("BTCEUR", bar(i, zone))
            stored = stored_minutes(store)
            late = sorted((quiet - held) & found - stored)
            if late and data.draw(st.booleans(), label="late bar"):
                store.add_bar("BTCEUR", bar(data.draw(st.sampled_from(late), label="late minute"), zone))
            if data.draw(st.booleans(), label="correction"):
                m = data.draw(st.sampled_from(sorted(stored_minutes(store))), label="corrected minute")
                store.add_bar("BTCEUR", bar(m, zone, volume=0.25))  # no minute gains a bar
            clock.advance_to(stamp(i + 1, zone))
            # The brute-force reference: at a clock in minute i + 1, minutes up to i - 1 are due.
            before = stored_minutes(store)
            missing_now = {m for m in range(i) if m not in before}
            found |= missing_now
            attempts += model_fills(retries, missing_now, held, seconds=(i + 1) * 60.0)
            up.run_once()
            after = stored_minutes(store)
            assert after == before | (missing_now & held), "fills: exactly the due missing minutes held"
            assert open_minutes(up) == missing_now - held, i
            status = up.status()["symbols"]["BTCEUR"]
            assert status["gaps_found"] == len(found), i
            assert status["bars_filled"] == len(held & found), i
            assert status["fill_attempts"] == attempts, i
    finally:
        assert up.stop(timeout=5.0)
