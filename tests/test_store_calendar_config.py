"""A store given a calendar says what its hours are, and refuses keywords that contradict it.

The configuration attributes (`start_time`, `end_time`, `timezone`) describe the sessions the store keeps:
with ``calendar=`` they are the calendar's. An explicit ``start_time``/``end_time``/``timezone`` that differs
from the calendar's is a `ValueError` naming both; the same values, and defaults not passed, are accepted.
`get_session_data(**config)` applies a configuration on the first call and refuses a different one later.
"""

from __future__ import annotations

import inspect
import threading
from datetime import date, datetime, time, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessiondata import (
    Bar,
    DataManager,
    RegularHoursCalendar,
    SessionData,
    SystemManager,
    get_session_data,
    reset_session_data,
)

# exchange_calendars itself warns on newer pandas (Series.values of tz-aware data): not ours to fix.
quiet_xcals = pytest.mark.filterwarnings("ignore:.*deprecated.*:Warning")
CHICAGO = ZoneInfo("America/Chicago")
GLOBEX = RegularHoursCalendar(time(17), time(16, 15), "America/Chicago")


class _NoHours:
    """A custom calendar that states no regular hours (only the protocol's three members)."""

    @property
    def timezone(self) -> tzinfo:
        return ZoneInfo("Asia/Tokyo")

    def session_hours(self, day: date) -> tuple[time, time] | None:
        return (time(9), time(15)) if day.day % 2 else (time(9), time(11, 30))

    def breaks(self, day: date) -> tuple[tuple[time, time], ...]:
        return ()


# ------------------------------------------------------------------ the attributes describe the sessions


def test_attributes_are_a_regular_hours_calendars() -> None:
    s = SessionData(calendar=GLOBEX)
    assert (s.start_time, s.end_time, s.timezone) == (time(17), time(16, 15), CHICAGO)


def test_attributes_without_a_calendar_are_the_keywords() -> None:
    s = SessionData(start_time=time(8), end_time=time(12), timezone="Europe/London")
    assert (s.start_time, s.end_time, str(s.timezone)) == (time(8), time(12), "Europe/London")
    assert (s.calendar.session_hours(date(2024, 1, 2)), str(s.calendar.timezone)) == (
        (time(8), time(12)),
        "Europe/London",
    )


def test_a_calendar_stating_no_hours_has_none() -> None:
    s = SessionData(calendar=_NoHours())
    assert (s.start_time, s.end_time, s.timezone) == (None, None, ZoneInfo("Asia/Tokyo"))


@quiet_xcals
def test_exchange_calendar_attributes_are_the_hours_most_sessions_keep() -> None:
    pytest.importorskip("exchange_calendars")
    s = SessionData(calendar="XNYS")
    assert (s.start_time, s.end_time, str(s.timezone)) == (time(9, 30), time(16), "America/New_York")
    # An early close stays the calendar's business on its date.
    assert s.calendar.session_hours(date(2023, 11, 24)) == (time(9, 30), time(13))
    # exchange_calendars models CME Globex from 17:00 Chicago (no daily halt) to 17:00 up to its 4.13.2, to
    # 16:00 from 4.13.3; 12:00 closes on half days.
    cme = SessionData(calendar="CMES")
    assert (cme.start_time, cme.timezone) == (time(17), CHICAGO)
    assert cme.end_time in (time(16), time(17))
    assert cme.calendar.session_hours(date(2024, 3, 12)) == (cme.start_time, cme.end_time)  # a plain Tuesday


@quiet_xcals
def test_exchange_calendar_regular_hours_ties_go_to_the_later_hours() -> None:
    pytest.importorskip("exchange_calendars")
    from sessiondata import ExchangeCalendar

    cal = ExchangeCalendar("XNYS", start="2023-11-22", end="2023-11-24")  # 22nd normal, 24th early close
    assert cal.session_hours(date(2023, 11, 22)) == (time(9, 30), time(16))
    assert (cal.start_time, cal.end_time) == (time(9, 30), time(13))


# ------------------------------------------------------------------ contradictions are refused


@pytest.mark.parametrize(
    ("keyword", "value", "mine", "theirs"),
    [
        ("start_time", time(8), "08:00", "17:00"),
        ("end_time", time(16), "16:00", "16:15"),
        ("timezone", "America/New_York", "America/New_York", "America/Chicago"),
    ],
)
def test_a_keyword_contradicting_the_calendar_is_refused(
    keyword: str, value: object, mine: str, theirs: str
) -> None:
    with pytest.raises(ValueError, match=keyword) as err:
        SessionData(calendar=GLOBEX, **{keyword: value})  # type: ignore[arg-type]
    assert mine in str(err.value)
    assert theirs in str(err.value)


def test_the_calendars_own_values_are_accepted() -> None:
    s = SessionData(calendar=GLOBEX, start_time=time(17), end_time=time(16, 15), timezone="America/Chicago")
    assert (s.start_time, s.end_time, s.timezone) == (time(17), time(16, 15), CHICAGO)
    assert SessionData(calendar=GLOBEX, timezone=CHICAGO).timezone == CHICAGO


def test_passing_the_default_explicitly_is_a_choice_that_can_conflict() -> None:
    with pytest.raises(ValueError, match="09:30"):
        SessionData(calendar=GLOBEX, start_time=time(9, 30))
    with pytest.raises(ValueError, match="16:00"):
        SessionData(calendar=GLOBEX, end_time=time(16, 0))
    # Read back from a default store, the value is still passed, not "the default".
    with pytest.raises(ValueError, match="start_time"):
        SessionData(calendar=GLOBEX, start_time=SessionData().start_time)


def test_hours_for_a_calendar_stating_none_are_refused() -> None:
    with pytest.raises(ValueError, match="start_time"):
        SessionData(calendar=_NoHours(), start_time=time(9))
    assert SessionData(calendar=_NoHours(), timezone="Asia/Tokyo").timezone == ZoneInfo("Asia/Tokyo")


@quiet_xcals
def test_exchange_calendar_contradiction_is_refused() -> None:
    pytest.importorskip("exchange_calendars")
    with pytest.raises(ValueError, match="13:00"):
        SessionData(calendar="XNYS", end_time=time(13))
    assert SessionData(calendar="XNYS", end_time=time(16), timezone="America/New_York").end_time == time(16)


_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(open_=_times, close=_times, asked=_times, which=st.sampled_from(["start_time", "end_time"]))
def test_property_refused_exactly_when_it_differs(open_: time, close: time, asked: time, which: str) -> None:
    cal = RegularHoursCalendar(open_, close, "America/Chicago")
    theirs = open_ if which == "start_time" else close
    if asked == theirs:
        s = SessionData(calendar=cal, **{which: asked})  # type: ignore[arg-type]
        assert (s.start_time, s.end_time) == (open_, close)
    else:
        with pytest.raises(ValueError, match=which):
            SessionData(calendar=cal, **{which: asked})  # type: ignore[arg-type]


def test_documented_defaults_stay_readable() -> None:
    params = inspect.signature(SessionData).parameters
    assert params["start_time"].default == time(9, 30)
    assert params["end_time"].default == time(16, 0)
    assert params["timezone"].default == "America/New_York"
    text = str(inspect.signature(SessionData))
    assert "start_time: 'time' = datetime.time(9, 30)" in text
    assert "timezone: 'str | tzinfo' = 'America/New_York'" in text


# ------------------------------------------------------------------ every reader of the attributes


def test_managers_follow_the_calendars_zone() -> None:
    store = get_session_data(calendar=GLOBEX)
    system = SystemManager()
    assert system.session_data is store
    assert DataManager().session_data.timezone == CHICAGO
    assert system.coordinator.time_provider.timezone == CHICAGO


def test_session_tracker_reads_the_configured_stores_sessions() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sessiondata.session_tracker import SessionTracker

    store = get_session_data(calendar=GLOBEX)
    sunday_evening = datetime(2013, 10, 6, 18, 0)  # naive: Chicago wall time, Monday's session
    store.add_bar("ES", Bar("ES", sunday_evening, 1675, 1676, 1674, 1675.5, 100))
    metrics = SessionTracker().get_session_metrics("ES", date(2013, 10, 7))
    assert (metrics.session_volume, metrics.last_update) == (100, sunday_evening)


# ------------------------------------------------------------------ get_session_data(**config)


def test_first_call_applies_the_config() -> None:
    store = get_session_data(calendar=GLOBEX, derived_intervals=(5,))
    assert (store.start_time, store.timezone, store.derived_intervals) == (time(17), CHICAGO, (5,))
    assert get_session_data() is store
    assert get_session_data(calendar=GLOBEX) is store
    assert get_session_data(start_time=time(17), derived_intervals=[5]) is store


def test_a_later_different_config_is_refused() -> None:
    get_session_data(calendar=GLOBEX)
    with pytest.raises(ValueError, match="derived_intervals") as err:
        get_session_data(derived_intervals=(5,))
    assert "(5, 15)" in str(err.value)
    assert "(5,)" in str(err.value)
    with pytest.raises(ValueError, match="start_time"):
        get_session_data(start_time=time(9, 30))
    with pytest.raises(ValueError, match="calendar"):
        get_session_data(
            calendar=RegularHoursCalendar(time(17), time(16, 15), "America/Chicago", weekends=True)
        )
    # An equal calendar keeps the same sessions: it agrees.
    assert (
        get_session_data(calendar=RegularHoursCalendar(time(17), time(16, 15), "America/Chicago")).calendar
        is GLOBEX
    )


def test_a_default_store_refuses_a_later_config_until_reset() -> None:
    first = get_session_data()
    with pytest.raises(ValueError, match="reset_session_data"):
        get_session_data(calendar=GLOBEX)
    assert get_session_data() is first
    reset_session_data()
    assert get_session_data(calendar=GLOBEX).timezone == CHICAGO


def test_invalid_config_is_refused_and_creates_nothing() -> None:
    with pytest.raises(ValueError, match="derivation"):
        get_session_data(derivation="sometimes")  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="bogus"):
        get_session_data(bogus=1)  # type: ignore[call-arg]
    store = get_session_data(derivation="eager")
    assert store.derivation == "eager"


@pytest.mark.usefixtures("switch_often")
def test_concurrent_first_calls_agree_on_one_instance() -> None:
    n = 8
    barrier = threading.Barrier(n)
    got: list[object] = [None] * n

    def first_call(i: int) -> None:
        barrier.wait(timeout=10)
        config = {"calendar": GLOBEX} if i % 2 else {"derived_intervals": (5,)}
        try:
            got[i] = get_session_data(**config)  # type: ignore[arg-type]
        except ValueError as exc:
            got[i] = exc

    threads = [threading.Thread(target=first_call, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    store = get_session_data()
    stores = [g for g in got if isinstance(g, SessionData)]
    errors = [g for g in got if isinstance(g, ValueError)]
    assert {id(s) for s in stores} == {id(store)}
    assert len(stores) + len(errors) == n
    # Exactly one of the two configs won: its callers got the store, the others a ValueError.
    won_calendar = store.calendar is GLOBEX
    assert len(stores) == n // 2
    assert all((i % 2 == 1) == won_calendar for i, g in enumerate(got) if isinstance(g, SessionData))


@quiet_xcals
def test_an_exchange_code_is_compared_without_a_second_build() -> None:
    pytest.importorskip("exchange_calendars")
    store = get_session_data(calendar="XNYS")
    assert get_session_data(calendar="XNYS", end_time=time(16)) is store
    with pytest.raises(ValueError, match="calendar"):
        get_session_data(calendar=GLOBEX)


def test_hours_keywords_of_the_wrong_type_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="start_time"):
        SessionData(start_time="09:30")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="end_time"):
        SessionData(calendar=GLOBEX, end_time="16:15")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timezone"):
        SessionData(timezone=-5)  # type: ignore[arg-type]
