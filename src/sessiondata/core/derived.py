"""Deferred derivation: while nobody reads a symbol's derived bars, the store only logs where its in-order
1-minute bars fall, and the first read derives them from that log.

Why: deriving 5m/15m bars as each 1-minute bar arrives costs about half again a write (a `Bar`, its
aggregation and a new state per completed window), paid for every symbol whether or not anything reads its
derived bars, and in a wide replay most symbols' derived bars are never read. So a symbol starts each
session *lazy*: a write of in-order bars appends their session minutes to a log (one list append a bar),
and the first read of its derived bars runs the same state machine over the log in one pass
(`advance_in_order`, the batch path) and remembers the result. That read also marks the log ``wanted``:
from its next write on, the store derives the symbol's bars as they arrive, exactly as before, so a symbol
that is read pays the write-time cost and its readers pay nothing more. Either way each window is built
once: O(1) amortized per bar, never a recompute.

A `Deferred` is shared by a lineage of snapshots: each sees the log up to its own 1-minute bar count (like a
`Series` tail), so older snapshots stay exact while the writer appends. Settling is a pure function of a
snapshot, so readers may settle concurrently without a lock; the memo is one attribute replaced in one
assignment, and a racing reader can only make another recompute, never read a wrong state.

The writer settles first (from the memo when a reader got there before it) before any write the log cannot
describe: a bar out of order, a correction, a batch that is not one in-order run. `end_session` defers its
flush too, as a child `Deferred` whose base is its parent's state, flushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from types import MappingProxyType
from typing import NamedTuple

from sessiondata._models import Bar

from .series import Series
from .windows import DerivedState, Segment, advance_in_order

__all__ = ["Deferred", "LogSegment", "Memo", "check_deferred"]


class Memo(NamedTuple):
    """A settled version of the log: the derived ``states`` after the first ``logged`` bars of the log, and
    the index ``seg`` of the log segment holding bar ``logged`` (where the next settle starts looking)."""

    logged: int
    states: Mapping[int, DerivedState]
    seg: int


_NO_OFFSETS: list[int] = []


class LogSegment:
    """One stretch of the log: in-order bars of one session day at non-decreasing minute ``offsets``, or,
    with ``day`` None (and no offsets), bars outside any session. It starts at logged bar ``start``
    (counted from the cell's base) and ends where the next one starts (the last one at the reader's own
    count). The writer extends the newest stretch's offsets in place; slots a snapshot can see are never
    written again."""

    __slots__ = ("day", "offsets", "session_len", "start")

    def __init__(self, day: date | None, session_len: int, start: int, offsets: list[int] | None) -> None:
        self.day = day
        self.session_len = session_len
        self.start = start
        self.offsets = offsets


class Deferred:
    """Derived work owed by a lineage of snapshots: the states at ``base_len`` 1-minute bars, and a log of
    the in-order bars appended after them.

    `settled` is safe from any thread without a lock (see the module docstring). The writer alone, under
    the store's lock, appends to the log and advances ``end``, and only while ``end`` equals the length of
    the series it extends (so two versions never both extend one log).
    """

    __slots__ = ("base", "base_len", "end", "memos", "parent", "segs")

    def __init__(
        self, base: Mapping[int, DerivedState] | None, base_len: int, parent: Deferred | None = None
    ) -> None:
        # The states at `base_len` bars; None for a flush child until first settled (then its parent's
        # state there, flushed).
        self.base = base
        self.base_len = base_len
        self.parent = parent
        self.segs: list[LogSegment] = []
        # The 1-minute series length the log covers: the newest snapshot's. Written only by the writer.
        self.end = base_len
        # The newest few settled versions, newest first (a reader a few versions behind the newest still
        # finds a start). Replaced whole by whoever settles further, so never seen half-written.
        self.memos: tuple[Memo, ...] = ()

    def owes(self) -> bool:
        """Whether settling could change anything: bars logged, or a flush owed. O(1)."""
        return self.end > self.base_len or self.base is None

    def _resolved_base(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        base = self.base
        if base is None:
            parent = self.parent
            assert parent is not None
            head = series.head(self.base_len)
            states = parent.settled(head, symbol)
            base = MappingProxyType({k: s.flush(symbol, head) for k, s in states.items()})
            self.base = base  # idempotent: racing readers store equal states
        return base

    def settled(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        """The derived states of the snapshot whose 1-minute bars are ``series`` (a version this log covers).

        O(1) when settled at that version; else O(bars logged since the newest remembered version at or
        before it, or since the base, + k per window built). Thread-safety: any thread, lock-free;
        concurrent callers may duplicate work, never corrupt it.
        """
        count = series.size - self.base_len
        start: Memo | None = None
        for memo in self.memos:
            if memo.logged <= count:
                start = memo
                break
        if start is None:
            start = Memo(0, self._resolved_base(series, symbol), 0)
        if start.logged == count:
            return start.states
        new = self._run(start, series, symbol, count)
        memos = self.memos
        if not memos or memos[0].logged < count:
            self.memos = (new, *memos[:3])
        return new.states

    def _run(self, memo: Memo, series: Series[Bar], symbol: str, count: int) -> Memo:
        """The memo after logged bars ``memo.logged..count-1``, in one `advance_in_order`.

        O(bars + windows * k)."""
        m, states, si = memo.logged, memo.states, memo.seg
        segs = self.segs
        n = len(segs)
        while si + 1 < n and segs[si + 1].start <= m:
            si += 1
        segments: list[Segment] = []
        k = si
        while k < n:
            seg = segs[k]
            start = seg.start
            if start >= count:
                break
            stop = min(segs[k + 1].start, count) if k + 1 < n else count
            a = max(start, m)
            offsets = seg.offsets
            if offsets is None:
                segments.append(Segment(None, 0, a - m, stop - m, _NO_OFFSETS))
            else:
                part = offsets[a - start : stop - start]
                segments.append(Segment(seg.day, seg.session_len, a - m, stop - m, part))
            k += 1
        lo = self.base_len + m
        run = series.items_at(lo, self.base_len + count)
        advanced = advance_in_order(
            states, symbol, [b.timestamp for b in run], segments, series.head(lo), run
        )
        if advanced is not None:
            states = MappingProxyType(advanced)
        return Memo(count, states, k - 1)

    def log_bar(self, day: date | None, session_len: int, offset: int) -> None:
        """Log the in-order bar just appended at the log's end (writer only, under the store's lock): at
        minute ``offset`` of ``day``, or outside any session when ``day`` is None. O(1) amortized."""
        segs = self.segs
        i = self.end - self.base_len
        self.end += 1
        if segs:
            last = segs[-1]
            offsets = last.offsets
            if day is None:
                if offsets is None:
                    return
            elif offsets is not None and offsets[-1] <= offset and last.day == day:
                offsets.append(offset)
                return
        segs.append(LogSegment(day, session_len, i, None if day is None else [offset]))

    def log_run(self, segments: list[Segment]) -> None:
        """Log an in-order run just appended at the log's end, cut into ``segments`` as `advance_in_order`
        takes them (writer only, under the store's lock). O(len(run))."""
        shift = self.end - self.base_len
        segs = self.segs
        for segment in segments:
            day, offsets = segment.day, segment.offsets
            last = segs[-1] if segs else None
            if day is None:
                if last is None or last.offsets is not None:
                    segs.append(LogSegment(None, 0, shift + segment.start, None))
            else:
                prev = None if last is None else last.offsets
                if prev is not None and last is not None and last.day == day and prev[-1] <= offsets[0]:
                    prev.extend(offsets)
                else:
                    segs.append(LogSegment(day, segment.session_len, shift + segment.start, list(offsets)))
            self.end = self.base_len + shift + segment.stop


def check_deferred(cell: Deferred, series: Series[Bar]) -> None:
    """Raise `AssertionError` unless the part of ``cell``'s log that a snapshot holding ``series`` sees is
    sound (for the store's invariant checker; the writer may be extending the rest meanwhile).
    O(logged bars)."""
    assert cell.base is not None or cell.parent is not None
    count = series.size - cell.base_len
    assert 0 <= count <= cell.end - cell.base_len, "a snapshot sees past its log"
    segs = [seg for seg in list(cell.segs) if seg.start < count]
    for n, seg in enumerate(segs):
        stop = segs[n + 1].start if n + 1 < len(segs) else count
        assert seg.start < stop, "an empty log segment"
        offsets = seg.offsets
        assert (offsets is None) is (seg.day is None), "a session stretch without offsets"
        if offsets is not None:
            seen = offsets[: stop - seg.start]
            assert len(seen) == stop - seg.start, "offsets do not match bars"
            assert n + 1 == len(segs) or len(offsets) == len(seen), "a closed stretch grew"
            assert all(a <= b for a, b in pairwise(seen)), "offsets go back"
    assert not segs or segs[0].start == 0
    assert count == 0 or segs, "bars logged without a segment"
