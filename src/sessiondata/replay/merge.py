"""`KnownTimeMerge`: the replay's pure, single-threaded k-way merge of sources by known time.

`KnownTimeMerge.groups` yields the items in the coordinator's documented order: by known time (a bar at its
end, a tick or quote at its timestamp), ties by stream type, symbol, then registration order; items of one
source in source order. It yields them a `Group` at a time: consecutive items of one kind, one known time
and one session date (typically every symbol's bar of one minute), so that what its owner does per known
time is done once per group, and per item only what must be (the coordinator's store write, in C). Items
outside the regular session (unless ``regular_only`` is false) are skipped and counted in ``filtered``; an
item before its source's previous one is an `InvalidDataError` or, with ``drop_out_of_order``, skipped and
counted in ``dropped``. A source that may block (a generator, a file, a socket) ends a group after each of
its items and is pulled only when the merge is resumed, so the owner can hand its items over first.

No threads, no locks, no store: the coordinator (`sessiondata.replay.coordinator`) wraps it with the worker
thread, pacing, pause/stop and the store writes. ``poll`` (optional) is called while a run of skipped items
goes on, so the wrapper can honour a stop request however long a source keeps skipping. Sources may be
added or removed between groups (`change`); the merge applies the change before choosing its next item.

Keys: every timestamp is brought to one kind, the reference's (``ref_naive``, else the first item's): naive
data is keyed by the naive datetime itself (exchange-local wall time); aware data by the timedelta since the
epoch, because comparing aware datetimes whose tzinfo objects differ (as parsed from ISO strings) costs
~200 ns per comparison, and a timedelta compares in ~12 ns.
"""

from __future__ import annotations

import collections
import heapq
import operator
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sessiondata._calendar import SessionClock
from sessiondata._models import Bar, InvalidDataError, SessionDataError

__all__ = ["NON_BLOCKING_ITERATORS", "Group", "KnownTimeMerge", "Source", "SourceError", "check_item"]

_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NO_DATE = date.min

# Iterators over in-memory containers never block, so items pulled from them may wait in a batch; any
# other source (a generator, a file, a socket) might block.
NON_BLOCKING_ITERATORS: frozenset[type] = frozenset(
    type(iter(x))  # type: ignore[var-annotated]
    for x in ([], (), range(0), collections.deque(), {}, "", b"")
) | frozenset({type(reversed([]))})


class SourceError(SessionDataError, RuntimeError):
    """A source raised while the merge pulled from it; the message names the stream."""


class _Lowest:
    """Below every merge key: a source's `last` before its first item (spares a None test per item)."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return True

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return False


_LOWEST = _Lowest()


class Source:
    """One source in the merge and its bookkeeping (touched only by the merging thread once running).

    ``may_block``: whether pulling from the source might wait on something outside the process (by
    default, unless it iterates an in-memory container); `KnownTimeMerge.groups` ends a group after each
    of its items.
    """

    __slots__ = (
        "cls",
        "day",
        "dropped",
        "exhausted",
        "is_bar",
        "it",
        "item",
        "key",
        "known",
        "label",
        "last",
        "may_block",
        "next_item",
        "pulled",
        "rank",
        "sort_key",
        "symbol",
    )

    def __init__(
        self, symbol: str, cls: type[Any], it: Iterator[Any], sort_key: tuple[int, str, int]
    ) -> None:
        self.symbol = symbol
        self.cls = cls
        self.is_bar = cls is Bar
        self.it = it
        # The iterator's own ``__next__``: a call of it costs about half of ``next(it, default)`` (the end
        # is its `StopIteration`).
        self.next_item: Callable[[], Any] = it.__next__
        self.sort_key = sort_key
        self.label = symbol
        self.key: Any = None
        self.rank = 0
        self.may_block = type(it) not in NON_BLOCKING_ITERATORS
        # Merge key of the last item pulled (its timestamp's, not its known time's).
        self.last: Any = _LOWEST
        self.pulled = 0
        self.dropped = 0
        self.exhausted = False
        # The pending item (pulled, not yet yielded), its known-time key and its session date. The source
        # itself is the merge's entry: no tuple per item.
        self.item: Any = None
        self.known: Any = None
        self.day: date = _NO_DATE


_rank = operator.attrgetter("rank")
_sort_key = operator.attrgetter("sort_key")


class KnownTimeMerge:
    """Merge `Source` objects by known time (see the module documentation). Single-threaded.

    ``clock``: the store's `SessionClock` (the session filter and exchange dates); ``ref_naive``: the key
    kind (``None``: the first item's). Iterate it once. O(log buckets) per item that opens a known time of
    its own, O(1) for an item sharing its known time with the bucket before (one bar per symbol and minute).
    """

    def __init__(
        self,
        clock: SessionClock,
        *,
        regular_only: bool = True,
        drop_out_of_order: bool = False,
        ref_naive: bool | None = None,
        poll: Callable[[], None] | None = None,
        source_error: Callable[[Source, Exception], Exception] | None = None,
    ) -> None:
        self._source_error = source_error or default_source_error
        self._sclock = clock
        self._tz: tzinfo = clock.tz
        self._regular_only = regular_only
        self._drop_ooo = drop_out_of_order
        self.ref_naive = ref_naive
        self._poll = poll
        self.filtered = 0
        self.dropped = 0
        # Pending items (one per active source) grouped by known time: a heap of buckets (known-time key,
        # sequence number, the sources pending then). Two buckets may share a key; they are merged when
        # taken out, then sorted on rank (mostly linear: filled in the rank order of the bucket before).
        self._kheap: list[tuple[Any, int, list[Source]]] = []
        self._seq = 0
        self._changes: list[tuple[str, Source]] = []
        # The session date cached by `_settle`: keys in [c_lo, c_hi) are that date's (`date_bounds`), in
        # [c_open, c_close) the stretch of trading minutes (breaks cut out) its last located item is in;
        # [f_lo, f_hi) needs neither test.
        self._c: tuple[Any, ...] = (None, None, None, None, None)
        self._f: tuple[Any, Any] = (None, None)
        # The last bar keyed, naive or with a `timezone` or `ZoneInfo`: (timestamp, fold, tzinfo, key,
        # known key, session date). The bars of one minute of many symbols come one after another; an
        # equal bar reuses the keys (an equal timestamp, and the same fold where it matters: see
        # `_hit_fields`; one C-level comparison, cheapest when the timestamps share a zone object or are
        # the same object, as a repository reads them). Cleared whenever the date range moves.
        self.hit: tuple[Any, ...] | None = None

    # ------------------------------------------------------------------ keys

    def to_key(self, ts: datetime) -> Any:
        """The merge key of ``ts`` (fixing the key kind on first use). O(1)."""
        if self.ref_naive is None:
            self.ref_naive = ts.tzinfo is None
        if self.ref_naive:
            return ts if ts.tzinfo is None else ts.astimezone(self._tz).replace(tzinfo=None)
        return (ts.replace(tzinfo=self._tz) if ts.tzinfo is None else ts) - _EPOCH

    def key_time(self, k: Any) -> datetime:
        """The time a key stands for (naive exchange-local, or aware in the exchange's zone). O(1)."""
        return k if self.ref_naive else (_EPOCH + k).astimezone(self._tz)  # type: ignore[no-any-return]

    def _wall_key(self, wall: datetime) -> Any:
        return wall if self.ref_naive else wall.replace(tzinfo=self._tz) - _EPOCH

    # ------------------------------------------------------------ sources

    def start(self, sources: list[Source]) -> None:
        """Prime ``sources`` (pull each one's first item) and build the merge. Before iterating."""
        primed: list[Source] = []
        for s in sorted(sources, key=_sort_key):
            if self._pull(s) is None:
                s.exhausted = True
            else:
                primed.append(s)
        self._rebuild(primed)

    def change(self, op: str, source: Source) -> None:
        """``op`` is ``"add"`` or ``"remove"``: applied before the next item is chosen. O(1) here."""
        self._changes.append((op, source))

    @property
    def changes_pending(self) -> bool:
        """Whether changes wait to be applied: after an iteration ran dry, a new `groups` iteration
        applies them and goes on (a source added just as the last one ended). O(1)."""
        return bool(self._changes)

    def _settle(self, st: Source, item: Any) -> Source | None:
        # `item` was just pulled from `st`: check it, key it, filter it, make it pending; None if skipped.
        if type(item) is not st.cls or item.symbol != st.symbol:
            check_item(item, st.cls, st.symbol, st.label, st.pulled)
        st.pulled += 1
        ts = item.timestamp
        k = self.to_key(ts)
        if k < st.last:
            if self._drop_ooo:
                st.dropped += 1
                self.dropped += 1
                return None
            raise InvalidDataError(
                f"out-of-order item #{st.pulled - 1} in source {st.label}: {item!r} is before the "
                f"previous item's timestamp {self.key_time(st.last).isoformat()}"
            )
        st.last = k
        c_lo, c_hi, c_open, c_close, c_day = self._c
        f_lo, f_hi = self._f
        if f_lo is None or not f_lo <= k < f_hi:
            if c_lo is None or not c_lo <= k < c_hi:
                c_day = self._sclock.session_date(ts)  # an overnight session's evening is its date's
                c_lo, c_hi = map(self._wall_key, self._sclock.date_bounds(c_day))
                c_open = c_close = f_lo = f_hi = None
                self.hit = None
            if self._regular_only:
                if c_open is None or not c_open <= k < c_close:
                    # Not in the trading stretch located last: another stretch of the session (after a
                    # break), a break, or outside the session. Locate it.
                    loc = self._sclock.locate(ts)
                    if loc is None:
                        self._c = (c_lo, c_hi, c_open, c_close, c_day)
                        self._f = (f_lo, f_hi)
                        self.filtered += 1
                        return None
                    wall = ts if ts.tzinfo is None else ts.astimezone(self._tz).replace(tzinfo=None)
                    wall = wall.replace(second=0, microsecond=0) - loc[1] * _MINUTE
                    first, stop = self._sclock.stretch(loc[0], loc[1])
                    c_open = self._wall_key(wall + first * _MINUTE)
                    c_close = self._wall_key(wall + stop * _MINUTE)
                    f_lo, f_hi = max(c_open, c_lo), min(c_close, c_hi)
                    self.hit = None
            else:
                f_lo, f_hi = c_lo, c_hi
            self._c = (c_lo, c_hi, c_open, c_close, c_day)
            self._f = (f_lo, f_hi)
        st.item = item
        st.day = c_day
        if st.is_bar:
            st.known = known = k + _MINUTE
            if (tzi := ts.tzinfo) is None or type(tzi) is timezone or type(tzi) is ZoneInfo:
                self.hit = (ts, ts.fold, tzi, k, known, c_day)
        else:
            st.known = k
        return st

    def _pull(self, st: Source) -> Source | None:
        # Make the next item of `st` that is not skipped pending; None once exhausted.
        poll = self._poll
        skipped = 0
        while True:
            try:
                item: Any = st.next_item()
            except StopIteration:
                return None
            except Exception as exc:
                raise self._source_error(st, exc) from exc
            if self._settle(st, item) is not None:
                return st
            skipped += 1
            if poll is not None and not skipped & 63:
                poll()  # however long a source keeps skipping, a stop request is seen

    def _rebuild(self, active: list[Source]) -> None:
        # Ranks only need to be unique among the sources with an item pending.
        active.sort(key=_sort_key)
        by_key: dict[Any, list[Source]] = {}
        for i, st in enumerate(active):
            st.rank = i
            by_key.setdefault(st.known, []).append(st)
        self._kheap = [(k, i, b) for i, (k, b) in enumerate(by_key.items())]
        heapq.heapify(self._kheap)
        self._seq = len(self._kheap)

    def _apply_changes(
        self, rest: list[Source], deferred: tuple[Any, int, list[Source]] | None = None
    ) -> None:
        # `rest`: what is left of the bucket in hand, `deferred` a bucket not yet in the heap (both join
        # the rebuilt buckets).
        if deferred is not None:
            heapq.heappush(self._kheap, deferred)
        changes = self._changes[:]
        self._changes.clear()  # in place: the iteration holds the list
        removed = {id(s) for op, s in changes if op == "remove"}
        pending = [s for s in rest if id(s) not in removed]
        pending += (s for _, _, b in self._kheap for s in b if id(s) not in removed)
        for op, s in changes:
            if op == "add" and id(s) not in removed:
                if self._pull(s) is None:
                    s.exhausted = True
                else:
                    pending.append(s)
        self._rebuild(pending)

    # ------------------------------------------------------------ iteration

    def groups(self) -> Iterator[Group]:
        """Iterate the merge: each `Group` holds consecutive items of one kind, one known time and one
        session date, in the documented order. Iterate it once.

        A group ends where its kind, known time or session date ends, and right after an item of a source
        that may block (``Source.may_block``): that source's next item is pulled only when the iteration
        is resumed, so the owner can act first (write the items, offer them to a consumer). Every other
        source's next item is pulled as soon as its item joins the group. A source that raises, or an
        invalid or out-of-order item, ends the group early: the items before it are yielded first, then
        the error is raised when the iteration resumes. Changes (`change`) are applied before the next
        item is chosen. O(1) per item sharing its known time with the bucket before (one bar per symbol
        and minute), O(log buckets) per item that opens a known time of its own."""
        return self._groups()

    def _groups(self) -> Iterator[Group]:
        # One hot loop with locals bound up front: per-item cost is what limits replay speed.
        settle, pull, heappush, length_hint = self._settle, self._pull, heapq.heappush, operator.length_hint
        changes = self._changes
        rest: list[Source] = []  # when changes cut the walk of a bucket short, what is left of it
        # The bucket the last item was placed in (not the one in hand): the next item usually goes there.
        last_k: Any = None
        last_b: list[Source] = []
        # A bucket made once every source in hand was done, not yet in the heap (see `_next_bucket`).
        deferred: tuple[Any, int, list[Source]] | None = None
        # The last bar keyed (see `hit`), unpacked: refreshed after each `settle` or `pull`.
        h_ts, h_fold, h_k, h_known, h_day, h_plain = self._hit_fields()
        add_item = (group := Group()).items.append
        gcls: Any = None  # the record class of the group's items (None: the group is empty)
        hit_cls: Any = None
        while True:
            if changes:
                self._apply_changes(rest, deferred)
                rest, deferred = [], None
                h_ts, h_fold, h_k, h_known, h_day, h_plain = self._hit_fields()
            if gcls is not None:  # the known time ended (or changes cut it short)
                yield group
                add_item, gcls = (group := Group()).items.append, None
                continue  # changes may have come meanwhile
            bucket = self._next_bucket(deferred)
            if bucket is None:
                return
            cur_known, walk = bucket  # the known time in hand and its sources, walked in rank order
            deferred = last_k = None  # `last_k` is never `cur_known`: see the placement below
            for st in walk:
                while True:  # `st`'s items known at `cur_known`, in source order
                    if st.cls is not gcls:
                        # One kind of record per group, so one session date too: the items of one kind
                        # and known time share a timestamp, but a bar's date is its start's, a tick's its own.
                        if gcls is not None:
                            yield group
                            add_item, gcls = (group := Group()).items.append, None
                            if changes:
                                rest = [st, *walk]  # ends the walk; `st`'s item stays pending
                                break
                        gcls = st.cls
                        group.cls, group.known, group.day = gcls, cur_known, st.day
                        # The class an item must have to reuse the last bar's keys: the group's, if bars.
                        # Not reset with the group: it stays the emitted source's until a group starts.
                        hit_cls = gcls if gcls is Bar else None
                    add_item(st.item)
                    if st.may_block:
                        group.last = st
                        yield group  # the source's next item is pulled once the owner is done with this one
                        add_item, gcls = (group := Group()).items.append, None
                        if changes:
                            changes.append(("add", st))  # pulled with the changes (unless removed)
                            rest = [*walk]  # ends the walk
                            break
                    # The next item of `st`: a bar equal to the last bar keyed (see `hit`) takes its keys.
                    try:
                        item = st.next_item()
                    except StopIteration:
                        st.exhausted = True
                        break
                    except Exception as exc:
                        if gcls is not None:
                            yield group  # the items before the failure are handed out first
                        raise self._source_error(st, exc) from exc
                    if (
                        type(item) is hit_cls  # a bar from a source of bars (`st` is of the group's class)
                        and item.symbol == st.symbol
                        and (ts := item.timestamp) == h_ts
                        and (h_plain or ts.fold == h_fold)
                        and not h_k < st.last
                    ):
                        st.pulled += 1
                        st.last = h_k
                        st.item = item
                        st.day = h_day
                        st.known = k = h_known
                    else:
                        try:
                            found = settle(st, item) or pull(st)
                        except SessionDataError:  # an invalid item, or a source failing while skipping
                            if gcls is not None:
                                yield group
                            raise
                        h_ts, h_fold, h_k, h_known, h_day, h_plain = self._hit_fields()
                        if found is None:
                            st.exhausted = True
                            break
                        k = st.known
                    if k is last_k:
                        last_b.append(st)
                    elif k == cur_known:
                        continue  # the same source again at the same known time: next in order
                    elif k == last_k:
                        last_b.append(st)
                    else:
                        last_b = [st]
                        last_k = k
                        self._seq += 1
                        if length_hint(walk):
                            heappush(self._kheap, (k, self._seq, last_b))
                        else:
                            deferred = (k, self._seq, last_b)
                    break

    def _next_bucket(
        self, deferred: tuple[Any, int, list[Source]] | None
    ) -> tuple[Any, Iterator[Source]] | None:
        # The next known time and its sources in rank order (None: nothing is pending). `deferred` joins
        # the heap as the smallest bucket is taken out (it often is that bucket).
        kheap = self._kheap
        if deferred is not None:
            known, _, cur = heapq.heappushpop(kheap, deferred)
        elif kheap:
            known, _, cur = heapq.heappop(kheap)
        else:
            return None
        while kheap and kheap[0][0] == known:
            cur += heapq.heappop(kheap)[2]
        if len(cur) > 1:
            cur.sort(key=_rank)  # mostly linear: filled in the rank order of the bucket before
        return known, iter(cur)

    def _hit_fields(self) -> tuple[Any, ...]:
        # `hit`'s fields the hot loop compares (a timestamp of None equals none), and whether an equal
        # timestamp alone gives the same keys whatever its fold: a naive one under naive keys (the key is
        # the timestamp itself), or any equal to one with a fixed offset (equal is then the same instant,
        # and the keys and the session date follow the instant). Two aware timestamps sharing a `ZoneInfo`
        # compare their wall times, fold ignored, so their folds must match too.
        h = self.hit
        if h is None:
            return (None, 0, None, None, _NO_DATE, False)
        ts, fold, tzi, key, known, day = h
        return (ts, fold, key, known, day, (tzi is None and bool(self.ref_naive)) or type(tzi) is timezone)


class Group:
    """Consecutive items of one kind, one known time and one session date, as `KnownTimeMerge.groups`
    yields them: ``items`` (a plain list, the caller's to keep), ``cls`` (their sources' record class:
    `Bar`, `Tick` or `Quote`; an item may be an instance of a subclass), ``known`` (the known-time key)
    and ``day`` (the session date). ``last`` is the source of the last item when that source may block
    (it is pulled when the iteration resumes), else None."""

    __slots__ = ("cls", "day", "items", "known", "last")

    def __init__(self) -> None:
        self.cls: type[Any] = object
        self.known: Any = None
        self.day: date = _NO_DATE
        self.items: list[Any] = []
        self.last: Source | None = None


def default_source_error(st: Source, exc: Exception) -> SourceError:
    """The error for ``exc`` raised by ``st``'s iterator, naming the stream."""
    return SourceError(f"source {st.label} raised after {st.pulled} items: {exc!r}")


def check_item(item: object, cls: type[Any], symbol: str, label: str, index: int) -> None:
    """Raise `InvalidDataError` naming the source unless ``item`` is a ``cls`` record for ``symbol``."""
    if not isinstance(item, cls):
        raise InvalidDataError(
            f"item #{index} of source {label} is not a {cls.__name__}: {type(item).__name__} {item!r}"
        )
    if item.symbol != symbol:
        raise InvalidDataError(
            f"item #{index} of source {label} is for symbol {item.symbol!r}, not {symbol!r}: {item!r}"
        )
