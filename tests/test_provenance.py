"""Provenance beside the bars: a persistent map, so that a correction costs O(log n), not a copy of every
earlier mark."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, Provenance, SessionData
from sessiondata.core.provenance import EMPTY_PROVENANCE

T0 = datetime(2025, 3, 10, 9, 30)
M = timedelta(minutes=1)
KINDS = [Provenance.GAP_FILLED, Provenance.CORRECTION]


@settings(max_examples=80, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.lists(st.integers(0, 3000), min_size=0, max_size=30), st.sampled_from(KINDS)),
        max_size=12,
    )
)
def test_provenance_map_is_a_persistent_dict(writes: list[tuple[list[int], Provenance]]) -> None:
    current = EMPTY_PROVENANCE
    model: dict[datetime, Provenance] = {}
    versions = [(current, dict(model))]
    for minutes, kind in writes:
        stamps = [T0 + m * M for m in minutes]
        current = current.marked(stamps, kind)
        model.update(dict.fromkeys(stamps, kind))
        versions.append((current, dict(model)))
    for version, expected in versions:  # every earlier version still reads as it did
        assert dict(version) == expected
        assert list(version) == sorted(expected)
        assert len(version) == len(expected)
        for ts, kind in expected.items():
            assert version[ts] is kind
            assert version.of(ts) is kind
    assert current.of(T0 - M) is Provenance.STREAMED
    assert current.get(T0 - M) is None
    assert repr(EMPTY_PROVENANCE) == "ProvenanceMap({})"


def _bar(i: int, close: float = 10.0) -> Bar:
    # A correction moves the close only: the session high and low stay where they were (a correction that
    # removes the session's extreme rescans, documented O(n)).
    return Bar("T", T0 + i * M, 10.0, 11.0, 9.0, close, 100)


def _allocated_by_one_correction(store: SessionData, i: int) -> int:
    tracemalloc.start()
    try:
        store.add_bar("T", _bar(i, 10.5))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_correction_does_not_copy_the_earlier_corrections() -> None:
    # Memory, not time: a correction that copied every earlier mark would allocate in proportion to them.
    store = SessionData(derived_intervals=())
    n = 20_000
    store.add_bars_batch("T", [_bar(i) for i in range(n)])
    for i in range(1_000):
        store.add_bar("T", _bar(i, 10.5))
    early = _allocated_by_one_correction(store, 1_000)
    for i in range(1_001, n - 1):
        store.add_bar("T", _bar(i, 10.5))
    late = _allocated_by_one_correction(store, n - 1)
    assert late <= 2 * early + 4096, (early, late)
    snap = store.get_symbol_data("T")
    assert snap is not None
    assert len(snap.writer.provenance_overrides) == n
    assert store.get_provenance("T", T0) is Provenance.CORRECTION
