"""`DataUpkeepThread`: the store's second writer, which keeps each symbol's session complete.

Each pass, for every active symbol: find the regular-session minutes that have ended without a bar (up to
one minute before the attached clock's ``now()``, or without a clock up to the newest bar in the store; the
whole session once the store's session has ended), fetch them from a `BarRepository`, and store what comes
back marked `Provenance.GAP_FILLED` with ``replace=False``, so a fill never overwrites a streamed bar. The
store keeps quality and derived bars up to date as the fills land. The thread writes only through the
store's public API.

Detection is incremental: minutes before a symbol's watermark were checked in an earlier pass and a present
bar never disappears within a session, so a pass looks only at minutes that ended since, plus the gaps still
open. A pass over symbols with no gaps costs O(symbols), not O(bars), and a small O(symbols): a symbol
complete up to the pass's time (nothing open, quality 100%, its newest bar in the last due minute) is
recognised by one or two comparisons and not visited; the rest of the pass costs in proportion to the
symbols that may miss a minute (``status()["symbols_visited"]`` counts them). A visited symbol's open
minutes (a thin market keeps its quiet minutes open all session) cost nothing per pass once found: one
binary search tells whether any bar landed among them since the last look, and retries are scanned only
among the minutes still being retried, once the earliest is due.

Live mode (a live clock, or none): a background thread wakes on every write to the store and at least every
``period`` seconds. Backtest mode (a backtest clock): no thread; passes run at simulated times inside the
replay's pipeline. The upkeep listens to the clock (`TimeProvider.on_advance`), so whoever advances it, a
coordinator or a hand-driven backtest, runs the pass in its own thread, once per move: a pass when a new
simulated minute began (a missing minute ``m`` is filled when the replay reaches the first item known at or
after ``m + 2`` minutes), and `run_once` at each session boundary (a coordinator calls it when the upkeep is
one of its session listeners; the upkeep has no ``advance`` for a coordinator to call as well). Right after
a pass that visited no symbol, a new minute costs a quick test instead of a pass, lock-free and without a
copy: one identity test of the store's `SessionData.writer_heads` (the same symbols, session, not ended)
and, per symbol, its quality and newest bar's stamp against the due range (a symbol complete from the open
whose newest bar starts in minute ``L`` cannot miss a due minute before the clock reaches ``L + 3``).
Retries are then due in simulated seconds, the jitter is seeded and the repository is called in the replay's
thread, so the same replay fills the same minutes at the same items. A registered symbol with no bars
yet is filled too (in the replay clock's timestamp style, else the other symbols', else the repository's).

Retries: a minute the repository did not return is retried after an exponential backoff with jitter
(``retry_base * 2**attempts``, capped at ``retry_cap``, times a random factor in ``[1 - jitter, 1]``), up to
``max_retries`` attempts; then it is reported as unfillable and left alone.

Faults never corrupt the store and never kill the thread: a repository that raises, hangs past
``fetch_timeout``, or returns bars outside the gap, for another symbol, of the wrong timezone style, or
invalid is recorded in `DataUpkeepThread.status` (and logged once per symbol and kind, with context); the
offending bars are dropped and the rest stored. Each fetch runs in its own daemon thread so that a hung
repository cannot stall the pass or `stop()`; a fetch still hanging at `stop()` is abandoned (it can finish
or hang on harmlessly; its result is discarded) and reported in `status()["abandoned_fetches"]`.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from sessiondata._calendar import to_exchange_local
from sessiondata._clock import ClockMode, TimeProvider
from sessiondata._gaps import detect_gaps
from sessiondata._models import Bar, InvalidDataError, Provenance
from sessiondata._repository import BarRepository
from sessiondata._zones import fixed_zone
from sessiondata.core.series import Series
from sessiondata.core.snapshot import SymbolSessionData
from sessiondata.core.store import SessionData

__all__ = ["DataUpkeepThread"]

logger = logging.getLogger("sessiondata.upkeep")

_MINUTE = timedelta(minutes=1)
# At a clock in minute F, minutes up to F - 2 are due (a minute ends, then a minute of grace, see
# `_on_clock`): a symbol complete from the open whose newest bar starts at F - 2 or later misses none.
_TWO_MINUTES = timedelta(minutes=2)
_LOCAL_EPOCH = datetime(1970, 1, 1)
_NEVER = float("inf")


class _Retry:
    """One missing minute's fill history (mutated only under the pass lock)."""

    __slots__ = ("attempts", "due", "unfillable")

    def __init__(self) -> None:
        self.attempts = 0
        self.due = 0.0
        self.unfillable = False


class _FetchJob:
    """One repository call handed to the fetch worker; ``done`` is set when it returned or raised."""

    __slots__ = ("call", "done", "error", "finished", "result")

    def __init__(self, call: Callable[[], list[Any]]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: list[Any] | None = None
        self.error: BaseException | None = None
        self.finished = False


class _FetchWorker(threading.Thread):
    """The daemon thread that runs repository calls one at a time; it exits when abandoned, or after
    ``idle`` seconds without work (so `run_once`-only use leaves no thread behind for long)."""

    def __init__(self, idle: float = 1.0) -> None:
        super().__init__(name="sessiondata-upkeep-fetch", daemon=True)
        self.jobs: queue.SimpleQueue[_FetchJob | None] = queue.SimpleQueue()
        self._idle = idle
        # Guards `_retired`: a job is only queued while the worker is sure to take it.
        self._lock = threading.Lock()
        self._retired = False
        self._abandoned = False

    def submit(self, job: _FetchJob) -> bool:
        """Queue ``job``; False if the worker has retired (the caller then starts a new one)."""
        with self._lock:
            if self._retired:
                return False
            self.jobs.put(job)
            return True

    def abandon(self) -> None:
        """Exit after the call in progress instead of taking another one."""
        self._abandoned = True
        self.jobs.put(None)

    def run(self) -> None:
        while not self._abandoned:
            try:
                job = self.jobs.get(timeout=self._idle)
            except queue.Empty:
                with self._lock:
                    if self.jobs.empty():
                        self._retired = True
                        return
                continue
            if job is None:
                return
            try:
                job.result = job.call()
                job.finished = True
            except BaseException as exc:  # handed to the pass, which records it
                job.error = exc
            finally:
                job.done.set()


class _SymbolState:
    """What the upkeep remembers about one symbol's current session (only under the pass lock)."""

    __slots__ = (
        "aware",
        "bars_filled",
        "checked_until",
        "fill_attempts",
        "gaps_found",
        "looked_before",
        "looked_size",
        "looked_until",
        "next_due",
        "open",
        "retrying",
        "session",
    )

    def __init__(self, session: date | None) -> None:
        self.session = session
        # The timestamp style for a symbol without bars (see `_style_without_bars`), once decided.
        self.aware: bool | None = None
        # Exchange-local naive minute: every minute before it was checked in an earlier pass.
        self.checked_until: datetime | None = None
        self.open: dict[datetime, _Retry] = {}
        # The open minutes still to be tried (not unfillable), the same `_Retry` objects: what the scans
        # for due minutes walk, so that a thin market's quiet minutes, once given up, cost nothing.
        self.retrying: dict[datetime, _Retry] = {}
        self.gaps_found = 0
        self.bars_filled = 0
        self.fill_attempts = 0
        # `_forget_present`'s memory of its last look: every open minute then was before `looked_until`
        # (a minute start, in the open minutes' style), `looked_before` bars were stamped before it, and the
        # series held `looked_size` bars. None: it has not looked (since the session began).
        self.looked_until: datetime | None = None
        self.looked_before = 0
        self.looked_size = 0
        # No open minute's retry is due before this (simulated or monotonic seconds): a lower bound, so
        # a pass before it skips the scan for due minutes. 0: look (new minutes are due at once).
        self.next_due = 0.0


def _forget_present(state: _SymbolState, bars: Series[Bar], newest: datetime | None) -> None:
    """Drop from ``state.open`` the minutes that have a bar now (streamed late, or written by another
    writer, since they were found missing); ``newest``: the latest minute this pass added to it, if any.

    A thin market's quiet minutes stay open all session, so this must not look at each of them on every
    pass. Every open minute had no bar when found, the minutes this pass added have none in this very
    snapshot, and bars are only ever added to a session: so if no bar was added before the end of the
    minutes open at the last look, none of those has one now. That takes one binary search (none when the
    series did not grow); only when a bar did land there (a late bar, a fill) is each open minute looked
    up. O(log n), or O(open * log n) when a bar arrived before the last open minute's end."""
    size = len(bars)
    until = state.looked_until
    before = state.looked_before
    if until is not None and size != state.looked_size:
        now_before = bars.count_between(None, _probe(until, bars))
        if now_before != before:
            for minute in [m for m in state.open if bars.count_between(m, m + _MINUTE)]:
                del state.open[minute]
                state.retrying.pop(minute, None)
            before = now_before
    if newest is not None:
        # The end of the newest minute as an instant (a wall minute later is not one on a clock change).
        end = newest + _MINUTE if newest.tzinfo is None else newest.astimezone(timezone.utc) + _MINUTE
        if until is None or end > until:
            until = end
            before = bars.count_between(None, _probe(until, bars))
    state.looked_until, state.looked_before, state.looked_size = until, before, size


def _probe(t: datetime, bars: Series[Bar]) -> datetime:
    """``t`` (aware) in the zone of ``bars``' newest stamp when that is a fixed offset: the same instant,
    compared with the stamps without asking a zone for its offset (Python compares datetimes sharing a
    tzinfo by their fields; exact for a fixed offset). Else ``t`` as it is. O(1)."""
    last = bars.last()
    zone = None if last is None else last.timestamp.tzinfo
    if zone is None or t.tzinfo is None or type(zone) is not timezone or zone is t.tzinfo:
        return t
    return t.astimezone(zone)


def _runs(minutes: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted minutes grouped into half-open ``[first, last + 1 minute)`` runs of consecutive minutes."""
    out: list[tuple[datetime, datetime]] = []
    for m in minutes:
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + _MINUTE)
        else:
            out.append((m, m + _MINUTE))
    return out


def _all_settled(snaps: Iterable[SymbolSessionData], lo: datetime, hi: datetime) -> bool:
    """Whether every snapshot is *settled in* ``[lo, hi)``: its newest bar starts there and every regular
    minute from the open to it has a bar (quality 100%). The one completeness test: a full pass asks it of
    one symbol (`DataUpkeepThread._complete`), the quick test of all at once. O(snapshots), a few attribute
    reads and comparisons each, plus, on a lazy store, settling each symbol's bar quality over the bars
    written since it was last read (O(1) amortized a bar, `SymbolSessionData.bar_quality`). Raises
    `TypeError` if a bar's timestamp is naive and ``lo`` aware, or the reverse (the caller then looks
    closer)."""
    for snap in snaps:
        last = snap.latest_bar
        if last is None or snap.bar_quality != 100.0 or not lo <= last.timestamp < hi:
            return False
    return True


class _Quiet:
    """What a pass that visited no symbol leaves the quick test (`DataUpkeepThread._quick_test`): the
    store's `SessionData.writer_heads` object it saw (the same object later = the same symbols, session
    and lifecycle), the snapshots to test (a live view of it, or the wanted symbols' keys), and the
    session's close and its last minute, naive and in the session's fixed offset (``None`` without one)."""

    __slots__ = ("close", "close_aware", "fixed", "heads", "keys", "last", "last_aware", "snaps")

    def __init__(
        self,
        heads: Mapping[str, SymbolSessionData],
        wanted: set[str] | None,
        close: datetime,
        fixed: timezone | None,
    ) -> None:
        self.heads = heads
        self.snaps = heads.values()  # a live view: each test reads the newest snapshots
        self.keys = None if wanted is None else tuple(k for k in heads if k in wanted)
        self.close = close
        self.last = close - _MINUTE
        self.fixed = fixed
        self.close_aware = None if fixed is None else close.replace(tzinfo=fixed)
        self.last_aware = None if fixed is None else self.last.replace(tzinfo=fixed)


class _AliveCheck:
    """What `DataUpkeepThread.is_alive` returns: called, the live answer (as `threading.Thread.is_alive`);
    used as a truth value or compared with a bool, the answer when the attribute was read (the property's
    old meaning), with a `DeprecationWarning` (the old spelling goes in the next release)."""

    __slots__ = ("_check", "_then")

    def __init__(self, check: Callable[[], bool]) -> None:
        self._check = check
        self._then = check()

    def __call__(self) -> bool:
        return self._check()

    def _old_spelling(self) -> bool:
        warnings.warn(
            "DataUpkeepThread.is_alive is a method now, as threading.Thread.is_alive: call is_alive()",
            DeprecationWarning,
            stacklevel=3,
        )
        return self._then

    def __bool__(self) -> bool:
        return self._old_spelling()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return self._old_spelling() is other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a bool, so not hashable as one would be

    def __repr__(self) -> str:
        return f"<DataUpkeepThread.is_alive (call it): {self._check()}>"


class DataUpkeepThread:
    """Keeps a `SessionData` complete: detects missing minutes and fills them from a repository.

    ``repository=None`` detects and reports gaps without filling them. ``time_provider`` is the clock gaps
    are looked for up to. Live mode: the thread wakes on every write to the store and at least every
    ``period`` seconds; ``min_interval`` (default 0) spaces passes out when writes come faster than that.
    Backtest mode (a backtest clock): no thread; passes run at simulated times (the clock's moves,
    `run_once`), in the thread of the replay that owns the clock (see the module documentation).
    ``monotonic`` is the live mode's clock for retry backoff (default `time.monotonic`; a test may pass a
    hand-moved one); a backtest upkeep never reads it: its retries fall due in simulated seconds.

    Thread-safety: `start`, `stop`, `pause`, `resume`, `status` may be called from any thread. `run_once`
    may be called from any thread too (e.g. the stream coordinator at a session boundary); passes are
    serialized by a lock, so a caller waits for a pass in progress.
    """

    def __init__(
        self,
        session_data: SessionData,
        repository: BarRepository | None = None,
        *,
        time_provider: TimeProvider | None = None,
        period: float = 1.0,
        min_interval: float = 0.0,
        max_retries: int = 5,
        retry_base: float = 0.5,
        retry_cap: float = 60.0,
        jitter: float = 0.5,
        fetch_timeout: float = 5.0,
        symbols: Iterable[str] | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        if min_interval < 0 or fetch_timeout <= 0 or retry_base < 0 or retry_cap < 0:
            raise ValueError("min_interval, retry_base and retry_cap must be >= 0 and fetch_timeout > 0")
        if not isinstance(max_retries, int) or max_retries < 1:
            raise ValueError(f"max_retries must be an int >= 1, got {max_retries!r}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {jitter!r}")
        self._store = session_data
        self._repo = repository
        self._clock = time_provider
        self._period = period
        self._min_interval = min_interval
        self._max_retries = max_retries
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._jitter = jitter
        self._fetch_timeout = fetch_timeout
        self._symbols = None if symbols is None else {s.strip().upper() for s in symbols}
        # Backtest mode: passes run only at simulated times (the clock's moves, `run_once`), retries are
        # due in simulated seconds and the jitter is seeded, so the same replay fills the same minutes.
        self._backtest = time_provider is not None and time_provider.mode is ClockMode.BACKTEST
        self._rng = rng or (random.Random(0) if self._backtest else random.Random())
        # Retries are scheduled on this clock: the simulated one in backtest mode whatever ``monotonic`` says,
        # so that how often a replay asks the repository never depends on the machine's speed.
        self._monotonic = self._simulated_seconds if self._backtest else (monotonic or time.monotonic)
        # The simulated time from which `_on_clock` runs its next pass (backtest mode).
        self._next_pass: datetime | None = None
        # Set by a backtest pass that visited no symbol (every one complete, nothing open) for `_on_clock`'s
        # quick test; None after any other pass. Written under the pass lock, read without it (a record is
        # never changed once made).
        self._quiet: _Quiet | None = None
        # Passes `_on_clock` settled by the quick test (counted by the one thread that moves the clock).
        self._quick_passes = 0
        # The current pass's session hours as naive exchange-local (open, close); under the pass lock.
        self._bounds: tuple[datetime, datetime] | None = None
        # `_session_bounds`'s memo: the last session asked and its bounds, and that session's fixed UTC
        # offset (None when it changes inside the session, or on a closed day). Under the pass lock.
        self._bounds_memo: tuple[date, tuple[datetime, datetime] | None] | None = None
        self._fixed_zone: timezone | None = None
        self._started = False
        # Backtest mode: True while the clock's moves may run passes (started, subscribed, neither paused nor
        # stopped). One flag for `_on_clock`, read at each new minute; set only under `_lifecycle_lock`.
        self._acting = False
        self._unsubscribe: Callable[[], None] | None = None  # from the backtest clock's `on_advance`

        # Guards the lifecycle against a `stop` racing `start`'s first pass: `_thread` and `_unsubscribe` are
        # set, and `_stop` is set, only under it, so `stop` sees either nothing started (and `start`, after
        # its first pass, sees the stop and starts nothing) or a started thread / a subscription.
        self._lifecycle_lock = threading.Lock()
        # `stop` calls so far, and the count at the last `start` (both under the lifecycle lock): a pass runs
        # for the count it began with, and ends at its next check once a `stop` moved the count. The upkeep's
        # own passes begin with `start`'s count; a `run_once` with the count at its call, so that one called
        # after `stop` still runs whole.
        self._stops = 0
        self._started_at_stop = 0
        # Serializes passes (the thread's and any `run_once` caller's) and guards `_states` and `_pass_stops`
        # (the count the running pass began with).
        self._pass_lock = threading.Lock()
        self._pass_stops = 0
        self._states: dict[str, _SymbolState] = {}
        # Guards the counters, faults and flags below that `status()` reads from other threads, and the
        # hand-off of fetch workers between `_worker`, `_abandoned` and `_retiring` that `stop` reads.
        self._status_lock = threading.Lock()
        self._passes = 0
        # Symbols passes looked at beyond the O(1) completeness test (see `_candidates`), in all.
        self._visited = 0
        self._last_pass_wall: float | None = None  # time.time() at the end of the last pass
        self._last_pass_seconds: float | None = None
        self._faults: deque[dict[str, Any]] = deque(maxlen=100)
        self._fault_count = 0
        self._logged: set[tuple[str, str]] = set()
        self._last_error: str | None = None
        self._abandoned: list[threading.Thread] = []  # fetch workers given up inside a repository call
        # Fetch workers retired when idle, or told to stop, until they exit.
        self._retiring: list[threading.Thread] = []

        self._stop = threading.Event()
        self._running = threading.Event()  # set = not paused
        self._running.set()
        self._fetch_done: threading.Event | None = None
        self._worker: _FetchWorker | None = None
        self._thread: threading.Thread | None = None
        self._seen = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run a first pass at once (in the caller's thread), then, in live mode, start the background thread.

        In backtest mode (a backtest clock) no thread is started: later passes run at simulated times, when
        the clock moves (`TimeProvider.advance_to` calls the upkeep, which listens to it) and at `run_once`.
        Errors in that pass are recorded in `status()`, not raised. Raises `RuntimeError` if already
        started. Complexity: the first pass, O(symbols + gaps) plus its repository fetches. Thread-safety:
        any thread; waits for the first pass (bounded by ``fetch_timeout`` per fetch).
        """
        if self._thread is not None or self._started:
            raise RuntimeError("DataUpkeepThread already started")
        with self._lifecycle_lock:
            self._started = True
            self._stop.clear()
            self._started_at_stop = self._stops
        if self._backtest:
            clock = self._clock
            assert clock is not None
            self._safe_pass()
            if clock.is_set:
                # The first pass covered the clock's minute: a later move inside it runs none.
                now = clock.now()
                self._next_pass = now.replace(second=0, microsecond=0) + _MINUTE
            # Whoever moves the simulated clock (a coordinator's worker, or a hand-driven backtest) runs the
            # passes due, in its own thread, at the simulated time: never on a wall-clock wake-up.
            with self._lifecycle_lock:
                if self._stop.is_set():
                    return  # stopped during the first pass: never subscribe after `stop` returned
                self._unsubscribe = clock.on_advance(self._on_clock)
                self._acting = self._running.is_set()
            logger.info("upkeep started in backtest mode (passes at simulated times)")
            return
        # Read before the first pass: a write made during it must wake the thread for another pass.
        self._seen = self._store.version
        self._safe_pass()
        with self._lifecycle_lock:
            if self._stop.is_set():
                return  # stopped during the first pass: start no thread `stop` would not wait for
            thread = threading.Thread(target=self._run, name="sessiondata-upkeep", daemon=True)
            thread.start()
            self._thread = thread
        logger.info("upkeep thread started (period %.3gs)", self._period)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop running passes of its own (the live thread's, or those the backtest clock's moves start; an
        explicit `run_once` still runs one) and wait for the live-mode thread and any fetch thread it
        started, all against one deadline ``timeout`` seconds from the call.

        Bound: returns within ``timeout`` seconds plus a few brief lock hand-offs (the upkeep's lifecycle
        and status locks, the clock's lock to unsubscribe, the store's wake-up condition); it never takes
        the store's write lock or the pass lock, and never waits past the deadline for a pass or a
        repository call. A live pass in progress is told to stop (a fetch it waits for is given up at once)
        and ends at its next check: before each fetch, and every 1,024 bars of an answer it sifts. A
        backtest pass runs in the thread that moves the clock (a replay's worker), not in one of the
        upkeep's: it is not waited for, and ends at the same checks.

        Returns True if every thread it started has finished (in backtest mode it starts none, so True);
        False if one is still running at the deadline (the live thread still in a pass, or a fetch hanging
        in the repository: abandoned and reported in `status()`). Idempotent. Complexity: O(1) besides
        the wait. Thread-safety: any thread but the upkeep's own.
        """
        deadline = time.monotonic() + timeout
        with self._lifecycle_lock:
            self._stop.set()
            self._stops += 1
            self._acting = False
            unsubscribe = self._unsubscribe
            thread = self._thread
        if unsubscribe is not None:
            unsubscribe()
        self._running.set()
        done = self._fetch_done
        if done is not None:
            done.set()
        self._store.wake_waiters()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._status_lock:
            worker = self._worker
            self._worker = None
            self._retiring = [t for t in self._retiring if t.is_alive()]
            if worker is not None:
                # Kept until it exits, so that a later `stop` (e.g. one with more time) waits for it too.
                self._retiring.append(worker)
            fetches = [*self._abandoned, *self._retiring]
        if worker is not None:
            worker.abandon()
        for t in fetches:
            t.join(max(0.0, deadline - time.monotonic()))
        finished = (thread is None or not thread.is_alive()) and not any(t.is_alive() for t in fetches)
        logger.info("upkeep thread stopped%s", "" if finished else " (a fetch is still hanging)")
        return finished

    def pause(self) -> None:
        """Stop running passes until `resume` (a pass in progress completes). O(1); any thread."""
        with self._lifecycle_lock:
            self._running.clear()
            self._acting = False

    def resume(self) -> None:
        """Resume after `pause`. O(1); any thread."""
        with self._lifecycle_lock:
            self._running.set()
            self._acting = self._unsubscribe is not None and not self._stop.is_set()
        self._store.wake_waiters()

    @property
    def is_alive(self) -> _AliveCheck:
        """``is_alive()``: True while the background thread runs, as `threading.Thread.is_alive`. Racy by
        nature. O(1); any thread.

        Call it. The old property spelling (``if upkeep.is_alive:``) still works for this release: the
        object it returns is also true or false (as of the attribute read) and says so with a
        `DeprecationWarning`; it will become a plain method.
        """
        return _AliveCheck(self._thread_alive)

    def _thread_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _on_clock(self, now: datetime) -> None:
        """The backtest clock moved to ``now`` (`TimeProvider.on_advance`; the only caller): run a pass if a
        new simulated minute began since the last one (so a missing minute ``m`` is filled when the replay
        reaches the first item known at or after ``m + 2`` minutes: one minute for the bar to end, one of
        grace for bars of the same minute still on their way). Nothing while paused, or after `stop`.

        A new minute right after a pass that visited no symbol is first given the quick test
        (`_quick_test`): if nothing is due, the pass ends there (it counts in ``status()["passes"]``, not in
        ``last_pass_at``). Otherwise, and whenever the pass before visited a symbol, the full pass runs:
        the same fills at the same simulated minutes either way.

        Private on purpose: a listener with an ``advance(now)`` method is also called by a
        `BacktestStreamCoordinator` at every move of its clock, so an upkeep handed to one whole (as a
        session listener, for its `run_once`) would hear every move twice. The clock is the one driver.

        O(1) within a minute; at a new minute with nothing due, O(symbols) with a small constant (see
        `_quick_test`). Thread-safety: the thread that moves the clock (a coordinator's worker, or a
        hand-driven backtest), which waits for the pass; its writes reach readers in replay order.
        """
        due = self._next_pass
        if due is not None and now < due:
            return
        if not self._acting:
            return
        floor = now.replace(second=0, microsecond=0) if now.second or now.microsecond else now
        self._next_pass = floor + _MINUTE
        if self._quiet is not None and self._quick_test(now, floor):
            self._quick_passes += 1
            return
        self._safe_pass()

    def _quick_test(self, now: datetime, floor: datetime) -> bool:
        """True if a full pass at the clock's time ``now`` (``floor``: its minute) would visit no symbol, as
        the last pass did not, and change no symbol's state but its checked minute (left behind: the next
        visit, if any, looks at the minutes from there, where a complete symbol has no gap).

        Why it equals `_candidates`' test: nothing structural changed since the quiet pass (the store's
        `SessionData.writer_heads` is the object it saw: the same symbols, session, not ended), and each
        symbol must still be settled (`_all_settled`) in the due range ``[lo, close)``, ``lo`` the last due
        minute but one: ``F - 2`` minutes at a clock in minute ``F``, capped at the session's last minute
        (a clock past the close makes the whole session due). The range is built in the clock's style once
        (an aware clock in the session's fixed offset, the zone object stamps parsed from text share, so
        no comparison asks a zone for its offset); a symbol of the other style raises `TypeError`: a full
        pass sorts it out, as it does any doubt (no fixed offset, a new symbol, a session change).

        O(symbols) at a few attribute reads and comparisons each (and a lazy store's owed bar quality,
        see `_all_settled`), no conversion, no copy; O(1) with nothing to look at. Thread-safety: takes no
        lock (neither the store's nor the pass lock): it reads the immutable `_Quiet` record a quiet pass
        left and the store's live heads, and changes nothing the writer reads (a quality read remembers its
        settle for later readers only), so a `run_once` in another thread neither waits for it nor is
        disturbed by it (the record proves "nothing due" on its own, whichever pass left it).
        """
        quiet = self._quiet  # one read: a concurrent pass may replace it, never change it
        if quiet is None or self._store.writer_heads is not quiet.heads:
            return False
        if now.tzinfo is None:
            hi, last = quiet.close, quiet.last
        else:
            fixed = quiet.fixed
            if fixed is None or quiet.close_aware is None or quiet.last_aware is None:
                return False
            if now.tzinfo is not fixed:
                floor = now.astimezone(fixed).replace(second=0, microsecond=0)
            hi, last = quiet.close_aware, quiet.last_aware
        lo = min(floor - _TWO_MINUTES, last)
        keys = quiet.keys
        snaps = quiet.snaps if keys is None else [quiet.heads[k] for k in keys]
        try:
            return _all_settled(snaps, lo, hi)
        except TypeError:  # naive and aware stamps (or clock) side by side: the full pass sorts it out
            return False

    def _simulated_seconds(self) -> float:
        clock = self._clock
        if clock is None or not clock.is_set:
            return 0.0
        return (to_exchange_local(clock.now(), self._store.timezone) - _LOCAL_EPOCH).total_seconds()

    def __enter__(self) -> DataUpkeepThread:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        seen = self._seen
        while not self._stop.is_set():
            if not self._running.is_set():
                self._running.wait()
                continue
            # Returns at once if anything was written since `seen` (also during the last pass or a pause).
            self._store.wait_for_update(after_version=seen, timeout=self._period, cancel=self._stop)
            if self._stop.is_set():
                break
            if not self._running.is_set():
                continue
            seen = self._store.version  # before the pass: writes made during it trigger the next one
            self._safe_pass()
            if self._min_interval:
                self._stop.wait(self._min_interval)

    # ------------------------------------------------------------------ passes

    def _safe_pass(self) -> None:
        """One of the upkeep's own passes (its first, its thread's, a clock move's): recorded, not raised."""
        try:
            self._pass(self._started_at_stop)
        except Exception as exc:  # the thread must survive anything a pass throws; it is recorded
            self._fault("*", "pass_error", f"{type(exc).__name__}: {exc}", exc)

    def run_once(self) -> dict[str, Any]:
        """One synchronous pass over every active symbol; returns `status()` afterwards.

        Also after `stop`, the pass runs whole (a `stop` ends only a pass begun before it). In live mode its
        fetches then run on a new fetch thread, which exits after a second without work, or at the next
        `stop`, which waits for it.

        Complexity: O(symbols + minutes ended since the last pass + open gaps), plus the fetches; a symbol
        whose bars are complete up to now (quality 100%, newest bar in the last due minute, nothing open)
        costs O(1). Thread-safety: any thread; waits for a pass in progress. Repository faults are recorded,
        not raised.
        """
        self._pass(self._stops)
        return self.status()

    def _interrupted(self) -> bool:
        """Whether a `stop` came since the running pass began (it then ends at this check)."""
        return self._stops != self._pass_stops

    def _pass(self, stops: int) -> None:
        with self._pass_lock:
            self._pass_stops = stops
            began = time.perf_counter()
            store = self._store
            # The clock first, the data second: every bar known by the time read is then in the snapshot
            # (the coordinator writes an item before it moves the clock past it). The other order would
            # call a bar missing that was written between the two reads.
            clock_now = self._clock_now()
            # What writers wrote, also what a replay still holds back from readers: the upkeep is a writer.
            # The heads object first: a structural change after the copy then fails the next quick test.
            heads = store.writer_heads
            state = store.writer_state()
            snaps = state.snapshots
            now_local = clock_now if clock_now is not None else self._newest_local(snaps)
            session = state.current_session_date
            if session is None and now_local is not None:
                session = store.session_clock.session_date(now_local)
            if session is not None:
                bounds = self._session_bounds(session)
                if bounds is None:
                    now_local = None  # a closed day: no minute of it is due
                elif state.session_ended or now_local is None:
                    # An ended session is due whole, also when no symbol has a bar (nothing else says "now").
                    now_local = bounds[1] if state.session_ended else None
                else:
                    # The store holds one session: a clock (or a stray bar) past its close makes the whole
                    # session due, never minutes of a later session.
                    now_local = min(now_local, bounds[1])
            visited = 0
            self._quiet = None
            if session is not None and now_local is not None:
                self._bounds = self._session_bounds(session)
                visit = self._candidates(snaps, session, now_local)
                for symbol, st, snap in visit:
                    self._upkeep_symbol(symbol, st, snap, now_local, snaps)
                visited = len(visit)
                quiet = not visit and state.current_session_date is not None and not state.session_ended
                if quiet and self._backtest and self._bounds is not None:
                    # No symbol had a minute open (a symbol with one is always visited).
                    self._quiet = _Quiet(heads, self._symbols, self._bounds[1], self._fixed_zone)
            with self._status_lock:
                self._visited += visited
                self._passes += 1
                self._last_pass_wall = time.time()  # made a datetime by `status()`, not on every pass
                self._last_pass_seconds = time.perf_counter() - began

    def _candidates(
        self, snaps: Mapping[str, SymbolSessionData], session: date, now_local: datetime
    ) -> list[tuple[str, _SymbolState, SymbolSessionData]]:
        """The symbols this pass must look at, with their state (new ones get a fresh state for
        ``session``): all of them but those *complete up to now*, which are marked checked up to
        ``now_local`` and skipped. A symbol is complete up to now when no minute due by ``now_local`` can
        be missing: nothing open, every regular minute from the open to its newest bar has a bar (quality
        100%), and its newest bar, inside the session, is the last due minute or later.

        Why a pre-filter: in a replay every symbol gets a bar each simulated minute and a pass runs each
        minute, so a pass over complete symbols must cost one or two comparisons per symbol (no timezone
        conversion, no call). O(symbols) with that constant; the rest of the pass is O(candidates).
        """
        wanted = self._symbols
        states = self._states
        floor = now_local.replace(second=0, microsecond=0)
        limits = self._limits(floor)
        complete = self._complete
        out: list[tuple[str, _SymbolState, SymbolSessionData]] = []
        for symbol, snap in snaps.items():
            if wanted is not None and symbol not in wanted:
                continue
            st = states.get(symbol)
            if st is None or st.session != session:
                st = states[symbol] = _SymbolState(session)
            if not st.open and complete(snap, limits):
                if st.checked_until is None or floor > st.checked_until:
                    st.checked_until = floor
                continue
            out.append((symbol, st, snap))
        return out

    def _limits(self, floor: datetime) -> tuple[datetime, datetime | None, datetime, datetime | None]:
        """The range ``[lo, hi)`` a complete symbol's newest bar lies in at the due minute ``floor`` (naive
        exchange-local), for `_complete`: ``(lo, lo_aware, hi, hi_aware)``, the aware ends in the session's
        fixed offset (None without one). O(1)."""
        bounds = self._bounds
        fixed = self._fixed_zone
        lo = hi = floor  # an empty range: nothing is complete on a closed day
        if bounds is not None:
            lo, hi = max(floor - _MINUTE, bounds[0]), bounds[1]
        # Aware bars are compared by instant with the range's ends in the session's fixed UTC offset (see
        # `_session_bounds`; bars parsed from ISO text carry that offset, those read from a repository as
        # the very zone object used here, `fixed_zone`, and Python compares datetimes sharing a zone object
        # without asking either for its offset): the same answer as converting each bar to exchange-local
        # time. Without one (a DST change inside the session) aware symbols are looked at in full.
        if fixed is None:
            return lo, None, hi, None
        return lo, lo.replace(tzinfo=fixed), hi, hi.replace(tzinfo=fixed)

    @staticmethod
    def _complete(
        snap: SymbolSessionData, limits: tuple[datetime, datetime | None, datetime, datetime | None]
    ) -> bool:
        """Whether ``snap``'s bars leave no minute missing up to the due minute `_limits` was made for
        (given nothing open for it): `_all_settled` in the range of its timestamps' style (an aware one
        needs the session's fixed offset). O(1)."""
        last = snap.latest_bar
        if last is None:
            return False
        lo, lo_aware, hi, hi_aware = limits
        if last.timestamp.tzinfo is None:
            return _all_settled((snap,), lo, hi)
        return lo_aware is not None and hi_aware is not None and _all_settled((snap,), lo_aware, hi_aware)

    def _session_bounds(self, session: date) -> tuple[datetime, datetime] | None:
        """``session``'s regular hours as naive exchange-local (open, close), None on a closed day: the one
        place the upkeep asks the calendar (`SessionClock.hours`) where a session lies. Remembered for the
        last session asked, with the session's UTC offset as a fixed zone when it is one from open to close
        (`_fixed_zone`, else None): a pass runs every simulated minute and must not redo this. O(1)."""
        memo = self._bounds_memo
        if memo is not None and memo[0] == session:
            return memo[1]
        hours = self._store.session_clock.hours(session)
        bounds = None
        fixed = None
        if hours is not None:
            midnight = datetime.combine(session, datetime.min.time())
            bounds = midnight + hours[0] * _MINUTE, midnight + (hours[0] + hours[1]) * _MINUTE
            tz = self._store.timezone
            offset = bounds[0].replace(tzinfo=tz).utcoffset()
            if offset is not None and offset == bounds[1].replace(tzinfo=tz).utcoffset():
                fixed = fixed_zone(offset)  # the zone object bars read from text share: fast compares
        self._bounds_memo = (session, bounds)
        self._fixed_zone = fixed
        return bounds

    def _clock_now(self) -> datetime | None:
        """One minute behind the clock, as naive exchange-local time, or None without a (set) clock.

        A writer replaying many symbols stores every bar known at an instant only after the clock reached
        it, so a minute is final only once the next minute is known; otherwise a bar still on its way would
        be "filled" first.
        """
        clock = self._clock
        if clock is not None and clock.is_set:
            now = clock.now()
            if now.tzinfo is not None and type(now.tzinfo) is not timezone:
                # A real minute back, then to wall time: a wall minute back from 03:00 on the day clocks go
                # forward is 02:59, which does not exist, and would make 01:59 final before its bar came.
                # (In a fixed offset, as stamps parsed from text carry, a wall minute is a real one.)
                now = now.astimezone(timezone.utc)
            return to_exchange_local(now - _MINUTE, self._store.timezone)
        return None

    def _newest_local(self, snaps: Mapping[str, SymbolSessionData]) -> datetime | None:
        """Without a clock: the newest bar's start in the store (its own minute is not final yet)."""
        tz = self._store.timezone
        newest: datetime | None = None
        for snap in snaps.values():
            last = snap.bars_1m.last()
            if last is not None:
                local = to_exchange_local(last.timestamp, tz)
                if newest is None or local > newest:
                    newest = local
        return newest

    def _styled(self, local: datetime, aware: bool) -> datetime:
        return local.replace(tzinfo=self._store.timezone) if aware else local

    def _upkeep_symbol(
        self,
        symbol: str,
        state: _SymbolState,
        snap: SymbolSessionData,
        now_local: datetime,
        snaps: Mapping[str, SymbolSessionData],
    ) -> None:
        session = state.session
        assert session is not None
        aware = snap.tz_aware
        if aware is None:
            # No bar yet (a feed that delivers nothing): fill it all the same, in the style of the data.
            if state.aware is None:
                state.aware = self._style_without_bars(symbol, snaps)
            aware = state.aware
        now = self._styled(now_local, aware)
        start: datetime | date = (
            session if state.checked_until is None else self._styled(state.checked_until, aware)
        )
        bars = snap.bars_1m
        present = bars if not isinstance(start, datetime) else bars.since(_probe(start, bars))
        new_minutes = 0
        newest: datetime | None = None
        for gap in detect_gaps(self._store.session_clock, present, now, start=start):
            for minute in gap.minutes:
                if minute not in state.open:
                    state.open[minute] = state.retrying[minute] = _Retry()
                    new_minutes += 1
                    if newest is None or minute > newest:
                        newest = minute
        if new_minutes:
            state.gaps_found += new_minutes
            state.next_due = 0.0
        floor = now_local.replace(second=0, microsecond=0)
        if state.checked_until is None or floor > state.checked_until:
            state.checked_until = floor
        if state.open:
            _forget_present(state, bars, newest)
        if self._repo is None or not state.open:
            return
        clock_now = self._monotonic()
        if clock_now < state.next_due:
            return  # no retry due yet: skip the scan of the open minutes
        due = sorted(m for m, r in state.retrying.items() if r.due <= clock_now)
        try:
            for first, end in _runs(due):
                if self._interrupted():
                    return
                if self._fetch_hanging():
                    # One hung fetch is enough: do not start another (nor count an attempt) until it returns.
                    self._fault(symbol, "repository_busy", "a previous fetch still hangs; fills wait for it")
                    return
                self._fill(symbol, state, first, end, aware)
        finally:
            # The earliest retry still to come (a minute left unfilled was rescheduled, or not tried).
            state.next_due = min((r.due for r in state.retrying.values()), default=_NEVER)

    def _style_without_bars(self, symbol: str, snaps: Mapping[str, SymbolSessionData]) -> bool:
        """Naive or aware timestamps for a symbol that has no bar yet: the replay clock's (it holds the
        replayed data's style), else the other symbols', else the repository's first bar, else naive."""
        clock = self._clock
        if clock is not None and clock.is_set and self._backtest:
            return clock.now().tzinfo is not None
        for other in snaps.values():
            if other.tz_aware is not None:
                return other.tz_aware
        probe = getattr(self._repo, "time_range", None)
        if callable(probe):
            found = self._call(symbol, "time_range", lambda: [probe(symbol)])
            if found and found[0]:
                return bool(found[0][0].tzinfo is not None)
        return False

    def _fetch_hanging(self) -> bool:
        with self._status_lock:
            self._abandoned = [t for t in self._abandoned if t.is_alive()]
            return bool(self._abandoned)

    def _fill(self, symbol: str, state: _SymbolState, first: datetime, end: datetime, aware: bool) -> None:
        state.fill_attempts += 1
        fetched = self._fetch(symbol, first, end)
        valid: list[Bar] = []
        if fetched is not None:
            valid = self._validated(symbol, fetched, first, end, aware)
        filled: set[datetime] = set()
        if valid:
            try:
                state.bars_filled += self._store.add_bars_batch(
                    symbol, valid, provenance=Provenance.GAP_FILLED, replace=False
                )
            except InvalidDataError as exc:
                self._fault(symbol, "store_rejected", f"[{first}, {end}): {exc}")
            else:
                for b in valid:
                    ts = b.timestamp
                    filled.add(ts - timedelta(seconds=ts.second, microseconds=ts.microsecond))
        retry_at = self._monotonic()
        minute = first
        while minute < end:
            retry = state.open.get(minute)
            if retry is not None:
                if minute in filled:
                    del state.open[minute]  # filled now, or streamed meanwhile (then not counted)
                    state.retrying.pop(minute, None)
                else:
                    retry.attempts += 1
                    if retry.attempts >= self._max_retries:
                        retry.unfillable = True
                        state.retrying.pop(minute, None)
                        self._log_once(
                            symbol,
                            "unfillable",
                            f"{symbol} {minute}: not in the repository after {retry.attempts} attempts; "
                            "left as a gap",
                        )
                    else:
                        backoff = min(self._retry_cap, self._retry_base * 2 ** (retry.attempts - 1))
                        retry.due = retry_at + backoff * (1 - self._jitter * self._rng.random())
            minute += _MINUTE

    def _fetch(self, symbol: str, start: datetime, end: datetime) -> list[Any] | None:
        """The repository's answer for ``[start, end)``, or None after a fault or a stop.

        Runs on the fetch worker (one long-lived daemon thread, so a repository that keeps a connection per
        thread, like `SqliteBarRepository`, reuses it) and waits at most ``fetch_timeout`` for it. A worker
        that hangs is abandoned (reported in `status()`); the next fetch gets a new worker.
        """
        repo = self._repo
        assert repo is not None
        return self._call(
            symbol, f"get_bars [{start}, {end})", lambda: list(repo.get_bars(symbol, start, end))
        )

    def _call(self, symbol: str, what: str, call: Callable[[], list[Any]]) -> list[Any] | None:
        """Run one repository call on the fetch worker, waiting at most ``fetch_timeout``; None on a fault."""
        if self._backtest:
            # Inside a replay's pipeline: call the repository in the replay's thread, as a source is called
            # (no thread hand-off per fill; no wall-clock timeout, which would make the replay depend on
            # the machine's speed; `BacktestStreamCoordinator.stop_worker` bounds a hung call).
            try:
                return call()
            except Exception as error:
                self._fault(symbol, "repository_error", f"{what}: {type(error).__name__}: {error}")
                return None
        job = _FetchJob(call)
        # Under the lifecycle lock, as `stop` sets the stop flag under it: a fetch either starts before
        # `stop` (which then sees the worker and the job to give up and wait for) or not at all. Without
        # it `stop` could join a worker made but not yet started (a `RuntimeError`), or miss one started
        # just after it looked, and return True with that thread alive.
        with self._lifecycle_lock:
            if self._interrupted():
                return None  # stopped since the pass's last check: ends there, as at that check
            worker = self._worker
            if worker is None or not worker.submit(job):
                retired = worker
                worker = _FetchWorker()
                worker.start()
                worker.submit(job)
                with self._status_lock:
                    # A retired worker may still be exiting: `stop` waits for it with the others.
                    self._retiring = [t for t in self._retiring if t.is_alive()]
                    if retired is not None:
                        self._retiring.append(retired)
                    self._worker = worker
            self._fetch_done = job.done
        finished = job.done.wait(self._fetch_timeout)
        self._fetch_done = None
        if job.error is not None:
            exc = job.error
            self._fault(symbol, "repository_error", f"{what}: {type(exc).__name__}: {exc}")
            return None
        if job.finished:
            return job.result
        worker.abandon()  # still inside get_bars: let it finish (or hang) on its own, never reuse it
        with self._status_lock:
            # One step under the lock that `stop` reads both under: a worker is always in one of the two.
            if self._worker is worker:
                self._worker = None
            self._abandoned = [t for t in self._abandoned if t.is_alive()]
            self._abandoned.append(worker)
        if not finished:
            self._fault(symbol, "repository_timeout", f"{what} took over {self._fetch_timeout}s")
        return None

    def _validated(
        self, symbol: str, fetched: list[Any], start: datetime, end: datetime, aware: bool
    ) -> list[Bar]:
        valid: dict[datetime, Bar] = {}
        for i, item in enumerate(fetched):
            if not i & 1023 and self._interrupted():
                return []  # stop keeps its bound, even while a huge wrong answer is sifted
            if not isinstance(item, Bar):
                self._fault(symbol, "invalid_bar", f"repository returned {type(item).__name__}: {item!r}")
                continue
            try:  # re-validate: an object can bypass the constructor's checks
                bar = Bar(
                    item.symbol, item.timestamp, item.open, item.high, item.low, item.close, item.volume
                )
            except InvalidDataError as exc:
                self._fault(symbol, "invalid_bar", f"repository returned an invalid bar: {exc}")
                continue
            if bar.symbol != symbol:
                self._fault(symbol, "wrong_symbol", f"asked for {symbol}, got a bar for {bar.symbol}")
                continue
            if (bar.timestamp.tzinfo is not None) is not aware:
                self._fault(symbol, "timezone_style", f"bar at {bar.timestamp} does not match stored bars")
                continue
            if not start <= bar.timestamp < end:
                self._fault(symbol, "outside_gap", f"bar at {bar.timestamp} is outside [{start}, {end})")
                continue
            valid[bar.timestamp] = bar
        return [valid[t] for t in sorted(valid)]

    # ------------------------------------------------------------------ status

    def _log_once(self, symbol: str, kind: str, message: str, exc: BaseException | None = None) -> None:
        with self._status_lock:
            first = (symbol, kind) not in self._logged
            self._logged.add((symbol, kind))
        if first:
            logger.warning("%s", message, exc_info=exc)
        else:
            logger.debug("%s", message)

    def _fault(self, symbol: str, kind: str, detail: str, exc: BaseException | None = None) -> None:
        entry = {
            "at": datetime.now().astimezone(),
            "symbol": symbol,
            "kind": kind,
            "detail": detail,
        }
        if exc is not None:
            entry["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with self._status_lock:
            self._faults.append(entry)
            self._fault_count += 1
            self._last_error = f"{kind}: {symbol}: {detail}"
        self._log_once(symbol, kind, f"upkeep {kind} for {symbol}: {detail}", exc)

    def status(self) -> dict[str, Any]:
        """A snapshot of the upkeep's state, safe to read from any thread. O(symbols + open gaps).

        Keys: ``running`` (thread alive), ``paused``, ``passes`` (including those a backtest-mode clock move
        settled by its quick test), ``symbols_visited`` (symbols the passes
        looked at beyond an O(1) completeness test, in all: a symbol complete up to the pass's time is not
        visited), ``last_pass_at`` (wall time),
        ``last_pass_seconds``, ``gaps_found``/``bars_filled``/``fill_attempts``/``unfillable`` (totals for the
        current sessions), ``symbols`` (per symbol: ``bar_quality``, ``open_gaps`` as ``(start, end, count)``
        runs, ``gaps_found``, ``bars_filled``, ``fill_attempts``, ``unfillable``), ``fault_count``,
        ``faults`` (the last 100: ``at, symbol, kind, detail``), ``last_error`` and ``abandoned_fetches``
        (fetch threads still hanging after a timeout or stop). Racy by nature: counters may move on while
        it is built, but each symbol's entry is taken under the pass lock when no pass runs.
        """
        symbols: dict[str, dict[str, Any]] = {}
        acquired = self._pass_lock.acquire(timeout=0.5)
        try:
            for symbol, st in list(self._states.items()):
                snap = self._store.get_symbol_data(symbol)
                open_now = dict(st.open)  # one C-level copy: safe even if a pass holds on past the timeout
                opened = sorted(open_now)
                symbols[symbol] = {
                    "bar_quality": None if snap is None else snap.bar_quality,
                    "open_gaps": [(a, b, int((b - a) / _MINUTE)) for a, b in _runs(opened)],
                    "gaps_found": st.gaps_found,
                    "bars_filled": st.bars_filled,
                    "fill_attempts": st.fill_attempts,
                    "unfillable": sum(1 for r in open_now.values() if r.unfillable),
                }
        finally:
            if acquired:
                self._pass_lock.release()
        with self._status_lock:
            wall = self._last_pass_wall
            last_pass_at = None if wall is None else datetime.fromtimestamp(wall).astimezone()
            acting = self._backtest and self._started and not self._stop.is_set()
            return {
                "running": self._thread_alive() or acting,
                "paused": not self._running.is_set(),
                "passes": self._passes + self._quick_passes,
                "symbols_visited": self._visited,
                "last_pass_at": last_pass_at,
                "last_pass_seconds": self._last_pass_seconds,
                "gaps_found": sum(s["gaps_found"] for s in symbols.values()),
                "bars_filled": sum(s["bars_filled"] for s in symbols.values()),
                "fill_attempts": sum(s["fill_attempts"] for s in symbols.values()),
                "unfillable": sum(s["unfillable"] for s in symbols.values()),
                "symbols": symbols,
                "fault_count": self._fault_count,
                "faults": list(self._faults),
                "last_error": self._last_error,
                "abandoned_fetches": sum(1 for t in self._abandoned if t.is_alive()),
            }
