"""Deferred accounting: while nobody reads a symbol's derived bars or bar quality, the store's in-order
1-minute bars are owed that work, and a read does it.

Why: deriving 5m/15m bars and counting bar quality as each 1-minute bar arrives costs most of a write (placing
the bar in its session, a window step per interval, a new writer record), paid for every symbol whether or
not anything reads the result, and in a wide replay most symbols' derived bars and quality are never read
between bars. So with the store's ``derivation="lazy"`` (the default) a streamed bar newer than every stored
one is only appended, and a read of derived bars or of bar quality settles what is owed in one pass over the
bars appended since. A few owed bars (a reader polling as bars arrive) are stepped one by one with the
eager lane's own per-bar steps (`count_minute` for bar quality; `advance_newest`, or `advance_passed`
outside the session, for the windows); many are cut into session stretches (`cut_run`), their minutes
counted (`count_run`) and the window machine run over them at once (`advance_in_order`, the batch path).
Each window is built once per settle: O(1) amortized per bar.

A `Deferred` is shared by a lineage of snapshots: the derived states and quality state at ``base_len``
1-minute bars; each snapshot owes the bars between that and its own count (the series itself is the log),
so older snapshots stay exact while the writer appends. Settling is a pure function of a snapshot (its
1-minute bars).

Who writes what. The writer alone, under the store's lock, builds a `Deferred` (``base``, ``base_quality``,
``base_len``, ``parent``, ``cursor``: fixed from then on). Readers write two slots, ``memos`` and
``quality_memo``: caches of settled versions (see `Deferred.__init__`), which the writer never reads. So a
read cannot change a write: the writer settles from the base itself (`derive`, `derive_quality`) before any
write that is not an in-order append (a bar out of order, a correction) and at ``end_session`` (whose flush
is owed too, as a child `Deferred` whose base is its parent's state, flushed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import NamedTuple

from sessiondata._calendar import SessionClock, SessionCursor
from sessiondata._models import Bar

from .quality import QualityState, count_minute, count_run, cut_run, first_marker, quality_of
from .series import Series
from .windows import DerivedState, advance_in_order, advance_newest, advance_passed

__all__ = ["Deferred", "Memo", "check_deferred"]


class Memo(NamedTuple):
    """A settled version of the derived states: the ``states`` after the first ``logged`` owed bars.
    Immutable: a reader publishes a new one, never edits one (see `Deferred.memos`)."""

    logged: int
    states: Mapping[int, DerivedState]


# A settled version of bar quality: ``(logged, day, minutes, newest, value)``, the quality state
# (`QualityState`'s first three fields; ``day`` None before the first located bar) after the first ``logged``
# owed bars, and its value (the percentage). A plain tuple, immutable: a reader polling quality after every
# bar builds one per read, and a plain tuple is built and unpacked in one C call each.
_QualityMemo = tuple[int, date | None, int, int, float]


# Owed bars up to this many settle quality bar by bar (`count_minute`); more go by the run logic, whose
# fixed cost (cutting the run into stretches) a few bars do not repay.
_STEPPED = 8

# How many settled versions each memo tuple keeps: a reader a few versions behind the newest still finds a
# start.
_MEMOS = 4


def _flushed(
    states: Mapping[int, DerivedState], symbol: str, bars_1m: Series[Bar]
) -> Mapping[int, DerivedState]:
    """``states`` with every forming window completed (the store's ``end_session``). O(intervals * k)."""
    return MappingProxyType({k: s.flush(symbol, bars_1m) for k, s in states.items()})


class Deferred:
    """Work owed by a lineage of snapshots: the derived and quality states at ``base_len`` 1-minute bars;
    every bar after those, up to a snapshot's own count, was appended in order and is owed.

    `settled` and `quality` (readers) and `derive` and `derive_quality` (the writer) are safe from any thread
    without a lock (see the module docstring).
    """

    __slots__ = ("base", "base_len", "base_quality", "clock", "cursor", "memos", "parent", "quality_memo")

    def __init__(
        self,
        base: Mapping[int, DerivedState] | None,
        base_quality: QualityState | None,
        base_len: int,
        cursor: SessionCursor,
        parent: Deferred | None = None,
    ) -> None:
        # The derived states at `base_len` bars; None for a flush child (its parent's states there,
        # flushed). Fixed, like every field but the memos.
        self.base = base
        # The quality state at `base_len` bars, None before the first bar located in a session. A flush
        # child's is None too: it counts from its parent's state there (a flush adds no minute).
        self.base_quality = base_quality
        self.base_len = base_len
        self.parent = parent
        # Places the owed bars: the store's readers' cursor (a `SessionCursor` is safe to share between
        # threads), not the writer's, so that a reader settling old bars never moves the writer's stretch.
        self.cursor = cursor
        # Its clock (which also places windows on a day whose clocks change).
        self.clock: SessionClock = cursor.clock

        # `memos` and `quality_memo` are the readers' caches of settled versions, each the immutable result
        # of settling the owed bars up to the count it names (`logged`, a snapshot's own bar count less
        # `base_len`): `memos` the newest few derived versions (at most `_MEMOS`, newest first),
        # `quality_memo` the newest quality version (a reader polling quality steps it on by the bars since).
        # They guard nothing but repeated work: a reader starts from the newest memo at or before its own
        # version instead of from the base. Readers on any thread replace a memo in one reference store,
        # without a lock: a racy but idempotent cache. Two readers settling the same version compute equal
        # states, and when two replace a memo at once the last store wins; the loser's memo is lost, which
        # costs a later reader a recompute and never a wrong answer (memos are never edited, only
        # replaced). The writer never reads them (`derive` settles from the base) and never writes them; the
        # memory accounting only measures them.
        self.memos: tuple[Memo, ...] = ()
        self.quality_memo: _QualityMemo | None = None

    def owes(self, count: int) -> bool:
        """Whether settling the snapshot of ``count`` 1-minute bars could change anything: bars owed, or a
        flush owed. O(1). Reads only fields the writer wrote: a read never changes the answer."""
        return count > self.base_len or self.base is None

    # ------------------------------------------------------------------ derived states

    def settled(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        """The derived states of the snapshot whose 1-minute bars are ``series`` (a version of this
        lineage), for a reader: starts from the newest memo at or before that version and remembers the
        result.

        O(1) when settled at that version; else O(bars owed since the newest remembered version at or
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
            start = Memo(0, self._base_states(series, symbol, writer=False))
            if self.base is None:
                self.memos = self._remembered(self.memos, start)
        if start.logged == count:
            return start.states
        new = Memo(count, self._run(start, series, symbol, count))
        self.memos = self._remembered(self.memos, new)
        return new.states

    def derive(self, series: Series[Bar], symbol: str) -> Mapping[int, DerivedState]:
        """`settled`, for the writer: the same states, settled from the base alone. Reads no memo and
        writes none, so what the writer publishes never depends on who read before.

        O(bars owed + k per window built) (a flush child: plus its parent's). Thread-safety: any thread,
        lock-free; the writer calls it under the store's lock."""
        count = series.size - self.base_len
        base = self._base_states(series, symbol, writer=True)
        if count == 0:
            return base
        return self._run(Memo(0, base), series, symbol, count)

    def _base_states(self, series: Series[Bar], symbol: str, *, writer: bool) -> Mapping[int, DerivedState]:
        """The derived states at the base: ``base``, or for a flush child its parent's there, settled
        (`derive` for the ``writer``, else `settled`), flushed. O(1), or the parent's settle."""
        base = self.base
        if base is not None:
            return base
        parent = self._parent()
        head = series.head(self.base_len)
        states = parent.derive(head, symbol) if writer else parent.settled(head, symbol)
        return _flushed(states, symbol, head)

    def _run(self, memo: Memo, series: Series[Bar], symbol: str, count: int) -> Mapping[int, DerivedState]:
        """The states after owed bars ``memo.logged..count-1``, in one `advance_in_order`.

        O(bars + windows * k)."""
        states = memo.states
        if not states:
            return states
        lo = self.base_len + memo.logged
        run = series.last_n(count - memo.logged)  # the owed bars run to the series' end
        if len(run) <= _STEPPED:
            stepped = self._stepped(states, series, symbol, lo, run)
            if stepped is not None:
                return stepped
        stamps = [b.timestamp for b in run]
        before = series.head(lo)
        segments = cut_run(stamps, self.cursor)
        advanced = advance_in_order(states, symbol, stamps, segments, before, run, self.clock)
        return states if advanced is None else MappingProxyType(advanced)

    def _stepped(
        self, states: Mapping[int, DerivedState], series: Series[Bar], symbol: str, lo: int, run: list[Bar]
    ) -> Mapping[int, DerivedState] | None:
        """The states after the owed bars ``run`` (``series[lo:lo + len(run)]``), stepped bar by bar as the
        eager hot lane steps them (`advance_newest`, `advance_passed` outside the session): for a few
        bars, cheaper than the run logic's fixed cost. None on a session date whose clocks change (the
        run logic then settles the bars: there a newer bar may sit at an earlier wall minute, which the
        per-bar step never sees in the eager lane either). O(bars * intervals), plus O(k) per window
        built."""
        place = self.cursor.place
        clock = self.clock
        for end, bar in enumerate(run, lo + 1):
            ts = bar.timestamp
            placed = place(ts)
            if placed is None:
                states = advance_passed(states, symbol, ts, series.head(end), clock)
                continue
            day = placed[0]
            if clock.clock_change(day) is not None:
                return None
            states = advance_newest(states, bar, series.head(end), day, placed[1], placed[2], clock)[0]
        return states

    # ------------------------------------------------------------------ bar quality

    def quality_after(self, storage: Series[Bar], count: int, newest: Bar | None) -> float:
        """`quality` of the snapshot of ``count`` bars of ``storage`` whose newest bar is ``newest``, for a
        reader polling quality as bars arrive: when the newest memo is that snapshot's, or the one before
        it (one bar owed: ``newest``), the answer comes from the memo or one per-bar step (`_step`) without
        building the snapshot's series version; else as `quality`.

        O(1) in those two cases, else as `quality`. Thread-safety: as `quality`."""
        memo = self.quality_memo
        if memo is not None:
            owed = count - self.base_len
            logged = memo[0]
            if logged == owed:
                return memo[4]
            if logged == owed - 1 and newest is not None:
                stepped = self._step(memo, newest)
                if stepped is not None:
                    self._remember_quality(stepped)
                    return stepped[4]
        return self._quality_memo_at(storage.view(count))[4]

    def quality(self, series: Series[Bar]) -> float:
        """Bar quality of the snapshot whose 1-minute bars are ``series`` (a version of this lineage), for a
        reader: steps the newest quality memo on when it is at or before that version, and remembers the
        result when it is newer. Derives no window.

        O(1) when settled at that version; else O(bars owed since the memo, or since the base for a snapshot
        older than the memo). Thread-safety: any thread, lock-free; concurrent callers may duplicate work,
        never corrupt it (like `settled`)."""
        return self._quality_memo_at(series)[4]

    def _quality_memo_at(self, series: Series[Bar]) -> _QualityMemo:
        count = series.size - self.base_len
        memo = self.quality_memo
        if memo is None or memo[0] > count:
            memo = self._quality_base(series)
        if memo[0] != count:
            memo = self._count(memo, series, count)
            self._remember_quality(memo)
        return memo

    def _remember_quality(self, memo: _QualityMemo) -> None:
        """Keep ``memo`` for later readers unless the remembered one is as new (one reference store: see
        `quality_memo`)."""
        newest = self.quality_memo
        if newest is None or newest[0] < memo[0]:
            self.quality_memo = memo

    def _quality_base(self, series: Series[Bar]) -> _QualityMemo:
        """The quality memo at the base: ``base_quality``, or a flush child's parent's at the flush (a
        flush adds no minute), for a reader. O(1), or the parent's settle."""
        if self.base is None:
            return (0, *self._parent()._quality_memo_at(series.head(self.base_len))[1:])
        return self._start(self.base_quality)

    def _start(self, state: QualityState | None) -> _QualityMemo:
        """The quality memo of no owed bar counted yet, at ``state``. O(1)."""
        if state is None:
            return (0, None, 0, -1, 0.0)
        return (0, state.day, state.minutes, state.newest, quality_of(state, self.clock))

    def derive_quality(self, series: Series[Bar]) -> QualityState | None:
        """The quality state `quality` counts, for the writer: settled from the base alone, reading and
        writing no memo. O(bars owed) (a flush child: plus its parent's). Thread-safety: as `derive`."""
        count = series.size - self.base_len
        if self.base is None:
            state = self._parent().derive_quality(series.head(self.base_len))
        else:
            state = self.base_quality
        _, q_day, q_minutes, q_newest, _ = self._count(self._start(state), series, count)
        if q_day is None:
            return None
        if state is not None and (q_day, q_minutes, q_newest) == state[:3]:
            return state
        return QualityState(q_day, q_minutes, q_newest, first_marker(self.clock, q_day))

    def _count(self, memo: _QualityMemo, series: Series[Bar], count: int) -> _QualityMemo:
        """``memo`` moved on over owed bars ``memo[0]..count-1``. A few bars (a reader polling quality) go
        bar by bar as the eager hot lane counts them (`count_minute`); more, or the rest from a bar where
        clocks went back inside the session, go by the batch path's run logic (`cut_run`, `count_run`: one
        bisection per session stretch for naive stamps). O(bars), plus O(log n) per bar in a repeated wall
        minute."""
        # The owed bars from ``memo[0]`` on run to the series' end (``count`` is its own): the newest ones,
        # one slice in the common case.
        bars = series.last_n(count - memo[0])
        rest = 0  # the bars from here on go by the run logic
        if len(bars) <= _STEPPED:
            for rest, bar in enumerate(bars):  # noqa: B007 (``rest`` is where a break left off)
                stepped = self._step(memo, bar)
                if stepped is None:
                    break  # clocks went back inside the session
                memo = stepped
            else:
                return memo
        _, q_day, q_minutes, q_newest, value = memo
        stamps = [b.timestamp for b in bars[rest:]]
        before = None if q_day is None else QualityState(q_day, q_minutes, q_newest, None)
        cut = cut_run(stamps, self.cursor)
        state = count_run(before, cut, stamps, series, series.size - len(stamps), self.clock)
        if state is None or state is before:
            return count, q_day, q_minutes, q_newest, value
        return count, state.day, state.minutes, state.newest, quality_of(state, self.clock)

    def _step(self, memo: _QualityMemo, bar: Bar) -> _QualityMemo | None:
        """``memo`` moved on over one owed ``bar`` (the next after ``memo[0]``), as the eager hot lane counts
        it (`count_minute`); None when its minute is earlier than the newest counted one of its day (clocks
        went back inside the session: the run logic counts a repeated wall minute once). O(1)."""
        logged, q_day, q_minutes, q_newest, value = memo
        placed = self.cursor.place(bar.timestamp)
        if placed is None:
            return logged + 1, q_day, q_minutes, q_newest, value  # outside every session: no minute
        counted = count_minute(q_day, q_minutes, q_newest, placed[0], placed[1])
        if counted is None:
            return None
        day, minutes, newest = counted
        if day is not q_day or minutes != q_minutes:
            value = 100.0 * minutes / placed[3]
        return logged + 1, day, minutes, newest, value

    # ------------------------------------------------------------------ shared

    def _parent(self) -> Deferred:
        parent = self.parent
        assert parent is not None  # a Deferred without a base is a flush child
        return parent

    @staticmethod
    def _remembered(memos: tuple[Memo, ...], memo: Memo) -> tuple[Memo, ...]:
        """``memos`` with ``memo`` first, unless a newer one is there (the caller stores the result in
        one reference store, see `memos`)."""
        if not memos or memos[0].logged < memo.logged:
            return (memo, *memos[: _MEMOS - 1])
        return memos


def check_deferred(cell: Deferred, series: Series[Bar]) -> None:
    """Raise `AssertionError` unless ``cell`` is sound for a snapshot holding ``series`` (for the store's
    invariant checker). O(memos + the lineage's flush children)."""
    assert cell.base is not None or cell.parent is not None, "a flush child without a parent"
    assert cell.base is not None or cell.base_quality is None, "a flush child keeps its own quality base"
    assert series.size >= cell.base_len, "a snapshot before its lineage's base"
    counts = [m.logged for m in cell.memos]
    assert counts == sorted(counts, reverse=True), "memos not newest first"
    assert len(set(counts)) == len(counts), "two memos of one version"
    memo = cell.quality_memo
    assert memo is None or len(memo) == 5, "a quality memo is (logged, day, minutes, newest, value)"
    if cell.parent is not None:
        check_deferred(cell.parent, series.head(cell.base_len))
