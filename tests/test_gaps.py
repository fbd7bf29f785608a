"""Gap detection (`detect_gaps`, `Gap`, `expected_minutes`): examples, properties, and the real data.

The properties compare `detect_gaps` with a brute-force oracle that walks every minute of the day as a
datetime, and check the algebra the issue asks for: gaps ∪ present = expected minutes up to now,
gaps ∩ present = ∅, gaps sorted, non-overlapping and maximal, and the store's ``bar_quality`` equal to
present / expected. The real-data test checks the missing minutes against the data README's table.
"""

from __future__ import annotations

import csv
import itertools
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, SessionData
from sessiondata._calendar import RegularHoursCalendar, SessionClock, to_exchange_local
from sessiondata._gaps import Gap, detect_gaps, expected_minutes

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
REGULAR = RegularHoursCalendar(weekdays_only=True)


class LunchCalendar:
    """A test calendar with a lunch break and an early close on one date (like XHKG, but self-contained)."""

    timezone = NY

    def session_hours(self, day: date) -> tuple[time, time] | None:
        if day.weekday() >= 5 or day == date(2025, 12, 25):
            return None
        if day == date(2025, 11, 28):
            return time(9, 30), time(13, 0)
        return time(9, 30), time(16, 0)

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        return ((time(12, 0), time(13, 0)),) if day != date(2025, 11, 28) else ()


def bar(ts: datetime, volume: float = 100.0) -> Bar:
    return Bar("T", ts, 10.0, 10.5, 9.5, 10.0, volume)


def session_minutes(day: date, tz: tzinfo | None = None) -> list[datetime]:
    start = datetime.combine(day, time(9, 30))
    out = [start + i * M for i in range(390)]
    return out if tz is None else [t.replace(tzinfo=tz) for t in out]


# ---------------------------------------------------------------------------------------------- examples


def test_gap_end_is_exclusive() -> None:
    day = date(2013, 10, 7)
    present = [t for t in session_minutes(day) if t.time() != time(13, 47)]
    gaps = detect_gaps(REGULAR, present, datetime(2013, 10, 7, 16, 0))
    assert gaps == [Gap(datetime(2013, 10, 7, 13, 47), datetime(2013, 10, 7, 13, 48), 1)]
    assert gaps[0].minutes == (datetime(2013, 10, 7, 13, 47),)


def test_full_session_has_no_gaps_and_empty_session_is_one_gap() -> None:
    day = date(2013, 10, 7)
    close = datetime(2013, 10, 7, 16, 0)
    assert detect_gaps(REGULAR, [bar(t) for t in session_minutes(day)], close) == []
    assert detect_gaps(REGULAR, [], close) == [Gap(datetime(2013, 10, 7, 9, 30), close, 390)]


def test_future_is_never_reported() -> None:
    day = date(2013, 10, 7)
    # 10:00:30: the 09:59 minute has ended, the 10:00 minute has not.
    gaps = detect_gaps(REGULAR, [], datetime(2013, 10, 7, 10, 0, 30))
    assert gaps == [Gap(datetime(2013, 10, 7, 9, 30), datetime(2013, 10, 7, 10, 0), 30)]
    assert detect_gaps(REGULAR, [], datetime(2013, 10, 7, 10, 0)) == gaps
    assert detect_gaps(REGULAR, [], datetime(2013, 10, 7, 9, 30, 59)) == []
    assert detect_gaps(REGULAR, [], datetime(2013, 10, 7, 9, 31))[0].bar_count == 1
    assert detect_gaps(REGULAR, [], datetime(2013, 10, 7, 8, 0)) == []
    assert detect_gaps(REGULAR, session_minutes(day)[:10], datetime(2013, 10, 7, 9, 40)) == []


def test_bars_outside_the_session_are_ignored() -> None:
    day = date(2013, 10, 7)
    outside = [datetime(2013, 10, 7, 9, 29), datetime(2013, 10, 7, 16, 0), datetime(2013, 10, 7, 4, 0)]
    gaps = detect_gaps(REGULAR, outside, datetime(2013, 10, 7, 20, 0))
    assert gaps == [Gap(datetime.combine(day, time(9, 30)), datetime.combine(day, time(16, 0)), 390)]


def test_start_limits_the_range_and_spans_days_skipping_weekends() -> None:
    now = datetime(2013, 10, 7, 9, 35)
    # Friday whole, the weekend skipped, Monday's first five minutes.
    gaps = detect_gaps(REGULAR, [], now, start=date(2013, 10, 4))
    assert [(g.start, g.bar_count) for g in gaps] == [
        (datetime(2013, 10, 4, 9, 30), 390),
        (datetime(2013, 10, 7, 9, 30), 5),
    ]
    # start with seconds: the 15:58 minute starts before it, so only 15:59 is reported that day.
    gaps = detect_gaps(REGULAR, [], now, start=datetime(2013, 10, 4, 15, 58, 1))
    assert [(g.start, g.bar_count) for g in gaps] == [
        (datetime(2013, 10, 4, 15, 59), 1),
        (datetime(2013, 10, 7, 9, 30), 5),
    ]
    assert detect_gaps(REGULAR, [], now, start=datetime(2013, 10, 8)) == []
    # Default start is the session of `now`: Friday is not looked at.
    assert detect_gaps(REGULAR, [], now) == [gaps[-1]]
    # A calendar with weekend sessions (a 24/7-like week) reports Saturday and Sunday too.
    everyday = detect_gaps(RegularHoursCalendar(weekends=True), [], now, start=date(2013, 10, 4))
    assert [g.start.date() for g in everyday] == [date(2013, 10, d) for d in (4, 5, 6, 7)]


def test_present_with_seconds_covers_its_minute() -> None:
    present = [datetime(2013, 10, 7, 9, 30, 59), datetime(2013, 10, 7, 9, 31, 0, 1)]
    assert detect_gaps(REGULAR, present, datetime(2013, 10, 7, 9, 32)) == []


@pytest.mark.parametrize(
    "zone", [NY, timezone.utc, timezone(timedelta(hours=-4)), ZoneInfo("Asia/Tokyo")], ids=str
)
def test_aware_input_any_zone_gives_aware_gaps_in_exchange_zone(zone: tzinfo) -> None:
    day = date(2025, 3, 10)  # the Monday after the spring-forward change
    local = session_minutes(day, NY)
    present = [t.astimezone(zone) for i, t in enumerate(local) if i not in (0, 1, 200)]
    now = datetime(2025, 3, 10, 20, 0, tzinfo=timezone.utc)  # 16:00 New York
    gaps = detect_gaps(REGULAR, present, now)
    assert gaps == [
        Gap(datetime(2025, 3, 10, 9, 30, tzinfo=NY), datetime(2025, 3, 10, 9, 32, tzinfo=NY), 2),
        Gap(datetime(2025, 3, 10, 12, 50, tzinfo=NY), datetime(2025, 3, 10, 12, 51, tzinfo=NY), 1),
    ]
    assert all(g.start.tzinfo is NY for g in gaps)


def test_naive_input_gives_naive_gaps() -> None:
    gaps = detect_gaps(REGULAR, [], datetime(2025, 11, 3, 9, 31))
    assert gaps == [Gap(datetime(2025, 11, 3, 9, 30), datetime(2025, 11, 3, 9, 31), 1)]
    assert gaps[0].start.tzinfo is None


def test_mixed_groups_of_zones_are_matched_exactly() -> None:
    # One day stamped in New York time, its first half re-stamped in UTC: still nothing missing.
    local = session_minutes(date(2025, 11, 3), NY)
    present = [t.astimezone(timezone.utc) if i < 195 else t for i, t in enumerate(local)]
    assert detect_gaps(REGULAR, present, datetime(2025, 11, 3, 16, 0, tzinfo=NY)) == []
    present.pop(10)
    assert [g.bar_count for g in detect_gaps(REGULAR, present, local[-1] + M)] == [1]


def test_breaks_and_half_days_and_holidays_are_not_gaps() -> None:
    cal = LunchCalendar()
    gaps = detect_gaps(cal, [], datetime(2025, 11, 28, 20, 0), start=date(2025, 11, 27))
    assert [(g.start, g.end, g.bar_count) for g in gaps] == [
        (datetime(2025, 11, 27, 9, 30), datetime(2025, 11, 27, 12, 0), 150),
        (datetime(2025, 11, 27, 13, 0), datetime(2025, 11, 27, 16, 0), 180),
        (datetime(2025, 11, 28, 9, 30), datetime(2025, 11, 28, 13, 0), 210),  # half day: no afternoon
    ]
    # Missing 11:58-11:59 and 13:00-13:01 are two gaps: the break between them is not missing.
    day = date(2025, 11, 27)
    drop = {time(11, 58), time(11, 59), time(13, 0), time(13, 1)}
    present = [t for t in expected_minutes(cal, day) if t.time() not in drop]
    gaps = detect_gaps(cal, present, datetime(2025, 11, 27, 16, 0))
    assert [(g.start.time(), g.end.time()) for g in gaps] == [
        (time(11, 58), time(12, 0)),
        (time(13, 0), time(13, 2)),
    ]
    assert detect_gaps(cal, [], datetime(2025, 12, 25, 16, 0)) == []  # holiday


def test_expected_minutes() -> None:
    day = date(2025, 3, 10)
    mins = expected_minutes(REGULAR, day)
    assert len(mins) == 390
    assert mins[0] == datetime(2025, 3, 10, 9, 30)
    assert mins[-1] == datetime(2025, 3, 10, 15, 59)
    assert expected_minutes(REGULAR, day, now=datetime(2025, 3, 10, 9, 32, 30)) == mins[:2]
    aware = expected_minutes(REGULAR, day, aware=True)
    assert aware[0] == datetime(2025, 3, 10, 13, 30, tzinfo=timezone.utc)
    assert expected_minutes(REGULAR, date(2025, 3, 8)) == []
    assert len(expected_minutes(LunchCalendar(), day)) == 330
    assert len(expected_minutes(LunchCalendar(), date(2025, 11, 28))) == 210


def test_a_clock_and_a_calendar_give_the_same_answer() -> None:
    present = session_minutes(date(2025, 3, 10))[::3]
    now = datetime(2025, 3, 10, 16, 0)
    assert detect_gaps(SessionClock(REGULAR), present, now) == detect_gaps(REGULAR, present, now)


@pytest.mark.parametrize(
    ("present", "now", "start"),
    [
        ([datetime(2025, 3, 10, 9, 30, tzinfo=NY)], datetime(2025, 3, 10, 16, 0), None),
        ([datetime(2025, 3, 10, 9, 30)], datetime(2025, 3, 10, 16, 0, tzinfo=NY), None),
        ([], datetime(2025, 3, 10, 16, 0), datetime(2025, 3, 10, 9, 30, tzinfo=NY)),
        ([], datetime(2025, 3, 10, 16, 0), "2025-03-10"),
        ([], "2025-03-10 16:00", None),
        (["09:30"], datetime(2025, 3, 10, 16, 0), None),
        ([datetime(2025, 3, 10, 9, 30), 5], datetime(2025, 3, 10, 16, 0), None),
    ],
)
def test_bad_arguments_are_value_errors(present: list[object], now: object, start: object) -> None:
    with pytest.raises(ValueError):
        detect_gaps(REGULAR, present, now, start=start)  # type: ignore[arg-type]


def test_bad_calendar_and_day_are_value_errors() -> None:
    with pytest.raises(ValueError, match="calendar"):
        detect_gaps(object(), [], datetime(2025, 3, 10, 16, 0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="day"):
        expected_minutes(REGULAR, datetime(2025, 3, 10))


# ---------------------------------------------------------------------------------------------- properties


def oracle(
    cal: RegularHoursCalendar | LunchCalendar,
    present: Iterable[datetime],
    now: datetime,
    first_day: date,
    start: datetime | None,
) -> list[datetime]:
    """Missing minutes by brute force: every minute of every day as a datetime, in exchange-local time."""
    tz = cal.timezone
    have = {to_exchange_local(t, tz).replace(second=0, microsecond=0) for t in present}
    now_l = to_exchange_local(now, tz)
    start_l = None if start is None else to_exchange_local(start, tz)
    out = []
    day = first_day
    while day <= now_l.date():
        hours = cal.session_hours(day)
        if hours is not None:
            breaks = cal.breaks(day)
            t = datetime.combine(day, hours[0])
            while t.time() < hours[1]:
                in_break = any(b0 <= t.time() < b1 for b0, b1 in breaks)
                ended = t + M <= now_l
                after_start = start_l is None or t >= start_l
                if not in_break and ended and after_start and t not in have:
                    out.append(t)
                t += M
        day += timedelta(days=1)
    return out


DAYS = [date(2025, 3, 7), date(2025, 3, 10), date(2025, 11, 3), date(2025, 11, 27), date(2025, 11, 28)]
ZONES: list[tzinfo | None] = [
    None,
    NY,
    timezone.utc,
    timezone(timedelta(hours=-5)),
    ZoneInfo("Europe/London"),
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, list[datetime], datetime, date, datetime | None, bool]:
    cal = draw(st.sampled_from([REGULAR, LunchCalendar()]))
    day = draw(st.sampled_from(DAYS))
    zone = draw(st.sampled_from(ZONES))
    # Offsets from 09:30 local, including some before the open and after the close, maybe with seconds.
    offsets = draw(st.sets(st.integers(-40, 430), max_size=420))
    seconds = draw(st.booleans())
    open_ = datetime.combine(day, time(9, 30))
    local = [open_ + k * M + (timedelta(seconds=(k * 7) % 60) if seconds else timedelta()) for k in offsets]
    two_days = draw(st.booleans())
    now_day = day + timedelta(days=1) if two_days else day
    now_local = datetime.combine(now_day, time(9, 30)) + timedelta(seconds=draw(st.integers(-600, 26_000)))
    start_local: datetime | None = None
    if draw(st.booleans()):
        start_local = open_ + timedelta(seconds=draw(st.integers(-100, 24_000)))

    def style(t: datetime) -> datetime:
        if zone is None:
            return t
        return t.replace(tzinfo=NY).astimezone(zone)

    present = [style(t) for t in local]
    use_bars = draw(st.booleans())
    return (
        cal,
        present,
        style(now_local),
        day,
        None if start_local is None else style(start_local),
        use_bars,
    )


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_gaps_match_oracle_and_partition_the_expected_minutes(
    scenario: tuple[
        RegularHoursCalendar | LunchCalendar, list[datetime], datetime, date, datetime | None, bool
    ],
) -> None:
    cal, present, now, day, start, use_bars = scenario
    first_day = day
    given_start: datetime | date = start if start is not None else day
    inputs: list[Bar] | list[datetime] = [bar(t) for t in present] if use_bars else present
    gaps = detect_gaps(cal, inputs, now, start=given_start)

    missing = [m for g in gaps for m in g.minutes]
    want = oracle(cal, present, now, first_day, start)
    tz = cal.timezone
    aware = now.tzinfo is not None
    assert [to_exchange_local(m, tz) for m in missing] == want
    assert all((g.start.tzinfo is not None) is aware for g in gaps)

    # gaps ∪ present = expected up to now (from start); gaps ∩ present = ∅.
    expected: set[datetime] = set()
    d = first_day
    while d <= to_exchange_local(now, tz).date():
        for m in expected_minutes(cal, d, now=now):
            if start is None or m >= to_exchange_local(start, tz):
                expected.add(m)
        d += timedelta(days=1)
    have = {to_exchange_local(t, tz).replace(second=0, microsecond=0) for t in present} & expected
    gap_set = {to_exchange_local(m, tz) for m in missing}
    assert gap_set | have == expected
    assert not gap_set & have
    # Sorted, non-overlapping, maximal (no two gaps touch), each one contiguous.
    for g in gaps:
        assert g.bar_count >= 1
        assert g.end - g.start == g.bar_count * M
    for a, b in itertools.pairwise(gaps):
        assert a.end < b.start


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 389), min_size=1, max_size=390, unique=True),
    day=st.sampled_from(DAYS[:3]),
    aware=st.booleans(),
)
def test_store_bar_quality_is_present_over_expected(offsets: list[int], day: date, aware: bool) -> None:
    """Bars arriving in any order: the store's incremental ``bar_quality`` equals present / expected, where
    expected counts the session's minutes up to the newest bar's and present = expected - missing."""
    open_ = datetime.combine(day, time(9, 30), tzinfo=NY if aware else None)
    store = SessionData(derived_intervals=())
    for k in offsets:  # hypothesis draws them in any order
        store.add_bar("T", bar(open_ + k * M))
    newest = open_ + max(offsets) * M
    now = newest + M
    expected = len(expected_minutes(REGULAR, day, now=now))
    missing = sum(g.bar_count for g in detect_gaps(REGULAR, store.get_bars("T"), now))
    assert expected - missing == len(offsets)
    assert store.get_session_metrics("T")["bar_quality"] == pytest.approx(100.0 * len(offsets) / expected)


# ---------------------------------------------------------------------------------------------- real data

_ROW = re.compile(
    r"^\| (?P<sym>[A-Z]+) \| (?P<day>\d{4}-\d\d-\d\d) \(\w+\) \|.*\| \*\*(?P<n>\d+)\*\* \|(?P<m>[^|]*)\|$"
)


def readme_missing(readme: Path) -> dict[tuple[str, date], list[time]]:
    """The README's "Missing regular-session minutes" table: {(symbol, date): [missing minute, ...]}."""
    table: dict[tuple[str, date], list[time]] = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m is None:
            continue
        minutes: list[time] = []
        for part in filter(None, (p.strip() for p in m["m"].split(","))):
            lo, _, hi = part.partition("-")
            t = datetime.combine(date.min, time.fromisoformat(lo))
            last = datetime.combine(date.min, time.fromisoformat(hi or lo))
            while t <= last:
                minutes.append(t.time())
                t += M
        assert len(minutes) == int(m["n"]), line
        table[m["sym"], date.fromisoformat(m["day"])] = minutes
    return table


def read_days(path: Path) -> dict[date, list[Bar]]:
    """A real-data file's bars (aware, as written) grouped by their exchange-local date."""
    days: dict[date, list[Bar]] = defaultdict(list)
    symbol = path.name.split("_")[0]
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            ts = datetime.fromisoformat(row["timestamp"])
            o, h, lo, c = (float(row[k]) for k in ("open", "high", "low", "close"))
            b = Bar(symbol, ts, o, h, lo, c, float(row["volume"]))
            days[ts.astimezone(NY).date()].append(b)
    return days


@pytest.mark.realdata
@pytest.mark.parametrize("naive", [False, True], ids=["aware", "naive"])
def test_real_data_gaps_match_the_readme(real_data: Path, naive: bool) -> None:
    table = readme_missing(real_data / "README.md")
    assert len(table) == 26
    counts: dict[str, int] = defaultdict(int)
    for (sym, _), mins in table.items():
        counts[sym] += len(mins)
    assert counts == {"SPY": 0, "AIG": 1, "BAC": 0, "AAPL": 0, "TWX": 3, "SHY": 134}

    clock = SessionClock(REGULAR)
    seen = set()
    for path in sorted((real_data / "quantconnect_lean").glob("*_1m.csv")):
        symbol = path.name.split("_")[0]
        for day, bars in read_days(path).items():
            stamps = [b.timestamp.replace(tzinfo=None) if naive else b.timestamp for b in bars]
            random.Random(day.toordinal()).shuffle(stamps)  # order must not matter
            now = datetime.combine(day, time(20, 0), tzinfo=None if naive else NY)
            gaps = detect_gaps(clock, stamps, now)
            found = [to_exchange_local(m, NY).time() for g in gaps for m in g.minutes]
            assert found == table[symbol, day], (symbol, day)
            seen.add((symbol, day))
    assert seen == set(table)


@pytest.mark.realdata
def test_real_data_shy_across_the_dst_weekend(real_data: Path) -> None:
    """Both SHY sessions in one call: Friday is -05:00, Monday -04:00; 57 + 77 missing, weekend skipped."""
    bars = [b for day in read_days(real_data / "quantconnect_lean" / "SHY_1m.csv").values() for b in day]
    now = datetime(2008, 3, 10, 16, 0, tzinfo=NY)
    gaps = detect_gaps(REGULAR, bars, now, start=date(2008, 3, 7))
    per_day: dict[date, int] = defaultdict(int)
    for g in gaps:
        per_day[g.start.date()] += g.bar_count
    assert per_day == {date(2008, 3, 7): 57, date(2008, 3, 10): 77}
    # 11:17-11:18 on Friday is one gap of two minutes, in New York time (EST that day).
    assert Gap(datetime(2008, 3, 7, 11, 17, tzinfo=NY), datetime(2008, 3, 7, 11, 19, tzinfo=NY), 2) in gaps
