"""`add_bars_batch` is exactly `add_bar` on each bar in order: the batch fast paths never diverge, whether
the store derives bars as they arrive (someone reads them) or logs them for the first reader."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from reference import check_store
from sessiondata import Bar, SessionData

OPEN = datetime(2025, 3, 7, 9, 25)
UTC_OPEN = datetime(2025, 3, 7, 14, 25, tzinfo=timezone.utc)


@st.composite
def bar_lists(draw: st.DrawFn) -> list[Bar]:
    aware = draw(st.booleans())
    base = UTC_OPEN if aware else OPEN
    minutes = draw(st.lists(st.integers(min_value=0, max_value=3 * 1440 // 2), min_size=1, max_size=120))
    if draw(st.booleans()):
        minutes.sort()  # mostly in order: the fast path
    out = []
    for m in minutes:
        seconds = draw(st.sampled_from([0, 0, 0, 30]))
        low = draw(st.floats(min_value=1, max_value=100, allow_nan=False))
        span = draw(st.floats(min_value=0, max_value=5, allow_nan=False))
        volume = draw(st.integers(min_value=0, max_value=10_000))
        ts = base + timedelta(minutes=m, seconds=seconds)
        out.append(Bar("X", ts, low, low + span, low, low + span / 2, volume))
    return out


def _view(store: SessionData) -> tuple[object, ...]:
    snap = store.get_symbol_data("X")
    assert snap is not None
    derived = {k: (list(s.bars), s.forming_bar("X", snap.bars_1m)) for k, s in snap.derived.items()}
    return (
        list(snap.bars_1m),
        snap.session_volume,
        snap.session_high,
        snap.session_low,
        snap.bar_quality,
        dict(snap.writer.provenance_overrides),
        derived,
    )


@settings(max_examples=150, deadline=None)
@given(
    first=bar_lists(),
    second=bar_lists(),
    intervals=st.sampled_from([(5, 15), (7,), (2, 60), ()]),
    read=st.tuples(st.booleans(), st.booleans()),
)
def test_batch_equals_one_by_one(
    first: list[Bar], second: list[Bar], intervals: tuple[int, ...], read: tuple[bool, bool]
) -> None:
    if (first[0].timestamp.tzinfo is None) != (second[0].timestamp.tzinfo is None):
        second = list(first)  # one symbol never mixes naive and aware timestamps
    single = SessionData(derived_intervals=intervals)
    batched = SessionData(derived_intervals=intervals)
    for store, reading in zip((single, batched), read, strict=True):
        if reading and intervals:  # a reader of derived bars: the store derives them as bars arrive
            store.register_symbol("X")
            store.get_latest_bar("X", intervals[0])
    for chunk in (first, second):
        for b in chunk:
            single.add_bar("X", b)
        batched.add_bars_batch("X", chunk)
        assert _view(single) == _view(batched)
    check_store(single)
    check_store(batched)
