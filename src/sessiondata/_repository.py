"""Bar repositories: where the upkeep thread and the command line fetch stored bars from.

`BarRepository` is the protocol: one method, `get_bars`, that every repository has. `IndexedBarRepository`
extends it with the two methods a replay plans with, `time_range` and `dates`; a repository that has them
(all the built-in ones do) is used through them, one that has only `get_bars` still works: `time_range_of`
and `dates_of` answer for it from range queries. The implementations share the protocol's semantics:

* `SqliteBarRepository`: the embedded default, one SQLite file (stdlib `sqlite3`, WAL mode), with bulk
  import from CSV files and from iterables of `Bar`.
* `CsvBarRepository`: a read-only directory of ``SYMBOL_*.csv`` files, loaded lazily per symbol.
* `InMemoryBarRepository`: bars held in memory, for tests and users' own data.
* `ParquetBarRepository` (in `sessiondata._parquet`, extra ``sessiondata[parquet]``): a Parquet file or
  dataset, read-only.

Semantics common to all three:

* ``get_bars(symbol, start, end, interval=1)`` returns the bars with ``start <= timestamp < end`` in time
  order, as a new list. Symbols are upper-cased; an unknown symbol gives ``[]``.
* Bars are kept per ``(symbol, interval)``; ``interval`` is the bar length in minutes and is only a key
  here (nothing is aggregated).
* Timestamps compare as Python compares them: aware timestamps by instant (so a range query is right across
  UTC offsets and daylight-saving changes), naive ones by wall-clock value. One symbol's bars are all naive
  or all aware (mixing is an `InvalidDataError`), and ``start``/``end`` must be of the same kind as the
  stored bars (a `ValueError` otherwise, since Python cannot compare the two).
* Writes are idempotent: a bar whose ``(symbol, interval, timestamp)`` is already stored is counted as a
  duplicate and the stored bar is kept (first write wins; a repository is an archive, corrections belong in
  the store). Each write is all or nothing.
* Bad arguments raise `ValueError`, bad data `InvalidDataError` (`CsvFormatError` for a CSV file, with its
  line number); either way nothing is written. SQLite's own errors never escape: a file that is not a (sound)
  SQLite database is an `InvalidDataError`, a storage failure (locked, read-only, I/O) a `RepositoryError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, timezone
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import attrs
from sortedcontainers import SortedDict

from ._csvio import CsvBarReader, PathLike, RejectedRow, interval_from_filename, symbol_from_filename
from ._models import Bar, InvalidDataError, SessionDataError, trusted_bar
from ._zones import IsoParser

__all__ = [
    "BarRepository",
    "CsvBarRepository",
    "ImportReport",
    "InMemoryBarRepository",
    "IndexedBarRepository",
    "RepositoryError",
    "SqliteBarRepository",
]

logger = logging.getLogger("sessiondata.repository")

_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)


class RepositoryError(SessionDataError, OSError):
    """A repository's storage failed: a database locked past the busy timeout, a read-only file or mount, a
    disk error. The message names the file and SQLite's reason; nothing was written."""


@runtime_checkable
class BarRepository(Protocol):
    """Anything that can answer a half-open range query of stored bars."""

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= timestamp < end``, oldest first (a new list).

        What the library expects of an implementation: O(log n + k) for k bars returned (the upkeep asks
        for short gaps often), and callable from any thread (the upkeep thread and a replay's worker call
        it while other threads may write to the repository)."""
        ...


@runtime_checkable
class IndexedBarRepository(BarRepository, Protocol):
    """A `BarRepository` that also says what it holds, so a replay can plan without probing.

    Every built-in repository is one. A repository with only `get_bars` is still accepted everywhere; a
    replay then finds a symbol's range with two wide range queries and treats every day between the first
    and last bar as a candidate session.
    """

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        """``(first, last)`` stored timestamps of ``symbol`` in the stored style, or ``None``.

        Expected of an implementation: O(log n) or better, callable from any thread."""
        ...

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        """The dates holding bars of ``symbol``, ascending, as written in the timestamps' own offsets.

        Expected of an implementation: O(n) at worst (called once per symbol when a replay is planned),
        callable from any thread."""
        ...


def time_range_of(repo: BarRepository, symbol: str) -> tuple[datetime, datetime] | None:
    """``repo.time_range(symbol)`` for an `IndexedBarRepository`, else a probe of its whole range (naive
    bounds, then aware ones), or ``None`` when it holds nothing for ``symbol``."""
    if isinstance(repo, IndexedBarRepository):
        return repo.time_range(symbol)
    for low, high in (
        (datetime(1900, 1, 1), datetime(2200, 1, 1)),
        (datetime(1900, 1, 1).astimezone(), datetime(2200, 1, 1).astimezone()),
    ):
        try:
            bars = repo.get_bars(symbol, low, high)
        except (ValueError, TypeError):
            continue
        if bars:
            return bars[0].timestamp, bars[-1].timestamp
    return None


def dates_of(repo: BarRepository, symbol: str) -> list[date] | None:
    """``repo.dates(symbol)`` for an `IndexedBarRepository`, else ``None`` (the caller falls back to the
    days between `time_range_of`'s first and last bar)."""
    return repo.dates(symbol) if isinstance(repo, IndexedBarRepository) else None


@attrs.frozen(slots=True)
class ImportReport:
    """What one write (``add_bars`` or ``import_csv``) did. Immutable: safe to share between threads.

    ``added``: bars stored. ``duplicates``: bars whose ``(symbol, interval, timestamp)`` was already stored
    (or appeared earlier in the same write); they were not stored again. ``rejected``: bad rows skipped
    (only with ``skip_bad_rows=True``); ``rejected_rows`` says which lines and why.

    Attributes:
        added: Bars stored.
        duplicates: Bars not stored again because their key was already stored (or came earlier in the write).
        rejected: Bad rows skipped (only with ``skip_bad_rows=True``).
        rejected_rows: Which rows were skipped, and why.
    """

    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_rows: tuple[RejectedRow, ...] = ()

    @property
    def rejected_lines(self) -> tuple[int, ...]:
        """The 1-based line numbers of the rejected rows. O(rejected)."""
        return tuple(r.line for r in self.rejected_rows)


# --- argument checks shared by the implementations ---------------------------------------------------------


def _check_symbol(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"symbol must be a non-empty str, got {symbol!r}")
    return symbol.strip().upper()


def _check_interval(interval: object) -> int:
    if type(interval) is not int or interval < 1:
        raise ValueError(f"interval must be a positive int (minutes), got {interval!r}")
    return interval


def _is_aware(ts: datetime) -> bool:
    return ts.utcoffset() is not None


def _check_range(start: object, end: object) -> bool:
    """Validate the bounds; returns whether they are timezone-aware."""
    if not isinstance(start, datetime):
        raise ValueError(f"start must be a datetime, got {start!r}")
    if not isinstance(end, datetime):
        raise ValueError(f"end must be a datetime, got {end!r}")
    aware = _is_aware(start)
    if aware is not _is_aware(end):
        raise ValueError(
            f"start and end must both be naive or both be timezone-aware, got {start!r}, {end!r}"
        )
    return aware


def _check_kind(symbol: str, stored_aware: bool, query_aware: bool) -> None:
    if stored_aware is not query_aware:
        stored = "timezone-aware" if stored_aware else "naive"
        given = "timezone-aware" if query_aware else "naive"
        raise ValueError(f"{symbol}'s stored bars are {stored}; start and end must be too, got {given} ones")


def _mixing_error(symbol: str, aware: bool) -> InvalidDataError:
    stored = "timezone-aware" if aware else "naive"
    given = "naive" if aware else "timezone-aware"
    return InvalidDataError(
        f"{symbol}'s bars are {stored}; a {given} timestamp cannot be stored beside them (do not mix the two)"
    )


def _time_key(ts: datetime) -> int:
    """The sort key SQLite stores: microseconds since 1970-01-01, of the UTC instant for an aware timestamp
    and of the wall-clock value read as if it were UTC for a naive one."""
    try:
        if ts.utcoffset() is None:
            return (ts - _EPOCH) // _US
        return (ts - _EPOCH_UTC) // _US
    except OverflowError:
        # Only near datetime.min/max (e.g. an open-ended query bound): the same value, in integers.
        offset = ts.utcoffset()
        key = (ts.replace(tzinfo=None) - _EPOCH) // _US
        return key if offset is None else key - offset // _US


# --- the in-memory index shared by InMemoryBarRepository and CsvBarRepository ------------------------------


class _BarIndex:
    """Bars per ``(symbol, interval)`` in `SortedDict`s keyed by timestamp. Not thread-safe by itself."""

    __slots__ = ("_aware", "_series")

    def __init__(self) -> None:
        self._series: dict[tuple[str, int], SortedDict[datetime, Bar]] = {}
        self._aware: dict[str, bool] = {}  # per symbol: are its timestamps timezone-aware?

    def add(self, bars: Iterable[Bar], interval: int) -> ImportReport:
        batch = list(bars)
        kinds: dict[str, bool] = {}
        for bar in batch:  # validate everything first: all or nothing
            if not isinstance(bar, Bar):
                raise InvalidDataError(f"expected a Bar, got {type(bar).__name__}: {bar!r}")
            aware = _is_aware(bar.timestamp)
            known = kinds.setdefault(bar.symbol, self._aware.get(bar.symbol, aware))
            if known is not aware:
                raise _mixing_error(bar.symbol, known)
        added = 0
        for bar in batch:
            series = self._series.get((bar.symbol, interval))
            if series is None:
                series = self._series[bar.symbol, interval] = SortedDict()
            if bar.timestamp not in series:
                series[bar.timestamp] = bar
                added += 1
        self._aware.update(kinds)
        return ImportReport(added=added, duplicates=len(batch) - added)

    def get(self, symbol: str, start: datetime, end: datetime, interval: int) -> list[Bar]:
        query_aware = _check_range(start, end)
        series = self._series.get((symbol, interval))
        if series is None:
            return []
        _check_kind(symbol, self._aware[symbol], query_aware)
        if not start < end:
            return []
        return [series[ts] for ts in series.irange(start, end, inclusive=(True, False))]

    def symbols(self) -> list[str]:
        return sorted(self._aware)

    def time_range(self, symbol: str, interval: int) -> tuple[datetime, datetime] | None:
        series = self._series.get((symbol, interval))
        if not series:
            return None
        return series.peekitem(0)[0], series.peekitem(-1)[0]

    def dates(self, symbol: str, interval: int) -> list[date]:
        series = self._series.get((symbol, interval))
        return sorted({ts.date() for ts in series}) if series else []


class InMemoryBarRepository:
    """Bars held in memory: ``InMemoryBarRepository(bars=(), *, interval=1)``.

    Thread-safety: every method may be called from any thread; one lock guards the index, held
    for O(log n + k) by a read and O(m log n) by a write of m bars.
    """

    def __init__(self, bars: Iterable[Bar] = (), *, interval: int = 1) -> None:
        self._index = _BarIndex()
        self._lock = threading.Lock()  # guards _index: SortedDict is not safe to read while it changes
        self.add_bars(bars, interval=interval)

    def add_bars(self, bars: Iterable[Bar], *, interval: int = 1) -> ImportReport:
        """Store ``bars`` (any symbols) under ``interval``; all or nothing; already-stored timestamps are
        counted as duplicates and kept as they were. O(m log n); waits for the lock. Any thread."""
        interval = _check_interval(interval)
        batch = list(bars)  # outside the lock: the iterable may be slow (e.g. a CSV being read)
        with self._lock:
            return self._index.add(batch, interval)

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= timestamp < end``, oldest first, as a new list.

        O(log n + k); waits only for a running write. Any thread.
        """
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        with self._lock:
            return self._index.get(symbol, start, end, interval)

    def symbols(self) -> list[str]:
        """The stored symbols, sorted. O(s log s). Any thread."""
        with self._lock:
            return self._index.symbols()

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        """``(first, last)`` stored timestamps of ``symbol`` (in its stored style), or ``None``. O(1)."""
        symbol = _check_symbol(symbol)
        with self._lock:
            return self._index.time_range(symbol, _check_interval(interval))

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        """The dates holding bars of ``symbol``, as written in the timestamps' own offsets.

        O(n). Any thread."""
        symbol = _check_symbol(symbol)
        with self._lock:
            return self._index.dates(symbol, _check_interval(interval))


class CsvBarRepository:
    """A read-only directory of bar CSV files: ``CsvBarRepository(directory)``.

    Each ``SYMBOL_*.csv`` file in the directory (not its subdirectories) holds bars of ``SYMBOL``; the
    interval is the file name's ``_<N>m`` part (``SPY_1m.csv``, ``SPY_60m.csv``), 1 when it names none.
    Several files of one symbol and interval are merged (for a timestamp found in more than one, the file
    first in name order wins; within a file, its first row). Each file that repeats a timestamp already
    read is logged as a warning (``sessiondata.repository`` logger) with the count of rows ignored. The
    directory is listed once, when the repository is made; a symbol's files are read and validated on its
    first `get_bars`, then kept in memory. A bad file raises `CsvFormatError`
    from that `get_bars` (and again on the next try; nothing of that symbol is kept).

    Thread-safety: any thread. Reads of a loaded symbol take no lock; a first read loads the symbol under
    one lock, so concurrent first reads load it once and wait for each other.

    Attributes:
        directory: The directory of CSV files, as given.
    """

    def __init__(self, directory: PathLike) -> None:
        self.directory = Path(directory)
        if not self.directory.exists():
            raise FileNotFoundError(f"no such directory: {self.directory}")
        if not self.directory.is_dir():
            raise NotADirectoryError(f"not a directory: {self.directory}")
        files: dict[str, list[Path]] = {}
        for path in sorted(self.directory.iterdir()):
            if not path.is_file() or path.suffix.lower() != ".csv":
                continue
            try:
                symbol = symbol_from_filename(path)
            except ValueError:
                continue
            files.setdefault(symbol, []).append(path)
        self._files = files
        self._loaded: dict[str, _BarIndex] = {}  # written only under _load_lock; read without it
        self._load_lock = threading.Lock()  # guards loading, so each symbol's files are read once

    def symbols(self) -> list[str]:
        """The symbols with at least one file, sorted (whether loaded or not). O(s log s). Any thread."""
        return sorted(self._files)

    def _index(self, symbol: str) -> _BarIndex | None:
        index = self._loaded.get(symbol)
        if index is not None or symbol not in self._files:
            return index
        with self._load_lock:
            index = self._loaded.get(symbol)
            if index is None:
                index = _BarIndex()
                for path in self._files[symbol]:
                    report = index.add(CsvBarReader(path, symbol), interval_from_filename(path) or 1)
                    if report.duplicates:
                        # Not an error (the documented rule keeps the first), but a replay of such a file
                        # would otherwise drop rows without a word.
                        logger.warning(
                            "%s: %d row(s) repeat a timestamp already read for %s; the first read is kept",
                            path,
                            report.duplicates,
                            symbol,
                        )
                logger.debug(
                    "loaded %s from %d file(s) in %s", symbol, len(self._files[symbol]), self.directory
                )
                self._loaded[symbol] = index  # published only once complete
            return index

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= timestamp < end``, oldest first, as a new list.

        O(log n + k) once loaded; the first call for a symbol reads its files, O(rows log rows), holding the
        load lock. Raises `CsvFormatError` for a bad file. Any thread.
        """
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        _check_range(start, end)
        index = self._index(symbol)
        if index is None:
            return []
        return index.get(symbol, start, end, interval)

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        """``(first, last)`` stored timestamps of ``symbol`` (in its stored style), or ``None``.

        O(1) once loaded (the first call for a symbol reads its files). Any thread.
        """
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        index = self._index(symbol)
        return None if index is None else index.time_range(symbol, interval)

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        """The dates holding bars of ``symbol``, as written in the timestamps' own offsets.

        O(n). Any thread."""
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        index = self._index(symbol)
        return [] if index is None else index.dates(symbol, interval)


# --- SQLite -----------------------------------------------------------------------------------------------

_SCHEMA_VERSION = 1

# The check of every rule `Bar` makes that SQLite can decide, on a row's stored values. SQLite orders every
# number below every text and blob (and a comparison with NULL is not true), so ``high < 9e999`` (infinity)
# makes ``high`` a finite number, and through ``open <= high``, ``close <= high``, ``low <= open`` the other
# prices too; ``volume`` likewise. ``ts`` from year 0002 to 9998, as `Bar` wants.
_CHECKED = (
    "(low > 0 AND low <= open AND open <= high AND low <= close AND close <= high AND high < 9e999 "
    "AND volume >= 0 AND volume < 9e999 AND ts >= '0002' AND ts < '9999')"
)

# The table holds the check as a constraint: SQLite refuses any row that fails it, whoever writes (this
# library, whose bars always pass, or another program), so a row read back passes it and becomes a `Bar`
# through `trusted_bar` with no check at all (evaluating it per row costs ~0.2 us, a fifth of reading one).
# The schema version stays 1: a file made before the constraint (same columns, no check) is still this
# library's, and older versions open files made now. Which one a file is, is read from its schema
# (`SqliteBarRepository._open_schema`).
_BARS_TABLE = f"""
CREATE TABLE IF NOT EXISTS bars (
    symbol   TEXT    NOT NULL,
    interval INTEGER NOT NULL,
    ts_key   INTEGER NOT NULL,
    ts       TEXT    NOT NULL,
    open     REAL    NOT NULL,
    high     REAL    NOT NULL,
    low      REAL    NOT NULL,
    close    REAL    NOT NULL,
    volume           NOT NULL,
    PRIMARY KEY (symbol, interval, ts_key),
    CONSTRAINT bar_checked CHECK {_CHECKED}
) WITHOUT ROWID;
"""
_SCHEMA = (
    _BARS_TABLE
    + """
CREATE TABLE IF NOT EXISTS symbols (
    symbol TEXT    NOT NULL PRIMARY KEY,
    aware  INTEGER NOT NULL
) WITHOUT ROWID;
"""
)

_INSERT = (
    "INSERT OR IGNORE INTO bars (symbol, interval, ts_key, ts, open, high, low, close, volume) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RANGE = "FROM bars WHERE symbol = ? AND interval = ? AND ts_key >= ? AND ts_key < ? ORDER BY ts_key"
# A table with the constraint: its rows are checked already.
_SELECT_CHECKED = f"SELECT ts, open, high, low, close, volume {_RANGE}"
# A table made before the constraint: the last column says whether the row passes the check, decided by
# SQLite in C, so that a passing row is built with `trusted_bar` (about half the cost of ``Bar(...)``) and a
# failing one with ``Bar(...)``, which raises the usual `InvalidDataError` naming the field.
_SELECT_UNCHECKED = f"SELECT ts, open, high, low, close, volume, {_CHECKED} {_RANGE}"
# Rows converted per `fetchmany` when streaming (`SqliteBarRepository.iter_bars`): bounded memory, few calls.
# 512 rather than more: a chunk's row tuples and its bars (two objects the cyclic collector tracks per row)
# then stay below the collector's young-generation threshold (2,000), so the rows are mostly freed before a
# collection finds them alive (the main job: 98 -> 59 young collections, 2% fewer instructions than 2048).
_CHUNK = 512

_BUSY_TIMEOUT_S = 30.0

# SQLite's INTEGER is a signed 64-bit integer; a larger Python int cannot be bound (OverflowError).
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class _RangeCursor(sqlite3.Cursor):
    """A cursor over one range query, carrying the (interned, upper-case) symbol its rows belong to and
    the function that makes its rows bars (`_checked_rows_to_bars` or `_rows_to_bars`, by the query)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        symbol: str,
        to_bars: Callable[[str, list[Any], IsoParser], list[Bar]],
    ) -> None:
        super().__init__(conn)
        self.symbol = symbol
        self.to_bars = to_bars


def _checked_rows_to_bars(symbol: str, rows: list[Any], parse: IsoParser) -> list[Bar]:
    """Bars from `_SELECT_CHECKED` rows, every one of which passed the table's constraint when it was
    written, through `trusted_bar`. ``symbol`` is upper-case and interned, as `Bar` makes it; ``parse``
    reads the timestamps (each distinct text once: the other symbols of a replay ask for the same minutes).
    O(rows)."""
    known = parse.lookup
    trusted = trusted_bar
    return [trusted(symbol, known(ts) or parse(ts), o, h, lo, c, v) for ts, o, h, lo, c, v in rows]


def _rows_to_bars(symbol: str, rows: list[Any], parse: IsoParser) -> list[Bar]:
    """Bars from `_SELECT_UNCHECKED` rows: checked rows through `trusted_bar`, the others through
    ``Bar(...)`` (which raises `InvalidDataError` for them). Otherwise as `_checked_rows_to_bars`."""
    known = parse.lookup
    trusted = trusted_bar
    return [
        trusted(symbol, known(ts) or parse(ts), o, h, lo, c, v)
        if ok
        else Bar(symbol, known(ts) or parse(ts), o, h, lo, c, v)
        for ts, o, h, lo, c, v, ok in rows
    ]


@functools.cache
def _checked_table_sql() -> str:
    """The text SQLite keeps in ``sqlite_master`` for a ``bars`` table made by `_BARS_TABLE` (it rewrites
    the statement's head), to recognise the files whose rows the constraint checked. Computed once, in
    memory."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript(_BARS_TABLE)
        sql: str = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'bars'").fetchone()[0]
    return sql


def _unstorable(bar: Bar) -> str | None:
    """Why SQLite cannot store ``bar`` exactly, or ``None`` (the one check for CSV imports and `add_bars`)."""
    volume = bar.volume
    if type(volume) is int and not _INT64_MIN <= volume <= _INT64_MAX:
        return f"volume {volume} does not fit SQLite's 64-bit INTEGER (at most {_INT64_MAX})"
    return None


def _storage_error(path: Path, exc: sqlite3.Error) -> SessionDataError:
    """The library's error for an `sqlite3` one: a plain `DatabaseError` means the file is not a sound SQLite
    database (corrupt, or not a database at all); anything else is a storage failure."""
    if type(exc) is sqlite3.DatabaseError:
        return InvalidDataError(f"{path}: not a usable SQLite bar repository (corrupt?): {exc}")
    return RepositoryError(f"{path}: {exc}")


class SqliteBarRepository:
    """Bars in one SQLite file: ``SqliteBarRepository(path)`` opens it, creating it when it does not exist.

    Storage: table ``bars`` with primary key ``(symbol, interval, ts_key)`` (a clustered ``WITHOUT ROWID``
    table, so a range query is one index seek and a sequential scan). ``ts`` is the timestamp as
    `datetime.isoformat` wrote it, so it reads back with its UTC offset exactly (as a fixed-offset
    `datetime.timezone`; a `zoneinfo` zone is not kept, its offset at that instant is). ``ts_key`` orders
    and ranges the rows: microseconds since 1970-01-01 UTC of the instant for an aware timestamp, so queries
    are right across offsets and DST changes; for a naive timestamp, of its wall-clock value read as if it
    were UTC, which orders naive timestamps as Python does (one symbol never mixes the two: table
    ``symbols`` records which kind each symbol holds). Volumes keep their type (int or float). The table's
    constraint ``bar_checked`` refuses any row `Bar` would refuse (whoever writes it), so reads build rows
    without checking them again; in a file made before that constraint each row is checked as it is read
    (a bad one raises `InvalidDataError`). A program that writes with ``PRAGMA ignore_check_constraints``
    bypasses the constraint, and then its rows are trusted as they are. Reads parse
    each distinct ``ts`` text once (a memo of at most 16,384 texts), so bars of one minute read for several
    symbols share one `datetime`, and aware ones share one zone object per UTC offset: the values
    ``datetime.fromisoformat`` gives, and cheaper comparisons downstream.

    Durability: WAL journal with ``synchronous=NORMAL``: a committed write survives a crash of the process,
    but the last commits may be lost (never corrupted) on a power cut.

    Thread-safety: every method may be called from any thread. Each thread gets its own connection
    (`threading.local`), so reads run in parallel and, in WAL mode, never wait for a writer; each read is
    one statement and sees one committed state. Writes are serialized by one lock (and by SQLite's
    own file lock against other processes, waiting up to ``busy_timeout`` seconds, 30 by default).
    Connections of threads that have ended are closed when the next connection is opened; `close` closes
    all of them, and must not run while other threads are still using the repository (their calls fail
    afterwards with `ValueError`).

    ``read_only=True`` opens an existing file for reading only (a replay): nothing is created or written
    (writes raise `RepositoryError`), and a file on a read-only mount opens too (SQLite cannot make the WAL's
    ``-shm`` index there, so it then reads the file as immutable: nothing else can be writing it).

    Errors: a file that is not a sound SQLite bar repository raises `InvalidDataError` (when opened or when
    a corrupt page is read); a storage failure (locked past the busy timeout, read-only, I/O) raises
    `RepositoryError`. Either way nothing was written.

    Attributes:
        path: The SQLite file.
        read_only: Whether the repository was opened for reading only (``read_only=True``).
    """

    def __init__(
        self, path: PathLike, *, read_only: bool = False, busy_timeout: float = _BUSY_TIMEOUT_S
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"path must be a file path, got {path!r}")
        text = os.fspath(path)
        if text in {":memory:", ""} or text.startswith("file:"):
            raise ValueError(
                f"SqliteBarRepository needs a file path, got {text!r} (use InMemoryBarRepository for memory)"
            )
        self.path = Path(text)
        self.read_only = read_only
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout!r}")
        self._busy_timeout = float(busy_timeout)
        self._uri: str | None = None  # the read-only URI, chosen by the first connection
        self._local = threading.local()
        self._write_lock = threading.Lock()  # serializes this process's write transactions
        self._conns_lock = threading.Lock()  # guards _conns and _closed
        # (thread, connection) for every connection opened, so close() can close them all.
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._closed = False
        self._aware: dict[str, bool] = {}  # cache of table `symbols`; entries never change once written
        # Timestamps read back, by their stored text: a replay's symbols share every minute's text, and bars
        # sharing one `datetime` (and zone object) compare fast in the merge and the upkeep.
        self._parse = IsoParser()
        # Whether table ``bars`` has the check as its constraint (set by `_open_schema`).
        self._checked_table = False
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"no such directory: {self.path.parent}")
        if read_only and not self.path.is_file():
            raise FileNotFoundError(f"no such database file: {self.path}")
        try:
            self._open_schema()
        except sqlite3.Error as exc:
            self.close()
            raise _storage_error(self.path, exc) from exc
        except BaseException:
            self.close()
            raise

    def _open_schema(self) -> None:
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version not in (0, _SCHEMA_VERSION) or (version == 0 and tables - {"bars", "symbols"}):
            raise InvalidDataError(f"{self.path} is an SQLite file but not a sessiondata bar repository")
        if version == 0:
            if self.read_only:
                raise InvalidDataError(f"{self.path} is not a sessiondata bar repository (no bars table)")
            with self._write_lock:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        # Rows of a table made with the check as its constraint are read without checking them again; a
        # table made before (or by anyone else) has each row checked as it is read.
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'bars'").fetchone()
        self._checked_table = row is not None and row[0] == _checked_table_sql()

    # -- connections --

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not self._closed:
            return conn
        with self._conns_lock:
            if self._closed:
                raise ValueError(f"the repository {self.path} is closed")
            # isolation_level=None: no implicit transactions; writes open theirs explicitly.
            # check_same_thread=False only so close() may close it from another thread; otherwise only the
            # owning thread uses it.
            conn = self._connect()
            # Close the connections of threads that have ended: nobody else can be using them.
            alive = []
            for ref, other in self._conns:
                thread = ref()
                if thread is None or not thread.is_alive():
                    other.close()
                else:
                    alive.append((ref, other))
            alive.append((weakref.ref(threading.current_thread()), conn))
            self._conns = alive
        self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        """A new connection (read-write, or read-only as the constructor asked), set up and probed."""
        if not self.read_only:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            return self._probed(conn, "PRAGMA synchronous = NORMAL")
        if self._uri is not None:
            return self._probed(self._open_uri(self._uri), "PRAGMA user_version")
        base = self.path.resolve().as_uri() + "?mode=ro"
        try:
            conn = self._probed(self._open_uri(base), "PRAGMA user_version")
            self._uri = base
        except sqlite3.OperationalError as exc:
            # A read-only mount: SQLite cannot create the WAL's -shm there; nothing can write the file.
            if "unable to open" not in str(exc):
                raise
            self._uri = base + "&immutable=1"
            conn = self._probed(self._open_uri(self._uri), "PRAGMA user_version")
        return conn

    def _open_uri(self, uri: str) -> sqlite3.Connection:
        return sqlite3.connect(
            uri, uri=True, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )

    @staticmethod
    def _probed(conn: sqlite3.Connection, statement: str) -> sqlite3.Connection:
        """``conn`` after running ``statement`` on it (SQLite opens files lazily: this is where an unusable
        file fails); closed if it fails."""
        try:
            conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Close every connection; later calls raise `ValueError`. Idempotent. O(threads).

        Call it once the other threads are done with the repository (see the class docstring).
        """
        with self._conns_lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for _, conn in conns:
            conn.close()

    def __enter__(self) -> SqliteBarRepository:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reads --

    def _stored_aware(self, conn: sqlite3.Connection, symbol: str) -> bool | None:
        aware = self._aware.get(symbol)
        if aware is None:
            row = conn.execute("SELECT aware FROM symbols WHERE symbol = ?", (symbol,)).fetchone()
            if row is None:
                return None
            aware = self._aware[symbol] = bool(row[0])
        return aware

    def get_bars(self, symbol: str, start: datetime, end: datetime, interval: int = 1) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= timestamp < end``, oldest first, as a new list.

        O(log n + k) (one primary-key range scan). Never waits for a writer of this process (WAL); any
        thread.
        """
        cursor = self._range_cursor(symbol, start, end, interval)
        if cursor is None:
            return []
        try:
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc
        finally:
            cursor.close()
        return cursor.to_bars(cursor.symbol, rows, self._parse)

    def iter_bars(
        self, symbol: str, start: datetime, end: datetime, interval: int = 1, *, chunk: int = _CHUNK
    ) -> Iterator[Bar]:
        """`get_bars`, streamed: the same bars, read ``chunk`` rows at a time, so a long range (a replay's
        days) is one query and holds one chunk in memory, not the whole range.

        The query runs when iteration starts, on the iterating thread's connection, and sees one committed
        state; bad arguments raise then, as in `get_bars`. Iterate it in one thread. Each chunk is a list
        and the iterator chains them (no Python frame per bar). O(log n + k) in all; O(chunk) memory.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk!r}")
        return chain.from_iterable(self._chunks(symbol, start, end, interval, chunk))

    def _chunks(
        self, symbol: str, start: datetime, end: datetime, interval: int, chunk: int
    ) -> Iterator[list[Bar]]:
        cursor = self._range_cursor(symbol, start, end, interval)
        if cursor is None:
            return
        try:
            while True:
                try:
                    rows = cursor.fetchmany(chunk)
                except sqlite3.Error as exc:
                    raise _storage_error(self.path, exc) from exc
                if not rows:
                    return
                yield cursor.to_bars(cursor.symbol, rows, self._parse)
        finally:
            cursor.close()

    def _range_cursor(
        self, symbol: str, start: datetime, end: datetime, interval: int
    ) -> _RangeCursor | None:
        """The executed range query of `get_bars` on this thread's connection, or None when nothing can
        match (an unknown symbol, an empty range). Raises as `get_bars` does for bad arguments."""
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        query_aware = _check_range(start, end)
        conn = self._conn()
        try:
            stored_aware = self._stored_aware(conn, symbol)
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc
        if stored_aware is None:
            return None
        _check_kind(symbol, stored_aware, query_aware)
        if not start < end:
            return None
        if self._checked_table:
            cursor = _RangeCursor(conn, sys.intern(symbol), _checked_rows_to_bars)
            select = _SELECT_CHECKED
        else:
            cursor = _RangeCursor(conn, sys.intern(symbol), _rows_to_bars)
            select = _SELECT_UNCHECKED
        try:
            cursor.execute(select, (symbol, interval, _time_key(start), _time_key(end)))
        except sqlite3.Error as exc:
            cursor.close()
            raise _storage_error(self.path, exc) from exc
        return cursor

    def time_range(self, symbol: str, interval: int = 1) -> tuple[datetime, datetime] | None:
        """``(first, last)`` stored timestamps of ``symbol`` (in its stored style), or ``None``.

        O(log n): two primary-key seeks. Any thread.
        """
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        found: list[datetime] = []
        for order in ("ASC", "DESC"):
            row = self._fetch(
                f"SELECT ts FROM bars WHERE symbol = ? AND interval = ? ORDER BY ts_key {order} LIMIT 1",
                (symbol, interval),
            )
            if not row:
                return None
            found.append(self._parse(row[0][0]))
        return found[0], found[1]

    def dates(self, symbol: str, interval: int = 1) -> list[date]:
        """The dates holding bars of ``symbol``, as written in the timestamps' own offsets (the first ten
        characters of the stored ISO text). O(n) over the symbol's rows, no `Bar` built. Any thread."""
        symbol = _check_symbol(symbol)
        interval = _check_interval(interval)
        rows = self._fetch(
            "SELECT DISTINCT substr(ts, 1, 10) FROM bars WHERE symbol = ? AND interval = ?",
            (symbol, interval),
        )
        return sorted(date.fromisoformat(r[0]) for r in rows)

    def symbols(self) -> list[str]:
        """The stored symbols, sorted. O(s); any thread."""
        return [r[0] for r in self._fetch("SELECT symbol FROM symbols ORDER BY symbol", ())]

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        """All rows of one read statement on this thread's connection, SQLite's errors translated."""
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _storage_error(self.path, exc) from exc

    # -- writes --

    def add_bars(self, bars: Iterable[Bar], *, interval: int = 1) -> ImportReport:
        """Store ``bars`` (any symbols, any order) under ``interval`` in one transaction: all or nothing.

        Already-stored ``(symbol, interval, timestamp)`` keys are counted as duplicates and left as they
        were. Raises `InvalidDataError` for something that is not a `Bar` or a symbol mixing naive and aware
        timestamps. O(m log n) for m bars; waits for other writers. Any thread.
        """
        interval = _check_interval(interval)
        return self._write(bars, interval)

    def import_csv(
        self,
        path: PathLike,
        symbol: str | None = None,
        *,
        interval: int | None = None,
        skip_bad_rows: bool = False,
    ) -> ImportReport:
        """Import one CSV file in one transaction, streaming it (one row in memory at a time).

        ``symbol`` defaults to the file name's (``SYMBOL_*.csv``), ``interval`` to its ``_<N>m`` part or 1.
        A bad row (including a volume SQLite cannot hold) raises `CsvFormatError` with its line number and
        imports nothing, unless ``skip_bad_rows=True``: then bad rows are skipped and reported. Re-importing
        a file adds nothing (its rows come back as duplicates). O(rows log n); waits for other writers.
        Any thread.
        """
        return self.import_csv_files([path], symbol, interval=interval, skip_bad_rows=skip_bad_rows)[0]

    def import_csv_files(
        self,
        paths: Iterable[PathLike],
        symbol: str | None = None,
        *,
        interval: int | None = None,
        skip_bad_rows: bool = False,
        on_file: Callable[[Path, ImportReport], None] | None = None,
    ) -> list[ImportReport]:
        """Import several CSV files in **one** transaction: all of them, or (on any error, or an interrupt)
        none. One report per file, in order; ``on_file`` is called after each file is read (before the
        commit). Otherwise as `import_csv`. O(rows log n); waits for other writers. Any thread.
        """
        files = [Path(p) for p in paths]
        readers: list[tuple[CsvBarReader, int]] = []
        for path in files:
            chosen = _check_interval((interval_from_filename(path) or 1) if interval is None else interval)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {os.fspath(path)}")
            reader = CsvBarReader(path, symbol, skip_bad_rows=skip_bad_rows, check=_unstorable)
            readers.append((reader, chosen))
        reports: list[ImportReport] = []

        def read(index: int, written: ImportReport) -> None:
            reports.append(self._with_rejects(readers[index][0], written))
            if on_file is not None:
                on_file(files[index], reports[-1])

        self._write_many(readers, read, checked=True)  # the readers applied `_unstorable`, with line numbers
        return reports

    @staticmethod
    def _with_rejects(reader: CsvBarReader, report: ImportReport) -> ImportReport:
        if not reader.rejected:
            return report
        logger.warning(
            "%s: skipped %d bad row(s), first at line %d: %s",
            reader.path,
            len(reader.rejected),
            reader.rejected[0].line,
            reader.rejected[0].reason,
        )
        return attrs.evolve(report, rejected=len(reader.rejected), rejected_rows=tuple(reader.rejected))

    def _write(self, bars: Iterable[Bar], interval: int) -> ImportReport:
        return self._write_many([(bars, interval)])[0]

    def _write_many(
        self,
        sources: Sequence[tuple[Iterable[Bar], int]],
        on_source: Callable[[int, ImportReport], None] | None = None,
        *,
        checked: bool = False,
    ) -> list[ImportReport]:
        """Write every source (bars, interval) in one transaction; all or nothing. SQLite's errors become
        the library's (`_storage_error`). ``checked``: the sources already refused what `_unstorable` does."""
        check = None if checked else _unstorable
        if self.read_only:
            raise RepositoryError(f"{self.path}: opened read-only, cannot write")
        kinds: dict[str, bool] = {}
        conn = self._conn()
        reports: list[ImportReport] = []
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for bars, interval in sources:
                        reports.append(self._insert(conn, bars, interval, kinds, check))
                        if on_source is not None:
                            on_source(len(reports) - 1, reports[-1])
                    self._record_kinds(conn, kinds)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _storage_error(self.path, exc) from exc
        for sym, aware in kinds.items():
            self._aware.setdefault(sym, aware)
        return reports

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        bars: Iterable[Bar],
        interval: int,
        kinds: dict[str, bool],
        check: Callable[[Bar], str | None] | None,
    ) -> ImportReport:
        """Insert one source's bars (inside the caller's transaction); ``kinds`` collects each symbol's
        timestamp style, checked against the batch so far."""
        count = 0

        def rows() -> Iterator[tuple[object, ...]]:
            nonlocal count
            for bar in bars:
                if not isinstance(bar, Bar):
                    raise InvalidDataError(f"expected a Bar, got {type(bar).__name__}: {bar!r}")
                ts = bar.timestamp
                aware = _is_aware(ts)
                if kinds.setdefault(bar.symbol, aware) is not aware:
                    raise _mixing_error(bar.symbol, not aware)
                why = None if check is None else check(bar)
                if why is not None:
                    raise InvalidDataError(f"{bar.symbol} {ts.isoformat()}: {why}")
                count += 1
                yield (
                    bar.symbol,
                    interval,
                    _time_key(ts),
                    ts.isoformat(),
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                )

        added = conn.executemany(_INSERT, rows()).rowcount
        return ImportReport(added=added, duplicates=count - added)

    @staticmethod
    def _record_kinds(conn: sqlite3.Connection, kinds: dict[str, bool]) -> None:
        for sym, aware in kinds.items():
            conn.execute("INSERT OR IGNORE INTO symbols (symbol, aware) VALUES (?, ?)", (sym, aware))
            stored = bool(conn.execute("SELECT aware FROM symbols WHERE symbol = ?", (sym,)).fetchone()[0])
            if stored is not aware:
                raise _mixing_error(sym, stored)
