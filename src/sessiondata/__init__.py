"""sessiondata: one trading session's market data in memory, for threaded backtesters and analysis engines.

Writers serialize on one lock; readers never lock and answer from immutable per-symbol snapshots.
Everything public is importable from here; the modules behind it are private.
"""

from ._calendar import RegularHoursCalendar, SessionCalendar
from ._models import Bar, InvalidDataError, Provenance, Quote, SessionDataError, Tick
from ._series import Series
from ._snapshot import SymbolSessionData
from ._store import SessionData, get_session_data, reset_session_data

__version__ = "0.1.0"

__all__ = [
    "Bar",
    "InvalidDataError",
    "Provenance",
    "Quote",
    "RegularHoursCalendar",
    "Series",
    "SessionCalendar",
    "SessionData",
    "SessionDataError",
    "SymbolSessionData",
    "Tick",
    "__version__",
    "get_session_data",
    "reset_session_data",
]
