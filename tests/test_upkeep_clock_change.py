"""The backtest upkeep on a session that clocks going forward run through (a 24/7 market in a zone with
daylight saving, bars stamped in UTC): the minute before the skipped hour is due one real minute after it
ends, like any other, so a complete replay finds no gap and every bar stays as streamed.

`DataUpkeepThread._clock_now` used to take the minute off the clock in exchange-local *wall* time: at
03:00 EDT that is 02:59, a wall minute that does not exist, so 01:59 EST counted as final while its bar
(known at 03:00 EDT) might not be written yet; the upkeep fetched and "filled" it, and the streamed bar then
replaced the fill as a correction. It now takes the minute off the instant.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sessiondata import Bar, DataManager, InMemoryBarRepository, Provenance, RegularHoursCalendar, SessionData

UTC = timezone.utc
M = timedelta(minutes=1)
NY = ZoneInfo("America/New_York")


def test_a_complete_replay_across_a_skipped_hour_finds_no_gap() -> None:
    calendar = RegularHoursCalendar(time(0), time(0), NY, weekends=True)
    store = SessionData(calendar=calendar)
    midnight = datetime(2018, 3, 11, 5, 0, tzinfo=UTC)  # 00:00 EST on the day clocks go forward
    bars = [Bar("BTC", midnight + i * M, 100.0, 100.5, 99.5, 100.0, 1) for i in range(1380)]
    report = DataManager(store, repository=InMemoryBarRepository(bars)).replay(["BTC"])
    (session,) = report.sessions
    assert session.date == date(2018, 3, 11)
    summary = session.symbols["BTC"]
    assert summary.bars == 1380
    assert (summary.gaps_found, summary.gaps_filled) == (0, 0)
    last_before_the_skip = datetime(2018, 3, 11, 6, 59, tzinfo=UTC)  # 01:59 EST
    assert store.get_provenance("BTC", last_before_the_skip) is Provenance.STREAMED
