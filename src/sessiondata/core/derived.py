"""Deferred derivation: while nobody reads a symbol's derived bars, the store only logs where its in-order
1-minute bars fall, and a read derives them from that log.

Why: deriving 5m/15m bars as each 1-minute bar arrives costs about half again a write (a `Bar`, its
aggregation and a new state per completed window), paid for every symbol whether or not anything reads its
derived bars, and in a wide replay most symbols' derived bars are never read. So with the store's
``derivation="lazy"`` (the default) a write of in-order bars appends their session minutes to a log (one
list append a bar), and a read of derived bars runs the window machine over the log in one pass
(`advance_in_order`, the batch path). Each window is built once per settle: O(1) amortized per bar.

A `Deferred` is shared by a lineage of snapshots: each sees the log up to its own 1-minute bar count (like a
`Series` tail), so older snapshots stay exact while the writer appends. Settling is a pure function of a
snapshot (its 1-minute bars and the log up to its count).

Who writes what. The writer alone, under the store's lock, builds a `Deferred` (``base``, ``base_len``,
``parent``, fixed from then on), appends to its log (``segs``) and advances ``end``; whatever the writer
reads to decide what to do or what to publish (`owes`, `derive`) is made of those fields only. Readers
write one slot, ``memos``: a cache of settled versions (see `Deferred.__init__`), which the writer never
reads. So a read cannot change a write: the writer settles from the log itself (`derive`) before any write
the log cannot describe (a bar out of order, a correction, a batch that is not one in-order run) and at
``end_session`` (whose flush is owed too, as a child `Deferred` whose base is its parent's state, flushed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from itertools import pairwise
from types import MappingProxyType
from typing import NamedTuple

from sessiondata._calendar import SessionClock
from sessiondata._models import Bar

from .series import Series
from .windows import DerivedState, Segment, advance_in_order

__all__ = ["Deferred", "LogSegment", "Memo", "check_deferred"]


class Memo(NamedTuple):
    """A settled version of the log: the derived ``states`` after the first ``logged`` bars of the log, and
    the index ``seg`` of the log segment holding bar ``logged`` (where the next settle starts looking).
    Immutable: a reader publishes a new one, never edits one (see `Deferred.memos`)."""

    logged: int
    states: Mapping[int, DerivedState]
    seg: int


_NO_OFFSETS: list[int] = []
# How many settled versions `Deferred.memos` keeps: a reader a few versions behind the newest still finds a
# start.
_MEMOS = 4


def _flushed(
    states: Mapping[int, DerivedState], symbol: str, bars_1m: Series[Bar]
) -> Mapping[int, DerivedState]:
    """``states`` with every forming window completed (the store's ``end_session``). O(intervals * k)."""
    return MappingProxyType({k: s.flush(symbol, bars_1m) for k, s in states.items()})


class LogSegment:
    """One stretch of the log: in-order bars of one session day at non-decreasing minute ``offsets``, or,
    with ``day`` None (and no offsets), bars outside any session. It starts at logged bar ``start``
    (counted from the cell's base) and ends where the next one starts (the last one at the reader's own
    count). The writer extends the newest stretch's offsets in place; slots a snapshot can see are never
    written again."""

    __slots__ = ("day", "last", "offsets", "session_len", "start")

    def __init__(self, day: date | None, session_len: int, start: int, offsets: list[int] | None) -> None:
        self.day = day
        self.session_len = session_len
        self.start = start
        self.offsets = offsets
        # ``offsets[-1]`` (-1 without offsets), kept by the writer: a negative index is a generic lookup
        # on the streamed bar's path.
        self.last = offsets[-1] if offsets else -1


class Deferred:
    """Derived work owed by a lineage of snapshots: the states at ``base_len`` 1-minute bars, and a log of
    the in-order bars appended after them.

    `settled` (readers) and `derive` (the writer) are safe from any thread without a lock (see the module
    docstring). The writer alone, under the store's lock, appends to the log and advances ``end``, and only
    while ``end`` equals the length of the series it extends (so two versions never both extend one log).
    """

    __slots__ = ("base", "base_len", "clock", "end", "memos", "newest", "parent", "segs")

    def __init__(
        self,
        base: Mapping[int, DerivedState] | None,
        base_len: int,
        parent: Deferred | None = None,
        *,
        clock: SessionClock | None = None,
    ) -> None:
        # The states at `base_len` bars; None for a flush child (its parent's state there, flushed). Fixed.
        self.base = base
        self.base_len = base_len
        self.parent = parent
        # The session clock that places windows on a day whose clocks change (see `window_step`); a flush
        # child settles with its parent's. Fixed.
        self.clock: SessionClock | None = clock if clock is not None or parent is None else parent.clock
        self.segs: list[LogSegment] = []
        # ``segs[-1]``, or None while the log is empty (writer only).
        self.newest: LogSegment | None = None
        # The 1-minute series length the log covers: the newest snapshot's. Written only by the writer.
        self.end = base_len

        # `memos` is the readers' cache of settled versions: the newest few (at most `_MEMOS`), newest
        # first, each the immutable result of settling the version of the log whose count it names
        # (`Memo.logged`, a snapshot's own bar count less `base_len`). It guards nothing but repeated
        # work: a reader starts from the newest memo at or before its own version instead of from the
        # base. Readers on any thread replace the whole tuple in one reference store, without a lock: a
        # racy but idempotent cache. Two readers settling the same version compute equal states, and when
        # two replace the tuple at once the last store wins; the loser's memo is lost, which costs a later
        # reader a recompute and never a wrong answer (memos are never edited, only replaced). The writer
        # never reads it (`derive` settles from the base and the log) and never writes it; the memory
        # accounting only measures it.
        self.memos: tuple[Memo, ...] = ()

    def owes(self) -> bool:
        """Whether settling could change anything: bars logged, or a flush owed. O(1). Reads only fields
        the writer wrote: a read never changes the answer."""
        return self.end > self.base_len or self.base is None

    def settled(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        """The derived states of the snapshot whose 1-minute bars are ``series`` (a version this log covers),
        for a reader: starts from the newest memo at or before that version and remembers the result.

        O(1) when settled at that version; else O(bars logged since the newest remembered version at or
        before it, or since the base, + k per window built). Thread-safety: any thread, lock-free;
        concurrent callers may duplicate work, never corrupt it. Never called by the writer (`derive`).
        """
        count = series.size - self.base_len
        start: Memo | None = None
        for memo in self.memos:
            if memo.logged <= count:
                start = memo
                break
        if start is None:
            base = self.base
            if base is None:  # a flush child: its parent's states at the flush, flushed
                head = series.head(self.base_len)
                base = _flushed(self._parent().settled(head, symbol), symbol, head)
            start = Memo(0, base, 0)
            if self.base is None:
                self._remember(start)
        if start.logged == count:
            return start.states
        new = self._run(start, series, symbol, count)
        self._remember(new)
        return new.states

    def derive(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        """`settled`, for the writer: the same states, settled from the base and the log alone. Reads no
        memo and writes none, so what the writer publishes never depends on who read before.

        O(bars logged + k per window built) (a flush child: plus its parent's). Thread-safety: any
        thread, lock-free; the writer calls it under the store's lock."""
        count = series.size - self.base_len
        base = self.base
        if base is None:
            head = series.head(self.base_len)
            base = _flushed(self._parent().derive(head, symbol), symbol, head)
        if count == 0:
            return base
        return self._run(Memo(0, base, 0), series, symbol, count).states

    def _parent(self) -> Deferred:
        parent = self.parent
        assert parent is not None  # a Deferred without a base is a flush child
        return parent

    def _remember(self, memo: Memo) -> None:
        """Publish ``memo`` in `memos` unless a newer one is there: one reference store (see `memos`)."""
        memos = self.memos
        if not memos or memos[0].logged < memo.logged:
            self.memos = (memo, *memos[: _MEMOS - 1])

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
            states, symbol, [b.timestamp for b in run], segments, series.head(lo), run, self.clock
        )
        if advanced is not None:
            states = MappingProxyType(advanced)
        return Memo(count, states, k - 1)

    def log_bar(self, day: date | None, session_len: int, offset: int) -> None:
        """Log the in-order bar just appended at the log's end (writer only, under the store's lock): at
        minute ``offset`` of ``day``, or outside any session when ``day`` is None. O(1) amortized."""
        end = self.end
        self.end = end + 1
        last = self.newest
        if last is not None:
            offsets = last.offsets
            if day is None:
                if offsets is None:
                    return
            # ``is`` first: the locator hands out one date object per session stretch, and comparing two
            # dates costs a rich comparison.
            elif offsets is not None and last.last <= offset and (last.day is day or last.day == day):
                offsets.append(offset)
                last.last = offset
                return
        self._open(LogSegment(day, session_len, end - self.base_len, None if day is None else [offset]))

    def _open(self, segment: LogSegment) -> None:
        """Start a new newest stretch of the log (writer only)."""
        self.segs.append(segment)
        self.newest = segment

    def log_run(self, segments: list[Segment]) -> None:
        """Log an in-order run just appended at the log's end, cut into ``segments`` as `advance_in_order`
        takes them (writer only, under the store's lock). O(len(run))."""
        shift = self.end - self.base_len
        for segment in segments:
            day, offsets = segment.day, segment.offsets
            last = self.newest
            if day is None:
                if last is None or last.offsets is not None:
                    self._open(LogSegment(None, 0, shift + segment.start, None))
            else:
                prev = None if last is None else last.offsets
                if prev is not None and last is not None and last.day == day and last.last <= offsets[0]:
                    prev.extend(offsets)
                    last.last = offsets[-1]
                else:
                    self._open(LogSegment(day, segment.session_len, shift + segment.start, list(offsets)))
            self.end = self.base_len + shift + segment.stop


def check_deferred(cell: Deferred, series: Series[Bar]) -> None:
    """Raise `AssertionError` unless the part of ``cell``'s log that a snapshot holding ``series`` sees is
    sound (for the store's invariant checker; the writer may be extending the rest meanwhile).
    O(logged bars)."""
    assert cell.base is not None or cell.parent is not None
    count = series.size - cell.base_len
    assert 0 <= count <= cell.end - cell.base_len, "a snapshot sees past its log"
    every = list(cell.segs)
    # Only closed stretches: the writer may be between extending the newest one and noting its last offset.
    for seg in every[:-1]:
        assert seg.last == (seg.offsets[-1] if seg.offsets else -1), "a stretch's last offset is stale"
    segs = [seg for seg in every if seg.start < count]
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
