"""`SessionData`: the store. One write lock, immutable per-symbol snapshots, lock-free reads.

Writers (the stream coordinator, the upkeep thread, user code) serialize on one `threading.RLock`. A write
builds the symbol's next `SymbolSessionData` from the current one (sharing structure, see `_series`) and
publishes it with one reference assignment; if anything in the write is invalid, nothing is published and
the store is exactly as it was. Readers take the current snapshot with one dict read, never lock, and never
wait for a writer.

Change notification: every write bumps a store-wide version counter and stamps the symbol's series it
changed (``bars_version``, ``ticks_version``, ``quotes_version``) with it, so versions only ever grow, even
across ``start_new_session`` and ``clear_all``. `SessionData.wait_for_update` blocks until a symbol (or any
symbol) has a version newer than one already seen.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sessiondata._calendar import (
    ExchangeCalendar,
    RegularHoursCalendar,
    SessionCalendar,
    SessionClock,
    SessionCursor,
    regular_hours,
)
from sessiondata._models import Bar, InvalidDataError, Provenance, Quote, Tick, check_record

from .config import HOURS_KEYWORDS, StoreOptions, check_against_calendar, differing_option, reuse_calendar
from .derived import check_deferred
from .publication import PublicationGate, StoreState
from .series import Series
from .snapshot import SymbolSessionData, check_interval
from .writer import append_newest, apply_bars, apply_items, flushed

if TYPE_CHECKING:  # typing.Unpack is Python 3.11+; only the type checker needs it
    from typing_extensions import Unpack

__all__ = ["SessionData", "get_session_data", "reset_session_data"]

logger = logging.getLogger("sessiondata.store")

# An enum member read through its class costs ~90 ns on Python 3.11 (an attribute lookup on the enum's
# metaclass); the write path compares against this module constant instead.
_STREAMED = Provenance.STREAMED


def _provenance(value: object) -> Provenance:
    """``value`` as a `Provenance` (a member, or its string value); `ValueError` naming the choices."""
    if type(value) is Provenance:
        return value
    try:
        return Provenance(value)
    except ValueError:
        choices = ", ".join(repr(p.value) for p in Provenance)
        raise ValueError(f"provenance must be a Provenance ({choices}), got {value!r}") from None


def _symbol_key(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidDataError(f"symbol must be a non-empty str, got {symbol!r}")
    return symbol.strip().upper()


class SessionData:
    """Per-symbol session data for one process: bars, derived bars, ticks, quotes, metrics, history.

    Writes serialize on one `RLock` (exposed as `write_lock`); each write is atomic and
    leaves the store unchanged if it raises. Reads take no lock: each answers from one immutable
    `SymbolSessionData` snapshot and never waits for a writer. Unknown symbols read as ``None``, ``[]``,
    ``0`` or ``{}``; an invalid ``interval`` is a `ValueError`, checked first.

    Derived bars and bar quality (``derivation``, a store option): ``"lazy"`` (the default) owes them to
    readers: an in-order write only appends the bar, and a derived read (or a read of bar quality, which
    derives no window) settles what was written since the last one, once, O(1) amortized per bar, so
    writes nobody reads after cost about a third of an eager write. ``"eager"`` derives and counts as bars
    arrive, so each such read costs what the complexities below say; pick it for a strategy that reads
    derived bars after most writes. Readers never change which one the store does.

    Configuration is keyword-only and readable as attributes. ``calendar`` (optional) replaces the built-in
    "same hours every weekday" session with any `SessionCalendar` (e.g. real holidays and early closes); a
    string is an exchange code for `ExchangeCalendar` (``calendar="XNYS"``, ``"CMES"``, ``"24/7"``; needs
    the extra ``sessiondata[calendars]``). The calendar then decides the sessions, and the attributes say
    what it decided: ``timezone`` is its zone, ``start_time``/``end_time`` its regular hours (see
    `start_time`). ``start_time``, ``end_time`` or ``timezone`` passed with a calendar must be the
    calendar's own (accepted, redundant); one that differs is a `ValueError` naming both values, raised
    before the store is built. Left out, they never conflict: the defaults in the signature apply only
    without a calendar.

    Attributes:
        historical_bars_trailing_days: Ended sessions kept as historical bars (0: none).
        historical_bars_types: The bar intervals kept as historical bars.
        session_ended: Whether `end_session` has been called for the session in memory.
        current_session_date: The session date given to the last `start_new_session`, or `None`.
    """

    def __init__(
        self,
        *,
        start_time: time = time(9, 30),
        end_time: time = time(16, 0),
        timezone: str | tzinfo = "America/New_York",
        derived_intervals: Iterable[int] = (5, 15),
        historical_bars_trailing_days: int = 0,
        historical_bars_types: Iterable[int] = (1,),
        calendar: SessionCalendar | str | None = None,
        derivation: str = "lazy",
    ) -> None:
        if derivation not in ("lazy", "eager"):
            raise ValueError(f"derivation must be 'lazy' or 'eager', got {derivation!r}")
        self._lazy = derivation == "lazy"
        intervals = tuple(derived_intervals)
        for k in intervals:
            if not isinstance(k, int) or isinstance(k, bool) or k < 2:
                raise ValueError(f"derived_intervals must be whole numbers of minutes >= 2, got {k!r}")
        if len(set(intervals)) != len(intervals):
            raise ValueError(f"derived_intervals has duplicates: {intervals!r}")
        self._calendar: SessionCalendar = _calendar_for(calendar, start_time, end_time, timezone)
        self._clock = SessionClock(self._calendar)
        # The writer's cursor (places every streamed bar of an eager store; under the lock only), and, for a
        # lazy store, the cursor its snapshots' owed bars are placed with by whoever settles them (readers
        # on any thread: `SessionCursor.span` is safe to share).
        self._locator = SessionCursor(self._clock)
        self._owed_cursor = SessionCursor(self._clock) if self._lazy else None
        self._hours = regular_hours(self._calendar)
        self._intervals = tuple(sorted(intervals))
        self._interval_map: Mapping[int, None] = dict.fromkeys(self._intervals)
        self.historical_bars_trailing_days = historical_bars_trailing_days
        self.historical_bars_types = tuple(historical_bars_types)
        self._check_history_config()

        # Guards every write: the contents of `_snapshots` (values replaced, or the whole dict replaced when
        # a symbol is added or removed), `_version`, `session_ended` and `current_session_date`.
        self._lock = threading.RLock()
        # Guards nothing but the wake-up of `wait_for_update` callers; never held while writing.
        self._changed = threading.Condition(threading.Lock())
        self._waiters = 0
        # The writers' dict. Readers read `_view`: the same dict, unless a `PublicationGate` is held (see
        # `hold_publication`); `_gate` is that gate, and the lifecycle readers see is then the gate's.
        self._snapshots: dict[str, SymbolSessionData] = {}
        self._view = self._snapshots
        # `writer_heads`: a read-only view of `_snapshots`, a new one whenever that dict is replaced or the
        # lifecycle changes (see `_new_heads`), so that its identity tells "nothing structural changed".
        self._heads: Mapping[str, SymbolSessionData] = MappingProxyType(self._snapshots)
        self._heads_of = self._snapshots  # the dict `_heads` shows
        self._gate: PublicationGate | None = None
        # While a gate is held, its log's bound ``append``: `_store` logs every one-symbol write's snapshot
        # with it.
        self._log_append: Callable[[Any], None] | None = None
        self._version = 0
        self._session_ended = False
        self._current_session_date: date | None = None
        logger.debug("SessionData created (%s, derived %s)", self._calendar, self._intervals)

    # ---------------------------------------------------------------- config

    @property
    def start_time(self) -> time | None:
        """Local time the regular session opens, as the store keeps sessions: the ``start_time`` keyword, or
        with ``calendar=`` the calendar's regular open. For a `RegularHoursCalendar` that is its
        ``start_time`` (on the evening before when not before ``end_time``); for an `ExchangeCalendar`,
        whose hours vary by date, the open most of its sessions keep (09:30 for ``XNYS``: the regular
        hours a user means by "the" hours, while early closes stay on their dates; ask
        ``calendar.session_hours(day)`` for a given date). ``None`` for a custom calendar that states no
        ``start_time``/``end_time`` of its own: no single time is true of it, and a made-up 09:30 would
        be wrong. O(1); any thread (configuration never changes)."""
        return None if self._hours is None else self._hours[0]

    @property
    def end_time(self) -> time | None:
        """Local time the regular session closes: the ``end_time`` keyword, or the calendar's regular
        close (the close most sessions keep; see `start_time`), ``None`` when the calendar states none.
        O(1); any thread."""
        return None if self._hours is None else self._hours[1]

    @property
    def timezone(self) -> tzinfo:
        """The exchange's timezone, the calendar's when one is given; naive timestamps are read as wall
        time in it. O(1); any thread."""
        return self._clock.tz

    @property
    def derivation(self) -> str:
        """``"lazy"`` or ``"eager"``: who derives the 5m/15m/... bars (see the class docstring)."""
        return "lazy" if self._lazy else "eager"

    @property
    def derived_intervals(self) -> tuple[int, ...]:
        """The derived bar intervals kept, in minutes, ascending."""
        return self._intervals

    @property
    def calendar(self) -> SessionCalendar:
        """The trading calendar session arithmetic uses."""
        return self._calendar

    @property
    def session_clock(self) -> SessionClock:
        """Cached session arithmetic over `calendar` (shared with the upkeep thread and coordinator)."""
        return self._clock

    @property
    def write_lock(self) -> threading.RLock:
        """The lock every write holds. Readers never take it; holding it blocks writers only."""
        return self._lock

    @property
    def version(self) -> int:
        """Store-wide count of writes; grows on every write. Racy by nature: a lock-free read. O(1).

        While a `PublicationGate` is held, the version of what readers see."""
        gate = self._gate
        return self._version if gate is None else gate.version

    @property
    def session_ended(self) -> bool:
        """True after `end_session` until the next `start_new_session` (as readers see it). O(1)."""
        gate = self._gate
        return self._session_ended if gate is None else gate.session_ended

    @property
    def current_session_date(self) -> date | None:
        """The date given to the last `start_new_session` (as readers see it), or ``None``. O(1)."""
        gate = self._gate
        return self._current_session_date if gate is None else gate.current_session_date

    # ------------------------------------------------------------ publication

    def hold_publication(self) -> PublicationGate:
        """Hold every later write back from readers until the returned gate publishes it: how a replay
        shows its consumer the store as of the item in hand (see "Replay: as-of reads" in the architecture
        guide).

        Readers keep answering from the state of now; writes go on as usual. Raises `RuntimeError` if a
        gate is already held. O(symbols). Thread-safety: takes the write lock.
        """
        with self._lock:
            if self._gate is not None:
                raise RuntimeError("a publication gate is already held on this store")
            gate = PublicationGate(
                self._view,
                self.writer_state(),
                self._lock,
                self._install_view,
                self._end_gate,
                self._notify,
                self._bind_log,
            )
            self._new_heads(gate.heads)
            self._gate = gate
            return gate

    @property
    def writer_heads(self) -> Mapping[str, SymbolSessionData]:
        """Every symbol's newest snapshot as writers left them (what `writer_state` copies, including writes
        a `PublicationGate` holds back from readers), as a live read-only view: no copy, no lock. O(1).

        The same object is returned until the store's structure changes: a symbol registered (also by its
        first write), `start_new_session`, `end_session`, `clear_all`, or a publication gate held or
        closed; then a new one. So a writer-side caller that kept the object it read can tell "the same
        symbols, the same session, not ended since" with one identity test, and read each symbol's newest
        snapshot from it. Racy by nature, like `queue.Queue.qsize`: from another thread than the writers',
        the values may move on while it is iterated (each value is a consistent snapshot; the keys never
        change under an iteration, a structural change installs a new dict), and an object read just
        before a structural change is outdated at once. Thread-safety: any thread; exact in the writers'
        own thread (e.g. the backtest upkeep, which runs in the replay's worker).
        """
        heads = self._heads
        if self._heads_of is self._snapshots:
            return heads
        # A write path replaced the writers' dict without `_new_heads`: a fresh view each time, so an
        # identity test never passes on it (slower for such a caller, never wrong).
        return MappingProxyType(self._snapshots)

    def _new_heads(self, snaps: dict[str, SymbolSessionData]) -> None:
        """Make ``snaps`` the writers' dict and give `writer_heads` a new identity (lock held)."""
        self._snapshots = snaps
        self._heads = MappingProxyType(snaps)
        self._heads_of = snaps

    def writer_state(self) -> StoreState:
        """Every symbol's newest snapshot and the lifecycle as writers left them, including writes a
        `PublicationGate` still holds back from readers (for a writer that builds on them, such as the
        upkeep inside a replay). O(symbols). Thread-safety: takes the write lock."""
        with self._lock:
            return StoreState(
                MappingProxyType(dict(self._snapshots)),
                self._session_ended,
                self._current_session_date,
                self._version,
            )

    def _set_heads(self, snaps: dict[str, SymbolSessionData]) -> None:
        """Replace the writers' dict (lock held): published at once, or logged as one step under a gate."""
        gate = self._gate
        if gate is None:
            self._new_heads(snaps)
            self._view = snaps
        else:
            state = StoreState(snaps, self._session_ended, self._current_session_date, self._version)
            gate.record_full(snaps, state)
            self._new_heads(snaps)

    def _install_view(self, view: dict[str, SymbolSessionData]) -> None:
        self._view = view

    def _bind_log(self, append: Callable[[Any], None]) -> None:
        self._log_append = append

    def _end_gate(self) -> None:
        snaps = dict(self._snapshots)
        self._new_heads(snaps)
        self._view = snaps
        self._gate = None
        self._log_append = None

    def _check_history_config(self) -> None:
        days = self.historical_bars_trailing_days
        if not isinstance(days, int) or isinstance(days, bool) or days < 0:
            raise ValueError(f"historical_bars_trailing_days must be an int >= 0, got {days!r}")
        types = self.historical_bars_types
        if len(set(types)) != len(types):
            raise ValueError(f"historical_bars_types has duplicates: {types!r}")
        for k in types:
            if k != 1 and k not in self._interval_map:
                raise ValueError(
                    f"historical_bars_types contains {k!r}: each must be 1 or a derived interval "
                    f"{self._intervals}"
                )

    # ---------------------------------------------------------------- writes

    def _current(self, symbol: str) -> SymbolSessionData:
        """The symbol's snapshot, or a new empty one stamped with the next version (so that a symbol
        registered again after `clear_all` never shows a version lower than before)."""
        snap = self._snapshots.get(symbol)
        if snap is None:
            v = self._version + 1
            snap = SymbolSessionData.empty(
                symbol, self._intervals, self._owed_cursor, self._session_ended
            )._replace(bars_version=v, ticks_version=v, quotes_version=v)
        return snap

    def _publish(self, changed: Mapping[str, SymbolSessionData]) -> None:
        """Make ``changed`` visible to readers (called with the lock held)."""
        snaps = self._snapshots
        if all(sym in snaps for sym in changed):
            for sym, snap in changed.items():
                self._store(sym, snap)
        else:
            grown = dict(snaps)
            grown.update(changed)
            self._set_heads(grown)
        self._notify()

    def _publish_one(self, symbol: str, snap: SymbolSessionData) -> None:
        """`_publish` for the one-symbol write, the hot path (called with the lock held)."""
        snaps = self._snapshots
        if symbol in snaps:
            self._store(symbol, snap)
        else:
            grown = dict(snaps)
            grown[symbol] = snap
            self._set_heads(grown)
        if self._waiters:
            self._notify()

    def _store(self, symbol: str, snap: SymbolSessionData) -> None:
        """The one publish step of a write to a symbol already in the writers' dict (lock held): store
        it there — the dict readers read, unless a gate is held — and, under a gate, log it for the
        gate to publish (`PublicationGate`). Every write path publishes a known symbol through here."""
        self._snapshots[symbol] = snap  # replacing a value never disturbs a reader iterating the dict
        log = self._log_append
        if log is not None:
            # The snapshot alone (its key is ``snap.symbol``): no pair tuple per write, one tracked
            # object fewer kept alive until the consumer gets there (see `PublicationGate`).
            log(snap)

    def _notify(self) -> None:
        if self._waiters:
            with self._changed:
                self._changed.notify_all()

    def register_symbol(self, symbol: str) -> SymbolSessionData:
        """Start tracking ``symbol`` (upper-cased); idempotent. Returns its snapshot.

        Thread-safety: takes the write lock; O(1) when known, O(symbols) the first time.
        """
        sym = _symbol_key(symbol)
        snap = self._snapshots.get(sym)
        if snap is not None:
            return snap
        with self._lock:
            snap = self._snapshots.get(sym)
            if snap is None:
                snap = self._current(sym)
                self._version += 1
                self._publish({sym: snap})
                logger.debug("registered symbol %s", sym)
            return snap

    def add_bar(
        self, symbol: str, bar: Bar, *, provenance: Provenance = Provenance.STREAMED, replace: bool = True
    ) -> bool:
        """Store a 1-minute ``bar`` for ``symbol`` (auto-registered) at its place in time.

        A bar with the timestamp of a stored bar replaces it (a correction: metrics stay exact, volume is
        never double-counted). Updates metrics, bar quality and derived bars incrementally. ``provenance``
        records where the bar came from (`Provenance.GAP_FILLED` for repository fills); a streamed bar that
        replaces another is recorded as a `Provenance.CORRECTION`. With ``replace=False`` a stored bar with
        the same timestamp is kept and ``bar`` is dropped (how the upkeep thread fills gaps without ever
        overwriting streamed data). Returns whether ``bar`` was stored.

        Raises `InvalidDataError` (store unchanged) if ``bar`` is not a `Bar`, is for another symbol, or mixes
        naive and aware timestamps with the symbol's stored data; `ValueError` for a ``provenance`` that is
        not a `Provenance` (or its string value).

        Complexity: O(1) amortized in time order (plus O(n / 512) when a chunk fills); out of order or a
        replacement O(log n + 512 + n / 512); a replacement that removes the session high or low rescans,
        O(n). Thread-safety: takes the write lock; waits only for other writers.
        """
        if provenance is _STREAMED and replace and type(bar) is Bar and bar.symbol == symbol:
            # Then `symbol` is a normalized key and the bar checked: the streamed lane. It sits here rather
            # than in a method of its own because a Python call costs ~100 ns, a twentieth of the write.
            # The hot lane (`append_newest`, a known symbol's next in-order bar) publishes through `_store`,
            # the one publish step every write path shares.
            lock = self._lock
            # acquire/release rather than ``with``: the context-manager protocol costs ~90 ns more per call
            # on CPython 3.13.
            lock.acquire()
            try:
                snap = self._snapshots.get(symbol)
                if snap is not None:
                    version = self._version + 1
                    new = append_newest(snap, bar, version, self._locator)
                    if new is not None:
                        self._version = version
                        self._store(symbol, new)  # `_publish_one` for a symbol already in the dict
                        if self._waiters:
                            self._notify()
                        return True
                return self._add_one(symbol, bar, _STREAMED, True)
            finally:
                lock.release()
        with self._lock:
            return self._add_one(symbol, bar, provenance, replace)

    def _add_one(self, symbol: str, bar: Bar, provenance: Provenance, replace: bool) -> bool:
        """`add_bar` off the streamed lane: any bar, any provenance, checked here (lock held)."""
        provenance = _provenance(provenance)
        sym = _symbol_key(symbol)
        if type(bar) is not Bar or bar.symbol != sym:
            check_record(Bar, bar, symbol=sym)
        version = self._version + 1
        new, stored = apply_bars(
            self._current(sym), (bar,), provenance, self._clock, version, replace, self._locator
        )
        if stored or sym not in self._snapshots:
            self._version = version
            self._publish_one(sym, new)
        return stored == 1

    def add_checked_bar(self, symbol: str, bar: Bar) -> bool:
        """`add_bar` (streamed, replacing) of a bar its caller has already checked: ``type(bar) is Bar`` and
        ``bar.symbol == symbol`` with ``symbol`` upper-case. The same as ``add_bar(symbol, bar)``, kept for
        the callers that used it to skip those checks: `add_bar` now takes its streamed lane directly
        (the checks cost less than the call this method was meant to save). Same complexity and
        thread-safety as `add_bar`."""
        return self.add_bar(symbol, bar)

    def add_bars_batch(
        self,
        symbol: str,
        bars: Iterable[Bar],
        *,
        provenance: Provenance = Provenance.STREAMED,
        replace: bool = True,
    ) -> int:
        """`add_bar` on each bar in order, all or nothing, published as one snapshot.

        Returns how many bars were stored (fewer than given only with ``replace=False``).

        Raises `InvalidDataError` (store unchanged) if any bar is invalid for this symbol.
        Complexity: a leading run of bars in time order and newer than every stored bar (a stream's batch) is
        appended in one piece, O(k + n / 512) for k bars plus O(k) for derived bars built once per window;
        the rest costs what `add_bar` costs per bar. Thread-safety: one write lock acquisition; readers see
        either none or all of the batch.
        """
        provenance = _provenance(provenance)
        sym = _symbol_key(symbol)
        items = list(bars)
        for bar in items:
            if type(bar) is not Bar or bar.symbol != sym:
                check_record(Bar, bar, symbol=sym)
        if not items:
            return 0
        with self._lock:
            version = self._version + 1
            new, stored = apply_bars(
                self._current(sym), items, provenance, self._clock, version, replace, self._locator
            )
            if stored or sym not in self._snapshots:
                self._version = version
                self._publish_one(sym, new)
            return stored

    def add_tick(self, symbol: str, tick: Tick) -> None:
        """Store ``tick`` in time order (after stored ticks with the same timestamp).

        O(1) amortized in time order, else O(log n + 512 + n / 512). Thread-safety: takes the write lock.
        """
        self.add_ticks_batch(symbol, (tick,))

    def add_ticks_batch(self, symbol: str, ticks: Iterable[Tick]) -> None:
        """`add_tick` on each tick in order, all or nothing, published as one snapshot.

        Raises `InvalidDataError` (store unchanged) if any tick is invalid for this symbol. Complexity: O(k)
        amortized for k ticks in time order after the stored ones, else O(log n + 512 + n / 512) per
        tick. Thread-safety: one write lock acquisition; readers see none or all."""
        self._add_records(symbol, ticks, Tick)

    def add_quote(self, symbol: str, quote: Quote) -> None:
        """Store ``quote`` in time order (after stored quotes with the same timestamp).

        O(1) amortized in time order, else O(log n + 512 + n / 512). Thread-safety: takes the write lock.
        """
        self.add_quotes_batch(symbol, (quote,))

    def add_quotes_batch(self, symbol: str, quotes: Iterable[Quote]) -> None:
        """`add_quote` on each quote in order, all or nothing, published as one snapshot.

        Raises `InvalidDataError` (store unchanged) if any quote is invalid for this symbol. Complexity: as
        `add_ticks_batch`. Thread-safety: one write lock acquisition; readers see none or all."""
        self._add_records(symbol, quotes, Quote)

    def _add_records(self, symbol: str, records: Iterable[Tick | Quote], cls: type[Tick | Quote]) -> None:
        """The tick and quote batch write: check every record, then one snapshot under the lock."""
        sym = _symbol_key(symbol)
        items = list(records)
        for r in items:
            check_record(cls, r, symbol=sym)
        if not items:
            return
        with self._lock:
            version = self._version + 1
            new = apply_items(self._current(sym), items, cls.__name__, version)
            self._version = version
            self._publish_one(sym, new)

    def end_session(self) -> None:
        """Mark the session ended and complete every forming derived bar.

        Writes after this are accepted as late data for the session in memory. O(symbols).
        Thread-safety: takes the write lock.
        """
        with self._lock:
            self._version += 1
            changed = {}
            for sym, snap in self._snapshots.items():
                writer = snap.writer
                pending = writer.derived_pending
                if writer.derived_base and (
                    (pending is not None and pending.owes(snap.bar_count))
                    or any(not s.ended for s in writer.derived_base.values())
                ):
                    changed[sym] = flushed(snap, self._version)
            self._session_ended = True
            self._publish(changed)
            if self._gate is not None:
                self._set_heads(self._snapshots)
            else:
                self._new_heads(self._snapshots)  # the lifecycle changed: `writer_heads` says so
            logger.info("session %s ended", self._current_session_date)

    def start_new_session(self, session_date: date) -> None:
        """Begin ``session_date``: clear all session data, keep configuration and registered symbols.

        Ends the running session first if `end_session` was not called. When
        ``historical_bars_trailing_days > 0`` the ended session's bars (for each interval in
        ``historical_bars_types``) are kept in ``historical_bars[interval][date]``, keyed by the ended
        session's ``current_session_date`` (or, if none was set, the exchange date of its newest bar); only
        the newest ``historical_bars_trailing_days`` sessions are kept.

        O(total bars kept in history + symbols). Thread-safety: takes the write lock.
        """
        if isinstance(session_date, datetime):
            session_date = self._clock.session_date(session_date)  # the session the timestamp is in
        if not isinstance(session_date, date):
            raise InvalidDataError(f"session_date must be a date, got {session_date!r}")
        with self._lock:
            self._check_history_config()
            if not self._session_ended:
                self.end_session()
            ended = self._current_session_date
            self._version += 1
            version = self._version
            fresh = {}
            for sym, snap in self._snapshots.items():
                new = SymbolSessionData.empty(sym, self._intervals, self._owed_cursor)
                fresh[sym] = new._replace(
                    historical_bars=self._rolled_history(snap, ended),
                    bars_version=version,
                    ticks_version=version,
                    quotes_version=version,
                )
            self._current_session_date = session_date
            self._session_ended = False
            self._set_heads(fresh)
            self._notify()
            logger.info("session %s started (%d symbols)", session_date, len(fresh))

    def _rolled_history(
        self, snap: SymbolSessionData, ended: date | None
    ) -> Mapping[int, Mapping[date, Series[Bar]]]:
        days = self.historical_bars_trailing_days
        if days == 0:
            return MappingProxyType({})
        last = snap.bars_1m.last()
        key = ended
        if key is None and last is not None:
            key = self._clock.session_date(last.timestamp)
        rolled: dict[int, dict[date, Series[Bar]]] = {}
        # Settled once for every interval kept: with lazy derivation each `snap.derived` settles the whole
        # session's owed bars again (O(bars)).
        derived = snap.derived if any(k != 1 for k in self.historical_bars_types) else None
        for k in self.historical_bars_types:
            kept = rolled[k] = dict(snap.historical_bars.get(k, {}))
            # The session is over, so every window is complete: late data after `end_session` may have
            # opened one since (its flush completed those forming then, not these).
            if derived is None or k == 1:
                series = snap.bars_1m
            else:
                series = derived[k].flush(snap.symbol, snap.bars_1m).bars
            if key is not None and len(series):
                kept[key] = series  # immutable: the next session starts a new one, so no copy
            elif key is not None and len(snap.bars_1m):
                # This session's bars replace an earlier session's of the same date in every interval,
                # also where it derived none (all outside the session): the intervals never disagree.
                kept.pop(key, None)
        # The newest `days` session dates, the same in every interval (trimmed per interval, an interval
        # without bars on a date would keep an older date the others drop).
        dates = sorted(set().union(*rolled.values()))
        dropped = set(dates[: max(0, len(dates) - days)])
        return MappingProxyType(
            {
                k: MappingProxyType({d: v for d, v in kept.items() if d not in dropped})
                for k, kept in rolled.items()
            }
        )

    def clear_all(self) -> None:
        """Forget everything: symbols, data, history, session state. O(1).

        Versions keep growing (a waiter never sees one go back). Thread-safety: takes the write lock.
        """
        with self._lock:
            self._version += 1
            self._current_session_date = None
            self._session_ended = False
            self._set_heads({})
            self._notify()
            logger.info("all session data cleared")

    # ----------------------------------------------------------------- reads

    def get_symbol_data(self, symbol: str) -> SymbolSessionData | None:
        """The symbol's current immutable snapshot, or ``None``. O(1); lock-free."""
        snaps = self._view
        snap = snaps.get(symbol)
        if snap is None and isinstance(symbol, str):
            snap = snaps.get(symbol.strip().upper())
        return snap

    def get_latest_bar(self, symbol: str, interval: int = 1) -> Bar | None:
        """The bar with the greatest timestamp, or ``None``. O(1); lock-free."""
        snap = self._view.get(symbol)
        if interval == 1 and type(interval) is int and snap is not None:
            return snap.latest_bar  # the hot read: one dict lookup and one field
        if interval != 1 or type(interval) is not int:
            check_interval(interval, self._interval_map)
        if snap is None:
            snap = self.get_symbol_data(symbol)
            if snap is None:
                return None
        if interval == 1:
            return snap.latest_bar
        # `read_derived`, with its common case (derived as bars arrive) inline.
        writer = snap.writer
        derived = writer.derived_base if writer.derived_pending is None else snap.read_derived()
        return derived[interval].bars.last()

    def get_last_n_bars(self, symbol: str, n: int, interval: int = 1) -> list[Bar]:
        """The last ``n`` bars, oldest → newest; ``[]`` for ``n <= 0``. O(n), independent of the series
        length; lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_last_n_bars(n, interval)

    def get_bars_since(self, symbol: str, timestamp: datetime, interval: int = 1) -> list[Bar]:
        """Bars with ``timestamp >= t``, oldest → newest. O(log n + k); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_bars_since(timestamp, interval)

    def get_bars(
        self,
        symbol: str,
        interval: int = 1,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Bar]:
        """Bars with ``start <= timestamp < end`` (half-open), oldest → newest. O(log n + k); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_bars(interval, start, end)

    def get_bar_count(self, symbol: str, interval: int = 1) -> int:
        """Number of bars in the series. O(1); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return 0 if snap is None else snap.get_bar_count(interval)

    def get_latest_bars_multi(self, symbols: Iterable[str], interval: int = 1) -> dict[str, Bar | None]:
        """``{SYMBOL: latest bar or None}`` for each symbol. O(len(symbols)); lock-free, and each symbol's
        answer comes from that symbol's snapshot at the moment it is read. A symbol that is not a `str` is
        unknown, as in every other read: its answer is ``None``, under the key as given."""
        check_interval(interval, self._interval_map)
        out: dict[str, Bar | None] = {}
        for symbol in symbols:
            sym = symbol.strip().upper() if isinstance(symbol, str) else symbol
            snap = self._view.get(sym)
            out[sym] = None if snap is None else snap.get_latest_bar(interval)
        return out

    def get_forming_bar(self, symbol: str, interval: int) -> Bar | None:
        """The partial bar of the derived window still forming, or ``None``. O(k + log n); lock-free.

        ``interval`` must be a configured derived interval (1-minute bars have no forming bar)."""
        if interval == 1:
            raise ValueError("interval=1 has no forming bar: 1-minute bars are stored as they arrive")
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.get_forming_bar(interval)

    def get_provenance(self, symbol: str, timestamp: datetime) -> Provenance | None:
        """Where the stored 1-minute bar at ``timestamp`` came from, or ``None``. O(log n); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.get_provenance(timestamp)

    def get_ticks(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Tick]:
        """Ticks with ``start <= timestamp < end``, in time order. O(log n + k); lock-free."""
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_ticks(start, end)

    def get_quotes(
        self, symbol: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[Quote]:
        """Quotes with ``start <= timestamp < end``, in time order. O(log n + k); lock-free."""
        snap = self.get_symbol_data(symbol)
        return [] if snap is None else snap.get_quotes(start, end)

    def get_latest_tick(self, symbol: str) -> Tick | None:
        """The newest tick, or ``None``. O(1); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.ticks.last()

    def get_latest_quote(self, symbol: str) -> Quote | None:
        """The newest quote, or ``None``. O(1); lock-free."""
        snap = self.get_symbol_data(symbol)
        return None if snap is None else snap.quotes.last()

    def get_historical_bars(self, symbol: str, interval: int = 1) -> dict[date, Series[Bar]]:
        """``{session date: bars}`` of the trailing sessions kept for ``interval`` (each an immutable,
        time-ordered `Series`). O(days); lock-free."""
        check_interval(interval, self._interval_map)
        snap = self.get_symbol_data(symbol)
        if snap is None:
            return {}
        return dict(snap.historical_bars.get(interval, {}))

    def get_session_metrics(self, symbol: str) -> dict[str, Any]:
        """``{}`` for an unknown symbol, else ``symbol, session_volume, session_high, session_low,
        last_update, bar_quality, bar_count`` (plus tick/quote counts and versions). O(1), but for a lazy
        store's owed bar quality (`SymbolSessionData.bar_quality`); lock-free."""
        snap = self.get_symbol_data(symbol)
        return {} if snap is None else snap.get_session_metrics()

    def get_active_symbols(self) -> set[str]:
        """A copy of the registered symbols. O(symbols); lock-free."""
        return set(self._view)

    def snapshot(self) -> Mapping[str, SymbolSessionData]:
        """Every symbol's current snapshot, as one read-only mapping. O(symbols); lock-free.

        Each value is consistent in itself; values of different symbols may come from different writes
        (hold `write_lock` around the call for a cross-symbol instant).
        """
        return MappingProxyType(dict(self._view))

    # -------------------------------------------------------------- waiting

    def wait_for_update(
        self,
        symbol: str | None = None,
        *,
        after_version: int,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
    ) -> int | None:
        """Block until ``symbol`` (or, with ``None``, any symbol) has a version above ``after_version``.

        Returns that newer version (`SymbolSessionData.version`, or `version` for the whole store), or
        ``None`` if ``timeout`` seconds passed first, or ``cancel`` was set (a thread's stop signal: set it,
        then call `wake_waiters`). Returns at once if the data is already newer.
        Complexity: O(1) per wake-up (each write notifies the waiters once).
        Thread-safety: any thread except one holding the write lock (which would wait for itself). Waits on
        a condition variable separate from the write lock, so waiting never slows writers down.
        """
        if symbol is not None:
            sym = _symbol_key(symbol)

            def current() -> int:
                snap = self._view.get(sym)
                return 0 if snap is None else snap.version
        else:

            def current() -> int:
                return self.version

        with self._changed:
            self._waiters += 1
            try:
                ok = self._changed.wait_for(
                    lambda: current() > after_version or (cancel is not None and cancel.is_set()), timeout
                )
            finally:
                self._waiters -= 1
        if not ok or current() <= after_version:
            return None
        return current()

    def wake_waiters(self) -> None:
        """Wake every `wait_for_update` caller so it re-checks its ``cancel`` event.

        O(waiters); any thread."""
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------ invariants

    def check_invariants(self) -> None:
        """Raise `AssertionError` unless every snapshot is structurally sound. O(total data); for tests.

        Checks: series sorted (bars strictly, ticks/quotes non-decreasing), every bar of the symbol, the
        newest bar kept, the owed work's lineage sound, history within the configured number of days.
        (Whether the values are right, e.g. derived bars against a from-scratch aggregation, is the tests'
        business: ``tests/reference.py``.)
        """
        for sym, snap in dict(self._snapshots).items():
            self.check_snapshot(snap, self.historical_bars_trailing_days)
            assert snap.symbol == sym

    @staticmethod
    def check_snapshot(snap: SymbolSessionData, trailing_days: int) -> None:
        """`check_invariants` for one snapshot. O(its data)."""
        bars = snap.bars_1m
        bars.check_invariants(unique=True)
        assert len(bars) == snap.bar_count >= len(snap.bars_storage), "bar_count"
        assert snap.latest_bar is bars.last(), "latest_bar"
        if snap.writer.derived_pending is not None:
            check_deferred(snap.writer.derived_pending, bars)
        snap.ticks.check_invariants(unique=False)
        snap.quotes.check_invariants(unique=False)
        assert all(b.symbol == snap.symbol for b in bars)
        for state in snap.derived.values():
            state.bars.check_invariants(unique=True)
        for per_day in snap.historical_bars.values():
            assert len(per_day) <= trailing_days


# The objects the signature's defaults of the hours keywords evaluated to. A caller who leaves a keyword out
# passes exactly this object; one who writes ``time(9, 30)`` passes another, equal one. So the store tells
# "not passed" from "passed the default" by identity, and the signature still reads ``time(9, 30)`` in
# ``help()`` and the API docs. (`_calendar_for` never hands these objects out, so none comes back in.)
_SIGNATURE_DEFAULTS: Mapping[str, object] = {
    name: inspect.signature(SessionData.__init__).parameters[name].default for name in HOURS_KEYWORDS
}


def _calendar_for(
    calendar: SessionCalendar | str | None, start_time: time, end_time: time, timezone: str | tzinfo
) -> SessionCalendar:
    """The calendar a store keeps: ``calendar`` (an exchange code builds an `ExchangeCalendar`), after
    checking the hours keywords passed with it against it; else a `RegularHoursCalendar` of the keywords.
    O(1) but for the exchange calendar's build."""
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if not isinstance(value, time):
            raise TypeError(f"{name} must be a datetime.time, got {value!r}")
    if not isinstance(timezone, (str, tzinfo)):
        raise TypeError(f"timezone must be an IANA zone name or a tzinfo, got {timezone!r}")
    if calendar is None:
        # Copies, so that the signature's default objects never leave the constructor (see above).
        return RegularHoursCalendar(_copy(start_time), _copy(end_time), timezone)
    if isinstance(calendar, str):
        calendar = ExchangeCalendar(calendar)
    given = {"start_time": start_time, "end_time": end_time, "timezone": timezone}
    check_against_calendar(calendar, {k: v for k, v in given.items() if v is not _SIGNATURE_DEFAULTS[k]})
    return calendar


def _copy(t: time) -> time:
    return time(t.hour, t.minute, t.second, t.microsecond, t.tzinfo, fold=t.fold)


_instance: SessionData | None = None
# Guards the creation and the reset of `_instance`; readers of an existing instance never take it.
_instance_lock = threading.Lock()


def get_session_data(**config: Unpack[StoreOptions]) -> SessionData:
    """The process-wide `SessionData`, created on first call (exactly once, even under concurrent first
    calls).

    ``config`` is `SessionData`'s keywords (``calendar=``, ``derived_intervals=``, ...): the call that
    creates the store creates it with them (defaults for those left out). A later call returns the same
    store; with keywords, only if the store agrees with each one given (values compared for what they
    mean: ``derived_intervals=[15, 5]`` is ``(5, 15)``, ``timezone="UTC"`` is ``datetime.timezone.utc``),
    else it raises `ValueError` naming both values, so a configuration is never dropped silently. Keywords
    not given are not checked, so ``get_session_data()`` (how the managers and the coordinator find the
    store) returns whatever store exists. To change a store's configuration, `reset_session_data` first.

    Of concurrent first calls with different configurations, exactly one creates the store; the others
    get it if it agrees with theirs, else the `ValueError`. Invalid keywords raise what the constructor
    raises, and no store is created.

    O(1) without keywords (no lock once the store exists); with keywords, the cost of building a store of
    that configuration to compare with (O(1); an exchange code other than the store's own builds its
    calendar). Thread-safe."""
    inst = _instance
    if inst is None:
        inst, created = _create_instance(config)
        if created:
            return inst
    if config:
        _check_config(inst, config)
    return inst


def _check_config(inst: SessionData, config: StoreOptions) -> None:
    """Raise `ValueError` unless ``inst`` agrees with every keyword in ``config``."""
    wanted = SessionData(**reuse_calendar(config, inst.calendar))  # validates ``config`` too
    for key, value in config.items():
        differs = differing_option(inst, wanted, key)
        if differs is not None:
            raise ValueError(
                f"get_session_data({key}={value!r}): the process-wide store exists with "
                f"{key}={differs[0]!r}, not {differs[1]!r}; call reset_session_data() first to replace it "
                "(the new store starts empty)"
            )


def _create_instance(config: StoreOptions) -> tuple[SessionData, bool]:
    """The process-wide instance, and whether this call created it (with ``config``)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = SessionData(**config)
            logger.debug("process-wide SessionData created (%s)", config or "defaults")
            return _instance, True
        return _instance, False


def reset_session_data() -> None:
    """Drop the process-wide instance; the next `get_session_data` creates a new one, with that call's
    keywords (the way to change its configuration). O(1). Thread-safe."""
    global _instance
    with _instance_lock:
        _instance = None
