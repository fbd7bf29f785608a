"""`SystemManager` and `DataManager`: how an application owns, wires and starts the parts.

`DataManager` is the data-facing API: the store (`session_data`), session metrics, bars from the repository
for a range, CSV import into the repository, and `DataManager.replay`, which wires repository → coordinator →
store → upkeep for a set of symbols and dates and summarizes each session.

`SystemManager` owns the threads: in backtest mode a `BacktestStreamCoordinator` (register streams on it,
consume `merged_stream()`), and a `DataUpkeepThread`; it checks its state transitions
(``stopped → running ⇄ paused → stopped``) and its context manager always stops every thread it started.
"""

from __future__ import annotations

import enum
import logging
import math
import random
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from itertools import chain, count
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from ._calendar import SessionClock, SessionCursor
from ._clock import ClockMode, TimeProvider
from ._gaps import detect_gaps
from ._models import Bar, SessionDataError
from ._repository import BarRepository, ImportReport, SqliteBarRepository, dates_of, time_range_of
from .core.snapshot import SymbolSessionData
from .core.store import SessionData, get_session_data
from .replay.coordinator import BacktestStreamCoordinator, StreamType
from .replay.upkeep import DataUpkeepThread

__all__ = [
    "DataManager",
    "InvalidStateError",
    "ReplayError",
    "ReplayReport",
    "SessionSummary",
    "SymbolSummary",
    "SystemManager",
    "SystemState",
]

logger = logging.getLogger("sessiondata.managers")

_DAY = timedelta(days=1)
_VOLUME = attrgetter("volume")


class InvalidStateError(SessionDataError, RuntimeError):
    """A `SystemManager` transition that makes no sense from its current state (e.g. pause when stopped)."""


class ReplayError(SessionDataError, ValueError):
    """A replay that cannot run as asked: no repository, an unknown symbol, no data on the dates asked."""


class SystemState(enum.Enum):
    """The lifecycle of a `SystemManager`.

    Attributes:
        STOPPED: Not started, or stopped.
        RUNNING: Started and running.
        PAUSED: Started and paused.
    """

    STOPPED = "stopped"
    RUNNING = "running"
    PAUSED = "paused"


@attrs.frozen(slots=True)
class SymbolSummary:
    """One symbol's figures for one replayed session (regular session unless extended hours were asked).
    Immutable: safe to share between threads.

    ``vwap`` uses each bar's typical price ``(high + low + close) / 3``. ``gaps_found`` counts the missing
    regular-session minutes the upkeep found, ``gaps_filled`` those it filled from the repository and
    ``gaps_open`` those still missing (not in the repository either); ``dropped`` the minutes the replay
    removed from the stream on purpose (``drop_minutes``). Without the upkeep (``upkeep=False``), nothing
    is filled: ``gaps_found`` and ``gaps_open`` are the session's missing regular-session minutes.

    Attributes:
        symbol: The symbol.
        date: The session date.
        bars: 1-minute bars in the store at the end of the session.
        gaps_found: Missing regular-session minutes the upkeep found.
        gaps_open: Missing minutes still missing at the end (not in the repository either).
        gaps_filled: Missing minutes filled from the repository.
        dropped: Minutes the replay removed from the stream on purpose.
        bar_quality: The session's bar quality, a percentage (0-100).
        open: The first bar's open, or `None` without bars.
        high: The session high, or `None` without bars.
        low: The session low, or `None` without bars.
        close: The last bar's close, or `None` without bars.
        volume: The session volume: an exact `int` when every bar's volume is an int, else the correctly
            rounded (`math.fsum`) sum of the bars' float volumes.
        vwap: The volume-weighted average typical price, or `None` without volume.
        derived_bars: Completed derived bars, by interval.
    """

    symbol: str
    date: date
    bars: int
    gaps_found: int
    gaps_open: int
    gaps_filled: int
    dropped: int
    bar_quality: float
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float
    vwap: float | None
    derived_bars: dict[int, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the contract's ``--json`` per-symbol shape plus extras). O(1)."""
        return {
            "bars": self.bars,
            "gaps_found": self.gaps_found,
            "gaps_open": self.gaps_open,
            "gaps_filled": self.gaps_filled,
            "dropped": self.dropped,
            "bar_quality": self.bar_quality,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "vwap": self.vwap,
            "derived_bars": {str(k): v for k, v in self.derived_bars.items()},
        }


@attrs.frozen(slots=True)
class SessionSummary:
    """The per-symbol summaries of one replayed session date. Immutable: safe to share between threads.

    Attributes:
        date: The session date.
        symbols: Each symbol's `SymbolSummary`, by symbol.
    """

    date: date
    symbols: dict[str, SymbolSummary]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"date": ISO date, "symbols": {SYMBOL: {...}}}``. O(symbols)."""
        return {"date": self.date.isoformat(), "symbols": {s: v.as_dict() for s, v in self.symbols.items()}}


@attrs.frozen(slots=True)
class ReplayReport:
    """What `DataManager.replay` did: one summary per session date (in date order) and the throughput.
    Immutable: safe to share between threads.

    Attributes:
        sessions: One summary per replayed session date, in date order.
        items: Records the consumer received (bars, ticks, quotes).
        bars: Bars among them.
        seconds: Wall-clock seconds the replay took.
        drop_minutes: Minutes per symbol and session removed from the stream on purpose.
        extended_hours: Whether pre- and post-market bars were replayed.
        upkeep_faults: Errors the upkeep thread logged and survived (0 in a clean replay).
    """

    sessions: tuple[SessionSummary, ...]
    items: int
    bars: int
    seconds: float
    drop_minutes: int
    extended_hours: bool
    upkeep_faults: int

    @property
    def bars_per_second(self) -> float:
        """Bars replayed (coordinator → store → consumer) per wall-clock second. O(1)."""
        return self.bars / self.seconds if self.seconds > 0 else 0.0

    def last_by_symbol(self) -> dict[str, SymbolSummary]:
        """Each symbol's summary from the last session it had bars in (for a replay whose symbols share
        their dates: the last session's figures). O(sessions * symbols)."""
        out: dict[str, SymbolSummary] = {}
        for session in self.sessions:
            out.update(session.symbols)
        return out

    def as_dict(self) -> dict[str, Any]:
        """The contract's ``--json`` object: ``symbols`` (each symbol's last session), ``bars_per_second``,
        ``sessions`` (one object per date, in date order), and the replay's settings. O(sessions *
        symbols)."""
        return {
            "symbols": {s: v.as_dict() for s, v in self.last_by_symbol().items()},
            "bars_per_second": self.bars_per_second,
            "bars": self.bars,
            "items": self.items,
            "seconds": self.seconds,
            "drop_minutes": self.drop_minutes,
            "extended_hours": self.extended_hours,
            "upkeep_faults": self.upkeep_faults,
            "sessions": [s.as_dict() for s in self.sessions],
        }


class _SessionCollector:
    """Session-boundary listener that records each symbol's summary when the coordinator ends a session.

    Registered after the upkeep, so it sees the session once the upkeep's last pass has filled it.
    """

    def __init__(
        self,
        store: SessionData,
        upkeep: DataUpkeepThread | None,
        symbols: Sequence[str],
        dropped: dict[Any, int],
    ) -> None:
        self._store = store
        self._upkeep = upkeep
        self._symbols = symbols
        self._dropped = dropped
        self.sessions: list[SessionSummary] = []

    def run_once(self) -> None:
        store = self._store
        day = store.current_session_date
        if day is None:
            return
        status = self._upkeep.status()["symbols"] if self._upkeep is not None else {}
        out: dict[str, SymbolSummary] = {}
        for symbol in self._symbols:
            snap = store.get_symbol_data(symbol)
            if snap is None or not snap.bars_1m:
                continue
            bars = snap.bars_1m
            volume = _session_volume(bars)
            weighted = sum([(b.high + b.low + b.close) / 3 * b.volume for b in bars])
            if self._upkeep is not None:
                up = status.get(symbol, {})
                found = int(up.get("gaps_found", 0))
                still_open = sum(run[2] for run in up.get("open_gaps", []))
                filled = int(up.get("bars_filled", 0))
            else:  # nobody looked: the session's missing minutes, found here and all still open
                found = still_open = _missing_minutes(store, bars, day)
                filled = 0
            out[symbol] = SymbolSummary(
                symbol=symbol,
                date=day,
                bars=len(bars),
                gaps_found=found,
                gaps_open=still_open,
                gaps_filled=filled,
                dropped=self._dropped.get((symbol, day), 0),
                bar_quality=snap.bar_quality,
                open=bars[0].open,
                high=snap.session_high,
                low=snap.session_low,
                close=bars[-1].close,
                volume=volume,
                vwap=weighted / volume if volume else None,
                derived_bars=_derived_counts(store, snap, day),
            )
        self.sessions.append(SessionSummary(day, out))


def _missing_minutes(store: SessionData, bars: Sequence[Bar], day: date) -> int:
    """The regular-session minutes of session ``day`` with no bar among ``bars`` (the session ended, so
    every minute to its close counts), as the upkeep's final pass of the session would find them: the
    summary's gap figures of a replay without the upkeep. O(bars + session minutes)."""
    clock = store.session_clock
    bounds = clock.session_bounds(day, aware=bars[0].timestamp.tzinfo is not None)
    if bounds is None:
        return 0
    return sum(gap.bar_count for gap in detect_gaps(clock, bars, bounds[1], start=day))


def _session_volume(bars: Iterable[Bar]) -> float:
    """The bars' summed volume for a summary: an `int`, exact, when every volume is an `int` (shares); else
    (fractional units, a crypto's) `math.fsum`'s correctly rounded sum of the float volumes, so a session of
    ``0.1`` BTC bars reads ``2297.37120946``, not the arrival-order sum's ``2297.371209460003``. O(bars).

    The store's ``session_volume`` follows the same rule (`sessiondata.core.volume`); the summary sums the
    bars it reports on, which is what it describes."""
    volumes = list(map(_VOLUME, bars))
    total = sum(volumes)
    return total if type(total) is int else math.fsum(volumes)


def _derived_counts(store: SessionData, snap: SymbolSessionData, day: date) -> dict[int, int]:
    """``snap``'s completed derived bars per interval, after the store ended session ``day``.

    Counted without building them when the session is complete from its open: quality 100% and the newest
    bar a regular minute ``n`` of ``day`` with no break before it, so every minute ``0..n`` holds a bar and
    each window up to ``n``'s (aligned to the open) was completed, the last one by ``end_session``: ``n // k
    + 1`` bars of ``k`` minutes. Otherwise the store's own count, which derives the bars nobody read yet.
    Why: a wide replay's summary would otherwise build every symbol's derived bars (about a tenth of the
    main job) only to count them. O(1) in the first case; O(bars) in the other.
    """
    clock = store.session_clock
    last = snap.latest_bar
    found = None if last is None or not store.session_ended else clock.locate(last.timestamp)
    if found is not None and found[0] == day and snap.bar_quality == 100.0:
        newest = found[1]
        if clock.trading_minutes_through(day, newest) == newest + 1:
            return {k: newest // k + 1 for k in store.derived_intervals}
    return {k: len(s.bars) for k, s in snap.derived.items()}


class DataManager:
    """The data-facing API: the store, session metrics, the repository, and replays.

    ``session_data=None`` uses the process-wide store (`get_session_data`), resolved on each access so that
    `reset_session_data` is honoured. Thread-safety: reads may be called from any thread; `replay` runs in
    the caller's thread (it consumes the merged stream) and starts and stops its own worker threads.
    """

    def __init__(
        self, session_data: SessionData | None = None, *, repository: BarRepository | None = None
    ) -> None:
        self._store = session_data
        self._repository = repository

    @property
    def session_data(self) -> SessionData:
        """The store: the injected one, else the process-wide `get_session_data()`."""
        return self._store if self._store is not None else get_session_data()

    @property
    def repository(self) -> BarRepository | None:
        """The bar repository replays and gap fills read from (``None`` if none was given)."""
        return self._repository

    def get_session_metrics(self, symbol: str) -> dict[str, Any]:
        """The store's metrics for ``symbol`` (``{}`` if unknown). O(1); lock-free."""
        return self.session_data.get_session_metrics(symbol)

    def _require_repository(self) -> BarRepository:
        if self._repository is None:
            raise ReplayError("this DataManager has no repository (DataManager(repository=...))")
        return self._repository

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars from the repository with ``start <= timestamp < end``. Complexity: the repository's range
        query (O(log n + k) for the built-in ones). Thread-safety: any thread, as the repository allows."""
        return self._require_repository().get_bars(symbol, start, end, interval)

    def import_csv(
        self, paths: Iterable[str | Path], *, symbol: str | None = None, skip_bad_rows: bool = False
    ) -> list[ImportReport]:
        """Load CSV files into the repository (a `SqliteBarRepository`); one report per file, in order.

        Each file is all or nothing unless ``skip_bad_rows``. O(rows) per file.
        """
        repo = self._require_repository()
        if not isinstance(repo, SqliteBarRepository):
            raise ReplayError(
                f"import needs a SqliteBarRepository, this DataManager has {type(repo).__name__}"
            )
        return [repo.import_csv(p, symbol, skip_bad_rows=skip_bad_rows) for p in paths]

    def session_dates(self, symbols: Iterable[str]) -> list[date]:
        """The session dates (per the store's calendar) on which the repository may hold bars of any of
        ``symbols``, ascending. Raises `ReplayError` for a symbol it holds nothing for.

        Uses the repository's ``dates(symbol)`` when it has one (a timestamp written in another zone may sit
        on the neighbouring exchange date, so both neighbours are candidates; a day without bars costs one
        empty query), else every day between the first and last bar. Complexity: O(symbols * days) plus
        those repository queries. Thread-safety: any thread, as the repository allows.
        """
        repo = self._require_repository()
        return self._session_dates(repo, _time_ranges(repo, symbols))

    def _session_dates(self, repo: BarRepository, ranges: dict[str, tuple[datetime, datetime]]) -> list[date]:
        """`session_dates` for the symbols of ``ranges`` (each one's first and last timestamp, read once)."""
        clock = self.session_data.session_clock
        candidates: set[date] = set()
        for symbol, found in ranges.items():
            listed = dates_of(repo, symbol)
            if listed is not None:
                for d in listed:
                    candidates.update((d - _DAY, d, d + _DAY))
            else:
                first, last = (clock.session_date(t) for t in found)
                candidates.update(first + i * _DAY for i in range((last - first).days + 1))
        return sorted(d for d in candidates if clock.hours(d) is not None)

    def replay(
        self,
        symbols: Sequence[str],
        dates: Iterable[date] | None = None,
        *,
        speed: float | None = None,
        extended_hours: bool = False,
        drop_minutes: int = 0,
        seed: int = 0,
        upkeep: bool = True,
        upkeep_period: float = 1.0,
        on_item: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ReplayReport:
        """Replay ``symbols`` over ``dates`` (default: every session the repository has) into the store.

        Wiring: per symbol, a lazy source reads one day at a time from the repository; the coordinator merges
        the sources, advances a simulated clock and writes into the store; the upkeep thread (``upkeep=True``)
        fills missing minutes from the repository, and at each session boundary runs a last pass before the
        session is summarized. ``drop_minutes`` removes that many random regular-session minutes per symbol
        and session from the stream (seeded by ``seed``), to show the upkeep at work on complete data.
        ``on_item`` is called with each item the consumer receives (e.g. a progress bar). ``cancel`` stops
        the replay early: within about 50 ms of being set, also while the consumer waits for the next item
        (a paced replay, a slow repository); the report then covers the items consumed. Returns a
        `ReplayReport`.

        Raises `ReplayError` (no repository, unknown symbol, no bars on the dates) before starting anything.
        Complexity: O(b log s) for b bars of s symbols (the merge), plus the store's writes and the upkeep's
        passes. Thread-safety: runs in the caller's thread, which consumes the merged stream; every thread it
        starts is stopped before it returns, also on error.
        """
        repo = self._require_repository()
        store = self.session_data
        wanted = [s.strip().upper() for s in symbols]
        if not wanted:
            raise ReplayError("no symbols to replay")
        if drop_minutes < 0:
            raise ReplayError(f"drop_minutes must be >= 0, got {drop_minutes}")
        # Each symbol's time range, asked of the repository once per replay (a probe of a bare repository
        # reads every bar): it says the symbol exists, its dates without a date index, and its timestamps'
        # style (naive or aware) for the sources' ranges.
        ranges = _time_ranges(repo, wanted)
        days = sorted(set(dates)) if dates is not None else self._session_dates(repo, ranges)
        clock = store.session_clock
        dropped: dict[Any, int] = {}
        aware = {s: found[0].tzinfo is not None for s, found in ranges.items()}
        sources = {
            s: self._source(repo, clock, s, days, aware[s], drop_minutes, seed, dropped) for s in wanted
        }
        time_provider = TimeProvider(ClockMode.BACKTEST, timezone=store.timezone)
        keeper = (
            DataUpkeepThread(store, repo, time_provider=time_provider, period=upkeep_period)
            if upkeep
            else None
        )
        collector = _SessionCollector(store, keeper, wanted, dropped)
        # The upkeep as a session listener: its `run_once` at each boundary. Its per-minute passes come from
        # the clock it listens to (it has no `advance` for the coordinator to call as well).
        listeners: list[Any] = [keeper, collector] if keeper is not None else [collector]
        coordinator = BacktestStreamCoordinator(
            store,
            time_provider=time_provider,
            speed=speed,
            extended_hours=extended_hours,
            session_listeners=listeners,
        )
        for symbol, source in sources.items():
            # Reads a day at a time from the repository: nothing to wait for outside the process.
            coordinator.register_stream(symbol, StreamType.BAR, source, blocking=False)
        items = 0
        began = time.perf_counter()
        watcher = None if cancel is None else _CancelWatcher(cancel, coordinator)
        try:
            if keeper is not None:
                keeper.start()
            if watcher is not None:
                watcher.start()
            items = _consume(coordinator.merged_stream(), on_item, cancel)
        finally:
            if watcher is not None:
                watcher.finish()
            coordinator.stop_worker(timeout=5.0)
            if keeper is not None:
                keeper.stop(timeout=5.0)
        seconds = time.perf_counter() - began
        cancelled = cancel is not None and cancel.is_set()
        if not collector.sessions and items == 0 and not cancelled:
            raise ReplayError(f"no bars for {', '.join(wanted)} on the dates asked")
        faults = 0 if keeper is None else int(keeper.status()["fault_count"])
        return ReplayReport(
            sessions=tuple(collector.sessions),
            items=items,
            bars=items,  # every stream is a bar stream
            seconds=seconds,
            drop_minutes=drop_minutes,
            extended_hours=extended_hours,
            upkeep_faults=faults,
        )

    @staticmethod
    def _source(
        repo: BarRepository,
        clock: SessionClock,
        symbol: str,
        days: list[date],
        aware: bool,
        drop_minutes: int,
        seed: int,
        dropped: dict[Any, int],
    ) -> Iterator[Bar]:
        """Bars of ``symbol`` for ``days``, read from the repository lazily (nothing is read before the
        first item is asked for); ``aware``: the repository's timestamps for it are timezone-aware.

        Consecutive dates' ranges tile the time line (`SessionClock.date_bounds`), so a run of consecutive
        dates is one range: one query, streamed in chunks when the repository can (``iter_bars``, as
        `SqliteBarRepository` does), else one `get_bars` call. With ``drop_minutes`` each date is read on
        its own, since the minutes to drop are drawn per date. The bars are chained from those lists (no
        Python frame per bar: the coordinator's worker pulls every bar through it).
        """
        return chain.from_iterable(
            DataManager._source_parts(repo, clock, symbol, days, aware, drop_minutes, seed, dropped)
        )

    @staticmethod
    def _source_parts(
        repo: BarRepository,
        clock: SessionClock,
        symbol: str,
        days: list[date],
        aware: bool,
        drop_minutes: int,
        seed: int,
        dropped: dict[Any, int],
    ) -> Iterator[Iterable[Bar]]:
        """`_source`'s bars, as one iterable per range read."""
        if not drop_minutes:
            stream = getattr(repo, "iter_bars", None)
            for start, end in _runs_of_days(clock, days, aware):
                yield stream(symbol, start, end) if callable(stream) else repo.get_bars(symbol, start, end)
            return
        # `SessionClock.locate`'s answers, from the cursor that remembers the stretch of minutes the last
        # bar fell in (the store's writer uses it the same way): a bar costs a few comparisons, not a lookup.
        place = SessionCursor(clock).place
        for day in days:
            start, end = clock.date_bounds(day, aware)  # from the evening before for an overnight session
            bars = repo.get_bars(symbol, start, end)
            regular = _regular_indices(clock, day, bars, aware)
            if regular is None:
                regular = [i for i, b in enumerate(bars) if place(b.timestamp) is not None]
            rng = random.Random(f"{seed}:{symbol}:{day.isoformat()}")
            skip = set(rng.sample(regular, min(drop_minutes, len(regular))))
            dropped[symbol, day] = len(skip)
            yield [b for i, b in enumerate(bars) if i not in skip]


class _CancelWatcher:
    """Ends a replay's merged stream when ``cancel`` is set, also while the consumer waits for an item.

    The consumer looks at ``cancel`` only between items, and may wait long for the next one: a paced
    replay (``speed``) waits for the wall clock between items (a minute's bar every 10 s at ``speed=6``),
    and a worker may be inside a slow repository. A `threading.Event` cannot wake another waiter, so this
    thread waits on it in slices (20 wake-ups a second, nothing else) and then stops the worker, which
    hands the consumer what is buffered and ends the stream.
    """

    _SLICE = 0.05  # seconds: the latency of a cancel, and at most the wait `finish` adds to a replay

    def __init__(self, cancel: threading.Event, coordinator: BacktestStreamCoordinator) -> None:
        self._cancel = cancel
        self._coordinator = coordinator
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sessiondata-replay-cancel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._finished.is_set():
            if self._cancel.wait(self._SLICE):
                self._coordinator.stop_worker(timeout=0.0)  # returns at once; the replay's `finally` waits
                return

    def finish(self) -> None:
        """Stop watching and wait for the thread (at most one slice). Any thread but the watcher's."""
        self._finished.set()
        if self._thread.is_alive():
            self._thread.join()


def _consume(
    stream: Iterator[Any], on_item: Callable[[Any], None] | None, cancel: threading.Event | None
) -> int:
    """Iterate ``stream`` to its end (or until ``cancel`` is set), calling ``on_item`` with each item; returns
    how many items it took. With neither, the items are counted in C (``zip`` with a counter, drained by an
    empty ``deque``): no Python code per item, ~0.05 us a bar of the main job. O(items)."""
    if on_item is None and cancel is None:
        counter = count()
        # `zip` pulls the stream first, so the counter is not advanced past the stream's end.
        deque(zip(stream, counter, strict=False), maxlen=0)
        return next(counter)
    items = 0
    for item in stream:
        items += 1
        if on_item is not None:
            on_item(item)
        if cancel is not None and cancel.is_set():
            break
    return items


def _regular_indices(clock: SessionClock, day: date, bars: list[Bar], aware: bool) -> list[int] | None:
    """The indices of ``bars`` (``day``'s, oldest first as `BarRepository.get_bars` returns them) inside its
    regular session, found by two binary searches when the session is one stretch of minutes in one UTC
    offset (no break, no clock change inside); None otherwise (then each bar is placed). The same indices
    as placing each bar (`SessionCursor.place` is not None), without ~1 µs a bar. O(log bars)."""
    segments = clock.segments(day)
    if len(segments) != 1:
        return None if segments else []
    midnight = datetime(day.year, day.month, day.day, tzinfo=clock.tz if aware else None)
    first = midnight + timedelta(minutes=segments[0][0])
    end = midnight + timedelta(minutes=segments[0][1])
    if aware and first.utcoffset() != end.utcoffset():
        return None
    stamp = attrgetter("timestamp")
    return list(range(bisect_left(bars, first, key=stamp), bisect_left(bars, end, key=stamp)))


def _runs_of_days(clock: SessionClock, days: list[date], aware: bool) -> list[tuple[datetime, datetime]]:
    """The time ranges of ``days`` (ascending) with abutting ranges joined: one per run of consecutive
    dates. O(days)."""
    runs: list[tuple[datetime, datetime]] = []
    for day in days:
        start, end = clock.date_bounds(day, aware)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def _time_ranges(repo: BarRepository, symbols: Iterable[str]) -> dict[str, tuple[datetime, datetime]]:
    """Each symbol's first and last timestamps in the repository (see `time_range_of`), one query each, by
    symbol in the order given. Raises `ReplayError` for a symbol it holds no 1-minute bars for."""
    out: dict[str, tuple[datetime, datetime]] = {}
    for symbol in symbols:
        found = time_range_of(repo, symbol)
        if found is None:
            raise ReplayError(f"unknown symbol {symbol!r}: the repository holds no 1-minute bars for it")
        out[symbol] = found
    return out


class SystemManager:
    """Owns the store, the `DataManager`, the stream coordinator and the upkeep thread, and their lifecycle.

    ``mode``: ``"backtest"`` (a simulated clock advanced by the coordinator) or ``"live"`` (the real clock;
    no coordinator). ``session_data=None`` uses the process-wide store. ``repository`` feeds gap fills and
    replays. Streams are registered on `coordinator` before or after `start`.

    State: ``stopped`` → `start` → ``running`` ⇄ `pause`/`resume` ⇄ ``paused`` → `stop` → ``stopped``.
    Repeating the current state's own call is a no-op (``start`` when running, ``pause`` when paused,
    ``resume`` when running, ``stop`` when stopped); `pause`/`resume` when stopped and `start` when paused
    raise `InvalidStateError`. A coordinator runs once: after `stop`, `coordinator` and `upkeep` are still
    the stopped run's (their ``status()`` says how it ended, errors included) until the next `start`, which
    builds fresh ones: register the next run's streams after that `start` (with no stream registered yet,
    the worker starts at the first ``merged_stream()``). The context manager starts on entry and always
    stops on exit.

    Thread-safety: every method may be called from any thread; one lock serializes the transitions.
    """

    def __init__(
        self,
        session_data: SessionData | None = None,
        *,
        mode: str | ClockMode = "backtest",
        repository: BarRepository | None = None,
        time_provider: TimeProvider | None = None,
        upkeep: bool = True,
        upkeep_period: float = 1.0,
        coordinator_options: dict[str, Any] | None = None,
    ) -> None:
        try:
            self._mode = ClockMode(mode)
        except ValueError:
            raise ValueError(f"mode must be 'backtest' or 'live', got {mode!r}") from None
        self._store = session_data
        self._repository = repository
        self._data_manager = DataManager(session_data, repository=repository)
        self._time_provider = time_provider
        self._with_upkeep = upkeep
        self._upkeep_period = upkeep_period
        self._coordinator_options = dict(coordinator_options or {})
        # Serializes start/pause/resume/stop and guards `_state` and the parts below.
        self._lock = threading.RLock()
        self._state = SystemState.STOPPED
        self._coordinator: BacktestStreamCoordinator | None = None
        self._upkeep: DataUpkeepThread | None = None
        self._spent = False  # the current parts ran and were stopped: build fresh ones on the next start
        # Counts `stop` calls. A `start` holds `_lock` through the upkeep's first pass, which a slow
        # repository can stretch to ``fetch_timeout``: a `stop` that finds the lock taken stops the parts
        # without it (they are thread-safe) to keep its bound, and the `start` sees the count move and
        # leaves the system stopped instead of starting the worker.
        self._stops = 0
        self._build()

    def _build(self) -> None:
        store = self.session_data
        clock = self._time_provider
        if clock is None or self._spent:
            clock = TimeProvider(self._mode, timezone=store.timezone)
        self._clock = clock
        self._upkeep = (
            DataUpkeepThread(store, self._repository, time_provider=clock, period=self._upkeep_period)
            if self._with_upkeep
            else None
        )
        self._coordinator = None
        if self._mode is ClockMode.BACKTEST:
            listeners = [self._upkeep] if self._upkeep is not None else []
            self._coordinator = BacktestStreamCoordinator(
                store, time_provider=clock, session_listeners=listeners, **self._coordinator_options
            )
        self._spent = False

    # ------------------------------------------------------------------ parts

    @property
    def mode(self) -> str:
        """``"backtest"`` or ``"live"``."""
        return self._mode.value

    @property
    def state(self) -> SystemState:
        """The current `SystemState`. O(1); a racy read."""
        return self._state

    @property
    def session_data(self) -> SessionData:
        """The store: the injected one, else the process-wide `get_session_data()`."""
        return self._store if self._store is not None else get_session_data()

    @property
    def data_manager(self) -> DataManager:
        """The `DataManager` over the same store and repository."""
        return self._data_manager

    @property
    def time_provider(self) -> TimeProvider:
        """The clock the parts share (simulated in backtest mode)."""
        return self._clock

    @property
    def coordinator(self) -> BacktestStreamCoordinator:
        """The stream coordinator (backtest mode only; `InvalidStateError` in live mode).

        After `stop`, the stopped run's, until the next `start` replaces it: its ``status()`` (state,
        ``error``, counts) says how the run ended. O(1); any thread.
        """
        with self._lock:
            if self._coordinator is None:
                raise InvalidStateError("live mode has no stream coordinator")
            return self._coordinator

    @property
    def upkeep(self) -> DataUpkeepThread | None:
        """The data-upkeep thread (``None`` when built with ``upkeep=False``); after `stop`, the stopped
        run's until the next `start` (its ``status()`` keeps the run's gaps and faults). O(1); any thread."""
        return self._upkeep

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """``stopped → running``: start the upkeep thread and the coordinator's worker. No-op when running.

        After a `stop`, first builds fresh parts (a new coordinator, upkeep and clock on the same store): the
        stopped run's are dropped here, not at `stop`. Complexity: O(streams), plus the upkeep's first
        pass, which it waits for. Thread-safety: any thread; serialized with the other state changes.
        """
        stops = self._stops  # read before the lock: a `stop` from now on cancels this start
        with self._lock:
            if self._state is SystemState.RUNNING:
                return
            if self._state is SystemState.PAUSED:
                raise InvalidStateError("the system is paused: call resume(), not start()")
            if self._spent:
                self._build()
            try:
                if self._upkeep is not None:
                    self._upkeep.start()
                if self._stops != stops:
                    # A `stop` came meanwhile: it stopped the parts it found and waits for them within its
                    # own bound; tell them again (they may have started after it) without waiting here.
                    self._stop_parts(0.0)
                    self._spent = True
                    logger.info("system start cancelled by stop()")
                    return
                # Without streams a started worker would find nothing to merge and finish at once, and a
                # finished coordinator takes no more streams: then its first `merged_stream()` starts it.
                if self._coordinator is not None and self._coordinator.status().get("streams"):
                    self._coordinator.start_worker()
            except BaseException:
                self._stop_parts(5.0)
                self._spent = True
                raise
            self._state = SystemState.RUNNING
            logger.info("system started (%s)", self.mode)

    def pause(self) -> None:
        """``running → paused``: the coordinator parks (the clock stops) and the upkeep skips passes.

        O(1); returns without waiting for the worker to park. Thread-safety: any thread; serialized with the
        other state changes."""
        with self._lock:
            if self._state is SystemState.PAUSED:
                return
            if self._state is SystemState.STOPPED:
                raise InvalidStateError("cannot pause a stopped system")
            if self._coordinator is not None:
                self._coordinator.pause()
            if self._upkeep is not None:
                self._upkeep.pause()
            self._state = SystemState.PAUSED

    def resume(self) -> None:
        """``paused → running``. No-op when running. O(1). Thread-safety: any thread; serialized with the
        other state changes."""
        with self._lock:
            if self._state is SystemState.RUNNING:
                return
            if self._state is SystemState.STOPPED:
                raise InvalidStateError("cannot resume a stopped system: call start()")
            if self._coordinator is not None:
                self._coordinator.resume()
            if self._upkeep is not None:
                self._upkeep.resume()
            self._state = SystemState.RUNNING

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every thread this manager started, within ``timeout`` seconds in all.

        Returns True if all of them finished (False if one is stuck in a source or a repository: it is a
        daemon thread and is abandoned). Idempotent. Complexity: O(1) besides the wait. Thread-safety: any
        thread but the parts' own; waits at most ``timeout`` seconds, also while a `start` in another thread
        is still in the upkeep's first pass (that start then leaves the system stopped).
        """
        deadline = time.monotonic() + timeout
        self._stops += 1  # `start` only compares it with what it read; any change cancels that start
        finished = True
        if not self._lock.acquire(blocking=False):
            # A transition holds the lock: a `start` waiting for the upkeep's first pass (bounded by the
            # repository's fetch timeout, not by ours). Stop the parts it is starting without the lock (their
            # `stop` is thread-safe and ends that pass); the start then sees the count moved and starts
            # nothing more, so the lock comes free well within the deadline.
            finished = self._stop_parts(timeout)
            if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
        try:
            if self._state is SystemState.STOPPED and not self._started_any():
                if self._spent:
                    # A `start` that this or another stop cancelled told its parts to stop without waiting
                    # (their threads may still be exiting, a fetch worker among them): wait for them here.
                    finished = self._stop_parts(max(0.0, deadline - time.monotonic())) and finished
                return finished
            finished = self._stop_parts(max(0.0, deadline - time.monotonic())) and finished
            self._spent = True
            self._state = SystemState.STOPPED
            logger.info("system stopped%s", "" if finished else " (a thread was abandoned)")
            return finished
        finally:
            self._lock.release()

    def _started_any(self) -> bool:
        up = self._upkeep is not None and self._upkeep.is_alive()
        co = self._coordinator is not None and bool(self._coordinator.status().get("worker_alive"))
        return up or co

    def _stop_parts(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        ok = True
        if self._coordinator is not None:
            ok = self._coordinator.stop_worker(timeout=max(0.0, deadline - time.monotonic())) and ok
        if self._upkeep is not None:
            ok = self._upkeep.stop(timeout=max(0.0, deadline - time.monotonic())) and ok
        return ok

    def __enter__(self) -> SystemManager:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SystemManager {self.mode} {self._state.value}>"
