"""The backtest upkeep's per-minute cost (issue 14): `advance` settles a minute with nothing due by a quick
test, and the library's replays call it once per move of the clock.

The quick test must not change what the upkeep does or when: an upkeep driven by its clock (`advance`, quick
test included) is compared, minute by minute, with one that runs a full pass (`run_once`) at every minute
of the same replay: same repository calls, same store, same counts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata import (
    BacktestStreamCoordinator,
    Bar,
    DataManager,
    DataUpkeepThread,
    InMemoryBarRepository,
    RegularHoursCalendar,
    SessionData,
    StreamType,
    SystemManager,
    TimeProvider,
)
from sessiondata._zones import fixed_zone

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
DAY = date(2024, 3, 4)
MINUTES = 40  # replayed minutes from the open


class CountingRepository(InMemoryBarRepository):
    """Records every `get_bars` call with its arguments."""

    def __init__(self, bars: list[Bar]) -> None:
        super().__init__(bars)
        self.calls: list[tuple[str, datetime, datetime]] = []

    def get_bars(self, symbol: str, start: datetime, end: datetime) -> list[Bar]:
        self.calls.append((symbol, start, end))
        return list(super().get_bars(symbol, start, end))


# Timestamp styles: naive exchange-local, the exchange's zone, a fixed offset (as parsed from ISO text; the
# shared zone object), UTC. One replay may mix them: the clock in one, each symbol in one.
STYLES: dict[str, Any] = {
    "naive": None,
    "zone": NY,
    "fixed": fixed_zone(timedelta(hours=-5)),  # EST on DAY
    "utc": timezone.utc,
}
# A 24/7 session in New York on the day clocks go forward (no fixed offset from open to close), replayed
# from 10:00 EDT, after the skipped hour; its fixed-offset style is EDT.
DST_DAY = date(2018, 3, 11)
DST_CALENDAR = RegularHoursCalendar(time(0), time(0), NY, weekends=True)


def _stamp(i: int, style: bool | str, dst: bool = False) -> datetime:
    name = ("zone" if style else "naive") if isinstance(style, bool) else style
    if dst:
        start = datetime(2018, 3, 11, 14, 0, tzinfo=timezone.utc) + i * M
        if name == "naive":
            return start.astimezone(NY).replace(tzinfo=None)
        zone = fixed_zone(timedelta(hours=-4)) if name == "fixed" else STYLES[name]
        return start.astimezone(zone)
    local = datetime(2024, 3, 4, 9, 30) + i * M
    if name == "naive":
        return local
    return local.replace(tzinfo=NY).astimezone(STYLES[name])


def _bar(symbol: str, i: int, style: bool | str, dst: bool = False) -> Bar:
    return Bar(symbol, _stamp(i, style, dst), 10.0, 10.5, 9.5, 10.0, 100 + i)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Symbols whose streams miss random minutes (some start late, some stop early), a repository that
    holds a random part of what the streams miss; the clock's and each symbol's timestamp style; the clock
    moved at the minute or half a minute later, and maybe once more inside each minute; a regular session
    or a 24/7 one across a clock change."""
    clock = draw(st.sampled_from(sorted(STYLES)))
    n = draw(st.integers(1, 4))
    streamed: dict[str, set[int]] = {}
    stored: dict[str, set[int]] = {}
    styles: dict[str, str] = {}
    for k in range(n):
        first = draw(st.sampled_from([0, 0, 0, 3, 17]))
        last = draw(st.sampled_from([MINUTES, MINUTES, MINUTES - 6]))
        missing = draw(st.sets(st.integers(first, last - 1), max_size=4))
        streamed[f"S{k}"] = set(range(first, last)) - missing
        stored[f"S{k}"] = {m for m in range(MINUTES) if draw(st.booleans()) or m in streamed[f"S{k}"]}
        styles[f"S{k}"] = draw(st.sampled_from([clock, clock, *sorted(STYLES)]))
    return {
        "clock": clock,
        "styles": styles,
        "offset": draw(st.sampled_from([0, 30])),
        "extra_move": draw(st.booleans()),
        "dst": draw(st.booleans()),
        "wanted": draw(st.none() | st.sets(st.sampled_from(sorted(streamed)), min_size=1)),
        "streamed": streamed,
        "stored": stored,
    }


def _replay_by_hand(scenario: dict[str, Any], *, full_passes: bool) -> list[Any]:
    """Move a backtest clock minute by minute, writing each minute's bars after the move as a coordinator
    does; the upkeep passes from its clock, or with ``full_passes`` a `run_once` at the first move into
    each minute. Returns what the upkeep did at each minute."""
    dst = scenario.get("dst", False)
    clock_style = scenario.get("clock", scenario.get("aware", False))
    styles = scenario.get("styles") or dict.fromkeys(scenario["streamed"], clock_style)
    offset = timedelta(seconds=scenario.get("offset", 0))
    store = SessionData(calendar=DST_CALENDAR) if dst else SessionData()
    store.start_new_session(DST_DAY if dst else DAY)
    clock = TimeProvider("backtest")
    repo = CountingRepository(
        [_bar(s, i, styles[s], dst) for s, minutes in scenario["stored"].items() for i in sorted(minutes)]
    )
    wanted = scenario.get("wanted")
    up = DataUpkeepThread(store, repo, time_provider=clock, retry_base=30.0, symbols=wanted)
    trace: list[Any] = []
    ran: datetime | None = None
    for i in range(MINUTES + 3):
        # The bar of minute i - 1 is known at its end: the clock reaches it first, then it is written.
        t = _stamp(i, clock_style, dst) + offset
        moves = [t - timedelta(seconds=20), t] if scenario.get("extra_move") and i else [t]
        for move in moves:  # the extra move is inside the minute before (or this one)
            clock.advance_to(move)
            if i == 0 and not full_passes:
                up.start()
            elif full_passes and move.replace(second=0) != ran:
                up.run_once()  # the reference: a full pass at the first move into each minute
                ran = move.replace(second=0)
        for symbol, minutes in scenario["streamed"].items():
            if i - 1 in minutes:
                store.add_bar(symbol, _bar(symbol, i - 1, styles[symbol], dst))
        status = up.status()
        trace.append(
            (
                list(repo.calls),
                {s: [b.timestamp for b in store.get_bars(s)] for s in store.get_active_symbols()},
                status["passes"],
                status["gaps_found"],
                status["bars_filled"],
                status["fill_attempts"],
                status["unfillable"],
                {s: v["open_gaps"] for s, v in status["symbols"].items()},
            )
        )
    store.end_session()
    up.run_once()
    trace.append((list(repo.calls), {s: store.get_bars(s) for s in store.get_active_symbols()}))
    up.stop()
    return trace


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_quick_test_changes_nothing_the_upkeep_does_or_when(scenario: dict[str, Any]) -> None:
    """Same fetches (symbol and range) at the same minute, same store, same counts and open gaps at every
    minute, as an upkeep that runs a full pass at every minute."""
    by_clock = _replay_by_hand(scenario, full_passes=False)
    full = _replay_by_hand(scenario, full_passes=True)
    for minute, (a, b) in enumerate(zip(by_clock, full, strict=True)):
        assert a == b, (minute, scenario)


def _same_as_full_passes(scenario: dict[str, Any]) -> None:
    by_clock = _replay_by_hand(scenario, full_passes=False)
    full = _replay_by_hand(scenario, full_passes=True)
    for minute, (a, b) in enumerate(zip(by_clock, full, strict=True)):
        assert a == b, (minute, scenario)


def test_complete_symbols_of_the_other_style_than_the_clock_get_full_passes() -> None:
    """A naive clock with complete aware symbols (or the reverse): the quick test cannot compare them and
    leaves the minute to a full pass, which finds nothing either."""
    every = set(range(MINUTES))
    for clock, style in (("naive", "fixed"), ("fixed", "naive")):
        _same_as_full_passes(
            {
                "clock": clock,
                "styles": {"A": style},
                "streamed": {"A": every},
                "stored": {"A": every},
            }
        )


def test_only_the_wanted_symbols_are_tested() -> None:
    """An upkeep for some symbols: a store symbol it does not keep (here one that misses minutes) never
    stops its quick test, and the others are kept as with full passes."""
    every = set(range(MINUTES))
    scenario = {
        "clock": "fixed",
        "wanted": {"A"},
        "streamed": {"A": every, "B": every - {5, 6}},
        "stored": {"A": every, "B": every},
    }
    _same_as_full_passes(scenario)
    trace = _replay_by_hand(scenario, full_passes=False)
    assert trace[MINUTES][0] == []  # nothing fetched while A's stream lasts (then later minutes are due)
    assert {call[0] for call in trace[-1][0]} == {"A"}  # and never anything for B, which is not kept


def test_a_complete_replay_fetches_nothing_and_counts_a_pass_each_minute() -> None:
    """Every minute is a pass (``passes``), quick or full; complete streams make no repository call."""
    scenario = {
        "aware": True,
        "streamed": {"A": set(range(MINUTES)), "B": set(range(MINUTES))},
        "stored": {"A": set(range(MINUTES)), "B": set(range(MINUTES))},
    }
    trace = _replay_by_hand(scenario, full_passes=False)
    assert trace[MINUTES][0] == []  # no fetch while the streams last (then the minutes after them are due)
    assert [row[2] for row in trace[:-1]] == list(range(1, MINUTES + 4))


def _count_clock_calls(monkeypatch: Any) -> Counter[datetime]:
    """Count, per time, the calls every backtest clock makes into its listeners (the upkeep's passes)."""
    calls: Counter[datetime] = Counter()
    original = TimeProvider.on_advance

    def on_advance(self: TimeProvider, listener: Callable[[datetime], object]) -> Callable[[], None]:
        def counted(t: datetime) -> object:
            calls[t] += 1
            return listener(t)

        return original(self, counted)

    monkeypatch.setattr(TimeProvider, "on_advance", on_advance)
    return calls


def test_data_manager_replay_advances_the_upkeep_once_per_clock_move(monkeypatch: Any) -> None:
    """`DataManager.replay` (what ``sessiondata replay`` runs): the upkeep hears each move of the clock
    once (it was called twice, by the clock and again as a coordinator listener), and still fills."""
    calls = _count_clock_calls(monkeypatch)
    full = [_bar("SPY", i, True) for i in range(MINUTES)]
    report = DataManager(SessionData(), repository=InMemoryBarRepository(full)).replay(
        ["SPY"], [DAY], drop_minutes=3, seed=1
    )
    assert report.sessions[0].symbols["SPY"].gaps_filled == 3
    assert calls
    assert set(calls.values()) == {1}, calls.most_common(3)


def test_system_manager_advances_the_upkeep_once_per_clock_move(monkeypatch: Any) -> None:
    calls = _count_clock_calls(monkeypatch)
    full = [_bar("SPY", i, False) for i in range(MINUTES)]
    store = SessionData()
    system = SystemManager(store, repository=InMemoryBarRepository(full))
    system.coordinator.register_stream("SPY", StreamType.BAR, full[:7] + full[8:])
    with system:
        assert len(list(system.coordinator.merged_stream())) == MINUTES - 1
    assert store.get_bars("SPY") == full
    assert calls
    assert set(calls.values()) == {1}, calls.most_common(3)


def test_an_upkeep_handed_whole_to_a_coordinator_hears_each_clock_move_once() -> None:
    """Given to a coordinator as a session listener (for its `run_once`), the upkeep still hears each move of
    the clock once: the coordinator also calls any ``advance(now)`` its listeners have, and the upkeep's
    clock listener was that public ``advance``, so every move reached it twice. It still fills the gap."""
    full = [_bar("SPY", i, True) for i in range(MINUTES)]
    store = SessionData()
    clock = TimeProvider("backtest")
    up = DataUpkeepThread(store, InMemoryBarRepository(full), time_provider=clock)
    coordinator = BacktestStreamCoordinator(store, time_provider=clock, session_listeners=[up])
    coordinator.register_stream("SPY", StreamType.BAR, full[:7] + full[8:])
    calls: Counter[datetime] = Counter()
    clock.on_advance(lambda t: calls.update([t]))  # the clock's own calls: one per move
    hook = getattr(up, "advance", None)
    if callable(hook):  # what the coordinator calls on top (before the fix: the upkeep's `advance`)

        def counted(t: datetime) -> None:
            calls[t] += 1
            hook(t)

        up.advance = counted  # type: ignore[attr-defined]
    up.start()
    coordinator.start_worker()
    try:
        assert len(list(coordinator.merged_stream())) == MINUTES - 1
    finally:
        assert coordinator.stop_worker(timeout=10.0)
        assert up.stop(timeout=10.0)
    assert store.get_bars("SPY") == full
    assert len(calls) == MINUTES - 1
    assert set(calls.values()) == {1}, calls.most_common(3)


def test_a_quiet_minute_does_not_wait_for_a_writer() -> None:
    """A new minute with nothing due is settled without the store's write lock (no copy of the writer
    state): it completes while another thread holds the lock. Before, it waited for the lock."""
    store = SessionData()
    store.start_new_session(DAY)
    clock = TimeProvider("backtest")
    up = DataUpkeepThread(store, InMemoryBarRepository(), time_provider=clock)
    clock.advance_to(_bar("A", 0, False).timestamp)
    up.start()
    for i in range(3):  # complete minutes: the pass at the third visits no symbol
        store.add_bar("A", _bar("A", i, False))
        clock.advance_to(_bar("A", i + 1, False).timestamp)
    passes = up.status()["passes"]
    held = threading.Event()
    done = threading.Event()
    waited: list[bool] = []

    def hold_the_lock() -> None:
        with store.write_lock:
            held.set()
            waited.append(not done.wait(timeout=10.0))  # the deadline: True if nobody got past the lock

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(timeout=10.0)
    clock.advance_to(_bar("A", 4, False).timestamp)  # a new minute, A complete up to the due one
    done.set()
    holder.join(timeout=10.0)
    assert waited == [False]
    status = up.status()
    assert status["passes"] == passes + 1
    assert status["gaps_found"] == 0
    up.stop()
