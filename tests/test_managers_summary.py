"""`DataManager.replay`'s per-session summary counts derived bars without building them when it can.

The count must equal the store's own (``get_bar_count(symbol, k)``, which derives the bars) for any
session shape: complete or gappy, cut short, with extended-hours bars, with a break in the session, any
derived intervals, naive or aware timestamps. And a replay whose derived bars nobody reads leaves them
unbuilt (`memory_usage` measures what the store holds without building it).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InMemoryBarRepository, SessionData, memory_usage
from sessiondata._calendar import RegularHoursCalendar
from sessiondata._managers import DataManager

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
DAY = date(2024, 3, 5)


def _bars(symbol: str, minutes: list[int], *, aware: bool) -> list[Bar]:
    start = datetime(2024, 3, 5, 9, 30, tzinfo=NY if aware else None)
    return [Bar(symbol, start + m * M, 10.0, 10.5, 9.5, 10.0, 100 + m) for m in minutes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    length=st.integers(1, 390),
    holes=st.sets(st.integers(0, 389), max_size=4),
    extended=st.booleans(),
    with_break=st.booleans(),
    intervals=st.sets(st.sampled_from([2, 5, 7, 15, 30, 60]), min_size=1, max_size=3),
    aware=st.booleans(),
)
def test_summary_counts_derived_bars_as_the_store_does(
    length: int,
    holes: set[int],
    extended: bool,
    with_break: bool,
    intervals: set[int],
    aware: bool,
) -> None:
    minutes = [m for m in range(length) if m not in holes]
    if extended:
        minutes = [-5, -1, *minutes, 390, 391]  # pre- and post-market bars
    calendar = RegularHoursCalendar(breaks=[(time(12, 0), time(12, 30))] if with_break else ())
    store = SessionData(calendar=calendar, derived_intervals=tuple(sorted(intervals)))
    bars = _bars("AAA", minutes, aware=aware)
    if not any(store.session_clock.locate(b.timestamp) for b in bars):
        return  # nothing in the regular session: no summary to compare
    manager = DataManager(store, repository=InMemoryBarRepository(bars))
    report = manager.replay(["AAA"], [DAY], upkeep=False, extended_hours=extended)
    (session,) = report.sessions
    summary = session.symbols["AAA"]
    assert summary.derived_bars == {k: store.get_bar_count("AAA", k) for k in sorted(intervals)}


def test_a_replay_whose_derived_bars_nobody_reads_leaves_them_unbuilt() -> None:
    bars = [b for s in ("AAA", "BBB") for b in _bars(s, list(range(390)), aware=True)]
    store = SessionData(derived_intervals=(5, 15))
    report = DataManager(store, repository=InMemoryBarRepository(bars)).replay(["AAA", "BBB"], [DAY])
    for symbol in ("AAA", "BBB"):
        assert report.sessions[0].symbols[symbol].derived_bars == {5: 78, 15: 26}
        assert dict(memory_usage(store).symbols[symbol].derived_bars) == {5: 0, 15: 0}  # still owed
        assert store.get_bar_count(symbol, 5) == 78  # a reader still gets them
