"""`KnownTimeMerge`, the replay's pure merge, tested without threads: the documented order (known time,
then stream type, symbol, registration), the session filter, out-of-order items, and sources added or
removed between items."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import Bar, InvalidDataError, Quote, SessionData, Tick
from sessiondata.replay.merge import KnownTimeMerge, Source, SourceError

NY = ZoneInfo("America/New_York")
M = timedelta(minutes=1)
KINDS = {Bar: 0, Tick: 1, Quote: 2}


def at(minute: int, second: int = 0, *, tz: Any = NY) -> datetime:
    return datetime(2024, 3, 4, 9, 30, tzinfo=tz) + minute * M + timedelta(seconds=second)


def record(cls: type, symbol: str, ts: datetime) -> Any:
    if cls is Bar:
        return Bar(symbol, ts, 1.0, 1.0, 1.0, 1.0, 1)
    if cls is Tick:
        return Tick(symbol, ts, 1.0, 1)
    return Quote(symbol, ts, 1.0, 1.0, 1, 1)


def known(item: Any) -> datetime:
    ts: datetime = item.timestamp
    return ts + M if type(item) is Bar else ts


def merged(streams: list[tuple[str, type, list[Any]]], **options: Any) -> tuple[list[Any], KnownTimeMerge]:
    merge = KnownTimeMerge(SessionData().session_clock, **options)
    sources = [
        Source(symbol, cls, iter(items), (KINDS[cls], symbol, seq))
        for seq, (symbol, cls, items) in enumerate(streams)
    ]
    merge.start(sources)
    groups = list(merge.groups())
    for group in groups:  # one kind, one known time, one session date each
        assert group.items
        assert len({type(item) for item in group.items}) == 1
        assert len({known(item) for item in group.items}) == 1
        assert group.day == group.items[0].timestamp.date()
    return [item for group in groups for item in group.items], merge


@st.composite
def stream_sets(draw: st.DrawFn) -> list[tuple[str, type, list[Any]]]:
    keys = draw(st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from([Bar, Tick, Quote])), unique=True))
    # How timestamps arrive: naive; in a `ZoneInfo`; each with a fixed offset zone of its own (as
    # `datetime.fromisoformat` parses them); or one object per time shared by every symbol (as a repository
    # reads them). The merge reuses the keys of an equal bar, and each style is "equal" another way.
    style = draw(st.sampled_from(["naive", "zoneinfo", "own offset", "shared"]))
    shared: dict[tuple[int, int], datetime] = {}

    def stamp(m: int, s: int) -> datetime:
        if style == "naive":
            return at(m, s, tz=None)
        if style == "zoneinfo":
            return at(m, s)
        if style == "own offset":
            return datetime.fromisoformat(at(m, s).isoformat())
        return shared.setdefault((m, s), datetime.fromisoformat(at(m, s).isoformat()))

    out = []
    for symbol, cls in keys:
        stamps = sorted(draw(st.lists(st.tuples(st.integers(-5, 30), st.sampled_from([0, 30])), max_size=10)))
        if cls is Bar:
            stamps = sorted({(m, 0) for m, _ in stamps})
        items = [record(cls, symbol, stamp(m, s)) for m, s in stamps]
        out.append((symbol, cls, items))
    return out


@settings(max_examples=150, deadline=None)
@given(stream_sets())
def test_the_merge_follows_the_documented_order_and_filters_the_session(
    streams: list[tuple[str, type, list[Any]]],
) -> None:
    got, merge = merged(streams)
    keyed = []
    for seq, (symbol, cls, items) in enumerate(streams):
        for i, item in enumerate(items):
            if item.timestamp.replace(tzinfo=None) >= datetime(2024, 3, 4, 9, 30):
                keyed.append(((known(item), KINDS[cls], symbol, seq, i), item))
    keyed.sort(key=lambda pair: pair[0])
    assert got == [item for _, item in keyed]
    assert merge.filtered == sum(len(items) for _, _, items in streams) - len(got)
    again, _ = merged(streams)
    assert again == got


def test_out_of_order_items_raise_or_are_dropped() -> None:
    items = [record(Bar, "A", at(m)) for m in (0, 2, 1, 3)]
    with pytest.raises(InvalidDataError, match="out-of-order item #2"):
        merged([("A", Bar, items)])
    got, merge = merged([("A", Bar, items)], drop_out_of_order=True)
    assert got == [items[0], items[1], items[3]]
    assert merge.dropped == 1


def test_a_source_error_names_the_source() -> None:
    def failing() -> Any:
        yield record(Bar, "A", at(0))
        raise OSError("disk")

    merge = KnownTimeMerge(SessionData().session_clock)
    merge.start([Source("A", Bar, failing(), (0, "A", 0))])
    with pytest.raises(SourceError, match="disk"):
        list(merge.groups())


def test_sources_change_between_items() -> None:
    merge = KnownTimeMerge(SessionData().session_clock, regular_only=False)
    a = Source("A", Bar, iter([record(Bar, "A", at(m)) for m in range(5)]), (0, "A", 0))
    b = Source("B", Bar, iter([record(Bar, "B", at(m)) for m in range(2, 5)]), (0, "B", 1))
    c = Source("C", Bar, iter([record(Bar, "C", at(m)) for m in range(5)]), (0, "C", 2))
    merge.start([a, c])
    out = []
    for group in merge.groups():
        out += ((item.symbol, item.timestamp) for item in group.items)
        if len(out) == 2:
            merge.change("add", b)
            merge.change("remove", c)
    assert out == [("A", at(0)), ("C", at(0)), ("A", at(1))] + [
        (sym, at(m)) for m in range(2, 5) for sym in "AB"
    ]


def test_a_run_of_skipped_items_polls() -> None:
    polls = []
    merge = KnownTimeMerge(SessionData().session_clock, poll=lambda: polls.append(1))
    early = [record(Bar, "A", at(-100) + timedelta(seconds=i)) for i in range(200)]  # 07:50: filtered
    merge.start([Source("A", Bar, iter([*early, record(Bar, "A", at(0))]), (0, "A", 0))])
    assert [item.timestamp for group in merge.groups() for item in group.items] == [at(0)]
    assert len(polls) == 200 // 64


def test_a_source_that_may_block_is_pulled_only_after_its_group_was_handed_out() -> None:
    # A generator might block: the owner gets each of its items in a group of its own before the merge
    # pulls the next one (the coordinator offers its batch to the consumer meanwhile). A list is pulled
    # as soon as its item joins a group.
    pulled: list[datetime] = []

    def lazy() -> Any:
        for m in range(3):
            pulled.append(at(m))
            yield record(Bar, "A", at(m))

    merge = KnownTimeMerge(SessionData().session_clock)
    a = Source("A", Bar, lazy(), (0, "A", 0))
    b = Source("B", Bar, iter([record(Bar, "B", at(m)) for m in range(3)]), (0, "B", 1))
    assert a.may_block
    assert not b.may_block
    merge.start([a, b])
    seen = []
    for group in merge.groups():
        seen.append([(item.symbol, item.timestamp) for item in group.items])
        if group.last is a:
            assert pulled[-1] == group.items[-1].timestamp  # its next item is not pulled yet
        else:
            assert group.last is None
    assert seen == [entry for m in range(3) for entry in ([("A", at(m))], [("B", at(m))])]


def collect(merge: KnownTimeMerge, into: list[Any]) -> None:
    for group in merge.groups():
        into += group.items


def test_an_error_inside_a_group_hands_out_the_items_before_it_first() -> None:
    # B's third item is out of order: it is pulled once B's second item joined the group of 09:31, so
    # the items of that group before it come out first, then the error.
    a = [record(Bar, "A", at(m)) for m in range(3)]
    b = [record(Bar, "B", at(m)) for m in (0, 1, 0)]
    c = [record(Bar, "C", at(m)) for m in range(3)]
    merge = KnownTimeMerge(SessionData().session_clock)
    streams = zip("ABC", (a, b, c), strict=True)
    merge.start([Source(s, Bar, iter(x), (0, s, i)) for i, (s, x) in enumerate(streams)])
    got: list[Any] = []
    with pytest.raises(InvalidDataError, match="out-of-order item #2 in source B"):
        collect(merge, got)
    assert got == [a[0], b[0], c[0], a[1], b[1]]

    def failing() -> Any:
        yield record(Bar, "B", at(0))
        raise OSError("disk")

    for may_block in (True, False):  # handed out alone before its pull, or with the group it ends
        merge = KnownTimeMerge(SessionData().session_clock)
        source = Source("B", Bar, failing(), (0, "B", 1))
        source.may_block = may_block
        merge.start([Source("A", Bar, iter(a), (0, "A", 0)), source])
        got = []
        with pytest.raises(SourceError, match="disk"):
            collect(merge, got)
        assert got == [a[0], record(Bar, "B", at(0))]


def test_changes_between_groups_of_one_known_time() -> None:
    # Changes made while the merge is in the middle of a known time apply before its next item: after a
    # group of a source that may block (that source is still pulled, unless it was removed), and after a
    # group ended by the next kind of record.
    def lazy(symbol: str) -> Any:
        yield from (record(Bar, symbol, at(m)) for m in range(4))

    merge = KnownTimeMerge(SessionData().session_clock)
    g = Source("G", Bar, lazy("G"), (0, "G", 0))
    a = Source("A", Bar, iter([record(Bar, "A", at(m)) for m in range(4)]), (0, "H", 1))
    b = Source("B", Bar, iter([record(Bar, "B", at(m)) for m in range(4)]), (0, "I", 2))
    t = Source("T", Tick, iter([record(Tick, "T", at(m)) for m in range(1, 3)]), (1, "T", 3))
    c = Source("C", Bar, iter([record(Bar, "C", at(m)) for m in range(1, 3)]), (0, "J", 4))
    merge.start([g, a, b, t])
    out: list[tuple[str, int]] = []
    for group in merge.groups():
        out += ((item.symbol, item.timestamp.minute) for item in group.items)
        if out[-1] == ("G", 30):
            merge.change("remove", a)  # G's bar was just handed out: A's of 09:30 is not
        elif out[-1] == ("B", 30):
            merge.change("add", c)  # the bars known at 09:31 are out; T's tick of 09:31 is next
        elif out[-1] == ("G", 32):
            merge.change("remove", g)  # not pulled again
    assert out == [
        ("G", 30), ("B", 30), ("T", 31),
        ("G", 31), ("B", 31), ("C", 31), ("T", 32),
        ("G", 32), ("B", 32), ("C", 32),
        ("B", 33),
    ]  # fmt: skip
