"""The persistent `Series`: every version reads like a plain sorted list, and old versions never change.

Operations are applied to randomly chosen *earlier* versions, so versions branch (two newer versions made from
one older one, which exercises the shared tail chunk that in-order appends extend in place). After each step
the new version is compared with a plain Python list model and checked structurally; at the end every version
ever made must still equal the model it had when it was made. Bulk operations of hundreds of items push
chunks past ``2 * LOAD`` so that splitting and multi-chunk reads are covered.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessiondata.core.series import LOAD, Series

BASE = datetime(2025, 1, 2, 9, 30)


class Item(NamedTuple):
    timestamp: datetime
    tag: int


def ts(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def item(self, minute: int) -> Item:
        self.n += 1
        return Item(ts(minute), self.n)


def model_upsert(model: list[Item], item: Item) -> list[Item]:
    keys = [x.timestamp for x in model]
    i = bisect.bisect_left(keys, item.timestamp)
    out = list(model)
    if i < len(out) and out[i].timestamp == item.timestamp:
        out[i] = item
    else:
        out.insert(i, item)
    return out


def model_insert(model: list[Item], item: Item) -> list[Item]:
    keys = [x.timestamp for x in model]
    out = list(model)
    out.insert(bisect.bisect_right(keys, item.timestamp), item)
    return out


def check_reads(s: Series[Item], model: list[Item], probes: list[int], *, unique: bool) -> None:
    """Every read of ``s`` agrees with the list ``model``."""
    assert len(s) == len(model)
    assert bool(s) == bool(model)
    assert list(s) == model
    assert list(reversed(s)) == model[::-1]
    assert s == model
    assert s == tuple(model)
    assert s.last() == (model[-1] if model else None)
    assert s.first() == (model[0] if model else None)
    n = len(model)
    for i in {0, 1, n // 2, n - 1, -1, -n, LOAD - 1, LOAD, 2 * LOAD, n + 1}:
        if -n <= i < n:
            assert s[i] == model[i]
        else:
            with pytest.raises(IndexError):
                s[i]
    for a, b in [(0, n), (1, -1), (n // 3, 2 * n // 3), (LOAD - 3, LOAD + 3), (-5, None), (None, 7), (5, 2)]:
        assert s[a:b] == model[a:b]
    assert s[::3] == model[::3]
    assert s[::-1] == model[::-1]
    for k in (-1, 0, 1, 7, n, n + 5, LOAD + 1):
        assert s.last_n(k) == (model[-k:] if k > 0 else [])
    keys = [x.timestamp for x in model]
    for p in probes:
        t = ts(p)
        lo = bisect.bisect_left(keys, t)
        assert s.since(t) == model[lo:]
        assert s.between(t, None) == model[lo:]
        assert s.between(None, t) == model[:lo]
        for q in (p, p + 1, p + 37, p - 3):
            hi = bisect.bisect_left(keys, ts(q))
            assert s.between(t, ts(q)) == model[lo:hi]
            assert s.count_between(t, ts(q)) == max(0, hi - lo)
        found = s.find(t)
        expected = model[lo] if lo < n and keys[lo] == t else None
        assert found == expected
    assert s.between() == model
    assert s.count_between(None, None) == n
    s.check_invariants(unique=unique)


# An operation: (which earlier version to start from, kind, minute, count, step).
OPS = st.tuples(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from(["one", "one", "one", "append", "grown", "bulk"]),
    st.integers(min_value=-50, max_value=3000),
    st.integers(min_value=1, max_value=700),
    st.integers(min_value=0, max_value=3),
)


def _run(ops: list[tuple[int, str, int, int, int]], probes: list[int], *, unique: bool) -> None:
    c = Counter()
    versions: list[tuple[Series[Item], list[Item]]] = [(Series(), [])]
    frozen: list[list[Item]] = [[]]  # what each version showed when it was made
    for pick, kind, minute, count, step in ops:
        parent, model = versions[pick % len(versions)]
        parent_before = list(parent)
        s, m = parent, model
        if kind == "one":
            item = c.item(minute)
            if unique:
                s, replaced = s.upserted(item)
                old = [x for x in m if x.timestamp == item.timestamp]
                assert replaced == (old[0] if old else None)
                m = model_upsert(m, item)
            else:
                s = s.inserted(item)
                m = model_insert(m, item)
        elif kind in ("append", "grown"):
            # In time order: strictly later for the unique family, equal times allowed otherwise.
            start = minute if not m else int((m[-1].timestamp - BASE).total_seconds() // 60) + unique
            gap = step + 1 if unique else step
            storage, stored = s, len(s)  # "grown": a storage plus a count, as the store's snapshots keep bars
            for k in range(count):
                item = c.item(start + k * gap)
                if kind == "append":
                    s = s.appended(item)
                else:
                    storage = storage.grown(stored, item)
                    stored += 1
                    s = storage.view(stored)
                    assert storage.view(stored) is s  # readers of one count share one version
                m = [*m, item]
        else:  # many items into one region: pushes a chunk past 2 * LOAD, forcing a split
            for k in range(count):
                item = c.item(minute + k * step)
                if unique:
                    s, _ = s.upserted(item)
                    m = model_upsert(m, item)
                else:
                    s = s.inserted(item)
                    m = model_insert(m, item)
        check_reads(s, m, probes, unique=unique)
        # Its heads (views of its first k items, as a settling reader takes them), cut inside the last
        # chunk, at and around a chunk boundary, and further back, read as the model's prefixes.
        for k in {1, len(m) // 2, len(m) - 1, LOAD - 1, LOAD, LOAD + 1, len(m) - LOAD}:
            if 0 < k < len(m):
                check_reads(s.head(k), m[:k], probes, unique=unique)
        # The version it came from is untouched, even though they may share chunks.
        assert list(parent) == parent_before
        parent.check_invariants(unique=unique)
        versions.append((s, m))
        frozen.append(list(m))
    for (s, _), seen in zip(versions, frozen, strict=True):
        # Every read (slices, last_n, between ...), not only iteration: an old version whose tail chunk a
        # newer version extended in place must still stop at its own length.
        check_reads(s, seen, probes, unique=unique)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(OPS, min_size=1, max_size=12),
    st.lists(st.integers(min_value=-60, max_value=3100), min_size=1, max_size=4),
)
def test_unique_series_matches_model_and_old_versions_never_change(
    ops: list[tuple[int, str, int, int, int]], probes: list[int]
) -> None:
    _run(ops, probes, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(OPS, min_size=1, max_size=12),
    st.lists(st.integers(min_value=-60, max_value=3100), min_size=1, max_size=4),
)
def test_non_unique_series_keeps_arrival_order_for_equal_times(
    ops: list[tuple[int, str, int, int, int]], probes: list[int]
) -> None:
    _run(ops, probes, unique=False)


def test_chunk_split_and_branching_tail_deterministic() -> None:
    c = Counter()
    base_items = [c.item(2 * i) for i in range(3 * LOAD)]  # even minutes: room for inserts between
    s0 = Series(base_items)
    check_reads(s0, base_items, [0, 1, 2 * LOAD, 6 * LOAD], unique=True)
    # 2 * LOAD inserts into the first chunk's range: it must split, repeatedly.
    s, m = s0, list(base_items)
    for i in range(LOAD):
        item = c.item(2 * i + 1)
        s, replaced = s.upserted(item)
        assert replaced is None
        m = model_upsert(m, item)
    check_reads(s, m, [0, 1, 3, LOAD, 2 * LOAD + 1, 6 * LOAD], unique=True)
    assert list(s0) == base_items
    # Branching from one version: two different appends and a replacement of its tail item.
    a = s0.appended(c.item(10 * LOAD))
    b = s0.appended(c.item(10 * LOAD + 1))
    r, old = s0.upserted(c.item(2 * (3 * LOAD - 1)))
    assert old == base_items[-1]
    assert list(s0) == base_items
    assert list(a)[:-1] == base_items
    assert a.last() != b.last()
    assert list(b)[:-1] == base_items
    assert list(r)[:-1] == base_items[:-1]
    assert r.last() != base_items[-1]
    a2 = a.appended(c.item(10 * LOAD + 5))
    assert len(a) == len(base_items) + 1
    assert len(a2) == len(base_items) + 2
    for v in (s0, a, b, r, a2):
        v.check_invariants(unique=True)


def test_constructor_rejects_unsorted_input() -> None:
    c = Counter()
    with pytest.raises(ValueError, match="time order"):
        Series([c.item(2), c.item(1)])


def test_series_is_not_hashable_and_compares_by_content() -> None:
    c = Counter()
    items = [c.item(i) for i in range(3)]
    s = Series(items)
    with pytest.raises(TypeError):
        hash(s)
    assert s == Series(items)
    assert s != Series(items[:2])
    assert s != "not a series"
    assert repr(s).startswith("Series(")


def test_reads_return_lists_the_caller_owns() -> None:
    c = Counter()
    items = [c.item(i) for i in range(10)]
    s = Series(items)
    got = s.last_n(5)
    got.clear()
    s.between().append(c.item(99))
    s[2:4].clear()
    assert list(s) == items


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sets(st.integers(min_value=0, max_value=3 * LOAD), max_size=3 * LOAD),
    st.sets(st.integers(min_value=-5, max_value=3 * LOAD + 5), max_size=2 * LOAD + 10),
    st.integers(min_value=0, max_value=3),
)
def test_upserted_run_equals_upserting_one_by_one(base: set[int], run: set[int], appends: int) -> None:
    """A run of strictly increasing items upserted at once equals upserting them one at a time; the
    versions it started from (including one whose tail list a later append extends) never change."""
    c = Counter()
    base_items = [c.item(m) for m in sorted(base)]
    s0 = Series(base_items)
    for k in range(appends):  # a tail list shared with a newer version
        s0 = s0.appended(c.item(3 * LOAD + 10 + k))
    before = list(s0)
    newer = s0.appended(c.item(10 * LOAD))
    items = [c.item(m) for m in sorted(run)]
    merged = s0.upserted_run(items)
    one_by_one, model = s0, list(before)
    for item in items:
        one_by_one = one_by_one.upserted(item)[0]
        model = model_upsert(model, item)
    assert list(merged) == list(one_by_one) == model
    merged.check_invariants(unique=True)
    assert list(s0) == before
    assert list(newer) == [*before, newer.last()]
    assert s0.upserted_run([]) is s0


def test_upserted_run_splits_a_chunk_that_grows_past_twice_load() -> None:
    c = Counter()
    base_items = [c.item(4 * i) for i in range(3 * LOAD)]  # room for three inserts after each
    s0 = Series(base_items)
    # 3 * LOAD inserts into the first chunk's range: it grows to 4 * LOAD and splits twice.
    items = [c.item(4 * i + j) for i in range(LOAD) for j in (1, 2, 3)]
    merged = s0.upserted_run(items)
    merged.check_invariants(unique=True)
    assert list(merged) == sorted([*base_items, *items])
    assert list(s0) == base_items


def test_a_memo_belongs_to_one_version_and_holds_at_most_its_limit() -> None:
    """`Series.memo`/`remember`: the per-version memo readers keep derived read-only views in."""
    s = Series([Item(ts(0), 0), Item(ts(1), 1)])
    assert s.memo("view") is None
    s.remember("view", (0, 1), limit=2)
    s.remember("other", "x", limit=2)
    s.remember("third", "y", limit=2)  # over the limit: not kept
    assert (s.memo("view"), s.memo("other"), s.memo("third")) == ((0, 1), "x", None)
    newer = s.appended(Item(ts(2), 2))
    assert newer.memo("view") is None, "a new version starts with no memo"
    assert s.memo("view") == (0, 1), "the old version keeps its own"
