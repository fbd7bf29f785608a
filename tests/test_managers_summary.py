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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    length=st.integers(1, 390),
    holes=st.sets(st.integers(0, 389), max_size=6),
    with_break=st.booleans(),
    aware=st.booleans(),
    drop=st.integers(0, 3),
)
def test_without_the_upkeep_the_gap_figures_count_the_missing_minutes(
    length: int, holes: set[int], with_break: bool, aware: bool, drop: int
) -> None:
    """``upkeep=False`` fills nothing, yet the session's minutes are still missing: ``gaps_found`` and
    ``gaps_open`` say how many, the same figures the upkeep reports when the repository has nothing to fill
    them with (they read 0 before, beside a bar quality under 100%)."""
    minutes = [m for m in range(length) if m not in holes]
    calendar = RegularHoursCalendar(breaks=[(time(12, 0), time(12, 30))] if with_break else ())
    bars = _bars("AAA", minutes, aware=aware)
    regular = sum(1 for b in bars if SessionData(calendar=calendar).session_clock.locate(b.timestamp))
    if regular <= drop:
        return  # nothing left to replay
    figures = []
    for upkeep in (False, True):
        manager = DataManager(SessionData(calendar=calendar), repository=InMemoryBarRepository(bars))
        # The repository holds only the bars streamed (less the dropped ones, which it can fill).
        summary = manager.replay(["AAA"], [DAY], upkeep=upkeep, drop_minutes=drop, seed=4).sessions[0]
        s = summary.symbols["AAA"]
        figures.append((s.gaps_found, s.gaps_open, s.gaps_filled, s.dropped))
    (found, still, filled, dropped), (up_found, up_open, up_filled, _) = figures
    assert filled == 0
    assert found == still == up_open + up_filled
    assert up_found == found
    assert up_filled == dropped  # the upkeep fills exactly the minutes the replay dropped
    expected = calendar_minutes(calendar) - len([m for m in minutes if _trading(calendar, m)]) + dropped
    assert found == expected


def _trading(calendar: RegularHoursCalendar, minute: int) -> bool:
    return (
        SessionData(calendar=calendar).session_clock.locate(datetime(2024, 3, 5, 9, 30) + minute * M)
        is not None
    )


def calendar_minutes(calendar: RegularHoursCalendar) -> int:
    return sum(_trading(calendar, m) for m in range(390))
