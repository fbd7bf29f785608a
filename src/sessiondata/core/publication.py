"""`PublicationGate`: holds a store's writes back from its readers until a consumer reaches them.

A replay's worker thread writes ahead of the strategy that consumes `merged_stream()`; without a gate every
reader would see those later items. While a gate is held, the store keeps two states:

- the **heads**, what writers build on (a plain dict, as in direct mode), and
- the **view**, what every public read answers from (a plain dict of immutable snapshots, plus the
  lifecycle: ``session_ended``, ``current_session_date``, ``version``).

Every write lands in the heads and appends one entry to the gate's log: the new snapshot for a
one-symbol publication (its key is ``snapshot.symbol``; the store's one publish step appends it through the
log's bound ``append``, which
the gate hands the store and hands it again whenever `take` starts a new log, so a gated write costs an
ungated one plus a list append), or a `_Full` record (a copy of the whole dict and the lifecycle) when
the set of symbols or the lifecycle changes (registration, `end_session`, `start_new_session`,
`clear_all`). The worker cuts the log into segments (`take`) and, each time its known time moves on,
records the log position (`mark`): the end of the previous known time's writes. The consumer makes the
entries up to that position visible (`upto`) just before it yields that known time's items, so while it
handles an item every read answers as the store stood right after the last item of the same known time
was written: nothing known later is visible (items sharing the known time may be), and the answer does
not depend on thread timing.

Because snapshots are immutable, applying an entry is one dict assignment; a `_Full` entry installs a new
dict (a reader iterating the old one is never disturbed). Each log segment (`Segment`) also lists where
its entries that are not snapshots are, so the consumer installs each run of snapshots between them with
one C-level ``dict.update``: ~0.07 µs per write instead of ~0.17 µs for a Python-level step each. The
entry is the snapshot itself, not a ``(symbol, snapshot)`` pair: a write already leaves a few tracked
objects alive until the consumer gets there (today the snapshot, its `WriterState` and its bars
`Series`), and a pair would add one more for CPython's cyclic collector to count and scan (see "The
run-ahead and the garbage collector" in the performance guide).
`close` publishes everything and hands the store back to direct mode, where the heads and the view are one
dict again (today's write path, unchanged).

**Following the writers.** Until a consumer is attached, nobody moves the view, yet other threads should see
the replay's writes. `follow(True)` points the readers at the heads themselves (every write visible at once,
the writers' lifecycle) while the log is still kept; `follow(False)` (a consumer attached) points them back
at the view, which stands where the last consumer left it: before the first item still to be handed out.
So a consumer attaching late still reads the store as of each item, and a replay nobody consumes is
visible as it goes.

**Steps.** `record_step(fn, value)` logs a call the consumer makes when it reaches that point of the log
(the replay's clock uses it to show each known time where the store's view moves); the calls of one
application run after its writes are visible, so the clock is never ahead of the store.
"""

from __future__ import annotations

import bisect
import operator
import threading
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, NamedTuple

from .snapshot import SymbolSessionData

__all__ = ["PublicationGate", "Segment", "StoreState"]


class StoreState(NamedTuple):
    """The store as one writer-side instant: every symbol's snapshot and the lifecycle."""

    snapshots: Mapping[str, SymbolSessionData]
    session_ended: bool
    current_session_date: date | None
    version: int


class _Full:
    """A log entry for a store-wide change: the whole dict of snapshots and the lifecycle after it."""

    __slots__ = ("current_session_date", "session_ended", "snapshots", "version")

    def __init__(self, snapshots: dict[str, SymbolSessionData], state: StoreState) -> None:
        self.snapshots = snapshots
        self.session_ended = state.session_ended
        self.current_session_date = state.current_session_date
        self.version = state.version


class Segment(list[Any]):
    """One segment of the gate's log (what `PublicationGate.take` returns): its entries, and
    ``specials``, the ascending indices of the entries that are not snapshots (`_Full` and `_Step`).
    Knowing where they are lets the consumer install each run of snapshots between them with one C-level
    ``dict.update`` instead of a Python-level step per entry. A list subclass so that the
    store's bound ``append`` stays list's own."""

    __slots__ = ("specials",)

    def __init__(self) -> None:
        super().__init__()
        self.specials: list[int] = []


class _Step:
    """A log entry that is a call: ``fn(value)`` when the consumer reaches it. ``version`` is the store's
    version at that point of the log (a step writes nothing)."""

    __slots__ = ("fn", "value", "version")

    def __init__(self, fn: Callable[[Any], object], value: Any, version: int) -> None:
        self.fn = fn
        self.value = value
        self.version = version


def _version_of(entry: Any, default: int) -> int:
    # Every kind of entry (a snapshot, `_Full`, `_Step`) has the store's version after it.
    if entry is None:
        return default
    version: int = entry.version
    return version


_symbol_of = operator.attrgetter("symbol")


def _install_run(view: dict[str, SymbolSessionData], run: list[SymbolSessionData]) -> None:
    # A run of snapshots, in C: replacing values never disturbs a reader iterating the dict, and a later
    # snapshot of a symbol replaces an earlier one of the same run, as one assignment each would.
    view.update(zip(map(_symbol_of, run), run, strict=True))


class PublicationGate:
    """A store's publication held back for one consumer (made by `SessionData.hold_publication`).

    Writer side (with the store's write lock held, which the store does): the log's ``append`` handed
    to the store through ``bind`` for a one-symbol write, `record_full` for a store-wide one. Producer
    side (the replay's worker): `mark` at each cut (a known time's end), `record_step`, `take` at each
    hand-over. Consumer side: `upto` / `apply` before the items it yields. Any thread: `follow`,
    `close`. Readers never call the gate; the store reads `session_ended`, `current_session_date` and
    `version` from it while it is held.
    """

    def __init__(
        self,
        view: dict[str, SymbolSessionData],
        state: StoreState,
        lock: threading.RLock,
        install: Callable[[dict[str, SymbolSessionData]], None],
        detach: Callable[[], None],
        notify: Callable[[], None],
        bind: Callable[[Callable[[Any], None]], None],
    ) -> None:
        # The store's write lock: `take`, `record_full` and `close` run under it.
        self._lock = lock
        self._install = install
        self._detach = detach
        self._notify = notify
        # The store's one publish step appends each snapshot through the bound ``append`` given
        # to `bind`; a new log (`take`) is bound again, with the write lock held, so no write is lost.
        self._bind = bind
        self._log = Segment()
        self._view = view
        # What the view shows: the entries of `_seg` before `_done`, after `_last` (the entry applied last
        # before `_seg`), read lazily by `version`.
        self._last: Any = None
        self._seg = Segment()
        self._done = 0
        # The lifecycle the view shows (`_view_*`) and the one writers left (`_head_*`); `_tail` is the
        # last entry of the last segment taken (the writers' version when the log is empty).
        self._view_ended = self._head_ended = state.session_ended
        self._view_date = self._head_date = state.current_session_date
        self._version = state.version
        self._tail: Any = None
        self._follow = False
        self.closed = False
        self.heads: dict[str, SymbolSessionData] = dict(view)
        bind(self._log.append)

    @property
    def version(self) -> int:
        """The store-wide version readers see. O(1); any thread (racy, like every lock-free read)."""
        if self._follow:
            log = self._log
            return _version_of(log[-1] if log else self._tail, self._version)
        # `_seg` before `_done`: `_begin` resets `_done` before it moves `_seg`, so this pair is consistent
        # but for a reader overtaken by a whole segment switch (then clamped: never an index error).
        seg = self._seg
        done = min(self._done, len(seg))
        return _version_of(seg[done - 1] if done else self._last, self._version)

    @property
    def session_ended(self) -> bool:
        """`SessionData.session_ended` as readers see it. O(1); any thread."""
        return self._head_ended if self._follow else self._view_ended

    @property
    def current_session_date(self) -> date | None:
        """`SessionData.current_session_date` as readers see it. O(1); any thread."""
        return self._head_date if self._follow else self._view_date

    def follow(self, on: bool) -> None:
        """``True``: readers see every write at once (nobody consumes); ``False``: readers see the view,
        which the consumer moves (it stands where the last consumer left it). The log is kept either way.
        O(1). Any thread (takes the write lock)."""
        with self._lock:
            self._follow = on
            if not self.closed:
                self._install(self.heads if on else self._view)
        self._notify()

    # -------------------------------------------------------------- writer side

    def record_full(self, snapshots: dict[str, SymbolSessionData], state: StoreState) -> None:
        """Log a store-wide change to ``snapshots`` (the writers' new dict, the heads from now on) and
        ``state``. O(symbols). Called by the store with its write lock held."""
        log = self._log
        log.specials.append(len(log))
        log.append(_Full(dict(snapshots), state))
        self.heads = snapshots
        self._head_ended = state.session_ended
        self._head_date = state.current_session_date
        if self._follow:
            self._install(snapshots)

    # ------------------------------------------------------------ producer side

    def mark(self) -> int:
        """The log position now, within the current segment (a cut). O(1); the producer thread."""
        return len(self._log)

    def take(self) -> Segment:
        """End the current segment and return it (entries since the last `take`). O(1); takes the write
        lock briefly, so no write is split between two segments."""
        with self._lock:
            seg = self._log
            # A new list rather than clearing this one: a reader of `version` may still hold it.
            log = Segment()
            self._log = log
            self._bind(log.append)
            if seg:
                self._tail = seg[-1]
        return seg

    def record_step(self, fn: Callable[[Any], object], value: Any) -> None:
        """Log a call of ``fn(value)`` for the consumer to make when it reaches this point of the log (in
        `upto`/`apply`, in order with the writes). O(1); the producer thread (takes the write lock)."""
        with self._lock:
            log = self._log
            log.specials.append(len(log))
            log.append(_Step(fn, value, _version_of(log[-1] if log else self._tail, self._version)))

    # ------------------------------------------------------------ consumer side

    def apply(self, seg: Segment, start: int, stop: int) -> None:
        """Make ``seg[start:stop]`` visible to readers, in order, and wake `wait_for_update` callers.

        ``seg`` is a segment `take` returned. O(stop - start), plus O(symbols) per store-wide entry; each
        run of snapshots is installed by one C-level ``dict.update``. The consumer
        thread (one at a time). After `close` it changes nothing readers see: the store no longer reads
        this gate's view.
        """
        self._begin(seg)
        view = self._view
        steps: list[_Step] = []
        specials = seg.specials
        i = start
        for k in range(bisect.bisect_left(specials, start), len(specials)):
            at = specials[k]
            if at >= stop:
                break
            if at > i:
                _install_run(view, seg[i:at])
            entry = seg[at]
            if type(entry) is _Step:
                steps.append(entry)
            else:
                view = self._install_full(entry)
            i = at + 1
            self._done = i
        if stop > i:
            _install_run(view, seg[i:stop])
        # Readers' `version` follows the view: moved once the entries it counts are visible.
        self._done = stop
        # Steps run once the writes of the range are visible: a reader that sees the clock at t (read
        # first) then finds the store at t or later, never behind it.
        for step in steps:
            step.fn(step.value)
        self._notify()

    def upto(self, seg: Segment, stop: int) -> None:
        """Make the entries of ``seg`` before ``stop`` visible, from where the view stands (`apply` from
        there on; nothing if it is past ``stop``). The consumer's step: it calls this once per known time
        with the cut the producer recorded, then hands out that time's items. O(entries applied)."""
        self._begin(seg)
        if stop > self._done:
            self.apply(seg, self._done, stop)

    def apply_rest(self) -> None:
        """Make the rest of the segment being released visible: a consumer left in the middle of a batch,
        whose remaining items are handed out to nobody, so the next consumer's view starts after them.
        O(entries left). The consumer thread."""
        seg = self._seg
        if self._done < len(seg):
            self.apply(seg, self._done, len(seg))

    def _begin(self, seg: Segment) -> None:
        if seg is not self._seg:
            if self._done:
                self._last = self._seg[self._done - 1]
            self._done = 0
            self._seg = seg

    def _install_full(self, entry: _Full) -> dict[str, SymbolSessionData]:
        # A `_Full`: install a new view dict; returns it.
        view = dict(entry.snapshots)
        with self._lock:
            if not self.closed:
                self._view = view
                self._view_ended = entry.session_ended
                self._view_date = entry.current_session_date
                if not self._follow:
                    self._install(view)
        return view

    def close(self) -> None:
        """Publish everything written and return the store to direct mode. O(symbols); idempotent; any
        thread (takes the write lock)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._detach()
        self._notify()
