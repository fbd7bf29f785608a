"""`SessionData.writer_heads`: the writers' newest snapshots, live and lock-free, whose identity changes
exactly when the store's structure (symbols, session, lifecycle, publication gate) does.

The backtest upkeep's quick test relies on both halves: one identity test for "same symbols, same session,
not ended", and the values as writers left them (also under a publication gate, ahead of readers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, SessionData, Tick

DAY = date(2024, 3, 4)
OPEN = datetime(2024, 3, 4, 9, 30)
M = timedelta(minutes=1)


def _bar(symbol: str, i: int) -> Bar:
    return Bar(symbol, OPEN + i * M, 10.0, 10.5, 9.5, 10.0, 100 + i)


def _newest(heads: object, symbol: str) -> datetime | None:
    snap = heads[symbol]  # type: ignore[index]
    return None if snap.latest_bar is None else snap.latest_bar.timestamp


# Each operation: (name, does it change the structure?, apply it). A write to a known symbol changes
# only values; registering a new symbol (also by its first write), a session start or end, `clear_all`
# and a gate held or closed change the structure.
def _ops(store: SessionData, i: int) -> dict[str, tuple[bool, Callable[[], object]]]:
    known = sorted(store.writer_heads)
    first = known[0] if known else "A"
    return {
        "bar_known": (first not in store.writer_heads, lambda: store.add_bar(first, _bar(first, i))),
        "checked_bar_known": (
            first not in store.writer_heads,
            lambda: store.add_checked_bar(first, _bar(first, i)),
        ),
        "tick_known": (
            first not in store.writer_heads,
            lambda: store.add_tick(first, Tick(first, OPEN + i * M, 10.0, 1)),
        ),
        "batch_known": (
            first not in store.writer_heads,
            lambda: store.add_bars_batch(first, [_bar(first, i)]),
        ),
        "register_known": (first not in store.writer_heads, lambda: store.register_symbol(first)),
        "register_new": (True, lambda: store.register_symbol(f"N{i}")),
        "bar_new": (True, lambda: store.add_bar(f"B{i}", _bar(f"B{i}", i))),
        "end_session": (True, store.end_session),
        "start_session": (True, lambda: store.start_new_session(DAY + timedelta(days=i))),
        "clear_all": (True, store.clear_all),
    }


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(sorted(_ops(SessionData(), 0))), min_size=1, max_size=25))
def test_identity_changes_exactly_with_the_structure(names: list[str]) -> None:
    store = SessionData()
    for i, name in enumerate(names):
        structural, op = _ops(store, i)[name]
        before = store.writer_heads
        op()
        after = store.writer_heads
        assert (after is not before) is structural, name
        # Live: every symbol's value is the snapshot writers left, without the lock or a copy.
        assert dict(after) == dict(store.writer_state().snapshots)


def test_values_are_live_and_show_writes_a_gate_holds_back() -> None:
    store = SessionData()
    store.start_new_session(DAY)
    store.add_bar("A", _bar("A", 0))
    gate = store.hold_publication()
    try:
        heads = store.writer_heads
        store.add_checked_bar("A", _bar("A", 1))
        assert store.writer_heads is heads
        assert _newest(heads, "A") == OPEN + M  # the writers' state ...
        latest = store.get_latest_bar("A")
        assert latest is not None
        assert latest.timestamp == OPEN  # ... ahead of what readers see
        with pytest.raises(TypeError):
            heads["B"] = heads["A"]  # type: ignore[index]
    finally:
        gate.close()
    assert store.writer_heads is not heads  # the gate closed: a new dict for writers and readers
    assert _newest(store.writer_heads, "A") == OPEN + M


def test_read_while_another_thread_holds_the_write_lock() -> None:
    """No lock: the read completes while a writer holds the lock (a deadline, not a nap)."""
    store = SessionData()
    store.add_bar("A", _bar("A", 0))
    held = threading.Event()
    done = threading.Event()
    timed_out: list[bool] = []

    def hold() -> None:
        with store.write_lock:
            held.set()
            timed_out.append(not done.wait(timeout=10.0))

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(timeout=10.0)
    assert _newest(store.writer_heads, "A") == OPEN
    done.set()
    holder.join(timeout=10.0)
    assert timed_out == [False]


def test_a_dict_replaced_behind_its_back_never_passes_an_identity_test() -> None:
    """Should a write path replace the writers' dict without renewing the view, every read is a new object
    (a caller's identity test fails, so it looks closer) over the current dict."""
    store = SessionData()
    store.add_bar("A", _bar("A", 0))
    with store.write_lock:
        store._snapshots = dict(store._snapshots)  # what a careless write path would do
    first = store.writer_heads
    assert first is not store.writer_heads
    assert dict(first) == dict(store.writer_state().snapshots)
