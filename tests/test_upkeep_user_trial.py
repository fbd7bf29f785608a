"""Upkeep defects a first-time user met (the user trial)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sessiondata import Bar, DataUpkeepThread, InMemoryBarRepository, SessionData, TimeProvider

T0 = datetime(2025, 1, 2, 9, 30)


class CountingRepository(InMemoryBarRepository):
    """An archive that lacks the minute the stream lost, and counts what it is asked."""

    def __init__(self) -> None:
        super().__init__([])
        self.calls = 0

    def get_bars(self, *args: Any, **kwargs: Any) -> list[Bar]:
        self.calls += 1
        return super().get_bars(*args, **kwargs)


def backtest_with_wall_clock(monotonic: Callable[[], float]) -> tuple[int, int, list[Bar]]:
    """A backtest hour with the 09:33 bar missing from the stream and from the archive, the upkeep driven
    by the simulated clock only; ``monotonic`` is the wall clock the upkeep is given."""
    store = SessionData()
    store.start_new_session(T0.date())
    clock = TimeProvider("backtest", start=T0)
    repo = CountingRepository()
    upkeep = DataUpkeepThread(store, repo, time_provider=clock, monotonic=monotonic)
    upkeep.start()
    try:
        for i in range(60):
            if i != 3:
                store.add_bar("SPY", Bar("SPY", T0 + timedelta(minutes=i), 1, 2, 0.5, 1, 1))
            clock.advance_to(T0 + timedelta(minutes=i + 1))  # the upkeep's passes follow its clock
    finally:
        assert upkeep.stop(timeout=5.0)
    return repo.calls, int(upkeep.status()["fill_attempts"]), list(store.get_bars("SPY"))


def test_backtest_fill_retries_do_not_depend_on_the_wall_clock() -> None:
    # A backtest upkeep's retries fall due in simulated seconds, whatever wall clock it is handed: how often
    # it asks the repository for a minute it lacks must not depend on the machine's speed.
    ticks = itertools.count()
    still = backtest_with_wall_clock(lambda: 0.0)
    fast = backtest_with_wall_clock(lambda: 100.0 * next(ticks))
    assert still[2] == fast[2]  # the store answers the same either way (the archive never has 09:33) ...
    assert still[:2] == fast[:2]  # ... and so must the repository calls and the status the upkeep reports
    assert still[0] == 5  # every retry an hour of simulated time allows (max_retries=5), not one
