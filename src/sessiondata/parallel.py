"""Replay many sessions at once, on a local process pool or on a Dask distributed cluster.

A multi-day, multi-symbol replay splits into independent **session tasks**: one session date × one group of
symbols, plus the group's trailing historical days when the store keeps history
(``historical_bars_trailing_days > 0``; the task replays those days first, so its store's history is the
one a single long replay would have built). `plan_sessions` makes the plan; `replay_many` runs it:

* on a `concurrent.futures.ProcessPoolExecutor` of ``workers`` processes (the default; ``workers=1`` runs
  every task in the calling thread, for debugging);
* on Dask when given a ``distributed.Client`` (optional extra ``sessiondata[dask]``), whose ``retries`` and
  worker-loss handling apply.

Each task builds its own `SessionData` and replays through `DataManager.replay` (repository → coordinator →
store → upkeep thread); tasks share nothing but the repository file(s). A worker process reopens the
repository from a picklable `RepositorySpec` (a SQLite file or a CSV directory; SQLite connections cannot
cross processes) and keeps it open for the other tasks of the same `replay_many` call. After the replay a
user function ``fn(store, date, symbols)`` runs over the task's store; its return value comes back in the
task's `SessionResult`, beside each symbol's `SymbolSummary`.

Results come back in plan order (by date, then by symbol group) and are the same, field for field (timings
aside), whatever the engine and the number of workers: each task's outcome depends on its plan entry and the
repository only. A task that raises does not stop the others: by default its `SessionResult` carries a
`TaskFailure` (the date, the symbols, the exception type, message and traceback text); with
``on_error="raise"`` a `ParallelReplayError` listing every failure is raised once all tasks are done.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import os
import pickle
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import attrs

from ._calendar import SessionClock
from ._managers import (
    DataManager,
    ReplayError,
    ReplayReport,
    SessionSummary,
    SymbolSummary,
)
from ._models import Bar, SessionDataError
from ._parquet import ParquetBarRepository
from ._repository import (
    BarRepository,
    CsvBarRepository,
    IndexedBarRepository,
    SqliteBarRepository,
    time_range_of,  # the same existence probe DataManager.replay uses
)
from .core.store import SessionData

__all__ = [
    "ParallelReplayError",
    "RepositorySpec",
    "SessionFunction",
    "SessionResult",
    "SessionTask",
    "TaskFailure",
    "plan_sessions",
    "replay_many",
    "to_replay_report",
]

logger = logging.getLogger("sessiondata.parallel")
_ONE_DAY = timedelta(days=1)

SessionFunction = Callable[[SessionData, date, tuple[str, ...]], Any]
"""``fn(store, date, symbols)``: run in the worker over a task's store once its replay is done."""

# Classes below have a field named `date`; inside their bodies the type is spelled `_Date`.
_Date = date


# --------------------------------------------------------------------------------------------- plan


@attrs.frozen(slots=True)
class RepositorySpec:
    """Where a worker reopens the repository: ``kind`` ``"sqlite"`` (a file), ``"csv"`` (a directory) or
    ``"parquet"`` (a Parquet file or dataset directory).

    Picklable, so it crosses process and machine boundaries; on a cluster the path must name the same data
    on every worker (a shared or replicated file system).
    """

    kind: Literal["sqlite", "csv", "parquet"]
    path: str

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("sqlite", "csv", "parquet"):
            raise ValueError(f"repository kind must be 'sqlite', 'csv' or 'parquet', got {self.kind!r}")
        if not isinstance(self.path, str) or not self.path:
            raise ValueError(f"repository path must be a non-empty string, got {self.path!r}")

    @classmethod
    def of(cls, repository: object) -> RepositorySpec | None:
        """The spec of ``repository``: a `SqliteBarRepository`, a `CsvBarRepository`, a spec, a
        ``(kind, path)`` tuple, or a path (a directory means CSV files, a file a SQLite repository).
        ``None`` for any other object (an in-memory or user-made repository, which cannot be reopened by
        path). O(1) plus one ``stat`` for a bare path."""
        if isinstance(repository, RepositorySpec):
            return repository
        if isinstance(repository, SqliteBarRepository):
            return cls("sqlite", os.fspath(repository.path))
        if isinstance(repository, CsvBarRepository):
            return cls("csv", os.fspath(repository.directory))
        if isinstance(repository, ParquetBarRepository):
            return cls("parquet", os.fspath(repository.path))
        if isinstance(repository, tuple) and len(repository) == 2:
            kind, path = repository
            if not isinstance(path, (str, os.PathLike)):
                raise ValueError(f"repository path must be a path, got {path!r}")
            return cls(kind, os.fspath(path))
        if isinstance(repository, (str, os.PathLike)):
            path = Path(repository)
            if path.is_dir():
                return cls("csv", os.fspath(path))
            if path.is_file():
                return cls("sqlite", os.fspath(path))
            raise FileNotFoundError(f"no such repository file or directory: {path}")
        return None

    def open(self) -> BarRepository:
        """A new repository over the spec's file or directory. Raises `FileNotFoundError` when it is gone.
        O(1) for SQLite, O(files) to list a CSV directory or a Parquet dataset (files are read on first
        use)."""
        if self.kind == "csv":
            return CsvBarRepository(self.path)
        if self.kind == "parquet":
            return ParquetBarRepository(self.path)
        if not Path(self.path).is_file():  # SqliteBarRepository would create an empty file
            raise FileNotFoundError(f"no such SQLite repository: {self.path}")
        # Tasks only read: read-only, so a repository on a read-only mount (or share) works too.
        return SqliteBarRepository(self.path, read_only=True)


@attrs.frozen(slots=True)
class SessionTask:
    """One unit of work: replay ``trailing`` days then ``date`` for ``symbols`` into a fresh store.

    ``index`` is the task's place in the plan (date order, then group order): results come back in it.
    """

    index: int
    date: date
    symbols: tuple[str, ...]
    trailing: tuple[_Date, ...] = ()

    @property
    def days(self) -> tuple[_Date, ...]:
        """Every day the task replays, oldest first (the trailing days, then `date`)."""
        return (*self.trailing, self.date)


def _check_symbols(symbols: Iterable[str]) -> tuple[str, ...]:
    if isinstance(symbols, str):
        raise ValueError(f"symbols must be a sequence of symbols, not one string: {symbols!r}")
    out: list[str] = []
    for s in symbols:
        if not isinstance(s, str) or not s.strip():
            raise ValueError(f"a symbol must be a non-empty string, got {s!r}")
        out.append(s.strip().upper())
    if not out:
        raise ValueError("no symbols to replay")
    dupes = sorted({s for s in out if out.count(s) > 1})
    if dupes:
        raise ValueError(f"symbols listed more than once: {', '.join(dupes)}")
    return tuple(out)


def _check_dates(dates: Iterable[date]) -> list[date]:
    days = list(dates)
    for d in days:
        # datetime is a date subclass: a timestamp here is a mistake, not a session date.
        if not isinstance(d, date) or isinstance(d, datetime):
            raise ValueError(f"dates must be datetime.date objects, got {d!r}")
    return sorted(set(days))


def _store_from(options: Mapping[str, Any] | None) -> SessionData:
    try:
        return SessionData(**dict(options or {}))
    except TypeError as exc:  # an unknown keyword: an argument error like any other
        raise ValueError(f"bad store_options: {exc}") from exc


def _available_dates(repo: BarRepository, store: SessionData, symbols: Sequence[str]) -> list[date]:
    """The session dates holding bars of any of ``symbols``, ascending."""
    if not isinstance(repo, IndexedBarRepository):
        return DataManager(store, repository=repo).session_dates(symbols)
    clock = store.session_clock
    found: set[date] = set()
    for symbol in symbols:
        found.update(repo.dates(symbol))
    # A bar on the evening before an overnight session's date (CME: Sunday evening for Monday) is that
    # session's: the next date is a candidate too when its session opens the evening before.
    found.update([d + _ONE_DAY for d in found if (h := clock.hours(d + _ONE_DAY)) is not None and h[0] < 0])
    return sorted(d for d in found if clock.hours(d) is not None)


def plan_sessions(
    repository: object,
    symbols: Sequence[str],
    dates: Iterable[date] | None = None,
    *,
    group_size: int | None = None,
    store_options: Mapping[str, Any] | None = None,
) -> list[SessionTask]:
    """Split a replay of ``symbols`` over ``dates`` into `SessionTask` s, in date order then group order.

    ``repository``: anything `RepositorySpec.of` takes, or a repository object. ``dates=None`` means every
    session date the repository holds bars on for any of the symbols. ``group_size``: symbols per task, in
    the order given (``None``: all of them in one group, so one task per date). ``store_options``: the
    `SessionData` keywords each task's store is built with; its ``historical_bars_trailing_days`` (k) gives
    each task the k latest dates before its own on which the repository holds bars of the group's symbols
    (fewer near the start of the data).

    Raises `ValueError` for bad arguments and `ReplayError` for a symbol the repository holds nothing for.
    A date without bars of a group's symbols still makes a task (its result has no summaries).

    Cost: one ``time_range`` per symbol; with trailing days or ``dates=None``, also one ``dates(symbol)``
    per symbol (a scan of the symbol's rows in SQLite; a CSV symbol is read once). Runs in the caller's
    thread; any thread may call it.
    """
    wanted = _check_symbols(symbols)
    if group_size is not None and (
        not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1
    ):
        raise ValueError(f"group_size must be a whole number >= 1 or None, got {group_size!r}")
    store = _store_from(store_options)
    repo = _as_repository(repository)
    try:
        return _plan(repo, store, wanted, dates, group_size or len(wanted))
    finally:
        if repo is not repository and isinstance(repo, SqliteBarRepository):
            repo.close()


def _plan(
    repo: BarRepository, store: SessionData, wanted: tuple[str, ...], dates: Iterable[date] | None, size: int
) -> list[SessionTask]:
    for symbol in wanted:
        if time_range_of(repo, symbol) is None:
            raise ReplayError(f"unknown symbol {symbol!r}: the repository holds no 1-minute bars for it")
    groups = [wanted[i : i + size] for i in range(0, len(wanted), size)]
    trailing = store.historical_bars_trailing_days
    need_available = trailing > 0 or dates is None
    available = [_available_dates(repo, store, g) if need_available else [] for g in groups]
    if dates is None:
        days = sorted(set().union(*map(set, available)))
        if not days:
            raise ReplayError(f"no session dates with bars for {', '.join(wanted)}")
    else:
        days = _check_dates(dates)
    tasks: list[SessionTask] = []
    for day in days:
        for group, known in zip(groups, available, strict=True):
            before = [d for d in known if d < day][-trailing:] if trailing else []
            tasks.append(SessionTask(len(tasks), day, group, tuple(before)))
    logger.debug("planned %d task(s): %d date(s) x %d group(s)", len(tasks), len(days), len(groups))
    return tasks


def _as_repository(repository: object) -> BarRepository:
    spec = RepositorySpec.of(repository)
    if spec is not None and not isinstance(
        repository, (SqliteBarRepository, CsvBarRepository, ParquetBarRepository)
    ):
        return spec.open()
    if not isinstance(repository, BarRepository):
        raise ValueError(
            f"repository must be a bar repository, a RepositorySpec, ('sqlite'|'csv', path) or a path, "
            f"got {type(repository).__name__}"
        )
    return repository


# ------------------------------------------------------------------------------------------- results


@attrs.frozen(slots=True)
class TaskFailure:
    """Why a task failed: its date and symbols, the exception's type (qualified name) and message, and the
    formatted traceback (from the process that raised; not part of equality)."""

    date: date
    symbols: tuple[str, ...]
    exc_type: str
    message: str
    traceback: str = attrs.field(default="", eq=False, repr=False)

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {','.join(self.symbols)}: {self.exc_type}: {self.message}"

    @classmethod
    def from_exception(cls, task: SessionTask, exc: BaseException) -> TaskFailure:
        """The failure of ``task`` that raised ``exc`` (unwrapping the worker's transport error)."""
        if isinstance(exc, _TaskRaised):
            return exc.failure
        kind = type(exc)
        return cls(
            task.date,
            task.symbols,
            f"{kind.__module__}.{kind.__qualname__}",
            str(exc),
            "".join(traceback.format_exception(kind, exc, exc.__traceback__)),
        )


@attrs.frozen(slots=True)
class SessionResult:
    """What one task produced.

    ``summaries``: each symbol's `SymbolSummary` for ``date`` (symbols without bars that day are absent;
    empty when none had any, or when the task failed). ``value``: ``fn(store, date, symbols)``'s return
    value (``None`` without ``fn``, when the date had no bars, or on failure). ``items``/``bars``: stream
    items and bars delivered on ``date`` (trailing days not counted); ``upkeep_faults``: the upkeep
    thread's faults over the task. ``error``: the `TaskFailure`, or ``None``. ``seconds`` (the task's
    wall-clock time in its worker) is not part of equality; everything else is deterministic.
    """

    date: date
    symbols: tuple[str, ...]
    trailing: tuple[_Date, ...] = ()
    summaries: dict[str, SymbolSummary] = attrs.Factory(dict)
    value: Any = None
    items: int = 0
    bars: int = 0
    upkeep_faults: int = 0
    error: TaskFailure | None = None
    seconds: float = attrs.field(default=0.0, eq=False)

    @property
    def ok(self) -> bool:
        """True when the task completed (even if the date had no bars)."""
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``value`` is included as is; it must be JSON-ready itself to be dumped)."""
        return {
            "date": self.date.isoformat(),
            "symbols": {s: v.as_dict() for s, v in self.summaries.items()},
            "group": list(self.symbols),
            "trailing": [d.isoformat() for d in self.trailing],
            "items": self.items,
            "bars": self.bars,
            "upkeep_faults": self.upkeep_faults,
            "seconds": self.seconds,
            "value": self.value,
            "error": None if self.error is None else str(self.error),
        }


class ParallelReplayError(SessionDataError, RuntimeError):
    """Some tasks failed (raised by ``replay_many(..., on_error="raise")`` once every task is done, and by
    `to_replay_report`). ``failures``: the `TaskFailure` s in plan order; ``results``: every result."""

    def __init__(self, results: Sequence[SessionResult]) -> None:
        self.results = list(results)
        self.failures = [r.error for r in self.results if r.error is not None]
        shown = "; ".join(str(f) for f in self.failures[:5])
        more = f" (and {len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        super().__init__(f"{len(self.failures)} of {len(self.results)} session task(s) failed: {shown}{more}")


class _TaskRaised(SessionDataError, RuntimeError):
    """Carries a task's `TaskFailure` out of a worker as a raised exception, so that the engine sees the
    task fail (and Dask may retry it), and pickles whatever the original exception was."""

    def __init__(self, failure: TaskFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure

    def __reduce__(self) -> tuple[type[_TaskRaised], tuple[TaskFailure]]:
        return (type(self), (self.failure,))


# ---------------------------------------------------------------------------------------- the worker


@attrs.frozen(slots=True)
class _Config:
    """The per-call settings every task of a `replay_many` call shares (picklable)."""

    store_options: Mapping[str, Any]
    extended_hours: bool
    drop_minutes: int
    seed: int
    upkeep: bool
    upkeep_period: float


class _OpenedRepositories:
    """Worker-process cache of opened repositories, keyed by (call token, spec): a process that runs many
    tasks of one call opens the file once (a CSV symbol is then parsed once), and a later call never sees a
    stale copy. Bounded, since a long-lived Dask worker serves many calls. An evicted repository is closed
    as soon as no task is using it (at once if idle, else when its last lease ends), so a long-lived worker
    does not keep file handles or SQLite connections open until the GC finds them."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # Guards both dicts: Dask runs tasks in threads of one process.
        self._lock = threading.Lock()
        self._open: collections.OrderedDict[tuple[str, RepositorySpec], BarRepository] = (
            collections.OrderedDict()
        )
        self._leases: dict[int, int] = {}  # id(repo) -> tasks using it (evicted ones included)

    @contextlib.contextmanager
    def lease(self, source: RepositorySpec | BarRepository, token: str) -> Iterator[BarRepository]:
        """The repository for ``source`` for the duration of the block (opened on first use). O(1);
        thread-safe; waits only for the cache's lock (never while a repository is being read)."""
        if not isinstance(source, RepositorySpec):
            yield source
            return
        key = (token, source)
        with self._lock:
            repo = self._open.get(key)
            if repo is None:
                repo = self._open[key] = source.open()
            else:
                self._open.move_to_end(key)
            self._leases[id(repo)] = self._leases.get(id(repo), 0) + 1
            evicted = self._evict()
        _close_all(evicted)
        try:
            yield repo
        finally:
            with self._lock:
                left = self._leases[id(repo)] - 1
                idle = left == 0 and repo not in self._open.values()
                if left:
                    self._leases[id(repo)] = left
                else:
                    del self._leases[id(repo)]
            if idle:
                _close_all([repo])

    def _evict(self) -> list[BarRepository]:
        # Lock held. The oldest entries past capacity leave the cache; the idle ones are returned for closing.
        idle = []
        while len(self._open) > self._capacity:
            _, repo = self._open.popitem(last=False)
            if not self._leases.get(id(repo)):
                idle.append(repo)
        return idle

    def clear(self) -> None:
        """Empty the cache, closing what no task is using (the rest closes when its last lease ends).
        O(capacity); thread-safe."""
        with self._lock:
            idle = [r for r in self._open.values() if not self._leases.get(id(r))]
            self._open.clear()
        _close_all(idle)

    def __len__(self) -> int:
        return len(self._open)


def _close_all(repos: list[BarRepository]) -> None:
    for repo in repos:
        close = getattr(repo, "close", None)  # the protocol does not require one
        if callable(close):
            close()


_OPENED = _OpenedRepositories(capacity=4)


class _DayCounter:
    """Counts the stream items and bars delivered from the task's own date on (not its trailing days): from
    the start of the date's range, i.e. from the evening before for an overnight session."""

    def __init__(self, day: date, clock: SessionClock) -> None:
        self._naive = clock.date_bounds(day)[0]
        self._aware = self._naive.replace(tzinfo=clock.tz)
        self.items = 0
        self.bars = 0

    def __call__(self, item: Any) -> None:
        ts = item.timestamp
        if ts >= (self._naive if ts.tzinfo is None else self._aware):
            self.items += 1
            if type(item) is Bar:
                self.bars += 1


def _run_task(
    task: SessionTask,
    source: RepositorySpec | BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    token: str,
) -> SessionResult:
    """Replay one task into a fresh store and run ``fn`` over it (in whichever process runs it)."""
    began = time.perf_counter()
    try:
        with _OPENED.lease(source, token) as repo:
            return _replay_task(task, repo, config, fn, began)
    except Exception as exc:
        raise _TaskRaised(TaskFailure.from_exception(task, exc)) from exc


def _replay_task(
    task: SessionTask,
    repo: BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    began: float,
) -> SessionResult:
    store = SessionData(**dict(config.store_options))
    counter = _DayCounter(task.date, store.session_clock)
    report: ReplayReport | None
    try:
        report = DataManager(store, repository=repo).replay(
            task.symbols,
            task.days,
            extended_hours=config.extended_hours,
            drop_minutes=config.drop_minutes,
            seed=config.seed,
            upkeep=config.upkeep,
            upkeep_period=config.upkeep_period,
            on_item=counter,
        )
    except ReplayError:
        # No bars at all on the task's days is a result (nothing to summarize), not a failure; the
        # planner checked the symbols, but the repository may have changed since.
        if any(time_range_of(repo, s) is None for s in task.symbols):
            raise
        report = None
    session: SessionSummary | None = None
    if report is not None:
        session = next((s for s in report.sessions if s.date == task.date), None)
    value = fn(store, task.date, task.symbols) if fn is not None and session is not None else None
    return SessionResult(
        date=task.date,
        symbols=task.symbols,
        trailing=task.trailing,
        summaries=dict(session.symbols) if session is not None else {},
        value=value,
        items=counter.items,
        bars=counter.bars,
        upkeep_faults=report.upkeep_faults if report is not None else 0,
        seconds=time.perf_counter() - began,
    )


# ------------------------------------------------------------------------------------------ engines


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _failed(task: SessionTask, exc: BaseException) -> SessionResult:
    failure = TaskFailure.from_exception(task, exc)
    logger.warning("session task failed: %s", failure)
    return SessionResult(date=task.date, symbols=task.symbols, trailing=task.trailing, error=failure)


def _run_inline(
    tasks: Sequence[SessionTask],
    source: RepositorySpec | BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    token: str,
    done: Callable[[SessionTask, SessionResult], None],
) -> None:
    for task in tasks:
        try:
            result = _run_task(task, source, config, fn, token)
        except Exception as exc:
            result = _failed(task, exc)
        done(task, result)


def _run_pool(
    tasks: Sequence[SessionTask],
    source: RepositorySpec | BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    token: str,
    done: Callable[[SessionTask, SessionResult], None],
    workers: int,
    mp_context: str,
) -> None:
    context = multiprocessing.get_context(mp_context)
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        futures: dict[Future[SessionResult], SessionTask] = {}
        try:
            for task in tasks:
                futures[pool.submit(_run_task, task, source, config, fn, token)] = task
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # the task's own failure, or the pool broke (a worker died)
                    result = _failed(futures[future], exc)
                done(futures[future], result)
        except BaseException:
            # Interrupted (or `on_result` raised): do not start what is still queued.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _run_dask(
    tasks: Sequence[SessionTask],
    source: RepositorySpec | BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    token: str,
    done: Callable[[SessionTask, SessionResult], None],
    client: Any,
    retries: int,
) -> None:
    import distributed  # type: ignore[import-not-found,unused-ignore]  # the optional extra, checked by the caller

    by_key = {f"sessiondata-replay-{t.date.isoformat()}-{t.index}-{token}": t for t in tasks}
    futures = client.map(
        _run_task,
        tasks,
        key=list(by_key),
        source=source,
        config=config,
        fn=fn,
        token=token,
        retries=retries,
        pure=False,
    )
    try:
        for future in distributed.as_completed(futures):  # type: ignore[no-untyped-call,unused-ignore]
            task = by_key[future.key]
            try:
                result = future.result()
            except Exception as exc:  # the task's failure after its retries, or a lost (killed) worker
                result = _failed(task, exc)
            done(task, result)
    finally:
        client.cancel(futures)  # releases the results on the cluster (a no-op for finished futures' data)


def _check_picklable(what: str, obj: object, dask: bool) -> None:
    """Fail before submitting anything, with a message that says what to do, rather than per task."""
    try:
        if dask:
            import cloudpickle  # type: ignore[import-untyped,import-not-found,unused-ignore]

            cloudpickle.dumps(obj)
        else:
            pickle.dumps(obj)
    except Exception as exc:
        hint = (
            "use workers=1, or a SQLite file or CSV directory"
            if what == "the repository"
            else "define it at the top level of an importable module (not a lambda or a nested function)"
        )
        raise ValueError(f"{what} must be picklable to run in worker processes ({hint}): {exc}") from exc


def replay_many(
    repository: object,
    symbols: Sequence[str],
    dates: Iterable[date] | None = None,
    fn: SessionFunction | None = None,
    *,
    client: Any = None,
    workers: int | None = None,
    group_size: int | None = None,
    store_options: Mapping[str, Any] | None = None,
    extended_hours: bool = False,
    drop_minutes: int = 0,
    seed: int = 0,
    upkeep: bool = True,
    upkeep_period: float = 1.0,
    retries: int = 0,
    on_error: Literal["collect", "raise"] = "collect",
    on_result: Callable[[SessionResult], None] | None = None,
    mp_context: str = "spawn",
) -> list[SessionResult]:
    """Replay ``symbols`` over ``dates``, one `SessionTask` per date and symbol group, in parallel.

    Planning (``dates``, ``group_size``, ``store_options``) is `plan_sessions`'s. Each task builds
    ``SessionData(**store_options)``, replays its trailing days and its date with `DataManager.replay`
    (``extended_hours``, ``drop_minutes``, ``seed``, ``upkeep``, ``upkeep_period`` as there), then calls
    ``fn(store, date, symbols)`` if the date had bars. Returns one `SessionResult` per task, in plan order
    (date, then group), identical whatever the engine and number of workers.

    Engines:

    * ``client=None``: a `concurrent.futures.ProcessPoolExecutor` of ``workers`` processes (default: the
      CPUs this process may use), started with ``mp_context`` (``"spawn"`` by default: safe while the caller
      runs threads, but a script must guard its entry point with ``if __name__ == "__main__":``). ``fn``
      must be picklable (defined at a module's top level). ``workers=1`` runs every task in the calling
      thread instead, with no pickling (and any repository object, e.g. an `InMemoryBarRepository`).
    * ``client``: a ``distributed.Client`` (``pip install 'sessiondata[dask]'``); tasks are submitted with
      ``client.map`` and ``retries`` is Dask's per-task retry count. ``fn`` travels by cloudpickle. The
      repository path must be readable by every worker.

    The repository reaches worker processes as a `RepositorySpec` (a SQLite file or CSV directory, reopened
    there), or pickled as is for other picklable repository objects.

    Failures: a task that raises (in its replay or in ``fn``) or whose worker dies is reported, the other
    tasks complete. ``on_error="collect"`` (default) returns its `SessionResult` with ``error`` set;
    ``on_error="raise"`` raises `ParallelReplayError` (with every result and failure) once all are done.
    ``on_result`` is called in the calling thread with each result as it arrives (completion order), e.g.
    for a progress display; if it raises, queued tasks are cancelled and the exception propagates.

    Raises `ValueError` for bad arguments and `ReplayError` for an unknown symbol, before running anything.

    Cost: the tasks' replays (O(bars) each) spread over the workers, plus a process start per pool worker
    (a few tenths of a second with ``spawn``) and one pickled task and result per task. Blocks the calling
    thread until every task is done; any thread may call it, and concurrent calls are independent.
    """
    if on_error not in ("collect", "raise"):
        raise ValueError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
    if fn is not None and not callable(fn):
        raise ValueError(f"fn must be callable or None, got {fn!r}")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
    if not isinstance(drop_minutes, int) or isinstance(drop_minutes, bool) or drop_minutes < 0:
        raise ValueError(f"drop_minutes must be a whole number >= 0, got {drop_minutes!r}")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1 or None, got {workers!r}")
    if client is not None:
        if workers is not None:
            raise ValueError("give either workers (a local process pool) or client (Dask), not both")
        _check_client(client)
    elif retries:
        raise ValueError("retries need a Dask client: a local process pool has no retry mechanism")
    if mp_context not in multiprocessing.get_all_start_methods():
        raise ValueError(
            f"mp_context must be one of {multiprocessing.get_all_start_methods()}, got {mp_context!r}"
        )
    options = dict(store_options or {})
    spec = RepositorySpec.of(repository)
    repo = _as_repository(repository)
    try:
        tasks = plan_sessions(repo, symbols, dates, group_size=group_size, store_options=options)
        config = _Config(
            options, bool(extended_hours), drop_minutes, seed, bool(upkeep), float(upkeep_period)
        )
        inline = client is None and (workers == 1 or not tasks)
        # In this process the repository opened for planning serves every task; elsewhere a worker reopens
        # it from its spec, or unpickles a repository object that has no spec.
        source: RepositorySpec | BarRepository = repo if inline or spec is None else spec
        if not inline:
            _check_picklable("the repository", source, client is not None)
            _check_picklable("fn", fn, client is not None)
            _check_picklable("store_options", options, client is not None)
        return _run(
            tasks, source, config, fn, client, workers, retries, on_error, on_result, mp_context, inline
        )
    finally:
        if repo is not repository and isinstance(repo, SqliteBarRepository):
            repo.close()


def _run(
    tasks: list[SessionTask],
    source: RepositorySpec | BarRepository,
    config: _Config,
    fn: SessionFunction | None,
    client: Any,
    workers: int | None,
    retries: int,
    on_error: str,
    on_result: Callable[[SessionResult], None] | None,
    mp_context: str,
    inline: bool,
) -> list[SessionResult]:
    token = uuid.uuid4().hex
    results: list[SessionResult | None] = [None] * len(tasks)

    def done(task: SessionTask, result: SessionResult) -> None:
        results[task.index] = result
        if on_result is not None:
            on_result(result)

    began = time.perf_counter()
    if inline:
        _run_inline(tasks, source, config, fn, token, done)
    elif client is None:
        n_workers = workers if workers is not None else _default_workers()
        _run_pool(tasks, source, config, fn, token, done, n_workers, mp_context)
    else:
        _run_dask(tasks, source, config, fn, token, done, client, retries)
    out = [r for r in results if r is not None]
    if len(out) != len(tasks):  # every engine reports every task; a hole would be a bug here
        raise RuntimeError(f"{len(tasks) - len(out)} task(s) reported no result")
    failed = sum(1 for r in out if r.error is not None)
    logger.info(
        "replayed %d session task(s) in %.2f s (%d failed)", len(out), time.perf_counter() - began, failed
    )
    if failed and on_error == "raise":
        raise ParallelReplayError(out)
    return out


def _check_client(client: Any) -> None:
    try:
        import distributed  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "a Dask client needs the optional package distributed: pip install 'sessiondata[dask]'"
        ) from exc
    if not isinstance(client, distributed.Client):
        raise ValueError(f"client must be a distributed.Client, got {type(client).__name__}")


def to_replay_report(
    results: Sequence[SessionResult],
    *,
    seconds: float,
    drop_minutes: int = 0,
    extended_hours: bool = False,
) -> ReplayReport:
    """One `ReplayReport` (as `DataManager.replay` gives) from ``replay_many``'s results: the groups of each
    date merged into one `SessionSummary` per date (dates without bars left out), items, bars and upkeep
    faults summed, ``seconds`` the caller's wall-clock time of the whole run.

    Raises `ParallelReplayError` if any result failed. O(results × symbols). Any thread.
    """
    if any(r.error is not None for r in results):
        raise ParallelReplayError(results)
    by_date: dict[date, dict[str, SymbolSummary]] = {}
    for r in sorted(results, key=lambda r: r.date):
        if r.summaries:
            by_date.setdefault(r.date, {}).update(r.summaries)
    return ReplayReport(
        sessions=tuple(SessionSummary(d, s) for d, s in by_date.items()),
        items=sum(r.items for r in results),
        bars=sum(r.bars for r in results),
        seconds=seconds,
        drop_minutes=drop_minutes,
        extended_hours=extended_hours,
        upkeep_faults=sum(r.upkeep_faults for r in results),
    )
