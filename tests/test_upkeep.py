"""`DataUpkeepThread`: filling gaps from a real SQLite repository, the clock bound, retries, the thread.

The real-data tests load ``data/real/quantconnect_lean`` into an SQLite file in ``tmp_path``, remove minutes
from one symbol-day (runs including the session's first and last minute), let the upkeep fill them, and
compare with a store fed the full data: bars, metrics, derived bars, provenance, quality. The retry tests
inject a fake ``monotonic`` clock and a seeded ``rng`` and count the repository's calls. The thread tests use
real threads with deadlines (``join(timeout)`` / waits on the store, then assert): nothing sleeps to
synchronize, so no test depends on the machine's speed to pass. Two tests observe that *nothing* happens
over a short window (no pass while paused, no busy-polling); a slow machine can only make those pass more
easily, never fail.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import threading
import time as _time
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from reference import check_store
from sessiondata import (
    Bar,
    DataUpkeepThread,
    InMemoryBarRepository,
    Provenance,
    SessionData,
    SqliteBarRepository,
    TimeProvider,
)
from sessiondata._csvio import read_csv_bars

M = timedelta(minutes=1)
EDT = timezone(timedelta(hours=-4))
DEADLINE = 10.0  # seconds a thread gets to do something it should do at once; only reached on failure
METRIC_KEYS = ("symbol", "session_volume", "session_high", "session_low", "last_update", "bar_quality")


# --------------------------------------------------------------------------------------------- helpers


class FakeMonotonic:
    """A monotonic clock the test moves by hand (the upkeep's ``monotonic=``)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class CountingRepo:
    """Wraps a repository and records every ``get_bars`` range asked for (thread-safe)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, datetime, datetime]] = []
        self._lock = threading.Lock()

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        with self._lock:
            self.calls.append((symbol, start, end))
        result: list[Bar] = self.inner.get_bars(symbol, start, end, interval)
        return result

    def calls_covering(self, minute: datetime) -> int:
        with self._lock:
            return sum(1 for _, s, e in self.calls if s <= minute < e)


def regular_bars(path: Path, day: date) -> list[Bar]:
    """The file's regular-session (09:30 <= t < 16:00 local) bars of ``day``; the CSV offsets are local."""
    return [
        b
        for b in read_csv_bars(path)
        if b.timestamp.date() == day and time(9, 30) <= b.timestamp.time() < time(16, 0)
    ]


def remove_runs(full: list[Bar], runs: list[range]) -> tuple[list[Bar], list[Bar]]:
    """(kept, removed) after removing the given index runs (negative indices count from the end)."""
    n = len(full)
    gone = {i % n for r in runs for i in r}
    return [b for i, b in enumerate(full) if i not in gone], [b for i, b in enumerate(full) if i in gone]


# Runs of minutes removed from a full session: the first minutes, the middle, a single minute, the last ones.
REMOVED_RUNS = [range(3), range(100, 110), range(200, 201), range(250, 252), range(-2, 0)]


def reference_store(symbol: str, day: date, bars: list[Bar]) -> SessionData:
    ref = SessionData()
    ref.start_new_session(day)
    ref.add_bars_batch(symbol, bars)
    ref.end_session()
    return ref


def assert_same_as_reference(store: SessionData, ref: SessionData, symbol: str) -> None:
    assert store.get_bars(symbol) == ref.get_bars(symbol)
    got, want = store.get_session_metrics(symbol), ref.get_session_metrics(symbol)
    assert {k: got[k] for k in METRIC_KEYS} == {k: want[k] for k in METRIC_KEYS}
    assert got["bar_count"] == want["bar_count"]
    for interval in (5, 15):
        assert store.get_bars(symbol, interval) == ref.get_bars(symbol, interval), f"{interval}m bars"
    check_store(store)


def open_minutes(status: dict[str, Any], symbol: str) -> list[str]:
    """The symbol's open-gap minutes from `status()`, as exchange-local ``HH:MM`` strings."""
    out: list[str] = []
    for start, _end, count in status["symbols"][symbol]["open_gaps"]:
        out.extend((start + i * M).strftime("%H:%M") for i in range(count))
    return out


def readme_missing(readme: Path, symbol: str, day: date) -> list[str]:
    """The README's "which minutes" column for one symbol-day, expanded to ``HH:MM`` strings."""
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 9 and cells[0] == symbol and cells[1].startswith(day.isoformat()):
            out: list[str] = []
            for item in filter(None, (s.strip() for s in cells[-1].split(","))):
                m = re.fullmatch(r"(\d\d):(\d\d)(?:-(\d\d):(\d\d))?", item)
                assert m, item
                first = int(m[1]) * 60 + int(m[2])
                last = first if m[3] is None else int(m[3]) * 60 + int(m[4])
                out.extend(f"{k // 60:02d}:{k % 60:02d}" for k in range(first, last + 1))
            return out
    raise AssertionError(f"{symbol} {day} not in {readme}")


def sessiondata_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sessiondata")]


def wait_until(predicate: Any, store: SessionData, deadline: float = DEADLINE) -> bool:
    """Wait (on the store's change notification, no polling sleep) until ``predicate()`` holds."""
    end = _time.monotonic() + deadline
    while not predicate():
        left = end - _time.monotonic()
        if left <= 0:
            return bool(predicate())
        # Wakes on the next write (the upkeep's fills are writes); the timeout only re-checks the predicate.
        store.wait_for_update(after_version=store.version, timeout=min(left, 0.05))
    return True


@pytest.fixture
def lean(real_data: Path) -> Path:
    return real_data / "quantconnect_lean"


@pytest.fixture
def sqlite_repo(lean: Path, tmp_path: Path) -> Iterator[SqliteBarRepository]:
    with SqliteBarRepository(tmp_path / "bars.db") as repo:
        for path in sorted(lean.glob("*_1m.csv")):
            report = repo.import_csv(path)
            assert report.added > 0
            assert report.rejected == 0
        yield repo


# ----------------------------------------------------------------------------- real data, real SQLite


@pytest.mark.parametrize(("symbol", "day"), [("SPY", date(2013, 10, 7)), ("BAC", date(2013, 10, 9))])
def test_real_sqlite_fills_removed_minutes_back_to_the_full_session(
    lean: Path, sqlite_repo: SqliteBarRepository, symbol: str, day: date
) -> None:
    full = regular_bars(lean / f"{symbol}_1m.csv", day)
    assert len(full) == 390
    kept, removed = remove_runs(full, REMOVED_RUNS)
    store = SessionData()
    store.start_new_session(day)
    store.add_bars_batch(symbol, kept)
    repo = CountingRepo(sqlite_repo)
    up = DataUpkeepThread(store, repo, monotonic=FakeMonotonic(), rng=random.Random(0))

    # Without a clock, gaps are looked for up to the newest bar: everything but the last two minutes.
    status = up.run_once()
    assert store.get_bars(symbol) == full[:-2]
    assert status["symbols"][symbol]["open_gaps"] == []
    assert all(end <= full[-2].timestamp for _, _, end in repo.calls), "fetched past the newest bar"

    # Once the session has ended, the whole session is due: the last minutes are filled too.
    store.end_session()
    status = up.run_once()
    assert_same_as_reference(store, reference_store(symbol, day, full), symbol)
    assert len(store.get_bars(symbol, 5)) == 78
    assert len(store.get_bars(symbol, 15)) == 26
    assert store.get_session_metrics(symbol)["bar_quality"] == 100.0
    filled = {b.timestamp for b in removed}
    for b in full:
        want = Provenance.GAP_FILLED if b.timestamp in filled else Provenance.STREAMED
        assert store.get_provenance(symbol, b.timestamp) is want, b.timestamp
    sym = status["symbols"][symbol]
    assert sym["open_gaps"] == []
    assert sym["unfillable"] == 0
    assert sym["gaps_found"] == sym["bars_filled"] == len(removed)
    assert sym["bar_quality"] == 100.0
    assert status["faults"] == []
    assert status["last_error"] is None
    # One fetch per run of missing minutes, none repeated.
    assert len(repo.calls) == len(REMOVED_RUNS) == sym["fill_attempts"]


def test_real_aig_minute_missing_in_the_source_becomes_unfillable(
    lean: Path, sqlite_repo: SqliteBarRepository, caplog: pytest.LogCaptureFixture
) -> None:
    day = date(2013, 10, 7)
    full = regular_bars(lean / "AIG_1m.csv", day)
    hole = datetime(2013, 10, 7, 13, 47, tzinfo=EDT)
    assert len(full) == 389  # the README's one missing minute
    assert hole not in {b.timestamp for b in full}
    kept, removed = remove_runs(full, REMOVED_RUNS)
    store = SessionData()
    store.start_new_session(day)
    store.add_bars_batch("AIG", kept)
    store.end_session()
    clock = FakeMonotonic()
    repo = CountingRepo(sqlite_repo)
    up = DataUpkeepThread(
        store, repo, max_retries=3, retry_base=1.0, retry_cap=8.0, monotonic=clock, rng=random.Random(0)
    )
    with caplog.at_level(logging.WARNING, logger="sessiondata.upkeep"):
        for _ in range(10):
            status = up.run_once()
            clock.t += 100.0  # past any backoff
    assert_same_as_reference(store, reference_store("AIG", day, full), "AIG")
    assert store.get_bar_count("AIG") == 389
    quality = store.get_session_metrics("AIG")["bar_quality"]
    assert quality == pytest.approx(100.0 * 389 / 390)
    assert quality < 100.0
    sym = status["symbols"]["AIG"]
    assert sym["unfillable"] == 1
    assert status["unfillable"] == 1
    assert open_minutes(status, "AIG") == ["13:47"]
    assert sym["open_gaps"][0][0] == hole
    assert sym["open_gaps"][0][2] == 1
    assert sym["bars_filled"] == len(removed)
    assert sym["bar_quality"] == quality
    # Asked max_retries times, then never again however many passes follow.
    assert repo.calls_covering(hole) == 3
    unfillable_logs = [r for r in caplog.records if "AIG" in r.getMessage() and "13:47" in r.getMessage()]
    assert len(unfillable_logs) == 1
    assert unfillable_logs[0].levelno == logging.WARNING


def test_real_shy_after_dst_fills_only_what_the_repository_has(
    real_data: Path, lean: Path, sqlite_repo: SqliteBarRepository
) -> None:
    day = date(2008, 3, 10)  # the first session after the 2008-03-09 change: bars carry -04:00
    full = regular_bars(lean / "SHY_1m.csv", day)
    assert len(full) == 313
    assert all(b.timestamp.utcoffset() == timedelta(hours=-4) for b in full)
    kept, removed = remove_runs(full, [range(2), range(50, 56), range(150, 151), range(-1, 0)])
    store = SessionData()
    store.start_new_session(day)
    store.add_bars_batch("SHY", kept)
    store.end_session()
    clock = FakeMonotonic()
    repo = CountingRepo(sqlite_repo)
    up = DataUpkeepThread(store, repo, max_retries=2, retry_base=1.0, monotonic=clock, rng=random.Random(0))
    for _ in range(4):
        status = up.run_once()
        clock.t += 100.0
    # Nothing invented: exactly the file's bars, the removed ones marked as filled.
    assert_same_as_reference(store, reference_store("SHY", day, full), "SHY")
    filled = {b.timestamp for b in removed}
    assert {
        b.timestamp
        for b in store.get_bars("SHY")
        if store.get_provenance("SHY", b.timestamp) is Provenance.GAP_FILLED
    } == filled
    missing = readme_missing(real_data / "README.md", "SHY", day)
    assert len(missing) == 77
    assert open_minutes(status, "SHY") == missing
    assert status["symbols"]["SHY"]["unfillable"] == 77
    assert status["symbols"]["SHY"]["bars_filled"] == len(removed)
    # Open gaps are reported in the exchange zone, on the right instants after the DST change.
    first_gap = status["symbols"]["SHY"]["open_gaps"][0][0]
    assert first_gap == datetime(2008, 3, 10, 9, 32, tzinfo=EDT)


def test_backtest_clock_bounds_gaps_to_now_never_the_future(
    lean: Path, sqlite_repo: SqliteBarRepository
) -> None:
    """Gaps are looked for up to the clock's time, never beyond: per the upkeep's docstring, a minute is
    due once it ended one minute before ``now()`` (a grace minute for bars still on their way)."""
    day = date(2013, 10, 8)
    full = regular_bars(lean / "SPY_1m.csv", day)
    noon = datetime(2013, 10, 8, 12, 0, tzinfo=EDT)

    def due_by(now: datetime) -> list[Bar]:
        return [b for b in full if b.timestamp + M <= now - M]

    # Streamed so far: 09:30-10:59 with 10:00-10:09 missing; the clock is already at 12:00:30.
    kept = [b for i, b in enumerate(full) if b.timestamp < noon - 60 * M and not 30 <= i < 40]
    store = SessionData()
    store.start_new_session(day)
    store.add_bars_batch("SPY", kept)
    clock = TimeProvider("backtest", start=noon + timedelta(seconds=30))
    repo = CountingRepo(sqlite_repo)
    up = DataUpkeepThread(store, repo, time_provider=clock, monotonic=FakeMonotonic())

    for now in (noon + timedelta(seconds=30), noon + 5 * M, noon + 5 * M, noon + 61 * M):
        clock.advance_to(now)
        up.run_once()
        assert store.get_bars("SPY") == due_by(now), now
        assert max(end for _, _, end in repo.calls) <= now, "asked the repository for the future"
        assert up.status()["symbols"]["SPY"]["open_gaps"] == []
    assert store.get_bars("SPY")[-1].timestamp == noon + 59 * M
    assert store.get_provenance("SPY", noon + 59 * M) is Provenance.GAP_FILLED
    assert store.get_provenance("SPY", noon - 61 * M) is Provenance.STREAMED
    # Every minute fetched once: no minute was skipped at a pass boundary, none fetched twice.
    fetched = sum(int((end - start) / M) for _, start, end in repo.calls)
    assert fetched == len(due_by(noon + 61 * M)) - len(kept)
    check_store(store)


# ------------------------------------------------------------------------------- retries and backoff

OPEN = datetime(2024, 3, 5, 9, 30)  # a Tuesday


def mk(i: int, px: float = 100.0, symbol: str = "ABC") -> Bar:
    return Bar(symbol, OPEN + i * M, px, px + 1.0, px - 1.0, px + 0.5, 100 + i)


def lacking_repo(missing: set[int], n: int = 390, symbol: str = "ABC") -> CountingRepo:
    return CountingRepo(InMemoryBarRepository([mk(i, symbol=symbol) for i in range(n) if i not in missing]))


def fetch_times(
    *,
    max_retries: int,
    retry_base: float,
    retry_cap: float,
    jitter: float,
    seed: int,
    step: float,
    until: float,
) -> tuple[list[float], DataUpkeepThread]:
    """Drive passes every ``step`` fake seconds; the fake times at which the missing minute was fetched."""
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(21) if i != 10])
    repo = lacking_repo({10})
    clock = FakeMonotonic()
    up = DataUpkeepThread(
        store,
        repo,
        max_retries=max_retries,
        retry_base=retry_base,
        retry_cap=retry_cap,
        jitter=jitter,
        rng=random.Random(seed),
        monotonic=clock,
    )
    times: list[float] = []
    for k in range(int(until / step) + 1):
        clock.t = k * step
        before = repo.calls_covering(OPEN + 10 * M)
        up.run_once()
        if repo.calls_covering(OPEN + 10 * M) > before:
            times.append(clock.t)
    return times, up


def test_missing_minute_is_retried_only_when_due_with_doubling_delays() -> None:
    times, up = fetch_times(
        max_retries=5, retry_base=1.0, retry_cap=1000.0, jitter=0.0, seed=0, step=0.25, until=60.0
    )
    # Attempt 1 at once, then after 1, 2, 4 and 8 s: 240 passes, 5 fetches, then never again.
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0]
    status = up.status()
    assert status["symbols"]["ABC"]["unfillable"] == 1
    assert status["symbols"]["ABC"]["fill_attempts"] == 5
    assert status["passes"] == 241


def test_backoff_is_capped() -> None:
    times, _ = fetch_times(
        max_retries=6, retry_base=1.0, retry_cap=2.0, jitter=0.0, seed=0, step=0.25, until=30.0
    )
    assert [b - a for a, b in itertools.pairwise(times)] == [1.0, 2.0, 2.0, 2.0, 2.0]


def test_jittered_backoff_grows_exponentially_and_is_reproducible_with_a_seeded_rng() -> None:
    kw: dict[str, Any] = {
        "max_retries": 6,
        "retry_base": 1.0,
        "retry_cap": 1000.0,
        "jitter": 0.5,
        "step": 0.01,
        "until": 40.0,
    }
    times, _ = fetch_times(seed=0, **kw)
    again, _ = fetch_times(seed=0, **kw)
    other, _ = fetch_times(seed=1, **kw)
    assert times == again
    assert times != other
    delays = [b - a for a, b in itertools.pairwise(times)]
    assert len(delays) == 5
    for n, d in enumerate(delays):
        nominal = 2.0**n
        # Jitter scales the nominal delay by a factor in [1 - jitter, 1]; passes run every `step`.
        assert 0.5 * nominal - 0.011 <= d <= nominal + 0.011, (n, d)
    assert delays[-1] > 4 * delays[0]


def test_unfillable_minute_is_never_fetched_again_even_as_new_data_arrives() -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(21) if i != 10])
    repo = lacking_repo({10})
    clock = FakeMonotonic()
    up = DataUpkeepThread(store, repo, max_retries=2, retry_base=1.0, monotonic=clock, rng=random.Random(0))
    for k in range(5):
        clock.t = 10.0 * k
        up.run_once()
    assert repo.calls_covering(OPEN + 10 * M) == 2
    calls = len(repo.calls)
    for i in range(21, 60):  # more streamed data, some of it with new gaps the repository has
        if i % 7:
            store.add_bar("ABC", mk(i))
        clock.t += 1000.0
        up.run_once()
    assert repo.calls_covering(OPEN + 10 * M) == 2
    assert len(repo.calls) > calls  # the new gaps were fetched
    assert [b.timestamp for b in store.get_bars("ABC")] == [OPEN + i * M for i in range(60) if i != 10]
    assert open_minutes(up.status(), "ABC") == ["09:40"]


def test_a_minute_streamed_after_it_was_found_missing_is_no_longer_fetched() -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(21) if i != 10])
    repo = lacking_repo({10})
    clock = FakeMonotonic()
    up = DataUpkeepThread(store, repo, max_retries=5, retry_base=1.0, monotonic=clock, rng=random.Random(0))
    up.run_once()
    assert open_minutes(up.status(), "ABC") == ["09:40"]
    store.add_bar("ABC", mk(10, px=50.0))  # the late streamed bar
    clock.t = 1000.0
    status = up.run_once()
    assert repo.calls_covering(OPEN + 10 * M) == 1
    assert status["symbols"]["ABC"]["open_gaps"] == []
    assert status["symbols"]["ABC"]["unfillable"] == 0
    assert store.get_bars("ABC", start=OPEN + 10 * M, end=OPEN + 11 * M) == [mk(10, px=50.0)]
    assert store.get_provenance("ABC", OPEN + 10 * M) is Provenance.STREAMED


def test_without_a_repository_gaps_are_reported_not_filled() -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10) if i not in (3, 4, 7)])
    status = DataUpkeepThread(store).run_once()
    assert open_minutes(status, "ABC") == ["09:33", "09:34", "09:37"]
    assert status["gaps_found"] == 3
    assert status["bars_filled"] == 0
    assert status["fill_attempts"] == 0
    assert store.get_bar_count("ABC") == 7


def test_symbols_option_limits_the_upkeep() -> None:
    store = SessionData()
    for sym in ("ABC", "XYZ"):
        store.add_bars_batch(sym, [mk(i, symbol=sym) for i in range(10) if i != 5])
    repo = CountingRepo(InMemoryBarRepository([mk(i, symbol=s) for s in ("ABC", "XYZ") for i in range(10)]))
    DataUpkeepThread(store, repo, symbols=["abc"]).run_once()
    assert store.get_bar_count("ABC") == 10
    assert store.get_bar_count("XYZ") == 9
    assert {c[0] for c in repo.calls} == {"ABC"}


def test_a_new_session_starts_from_a_clean_slate() -> None:
    store = SessionData()
    store.start_new_session(OPEN.date())
    store.add_bars_batch("ABC", [mk(i) for i in range(10) if i != 5])
    up = DataUpkeepThread(store, None)
    assert open_minutes(up.run_once(), "ABC") == ["09:35"]
    nxt = OPEN + timedelta(days=1)
    store.start_new_session(nxt.date())
    store.add_bars_batch(
        "ABC", [Bar("ABC", nxt + i * M, 10.0, 11.0, 9.0, 10.0, 1) for i in range(5) if i != 2]
    )
    status = up.run_once()
    assert open_minutes(status, "ABC") == ["09:32"]
    assert status["symbols"]["ABC"]["gaps_found"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period": 0},
        {"period": -1.0},
        {"max_retries": 0},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"fetch_timeout": 0},
        {"retry_base": -1.0},
        {"min_interval": -1.0},
    ],
)
def test_bad_arguments_are_value_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DataUpkeepThread(SessionData(), None, **kwargs)


# --------------------------------------------------------------------------------- the running thread


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    """Fails the test if a sessiondata thread it started is still alive afterwards (after a deadline)."""
    before = set(sessiondata_threads())
    yield
    for t in sessiondata_threads():
        if t not in before:
            t.join(DEADLINE)
    assert [t.name for t in sessiondata_threads() if t not in before] == []


def full_repo(symbol: str = "ABC") -> InMemoryBarRepository:
    return InMemoryBarRepository([mk(i, symbol=symbol) for i in range(390)])


def test_start_runs_a_first_pass_at_once(no_thread_leak: None) -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(20) if i not in (3, 4, 12)])
    up = DataUpkeepThread(store, full_repo(), period=60.0)
    up.start()
    try:
        # No waiting: start() returns after its first pass.
        assert up.status()["passes"] >= 1
        assert store.get_bars("ABC") == [mk(i) for i in range(20)]
        assert up.is_alive()
        assert up.status()["running"]
        with pytest.raises(RuntimeError):
            up.start()
    finally:
        assert up.stop(timeout=DEADLINE)
    assert not up.is_alive()
    assert not up.status()["running"]


OLD_SPELLING = r"is a method now.*call is_alive\(\)"


def test_is_alive_is_a_method_and_the_old_property_spelling_still_works(no_thread_leak: None) -> None:
    # `is_alive()` as `threading.Thread.is_alive()`; the property spelling of the last release keeps its
    # meaning (the answer when read) with a DeprecationWarning, as a truth value and compared with a bool.
    up = DataUpkeepThread(SessionData(), full_repo(), period=60.0)
    assert up.is_alive() is False
    with pytest.warns(DeprecationWarning, match=OLD_SPELLING):
        assert not up.is_alive
    up.start()
    try:
        held = up.is_alive  # read while running
        assert up.is_alive() is True
        with pytest.warns(DeprecationWarning, match=OLD_SPELLING):
            assert up.is_alive
        with pytest.warns(DeprecationWarning, match=OLD_SPELLING):
            assert up.is_alive == True  # noqa: E712 - the old spelling compared with a bool
    finally:
        assert up.stop(timeout=DEADLINE)
    assert held() is False  # called: the live answer
    with pytest.warns(DeprecationWarning, match=OLD_SPELLING):
        assert bool(held) is True  # as a truth value: the answer when it was read
    with pytest.warns(DeprecationWarning, match=OLD_SPELLING):
        assert up.is_alive == False  # noqa: E712
    assert up.is_alive != "False"
    assert "call it" in repr(up.is_alive)


def test_a_write_wakes_the_thread_long_before_its_period(no_thread_leak: None) -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10)])
    with DataUpkeepThread(store, full_repo(), period=60.0) as up:
        store.add_bar("ABC", mk(15))  # minutes 10-14 are now missing
        assert wait_until(lambda: store.get_bar_count("ABC") == 16, store)
        assert store.get_bars("ABC") == [mk(i) for i in range(16)]
        assert {store.get_provenance("ABC", OPEN + i * M) for i in range(10, 15)} == {Provenance.GAP_FILLED}
        assert wait_until(lambda: up.status()["bars_filled"] == 5, store)
    assert not up.is_alive()


def test_a_write_made_during_a_pass_is_not_missed(no_thread_leak: None) -> None:
    """A write that lands while a pass runs (after the pass read the store) must trigger another pass.

    The repository double makes the interleaving deterministic: while the thread's pass fetches the first
    gap, another write opens a second gap. With a 60 s period, only that write can wake the thread in time.
    """
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10)])
    inner = full_repo()
    wrote = threading.Event()

    class WritesDuringFetch:
        def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
            if not wrote.is_set():
                wrote.set()
                store.add_bar("ABC", mk(30))  # opens the gap 16-29, during the pass
            return inner.get_bars(symbol, start, end, interval)

    with DataUpkeepThread(store, WritesDuringFetch(), period=60.0):
        store.add_bar("ABC", mk(15))  # gap 10-14: the thread's pass fetches it
        assert wait_until(lambda: store.get_bar_count("ABC") == 31, store), (
            f"only {store.get_bar_count('ABC')} bars: the write made during the pass did not wake the thread"
        )
    assert store.get_bars("ABC") == [mk(i) for i in range(31)]


def test_an_idle_thread_does_not_busy_poll(no_thread_leak: None) -> None:
    """With nothing written and a 60 s period, no pass runs after the first (observed over a short window:
    a slow machine can only make this pass more easily). Checked on an empty store and on one with data."""
    for bars in ([], [mk(i) for i in range(10)]):
        store = SessionData()
        if bars:
            store.add_bars_batch("ABC", bars)
        with DataUpkeepThread(store, full_repo(), period=60.0) as up:
            threading.Event().wait(0.3)
            passes = up.status()["passes"]
        assert passes <= 2, f"{passes} passes in 0.3 s with no writes ({len(bars)} bars stored): busy-polling"


def test_pause_stops_passes_and_resume_runs_them_again(no_thread_leak: None) -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10)])
    with DataUpkeepThread(store, full_repo(), period=60.0) as up:
        up.pause()
        assert up.status()["paused"]
        # With a 60 s period the thread only runs a pass after a write, so none is in progress here.
        passes = up.status()["passes"]
        for i in (15, 20, 25):  # each write would wake a running thread
            store.add_bar("ABC", mk(i))
        threading.Event().wait(0.3)  # the observation window; a slow machine cannot make this fail
        assert up.status()["passes"] == passes
        assert store.get_bar_count("ABC") == 13  # nothing filled while paused
        up.resume()
        assert not up.status()["paused"]
        assert wait_until(lambda: store.get_bar_count("ABC") == 26, store), (
            f"{store.get_bar_count('ABC')} bars after resume: writes made while paused were not acted upon"
        )
        assert up.status()["passes"] > passes
    assert store.get_bars("ABC") == [mk(i) for i in range(26)]


def test_context_manager_stops_and_leaves_no_thread(no_thread_leak: None) -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(5)])
    with DataUpkeepThread(store, full_repo(), period=60.0) as up:
        assert up.is_alive()
        assert any(t.name.startswith("sessiondata") for t in threading.enumerate())
    assert not up.is_alive()
    assert up.stop(timeout=1.0) is True  # idempotent
    assert DataUpkeepThread(SessionData(), None).stop(timeout=1.0) is True  # never started


def test_thread_and_a_writer_under_switch_often_end_with_the_full_data(
    lean: Path, sqlite_repo: SqliteBarRepository, switch_often: None, no_thread_leak: None
) -> None:
    day = date(2013, 10, 10)
    full = regular_bars(lean / "SPY_1m.csv", day)
    streamed, removed = remove_runs(
        full, [range(2), *(range(i, i + 3) for i in range(20, 380, 25)), range(-1, 0)]
    )
    store = SessionData()
    store.start_new_session(day)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for b in streamed:
                store.add_bar("SPY", b)
            store.end_session()
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    with DataUpkeepThread(store, sqlite_repo, period=0.05, retry_base=0.0) as up:
        w = threading.Thread(target=writer, name="test-writer")
        w.start()
        w.join(DEADLINE)
        assert not w.is_alive()
        assert errors == []
        assert wait_until(lambda: store.get_bar_count("SPY") == 390, store)
        assert up.is_alive()
    assert_same_as_reference(store, reference_store("SPY", day, full), "SPY")
    filled = {b.timestamp for b in removed}
    for b in full:
        want = Provenance.GAP_FILLED if b.timestamp in filled else Provenance.STREAMED
        assert store.get_provenance("SPY", b.timestamp) is want
    status = up.status()
    assert status["faults"] == []
    assert status["symbols"]["SPY"]["open_gaps"] == []


@pytest.mark.parametrize("clock", ["live", "backtest past the session", "none, a stray later bar"])
def test_gaps_are_looked_for_in_the_store_session_only(clock: str) -> None:
    # The store holds one session: a clock (or a bar) past its close makes the rest of that session due,
    # never minutes of a later session (they were filled into this one, with a pass per later weekday).
    def day_bars(day: date) -> list[Bar]:
        start = datetime.combine(day, time(9, 30))
        return [Bar("A", start + timedelta(minutes=m), 10.0, 10.5, 9.5, 10.0, 100) for m in range(390)]

    first, second = date(2024, 1, 2), date(2024, 1, 3)
    repo = CountingRepo(InMemoryBarRepository(day_bars(first) + day_bars(second)))
    store = SessionData()
    store.start_new_session(first)
    store.add_bar("A", day_bars(first)[0])
    store.add_bar("A", day_bars(first)[4])
    if clock == "live":
        provider: TimeProvider | None = TimeProvider("live")
    elif clock == "backtest past the session":
        provider = TimeProvider("backtest", start=datetime(2024, 1, 3, 12, 0))
    else:
        provider = None
        store.add_bar("A", day_bars(second)[100])  # a stray bar of the next day, no new session
    up = DataUpkeepThread(store, repo, time_provider=provider)
    up.run_once()
    bars = store.get_bars("A", start=datetime(2024, 1, 2), end=datetime(2024, 1, 3))
    assert len(bars) == 390  # the whole first session, filled
    later = store.get_bars("A", start=datetime(2024, 1, 3), end=datetime(2024, 1, 4))
    assert len(later) == (1 if provider is None else 0)  # nothing of the second session was filled
    assert store.current_session_date == first
    assert {c[1].date() for c in repo.calls} == {first}  # the repository was asked about this session only
    assert up.status()["gaps_found"] == 388


def test_a_backtest_upkeep_acts_as_a_hand_driven_clock_passes_missing_minutes() -> None:
    # No coordinator: whoever moves the simulated clock runs the pass due, at that simulated time, before
    # `advance_to` returns (no thread, no wall-clock wake-up, nothing to wait for).
    day = date(2024, 1, 2)
    start = datetime.combine(day, time(9, 30))
    repo = CountingRepo(
        InMemoryBarRepository(
            [Bar("A", start + timedelta(minutes=m), 10.0, 10.5, 9.5, 10.0, 100) for m in range(390)]
        )
    )
    store = SessionData()
    store.start_new_session(day)
    clock = TimeProvider("backtest", start=start + timedelta(minutes=1))
    up = DataUpkeepThread(store, repo, time_provider=clock, period=0.01)
    up.start()
    store.add_bar("A", repo.inner.get_bars("A", start, start + M)[0])
    store.add_bar("A", repo.inner.get_bars("A", start + 5 * M, start + 6 * M)[0])
    assert store.get_bar_count("A") == 2
    clock.advance_to(start + 7 * M)  # 09:37: minutes up to 09:35 are final
    assert [b.timestamp.minute for b in store.get_bars("A")] == [30, 31, 32, 33, 34, 35]
    assert up.status()["bars_filled"] == 4
    assert not up.is_alive()  # still no thread
    assert up.stop(timeout=1.0) is True
    clock.advance_to(start + 30 * M)  # after stop: no listener left
    assert store.get_bar_count("A") == 6
