"""The streamed write lane: `SessionData.add_checked_bar` and the streamed case of `add_bar`.

`add_bar` hands a streamed, checked bar to `add_checked_bar`, whose hot lane (`append_newest`) publishes
with one store into the writers' dict. These tests hold that lane to what the general path answers: the same
snapshot, field for field, whichever way a bar arrives (across session days, outside the session, out of
order, replacing, in either timezone style, derived lazily or eagerly); streamed writes with
``replace=False``; and publication through a held `PublicationGate`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_store
from sessiondata import Bar, Provenance, SessionData, SymbolSessionData
from sessiondata.core.quality import QualityState

NY = ZoneInfo("America/New_York")
DAY = date(2025, 1, 6)  # a Monday; the next session date is the Tuesday


def stamp(day: int, minute: int, aware: bool) -> datetime:
    """Minute ``minute`` from 09:30 of session day ``day`` (0 or 1), naive or as a fixed UTC offset."""
    wall = datetime.combine(DAY + timedelta(days=day), time(9, 30)) + timedelta(minutes=minute)
    if not aware:
        return wall
    return datetime.fromisoformat(wall.replace(tzinfo=NY).isoformat())  # its own tzinfo, as CSVs give


def bar(ts: datetime, price: float = 10.0, volume: int = 100) -> Bar:
    return Bar("T", ts, price, price + 0.5, price - 0.5, price, volume)


def quality_state(snap: SymbolSessionData) -> QualityState | None:
    """The bar-quality state a snapshot counts: the writer's, or, on a lazy store, the one its owed bars
    settle into (what the writer would settle before its next write that is not an in-order append)."""
    pending = snap.writer.derived_pending
    return snap.writer.quality_state if pending is None else pending.derive_quality(snap.bars_1m)


def fields(snap: SymbolSessionData | None) -> dict[str, Any]:
    """Everything a snapshot says (contract fields, versions, the writer's state), as comparable values."""
    assert snap is not None
    state = snap.writer
    qs = quality_state(snap)
    return {
        "bars_1m": list(snap.bars_1m),
        "derived": {k: list(v) for k, v in snap.bars_derived.items()},
        "forming": {k: snap.get_forming_bar(k) for k in snap.bars_derived},
        "quality": snap.bar_quality,
        "metrics": snap.get_session_metrics(),
        "latest": snap.latest_bar,
        "quality_state": qs[:3] if qs is not None else None,
        "tz_aware": state.tz_aware,
        "overrides": dict(state.provenance_overrides),
    }


# (session day, minute from the open: pre-market, session, post-market, seconds into the minute)
arrivals = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 1]),
        st.one_of(st.integers(-3, 12), st.integers(385, 392)),
        st.sampled_from([0, 0, 0, 20]),
        st.integers(1, 500),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(
    arrivals=arrivals,
    aware=st.booleans(),
    derivation=st.sampled_from(["lazy", "eager"]),
    in_order=st.booleans(),
)
def test_add_checked_bar_answers_what_the_general_path_answers(
    arrivals: list[tuple[int, int, int, int]], aware: bool, derivation: str, in_order: bool
) -> None:
    """Each bar written three ways: `add_checked_bar`, `add_bar`, and a one-bar `add_bars_batch` (always
    the general path). After every write all three stores agree, and the lane's store passes the
    from-scratch reference check."""
    checked = SessionData(derivation=derivation)
    plain = SessionData(derivation=derivation)
    batched = SessionData(derivation=derivation)
    bars = [bar(stamp(d, m, aware) + timedelta(seconds=s), 10.0 + m / 100, v) for d, m, s, v in arrivals]
    if in_order:  # mostly the hot lane: strictly newer bars (duplicates dropped)
        bars = sorted({b.timestamp: b for b in bars}.values(), key=lambda b: b.timestamp)
    for b in bars:
        assert checked.add_checked_bar("T", b) is True
        assert plain.add_bar("T", b) is True
        assert batched.add_bars_batch("T", [b]) == 1
        want = fields(batched.get_symbol_data("T"))
        assert fields(checked.get_symbol_data("T")) == want
        assert fields(plain.get_symbol_data("T")) == want
    check_store(checked)
    checked.check_invariants()


@pytest.mark.parametrize("aware", [False, True])
def test_the_first_bar_of_a_new_session_day_counts_quality_from_one(aware: bool) -> None:
    """Streamed across the night: the next day's quality counts that day's minutes only."""
    store = SessionData()
    for m in range(10):
        store.add_bar("T", bar(stamp(0, m, aware)))
    store.add_bar("T", bar(stamp(0, 400, aware)))  # after the close: outside every session
    store.add_bar("T", bar(stamp(1, 2, aware)))  # the third minute of the next day
    snap = store.get_symbol_data("T")
    assert snap is not None
    assert snap.bar_quality == pytest.approx(100.0 / 3)
    state = quality_state(snap)
    assert state is not None
    assert (state.day, state.minutes, state.newest) == (DAY + timedelta(days=1), 1, 2)
    store.add_bar("T", bar(stamp(1, 3, aware)))
    assert store.get_session_metrics("T")["bar_quality"] == pytest.approx(50.0)
    check_store(store)


def test_a_streamed_bar_with_replace_false_is_stored_in_order_and_dropped_on_a_stored_time() -> None:
    store = SessionData()
    assert store.add_bar("T", bar(stamp(0, 0, False)), replace=False) is True
    assert store.add_bar("T", bar(stamp(0, 1, False)), replace=False) is True
    version = store.version
    assert store.add_bar("T", bar(stamp(0, 1, False), price=20.0), replace=False) is False
    assert store.version == version
    latest = store.get_latest_bar("T")
    assert latest is not None
    assert latest.close == 10.0
    assert store.get_provenance("T", stamp(0, 1, False)) is Provenance.STREAMED


def test_add_checked_bar_registers_a_new_symbol() -> None:
    store = SessionData()
    store.register_symbol("OTHER")
    before = store.version
    assert store.add_checked_bar("T", bar(stamp(0, 0, True))) is True
    snap = store.get_symbol_data("T")
    assert snap is not None
    assert len(snap.bars_1m) == 1
    assert snap.version > before
    assert store.get_active_symbols() == {"OTHER", "T"}


@pytest.mark.parametrize("known", [True, False], ids=["known symbol", "new symbol"])
def test_a_held_gate_holds_the_streamed_lane_back_until_applied(known: bool) -> None:
    """The hot lane's one-store publication lands in the gate's log, not in what readers see."""
    store = SessionData()
    if known:
        store.add_bar("T", bar(stamp(0, 0, False)))
    seen = store.get_latest_bar("T")
    gate = store.hold_publication()
    try:
        newer = bar(stamp(0, 1, False))
        assert store.add_checked_bar("T", newer) is True
        assert store.add_bar("T", bar(stamp(0, 2, False))) is True
        assert store.get_latest_bar("T") == seen  # held back
        assert store.writer_state().snapshots["T"].latest_bar == bar(stamp(0, 2, False))
        segment = gate.take()
        gate.apply(segment, 0, len(segment) - 1)  # up to the first write
        assert store.get_latest_bar("T") == newer
        gate.apply(segment, len(segment) - 1, len(segment))
        assert store.get_latest_bar("T") == bar(stamp(0, 2, False))
    finally:
        gate.close()
    assert store.get_bar_count("T") == (3 if known else 2)


def test_a_reader_holding_a_snapshot_sees_it_unchanged_by_later_streamed_writes() -> None:
    store = SessionData()
    for m in range(5):
        store.add_bar("T", bar(stamp(0, m, True)))
    held = store.get_symbol_data("T")
    before = fields(held)
    for m in range(5, 400):
        store.add_bar("T", bar(stamp(0, m, True)))
    store.add_bar("T", bar(stamp(1, 0, True)))
    assert fields(held) == before
    assert held is not None
    state = quality_state(held)
    assert state is not None
    assert state.minutes == 5


def test_a_bar_of_the_other_timezone_style_is_refused_and_leaves_the_store_unchanged() -> None:
    """The lane checks the timezone style before anything: a naive bar for an aware symbol is refused by
    the general path with the store unchanged."""
    store = SessionData()
    store.add_checked_bar("T", bar(stamp(0, 0, True)))
    version = store.version
    naive = bar(datetime(2025, 1, 6, 9, 31))
    with pytest.raises(ValueError, match="naive"):
        store.add_checked_bar("T", naive)
    assert store.version == version
    utc = bar(stamp(0, 1, True).astimezone(timezone.utc))
    assert store.add_checked_bar("T", utc) is True
