"""Bar quality on a session that clocks going back run through (a 24/7 market in a zone with daylight
saving): the repeated wall hour shares its minutes, so each wall minute counts once, whichever pass of the
hour its bar is in, and the percentage never leaves 0-100. Bars are timezone-aware (UTC, or a third zone),
since only aware timestamps can tell the two passes apart; streamed one by one, in one batch, in two
batches split inside the repeated hour, or with a late bar arriving out of order.

The expected figure is counted here from scratch: distinct exchange-local wall minutes with a bar, over the
wall minutes from the open up to the newest one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sessiondata import Bar, RegularHoursCalendar, SessionData

UTC = timezone.utc
M = timedelta(minutes=1)
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
# (exchange zone, session date, the UTC instant of its local midnight, real minutes in that day)
FALL_BACK_DAYS = {
    "new_york": (NY, date(2018, 11, 4), datetime(2018, 11, 4, 4, 0, tzinfo=UTC), 1500),
    "london": (LONDON, date(2018, 10, 28), datetime(2018, 10, 27, 23, 0, tzinfo=UTC), 1500),
}


def make_bars(instants: Sequence[datetime], stamp_zone: tzinfo) -> list[Bar]:
    rng = random.Random(7)
    out = []
    price = 6000.0
    for t in instants:
        o = price
        c = round(o + rng.choice((-1.0, 0.0, 1.0)), 2)
        price = c
        out.append(Bar("BTC", t.astimezone(stamp_zone), o, max(o, c) + 0.5, min(o, c) - 0.5, c, 1.5))
    return out


def expected_quality(bars: Sequence[Bar], zone: tzinfo, day: date) -> float:
    """Distinct wall minutes of ``day`` with a bar, over the wall minutes 00:00 .. the newest one that
    exist (naive stamps are wall time already)."""
    walls = {
        (b.timestamp if b.timestamp.tzinfo is None else b.timestamp.astimezone(zone)).replace(
            tzinfo=None, second=0
        )
        for b in bars
    }
    wall, newest, elapsed = datetime.combine(day, time(0)), max(walls), 0
    while wall <= newest:
        # A wall minute that clocks going forward skip is no trading minute.
        exists = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
        elapsed += exists
        wall += M
    return 100.0 * len(walls) / elapsed


def day_of_bars(zone_name: str, stamp_zone: tzinfo) -> tuple[SessionData, list[Bar], tzinfo, date]:
    zone, day, midnight, minutes = FALL_BACK_DAYS[zone_name]
    # Missing: 00:07, 06:40, and 01:40-01:42 of the first pass of the repeated hour (the second pass has
    # them), so the wall minutes 01:40-01:42 are present once.
    skip = {7, 100, 101, 102, 400}
    instants = [midnight + i * M for i in range(minutes) if i not in skip]
    store = SessionData(calendar=RegularHoursCalendar(time(0), time(0), zone, weekends=True))
    store.start_new_session(day)
    return store, make_bars(instants, stamp_zone), zone, day


@pytest.mark.parametrize("zone_name", sorted(FALL_BACK_DAYS))
@pytest.mark.parametrize("stamp_zone", [UTC, TOKYO], ids=["utc", "tokyo"])
def test_bar_by_bar_quality_counts_a_repeated_wall_minute_once(zone_name: str, stamp_zone: tzinfo) -> None:
    store, bars, zone, day = day_of_bars(zone_name, stamp_zone)
    for i, bar in enumerate(bars):
        store.add_bar("BTC", bar)
        quality = store.get_session_metrics("BTC")["bar_quality"]
        assert 0.0 <= quality <= 100.0, (bar.timestamp, quality)
        if i % 97 == 0 or i == len(bars) - 1:
            assert quality == pytest.approx(expected_quality(bars[: i + 1], zone, day)), bar.timestamp
    assert store.get_bar_count("BTC") == len(bars)  # both passes are stored


@pytest.mark.parametrize("zone_name", sorted(FALL_BACK_DAYS))
@pytest.mark.parametrize(
    "split", [None, 95, 130], ids=["one_batch", "split_in_first_pass", "split_in_second_pass"]
)
def test_batch_quality_counts_a_repeated_wall_minute_once(zone_name: str, split: int | None) -> None:
    store, bars, zone, day = day_of_bars(zone_name, UTC)
    if split is None:
        store.add_bars_batch("BTC", bars)
    else:
        store.add_bars_batch("BTC", bars[:split])
        store.add_bars_batch("BTC", bars[split:])
    assert store.get_session_metrics("BTC")["bar_quality"] == pytest.approx(expected_quality(bars, zone, day))


@pytest.mark.parametrize("batch", [False, True], ids=["bar_by_bar", "batch"])
def test_a_late_bar_of_a_repeated_wall_minute_already_held_adds_nothing(batch: bool) -> None:
    store, bars, zone, day = day_of_bars("new_york", UTC)
    wall = datetime(2018, 11, 4, 1, 20)
    first_pass = next(b for b in bars if b.timestamp.astimezone(zone).replace(tzinfo=None) == wall)
    # 01:20 EDT arrives late; 01:20 EST (the second pass of the hour) stays in the stream
    rest = [b for b in bars if b is not first_pass]
    if batch:
        store.add_bars_batch("BTC", rest)
    else:
        for bar in rest:
            store.add_bar("BTC", bar)
    before = store.get_session_metrics("BTC")["bar_quality"]
    assert before == pytest.approx(expected_quality(rest, zone, day))
    store.add_bar("BTC", first_pass)  # out of order: its wall minute is already held by 01:20 EST
    assert store.get_session_metrics("BTC")["bar_quality"] == pytest.approx(before)
    assert store.get_bar_count("BTC") == len(bars)


@pytest.mark.parametrize("zone_name", sorted(FALL_BACK_DAYS))
@pytest.mark.parametrize("stamp_zone", [UTC, TOKYO], ids=["utc", "tokyo"])
@pytest.mark.parametrize("derivation", ["lazy", "eager"])
def test_a_late_bar_of_the_repeated_hours_first_pass_goes_to_its_place_in_time(
    zone_name: str, stamp_zone: tzinfo, derivation: str
) -> None:
    # 01:30 of the first pass arrives after 01:10-01:12 of the second: a later wall minute, yet an older
    # bar. (The streamed bar's lane took a later wall minute than the newest bar's for a newer bar, and
    # appended it.) Stamped in UTC or a third zone: stamps in the exchange's own ZoneInfo compare by wall
    # time in Python, whatever their fold, so only other zones tell the passes apart.
    zone, day, midnight, _ = FALL_BACK_DAYS[zone_name]
    first_pass = [midnight + (60 + i) * M for i in range(10)]  # 01:00-01:09, first pass
    second_pass = [midnight + (130 + i) * M for i in range(3)]  # 01:10-01:12, second pass
    late = midnight + 90 * M  # 01:30, first pass
    store = SessionData(
        calendar=RegularHoursCalendar(time(0), time(0), zone, weekends=True), derivation=derivation
    )
    store.start_new_session(day)
    bars = make_bars([*first_pass, *second_pass, late], stamp_zone)
    for bar in bars:
        store.add_bar("BTC", bar)
        store.check_invariants()
    in_time = sorted(bars, key=lambda b: b.timestamp.astimezone(UTC))
    assert store.get_bars("BTC") == in_time
    assert store.get_latest_bar("BTC") == in_time[-1]
    assert store.get_session_metrics("BTC")["bar_quality"] == pytest.approx(expected_quality(bars, zone, day))
    # Every bar is in one derived window once the session ends (a window of the repeated hour holds both
    # passes of its wall minutes: see ClockChange).
    store.end_session()
    assert sum(b.volume for b in store.get_bars("BTC", interval=5)) == pytest.approx(1.5 * len(bars))


@pytest.mark.parametrize(
    ("previous_midnight", "day"),
    [
        (datetime(2018, 3, 10, 5, 0, tzinfo=UTC), date(2018, 3, 11)),  # clocks go forward on the 11th
        (datetime(2018, 11, 3, 4, 0, tzinfo=UTC), date(2018, 11, 4)),  # clocks go back on the 4th
    ],
    ids=["spring_forward", "fall_back"],
)
@pytest.mark.parametrize("stamp_zone", [UTC, NY, None], ids=["utc", "exchange", "naive"])
def test_a_batch_opening_a_session_after_a_clock_change_counts_only_that_session(
    previous_midnight: datetime, day: date, stamp_zone: tzinfo | None
) -> None:
    # A whole day of bars, then a batch for the next day (a clock-change day) starting at 05:00 local:
    # the new day's quality counts its own bars over its own elapsed trading minutes, never the bars of
    # the evening before.
    resume = datetime.combine(day, time(5), NY)
    instants = [previous_midnight + i * M for i in range(1440)] + [resume + i * M for i in range(30)]
    bars = [
        Bar(
            "BTC",
            t.astimezone(NY).replace(tzinfo=None) if stamp_zone is None else t.astimezone(stamp_zone),
            10,
            11,
            9,
            10,
            1,
        )
        for t in instants
    ]
    store = SessionData(calendar=RegularHoursCalendar(time(0), time(0), NY, weekends=True))
    store.add_bars_batch("BTC", bars[:1440])
    store.add_bars_batch("BTC", bars[1440:])
    assert store.get_session_metrics("BTC")["bar_quality"] == pytest.approx(
        expected_quality(bars[1440:], NY, day)
    )


@settings(max_examples=60, deadline=None)
@given(
    present=st.lists(st.booleans(), min_size=150, max_size=150),
    cuts=st.lists(st.integers(min_value=1, max_value=149), max_size=4),
    late=st.integers(min_value=0, max_value=10),
    stamp_zone=st.sampled_from([UTC, TOKYO]),
)
def test_quality_through_a_repeated_hour_counts_wall_minutes_whatever_the_writes(
    present: list[bool], cuts: list[int], late: int, stamp_zone: tzinfo
) -> None:
    # 150 real minutes from 00:45 EDT to 01:14 EST (the hour 01:00-01:59 twice): any subset of them, written
    # in batches cut anywhere, with the last `late` bars of the subset written first (out of order after).
    start = datetime(2018, 11, 4, 4, 45, tzinfo=UTC)
    bars = make_bars([start + i * M for i, keep in enumerate(present) if keep], stamp_zone)
    assume(bars)
    store = SessionData(calendar=RegularHoursCalendar(time(0), time(0), NY, weekends=True))
    early, rest = bars[len(bars) - late :], bars[: len(bars) - late]
    for bar in early:
        store.add_bar("BTC", bar)
    edges = [0, *sorted({c for c in cuts if c < len(rest)}), len(rest)]
    for lo, hi in pairwise(edges):
        if hi > lo:
            store.add_bars_batch("BTC", rest[lo:hi])
    quality = store.get_session_metrics("BTC")["bar_quality"]
    assert quality == pytest.approx(expected_quality(bars, NY, date(2018, 11, 4)))
