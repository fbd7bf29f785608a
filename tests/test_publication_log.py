"""The held `PublicationGate`'s log as the store's write paths fill it.

Under a gate the writers' dict is a plain dict and every write appends to the gate's log through the one
publish step the write paths share; `take` starts a new log and hands the store its ``append``. These tests
hold the log to the writes: whichever write path ran (the streamed lane, a batch, ticks, a new symbol, a
session boundary, `clear_all`) and however the log was cut, applying the segments in order shows readers
exactly what the writers left, and a write racing a `take` lands in exactly one segment.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, SessionData, Tick
from sessiondata.core.publication import PublicationGate
from sessiondata.core.snapshot import SymbolSessionData

DAY = date(2025, 1, 6)
SYMBOLS = ("A", "B", "C")


def _bar(symbol: str, minute: int) -> Bar:
    ts = datetime(2025, 1, 6, 9, 30) + timedelta(minutes=minute)
    return Bar(symbol, ts, 10.0, 10.5, 9.5, 10.0, 100 + minute)


def _writes(store: SessionData, op: tuple[str, int], minute: int) -> None:
    """One write of kind ``op[0]`` to symbol ``SYMBOLS[op[1]]`` at ``minute``."""
    kind, k = op
    symbol = SYMBOLS[k]
    if kind == "checked":
        store.add_checked_bar(symbol, _bar(symbol, minute))
    elif kind == "batch":
        store.add_bars_batch(symbol, [_bar(symbol, minute), _bar(symbol, minute + 1)])
    elif kind == "out_of_order":
        store.add_bar(symbol, _bar(symbol, max(0, minute - 7)))
    elif kind == "tick":
        store.add_tick(symbol, Tick(symbol, _bar(symbol, minute).timestamp, 10.0, 5))
    elif kind == "register":
        store.register_symbol(symbol)
    elif kind == "end":
        store.end_session()
    elif kind == "start":
        store.start_new_session(DAY)
    else:
        store.clear_all()


def _readers_see(store: SessionData) -> dict[str, Any]:
    return {
        "snapshots": {s: store.get_symbol_data(s) for s in store.get_active_symbols()},
        "version": store.version,
        "ended": store.session_ended,
        "date": store.current_session_date,
    }


def _writers_left(store: SessionData) -> dict[str, Any]:
    state = store.writer_state()
    return {
        "snapshots": dict(state.snapshots),
        "version": state.version,
        "ended": state.session_ended,
        "date": state.current_session_date,
    }


_OPS = st.tuples(
    st.sampled_from(["checked"] * 6 + ["batch", "out_of_order", "tick", "register", "end", "start", "clear"]),
    st.integers(0, len(SYMBOLS) - 1),
)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(_OPS, st.booleans()), min_size=1, max_size=40))
def test_applying_every_taken_segment_shows_what_the_writers_left(
    steps: list[tuple[tuple[str, int], bool]],
) -> None:
    """After each cut (`take` when the drawn flag says so), applying the segment shows readers the
    writers' state at that cut: every write path logged its publication, none twice, none into a log
    that `take` had already handed out."""
    store = SessionData(derived_intervals=(5,))
    store.start_new_session(DAY)
    gate = store.hold_publication()
    try:
        for minute, (op, cut) in enumerate(steps):
            _writes(store, op, minute * 2)
            if cut:
                expected = _writers_left(store)
                seg = gate.take()
                gate.upto(seg, len(seg))
                assert _readers_see(store) == expected
        expected = _writers_left(store)
        seg = gate.take()
        gate.upto(seg, len(seg))
        assert _readers_see(store) == expected
    finally:
        gate.close()
    assert _readers_see(store) == _writers_left(store)


def test_a_closed_gate_logs_nothing_more() -> None:
    """After `close` the store is back in direct mode: writes are visible at once and the gate's log
    (a new segment) stays empty."""
    store = SessionData()
    gate = store.hold_publication()
    store.add_checked_bar("A", _bar("A", 0))
    assert gate.take() != []
    gate.close()
    store.add_checked_bar("A", _bar("A", 1))
    store.add_checked_bar("B", _bar("B", 1))
    assert gate.take() == []
    latest = store.get_latest_bar("A")
    assert latest is not None
    assert latest.timestamp == _bar("A", 1).timestamp


def _take_until(gate: PublicationGate, done: threading.Event, segments: list[list[Any]]) -> None:
    deadline = time.monotonic() + 60.0
    while not done.is_set():
        assert time.monotonic() < deadline, "the writer thread did not finish"
        segments.append(gate.take())
    segments.append(gate.take())


def test_a_write_racing_take_lands_in_exactly_one_segment() -> None:
    """A writer thread streams bars while another thread keeps cutting the log: the segments together
    hold each write once, in write order, and applying them all shows the writers' final state."""
    store = SessionData(derived_intervals=())
    for s in SYMBOLS:
        store.register_symbol(s)
    gate = store.hold_publication()
    done = threading.Event()
    segments: list[list[Any]] = []
    minutes = 300
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        taker = threading.Thread(target=_take_until, args=(gate, done, segments))
        taker.start()
        try:
            for m in range(minutes):
                for s in SYMBOLS:
                    store.add_checked_bar(s, _bar(s, m))
        finally:
            done.set()
            taker.join(timeout=60.0)
        assert not taker.is_alive()
    finally:
        sys.setswitchinterval(old)
    entries = [e for seg in segments for e in seg]
    assert all(type(e) is SymbolSessionData for e in entries)
    assert len(entries) == minutes * len(SYMBOLS)
    versions = [snap.version for snap in entries]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    expected = _writers_left(store)
    for seg in segments:
        gate.upto(seg, len(seg))
    assert _readers_see(store) == expected
    gate.close()


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(_OPS, st.booleans(), st.booleans()), min_size=1, max_size=40),
    takes=st.sets(st.integers(0, 39)),
)
def test_each_mark_shows_the_writers_state_there_and_runs_the_steps_before_it(
    steps: list[tuple[tuple[str, int], bool, bool]], takes: set[int]
) -> None:
    """The consumer's step: marks recorded between writes (a logged call after some of them, a `take`
    after some), then each segment installed mark by mark with `upto`. At each mark readers see exactly
    the writers' state when it was recorded, and exactly the logged calls made before it have run, in
    order: runs of pairs between store-wide entries and steps are installed in bulk, never past a mark."""
    store = SessionData(derived_intervals=(5,))
    store.start_new_session(DAY)
    gate = store.hold_publication()
    ran: list[int] = []
    # Per segment: (mark, the writers' state then, the calls logged before it).
    plan: list[tuple[Any, list[tuple[int, dict[str, Any], int]]]] = []
    marks: list[tuple[int, dict[str, Any], int]] = []
    logged = 0
    try:
        for minute, (op, cut, call) in enumerate(steps):
            _writes(store, op, minute * 2)
            if cut:
                marks.append((gate.mark(), _writers_left(store), logged))
            if call:
                gate.record_step(ran.append, logged)
                logged += 1
            if minute in takes:
                plan.append((gate.take(), marks))
                marks = []
        plan.append((gate.take(), marks))
        for seg, seg_marks in plan:
            for mark, expected, calls in seg_marks:
                gate.upto(seg, mark)
                assert _readers_see(store) == expected
                assert ran == list(range(calls))
            gate.upto(seg, len(seg))
        assert _readers_see(store) == _writers_left(store)
        assert ran == list(range(logged))
    finally:
        gate.close()
