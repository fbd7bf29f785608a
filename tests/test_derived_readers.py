"""Readers of derived bars and the writer, on real threads: every answer a reader gets is the aggregation of
the 1-minute bars of the snapshot it read, and nothing a reader does (settling the lazy log, remembering
what it settled) changes what the writer publishes.

Thread switches are forced as often as the interpreter allows (``sys.setswitchinterval(1e-6)``, restored
after each test). No test depends on timing: the writer waits for the readers with a deadline, never a nap.
"""

from __future__ import annotations

import sys
import threading
import time as wall
from datetime import date, datetime, time, timedelta

import pytest

from reference import check_store, derive_from_scratch
from sessiondata import Bar, SessionData, SymbolSessionData

DAY = date(2025, 3, 10)
OPEN = datetime.combine(DAY, time(9, 30))
DEADLINE = 60.0
INTERVALS = (5, 15)

pytestmark = pytest.mark.usefixtures("switch_often")  # tests/conftest.py: switch interval 1e-6


def bar(minute: int, volume: int, day: date = DAY) -> Bar:
    price = 40.0 + (minute * 7 % 13) * 0.25 + volume % 3
    ts = datetime.combine(day, time(9, 30)) + timedelta(minutes=minute)
    return Bar("QQQ", ts, price, price + 0.5, price - 0.5, price + 0.25, volume)


def writes() -> list[tuple[str, Bar | None]]:
    """A session streamed in order with, every 17 bars, a correction of a bar 6 minutes back and, every
    40, a missing minute filled late (writes the lazy log cannot describe: the writer settles it); then
    `end_session`, a late bar after it, and the first bars of the next day."""
    out: list[tuple[str, Bar | None]] = []
    for m in range(200):
        if m % 40 == 39:
            continue  # filled late, below
        out.append(("add", bar(m, 100 + m)))
        if m % 17 == 16:
            out.append(("add", bar(m - 6, 7)))  # a correction
        if m % 40 == 3 and m > 40:
            out.append(("add", bar(m - 4, 500 + m)))  # the missing minute, late
    out += [("end", None), ("add", bar(205, 9)), ("add", bar(199, 11))]
    out += [("add", bar(m, 30 + m, DAY + timedelta(days=1))) for m in range(20)]
    return out


def reference_answers(snap: SymbolSessionData, store: SessionData) -> dict[int, list[Bar]]:
    """The aggregation of the snapshot's 1-minute bars, by the slow reference (forming windows included)."""
    return {k: derive_from_scratch(list(snap.bars_1m), store.session_clock, k) for k in INTERVALS}


def read_answers(snap: SymbolSessionData) -> dict[int, list[Bar]]:
    """What a reader of derived bars sees in the snapshot: completed bars, then the forming one."""
    out = {}
    for k in INTERVALS:
        bars = snap.get_bars(k)
        forming = snap.get_forming_bar(k)
        out[k] = bars + ([] if forming is None else [forming])
    return out


def apply(store: SessionData, write: tuple[str, Bar | None]) -> None:
    kind, item = write
    if kind == "end":
        store.end_session()
    else:
        assert item is not None
        store.add_bar("QQQ", item)


@pytest.mark.parametrize("derivation", ["lazy", "eager"])
def test_many_readers_of_derived_bars_see_the_aggregation_of_their_snapshot(derivation: str) -> None:
    """Six readers read one symbol's 5- and 15-minute bars (racing to settle and remember the lazy log)
    while the writer streams, corrects, fills late and ends the session. Each answer must equal the
    reference aggregation of the 1-minute bars of the snapshot it came from; and the writer must publish
    exactly what a store nobody read publishes (same versions, same bars)."""
    assert sys.getswitchinterval() < 1e-5, "switch_often is in force"
    store = SessionData(derived_intervals=INTERVALS, derivation=derivation)
    quiet = SessionData(derived_intervals=INTERVALS, derivation=derivation)  # the same writes, no reader
    n_readers = 6
    done = threading.Event()
    progress = threading.Condition()
    seen = [0] * n_readers  # per reader: the newest store version it has checked
    checked = [0] * n_readers
    errors: list[BaseException] = []

    def reader(slot: int) -> None:
        try:
            while not done.is_set():
                snap = store.get_symbol_data("QQQ")
                if snap is not None:
                    got = read_answers(snap)
                    assert got == reference_answers(snap, store), f"reader {slot} at {snap.bars_version}"
                    checked[slot] += 1
                    with progress:
                        seen[slot] = max(seen[slot], snap.version)
                        progress.notify_all()
        except BaseException as e:  # re-raised by the test thread
            errors.append(e)
            with progress:
                seen[slot] = sys.maxsize
                progress.notify_all()

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(n_readers)]
    try:
        for t in threads:
            t.start()
        for i, write in enumerate(writes()):
            apply(store, write)
            apply(quiet, write)
            if i % 20 == 19:
                # Let every reader check a snapshot this recent before writing on (a deadline, not a nap).
                version = store.version
                with progress:
                    caught_up = progress.wait_for(lambda v=version: min(seen) >= v, timeout=DEADLINE)
                assert caught_up, "readers stalled"
    finally:
        done.set()
        deadline = wall.monotonic() + DEADLINE
        for t in threads:
            t.join(max(0.0, deadline - wall.monotonic()))
    assert not any(t.is_alive() for t in threads), "a reader did not finish before its deadline"
    assert not errors, errors
    assert all(checked), "a reader never checked a snapshot"
    snap, alone = store.get_symbol_data("QQQ"), quiet.get_symbol_data("QQQ")
    assert snap is not None
    assert alone is not None
    assert (snap.bars_version, store.version) == (alone.bars_version, quiet.version)
    assert read_answers(snap) == read_answers(alone) == reference_answers(snap, store)
    check_store(store)


@pytest.mark.parametrize("read_between", [False, True])
def test_a_read_between_two_writes_changes_nothing_the_writer_publishes(read_between: bool) -> None:
    """A reader settling the log owed by `end_session` used to fill in the log's base, which the writer
    also reads to decide whether a second `end_session` has a flush to publish: with a read in between it
    published nothing (no new version), without one it did."""
    store = SessionData(derived_intervals=(5,))
    for m in range(7):
        store.add_bar("QQQ", bar(m, 10 + m))
    store.end_session()
    if read_between:
        assert [b.timestamp for b in store.get_bars("QQQ", 5)] == [OPEN, OPEN + timedelta(minutes=5)]
    store.end_session()
    snap = store.get_symbol_data("QQQ")
    assert snap is not None
    assert snap.bars_version == store.version == 9  # 7 bars, then each end_session publishes the flush
    assert [b.volume for b in snap.get_bars(5)] == [sum(range(10, 15)), 15 + 16]
