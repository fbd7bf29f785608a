"""`TimeProvider`: the one clock a backtest or a live run reads ("what time is it now?").

Two modes:

- **backtest** (simulated): the time is whatever the stream coordinator last advanced it to. It only moves
  forward (moving it backwards is a `ClockError`) and only the coordinator moves it, through
  `TimeProvider.advance_to`. Other threads read it with `now()` and may block until it reaches a given time
  with `wait_until`.
- **live**: the real clock, as an aware `datetime` in the exchange's timezone. It cannot be advanced, and
  `wait_until` sleeps (interruptibly, on a condition variable) until the wall clock gets there.

The simulated clock holds the timestamps it is given: naive when the replayed data is naive (exchange-local
wall time), aware when it is aware. Comparing the two kinds is a `ClockError`, never a silent guess.

**As of the consumer.** A replay's worker advances the clock ahead of the strategy that consumes its items,
the same way it writes the store ahead of it. While the coordinator *holds* the clock (`hold`), only the
holding thread (the worker, the clock's one writer) reads the time it advanced to; every other thread reads
the time the consumer has reached, which the consumer sets (`show`) at the same point of the store's
publication log where the store's view moves, so `now()` and the store agree. Until a consumer is attached
(`follow(True)`) the shown time follows the worker's, as the store's view follows its writes.
"""

from __future__ import annotations

import enum
import logging
import threading
import time as _time
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

from ._models import SessionDataError

__all__ = ["ClockError", "ClockMode", "TimeProvider", "instant_before"]

logger = logging.getLogger("sessiondata.clock")


class ClockError(SessionDataError, ValueError):
    """A clock used against its rules: moved backwards, advanced in live mode, read before it was set,
    or compared across naive and aware datetimes. A `ValueError`, as it is always a bad argument or call."""


class ClockMode(enum.Enum):
    """How a `TimeProvider` tells the time."""

    BACKTEST = "backtest"
    """Simulated: set by the stream coordinator, monotonic."""
    LIVE = "live"
    """The real clock in the exchange timezone."""


def instant_before(a: datetime, b: datetime) -> bool:
    """``a < b`` as instants (for the package's own use: the clock, the deprecated tracker). Two aware
    datetimes with the same tzinfo object compare by wall time, ignoring ``fold``, so on the night clocks go
    back 01:01 EST (fold=1) would sort before 01:31 EDT; with different folds they are compared in UTC
    (other pairs compare right as they are, and cost no conversion). Raises `TypeError` for naive against
    aware. O(1)."""
    if a.fold != b.fold and a.tzinfo is b.tzinfo and a.tzinfo is not None:
        return a.astimezone(timezone.utc) < b.astimezone(timezone.utc)
    return a < b


class TimeProvider:
    """The session's clock, shared by the coordinator (the only writer in backtest mode) and any reader.

    ``mode`` is ``"backtest"`` (default) or ``"live"`` (or a `ClockMode`). ``timezone`` is the exchange's
    zone (live mode answers in it). ``start`` optionally sets the simulated time before the first advance;
    without it, `now()` in backtest mode is a `ClockError` until the coordinator delivers its first item.

    Thread-safety: every method may be called from any thread. `now()` is two attribute reads and a thread
    id (an assignment of a reference is atomic), so it never waits; `advance_to`, `show`, `hold`, `follow`,
    `release` and `wait_until` share one condition variable.
    """

    __slots__ = (
        "_asof",
        "_cond",
        "_follow",
        "_listeners",
        "_mode",
        "_now",
        "_shown",
        "_tz",
        "_waiters",
        "_writer",
    )

    def __init__(
        self,
        mode: ClockMode | str = ClockMode.BACKTEST,
        *,
        timezone: str | tzinfo = "America/New_York",
        start: datetime | None = None,
    ) -> None:
        try:
            self._mode = ClockMode(mode)
        except ValueError:
            raise ValueError(f"mode must be 'backtest' or 'live', got {mode!r}") from None
        self._tz: tzinfo = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        if start is not None and not isinstance(start, datetime):
            raise ValueError(f"start must be a datetime, got {start!r}")
        if start is not None and self._mode is ClockMode.LIVE:
            raise ValueError("a live clock tells the real time: start= is for backtest mode only")
        # `_now` is the writer's time (what `advance_to` set); `_shown` what every other thread reads. They
        # are the same reference unless the clock is held (`_writer` is then the holding thread's id) with
        # a consumer attached (`_follow` false): `_shown` is then `_asof`, the consumer's time.
        self._now: datetime | None = start
        self._shown: datetime | None = start
        self._asof: datetime | None = start
        self._writer: int | None = None
        self._follow = True
        # Guards the wake-up of `wait_until` callers, the `_waiters` count and every write of the fields
        # above. They are read without it: a reader sees either the old or the new reference, both valid.
        self._cond = threading.Condition(threading.Lock())
        self._waiters = 0
        # Called after each move of the simulated clock (`on_advance`); replaced, never mutated, under
        # `_cond`, so `advance_to` iterates a tuple no other thread changes.
        self._listeners: tuple[Callable[[datetime], object], ...] = ()

    @property
    def mode(self) -> ClockMode:
        """`ClockMode.BACKTEST` or `ClockMode.LIVE`. O(1)."""
        return self._mode

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone. O(1)."""
        return self._tz

    @property
    def is_set(self) -> bool:
        """True when `now()` has a time to give (always in live mode). O(1); lock-free."""
        return self._mode is ClockMode.LIVE or self._read() is not None

    def now(self) -> datetime:
        """The current time: the simulated time in backtest mode, ``datetime.now(timezone)`` in live mode.

        While a replay holds the clock (see the module documentation), the thread that advances it reads
        the time it advanced to, and every other thread the known time of the item the consumer handles.
        Raises `ClockError` in backtest mode before the clock was first set (as that thread sees it).
        O(1); lock-free, any thread.
        """
        if self._mode is ClockMode.LIVE:
            return datetime.now(self._tz)
        now = self._read()
        if now is None:
            raise ClockError("the backtest clock has not been set yet (no item replayed, no start=)")
        return now

    def _read(self) -> datetime | None:
        # The writer reads its own time; everyone else the shown one (the same while not held).
        if self._writer is not None and self._writer == threading.get_ident():
            return self._now
        return self._shown

    # ------------------------------------------------------------------ replay

    def hold(self, *, follow: bool) -> None:
        """Begin holding the clock for a replay whose worker is the calling thread: from now on only it
        reads the times it advances to; other threads read the shown time, which is the worker's while
        ``follow`` (see `follow`), else the consumer's (`show`). O(1). Thread-safety: the coordinator's
        worker."""
        with self._cond:
            self._writer = threading.get_ident()
            self._asof = self._shown = self._now
            self._follow = follow

    def follow(self, on: bool) -> None:
        """While held: ``True`` shows the worker's time (nobody consumes), ``False`` the consumer's time
        (a consumer attached: the shown time goes back to where the consumer stands). O(1) plus waking
        waiters. Thread-safety: any thread (the coordinator, under its own lock)."""
        with self._cond:
            self._follow = on
            if self._writer is not None:
                self._shown = self._now if on else self._asof
                if self._waiters:
                    self._cond.notify_all()

    def show(self, t: datetime) -> None:
        """The consumer reached an item known at ``t``: other threads read ``t`` from now on (when a
        consumer is followed). O(1) plus waking waiters. Thread-safety: the replay's consumer thread."""
        with self._cond:
            self._asof = t
            if self._writer is not None and not self._follow:
                self._shown = t
                if self._waiters:
                    self._cond.notify_all()

    def release(self) -> None:
        """Stop holding: every thread reads the worker's time again. O(1). Thread-safety: any thread."""
        with self._cond:
            self._writer = None
            self._shown = self._asof = self._now
            if self._waiters:
                self._cond.notify_all()

    def advance_to(self, t: datetime) -> None:
        """Move the simulated clock to ``t`` (equal to the current time is a no-op) and wake waiters.

        The stream coordinator calls this as its replay moves (so may a hand-driven backtest); the
        `on_advance` listeners run after each move, in the calling thread. Raises
        `ClockError` if ``t`` is before the current time, is not comparable with it (naive vs aware), or the
        clock is live; the clock is unchanged then. O(1) plus waking waiters. Thread-safety: any thread; takes
        the clock's lock briefly.
        """
        if self._mode is ClockMode.LIVE:
            raise ClockError("a live clock cannot be advanced")
        if not isinstance(t, datetime):
            raise ClockError(f"the clock's time must be a datetime, got {t!r}")
        with self._cond:
            now = self._now
            if now is not None:
                try:
                    backwards = instant_before(t, now)
                except TypeError:
                    raise ClockError(
                        f"cannot move the clock from {now.isoformat()} to {t.isoformat()}: one is naive and "
                        "the other timezone-aware"
                    ) from None
                if backwards:
                    raise ClockError(
                        f"the backtest clock only moves forward: {t.isoformat()} is before {now.isoformat()}"
                    )
            # Not ``t != now``: one tzinfo compares by wall time ignoring ``fold`` (01:30 EDT == 01:30 EST, an
            # hour apart), and an ambiguous wall time never equals an instant in another zone (PEP 495).
            moved = now is None or instant_before(now, t)
            self._now = t
            if self._writer is None or self._follow:
                self._shown = t
            if self._waiters:
                self._cond.notify_all()
            listeners = self._listeners if moved else ()
        for listener in listeners:
            listener(t)

    def on_advance(self, listener: Callable[[datetime], object]) -> Callable[[], None]:
        """Call ``listener(t)`` each time the simulated clock moves to a later ``t``, in the thread that
        moved it, after the move (in registration order); returns a function that unregisters it
        (idempotent). What a listener raises reaches the caller of `advance_to`.

        This is how a backtest-mode `DataUpkeepThread` acts at simulated times, whoever moves the clock.
        O(listeners) per registration. Thread-safety: any thread; takes the clock's lock briefly.
        """
        with self._cond:
            self._listeners = (*self._listeners, listener)

        def unregister() -> None:
            with self._cond:
                self._listeners = tuple(f for f in self._listeners if f is not listener)

        return unregister

    def wait_until(self, t: datetime, timeout: float | None = None) -> bool:
        """Block until the clock reads ``t`` or later; True if it did, False if ``timeout`` seconds passed.

        Backtest mode waits for the coordinator to advance the clock (a condition variable, no polling);
        live mode waits for the wall clock. Returns at once when the time is already reached. Raises
        `ClockError` if ``t`` is not comparable with the clock's time (naive vs aware).
        Complexity: O(1) per wake-up. Thread-safety: any thread except the coordinator's worker (which would
        wait for itself).
        """
        if not isinstance(t, datetime):
            raise ClockError(f"wait_until needs a datetime, got {t!r}")
        deadline = None if timeout is None else _time.monotonic() + max(0.0, timeout)
        if self._mode is ClockMode.LIVE:
            return self._wait_live(t, deadline)
        with self._cond:
            self._waiters += 1
            try:
                while not self._reached(t):
                    remaining = None if deadline is None else deadline - _time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiters -= 1

    def _reached(self, t: datetime) -> bool:
        now = self._read()
        if now is None:
            return False
        try:
            return not instant_before(now, t)
        except TypeError:
            raise ClockError(
                f"cannot compare the clock's {now.isoformat()} with {t.isoformat()}: one is naive and the "
                "other timezone-aware"
            ) from None

    def _wait_live(self, t: datetime, deadline: float | None) -> bool:
        target = t if t.tzinfo is not None else t.replace(tzinfo=self._tz)
        with self._cond:
            while True:
                left = (target - datetime.now(self._tz)).total_seconds()
                if left <= 0:
                    return True
                if deadline is not None:
                    budget = deadline - _time.monotonic()
                    if budget <= 0:
                        return False
                    left = min(left, budget)
                # Nothing notifies a live clock; the wait is a timed, interruptible sleep on the condition.
                self._cond.wait(left)

    def __repr__(self) -> str:
        now = self._read()
        shown = "unset" if now is None else now.isoformat()
        if self._mode is ClockMode.LIVE:
            shown = "live"
        return f"TimeProvider({self._mode.value}, {self._tz!s}, now={shown})"
