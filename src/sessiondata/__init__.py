"""sessiondata: one trading session's market data in memory, for threaded backtesters and analysis engines.

Writers serialize on one lock; readers never lock and answer from immutable per-symbol snapshots.
Everything public is importable from here; the modules behind it are private.
"""

from ._calendar import ExchangeCalendar, RegularHoursCalendar, SessionCalendar, SessionClock
from ._csvio import CsvFormatError, RejectedRow
from ._gaps import Gap, detect_gaps, expected_minutes
from ._models import Bar, InvalidDataError, Provenance, Quote, SessionDataError, Tick
from ._repository import (
    BarRepository,
    CsvBarRepository,
    ImportReport,
    InMemoryBarRepository,
    SqliteBarRepository,
)
from ._series import Series
from ._snapshot import SymbolSessionData
from ._store import SessionData, get_session_data, reset_session_data
from ._upkeep import DataUpkeepThread

__version__ = "0.1.0"

__all__ = [
    "Bar",
    "BarRepository",
    "CsvBarRepository",
    "CsvFormatError",
    "DataUpkeepThread",
    "ExchangeCalendar",
    "Gap",
    "ImportReport",
    "InMemoryBarRepository",
    "InvalidDataError",
    "Provenance",
    "Quote",
    "RegularHoursCalendar",
    "RejectedRow",
    "Series",
    "SessionCalendar",
    "SessionClock",
    "SessionData",
    "SessionDataError",
    "SqliteBarRepository",
    "SymbolSessionData",
    "Tick",
    "detect_gaps",
    "expected_minutes",
    "__version__",
    "get_session_data",
    "reset_session_data",
]
