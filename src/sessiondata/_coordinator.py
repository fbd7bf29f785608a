"""`BacktestStreamCoordinator`: merges many market-data streams into one chronological replay.

One worker thread pulls every registered source lazily (one pending item per source, grouped by known time,
the times kept in a `heapq`), advances the backtest clock, writes each item into the store, and only then
hands it to the consumer through a bounded buffer. The consumer iterates `merged_stream()`.

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
  the clock moves to a new time, before the items known then are written (the upkeep's backtest passes).
- **Multi-day.** When the replay reaches an item of a later exchange-local date, the coordinator calls
  ``store.end_session()``, then every attached `SessionBoundaryListener`'s ``run_once()`` (synchronously:
  e.g. an upkeep pass that fills the ended session's gaps before it rolls into history), then
  ``store.start_new_session(date)``. The first item's date is started too, unless the store already has it
  as ``current_session_date``. When every stream is exhausted the last session is ended and the listeners
  run once more (``end_session_on_exhaustion=False`` leaves the session open).
- **Speed.** ``speed=None`` replays as fast as possible; ``speed=60.0`` replays 60 simulated seconds per
  wall-clock second. Waits are on a condition variable, so `pause` and `stop_worker` interrupt them.
- **Run-ahead, read as of the item.** The worker may run ahead of the consumer by at most
  ``max_queue_size`` items in the buffer, plus ``batch_size`` items it is gathering and the one batch the
  consumer is iterating; the clock already reflects them. The store's readers do not see them: while the
  worker runs it holds the store's `PublicationGate` (see `sessiondata._publication`), and the consumer
  publishes each item's writes just before it yields the item, so while it handles an item every read of
  the store (any symbol) answers exactly as the store stood right after that item was written. Session
  boundaries wait for the consumer to catch up, then run directly (listeners read the store as usual).
  Until a consumer iterates `merged_stream()` the worker publishes each batch as it hands it over; when the
  replay ends or `stop_worker` is called everything written is published.
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
import heapq
import logging
import operator
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from ._calendar import SessionClock
from ._clock import ClockMode, TimeProvider
from ._models import Bar, InvalidDataError, MarketData, Quote, SessionDataError, Tick
from ._publication import PublicationGate
from ._store import SessionData, get_session_data

__all__ = [
    "BacktestStreamCoordinator",
    "CoordinatorError",
    "SessionBoundaryListener",
    "StreamSourceError",
    "StreamType",
]

logger = logging.getLogger("sessiondata.coordinator")

_MINUTE = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_END = object()


class _Lowest:
    """Below every merge key: a stream's `last` before its first item (spares a None test per item)."""

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

# Iterators over in-memory containers never block, so items pulled from them may wait in the worker's batch;
# any other source (a generator, a file, a socket) might block, so the batch is handed over before each pull.
_NON_BLOCKING_ITERATORS: frozenset[type] = frozenset(
    type(iter(x))  # type: ignore[var-annotated]
    for x in ([], (), range(0), collections.deque(), {}, "", b"")
) | frozenset({type(reversed([]))})


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


@runtime_checkable
class SessionBoundaryListener(Protocol):
    """Something to run, synchronously, each time the replay ends a session (e.g. an upkeep thread's pass).

    ``run_once()`` is called by the coordinator's worker after ``store.end_session()`` and before the next
    ``store.start_new_session(...)``, once the consumer has handled every item before the boundary (so it
    reads and writes the store directly); the replay waits for it. A listener may also have an
    ``advance(now)`` method: the worker calls it each time the clock moves to a new time, before writing the
    items known then (`DataUpkeepThread.advance` runs its backtest-mode passes there). Return values are
    ignored; an exception stops the replay and is reported like any worker error.
    """

    def run_once(self) -> object:
        """Do one pass over the store."""
        ...


class _Stream:
    """One registered source and the worker's bookkeeping for it (touched only by the worker once running)."""

    __slots__ = (
        "cls",
        "day",
        "dropped",
        "exhausted",
        "flush_at",
        "is_bar",
        "it",
        "item",
        "key",
        "known",
        "label",
        "last",
        "may_block",
        "pulled",
        "rank",
        "seq",
        "sort_key",
        "stream_type",
        "symbol",
        "write",
    )

    def __init__(
        self,
        symbol: str,
        stream_type: StreamType,
        it: Iterator[Any],
        seq: int,
        store: SessionData,
        batch_size: int,
        blocking: bool | None = None,
    ) -> None:
        self.symbol = symbol
        self.stream_type = stream_type
        self.key = (symbol, stream_type)
        self.label = f"{symbol}/{stream_type.value}"
        self.it = it
        self.seq = seq
        self.sort_key = (_TYPE_ORDER[stream_type], symbol, seq)
        self.rank = 0
        self.cls = _RECORD_CLASS[stream_type]
        self.is_bar = stream_type is StreamType.BAR
        writers: dict[StreamType, Callable[..., object]] = {
            # The coordinator checks each bar's type and symbol as it pulls it, so it may skip the store's
            # own checks, unless a subclass of the store overrides `add_bar`.
            StreamType.BAR: (
                store._add_checked_bar if type(store).add_bar is SessionData.add_bar else store.add_bar
            ),
            StreamType.TICK: store.add_tick,
            StreamType.QUOTE: store.add_quote,
        }
        self.write = writers[stream_type]
        self.may_block = type(it) not in _NON_BLOCKING_ITERATORS if blocking is None else blocking
        # The batch is handed over once it holds this many items, at once after an item of a source that
        # might block.
        self.flush_at = 1 if self.may_block else batch_size
        # Merge key of the last item pulled (its timestamp's, not its known time's).
        self.last: Any = _LOWEST
        self.pulled = 0
        self.dropped = 0
        self.exhausted = False
        # The pending item (pulled, not yet replayed), its known-time key and its session date. The stream
        # itself is the merge's entry: no tuple per item.
        self.item: Any = None
        self.known: Any = None
        self.day: date = _NO_DATE


_NO_DATE = date.min
_rank = operator.attrgetter("rank")


def _no_mark() -> int:
    return 0


class _Stopped(Exception):
    """Control flow inside the worker: stop was requested. Never raised to callers."""


class BacktestStreamCoordinator:
    """Replays registered streams in merged chronological order into a `SessionData` and to one consumer.

    Parameters (keywords after ``session_data``):

    - ``session_data``: the store written to; ``None`` uses `get_session_data()` (the process-wide store).
    - ``time_provider``: a backtest-mode `TimeProvider` to advance; ``None`` creates one in the store's zone.
    - ``speed``: ``None`` (as fast as possible) or simulated seconds per wall-clock second (> 0).
    - ``extended_hours``: replay pre- and post-market items too (default: regular session only).
    - ``on_out_of_order``: ``"raise"`` (default) or ``"drop"`` (see the module documentation).
    - ``max_queue_size``: capacity of the output buffer, in items (the backpressure bound).
    - ``batch_size``: items handed to the buffer at once (at most ``max_queue_size``); the worker hands over
      a partial batch whenever the consumer is waiting, before pausing or sleeping, and before pulling from
      a source that might block, so batching never delays an item the consumer could have.
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
        max_queue_size: int = 4096,
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
        # `_paused`/`_stop`/`_finished`/`_interrupt`, `_state`, `_error` and `_thread`. The worker reads
        # `_interrupt` and `_consumer_waiting` without it: a stale read delays by one item, never loses one.
        self._cond = threading.Condition(threading.Lock())
        self._streams: dict[tuple[str, StreamType], _Stream] = {}
        self._seq = 0
        self._ops: list[tuple[str, _Stream]] = []
        # Each entry: the items, each item's publication mark, and the gate's log segment they index (None
        # once published: before a consumer attached, or without a gate).
        self._buffer: collections.deque[tuple[list[Any], list[int], list[Any] | None]] = collections.deque()
        self._buffered = 0
        self._max_buffered = 0
        # The worker's batch being gathered (written to the store, not yet handed over) and each item's
        # publication mark (see `_publication`); worker only.
        self._pending: tuple[list[Any], list[int]] = ([], [])
        # The store's publication gate while the worker runs (held from its start, closed by `_release`),
        # whether a consumer is iterating `merged_stream()`.
        self._gate: PublicationGate | None = None
        self._gate_mark: Callable[[], int] = _no_mark
        self._consumer_attached = False
        self._consumer_waiting = False
        self._worker_waiting = False
        self._paused = False
        self._stop = False
        self._interrupt = False
        self._finished = False
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
        self._filtered = 0
        self._dropped = 0
        self._late = 0
        self._sessions: list[date] = []

    # ------------------------------------------------------------ properties

    @property
    def session_data(self) -> SessionData:
        """The store written to. O(1)."""
        return self._store

    @property
    def time_provider(self) -> TimeProvider:
        """The backtest clock this coordinator advances. O(1)."""
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
        here). ``blocking`` says whether pulling from it may wait on something outside the process (a
        socket, a live feed): then the worker hands its batch over before each pull, so no item waits
        behind a stalled source. ``None`` (default) guesses: in-memory containers do not block, anything
        else (a generator, a file) might; pass ``False`` for a generator over local data to have its items
        handed over in batches.

        May be called before or while the worker runs; a stream added while running joins the merge at its
        next item. Raises `ValueError` for an unknown stream type, a source that is not iterable, or
        a ``(symbol, stream_type)`` already registered and not exhausted; `InvalidDataError` for a bad symbol.
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
            if self._finished or self._stop:
                raise RuntimeError("the replay has ended; create a new coordinator to replay more streams")
            self._seq += 1
            stream = _Stream(sym, kind, it, self._seq, self._store, self._batch_size, blocking)
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
            _check_item(item, cls, sym, f"{sym}/{kind.value}", i)
        self.register_stream(sym, kind, data)

    def deregister_stream(self, symbol: str, stream_type: StreamType | str) -> bool:
        """Remove a stream: its pending and remaining items are not replayed. True if it was registered.

        While the worker runs, the removal takes effect before the worker's next item. O(1) here (O(streams)
        in the worker). Thread-safety: any thread.
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
        receive the items already buffered, then the stream ends. Idempotent. Thread-safety: any thread
        except the worker's; waits at most ``timeout`` for the worker to finish.
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
            if self._gate is not None:
                self._gate.close()  # the replay is over: readers see everything written
            if not alive and self._state == "stopping":
                self._state = "stopped"
            self._cond.notify_all()
        if alive:
            logger.warning("stream coordinator worker did not stop within %.3fs; abandoned (daemon)", timeout)
        return not alive

    def pause(self) -> None:
        """Pause the replay: the worker parks before its next item and the clock stops advancing.

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

        Once this returns True, the clock and the store do not change until `resume`. O(1) per wake-up.
        Thread-safety: any thread except the worker's.
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
            self._consumer_attached = True
            never_started = self._thread is None and not self._stop
        if never_started:
            self.start_worker()
        try:
            yield from self._consume()
        finally:
            self._detach_consumer()

    def _consume(self) -> Iterator[MarketData]:
        # The consumer's loop: before yielding an item, publish the store's writes up to the item's mark, so
        # that reads made while the item is handled answer as of it (see `_publication`).
        cond = self._cond
        buffer = self._buffer
        while True:
            with cond:
                while not buffer:
                    if self._finished:
                        gate = self._gate
                        if gate is not None:
                            gate.close()
                        if self._error is not None:
                            raise CoordinatorError(
                                f"the stream replay failed: {self._error}"
                            ) from self._error
                        return
                    self._consumer_waiting = True
                    if self._worker_waiting:
                        cond.notify_all()  # a worker waiting to be in step with the consumer
                    cond.wait()
                self._consumer_waiting = False
                batch, marks, seg = buffer.popleft()
                self._buffered -= len(batch)
                if self._worker_waiting:
                    self._worker_waiting = False  # it is woken; it sets the flag again if still short of room
                    cond.notify_all()
            gate = self._gate
            if seg is None or gate is None:
                yield from batch
            else:
                yield from gate.release(batch, marks, seg)

    def _detach_consumer(self) -> None:
        """The consumer left (exhausted, broke off, or failed): publish what is buffered, and everything once
        the worker has ended; from now on the worker publishes at each hand-over."""
        with self._cond:
            self._consumer_attached = False
            gate = self._gate
            if gate is None:
                return
            if self._finished:
                gate.close()
                return
            for i, (batch, marks, seg) in enumerate(self._buffer):
                if seg is not None:
                    gate.apply(seg, 0, len(seg))
                    self._buffer[i] = (batch, marks, None)

    def queue_size(self) -> int:
        """Items in the output buffer now: at most ``max_queue_size``, plus the one batch a failed replay
        hands over before its error. O(1); lock-free, racy."""
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
                "filtered": self._filtered,
                "dropped_out_of_order": self._dropped,
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
        batch, marks = self._pending
        if batch:
            self._hand_over(list(batch), list(marks))
            batch.clear()
            marks.clear()
        self._parked.set()
        logger.info("stream coordinator paused (while skipping items)")
        self._resumed.wait()
        if self._stop:
            raise _Stopped

    def _fresh_batch(self) -> tuple[list[Any], list[int]]:
        """A new, empty batch and its marks, remembered as `_pending` (worker thread only)."""
        pending: tuple[list[Any], list[int]] = ([], [])
        self._pending = pending
        return pending

    def _hand_over(self, batch: list[Any], marks: list[int]) -> None:
        """Move ``batch`` to the output buffer, waiting for room (worker thread only)."""
        n = len(batch)
        self._delivered += n
        with self._cond:
            while self._buffered + n > self._maxsize:
                if self._stop:
                    raise _Stopped
                if self._paused:
                    self._parked.set()  # blocked on a full buffer: the clock cannot move either
                self._worker_waiting = True
                self._cond.wait()
            self._worker_waiting = False
            self._enqueue(batch, marks)
            if self._consumer_waiting:
                # Cleared here, not only by the consumer, so the items that follow are batched again
                # instead of being handed over one by one until the consumer thread gets to run.
                self._consumer_waiting = False
                self._cond.notify_all()

    def _hold_gate(self) -> None:
        gate = self._store.hold_publication()
        self._gate = gate
        self._gate_mark = gate.mark

    def _in_step_with_consumer(self) -> None:
        """Wait until the consumer has handled every item handed over and asks for the next, then publish
        everything (close the gate), so that what runs next (a session boundary, its listeners) reads and
        writes the store directly while no item is in hand (worker thread only; bounded by stop)."""
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
            gate = self._gate
            if gate is not None:
                gate.close()
            self._gate = None
            self._gate_mark = _no_mark

    def _enqueue(self, batch: list[Any], marks: list[int]) -> None:
        """Append a batch to the buffer with its log segment; without a consumer, publish it now (worker
        thread, ``_cond`` held)."""
        gate = self._gate
        seg = None if gate is None else gate.take()
        if seg is not None and not self._consumer_attached:
            gate.apply(seg, 0, len(seg))  # type: ignore[union-attr]
            seg = None
        self._buffer.append((batch, marks, seg))
        self._buffered += len(batch)
        self._max_buffered = max(self._max_buffered, self._buffered)

    def _run(self) -> None:
        try:
            self._hold_gate()
            self._replay()
        except _Stopped:
            logger.info("stream coordinator stopped after %d items", self._delivered)
        except BaseException as exc:
            # Items written to the store before the fault still reach the consumer, before the error. They
            # go into the buffer even past its capacity (by at most one batch): waiting for room here would
            # hide the failure from `status()` for as long as nobody reads.
            pending, marks = self._pending
            self._pending = ([], [])
            with self._cond:
                if pending:
                    self._delivered += len(pending)
                    self._enqueue(pending, marks)
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
                gate = self._gate
                if gate is not None and not (self._consumer_attached and self._buffer):
                    gate.close()  # nothing is left for a consumer to reach: publish everything
                self._cond.notify_all()
            self._parked.set()

    def _replay(self) -> None:
        # One hot loop in one frame, with locals bound up front: per-item cost is what limits replay speed.
        store = self._store
        clock = self._clock
        sclock: SessionClock = store.session_clock
        tz: tzinfo = sclock.tz
        regular_only = not self._extended_hours
        drop_ooo = self._drop_out_of_order
        speed = self._speed
        heappop = heapq.heappop
        heappush = heapq.heappush
        heappushpop = heapq.heappushpop
        minute = _MINUTE
        bar_cls = Bar
        epoch = _EPOCH
        end = _END

        # Merge keys. Every timestamp is brought to one kind, the clock's if it is set, else the first item's:
        # naive data is keyed by the naive datetime itself (exchange-local wall time); aware data by the
        # timedelta since the epoch, because comparing aware datetimes whose tzinfo objects differ (as
        # parsed from ISO strings) costs ~200 ns per comparison, and a timedelta compares in ~12 ns.
        ref_naive: bool | None = None if not clock.is_set else clock.now().tzinfo is None

        def to_key(ts: datetime) -> Any:
            nonlocal ref_naive
            if ref_naive is None:
                ref_naive = ts.tzinfo is None
            if ref_naive:
                return ts if ts.tzinfo is None else ts.astimezone(tz).replace(tzinfo=None)
            return (ts.replace(tzinfo=tz) if ts.tzinfo is None else ts) - epoch

        def wall_key(wall: datetime) -> Any:
            return wall if ref_naive else wall.replace(tzinfo=tz) - epoch

        def key_time(k: Any) -> datetime:
            return k if ref_naive else (epoch + k).astimezone(tz)  # type: ignore[no-any-return]

        # Cache of the session date being replayed: keys in [c_lo, c_hi) are that date's (`date_bounds`), and
        # in [c_open, c_close) the stretch of trading minutes (breaks cut out) its last located item is in
        # (until then, `locate`). [f_lo, f_hi) is where an item needs neither: that stretch's part of the
        # date (the whole date with extended hours), or nothing (None) until an item is located.
        c_lo: Any = None
        c_hi: Any = None
        c_open: Any = None
        c_close: Any = None
        c_day: date | None = None
        f_lo: Any = None
        f_hi: Any = None
        # The last bar that passed the range test with a `timezone` or `ZoneInfo`: its wall time, fold, date,
        # tzinfo, merge key and known-time key. The bars of one minute of many symbols are pulled one after
        # another; a bar equal in those fields reuses the keys (~60 ns of comparisons instead of ~240 ns of
        # aware arithmetic). Equal is the same object, or for a fixed-offset `timezone` (ISO-parsed bars own
        # one each) an equal offset; with either kind equal wall fields and fold are then the same instant,
        # across DST too. The cache is cleared whenever the range moves, so a hit is in range.
        h_time: time | None = None
        h_fold = 0
        h_date: date | None = None
        h_tz: tzinfo | None = None
        h_k: Any = None
        h_known: Any = None

        def settle(st: _Stream, item: Any) -> _Stream | None:
            # `item` was just pulled from `st`: check it, key it, filter it, make it pending. None if it is
            # filtered out or dropped.
            nonlocal c_lo, c_hi, c_open, c_close, c_day, f_lo, f_hi
            nonlocal h_time, h_fold, h_date, h_tz, h_k, h_known
            if type(item) is not st.cls or item.symbol != st.symbol:
                _check_item(item, st.cls, st.symbol, st.label, st.pulled)
            st.pulled += 1
            ts = item.timestamp
            # The common case (same kind as the reference) inline; to_key for the rest.
            k = (ts if ref_naive else ts - epoch) if (ts.tzinfo is None) is ref_naive else to_key(ts)
            last = st.last
            if k < last:
                if drop_ooo:
                    st.dropped += 1
                    self._dropped += 1
                    logger.debug("dropped out-of-order item #%d of %s: %r", st.pulled - 1, st.label, item)
                    return None
                raise InvalidDataError(
                    f"out-of-order item #{st.pulled - 1} in source {st.label}: {item!r} is before the "
                    f"previous item's timestamp {key_time(last).isoformat()}"
                )
            st.last = k
            if f_lo is not None and f_lo <= k < f_hi:
                st.item = item
                st.day = c_day  # type: ignore[assignment]
                if st.is_bar:
                    st.known = known = k + minute
                    if type(tzi := ts.tzinfo) is timezone or type(tzi) is ZoneInfo:
                        h_time, h_fold, h_date, h_tz = ts.time(), ts.fold, ts.date(), tzi
                        h_k, h_known = k, known
                else:
                    st.known = k
                return st
            if c_lo is None or not c_lo <= k < c_hi:
                c_day = sclock.session_date(ts)  # an overnight session's evening is its date's
                c_lo, c_hi = map(wall_key, sclock.date_bounds(c_day))
                c_open = c_close = f_lo = f_hi = h_time = None
            if regular_only:
                if c_open is None or not c_open <= k < c_close:
                    # Not in the trading stretch located last: another stretch of the session (after a
                    # break), a break, or outside the session. Locate it.
                    loc = sclock.locate(ts)
                    if loc is None:
                        self._filtered += 1
                        return None
                    wall = ts if ts.tzinfo is None else ts.astimezone(tz).replace(tzinfo=None)
                    wall = wall.replace(second=0, microsecond=0) - loc[1] * minute
                    first, stop = sclock.stretch(loc[0], loc[1])
                    c_open = wall_key(wall + first * minute)
                    c_close = wall_key(wall + stop * minute)
                    f_lo = max(c_open, c_lo)
                    f_hi = min(c_close, c_hi)
                    h_time = None
            else:
                f_lo = c_lo
                f_hi = c_hi
            assert c_day is not None
            st.item = item
            st.day = c_day
            st.known = k + minute if st.is_bar else k
            return st

        def pull(st: _Stream) -> _Stream | None:
            # Make the next item of `st` that is not filtered out or dropped pending; None once exhausted.
            while True:
                try:
                    item: Any = next(st.it, end)
                except Exception as exc:
                    raise _source_error(st, exc) from exc
                if item is end:
                    return None
                if settle(st, item) is not None:
                    return st
                if self._interrupt:
                    # Every item skipped so far (outside the session, or dropped): stop and pause must
                    # still take effect, however long the source goes on skipping.
                    self._interrupted_while_skipping()

        # Pending items (one per active stream) are grouped by known time: `kheap` is a heap of buckets
        # (known-time key, sequence number, the streams whose pending item is known then). Two buckets may
        # share a key (a bucket is only found again as `last_b`, below): they are merged when taken out as
        # `cur`, which is then sorted on rank and walked with `pos`. A replay's items mostly share their known
        # time with many others (one bar per symbol and minute), so placing the next item is a list append
        # where a heap of items costs a `heapreplace` (~7 tuple comparisons at 100 streams); an item with a
        # known time of its own costs about what it costs in a heap of items.
        kheap: list[tuple[Any, int, list[_Stream]]] = []
        seq = 0

        def rebuild(active: list[_Stream]) -> None:
            # Ranks only need to be unique among the streams with an item pending.
            nonlocal seq
            active.sort(key=_sort_key)
            by_key: dict[Any, list[_Stream]] = {}
            for i, st in enumerate(active):
                st.rank = i
                by_key.setdefault(st.known, []).append(st)
            kheap[:] = [(k, i, b) for i, (k, b) in enumerate(by_key.items())]
            heapq.heapify(kheap)
            seq = len(kheap)

        def park(st: _Stream) -> None:
            nonlocal seq
            seq += 1
            heappush(kheap, (st.known, seq, [st]))

        def apply_ops(rest: list[_Stream]) -> bool:
            # `rest`: what is left of the bucket being replayed. True if the buckets were rebuilt (`rest` is
            # in them then).
            with self._cond:
                ops, self._ops = self._ops, []
                self._interrupt = self._paused or self._stop
            if not ops:
                return False
            removed = {id(s) for op, s in ops if op == "remove"}
            pending = [s for s in rest if id(s) not in removed]
            pending += (s for _, _, b in kheap for s in b if id(s) not in removed)
            for op, s in ops:
                if op == "add" and id(s) not in removed:
                    if pull(s) is None:
                        s.exhausted = True
                    else:
                        pending.append(s)
            rebuild(pending)
            return True

        now_k: Any = to_key(clock.now()) if clock.is_set else None
        with self._cond:
            initial = [s for s in self._streams.values() if not s.exhausted]
            self._ops = [op for op in self._ops if op[1] not in initial]
            self._interrupt = self._paused or self._stop or bool(self._ops)
        primed: list[_Stream] = []
        for s in sorted(initial, key=_sort_key):
            if pull(s) is None:
                s.exhausted = True
            else:
                primed.append(s)
        rebuild(primed)

        cur: list[_Stream] = []
        pos = n = 0
        cur_known: Any = None
        # The bucket the last item was placed in (not `cur`): the next stream's item usually goes there too.
        last_k: Any = None
        last_b: list[_Stream] = []
        # A bucket made while `cur` was done, not yet in `kheap` (see the placement).
        deferred: tuple[Any, int, list[_Stream]] | None = None
        cur_day: date | None = None
        anchor: tuple[Any, float] | None = None
        # Also `self._pending`, so that a fault still hands over the items already written (see `_run`).
        batch, marks = self._fresh_batch()
        hooks = [f for f in (getattr(lst, "advance", None) for lst in self._listeners) if callable(f)]
        hand_over = self._hand_over
        mark = self._gate_mark

        while True:
            if self._interrupt:
                if deferred is not None:
                    heappush(kheap, deferred)
                    deferred = None
                if batch:
                    hand_over(batch, marks)
                    batch, marks = self._fresh_batch()
                if self._stop:
                    raise _Stopped
                if apply_ops(cur[pos:]):
                    cur = []
                    pos = n = 0
                    cur_known = last_k = None
                if self._paused:
                    self._parked.set()
                    logger.info("stream coordinator paused")
                    self._resumed.wait()
                    anchor = None  # no catch-up burst for the time spent paused
                continue
            if pos == n:
                if deferred is not None:
                    cur_known, _, cur = heappushpop(kheap, deferred)
                    deferred = None
                elif kheap:
                    cur_known, _, cur = heappop(kheap)
                else:
                    break
                while kheap and kheap[0][0] == cur_known:
                    cur += heappop(kheap)[2]
                n = len(cur)
                if n > 1:
                    cur.sort(key=_rank)  # filled in the rank order of the bucket before: mostly linear
                pos = 0
                last_k = cur_known  # never compared equal: see the placement below
            st = cur[pos]
            item = st.item
            day = st.day
            if day is not cur_day and (cur_day is None or day > cur_day):
                if batch:
                    # Hand over first, then re-check pause/stop: the boundary writes to the store.
                    hand_over(batch, marks)
                    batch, marks = self._fresh_batch()
                    continue
                self._session_boundary(cur_day, day)
                mark = self._gate_mark
                cur_day = day
            # Every item in `cur` is known at `cur_known`, so after the first one this is an identity test.
            if cur_known is not now_k:
                if now_k is None or cur_known > now_k:
                    if speed is not None:
                        if anchor is None:
                            anchor = (cur_known if now_k is None else now_k, _time.monotonic())
                        delay = (
                            anchor[1] + (cur_known - anchor[0]).total_seconds() / speed - _time.monotonic()
                        )
                        if delay > 0:
                            if batch:
                                hand_over(batch, marks)
                                batch, marks = self._fresh_batch()
                                continue
                            with self._cond:
                                if self._cond.wait_for(lambda: self._interrupt, delay):
                                    continue
                    t = key_time(cur_known)
                    clock.advance_to(t)
                    for hook in hooks:
                        hook(t)  # e.g. the upkeep's pass at simulated times, before the items known at t
                elif cur_known < now_k:
                    if not drop_ooo:
                        raise InvalidDataError(
                            f"item of {st.label} known at {key_time(cur_known).isoformat()} is before the "
                            f"clock's time {key_time(now_k).isoformat()} (a stream registered while running, "
                            f"or a clock started after the data): {item!r}"
                        )
                    self._late += 1
                    pos += 1
                    if pull(st) is None:
                        st.exhausted = True
                    elif st.known == cur_known:
                        pos -= 1  # its slot in `cur`, just replayed (see below)
                    else:
                        park(st)
                    continue
                now_k = cur_known
            pos += 1
            st.write(st.symbol, item)
            batch.append(item)
            marks.append(mark())
            if len(batch) >= st.flush_at or self._consumer_waiting:
                hand_over(batch, marks)
                batch, marks = self._fresh_batch()
            # The next item of `st`: `pull` inline. A bar equal to the last bar keyed (see h_time) takes its
            # keys here; any other item goes through `settle`.
            try:
                item = next(st.it, end)
            except Exception as exc:
                raise _source_error(st, exc) from exc
            if item is end:
                st.exhausted = True
                continue
            if (
                st.is_bar
                and type(item) is bar_cls
                and item.symbol == st.symbol
                and (ts := item.timestamp).time() == h_time
                and ((tzi := ts.tzinfo) is h_tz or (type(tzi) is timezone and tzi == h_tz))
                and ts.fold == h_fold
                and ts.date() == h_date
                and not h_k < st.last
            ):
                st.pulled += 1
                st.last = h_k
                st.item = item
                st.day = c_day  # type: ignore[assignment]
                st.known = k = h_known
            elif settle(st, item) or pull(st):
                k = st.known
            else:
                st.exhausted = True
                continue
            if k == cur_known:
                # The same stream again at the same known time: next in order, as the rest of `cur` ranks
                # after this stream. It takes the slot just replayed, `cur[pos - 1]`.
                pos -= 1
            elif k == last_k:
                last_b.append(st)
            else:
                last_b = [st]
                last_k = k
                seq += 1
                if pos == n:
                    # `cur` is done, and this may be the next bucket: pushed and popped in one step above.
                    deferred = (k, seq, last_b)
                else:
                    heappush(kheap, (k, seq, last_b))

        if batch:
            hand_over(batch, marks)
            self._fresh_batch()
        if self._end_on_exhaustion and cur_day is not None:
            self._in_step_with_consumer()
            store.end_session()
            for listener in list(self._listeners):
                listener.run_once()
        logger.info("stream coordinator finished: %d items delivered", self._delivered)

    def _session_boundary(self, previous: date | None, day: date) -> None:
        """End ``previous`` (running the listeners), start ``day`` in the store (worker thread only)."""
        store = self._store
        if previous is None:
            if store.current_session_date != day:
                store.start_new_session(day)
        else:
            self._in_step_with_consumer()
            store.end_session()
            for listener in list(self._listeners):
                listener.run_once()
            store.start_new_session(day)
            self._hold_gate()
        self._sessions.append(day)
        logger.info("replaying session %s", day)


def _sort_key(s: _Stream) -> tuple[int, str, int]:
    return s.sort_key


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


def _source_error(st: _Stream, exc: Exception) -> StreamSourceError:
    return StreamSourceError(f"source {st.label} raised after {st.pulled} items: {exc!r}")


def _check_item(item: object, cls: type[Any], symbol: str, label: str, index: int) -> None:
    """Raise `InvalidDataError` naming the source unless ``item`` is a ``cls`` record for ``symbol``."""
    if not isinstance(item, cls):
        raise InvalidDataError(
            f"item #{index} of source {label} is not a {cls.__name__}: {type(item).__name__} {item!r}"
        )
    if item.symbol != symbol:
        raise InvalidDataError(
            f"item #{index} of source {label} is for symbol {item.symbol!r}, not {symbol!r}: {item!r}"
        )
