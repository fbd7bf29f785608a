"""DEPRECATED: the old per-session metrics tracker, kept working for old callers.

Use `sessiondata.SessionData` instead (``get_session_data().get_session_metrics(symbol)``). Each call,
before and after (the documentation's "Migration from SessionTracker" page has the details):

    get_session_tracker()                          ->  get_session_data()
    reset_session_tracker()                        ->  reset_session_data()
    update_session(symbol, date, high, low, volume, ts)
        ->  add_bar(symbol, Bar(symbol, ts, open, high, low, close, volume))
    get_session_metrics(symbol, date)              ->  get_session_metrics(symbol)  (a dict, current session)
    reset_session(symbol, date)                    ->  start_new_session(date)  (all symbols)
    clear_all()                                    ->  clear_all()

Importing this module emits one `DeprecationWarning` attributed to the importing line.

What it keeps, as its old callers use it: `SessionMetrics`, `SessionTracker` (``get_session_metrics``
returns zeroed metrics for a (symbol, date) it knows nothing of, never ``None``; ``update_session`` returns
the updated metrics; ``reset_session`` leaves zeroed metrics; ``clear_all``) and the process-wide
`get_session_tracker` / `reset_session_tracker`. It is synchronous and thread-safe (one lock guards the
tracker's own table). The original's result caches (``cache_*``, ``get_cached_*``, ``clear_cache``) are
gone: see ``docs/migration.md``.

Backed by the store where it can be: metrics the tracker was never told about are read from the
process-wide `SessionData` when the asked date is the store's current session (or the store has no session
date and its bars fall on that date), so an old caller sees what the new pipeline wrote. Updates made
through the tracker carry only high, low and volume (no open or close), so they cannot become bars and stay
in the tracker's own table; for a (symbol, date) the tracker has been updated for, its own figures win.
"""

from __future__ import annotations

import threading
import warnings
from datetime import date, datetime

import attrs

from ._clock import instant_before
from ._models import InvalidDataError, check_amount, check_price, check_symbol, check_timestamp
from .core.store import get_session_data

__all__ = [
    "SessionMetrics",
    "SessionTracker",
    "get_session_tracker",
    "reset_session_tracker",
]


warnings.warn(
    "sessiondata.session_tracker is deprecated: use sessiondata.get_session_data() "
    "(SessionData.get_session_metrics) instead; help(sessiondata.session_tracker) shows each call's "
    "replacement",
    DeprecationWarning,
    # 2 = the importing line: `warnings` skips the import machinery's own frames when counting.
    stacklevel=2,
)


@attrs.define
class SessionMetrics:
    """One symbol's running metrics for one session date (the old mutable record).

    Not thread-safe by itself: the tracker hands out copies, and updates it only under its lock.
    """

    date: date
    symbol: str
    session_volume: float = 0
    session_high: float | None = None
    session_low: float | None = None
    last_update: datetime | None = None

    def update_from_bar(
        self, bar_high: float, bar_low: float, bar_volume: float, timestamp: datetime
    ) -> None:
        """Fold one bar's high, low and volume into the metrics. O(1).

        ``last_update`` is the latest ``timestamp`` as an instant (also on the night clocks go back, where
        01:10 EST is later than 01:50 EDT of the same zone). A ``timestamp`` naive where ``last_update`` is
        aware, or the reverse, raises `InvalidDataError` and changes nothing."""
        last = self.last_update
        if last is not None and (last.tzinfo is None) is not (timestamp.tzinfo is None):
            raise InvalidDataError(
                f"update_session: timestamp={timestamp.isoformat()} and the last update "
                f"{last.isoformat()} of {self.symbol} on {self.date} mix naive and timezone-aware datetimes"
            )
        self.session_volume += bar_volume
        if self.session_high is None or bar_high > self.session_high:
            self.session_high = bar_high
        if self.session_low is None or bar_low < self.session_low:
            self.session_low = bar_low
        if last is None or instant_before(last, timestamp):
            self.last_update = timestamp


class SessionTracker:
    """Session metrics per (symbol, date). Deprecated: use `sessiondata.SessionData`.

    Every method is thread-safe: one lock guards the table; no method waits for anything else.
    """

    def __init__(self) -> None:
        # Guards `_sessions`: every read and update of a (symbol, date) entry.
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, date], SessionMetrics] = {}

    def get_session_metrics(self, symbol: str, session_date: date) -> SessionMetrics:
        """A copy of the metrics for ``symbol`` on ``session_date``; zeroed (volume 0, no high, low or
        ``last_update``) when nothing is known, as the original did: old callers do not check for ``None``.

        Falls back to the process-wide store's metrics for that symbol when it holds that session. A
        ``symbol`` that is not a `str` is unknown, as it is to the store: zeroed metrics.
        O(1) (the fallback is O(1) too); takes the tracker's lock briefly.
        """
        if not isinstance(symbol, str) or not symbol.strip():
            return SessionMetrics(date=session_date, symbol=symbol)
        key = (check_symbol(symbol), session_date)  # upper-cased and stripped, as the store does
        with self._lock:
            found = self._sessions.get(key)
            if found is not None:
                return attrs.evolve(found)
        from_store = self._from_store(key[0], session_date)
        return from_store or SessionMetrics(date=session_date, symbol=key[0])

    @staticmethod
    def _from_store(symbol: str, session_date: date) -> SessionMetrics | None:
        store = get_session_data()
        snap = store.get_symbol_data(symbol)
        if snap is None or not snap.bars_1m:
            return None
        current = store.current_session_date
        if current is None:
            last = snap.bars_1m.last()
            assert last is not None
            current = store.session_clock.session_date(last.timestamp)
        if current != session_date:
            return None
        return SessionMetrics(
            date=session_date,
            symbol=symbol,
            session_volume=snap.session_volume,
            session_high=snap.session_high,
            session_low=snap.session_low,
            last_update=snap.last_update,
        )

    def update_session(
        self,
        symbol: str,
        session_date: date,
        bar_high: float,
        bar_low: float,
        bar_volume: float,
        timestamp: datetime,
    ) -> SessionMetrics:
        """Fold one bar into ``symbol``'s metrics for ``session_date`` (created on first update) and return
        a copy of the updated metrics. O(1); takes the tracker's lock.

        Raises `InvalidDataError` (nothing changed) for what `Bar` refuses: an empty symbol, a NaN, infinite
        or non-positive high or low, ``bar_high < bar_low``, a negative or non-finite volume, a timestamp
        that is not a `datetime`; for a ``session_date`` that is not a `date`; and for a timestamp naive
        where the (symbol, date)'s earlier ones were aware, or the reverse."""
        name = check_symbol(symbol)
        if not isinstance(session_date, date) or isinstance(session_date, datetime):
            raise InvalidDataError(f"update_session: session_date must be a date, got {session_date!r}")
        check_price("update_session", "bar_high", bar_high)
        check_price("update_session", "bar_low", bar_low)
        check_amount("update_session", "bar_volume", bar_volume)
        check_timestamp("update_session", timestamp)
        if bar_high < bar_low:
            raise InvalidDataError(f"update_session: bar_high={bar_high!r} is below bar_low={bar_low!r}")
        key = (name, session_date)
        with self._lock:
            metrics = self._sessions.get(key)
            if metrics is None:
                metrics = self._sessions[key] = SessionMetrics(date=session_date, symbol=key[0])
            # Checks before it changes anything: a refused update leaves the metrics as they were.
            metrics.update_from_bar(bar_high, bar_low, bar_volume, timestamp)
            return attrs.evolve(metrics)

    def reset_session(self, symbol: str, session_date: date) -> None:
        """Zero ``symbol``'s metrics for ``session_date``: later reads get zeroed metrics (not the store's,
        as the original had no store to fall back to). Raises `InvalidDataError` for a symbol that is not a
        non-empty `str`. O(1); takes the tracker's lock."""
        key = (check_symbol(symbol), session_date)
        with self._lock:
            self._sessions[key] = SessionMetrics(date=session_date, symbol=key[0])

    def clear_all(self) -> None:
        """Forget every tracked session. O(1)."""
        with self._lock:
            self._sessions.clear()


_tracker: SessionTracker | None = None
# Guards the creation and reset of `_tracker`.
_tracker_lock = threading.Lock()


def get_session_tracker() -> SessionTracker:
    """The process-wide tracker, created once (also under concurrent first calls). Deprecated."""
    global _tracker
    with _tracker_lock:
        if _tracker is None:
            _tracker = SessionTracker()
        return _tracker


def reset_session_tracker() -> None:
    """Drop the process-wide tracker. Deprecated."""
    global _tracker
    with _tracker_lock:
        _tracker = None
