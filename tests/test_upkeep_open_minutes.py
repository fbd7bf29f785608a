"""The upkeep's open minutes (`status()["symbols"][s]["open_gaps"]`) against a model: a minute found missing
stays open until a bar for it arrives (late, streamed or from elsewhere), and then is forgotten at the next
pass, whatever else arrives meanwhile (corrections of present minutes, bars after the open ones)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, DataUpkeepThread, SessionData, TimeProvider

T0 = datetime(2025, 1, 2, 9, 30)
M = timedelta(minutes=1)
N = 40


def bar(minute: int, volume: int = 1) -> Bar:
    return Bar("SPY", T0 + minute * M, 1.0, 2.0, 0.5, 1.0, volume)


def open_minutes(up: DataUpkeepThread) -> set[int]:
    runs = up.status()["symbols"]["SPY"]["open_gaps"]
    return {int((start - T0) / M) + k for start, _end, count in runs for k in range(count)}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), missing=st.sets(st.integers(1, N - 1), max_size=25))
def test_open_minutes_are_the_found_minutes_still_without_a_bar(
    data: st.DataObject, missing: set[int]
) -> None:
    store = SessionData()
    store.start_new_session(T0.date())
    clock = TimeProvider("backtest", start=T0)
    up = DataUpkeepThread(store, None, time_provider=clock)  # detect only: nothing fills but the stream
    up.start()
    present: set[int] = set()
    ever_open: set[int] = set()
    try:
        for i in range(N + 3):
            if i < N and i not in missing:
                store.add_bar("SPY", bar(i))
                present.add(i)
            late = sorted((missing & ever_open) - present)
            if late and data.draw(st.booleans()):
                m = data.draw(st.sampled_from(late))  # a late bar for a minute the upkeep holds open
                store.add_bar("SPY", bar(m))
                present.add(m)
            if present and data.draw(st.booleans()):
                # A correction: the bar count does not move, and no open minute gains a bar.
                store.add_bar("SPY", bar(data.draw(st.sampled_from(sorted(present))), volume=7))
            clock.advance_to(T0 + (i + 1) * M)
            now_open = open_minutes(up)
            assert not now_open & present, (i, sorted(now_open & present))
            # Every minute due at this clock (it ended a minute of grace ago) and still without a bar is open.
            assert {m for m in missing - present if m <= i - 1} <= now_open, i
            ever_open |= now_open
    finally:
        assert up.stop(timeout=5.0)
    assert {m for m in open_minutes(up) if m < N} == missing - present
