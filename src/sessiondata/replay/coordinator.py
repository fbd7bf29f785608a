"""`BacktestStreamCoordinator`: merges many market-data streams into one chronological replay.

One worker thread pulls every registered source lazily through `KnownTimeMerge` (`sessiondata.replay.merge`,
the pure merge: one pending item per source, grouped by known time), advances the backtest clock, writes each
item into the store, and only then hands it to the consumer through a bounded buffer. The merge hands the
worker a group of items at a time (one kind, one known time: typically every symbol's bar of one minute),
and the worker's per-item work is the store write, run in C over the group. The consumer iterates
`merged_stream()`.

Ordering rules (the same inputs give the same output on every run, whatever the thread timing):

1. **Known time.** Items are merged by the time they become known: a 1-minute bar at ``timestamp + 1 minute``
   (its end), a tick or quote at its ``timestamp``. The clock is advanced to that time before the item is
   written and delivered, so a strategy never sees a bar before its minute is over.
2. **Ties** on known time go by stream type (`StreamType.BAR`, then ``TICK``, then ``QUOTE``), then by
   symbol, then by registration order; items of one source keep their source order.
3. **Out of order inside one source** (a timestamp before the previous one's) is an `InvalidDataError`
   naming the source and the item, or, with ``on_out_of_order="drop"``, the item is dropped and counted in
   `status()`; it is never reordered. The same policy covers an item known before the clock's current time
   (possible only for a stream registered while the replay runs, or a clock started later than the data).

Other behaviour:

- **Session filter.** By default only regular-session items are replayed (the store's calendar, via its
  `SessionClock`); ``extended_hours=True`` replays everything. Ticks and quotes are filtered by their
  timestamp, bars by their start.
- **Listeners at simulated times.** A session listener with an ``advance(now)`` method is called each time
  the clock moves to a new time, before the items known then are written (a backtest upkeep needs none: it
  runs its passes from the clock it listens to).
- **Multi-day.** When the replay reaches an item of a later exchange-local date, the coordinator calls
  ``store.end_session()``, then every attached `SessionBoundaryListener`'s ``run_once()`` (synchronously:
  e.g. an upkeep pass that fills the ended session's gaps before it rolls into history), then
  ``store.start_new_session(date)``. The first item's date is started too, unless the store already has it
  as ``current_session_date``. When every stream is exhausted the last session is ended and the listeners
  run once more (``end_session_on_exhaustion=False`` leaves the session open).
- **Speed.** ``speed=None`` replays as fast as possible; ``speed=60.0`` replays 60 simulated seconds per
  wall-clock second. Waits are on a condition variable, so `pause` and `stop_worker` interrupt them.
- **Run-ahead, read as of the item.** The worker may run ahead of the consumer by at most
  ``max_queue_size`` items in the buffer (or one batch, if a batch is larger), plus the batch it is
  gathering and the one the consumer is iterating; the clock already reflects them. The store's readers do
  not see them: while the worker runs it holds the store's `PublicationGate` (see
  `sessiondata.core.publication`), and the consumer publishes each known time's writes just before it
  yields that time's first item, so while it handles an item every read of the store (any symbol) answers
  as the store stood right after the last item of the same known time was written, whatever kind of
  source each item comes from. Nothing known later is visible, and what is visible at each item does not
  depend on thread timing, on where batches end, or on which sources are lists or generators. While the
  worker pulls from a source that might block, a consumer that runs dry takes the worker's batch up to its
  last cut, so no item whose known time has ended waits behind a stalled source. Session
  boundaries wait for the consumer to catch up, then run directly (listeners read the store as usual).
  The clock is read the same way: in every thread but the worker's, `now()` is the known time of the item
  the consumer handles. Until a consumer iterates `merged_stream()` (or after it left) readers follow the
  worker's writes and clock; a consumer attaching later, however the worker was started, still reads as of
  each item it receives. When the replay has ended and nothing is left for a consumer, or at `stop_worker`
  with nobody attached, everything written is published.
- **Faults.** An exception in a source, an invalid item, or a failing store write or listener stops the
  worker; items processed before it are still delivered, then `merged_stream()` raises `CoordinatorError`
  with the original error as its ``__cause__``, and `status()` reports it. The worker never dies silently.
- **Stopping.** `stop_worker(timeout)` returns within ``timeout`` seconds, even while a source blocks forever
  or no one reads the output: the worker is a daemon thread, and one stuck inside a source is abandoned
  (reported by `status()` and the return value); it exits without writing anything more once the source
  returns.
"""

from __future__ import annotations

import collections
import enum
import logging
import operator
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any, Literal, Protocol, runtime_checkable

from sessiondata._clock import ClockMode, TimeProvider
from sessiondata._models import Bar, InvalidDataError, MarketData, Quote, SessionDataError, Tick
from sessiondata.core.publication import PublicationGate, Segment
from sessiondata.core.store import SessionData, get_session_data

from .merge import NON_BLOCKING_ITERATORS, KnownTimeMerge, Source, check_item

__all__ = [
    "BacktestStreamCoordinator",
    "CoordinatorError",
    "SessionBoundaryListener",
    "StreamSourceError",
    "StreamType",
]

logger = logging.getLogger("sessiondata.coordinator")

_MINUTE = timedelta(minutes=1)


class CoordinatorError(SessionDataError, RuntimeError):
    """The replay failed; ``__cause__`` holds what went wrong (raised by `merged_stream`)."""


class StreamSourceError(CoordinatorError):
    """A source raised while the coordinator pulled from it; the message names the stream."""


class StreamType(enum.Enum):
    """The kind of records a stream carries. The declaration order is the tie-break order.

    Attributes:
        BAR: A stream of `Bar` records.
        TICK: A stream of `Tick` records.
        QUOTE: A stream of `Quote` records.
    """

    BAR = "bar"
    TICK = "tick"
    QUOTE = "quote"


_TYPE_ORDER = {t: i for i, t in enumerate(StreamType)}
_RECORD_CLASS: dict[StreamType, type[Any]] = {
    StreamType.BAR: Bar,
    StreamType.TICK: Tick,
    StreamType.QUOTE: Quote,
}
_STREAM_TYPE = {cls: kind for kind, cls in _RECORD_CLASS.items()}


@runtime_checkable
class SessionBoundaryListener(Protocol):
    """Something to run, synchronously, each time the replay ends a session (e.g. an upkeep thread's pass).

    ``run_once()`` is called by the coordinator's worker after ``store.end_session()`` and before the next
    ``store.start_new_session(...)``, once the consumer has handled every item before the boundary (so it
    reads and writes the store directly); the replay waits for it. A listener may also have an
    ``advance(now)`` method: the worker calls it each time the clock moves to a new time, before writing the
    items known then (a backtest `DataUpkeepThread` has none: its passes follow the clock it subscribes to,
    so it is attached for ``run_once`` alone). Return values are ignored; an exception stops the replay
    and is reported like any worker error.
    """

    def run_once(self) -> object:
        """Do one pass over the store. Complexity: the listener's own (the replay waits for it).
        Thread-safety: called by the coordinator's worker thread only."""
        ...


def _make_source(
    symbol: str,
    stream_type: StreamType,
    it: Iterator[Any],
    seq: int,
    blocking: bool | None,
) -> Source:
    """A merge `Source` for one registered stream, and whether pulling from it might block (then the merge
    ends a group after each of its items, and the worker offers its batch to the consumer before the
    source's next pull)."""
    source = Source(symbol, _RECORD_CLASS[stream_type], it, (_TYPE_ORDER[stream_type], symbol, seq))
    source.key = (symbol, stream_type)
    source.label = f"{symbol}/{stream_type.value}"
    source.may_block = type(it) not in NON_BLOCKING_ITERATORS if blocking is None else bool(blocking)
    return source


def _store_writers(store: SessionData) -> dict[type[Any], Callable[[str, Any], object]]:
    """The store write of each record class: the store's public methods (a subclass's overrides apply;
    `SessionData.add_bar` takes its streamed lane itself, so there is no cheaper call to skip to)."""
    return {Bar: store.add_bar, Tick: store.add_tick, Quote: store.add_quote}


# Runs an iterator to its end in C (a deque that keeps nothing never touches its state, so one serves all).
_consume: Callable[[Iterable[Any]], None] = collections.deque(maxlen=0).extend
_symbol_of = operator.attrgetter("symbol")


def _write_group(write: Callable[[str, Any], object], items: list[Any], batch: list[Any]) -> None:
    """Write ``items`` (one merge group, all of one record class) with ``write``, then add them to
    ``batch``: the loop runs in C. If a write raises, the items written before it are still added (a
    fault hands over what was written), then the error propagates. O(len(items)) writes."""
    rest = iter(items)
    try:
        _consume(map(write, map(_symbol_of, items), rest))
    except BaseException:
        # `map` took the failing item from `rest` before calling `write`: what is left follows it.
        batch += items[: len(items) - operator.length_hint(rest) - 1]
        raise
    batch += items


def _no_mark() -> int:
    return 0


def _no_step(fn: Callable[[Any], object], value: Any) -> None:
    return None


class _Stopped(Exception):
    """Control flow inside the worker: stop was requested. Never raised to callers."""


class _Exhausted(Exception):
    """Control flow inside the consumer: the replay ended and the buffer is empty. Never raised to callers."""


class BacktestStreamCoordinator:
    """Replays registered streams in merged chronological order into a `SessionData` and to one consumer.

    Parameters (keywords after ``session_data``):

    - ``session_data``: the store written to; ``None`` uses `get_session_data()` (the process-wide store).
    - ``time_provider``: a backtest-mode `TimeProvider` to advance; ``None`` creates one in the store's zone.
    - ``speed``: ``None`` (as fast as possible) or simulated seconds per wall-clock second (> 0).
    - ``extended_hours``: replay pre- and post-market items too (default: regular session only).
    - ``on_out_of_order``: ``"raise"`` (default) or ``"drop"`` (see the module documentation).
    - ``max_queue_size``: capacity of the output buffer, in items (the backpressure bound). The default,
      512, keeps the worker's run-ahead short enough that CPython's cyclic collector stays nearly idle:
      every item in flight keeps a few tracked objects alive (its snapshot, until the consumer installs
      it), and a worker that runs thousands of items ahead fills the collector's young generation again
      and again (measured on 117,000 bars of 100 symbols: ~130 collections and 6-19% of the replay's
      time at 4096, ~6 and under 1% at 512; see "The run-ahead and the garbage collector" in the
      performance guide). A larger buffer only pays when the consumer releases the GIL for long stretches.
    - ``batch_size``: items handed to the buffer at once (at most ``max_queue_size``). Batches end where a
      known time ends (so a batch may hold more: the rest of that time's items); the worker hands over a
      partial batch at a known time's end whenever the consumer is waiting and before pausing or
      sleeping, and a consumer that runs dry while the worker pulls from a source that might block takes
      the batch up to its last cut, so batching delays an item the consumer could have by at most the rest
      of its known time.
    - ``session_listeners``: objects with ``run_once()`` to call at each session boundary.
    - ``end_session_on_exhaustion``: end the last session when every stream is exhausted (default True).

    The coordinator runs once: `start_worker` after the run finished or was stopped is a `RuntimeError`.
    """

    def __init__(
        self,
        session_data: SessionData | None = None,
        *,
        time_provider: TimeProvider | None = None,
        speed: float | None = None,
        extended_hours: bool = False,
        on_out_of_order: Literal["raise", "drop"] = "raise",
        max_queue_size: int = 512,
        batch_size: int = 128,
        session_listeners: Iterable[SessionBoundaryListener] = (),
        end_session_on_exhaustion: bool = True,
    ) -> None:
        store = get_session_data() if session_data is None else session_data
        if not isinstance(store, SessionData):
            raise ValueError(f"session_data must be a SessionData, got {session_data!r}")
        if time_provider is None:
            time_provider = TimeProvider(ClockMode.BACKTEST, timezone=store.timezone)
        elif not isinstance(time_provider, TimeProvider) or time_provider.mode is not ClockMode.BACKTEST:
            raise ValueError(f"time_provider must be a backtest-mode TimeProvider, got {time_provider!r}")
        if speed is not None and (
            isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0
        ):
            raise ValueError(
                f"speed must be None or a number > 0 (simulated seconds per second), got {speed!r}"
            )
        if speed is not None and speed == float("inf"):
            speed = None
        if on_out_of_order not in ("raise", "drop"):
            raise ValueError(f"on_out_of_order must be 'raise' or 'drop', got {on_out_of_order!r}")
        for name, value in (("max_queue_size", max_queue_size), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self._store = store
        self._writers = _store_writers(store)
        self._clock = time_provider
        self._speed = None if speed is None else float(speed)
        self._extended_hours = bool(extended_hours)
        self._drop_out_of_order = on_out_of_order == "drop"
        self._maxsize = max_queue_size
        self._batch_size = min(batch_size, max_queue_size)
        self._end_on_exhaustion = bool(end_session_on_exhaustion)
        self._listeners: list[SessionBoundaryListener] = []
        for listener in session_listeners:
            self.add_session_listener(listener)

        # Guards: `_streams`, `_seq`, `_ops`, the output buffer (`_buffer`, `_buffered`), the flags
        # `_paused`/`_stop`/`_finished`/`_merged_all`/`_interrupt`, `_state`, `_error` and `_thread`. The
        # worker reads `_interrupt` and `_consumer_waiting` without it: a stale read delays by one item,
        # never loses one.
        self._cond = threading.Condition(threading.Lock())
        self._streams: dict[tuple[str, StreamType], Source] = {}
        self._seq = 0
        self._ops: list[tuple[str, Source]] = []
        # Each entry: the items, their cuts, and the gate's log segment the cuts index (None without a
        # gate). Cuts are pairs (n, mark): the items before index n are handed out once the segment's
        # entries before `mark` are visible (one pair per known time, not per item: items sharing a known
        # time may see each other); the items after the last cut need the whole segment.
        self._buffer: collections.deque[tuple[list[Any], list[int], Segment | None]] = collections.deque()
        self._buffered = 0
        self._max_buffered = 0
        # The worker's batch being gathered (written to the store, not yet handed over) and its cuts;
        # worker only, except while the worker offers it (below).
        self._pending: tuple[list[Any], list[int]] = ([], [])
        # The offer: holds one token while the worker pulls from a source that might block. Whoever pops
        # the token owns `_pending` until the pull returns: the consumer (with `_cond` held) to take the
        # batch up to its last cut when it runs dry, or the worker to take the offer back. `list.pop` is
        # atomic, so exactly one of them wins, without a lock on the worker's side (see `_replay`).
        self._offered: list[bool] = []
        # The store's publication gate while the worker runs (held from its start, closed by `_close_gate`;
        # the clock is held with it), whether a consumer is iterating `merged_stream()`, and whether the
        # worker runs a session boundary with the gate held (nobody attached; an attach waits for its end).
        self._gate: PublicationGate | None = None
        self._gate_mark: Callable[[], int] = _no_mark
        self._gate_step: Callable[[Callable[[Any], object], Any], None] = _no_step
        self._consumer_attached = False
        self._in_boundary = False
        self._consumer_waiting = False
        self._worker_waiting = False
        self._paused = False
        self._stop = False
        self._interrupt = False
        self._finished = False
        self._merged_all = False  # the merge ran dry with nothing pending: no stream may join any more
        self._state = "idle"
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        # Clear while paused; the parked worker waits on it, and stop_worker sets it to wake the worker.
        self._resumed = threading.Event()
        self._resumed.set()
        # Set by the worker once it is parked by a pause: from then on the clock cannot move until resume.
        self._parked = threading.Event()

        # Progress counters, written by the worker only, read racily by status().
        self._delivered = 0
        self._late = 0
        # The merge of the running replay (its counters feed `status()`), and the pacing anchor
        # (simulated key, wall time) of `speed`; worker only.
        self._merge: KnownTimeMerge | None = None
        self._anchor: tuple[datetime, float] | None = None
        self._sessions: list[date] = []

    # ------------------------------------------------------------ properties

    @property
    def session_data(self) -> SessionData:
        """The store written to. O(1). Thread-safety: any thread (fixed at construction)."""
        return self._store

    @property
    def time_provider(self) -> TimeProvider:
        """The backtest clock this coordinator advances. O(1). Thread-safety: any thread (fixed at
        construction)."""
        return self._clock

    # ----------------------------------------------------------- registration

    def register_stream(
        self,
        symbol: str,
        stream_type: StreamType | str,
        source: Iterable[Any],
        *,
        blocking: bool | None = None,
    ) -> None:
        """Add a stream: ``source`` yields `Bar`, `Tick` or `Quote` records of ``symbol``, in time order.

        ``source`` is pulled lazily, one item at a time, by the worker (only ``iter(source)`` is called
        here). Every source's items are handed over in batches. ``blocking`` says whether pulling from it
        may wait on something outside the process (a socket, a live feed): then, for the duration of each
        pull, the worker offers its batch to the consumer, who takes the items whose known time has ended
        if it runs dry, so none of them waits behind a stalled source (the items sharing the known time of
        the source's last item wait for its next item: it might be known then too). The offer costs two
        list operations per pull, nothing more; ``False`` spares them. ``None`` (default) guesses: in-memory
        containers do not block, anything else (a generator, a file) might. What the consumer sees at each
        item is the same whatever ``blocking`` is.

        May be called before or while the worker runs; a stream added while running joins the merge before
        the worker's next group of items (see `deregister_stream`). Raises `ValueError` for an unknown
        stream type, a source that is not iterable, or a ``(symbol, stream_type)`` already registered and
        not exhausted; `InvalidDataError` for a bad symbol.
        O(1) (O(streams log streams) in the worker when added while running). Thread-safety: any thread.
        """
        sym = _symbol_key(symbol)
        kind = _stream_type(stream_type)
        try:
            it = iter(source)
        except TypeError:
            raise ValueError(f"source for {sym}/{kind.value} is not iterable: {source!r}") from None
        with self._cond:
            old = self._streams.get((sym, kind))
            if old is not None and not old.exhausted:
                raise ValueError(f"stream {sym}/{kind.value} is already registered; deregister it first")
            if self._finished or self._stop or self._merged_all:
                raise RuntimeError("the replay has ended; create a new coordinator to replay more streams")
            self._seq += 1
            stream = _make_source(sym, kind, it, self._seq, blocking)
            self._streams[stream.key] = stream
            if self._thread is not None:
                self._ops.append(("add", stream))
                self._interrupt = True
        logger.debug("registered stream %s", stream.label)

    def feed_data_list(self, symbol: str, stream_type: StreamType | str, items: Iterable[Any]) -> None:
        """Register a ready list of records as a stream (copied; each record is checked now).

        Raises `InvalidDataError` (nothing registered) if an item is not a record of the stream's type for
        ``symbol``; otherwise as `register_stream`. O(len(items)). Thread-safety: any thread.
        """
        sym = _symbol_key(symbol)
        kind = _stream_type(stream_type)
        data = list(items)
        cls = _RECORD_CLASS[kind]
        for i, item in enumerate(data):
            check_item(item, cls, sym, f"{sym}/{kind.value}", i)
        self.register_stream(sym, kind, data)

    def deregister_stream(self, symbol: str, stream_type: StreamType | str) -> bool:
        """Remove a stream: its pending and remaining items are not replayed. True if it was registered.

        While the worker runs, the removal takes effect before the worker's next group of items: the worker
        takes items from the merge a group at a time (consecutive items of one kind and one known time,
        e.g. every symbol's bar of one minute), so the stream's item in the group in hand, if any, is still
        replayed. O(1) here (O(streams) in the worker). Thread-safety: any thread.
        """
        sym = _symbol_key(symbol)
        kind = _stream_type(stream_type)
        with self._cond:
            stream = self._streams.pop((sym, kind), None)
            if stream is None:
                return False
            if self._thread is not None:
                self._ops.append(("remove", stream))
                self._interrupt = True
        logger.debug("deregistered stream %s", stream.label)
        return True

    def add_session_listener(self, listener: SessionBoundaryListener) -> None:
        """Call ``listener.run_once()`` at each session boundary (see the module documentation).

        Raises `ValueError` if it has no callable ``run_once``. O(1). Thread-safety: call before
        `start_worker`; the worker reads the list at each boundary.
        """
        if not callable(getattr(listener, "run_once", None)):
            raise ValueError(f"a session listener needs a run_once() method, got {listener!r}")
        self._listeners.append(listener)

    # -------------------------------------------------------------- lifecycle

    def start_worker(self) -> None:
        """Start the worker thread (a daemon) that replays every registered stream.

        Raises `RuntimeError` if it was already started (a coordinator runs once). O(1); the worker then
        primes one item per stream. Thread-safety: any thread.
        """
        with self._cond:
            if self._thread is not None or self._stop:
                raise RuntimeError("the worker was already started or stopped (a coordinator runs once)")
            self._state = "paused" if self._paused else "running"
            self._thread = threading.Thread(
                target=self._run, name="sessiondata-stream-coordinator", daemon=True
            )
            self._thread.start()
        logger.info("stream coordinator started (%d streams)", len(self._streams))

    def stop_worker(self, timeout: float = 5.0) -> bool:
        """Stop the replay; True if the worker thread has ended, False if it is still stuck in a source.

        Returns within ``timeout`` seconds whatever the worker is doing (paused, waiting for buffer space,
        sleeping for `speed`, or blocked inside a source). A worker stuck in a source is abandoned: it is a
        daemon thread, and when the source returns it exits without writing anything more. Consumers
        receive the items already buffered, then the stream ends. Idempotent. Complexity: O(1) besides the
        wait. Thread-safety: any thread except the worker's; waits at most ``timeout`` for the worker to
        finish.
        """
        with self._cond:
            self._stop = True
            self._interrupt = True
            thread = self._thread
            if self._state in ("idle", "running", "paused"):
                self._state = "stopping"
            self._cond.notify_all()
        self._resumed.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, timeout))
        alive = thread is not None and thread.is_alive()
        with self._cond:
            self._finished = True
            if not self._consumer_attached:
                self._close_gate()  # the replay is over: readers see everything written
            if not alive and self._state == "stopping":
                self._state = "stopped"
            self._cond.notify_all()
        if alive:
            logger.warning("stream coordinator worker did not stop within %.3fs; abandoned (daemon)", timeout)
        return not alive

    def pause(self) -> None:
        """Pause the replay: the worker parks before its next group of items (see `deregister_stream`; or
        inside a long run of skipped items) and the clock stops advancing.

        Items already buffered can still be consumed. Returns at once (use `wait_paused` to know the worker
        has parked). O(1). Thread-safety: any thread.
        """
        with self._cond:
            if self._stop or self._finished:
                return
            self._paused = True
            self._interrupt = True
            self._resumed.clear()
            if self._state == "running":
                self._state = "paused"
            self._cond.notify_all()

    def resume(self) -> None:
        """Resume a paused replay (a no-op otherwise). O(1). Thread-safety: any thread."""
        with self._cond:
            self._paused = False
            self._interrupt = self._stop or bool(self._ops)
            self._parked.clear()
            if self._state == "paused":
                self._state = "running"
            self._resumed.set()
            self._cond.notify_all()

    def wait_paused(self, timeout: float | None = None) -> bool:
        """After `pause`, block until the worker has parked (or has ended, or was never started); False on
        timeout.

        Once this returns True, the clock and the writes do not change until `resume` (readers still move
        through the items already buffered as the consumer takes them: reads are as of the item in hand).
        O(1) per wake-up. Thread-safety: any thread except the worker's.
        """
        with self._cond:
            if self._thread is None or self._finished:
                return True
        # The worker sets `_parked` when it parks, and also when it ends for any reason.
        return self._parked.wait(timeout)

    def __enter__(self) -> BacktestStreamCoordinator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_worker()

    # ----------------------------------------------------------------- output

    def merged_stream(self) -> Iterator[MarketData]:
        """Iterate the replayed items in merged order, blocking until each is available.

        Starts the worker if it was never started. Each item is already in the store and the clock has
        reached its known time when it is yielded. Ends when every stream is exhausted (or after
        `stop_worker`); raises `CoordinatorError` (cause chained) if the replay failed, after the items
        processed before the failure. O(1) amortized per item. Thread-safety: one consumer thread; the
        iterator waits on the buffer's condition variable (no polling).
        """
        with self._cond:
            if self._consumer_attached:
                raise RuntimeError("merged_stream() has a consumer already (one consumer per replay)")
            while self._in_boundary:
                self._cond.wait()  # listeners of a boundary run with nobody attached read the heads
            self._consumer_attached = True
            self._follow(False)  # readers go back to the store as of the first item still to hand out
            never_started = self._thread is None and not self._stop
        if never_started:
            self.start_worker()
        try:
            # The consumer's loop, one generator: before yielding each known time's items, publish the
            # store's writes up to its cut, so that reads made while an item is handled answer as of it
            # (see `publication`). The items themselves are yielded from a C iterator.
            while True:
                batch, cuts, seg = self._next_batch()
                gate = self._gate
                if seg is None or gate is None:
                    yield from batch
                    continue
                upto = gate.upto
                items = iter(batch)
                start = 0
                for i in range(0, len(cuts), 2):
                    end = cuts[i]
                    if end > start:
                        upto(seg, cuts[i + 1])
                        yield from islice(items, end - start)
                        start = end
                upto(seg, len(seg))
                yield from items
        except _Exhausted:
            return
        finally:
            self._detach_consumer()

    def _next_batch(self) -> tuple[list[Any], list[int], Segment | None]:
        """The next handed-over batch, waiting for one; `_Exhausted` (or the replay's error) at the end."""
        cond = self._cond
        buffer = self._buffer
        with cond:
            while not buffer:
                if self._finished:
                    self._close_gate()
                    if self._error is not None:
                        raise CoordinatorError(f"the stream replay failed: {self._error}") from self._error
                    raise _Exhausted
                # Set before looking at the offer: a worker that offers its batch after this look sees the
                # flag and wakes us (see `_replay`).
                self._consumer_waiting = True
                if self._offered and self._take_offered():
                    break
                if self._worker_waiting:
                    cond.notify_all()  # a worker waiting to be in step with the consumer
                cond.wait()
            self._consumer_waiting = False
            entry = buffer.popleft()
            self._buffered -= len(entry[0])
            if self._worker_waiting:
                self._worker_waiting = False  # it is woken; it sets the flag again if still short of room
                cond.notify_all()
            return entry

    def _take_offered(self) -> bool:
        """The consumer ran dry while the worker pulls from a source that might block: take the worker's
        batch up to its last cut (the items whose known time has ended), exactly as the worker would hand
        it over there, so no such item waits behind a stalled pull. True if taken (``_cond`` held)."""
        if self._stop:
            return False  # a stopped replay hands out only what was already buffered
        try:
            self._offered.pop()
        except IndexError:
            return False  # the worker took its offer back: its pull has returned
        # The token is ours: the worker is inside the pull and, when it returns, waits for `_cond` before
        # touching its batch again. It offers only a batch with items before its last cut.
        batch, cuts = self._pending
        n = cuts[-2]
        taken = batch[:n]
        del batch[:n]  # in place: the worker keeps its references; what is left is one known time's items
        taken_cuts = cuts[:]  # every cut is at or before `n`
        cuts.clear()
        self._delivered += n
        # The segment taken with them also holds the writes after the last cut: the consumer makes them
        # visible only once it has handled the last taken item, and the items after the cut, handed over
        # later, see the same store as if the batch had not been split.
        self._enqueue(taken, taken_cuts)
        return True

    def _detach_consumer(self) -> None:
        """The consumer left (exhausted, broke off, or failed): publish everything once the worker has
        ended; until then readers follow the writers (the log is kept for a consumer attaching later)."""
        with self._cond:
            self._consumer_attached = False
            if self._gate is not None:
                self._gate.apply_rest()  # the rest of the batch in hand is handed out to nobody
            if self._finished:
                self._close_gate()
            else:
                self._follow(True)

    def queue_size(self) -> int:
        """Items in the output buffer now: at most ``max_queue_size``, plus the one batch a failed replay
        hands over before its error. O(1). Thread-safety: any thread; lock-free, so the answer is racy (it
        may be stale by the time it is read, like `queue.Queue.qsize`)."""
        return self._buffered

    def status(self) -> dict[str, Any]:
        """A snapshot of the replay's state, for monitoring and tests. O(streams). Thread-safety: any thread.

        Keys: ``state`` (``idle``, ``running``, ``paused``, ``stopping``, ``stopped``, ``finished``,
        ``failed``), ``worker_alive``, ``error`` (repr or ``None``), ``delivered``, ``filtered``
        (outside the session), ``dropped_out_of_order``, ``dropped_late``, ``queued``, ``max_queued``,
        ``max_queue_size``, ``waiting_for_consumer`` (the worker is blocked on a full buffer), ``streams``
        (active), ``exhausted_streams``, ``clock`` (or ``None``), ``session_dates`` (started by this replay).
        """
        with self._cond:
            thread = self._thread
            streams = list(self._streams.values())
            return {
                "state": self._state,
                "worker_alive": thread is not None and thread.is_alive(),
                "error": None if self._error is None else repr(self._error),
                "delivered": self._delivered,
                "filtered": 0 if self._merge is None else self._merge.filtered,
                "dropped_out_of_order": 0 if self._merge is None else self._merge.dropped,
                "dropped_late": self._late,
                "queued": self._buffered,
                "max_queued": self._max_buffered,
                "max_queue_size": self._maxsize,
                "waiting_for_consumer": self._worker_waiting,
                "streams": sum(1 for s in streams if not s.exhausted),
                "exhausted_streams": sum(1 for s in streams if s.exhausted),
                "clock": self._clock.now() if self._clock.is_set else None,
                "session_dates": list(self._sessions),
            }

    # ----------------------------------------------------------------- worker

    def _interrupted_while_skipping(self) -> None:
        """Honour stop (raise `_Stopped`) or pause (hand the batch over, park until resumed) from inside a
        run of skipped items (worker thread only). The batch is handed over as a copy and emptied in place:
        the hot loop keeps its references to the lists."""
        if self._stop:
            raise _Stopped
        if not self._paused:
            return
        self._withdraw_offer()  # this runs inside a pull: the consumer may hold the offer's token
        batch, cuts = self._pending
        if batch:
            self._hand_over(list(batch), list(cuts))
            batch.clear()
            cuts.clear()
        self._parked.set()
        logger.info("stream coordinator paused (while skipping items)")
        self._resumed.wait()
        if self._stop:
            raise _Stopped

    def _withdraw_offer(self) -> None:
        """Take back the offer of the batch (worker thread): afterwards the worker owns `_pending` again,
        whether the consumer took part of it or not. Lock-free unless the consumer took the token."""
        try:
            self._offered.pop()
        except IndexError:
            with self._cond:
                pass  # the consumer took the batch up to its last cut, holding `_cond`: it is done now

    def _wake_consumer(self) -> None:
        """Wake a consumer waiting on the buffer, to take the offered batch (worker thread)."""
        with self._cond:
            self._cond.notify_all()

    def _fresh_batch(self) -> tuple[list[Any], list[int]]:
        """A new, empty batch and its cuts, remembered as `_pending` (worker thread only)."""
        pending: tuple[list[Any], list[int]] = ([], [])
        self._pending = pending
        return pending

    def _hand_over(self, batch: list[Any], cuts: list[int]) -> None:
        """Move ``batch`` to the output buffer, waiting for room (worker thread only)."""
        n = len(batch)
        with self._cond:
            # A batch ends at a known time's end, so it may be larger than the buffer: then it waits for
            # an empty buffer.
            while self._buffered and self._buffered + n > self._maxsize:
                if self._stop:
                    raise _Stopped
                if self._paused:
                    self._parked.set()  # blocked on a full buffer: the clock cannot move either
                self._worker_waiting = True
                self._cond.wait()
            self._worker_waiting = False
            self._delivered += n  # under `_cond`: the consumer counts the batches it takes on offer too
            self._enqueue(batch, cuts)
            if self._consumer_waiting:
                # Cleared here, not only by the consumer, so the items that follow are batched again
                # instead of being handed over one by one until the consumer thread gets to run.
                self._consumer_waiting = False
                self._cond.notify_all()

    def _hold_gate(self) -> None:
        """Hold the store's publication and the clock (worker thread only): readers follow the writers
        until a consumer is attached, then see the store and the time as of the consumer's item."""
        with self._cond:
            gate = self._store.hold_publication()
            self._gate = gate
            self._gate_mark = gate.mark
            self._gate_step = gate.record_step
            follow = not self._consumer_attached
            self._clock.hold(follow=follow)
            gate.follow(follow)

    def _follow(self, on: bool) -> None:
        """Readers see the writers (``True``, nobody consumes) or the consumer's item (``_cond`` held)."""
        gate = self._gate
        if gate is not None:
            gate.follow(on)
            self._clock.follow(on)

    def _close_gate(self) -> None:
        """Publish everything and release the clock (``_cond`` held; idempotent)."""
        gate = self._gate
        if gate is not None:
            gate.close()
            self._clock.release()
        self._gate = None
        self._gate_mark = _no_mark
        self._gate_step = _no_step

    def _in_step_with_consumer(self) -> bool:
        """Before a session boundary (worker thread only; bounded by stop). With a consumer attached: wait
        until it has handled every item handed over and asks for the next, then publish everything (close
        the gate), so that the boundary and its listeners read and write the store directly while no item
        is in hand; returns True. With nobody attached: keep the gate (readers follow the writers, and a
        consumer attaching later meets the boundary's writes in log order) and mark the boundary running
        until `_boundary_done`; returns False."""
        cond = self._cond
        with cond:
            while self._consumer_attached and (self._buffer or not self._consumer_waiting):
                if self._stop:
                    raise _Stopped
                if self._paused:
                    self._parked.set()
                self._worker_waiting = True
                cond.wait()
            self._worker_waiting = False
            if not self._consumer_attached and self._gate is not None:
                self._in_boundary = True
                return False
            self._close_gate()
            return True

    def _boundary_done(self) -> None:
        with self._cond:
            if self._in_boundary:
                self._in_boundary = False
                self._cond.notify_all()

    def _enqueue(self, batch: list[Any], cuts: list[int]) -> None:
        """Append a batch to the buffer with its log segment (worker thread, ``_cond`` held)."""
        gate = self._gate
        seg = None if gate is None else gate.take()
        self._buffer.append((batch, cuts, seg))
        self._buffered += len(batch)
        self._max_buffered = max(self._max_buffered, self._buffered)

    def _run(self) -> None:
        try:
            self._hold_gate()
            self._replay()
        except _Stopped:
            self._withdraw_offer()
            logger.info("stream coordinator stopped after %d items", self._delivered)
        except BaseException as exc:
            # Items written to the store before the fault still reach the consumer, before the error. They
            # go into the buffer even past its capacity (by at most one batch): waiting for room here would
            # hide the failure from `status()` for as long as nobody reads.
            self._withdraw_offer()  # a source may have failed while its pull was on offer
            pending, cuts = self._pending
            self._pending = ([], [])
            with self._cond:
                if pending:
                    self._delivered += len(pending)
                    self._enqueue(pending, cuts)
                self._error = exc
                self._state = "failed"
            logger.error("stream coordinator failed after %d items: %s", self._delivered, exc, exc_info=True)
        finally:
            with self._cond:
                self._finished = True
                if self._state in ("running", "paused"):
                    self._state = "finished"
                elif self._state == "stopping":
                    self._state = "stopped"
                # Publish everything unless items are left for a consumer: one attached, or (after a natural
                # end) one that may attach later; readers meanwhile follow the writers.
                if not (self._buffer and (self._consumer_attached or not self._stop)):
                    self._close_gate()
                self._cond.notify_all()
            self._parked.set()

    def _replay(self) -> None:
        # The thin wrapper around the merge: session boundaries, the clock and pacing, the store writes,
        # batching, and pause/stop between groups. The merge is `KnownTimeMerge` (pure, single-threaded).
        clock = self._clock
        merge = self._start_merge()
        now_k: Any = merge.to_key(clock.now()) if clock.is_set else None
        key_time = merge.key_time
        hooks = [f for f in (getattr(lst, "advance", None) for lst in self._listeners) if callable(f)]
        cur_day: date | None = None
        # Also `self._pending`, so that a fault still hands over the items already written (see `_run`).
        batch, cuts = self._fresh_batch()
        hand_over = self._hand_over
        mark = self._gate_mark
        step = self._gate_step
        writers = self._writers
        groups = merge.groups()
        offered = self._offered
        # The pull running in the `for` statement was offered (see below): take the offer back after it.
        on_offer = False
        while True:
            if self._interrupt:
                batch, cuts = self._interrupted(batch, cuts)
                continue
            # One `for` over the merge's groups (consecutive items of one kind, known time and session
            # date): what is done per item is the store write and nothing else, in C (`_write_group`).
            # The body starts with what must follow a pull and ends with what must precede the next one.
            for group in groups:  # each pull may wait in a source: pause and stop may have come meanwhile
                if on_offer:
                    on_offer = False
                    try:
                        offered.pop()
                    except IndexError:
                        self._withdraw_offer()  # taken: wait until the consumer is done with the batch
                if self._interrupt:
                    batch, cuts = self._interrupted(batch, cuts)
                day = group.day
                if day is not cur_day and (cur_day is None or day > cur_day):
                    if batch:
                        hand_over(batch, cuts)
                        batch, cuts = self._fresh_batch()
                    if self._interrupt:
                        self._honour_interrupt()  # the boundary writes to the store: not while paused
                    self._session_boundary(cur_day, day)
                    mark = self._gate_mark
                    step = self._gate_step
                    cur_day = day
                known = group.known
                items = group.items
                # Every group of one known time after the first: an identity test.
                if known is not now_k and now_k is not None and known < now_k:
                    self._late_items(group.cls, items, key_time(known), key_time(now_k))  # dropped or raises
                else:
                    if known is not now_k:
                        if now_k is None or known > now_k:
                            batch, cuts = self._new_known_time(known, now_k, batch, cuts, mark, step, hooks)
                        now_k = known
                    _write_group(writers[group.cls], items, batch)
                # Before the next pull.
                if self._interrupt:
                    batch, cuts = self._interrupted(batch, cuts)
                if group.last is not None and cuts and cuts[-2]:
                    # The next pull is from the source of the group's last item, which might block. Items
                    # before the last cut (their known time has ended) must not wait behind a stalled pull:
                    # offer them to the consumer for the pull's duration instead of handing them over now,
                    # so batches stay whole when the pull is quick. Posting the token, then reading
                    # `_consumer_waiting`, pairs with the consumer setting that flag, then looking for the
                    # token (both under `_cond`): either it sees the token or we see the flag and wake it.
                    offered.append(True)
                    on_offer = True
                    if self._consumer_waiting:
                        self._wake_consumer()
            # The merge ran dry (the last pull found nothing).
            if on_offer:
                on_offer = False
                self._withdraw_offer()
            if self._interrupt:
                batch, cuts = self._interrupted(batch, cuts)
            # A stream registered meanwhile must join, not vanish: under `_cond` either an add is pending
            # (then iterate again) or no later registration is accepted.
            with self._cond:
                more = bool(self._ops) or merge.changes_pending
                self._merged_all = not more
            if not more:
                break
            groups = merge.groups()
        if batch:
            hand_over(batch, cuts)
            self._fresh_batch()
        if self._end_on_exhaustion and cur_day is not None:
            self._in_step_with_consumer()
            try:
                self._store.end_session()
                for listener in list(self._listeners):
                    listener.run_once()
            finally:
                self._boundary_done()
        logger.info("stream coordinator finished: %d items delivered", self._delivered)

    def _interrupted(self, batch: list[Any], cuts: list[int]) -> tuple[list[Any], list[int]]:
        """Between items, with `_interrupt` set: hand ``batch`` over (if it has items), then honour the
        interrupt (`_honour_interrupt`); returns the batch to go on with (worker thread only)."""
        if batch:
            self._hand_over(batch, cuts)
            batch, cuts = self._fresh_batch()
        self._honour_interrupt()
        return batch, cuts

    def _new_known_time(
        self,
        known: Any,
        now_k: Any,
        batch: list[Any],
        cuts: list[int],
        mark: Callable[[], int],
        step: Callable[[Callable[[Any], object], Any], None],
        hooks: list[Callable[[datetime], object]],
    ) -> tuple[list[Any], list[int]]:
        """The merge moved on to a later known time (worker thread only, once per known time): cut the
        batch, hand it over when full (or when the consumer waits), pace, move the clock and run the
        listeners' ``advance``; returns the batch to go on with.

        A cut: the items gathered so far are published up to here (their known time ended). Batches are
        handed over at cuts only, so what the consumer sees at an item never depends on where a batch
        happened to end.
        """
        n = len(batch)
        cuts.append(n)
        cuts.append(mark())
        if n >= self._batch_size or (n and self._consumer_waiting):
            self._hand_over(batch, cuts)
            batch, cuts = self._fresh_batch()
        merge = self._merge
        assert merge is not None
        key_time = merge.key_time
        if self._speed is not None:
            fresh = self._pace(known, now_k, key_time, batch, cuts)
            if fresh is not None:
                batch, cuts = fresh
        t = key_time(known)
        clock = self._clock
        clock.advance_to(t)
        step(clock.show, t)  # readers' clock moves with the store's view, when the consumer gets here
        for hook in hooks:
            hook(t)  # e.g. the upkeep's pass at simulated times, before the items known at t
        return batch, cuts

    def _start_merge(self) -> KnownTimeMerge:
        """The merge over the streams registered now, primed (worker thread only)."""
        clock = self._clock
        merge = KnownTimeMerge(
            self._store.session_clock,
            regular_only=not self._extended_hours,
            drop_out_of_order=self._drop_out_of_order,
            ref_naive=None if not clock.is_set else clock.now().tzinfo is None,
            poll=self._poll_while_skipping,
            source_error=_source_error,
        )
        self._merge = merge
        with self._cond:
            initial = [s for s in self._streams.values() if not s.exhausted]
            self._ops = [op for op in self._ops if op[1] not in initial]
            self._interrupt = self._paused or self._stop or bool(self._ops)
        merge.start(initial)
        return merge

    def _honour_interrupt(self) -> None:
        """Between items: stop (raise `_Stopped`), hand stream changes to the merge, park while paused."""
        if self._stop:
            raise _Stopped
        with self._cond:
            ops, self._ops = self._ops, []
            self._interrupt = self._paused or self._stop
        merge = self._merge
        if merge is not None:
            for op, source in ops:
                merge.change(op, source)
        if self._paused:
            self._parked.set()
            logger.info("stream coordinator paused")
            self._resumed.wait()
            self._anchor = None  # no catch-up burst for the time spent paused
            if self._stop:
                raise _Stopped

    def _pace(
        self,
        known: Any,
        now_k: Any,
        key_time: Callable[[Any], datetime],
        batch: list[Any],
        cuts: list[int],
    ) -> tuple[list[Any], list[int]] | None:
        """With ``speed``, wait until the wall clock reaches ``known``'s simulated time (pause and stop
        interrupt the wait). Hands ``batch`` over first if it has to wait; then returns the new batch."""
        fresh: tuple[list[Any], list[int]] | None = None
        speed = self._speed
        assert speed is not None
        while True:
            anchor = self._anchor
            if anchor is None:
                anchor = self._anchor = (key_time(known if now_k is None else now_k), _time.monotonic())
            delay = anchor[1] + (key_time(known) - anchor[0]).total_seconds() / speed - _time.monotonic()
            if delay <= 0:
                return fresh
            if batch:
                self._hand_over(batch, cuts)
                fresh = batch, cuts = self._fresh_batch()
                continue
            with self._cond:
                interrupted = self._cond.wait_for(lambda: self._interrupt, delay)
            if interrupted:
                self._honour_interrupt()

    def _late_items(self, cls: type[Any], items: list[Any], known: datetime, now: datetime) -> None:
        """Items (of sources of ``cls``) known before the clock's time: dropped and counted, or an
        `InvalidDataError` (the first)."""
        if not self._drop_out_of_order:
            item = items[0]
            raise InvalidDataError(
                f"item of {item.symbol}/{_STREAM_TYPE[cls].value} known at {known.isoformat()} is "
                f"before the clock's time {now.isoformat()} (a stream registered while running, or a clock "
                f"started after the data): {item!r}"
            )
        self._late += len(items)

    def _poll_while_skipping(self) -> None:
        if self._interrupt:
            self._interrupted_while_skipping()

    def _session_boundary(self, previous: date | None, day: date) -> None:
        """End ``previous`` (running the listeners), start ``day`` in the store (worker thread only)."""
        store = self._store
        if previous is None:
            if store.current_session_date != day:
                store.start_new_session(day)
        else:
            self._in_step_with_consumer()
            try:
                store.end_session()
                for listener in list(self._listeners):
                    listener.run_once()
                store.start_new_session(day)
            finally:
                self._boundary_done()
            if self._gate is None:
                self._hold_gate()
        self._sessions.append(day)
        logger.info("replaying session %s", day)


def _symbol_key(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidDataError(f"symbol must be a non-empty str, got {symbol!r}")
    return symbol.strip().upper()


def _stream_type(value: object) -> StreamType:
    if isinstance(value, StreamType):
        return value
    if isinstance(value, str):
        try:
            return StreamType(value.lower())
        except ValueError:
            pass
    raise ValueError(f"stream_type must be a StreamType (BAR, TICK or QUOTE), got {value!r}")


def _source_error(st: Source, exc: Exception) -> StreamSourceError:
    return StreamSourceError(f"source {st.label} raised after {st.pulled} items: {exc!r}")
