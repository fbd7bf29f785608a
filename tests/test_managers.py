"""`SystemManager` and `DataManager`: the seed's integration points, the lifecycle, and replays of real data.

Integration: the manager's store is the process-wide one unless one is injected, and its coordinator, upkeep
thread and `DataManager` all use that same store. Lifecycle: a hypothesis model of
start/pause/resume/stop (valid transitions move the state, repeats are no-ops, invalid calls raise
`InvalidStateError` and change nothing, threads run exactly while the system is not stopped); `stop` while
the coordinator is blocked on a consumer that stopped reading; no ``sessiondata*`` thread outlives the
context manager; a restart after `stop`. Replays: `DataManager.replay` over ``data/real/quantconnect_lean``
(as a `CsvBarRepository` and as a `SqliteBarRepository` built with ``import_csv``) gives, per session and
symbol, the figures computed here directly from the CSV rows, the README's missing-minute counts as
``gaps_found``, and, with ``drop_minutes``, finds and fills the dropped minutes so the stored bars equal the
full data.

Threads get deadlines (``join(timeout)`` or a bounded wait for a condition, then assert); nothing sleeps to
synchronize, so no test depends on the machine's speed to pass.
"""

from __future__ import annotations

import functools
import sys
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sessiondata
from reference import read_csv_bars
from sessiondata import (
    Bar,
    CsvBarRepository,
    InMemoryBarRepository,
    Provenance,
    SessionData,
    SqliteBarRepository,
    StreamType,
    get_session_data,
)
from sessiondata._managers import (
    DataManager,
    InvalidStateError,
    ReplayError,
    ReplayReport,
    SymbolSummary,
    SystemManager,
    SystemState,
)

M = timedelta(minutes=1)
DEADLINE = 10.0  # seconds for something that should happen at once; only reached on failure
DAY = date(2024, 1, 2)  # a Tuesday, a regular session
ALL_SYMBOLS = ("AAPL", "AIG", "BAC", "SHY", "SPY", "TWX")
# The README's table "Missing regular-session minutes per symbol-day"; every other symbol-day has none.
README_MISSING = {
    ("SHY", date(2008, 3, 7)): 57,
    ("SHY", date(2008, 3, 10)): 77,
    ("TWX", date(2014, 6, 6)): 3,
    ("AIG", date(2013, 10, 7)): 1,
}
README_REGULAR_ROWS = {"SPY": 2340, "AIG": 2339, "BAC": 2340, "AAPL": 1170, "TWX": 1167, "SHY": 646}


# --------------------------------------------------------------------------------------------- helpers


def minute_bars(symbol: str, n: int, day: date = DAY, first: int = 0) -> list[Bar]:
    """``n`` valid regular-session bars from 09:30 + ``first`` minutes (naive, exchange-local)."""
    start = datetime.combine(day, time(9, 30))
    out = []
    for i in range(first, first + n):
        px = 100.0 + (i % 7) * 0.25
        out.append(Bar(symbol, start + i * M, px, px + 0.5, px - 0.5, px + 0.125, 1000 + i))
    return out


def sessiondata_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sessiondata") and t.is_alive()}


def wait_until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; True if it held."""
    deadline = _time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if _time.monotonic() >= deadline:
            return False
        pause.wait(0.002)
    return True


def assert_no_new_threads(before: set[threading.Thread]) -> None:
    left = sessiondata_threads() - before
    assert not left, f"threads left alive: {sorted(t.name for t in left)}"


# ------------------------------------------------------------------- reference figures from the CSV rows


@dataclass(frozen=True)
class DayRef:
    """One symbol-day of a CSV file: every row, and the regular-session rows (09:30 <= start < 16:00)."""

    rows: tuple[Bar, ...]
    regular: tuple[Bar, ...]

    @property
    def missing(self) -> int:
        return 390 - len({b.timestamp for b in self.regular})

    def derived_count(self, minutes: int) -> int:
        """Windows aligned to 09:30 holding at least one regular-session bar."""
        return len({((b.timestamp.hour * 60 + b.timestamp.minute) - 570) // minutes for b in self.regular})

    def check(self, s: SymbolSummary, *, bars: tuple[Bar, ...] | None = None) -> None:
        """Assert ``s`` (a replay summary) has this day's figures (of ``bars``, default the regular rows)."""
        rows = self.regular if bars is None else bars
        volume = sum(b.volume for b in rows)
        vwap = sum((b.high + b.low + b.close) / 3 * b.volume for b in rows) / volume
        assert s.bars == len(rows)
        assert s.open == rows[0].open
        assert s.close == rows[-1].close
        assert s.high == max(b.high for b in rows)
        assert s.low == min(b.low for b in rows)
        assert s.volume == volume
        assert s.vwap == pytest.approx(vwap, rel=1e-12)
        assert s.bar_quality == pytest.approx(100.0 * (390 - self.missing) / 390)
        assert s.derived_bars == {5: self.derived_count(5), 15: self.derived_count(15)}


@functools.cache
def reference(directory: Path) -> dict[tuple[str, date], DayRef]:
    """Per (symbol, exchange date): the rows of ``directory/SYMBOL_1m.csv`` (local time with an offset)."""
    out: dict[tuple[str, date], list[Bar]] = {}
    for symbol in ALL_SYMBOLS:
        for bar in read_csv_bars(directory / f"{symbol}_1m.csv", symbol):
            out.setdefault((symbol, bar.timestamp.date()), []).append(bar)
    regular = time(9, 30), time(16, 0)
    return {
        key: DayRef(tuple(rows), tuple(b for b in rows if regular[0] <= b.timestamp.time() < regular[1]))
        for key, rows in out.items()
    }


def lean(real_data: Path) -> Path:
    return real_data / "quantconnect_lean"


@pytest.fixture(scope="module", autouse=True)
def _close_cached_repositories() -> Iterator[None]:
    """The cached repositories below live for the module; close their connections when it ends."""
    yield
    for repo in _OPENED:
        repo.close()
    _OPENED.clear()
    sqlite_repo.cache_clear()
    cached_replay.cache_clear()


_OPENED: list[SqliteBarRepository] = []


@functools.cache
def sqlite_repo(directory: Path, db_dir: Path) -> SqliteBarRepository:
    """An SQLite repository in ``db_dir`` loaded with every CSV of ``directory`` by ``import_csv``."""
    repo = SqliteBarRepository(db_dir / "lean.db")
    _OPENED.append(repo)
    manager = DataManager(SessionData(), repository=repo)
    reports = manager.import_csv(sorted(directory.glob("*_1m.csv")))
    assert [r.rejected for r in reports] == [0] * len(ALL_SYMBOLS)
    return repo


def make_repo(kind: str, real_data: Path, db_dir: Path) -> CsvBarRepository | SqliteBarRepository:
    if kind == "csv":
        return CsvBarRepository(lean(real_data))
    return sqlite_repo(lean(real_data), db_dir)


@functools.cache
def cached_replay(
    kind: str, real_data: Path, db_dir: Path, drop: int = 0, seed: int = 0
) -> tuple[ReplayReport, SessionData]:
    """One replay of every symbol and session (shared by the tests that only read it)."""
    store = SessionData(historical_bars_trailing_days=20)
    manager = DataManager(store, repository=make_repo(kind, real_data, db_dir))
    report = manager.replay(list(ALL_SYMBOLS), drop_minutes=drop, seed=seed)
    return report, store


def by_pair(report: ReplayReport) -> dict[tuple[str, date], SymbolSummary]:
    return {(sym, s.date): summary for s in report.sessions for sym, summary in s.symbols.items()}


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads far more often than usual, to shake out races in the lifecycle."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.fixture(scope="module")
def db_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("managers_db")


# ------------------------------------------------------------------------------ public names (contract)


def test_contract_names_are_importable_from_the_package() -> None:
    """CONTRACT.md: `SystemManager` and `DataManager` are "all importable from `sessiondata`"."""
    missing = [n for n in ("SystemManager", "DataManager") if not hasattr(sessiondata, n)]
    assert not missing, f"not exported from sessiondata: {missing}"


# ---------------------------------------------------------------------------- seed integration points


def test_default_store_is_the_process_wide_one() -> None:
    system = SystemManager()
    assert system.session_data is get_session_data()
    assert system.data_manager.session_data is get_session_data()
    assert system.coordinator.session_data is get_session_data()
    assert system.state is SystemState.STOPPED
    assert system.mode == "backtest"


def test_an_injected_store_is_used_instead() -> None:
    store = SessionData()
    system = SystemManager(store)
    assert system.session_data is store
    assert system.data_manager.session_data is store
    assert system.coordinator.session_data is store
    assert get_session_data() is not store
    assert DataManager(store).session_data is store


@pytest.mark.parametrize("inject", [False, True], ids=["process-wide", "injected"])
def test_the_coordinator_writes_into_the_same_store(inject: bool) -> None:
    injected = SessionData() if inject else None
    bars = minute_bars("SPY", 30) + minute_bars("SPY", 5, first=40)
    other = minute_bars("QQQ", 12)
    system = SystemManager(injected)
    system.coordinator.register_stream("SPY", StreamType.BAR, bars)
    system.coordinator.feed_data_list("qqq", StreamType.BAR, other)
    with system:
        got = list(system.coordinator.merged_stream())
    store = get_session_data() if injected is None else injected
    assert system.session_data is store
    assert sorted(got, key=lambda b: (b.timestamp, b.symbol)) == got
    assert sorted(got, key=lambda b: (b.symbol, b.timestamp)) == sorted(bars + other, key=lambda b: b.symbol)
    assert store.get_bars("SPY") == bars
    assert store.get_bars("QQQ") == other
    for symbol in ("SPY", "QQQ", "spy"):
        assert system.data_manager.get_session_metrics(symbol) == store.get_session_metrics(symbol)
    metrics = system.data_manager.get_session_metrics("SPY")
    assert metrics["session_volume"] == sum(b.volume for b in bars)
    assert metrics["last_update"] == bars[-1].timestamp
    assert system.data_manager.get_session_metrics("NOPE") == {} == store.get_session_metrics("NOPE")


def test_data_manager_metrics_follow_the_process_wide_store() -> None:
    manager = DataManager()
    assert manager.session_data is get_session_data()
    bars = minute_bars("AAPL", 3)
    get_session_data().add_bars_batch("AAPL", bars)
    assert manager.get_session_metrics("AAPL") == get_session_data().get_session_metrics("AAPL")
    assert manager.get_session_metrics("AAPL")["bar_count"] == 3


def test_system_upkeep_fills_a_missing_minute_from_its_repository() -> None:
    """The manager wires repository → upkeep → the same store the coordinator writes into."""
    store = SessionData()
    full = minute_bars("SPY", 20)
    streamed = full[:7] + full[8:]
    system = SystemManager(store, repository=InMemoryBarRepository(full))
    assert system.data_manager.repository is not None
    system.coordinator.register_stream("SPY", StreamType.BAR, streamed)
    before = sessiondata_threads()
    with system:
        assert list(system.coordinator.merged_stream()) == streamed
    assert_no_new_threads(before)
    # The coordinator ends the session when its streams are exhausted and runs the upkeep then.
    assert store.get_bars("SPY") == full
    assert store.get_symbol_data("SPY").get_provenance(full[7].timestamp) is Provenance.GAP_FILLED  # type: ignore[union-attr]
    assert system.data_manager.get_session_metrics("SPY")["bar_quality"] == 100.0


# ----------------------------------------------------------------------------------------- lifecycle

# What each call does from each state: the state it leads to, or None when it must raise.
TRANSITIONS: dict[tuple[SystemState, str], SystemState | None] = {
    (SystemState.STOPPED, "start"): SystemState.RUNNING,
    (SystemState.RUNNING, "start"): SystemState.RUNNING,
    (SystemState.PAUSED, "start"): None,
    (SystemState.STOPPED, "pause"): None,
    (SystemState.RUNNING, "pause"): SystemState.PAUSED,
    (SystemState.PAUSED, "pause"): SystemState.PAUSED,
    (SystemState.STOPPED, "resume"): None,
    (SystemState.RUNNING, "resume"): SystemState.RUNNING,
    (SystemState.PAUSED, "resume"): SystemState.RUNNING,
    (SystemState.STOPPED, "stop"): SystemState.STOPPED,
    (SystemState.RUNNING, "stop"): SystemState.STOPPED,
    (SystemState.PAUSED, "stop"): SystemState.STOPPED,
}


def check_parts(system: SystemManager, state: SystemState, before: set[threading.Thread]) -> None:
    """Threads run exactly while the system is not stopped, and are paused exactly while it is paused."""
    assert system.state is state
    upkeep = system.upkeep
    assert upkeep is not None
    if state is SystemState.STOPPED:
        assert_no_new_threads(before)
        return
    # Backtest mode: the upkeep runs inside the replay's pipeline, at simulated times (no thread of its own).
    assert upkeep.status()["running"]
    assert upkeep.status()["paused"] is (state is SystemState.PAUSED)
    status = system.coordinator.status()
    # The stream outlasts the test and no one reads it: the worker is alive (blocked on the full buffer).
    assert status["worker_alive"]
    assert status["state"] == ("paused" if state is SystemState.PAUSED else "running")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.sampled_from(["start", "pause", "resume", "stop"]), max_size=9))
@pytest.mark.usefixtures("fast_switching")
def test_lifecycle_follows_the_state_model(calls: list[str]) -> None:
    before = sessiondata_threads()
    system = SystemManager(SessionData(), coordinator_options={"max_queue_size": 2, "batch_size": 1})
    state = SystemState.STOPPED
    try:
        check_parts(system, state, before)
        for call in calls:
            expected = TRANSITIONS[state, call]
            fresh_run = call == "start" and state is SystemState.STOPPED
            if expected is None:
                with pytest.raises(InvalidStateError):
                    getattr(system, call)()
            else:
                result = getattr(system, call)()
                if call == "stop":
                    assert result is True
                state = expected
            if fresh_run:
                # A coordinator runs once: `start` built this run's, which gets a stream longer than the
                # buffer (registered after `start`, so the worker starts here).
                system.coordinator.register_stream("SPY", StreamType.BAR, minute_bars("SPY", 300))
                system.coordinator.start_worker()
            check_parts(system, state, before)
    finally:
        system.stop()
    check_parts(system, SystemState.STOPPED, before)


@pytest.mark.usefixtures("fast_switching")
def test_stop_returns_while_the_coordinator_is_blocked_on_a_consumer_that_stopped_reading() -> None:
    before = sessiondata_threads()
    bars = minute_bars("SPY", 390)
    store = SessionData()
    system = SystemManager(store, coordinator_options={"max_queue_size": 3, "batch_size": 1})
    coordinator = system.coordinator
    coordinator.register_stream("SPY", StreamType.BAR, bars)
    system.start()
    stream = coordinator.merged_stream()
    first = next(stream)
    assert wait_until(lambda: coordinator.status()["waiting_for_consumer"]), coordinator.status()
    result: list[bool] = []
    stopper = threading.Thread(target=lambda: result.append(system.stop(timeout=3.0)))
    stopper.start()
    stopper.join(3.0 + DEADLINE)  # stop() promises 3 s; the margin only absorbs a loaded machine
    assert not stopper.is_alive(), "stop() did not return"
    assert result == [True]
    assert system.state is SystemState.STOPPED
    assert_no_new_threads(before)
    # The consumer gets what was buffered, then the stream ends: a prefix of the data, in order.
    rest = list(stream)
    assert [first, *rest] == bars[: 1 + len(rest)]
    assert len(rest) <= 3
    assert 1 + len(rest) <= store.get_bar_count("SPY") < len(bars)


@pytest.mark.usefixtures("fast_switching")
def test_pause_parks_the_coordinator_and_resume_finishes_the_replay() -> None:
    bars = minute_bars("SPY", 200)
    store = SessionData()
    system = SystemManager(store, coordinator_options={"max_queue_size": 8, "batch_size": 1})
    coordinator = system.coordinator
    coordinator.register_stream("SPY", StreamType.BAR, bars)
    before = sessiondata_threads()
    with system:
        stream = coordinator.merged_stream()
        got = [next(stream)]
        system.pause()
        assert coordinator.wait_paused(DEADLINE)
        assert system.upkeep is not None
        assert system.upkeep.status()["paused"]
        assert coordinator.status()["state"] == "paused"
        system.resume()
        got.extend(stream)
    assert_no_new_threads(before)
    assert got == bars
    assert store.get_bars("SPY") == bars


def test_streams_can_be_registered_after_start() -> None:
    """`SystemManager`'s docstring: "Streams are registered on `coordinator` before or after `start`"."""
    store = SessionData()
    bars = minute_bars("SPY", 10)
    before = sessiondata_threads()
    with SystemManager(store, upkeep=False) as system:
        coordinator = system.coordinator
        # A worker that wrongly ends when it starts with no stream gets the chance to; a right one waits.
        wait_until(lambda: not coordinator.status()["worker_alive"], timeout=0.5)
        coordinator.register_stream("SPY", StreamType.BAR, bars)
        got = list(coordinator.merged_stream())
    assert_no_new_threads(before)
    assert got == bars
    assert store.get_bars("SPY") == bars


def test_context_manager_leaves_no_thread_alive_even_on_error() -> None:
    before = sessiondata_threads()
    system = SystemManager(SessionData(), coordinator_options={"max_queue_size": 2, "batch_size": 1})
    system.coordinator.register_stream("SPY", StreamType.BAR, minute_bars("SPY", 300))
    with system as entered:
        assert entered is system
        assert system.state is SystemState.RUNNING
        # The coordinator's worker; the upkeep runs inside it (backtest mode: no thread of its own).
        assert len(sessiondata_threads() - before) >= 1
        assert system.upkeep is not None
        assert system.upkeep.status()["running"]
        next(iter(system.coordinator.merged_stream()))
    assert system.state is SystemState.STOPPED
    assert_no_new_threads(before)

    system2 = SystemManager(SessionData(), coordinator_options={"max_queue_size": 2, "batch_size": 1})
    system2.coordinator.register_stream("SPY", StreamType.BAR, minute_bars("SPY", 300))

    def fail_inside() -> None:
        with system2:
            system2.pause()
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        fail_inside()
    assert system2.state is SystemState.STOPPED
    assert_no_new_threads(before)


def test_restart_after_stop_runs_fresh_threads_on_the_same_store() -> None:
    store = SessionData()
    first, second = minute_bars("SPY", 10), minute_bars("SPY", 10, first=10)
    before = sessiondata_threads()
    system = SystemManager(store)
    system.coordinator.register_stream("SPY", StreamType.BAR, first)
    system.start()
    assert list(system.coordinator.merged_stream()) == first
    old = system.coordinator
    assert system.stop() is True
    assert_no_new_threads(before)
    assert system.coordinator is old  # the stopped run stays readable until the next start
    system.start()
    assert system.coordinator is not old
    system.coordinator.register_stream("SPY", StreamType.BAR, second)
    assert system.state is SystemState.RUNNING
    assert system.upkeep is not None
    assert system.upkeep.status()["running"]
    assert list(system.coordinator.merged_stream()) == second
    assert system.stop() is True
    assert_no_new_threads(before)
    assert system.session_data is store
    # The second run continues the same session: the store holds both runs' bars.
    assert store.get_bars("SPY") == first + second


def test_live_mode_has_no_coordinator_and_stops_its_threads() -> None:
    before = sessiondata_threads()
    with SystemManager(SessionData(), mode="live") as system:
        assert system.mode == "live"
        assert system.upkeep is not None
        assert system.upkeep.is_alive()
        with pytest.raises(InvalidStateError):
            _ = system.coordinator
        system.pause()
        system.resume()
    assert system.state is SystemState.STOPPED
    assert_no_new_threads(before)
    with pytest.raises(ValueError, match="mode"):
        SystemManager(mode="paper")


# ------------------------------------------------------------------------------ DataManager basics


def test_data_manager_without_a_repository_raises_replay_error() -> None:
    manager = DataManager(SessionData())
    assert manager.repository is None
    with pytest.raises(ReplayError):
        manager.replay(["SPY"])
    with pytest.raises(ReplayError):
        manager.get_bars("SPY", datetime(2024, 1, 2), datetime(2024, 1, 3))


@pytest.mark.realdata
def test_data_manager_get_bars_and_import(
    real_data: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ref = reference(lean(real_data))
    repo = SqliteBarRepository(tmp_path / "bars.db")
    request.addfinalizer(repo.close)
    manager = DataManager(SessionData(), repository=repo)
    (report,) = manager.import_csv([lean(real_data) / "TWX_1m.csv"])
    assert (report.added, report.duplicates, report.rejected) == (1200, 0, 0)
    (again,) = manager.import_csv([lean(real_data) / "TWX_1m.csv"])
    assert (again.added, again.duplicates) == (0, 1200)
    day = ref["TWX", date(2014, 6, 6)]
    start, end = day.regular[0].timestamp, day.regular[-1].timestamp + M
    assert manager.get_bars("TWX", start, end) == list(day.regular)
    with pytest.raises(ReplayError):
        DataManager(repository=CsvBarRepository(lean(real_data))).import_csv([lean(real_data) / "TWX_1m.csv"])


# -------------------------------------------------------------------------- DataManager.replay, real data


@pytest.mark.realdata
def test_reference_matches_the_readme(real_data: Path) -> None:
    """The figures below are computed from the rows; check that reading against the README's table."""
    ref = reference(lean(real_data))
    assert {k: v.missing for k, v in ref.items() if v.missing} == README_MISSING
    regular: dict[str, int] = {}
    for (symbol, _), day in ref.items():
        regular[symbol] = regular.get(symbol, 0) + len(day.regular)
    assert regular == README_REGULAR_ROWS


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["csv", "sqlite"])
def test_replay_figures_equal_the_csv_rows(kind: str, real_data: Path, db_dir: Path) -> None:
    ref = reference(lean(real_data))
    report, _ = cached_replay(kind, real_data, db_dir)
    got = by_pair(report)
    assert set(got) == set(ref)
    assert [s.date for s in report.sessions] == sorted({d for _, d in ref})
    for key, summary in got.items():
        day = ref[key]
        day.check(summary)
        assert (summary.symbol, summary.date) == key
        assert summary.gaps_found == README_MISSING.get(key, 0), key
        assert summary.gaps_filled == 0, key  # the repository does not have the missing minutes either
        assert summary.gaps_open == summary.gaps_found
        assert summary.dropped == 0
    assert report.bars == sum(len(d.regular) for d in ref.values())
    assert report.items == report.bars
    assert report.bars_per_second > 0
    assert report.upkeep_faults == 0
    assert report.drop_minutes == 0
    assert report.extended_hours is False
    # The contract's --json shape: each symbol's last session, and one object per date.
    body = report.as_dict()
    last = {sym: max(d for s, d in ref if s == sym) for sym in ALL_SYMBOLS}
    assert set(body["symbols"]) == set(ALL_SYMBOLS)
    for sym, figures in body["symbols"].items():
        assert figures["bars"] == len(ref[sym, last[sym]].regular)
        assert figures["volume"] == sum(b.volume for b in ref[sym, last[sym]].regular)
    assert [s["date"] for s in body["sessions"]] == [s.date.isoformat() for s in report.sessions]


@pytest.mark.realdata
def test_full_sessions_have_78_five_minute_and_26_fifteen_minute_bars(real_data: Path, db_dir: Path) -> None:
    report, _ = cached_replay("csv", real_data, db_dir)
    full = [s for (sym, _), s in by_pair(report).items() if sym in ("SPY", "BAC", "AAPL")]
    assert len(full) == 15
    assert all(s.derived_bars == {5: 78, 15: 26} and s.bars == 390 for s in full)


@pytest.mark.realdata
def test_sqlite_replay_equals_csv_replay(real_data: Path, db_dir: Path) -> None:
    csv_report, csv_store = cached_replay("csv", real_data, db_dir)
    db_report, db_store = cached_replay("sqlite", real_data, db_dir)
    assert [s.as_dict() for s in db_report.sessions] == [s.as_dict() for s in csv_report.sessions]
    for symbol in ("AAPL", "TWX"):
        assert db_store.get_bars(symbol) == csv_store.get_bars(symbol)


@pytest.mark.realdata
@pytest.mark.parametrize("kind", ["csv", "sqlite"])
def test_dropped_minutes_are_found_and_filled(kind: str, real_data: Path, db_dir: Path) -> None:
    drop = 4
    ref = reference(lean(real_data))
    report, store = cached_replay(kind, real_data, db_dir, drop, 11)
    assert report.drop_minutes == drop
    got = by_pair(report)
    assert set(got) == set(ref)
    for key, summary in got.items():
        missing = README_MISSING.get(key, 0)
        assert summary.dropped == drop, key
        assert summary.gaps_found == missing + drop, key
        assert summary.gaps_filled == drop, key  # the repository has every dropped minute
        assert summary.gaps_open == missing, key
        ref[key].check(summary)  # the figures are those of the full data
    # Every session's stored bars equal the full data (earlier sessions rolled into historical bars).
    last = report.sessions[-1].date
    for (symbol, day), day_ref in ref.items():
        snap = store.get_symbol_data(symbol)
        assert snap is not None
        stored = list(snap.bars_1m) if day == last else list(snap.historical_bars[1][day])
        assert stored == list(day_ref.regular), (symbol, day)
    for symbol in ("AAPL", "TWX"):
        snap = store.get_symbol_data(symbol)
        assert snap is not None
        filled = [b for b in snap.bars_1m if snap.get_provenance(b.timestamp) is Provenance.GAP_FILLED]
        assert len(filled) == drop


def gap_filled(store: SessionData, symbol: str) -> list[datetime]:
    snap = store.get_symbol_data(symbol)
    assert snap is not None
    return [b.timestamp for b in snap.bars_1m if snap.get_provenance(b.timestamp) is Provenance.GAP_FILLED]


@pytest.mark.realdata
def test_replay_is_deterministic(real_data: Path, db_dir: Path) -> None:
    first, first_store = cached_replay("csv", real_data, db_dir, 4, 11)
    store = SessionData(historical_bars_trailing_days=20)
    again = DataManager(store, repository=CsvBarRepository(lean(real_data))).replay(
        list(ALL_SYMBOLS), drop_minutes=4, seed=11
    )
    assert [s.as_dict() for s in again.sessions] == [s.as_dict() for s in first.sessions]
    for symbol in ("AAPL", "TWX"):
        assert gap_filled(store, symbol) == gap_filled(first_store, symbol)
        assert store.get_bars(symbol) == first_store.get_bars(symbol)
    other = SessionData()
    DataManager(other, repository=CsvBarRepository(lean(real_data))).replay(
        ["TWX"], [date(2014, 6, 9)], drop_minutes=4, seed=12
    )
    assert gap_filled(other, "TWX") != gap_filled(store, "TWX")  # the seed chooses the minutes


@pytest.mark.realdata
def test_replay_of_chosen_dates(real_data: Path) -> None:
    ref = reference(lean(real_data))
    store = SessionData()
    manager = DataManager(store, repository=CsvBarRepository(lean(real_data)))
    days = [date(2013, 10, 9), date(2013, 10, 7)]
    report = manager.replay(["spy", "AIG"], days)
    assert [s.date for s in report.sessions] == sorted(days)
    for session in report.sessions:
        assert set(session.symbols) == {"SPY", "AIG"}
        for symbol, summary in session.symbols.items():
            ref[symbol, session.date].check(summary)
            assert summary.gaps_found == README_MISSING.get((symbol, session.date), 0)
    assert store.current_session_date == date(2013, 10, 9)
    assert manager.get_session_metrics("SPY") == store.get_session_metrics("SPY")
    assert manager.get_session_metrics("SPY")["session_volume"] == report.sessions[-1].symbols["SPY"].volume


@pytest.mark.realdata
def test_replay_with_extended_hours_keeps_pre_and_post_market_bars(real_data: Path) -> None:
    day = reference(lean(real_data))["AIG", date(2013, 10, 7)]
    report = DataManager(SessionData(), repository=CsvBarRepository(lean(real_data))).replay(
        ["AIG"], [date(2013, 10, 7)], extended_hours=True
    )
    (session,) = report.sessions
    summary = session.symbols["AIG"]
    assert report.extended_hours is True
    assert summary.bars == len(day.rows) == 433
    assert summary.open == day.rows[0].open
    assert summary.close == day.rows[-1].close
    assert summary.gaps_found == 1  # gaps are regular-session minutes
    assert summary.bar_quality == pytest.approx(100 * 389 / 390)


def new_threads_after(action: Callable[[], Any]) -> set[threading.Thread]:
    before = sessiondata_threads()
    action()
    return sessiondata_threads() - before


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("symbols", "dates", "kwargs"),
    [
        (["NOPE"], None, {}),
        (["SPY", "NOPE"], None, {}),
        (["SPY", "NOPE"], [date(2013, 10, 7)], {}),
        ([], None, {}),
        (["SPY"], None, {"drop_minutes": -1}),
        (["SPY"], [date(2013, 10, 5)], {}),  # a Saturday: no bars on the dates asked
    ],
    ids=["unknown", "one-unknown", "unknown-with-dates", "no-symbols", "negative-drop", "no-bars"],
)
def test_replay_errors_raise_replay_error_and_leave_nothing_running(
    real_data: Path, symbols: list[str], dates: Iterable[date] | None, kwargs: dict[str, Any]
) -> None:
    store = SessionData()
    manager = DataManager(store, repository=CsvBarRepository(lean(real_data)))

    def replay() -> None:
        with pytest.raises(ReplayError):
            manager.replay(symbols, dates, **kwargs)

    assert not new_threads_after(replay)
    assert store.get_bar_count("SPY") == 0
    assert isinstance(ReplayError("x"), ValueError)
