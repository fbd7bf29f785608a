"""The writer's in-order fast path against the store's own from-scratch invariants, on aware timestamps.

`SessionData.add_bar` takes a shortcut for a streamed bar newer than every stored one: it locates the bar
from its own fields in the stretch of trading minutes last seen (in the bar's tzinfo, without converting it
to the exchange's zone), decides "newer" from minute offsets, skips every derived interval with one check
while the bar is inside all forming windows, and completes a window from the bars after an anchor.

Each of those holds only while what it remembers still holds, so these tests mix the fast path with all
that can invalidate it: out-of-order inserts, corrections, bars stamped with seconds, pre- and post-market
bars, another date, daylight-saving switch days, and the same instants written with different tzinfo
objects (the exchange's `ZoneInfo`, UTC, a fresh fixed offset per bar as `datetime.fromisoformat` gives, and
zones where the session crosses midnight). After every write ``check_store`` (``tests/reference.py``)
compares the stored series, derived bars and bar quality with their definitions computed from scratch by
`SessionClock.locate`.

Derived bars are derived on this path only with ``derivation="eager"`` (lazily, the store logs the bars for
the first reader, see `sessiondata.core.derived`), so each test runs both ways: eager and read from the start
("following"), and lazy and never read (only checked).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_store
from sessiondata import Bar, SessionData

NY = ZoneInfo("America/New_York")
# A normal day, the Mondays after the spring and autumn switches, and the day a session crosses nothing.
DAYS = [date(2025, 1, 6), date(2025, 3, 10), date(2025, 11, 3)]

REPRESENTATIONS: list[Callable[[datetime], datetime]] = [
    lambda dt: dt,  # the exchange's ZoneInfo
    lambda dt: dt.astimezone(timezone.utc),
    lambda dt: datetime.fromisoformat(dt.isoformat()),  # a new fixed-offset tzinfo object every time
    lambda dt: dt.astimezone(ZoneInfo("Asia/Tokyo")),  # 09:30 New York is 23:30 or later in Tokyo
    lambda dt: dt.astimezone(ZoneInfo("Europe/London")),
    lambda dt: dt.astimezone(timezone(timedelta(hours=5, minutes=30))),
]


def instant(day: date, minute: int, second: int) -> datetime:
    return datetime.combine(day, time(9, 30), tzinfo=NY) + timedelta(minutes=minute, seconds=second)


arrivals = st.tuples(
    st.sampled_from([0, 0, 0, 1]),  # which of two consecutive dates
    st.one_of(st.integers(-5, 40), st.integers(370, 395)),  # minute from the open (pre, early, close, post)
    st.sampled_from([0, 0, 0, 0, 30]),
    st.integers(0, len(REPRESENTATIONS) - 1),
    st.integers(1, 1000),
)


def new_store(following: bool, intervals: tuple[int, ...] = (5, 15)) -> SessionData:
    """A store that derives as bars arrive (``derivation="eager"``, read from the start), or a lazy one
    never read."""
    store = SessionData(derived_intervals=intervals, derivation="eager" if following else "lazy")
    if following and intervals:
        store.register_symbol("SPY")
        assert store.get_latest_bar("SPY", intervals[0]) is None
    return store


def bar_at(ts: datetime, volume: int) -> Bar:
    price = 100.0 + (volume % 7)
    return Bar("SPY", ts, price, price + 1.0, price - 0.5, price + 0.25, volume)


@settings(max_examples=60, deadline=None)
@given(
    day=st.sampled_from(DAYS),
    intervals=st.sampled_from([(5, 15), (7, 30), (5,)]),
    items=st.lists(arrivals, min_size=1, max_size=70),
    swaps=st.lists(st.tuples(st.integers(0, 69), st.integers(0, 69)), max_size=6),
    following=st.booleans(),
)
def test_mostly_in_order_writes_keep_every_invariant(
    day: date,
    intervals: tuple[int, ...],
    items: list[tuple[int, int, int, int, int]],
    swaps: list[tuple[int, int]],
    following: bool,
) -> None:
    # Mostly in time order (the fast path), with a few arrivals swapped (inserts) and repeats (corrections).
    ordered = sorted(items, key=lambda x: (x[0], x[1], x[2]))
    for i, j in swaps:
        if i < len(ordered) and j < len(ordered):
            ordered[i], ordered[j] = ordered[j], ordered[i]
    store = new_store(following, intervals)
    expected: dict[datetime, Bar] = {}
    for later, minute, second, rep, volume in ordered:
        ts = REPRESENTATIONS[rep](instant(day + timedelta(days=later), minute, second))
        bar = bar_at(ts, volume)
        store.add_bar("SPY", bar)
        expected[ts] = bar  # equal instants are one key whatever their tzinfo
        check_store(store)
    assert store.get_bars("SPY") == [expected[t] for t in sorted(expected)]


@settings(max_examples=30, deadline=None)
@given(
    day=st.sampled_from(DAYS),
    minutes=st.lists(st.integers(0, 389), min_size=1, max_size=80, unique=True),
    rep=st.integers(1, len(REPRESENTATIONS) - 1),
    following=st.booleans(),
)
def test_one_session_gives_the_same_answers_in_any_tzinfo(
    day: date, minutes: list[int], rep: int, following: bool
) -> None:
    """The same instants, written in the exchange's zone and in another tzinfo, give equal reads."""
    stores = []
    for convert in (REPRESENTATIONS[0], REPRESENTATIONS[rep]):
        store = new_store(following)
        for m in sorted(minutes):
            store.add_bar("SPY", bar_at(convert(instant(day, m, 0)), 100 + m))
        stores.append(store)
    a, b = stores
    for interval in (1, 5, 15):
        assert a.get_bars("SPY", interval) == b.get_bars("SPY", interval)
        assert a.get_forming_bar("SPY", 5) == b.get_forming_bar("SPY", 5)
    assert a.get_session_metrics("SPY")["bar_quality"] == b.get_session_metrics("SPY")["bar_quality"]


@pytest.mark.parametrize("following", [True, False], ids=["following", "unread"])
def test_a_bar_inserted_before_the_forming_window_is_not_counted_in_it(following: bool) -> None:
    """An out-of-order insert moves every later bar one place on: a window opened after it must still be
    aggregated from its own minutes only (here a bar stamped with seconds, inside an already completed
    window, arrives after the next window began)."""
    store = new_store(following, (5,))
    for m in range(7):  # 09:30-09:36: window 09:30 completes at 09:34, window 09:35 is forming
        store.add_bar("SPY", bar_at(instant(DAYS[0], m, 0), 10 + m))
    store.add_bar("SPY", bar_at(instant(DAYS[0], 4, 30), 500))  # late, inside the completed window
    for m in range(7, 10):  # completes window 09:35 through the fast path
        store.add_bar("SPY", bar_at(instant(DAYS[0], m, 0), 10 + m))
    check_store(store)
    five = store.get_bars("SPY", 5)
    assert [b.volume for b in five] == [10 + 11 + 12 + 13 + 14 + 500, 15 + 16 + 17 + 18 + 19]


@pytest.mark.parametrize("following", [True, False], ids=["following", "unread"])
def test_a_late_pre_market_bar_does_not_shift_a_window_into_its_neighbour(following: bool) -> None:
    """A pre-market bar arriving late is stored first and derives nothing, but it moves every stored bar one
    place on; the forming window must still be aggregated from its own five minutes."""
    store = new_store(following, (5,))
    for m in range(7):
        store.add_bar("SPY", bar_at(instant(DAYS[0], m, 0), 10 + m))
    store.add_bar("SPY", bar_at(instant(DAYS[0], -5, 0), 900))  # 09:25, before the open
    for m in range(7, 10):
        store.add_bar("SPY", bar_at(instant(DAYS[0], m, 0), 10 + m))
    check_store(store)
    assert [b.volume for b in store.get_bars("SPY", 5)] == [10 + 11 + 12 + 13 + 14, 15 + 16 + 17 + 18 + 19]


@settings(max_examples=40, deadline=None)
@given(
    intervals=st.sampled_from([(5, 15), (5, 15, 30), (7, 21), (3, 6, 60), (15, 30, 90)]),
    gaps=st.lists(st.tuples(st.integers(0, 389), st.integers(1, 12)), max_size=12),
    float_volumes=st.booleans(),
    rep=st.integers(0, len(REPRESENTATIONS) - 1),
    following=st.booleans(),
)
def test_windows_built_from_smaller_windows_equal_the_aggregation_of_their_minutes(
    intervals: tuple[int, ...], gaps: list[tuple[int, int]], float_volumes: bool, rep: int, following: bool
) -> None:
    """A window whose interval is a multiple of a smaller one may be built from that interval's bars; with
    gaps (an empty part), a session's shorter last window, and float volumes (summed minute by minute) it
    must still equal the aggregation of its 1-minute bars."""
    missing = {m for first, length in gaps for m in range(first, first + length)}  # whole windows too
    store = new_store(following, intervals)
    for m in range(390):
        if m in missing:
            continue
        volume: float = (100 + m) * 0.1 if float_volumes else 100 + m
        bar = bar_at(REPRESENTATIONS[rep](instant(DAYS[0], m, 0)), 1)
        store.add_bar("SPY", Bar("SPY", bar.timestamp, bar.open, bar.high, bar.low, bar.close, volume))
        if m % 29 == 0:
            check_store(store)
    check_store(store)
