"""sessiondata: one trading session's market data in memory, for threaded backtesters and analysis engines.

Writers serialize on one lock; readers never lock and answer from immutable per-symbol snapshots.
Everything public is importable from here; the modules behind it are private.
"""

import logging

from ._calendar import ExchangeCalendar, RegularHoursCalendar, SessionCalendar, SessionClock
from ._clock import ClockError, ClockMode, TimeProvider
from ._columns import (
    COLUMN_FIELDS,
    SeriesSpec,
    clear_column_cache,
    column_cache_bytes,
    get_column,
    get_timestamps,
    store_column,
    store_timestamps,
    store_to_arrow,
    store_to_dataframe,
    store_to_numpy,
    to_arrow,
    to_dataframe,
    to_numpy,
)
from ._csvio import CsvFormatError, RejectedRow
from ._gaps import Gap, detect_gaps, expected_minutes
from ._managers import (
    DataManager,
    InvalidStateError,
    ReplayError,
    ReplayReport,
    SessionSummary,
    SymbolSummary,
    SystemManager,
    SystemState,
)
from ._memory import MemoryReport, SymbolMemory, memory_usage, snapshot_memory_usage
from ._models import Bar, InvalidDataError, Provenance, Quote, SessionDataError, Tick
from ._parquet import ParquetBarRepository
from ._repository import (
    BarRepository,
    CsvBarRepository,
    ImportReport,
    IndexedBarRepository,
    InMemoryBarRepository,
    RepositoryError,
    SqliteBarRepository,
)
from .core.series import Series
from .core.snapshot import SymbolSessionData
from .core.store import SessionData, get_session_data, reset_session_data
from .replay.coordinator import (
    BacktestStreamCoordinator,
    CoordinatorError,
    SessionBoundaryListener,
    StreamSourceError,
    StreamType,
)
from .replay.upkeep import DataUpkeepThread

__version__ = "0.1.0"  # the one source of the version: pyproject.toml reads it (setuptools dynamic)

# A library never configures logging; this only keeps an application without any logging set up from
# getting Python's "last resort" handler printing the library's warnings to stderr.
logging.getLogger("sessiondata").addHandler(logging.NullHandler())

__all__ = [
    "COLUMN_FIELDS",
    "BacktestStreamCoordinator",
    "Bar",
    "BarRepository",
    "ClockError",
    "ClockMode",
    "CoordinatorError",
    "CsvBarRepository",
    "CsvFormatError",
    "DataManager",
    "DataUpkeepThread",
    "ExchangeCalendar",
    "Gap",
    "ImportReport",
    "InMemoryBarRepository",
    "IndexedBarRepository",
    "InvalidDataError",
    "InvalidStateError",
    "MemoryReport",
    "ParquetBarRepository",
    "Provenance",
    "Quote",
    "RegularHoursCalendar",
    "RejectedRow",
    "ReplayError",
    "ReplayReport",
    "RepositoryError",
    "Series",
    "SeriesSpec",
    "SessionBoundaryListener",
    "SessionCalendar",
    "SessionClock",
    "SessionData",
    "SessionDataError",
    "SessionSummary",
    "SqliteBarRepository",
    "StreamSourceError",
    "StreamType",
    "SymbolMemory",
    "SymbolSessionData",
    "SymbolSummary",
    "SystemManager",
    "SystemState",
    "Tick",
    "TimeProvider",
    "__version__",
    "clear_column_cache",
    "column_cache_bytes",
    "detect_gaps",
    "expected_minutes",
    "get_column",
    "get_session_data",
    "get_timestamps",
    "memory_usage",
    "reset_session_data",
    "snapshot_memory_usage",
    "store_column",
    "store_timestamps",
    "store_to_arrow",
    "store_to_dataframe",
    "store_to_numpy",
    "to_arrow",
    "to_dataframe",
    "to_numpy",
]
