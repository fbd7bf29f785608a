"""`DataUpkeepThread` against repositories that misbehave, and against a concurrent writer.

Each repository double fails in one way the issue names (raises; hangs past ``fetch_timeout``; answers with
bars outside the gap, for another symbol, of the wrong timestamp style, objects that are not bars, or bars
that bypassed validation). In every case: the store is never corrupted (``check_invariants``) and the good
bars of the same answer still land; the thread survives and later passes run; the fault is visible in
``status()["faults"]`` with its kind and logged once per symbol and kind however many passes see it.

Hanging doubles block on a `threading.Event` the test controls; ``fetch_timeout`` is the upkeep's own time
limit (a parameter under test), not a sleep used to synchronize. Every wait has a deadline and is asserted.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time as _time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from reference import check_store
from sessiondata import Bar, DataUpkeepThread, InMemoryBarRepository, Provenance, SessionData

M = timedelta(minutes=1)
OPEN = datetime(2024, 3, 5, 9, 30)  # a Tuesday
DEADLINE = 10.0  # seconds for something that should happen at once; only reached on failure
MISSING = (5, 6, 7, 12)  # minutes absent from the store at the start of each test


def mk(i: int, px: float = 100.0, symbol: str = "ABC") -> Bar:
    return Bar(symbol, OPEN + i * M, px, px + 1.0, px - 1.0, px + 0.5, 100 + i)


def bypass(i: int, **fields: Any) -> Bar:
    """A `Bar` that skipped the constructor's validation (built field by field)."""
    bar = object.__new__(Bar)
    good = mk(i)
    for name in ("symbol", "timestamp", "open", "high", "low", "close", "volume"):
        object.__setattr__(bar, name, fields.get(name, getattr(good, name)))
    return bar


FULL = InMemoryBarRepository([mk(i) for i in range(390)])


def start_store() -> SessionData:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(20) if i not in MISSING])
    return store


# Each double answers the good bars of the range but spoils minute 12 (so that it is retried every pass and
# the fault recurs); "raises" spoils everything.
BAD = 12


def spoiled(kind: str, symbol: str, start: datetime, end: datetime) -> list[Any]:
    good: list[Any] = [b for b in FULL.get_bars(symbol, start, end) if b.timestamp != OPEN + BAD * M]
    if not start <= OPEN + BAD * M < end:
        return good
    extra: dict[str, list[Any]] = {
        "outside_gap": [mk(100), mk(3, px=555.0)],  # a future minute, and a streamed minute with other values
        "wrong_symbol": [mk(BAD, symbol="XYZ")],
        "not_a_bar": [("ABC", OPEN + BAD * M, 1, 2, 0.5, 1, 10), None],
        "nan": [bypass(BAD, close=math.nan)],
        "high_below_low": [bypass(BAD, high=90.0, low=110.0)],
        "negative_volume": [bypass(BAD, volume=-5)],
        "aware": [Bar("ABC", (OPEN + BAD * M).replace(tzinfo=timezone.utc), 100.0, 101.0, 99.0, 100.5, 1)],
    }
    return good + extra[kind]


class FaultyRepo:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Any]:
        self.calls += 1
        if self.kind == "raises":
            raise ConnectionError(f"repository down while asked for {symbol} [{start}, {end})")
        return spoiled(self.kind, symbol, start, end)


FAULTS = {
    "raises": "repository_error",
    "outside_gap": "outside_gap",
    "wrong_symbol": "wrong_symbol",
    "not_a_bar": "invalid_bar",
    "nan": "invalid_bar",
    "high_below_low": "invalid_bar",
    "negative_volume": "invalid_bar",
    "aware": "timezone_style",
}


def warnings_for(caplog: pytest.LogCaptureFixture, symbol: str, kind: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "sessiondata.upkeep"
        and r.levelno == logging.WARNING
        and symbol in r.getMessage()
        and kind in r.getMessage()
    ]


def wait_for(predicate: Callable[[], bool], store: SessionData, deadline: float = DEADLINE) -> bool:
    """Wait on the store's change notification (re-checking at least every 50 ms) until ``predicate()``."""
    end = _time.monotonic() + deadline
    while not predicate():
        left = end - _time.monotonic()
        if left <= 0:
            return predicate()
        store.wait_for_update(after_version=store.version, timeout=min(left, 0.05))
    return True


def sessiondata_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sessiondata")]


def join_new_threads(before: set[threading.Thread]) -> list[str]:
    for t in sessiondata_threads():
        if t not in before:
            t.join(DEADLINE)
    return [t.name for t in sessiondata_threads() if t not in before]


# ------------------------------------------------------------------------------------ bad answers


@pytest.mark.parametrize("double", list(FAULTS))
def test_faulty_repository_never_corrupts_the_store_and_is_reported_once(
    double: str, caplog: pytest.LogCaptureFixture
) -> None:
    kind = FAULTS[double]
    store = start_store()
    repo = FaultyRepo(double)
    # A short period: the thread part below must not depend on how fast a write wakes the thread.
    up = DataUpkeepThread(store, repo, retry_base=0.0, max_retries=1000, period=0.2, rng=random.Random(0))
    caplog.set_level(logging.DEBUG, logger="sessiondata.upkeep")
    for _ in range(3):
        up.run_once()
        check_store(store)
    status = up.status()

    stored = store.get_bars("ABC")
    if double == "raises":
        assert stored == [mk(i) for i in range(20) if i not in MISSING]
    else:  # the good bars of the same answers landed; the spoiled minute did not
        assert stored == [mk(i) for i in range(20) if i != BAD]
        for i in (5, 6, 7):
            assert store.get_provenance("ABC", OPEN + i * M) is Provenance.GAP_FILLED
        assert store.get_provenance("ABC", OPEN + 3 * M) is Provenance.STREAMED
    assert store.get_bar_count("XYZ") == 0
    assert "XYZ" not in store.get_active_symbols()

    kinds = {(f["symbol"], f["kind"]) for f in status["faults"]}
    assert kinds == {("ABC", kind)}
    assert status["fault_count"] >= 3  # seen on every pass
    assert all(f["detail"] for f in status["faults"])
    assert status["last_error"] is not None
    assert kind in status["last_error"]
    assert open_minutes(status) == (["09:35", "09:36", "09:37", "09:42"] if double == "raises" else ["09:42"])
    assert len(warnings_for(caplog, "ABC", kind)) == 1

    # The thread survives the same repository: its first pass and a pass woken by a write both run.
    with up:
        passes, faults = up.status()["passes"], up.status()["fault_count"]
        store.add_bar("ABC", mk(25))  # opens 20-24
        assert wait_for(lambda: up.status()["passes"] > passes and up.status()["fault_count"] > faults, store)
        if double != "raises":
            assert wait_for(lambda: store.get_bar_count("ABC") == 25, store)
        assert up.is_alive()
        check_store(store)
    assert not up.is_alive()
    assert len(warnings_for(caplog, "ABC", kind)) == 1, "logged more than once per symbol and kind"
    assert store.get_bar_count("XYZ") == 0


def open_minutes(status: dict[str, Any], symbol: str = "ABC") -> list[str]:
    out: list[str] = []
    for start, _end, count in status["symbols"][symbol]["open_gaps"]:
        out.extend((start + i * M).strftime("%H:%M") for i in range(count))
    return out


def test_a_repository_failing_for_one_symbol_does_not_hold_back_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = start_store()
    store.add_bars_batch("BAD", [mk(i, symbol="BAD") for i in range(20) if i not in MISSING])
    good = InMemoryBarRepository([mk(i, symbol=s) for s in ("ABC", "BAD") for i in range(20)])

    class FailsForBad:
        def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
            if symbol == "BAD":
                raise TimeoutError("socket timed out")
            return good.get_bars(symbol, start, end, interval)

    up = DataUpkeepThread(store, FailsForBad(), retry_base=0.0, max_retries=1000)
    with caplog.at_level(logging.WARNING, logger="sessiondata.upkeep"):
        for _ in range(3):
            up.run_once()
    assert store.get_bars("ABC") == [mk(i) for i in range(20)]
    assert store.get_bar_count("BAD") == 20 - len(MISSING)
    status = up.status()
    assert {(f["symbol"], f["kind"]) for f in status["faults"]} == {("BAD", "repository_error")}
    assert "TimeoutError" in status["faults"][-1]["detail"]
    assert len(warnings_for(caplog, "BAD", "repository_error")) == 1
    check_store(store)


# ---------------------------------------------------------------------------------------- hanging


class HangingRepo:
    """Blocks every call until ``release`` is set, then answers like the full repository."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        self.calls += 1
        self.entered.set()
        self.release.wait(60.0)  # bounded so that a failing test cannot leave it blocked for ever
        return FULL.get_bars(symbol, start, end, interval)


@pytest.fixture
def hanging() -> Iterator[HangingRepo]:
    repo = HangingRepo()
    before = set(sessiondata_threads())
    yield repo
    repo.release.set()
    assert join_new_threads(before) == []


def test_a_fetch_hanging_past_its_timeout_is_abandoned_and_its_late_answer_discarded(
    hanging: HangingRepo, caplog: pytest.LogCaptureFixture
) -> None:
    before = set(sessiondata_threads())
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10) if i not in (5, 6, 7)])
    up = DataUpkeepThread(store, hanging, fetch_timeout=0.2, retry_base=0.0, max_retries=1000)
    with caplog.at_level(logging.WARNING, logger="sessiondata.upkeep"):
        status = up.run_once()  # returns after the fetch timed out
    assert hanging.entered.is_set()
    assert [(f["symbol"], f["kind"]) for f in status["faults"]] == [("ABC", "repository_timeout")]
    assert status["abandoned_fetches"] == 1
    assert len(warnings_for(caplog, "ABC", "repository_timeout")) == 1
    assert store.get_bar_count("ABC") == 7
    version = store.version

    hanging.release.set()  # the abandoned fetch now returns its bars: they must be dropped
    assert join_new_threads(before) == []
    assert store.version == version
    assert store.get_bar_count("ABC") == 7
    check_store(store)

    status = up.run_once()  # the repository answers now: the next pass fills the gap
    assert store.get_bars("ABC") == [mk(i) for i in range(10)]
    assert status["abandoned_fetches"] == 0
    assert status["symbols"]["ABC"]["open_gaps"] == []


def test_a_hung_repository_does_not_pile_up_fetch_threads(hanging: HangingRepo) -> None:
    """While one fetch hangs, passes must not start a new hanging thread for every gap and every pass.

    Without a bound, each pass against a hung repository leaks one thread per gap run (and each pass takes
    ``fetch_timeout`` per run): a live session with a dead repository would grow threads without limit.
    """
    store = SessionData()
    bars = [mk(i) for i in range(30) if i not in (5, 12, 20)]  # three separate gaps
    store.add_bars_batch("ABC", bars)
    up = DataUpkeepThread(store, hanging, fetch_timeout=0.1, retry_base=0.0, max_retries=1000)
    for _ in range(3):
        up.run_once()
    hung = up.status()["abandoned_fetches"]
    assert hung <= 1, f"{hung} fetch threads hang on one repository after 3 passes (calls: {hanging.calls})"


def test_stop_while_a_fetch_hangs_returns_within_its_timeout(hanging: HangingRepo) -> None:
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in range(10)])  # no gap: start()'s own pass does not fetch
    # A short period, so the thread's next pass does not depend on how fast the write wakes it.
    up = DataUpkeepThread(store, hanging, fetch_timeout=60.0, period=0.2)
    up.start()
    store.add_bar("ABC", mk(15))  # the thread's next pass fetches 10-14 and hangs
    assert hanging.entered.wait(DEADLINE), "the thread never fetched the new gap"
    began = _time.monotonic()
    finished = up.stop(timeout=1.0)
    took = _time.monotonic() - began
    assert took < 5.0, f"stop(timeout=1.0) took {took:.1f} s"
    assert finished is False  # the fetch thread is still hanging: stop says so
    assert not up.is_alive()
    status = up.status()
    assert status["abandoned_fetches"] == 1
    assert not status["running"]
    assert store.get_bar_count("ABC") == 11
    check_store(store)


# ------------------------------------------------------------------------------ concurrent writes


class StaleRepo:
    """An archive whose bars differ from the streamed ones (price 200): a fill is recognisable by value.

    With ``hold``, the first call signals ``entered`` and waits for ``go`` before answering, so the test
    can make a writer stream bars exactly while the upkeep's fetch is in flight.
    """

    def __init__(self, hold: bool = False) -> None:
        self.inner = InMemoryBarRepository([mk(i, px=200.0) for i in range(390)])
        self.hold = hold
        self.entered = threading.Event()
        self.go = threading.Event()

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        if self.hold and not self.entered.is_set():
            self.entered.set()
            self.go.wait(DEADLINE)
        result: list[Bar] = self.inner.get_bars(symbol, start, end, interval)
        return result


def race_store() -> tuple[SessionData, DataUpkeepThread, StaleRepo, list[BaseException]]:
    """A store missing minutes 10-29; a pass (in a thread) fetching them; minutes 10-19 streamed meanwhile."""
    store = SessionData()
    store.add_bars_batch("ABC", [mk(i) for i in (*range(10), 30)])
    repo = StaleRepo(hold=True)
    up = DataUpkeepThread(store, repo, fetch_timeout=DEADLINE)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            up.run_once()
        except BaseException as exc:  # re-raised by the test
            errors.append(exc)

    t = threading.Thread(target=run, name="test-pass")
    t.start()
    assert repo.entered.wait(DEADLINE)
    store.add_bars_batch("ABC", [mk(i) for i in range(10, 20)])  # streamed while the fetch is in flight
    repo.go.set()
    t.join(DEADLINE)
    assert not t.is_alive()
    return store, up, repo, errors


def test_bars_streamed_during_a_fill_are_never_overwritten() -> None:
    store, _up, _repo, errors = race_store()
    assert errors == []
    for i in range(10, 20):
        assert store.get_bars("ABC", start=OPEN + i * M, end=OPEN + (i + 1) * M) == [mk(i)]
        assert store.get_provenance("ABC", OPEN + i * M) is Provenance.STREAMED
    for i in range(20, 30):
        assert store.get_bars("ABC", start=OPEN + i * M, end=OPEN + (i + 1) * M) == [mk(i, px=200.0)]
        assert store.get_provenance("ABC", OPEN + i * M) is Provenance.GAP_FILLED
    assert store.get_bar_count("ABC") == 31
    check_store(store)
    metrics = store.get_session_metrics("ABC")
    assert metrics["session_volume"] == sum(b.volume for b in store.get_bars("ABC"))


def test_status_counts_only_the_bars_the_fill_actually_stored() -> None:
    """``bars_filled`` must count the fills that landed: the 10 minutes streamed while the fetch was in
    flight were skipped by ``replace=False`` and are not gap-filled bars."""
    store, up, _repo, errors = race_store()
    assert errors == []
    filled = sum(
        1 for b in store.get_bars("ABC") if store.get_provenance("ABC", b.timestamp) is Provenance.GAP_FILLED
    )
    assert filled == 10
    status = up.status()["symbols"]["ABC"]
    assert status["open_gaps"] == []
    assert status["bars_filled"] == filled


@pytest.mark.parametrize("seed", range(3))
def test_writer_and_running_upkeep_race_fills_never_replace_streamed_bars(
    seed: int, switch_often: None
) -> None:
    """A writer streams minutes 0-119 out of order (some late) while the running upkeep fills from a stale
    archive. Whatever the interleaving: every minute the writer wrote ends with the writer's bar (as
    `STREAMED`, or `CORRECTION` when it replaced an earlier fill), the rest with the archive's bar."""
    rng = random.Random(seed)
    order = list(range(120))
    late = set(rng.sample(range(1, 119), 25))
    never = set(rng.sample(sorted(set(range(1, 119)) - late), 10))
    stream = [i for i in order if i not in late and i not in never]
    for i in sorted(late):  # each late minute arrives a few minutes after its time
        stream.insert(min(len(stream), stream.index(max(j for j in stream if j < i)) + rng.randint(1, 6)), i)
    store = SessionData()
    before = set(sessiondata_threads())
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in stream:
                store.add_bar("ABC", mk(i))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    with DataUpkeepThread(store, StaleRepo(), period=0.05, retry_base=0.0) as up:
        w = threading.Thread(target=writer, name="test-writer")
        w.start()
        w.join(DEADLINE * 3)
        assert not w.is_alive()
        assert errors == []
        assert wait_for(lambda: store.get_bar_count("ABC") == 120, store, DEADLINE * 3)
        assert up.is_alive()
    assert join_new_threads(before) == []
    check_store(store)
    for i in range(120):
        got = store.get_bars("ABC", start=OPEN + i * M, end=OPEN + (i + 1) * M)
        prov = store.get_provenance("ABC", OPEN + i * M)
        if i in never:
            assert got == [mk(i, px=200.0)]
            assert prov is Provenance.GAP_FILLED
        else:
            assert got == [mk(i)], f"minute {i}: a fill overwrote the streamed bar"
            assert prov in (Provenance.STREAMED, Provenance.CORRECTION), (i, prov)
            if i not in late:
                assert prov is Provenance.STREAMED, i
    assert up.status()["faults"] == []
