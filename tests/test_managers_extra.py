"""`DataManager` with a repository that only has ``get_bars`` (no ``time_range``/``dates``), naive data,
cancellation, and the small `SystemManager` accessors."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import attrs
import pytest

from sessiondata import (
    Bar,
    CoordinatorError,
    DataManager,
    InMemoryBarRepository,
    RegularHoursCalendar,
    SessionData,
    SqliteBarRepository,
    StreamType,
    SystemManager,
    SystemState,
    TimeProvider,
)

DAY = date(2025, 1, 2)
OPEN = datetime(2025, 1, 2, 9, 30)


class BareRepository:
    """The protocol and nothing else: replays must probe it with ``get_bars``."""

    def __init__(self, bars: list[Bar]) -> None:
        self._inner = InMemoryBarRepository(bars)

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        return self._inner.get_bars(symbol, start, end, interval)


def _bars(days: int = 2) -> list[Bar]:
    return [
        Bar("X", OPEN + timedelta(days=d, minutes=m), 10.0, 11.0, 9.0, 10.5, 100)
        for d in range(days)
        for m in range(390)
        if m != 7
    ]


def test_replay_over_a_bare_repository_with_naive_timestamps() -> None:
    store = SessionData()
    manager = DataManager(store, repository=BareRepository(_bars()))
    assert manager.session_dates(["X"]) == [DAY, DAY + timedelta(days=1)]
    report = manager.replay(["X"])
    assert [s.date for s in report.sessions] == [DAY, DAY + timedelta(days=1)]
    x = report.sessions[-1].symbols["X"]
    assert (x.bars, x.gaps_found, x.gaps_filled, x.gaps_open) == (389, 1, 0, 1)
    assert manager.get_bars("X", OPEN, OPEN + timedelta(minutes=5)) == _bars()[:5]


def test_a_replay_can_be_cancelled() -> None:
    cancel = threading.Event()
    seen: list[object] = []

    def on_item(item: object) -> None:
        seen.append(item)
        if len(seen) == 10:
            cancel.set()

    report = DataManager(SessionData(), repository=InMemoryBarRepository(_bars())).replay(
        ["X"], on_item=on_item, cancel=cancel, upkeep=False
    )
    assert report.items == 10
    assert not [t for t in threading.enumerate() if t.name.startswith("sessiondata") and t.is_alive()]


def test_system_manager_accessors() -> None:
    clock = TimeProvider("backtest")
    system = SystemManager(SessionData(), time_provider=clock, upkeep=False)
    assert system.time_provider is clock
    assert system.upkeep is None
    assert system.mode == "backtest"
    assert repr(system) == "<SystemManager backtest stopped>"
    with system:
        assert system.state is SystemState.RUNNING
        ran = system.coordinator
        assert system.coordinator is ran
    assert system.coordinator is ran  # the stopped run's, until the next start
    system.start()
    assert system.coordinator is not ran
    assert system.stop()


class _Broken:
    """A source that yields one bar, then fails."""

    def __init__(self, bar: Bar) -> None:
        self._bar = bar

    def __iter__(self) -> Iterator[Bar]:
        yield self._bar
        raise OSError("feed lost")


def test_a_stopped_runs_status_stays_readable_until_the_next_start() -> None:
    # The run's coordinator recorded the source's error and the upkeep its passes: after `stop` the caller
    # reads how the run ended from them, not from fresh parts.
    store = SessionData()
    system = SystemManager(store, repository=InMemoryBarRepository(_bars(1)))
    system.coordinator.register_stream("X", StreamType.BAR, _Broken(_bars(1)[0]))
    with system, pytest.raises(CoordinatorError):
        list(system.coordinator.merged_stream())
    status = system.coordinator.status()
    assert status["state"] == "failed"
    assert status["error"] is not None
    assert "feed lost" in status["error"]
    assert status["delivered"] == 1
    upkeep = system.upkeep
    assert upkeep is not None
    assert upkeep.status()["passes"] >= 1
    ran = system.coordinator
    system.start()
    try:
        assert system.coordinator is not ran
        assert system.upkeep is not upkeep
        assert system.coordinator.status()["error"] is None
    finally:
        assert system.stop()


def test_dropped_minutes_are_drawn_from_the_regular_minutes_only(tmp_path: Path) -> None:
    # Bars from 8:00 to 17:00 (pre-market, a lunch break, after hours) in a fixed-offset zone, two days:
    # with a seed the replay drops exactly the minutes drawn from the regular, non-break minutes as
    # `SessionClock.locate` defines them, whatever is used to tell them apart.
    calendar = RegularHoursCalendar(time(9, 30), time(16, 0), breaks=[(time(12, 0), time(13, 0))])
    store = SessionData(calendar=calendar)
    clock = store.session_clock
    est = timezone(timedelta(hours=-5))
    days = [date(2025, 1, 2), date(2025, 1, 3)]
    bars = [
        Bar(
            "X",
            datetime(d.year, d.month, d.day, 8, 0, tzinfo=est) + timedelta(minutes=m),
            10.0,
            11.0,
            9.0,
            10.5,
            1,
        )
        for d in days
        for m in range(9 * 60)
    ]
    with SqliteBarRepository(tmp_path / "bars.db") as repo:
        repo.add_bars(bars)
        seen: list[Bar] = []
        report = DataManager(store, repository=repo).replay(
            ["X"], days, drop_minutes=30, seed=5, upkeep=False, extended_hours=True, on_item=seen.append
        )
    expected = set()
    for d in days:
        of_day = [b for b in bars if b.timestamp.date() == d]
        regular = [i for i, b in enumerate(of_day) if clock.locate(b.timestamp) is not None]
        assert len(regular) == 330  # 390 minutes less the hour's break
        rng = random.Random(f"5:X:{d.isoformat()}")
        expected |= {of_day[i].timestamp for i in rng.sample(regular, 30)}
    assert {b.timestamp for b in bars} - {b.timestamp for b in seen} == expected
    assert [s.symbols["X"].dropped for s in report.sessions] == [30, 30]


@pytest.mark.parametrize("drop", [25, 390])
@pytest.mark.parametrize("aware", [False, True], ids=["naive", "aware"])
@pytest.mark.parametrize(
    "days", [[date(2025, 1, 2), date(2025, 1, 3)], [date(2025, 3, 7), date(2025, 3, 10)]]
)
def test_dropped_minutes_of_one_stretch_sessions_are_the_placed_ones(
    tmp_path: Path, aware: bool, days: list[date], drop: int
) -> None:
    # Sessions without a break (found by two binary searches, not by placing every bar): the same minutes
    # as drawn from the bars `SessionClock.locate` places, also around a clock change (2025-03-09) and with
    # pre-market and after-hours bars in the repository.
    store = SessionData()
    clock = store.session_clock
    zone = store.timezone if aware else None
    bars = [
        Bar("X", datetime(d.year, d.month, d.day, 7, 0, tzinfo=zone) + timedelta(minutes=m), 10, 11, 9, 10, 1)
        for d in days
        for m in range(11 * 60)
    ]
    with SqliteBarRepository(tmp_path / "bars.db") as repo:
        repo.add_bars(bars)
        seen: list[Bar] = []
        report = DataManager(store, repository=repo).replay(
            ["X"], days, drop_minutes=drop, seed=3, upkeep=False, extended_hours=True, on_item=seen.append
        )
    expected = set()
    for d in days:
        of_day = [b for b in bars if b.timestamp.date() == d]
        regular = [i for i, b in enumerate(of_day) if clock.locate(b.timestamp) is not None]
        assert len(regular) == 390
        rng = random.Random(f"3:X:{d.isoformat()}")
        expected |= {of_day[i].timestamp for i in rng.sample(regular, drop)}
    assert {b.timestamp for b in bars} - {b.timestamp for b in seen} == expected
    assert [s.symbols["X"].dropped for s in report.sessions] == [drop, drop]


class CountingRepository(InMemoryBarRepository):
    """An indexed repository that counts how often each symbol's time range is asked for."""

    def __init__(self, bars: list[Bar]) -> None:
        super().__init__(bars)
        self.range_calls: dict[str, int] = {}

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        self.range_calls[symbol] = self.range_calls.get(symbol, 0) + 1
        return super().time_range(symbol, interval)


class CountingBareRepository(BareRepository):
    """A bare repository (``get_bars`` only) that counts its whole-range probes (from before 1950)."""

    def __init__(self, bars: list[Bar]) -> None:
        super().__init__(bars)
        self.probes = 0

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        if start.year < 1950:
            self.probes += 1
        return super().get_bars(symbol, start, end, interval)


def _two_symbols() -> list[Bar]:
    return [*_bars(2), *(attrs.evolve(b, symbol="Y") for b in _bars(2))]


@pytest.mark.parametrize("drop", [0, 2])
@pytest.mark.parametrize("with_dates", [False, True])
def test_replay_asks_each_symbols_time_range_once(drop: int, with_dates: bool) -> None:
    repo = CountingRepository(_two_symbols())
    dates = [DAY, DAY + timedelta(days=1)] if with_dates else None
    report = DataManager(SessionData(), repository=repo).replay(["x", "Y"], dates, drop_minutes=drop)
    assert len(report.sessions) == 2
    assert repo.range_calls == {"X": 1, "Y": 1}


def test_replay_probes_a_bare_repository_once_per_symbol() -> None:
    # Without `time_range` each probe reads the symbol's whole history: it must not be repeated.
    repo = CountingBareRepository(_two_symbols())
    report = DataManager(SessionData(), repository=repo).replay(["X", "Y"], drop_minutes=1)
    assert len(report.sessions) == 2
    assert repo.probes == 2
