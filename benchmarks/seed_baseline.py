"""The benchmark baseline: the seed plan's asyncio `SessionData`, written out as given.

This is "File 1" of ``../shared/seed/phase1-session-data-plan.md`` (``app/managers/data_manager/
session_data.py``), the design `sessiondata` grew from. The benchmarks in ``bench_store.py`` measure it in the
same run as the real store, so the issue's "baseline" figures are ratios against this code, on this machine.

It is deliberately NOT improved. The only changes from the plan, all needed to run it standalone:

* ``BarData`` / ``TickData`` are `sessiondata.Bar` / `sessiondata.Tick` (the plan imported them from its
  application, ``app.models.trading``);
* ``logger`` is a stdlib `logging` logger (the plan used ``app.logger``);
* whitespace as ``ruff format`` lays it out, and lint/type checks switched off for this file (below): it keeps
  the plan's ``typing.Dict``/``List``/``Optional`` spelling, its unannotated ``__init__``, and its
  ``Dict[str, any]`` annotation (``any`` is the builtin function, a bug in the plan that is harmless at run
  time).

Its ``asyncio.Lock`` makes every method a coroutine and only serializes tasks of one event loop: threads that
share it are not protected. A synchronous caller runs each call with ``loop.run_until_complete``, which is
how the benchmarks call it.

The plan's own module docstring follows.

Session Data - Singleton managing current session market data.

This module provides centralized storage for all market data during a trading session.
It replaces and extends the functionality of SessionTracker with a comprehensive
data structure that holds bars, quotes, ticks, and historical data for all symbols.

PERFORMANCE OPTIMIZATIONS:
- Uses deque for O(1) append and recent access
- Cached latest bar for O(1) access
- Efficient last-N lookups
- Designed for high-frequency reads by AnalysisEngine and other modules
"""

# ruff: noqa
# mypy: ignore-errors
from datetime import datetime, date, time, timedelta
from typing import Dict, List, Optional, Set, Deque
from dataclasses import dataclass, field
from collections import defaultdict, deque
import asyncio

# Adapted: the seed imported these from its application (`app.models.trading`, `app.logger`).
import logging

from sessiondata import Bar as BarData
from sessiondata import Tick as TickData

logger = logging.getLogger("sessiondata.benchmarks.seed_baseline")


@dataclass
class SymbolSessionData:
    """Per-symbol data for current trading session.

    Optimized for fast reads by AnalysisEngine and other consumers:
    - Latest bar cached for O(1) access
    - Deque for efficient append and recent-N access
    - Timestamp index for fast lookups
    """

    symbol: str

    # 1-minute bars (deque for O(1) append and efficient last-N access)
    bars_1m: Deque[BarData] = field(default_factory=deque)

    # Cache for O(1) access to latest bar
    _latest_bar: Optional[BarData] = None

    # Derived bars (e.g., {5: [...], 15: [...]})
    bars_derived: Dict[int, List[BarData]] = field(default_factory=dict)

    # Bar quality metric (0-100%)
    bar_quality: float = 0.0

    # Other data types
    quotes: List = field(default_factory=list)  # QuoteData when implemented
    ticks: List[TickData] = field(default_factory=list)

    # Session metrics (real-time tracking)
    session_volume: int = 0
    session_high: Optional[float] = None
    session_low: Optional[float] = None
    last_update: Optional[datetime] = None

    # Update flags (set by main thread when new data inserted)
    bars_updated: bool = False
    quotes_updated: bool = False
    ticks_updated: bool = False

    # Historical bars for trailing days
    # Structure: {interval: {date: [bars]}}
    # Example: {1: {date1: [...], date2: [...]}, 5: {date1: [...], date2: [...]}}
    historical_bars: Dict[int, Dict[date, List[BarData]]] = field(default_factory=lambda: defaultdict(dict))

    def update_from_bar(self, bar: BarData) -> None:
        """Update session metrics from a new bar.

        Args:
            bar: New bar data
        """
        # Update volume
        self.session_volume += bar.volume

        # Update high
        if self.session_high is None or bar.high > self.session_high:
            self.session_high = bar.high

        # Update low
        if self.session_low is None or bar.low < self.session_low:
            self.session_low = bar.low

        self.last_update = bar.timestamp
        self.bars_updated = True

        # Update latest bar cache
        self._latest_bar = bar

    def get_latest_bar(self, interval: int = 1) -> Optional[BarData]:
        """Get the most recent bar (O(1) operation).

        Args:
            interval: Bar interval in minutes (1, 5, 15, etc.)

        Returns:
            Most recent bar or None
        """
        if interval == 1:
            return self._latest_bar
        else:
            bars = self.bars_derived.get(interval, [])
            return bars[-1] if bars else None

    def get_last_n_bars(self, n: int, interval: int = 1) -> List[BarData]:
        """Get the last N bars efficiently.

        For 1-minute bars, uses deque for O(N) access.
        For derived bars, uses list slicing.

        Args:
            n: Number of bars to retrieve
            interval: Bar interval in minutes

        Returns:
            List of last N bars (oldest to newest)
        """
        if interval == 1:
            # Efficient: only iterate over last n items
            if len(self.bars_1m) <= n:
                return list(self.bars_1m)
            else:
                # Get last n items from deque
                return list(self.bars_1m)[-n:]
        else:
            bars = self.bars_derived.get(interval, [])
            return bars[-n:] if bars else []

    def get_bars_since(self, timestamp: datetime, interval: int = 1) -> List[BarData]:
        """Get all bars since a specific timestamp.

        Args:
            timestamp: Start timestamp
            interval: Bar interval in minutes

        Returns:
            List of bars after timestamp
        """
        if interval == 1:
            # Efficient: iterate backward from newest until we hit timestamp
            result = []
            for bar in reversed(self.bars_1m):
                if bar.timestamp < timestamp:
                    break
                result.append(bar)
            return list(reversed(result))
        else:
            bars = self.bars_derived.get(interval, [])
            return [b for b in bars if b.timestamp >= timestamp]

    def get_bar_count(self, interval: int = 1) -> int:
        """Get count of bars for an interval (O(1) operation).

        Args:
            interval: Bar interval in minutes

        Returns:
            Number of bars available
        """
        if interval == 1:
            return len(self.bars_1m)
        else:
            bars = self.bars_derived.get(interval)
            return len(bars) if bars else 0

    def reset_session_metrics(self) -> None:
        """Reset session metrics for a new session."""
        self.session_volume = 0
        self.session_high = None
        self.session_low = None
        self.last_update = None
        self.bar_quality = 0.0
        self.bars_updated = False
        self.quotes_updated = False
        self.ticks_updated = False
        self._latest_bar = None


class SessionData:
    """Singleton managing current session market data.

    Provides centralized storage and management for all market data during
    a trading session. Integrates with SystemManager and replaces SessionTracker.

    Thread-safe for concurrent access from main coordinator and data-upkeep threads.
    """

    def __init__(self):
        """Initialize SessionData.

        WARNING: Do not call directly. Use get_session_data() instead.
        """
        # Session configuration (defaults, can be overridden)
        self.start_time: time = time(9, 30)  # ET
        self.end_time: time = time(16, 0)  # ET
        self.historical_bars_trailing_days: int = 0
        self.historical_bars_types: List[int] = []

        # Session state
        self.session_ended: bool = False
        self.current_session_date: Optional[date] = None

        # Per-symbol data structures
        self._symbols: Dict[str, SymbolSessionData] = {}

        # Active symbols set (for quick lookup)
        self._active_symbols: Set[str] = set()

        # Thread-safe lock for concurrent access
        self._lock = asyncio.Lock()

        logger.info("SessionData initialized")

    async def register_symbol(self, symbol: str) -> SymbolSessionData:
        """Register a new symbol for tracking.

        Args:
            symbol: Stock symbol

        Returns:
            SymbolSessionData for the symbol
        """
        symbol = symbol.upper()

        async with self._lock:
            if symbol not in self._symbols:
                self._symbols[symbol] = SymbolSessionData(symbol=symbol)
                self._active_symbols.add(symbol)
                logger.info(f"Registered symbol: {symbol}")

            return self._symbols[symbol]

    async def get_symbol_data(self, symbol: str) -> Optional[SymbolSessionData]:
        """Get data for a symbol.

        Args:
            symbol: Stock symbol

        Returns:
            SymbolSessionData if symbol is registered, None otherwise
        """
        symbol = symbol.upper()
        async with self._lock:
            return self._symbols.get(symbol)

    async def add_bar(self, symbol: str, bar: BarData) -> None:
        """Add a 1-minute bar to session data.

        Args:
            symbol: Stock symbol
            bar: Bar data to add
        """
        symbol = symbol.upper()

        # Auto-register symbol if not already registered
        if symbol not in self._active_symbols:
            await self.register_symbol(symbol)

        async with self._lock:
            symbol_data = self._symbols[symbol]
            symbol_data.bars_1m.append(bar)
            symbol_data.update_from_bar(bar)

    async def add_bars_batch(self, symbol: str, bars: List[BarData]) -> None:
        """Add multiple bars in batch (more efficient).

        Args:
            symbol: Stock symbol
            bars: List of bars to add
        """
        symbol = symbol.upper()

        if symbol not in self._active_symbols:
            await self.register_symbol(symbol)

        async with self._lock:
            symbol_data = self._symbols[symbol]
            symbol_data.bars_1m.extend(bars)

            # Update metrics from all bars
            for bar in bars:
                symbol_data.update_from_bar(bar)

    # ==================== FAST ACCESS METHODS ====================
    # These methods are optimized for AnalysisEngine and other high-frequency readers

    async def get_latest_bar(self, symbol: str, interval: int = 1) -> Optional[BarData]:
        """Get the most recent bar for a symbol (O(1) operation).

        Optimized for high-frequency access by AnalysisEngine.

        Args:
            symbol: Stock symbol
            interval: Bar interval in minutes (1, 5, 15, etc.)

        Returns:
            Most recent bar or None
        """
        symbol = symbol.upper()
        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return None
            return symbol_data.get_latest_bar(interval)

    async def get_last_n_bars(self, symbol: str, n: int, interval: int = 1) -> List[BarData]:
        """Get the last N bars for a symbol (efficient O(N) operation).

        Optimized for technical indicator calculations.

        Args:
            symbol: Stock symbol
            n: Number of bars to retrieve
            interval: Bar interval in minutes

        Returns:
            List of last N bars (oldest to newest)
        """
        symbol = symbol.upper()
        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return []
            return symbol_data.get_last_n_bars(n, interval)

    async def get_bars_since(self, symbol: str, timestamp: datetime, interval: int = 1) -> List[BarData]:
        """Get all bars since a specific timestamp (efficient backward search).

        Args:
            symbol: Stock symbol
            timestamp: Start timestamp
            interval: Bar interval in minutes

        Returns:
            List of bars after timestamp
        """
        symbol = symbol.upper()
        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return []
            return symbol_data.get_bars_since(timestamp, interval)

    async def get_bar_count(self, symbol: str, interval: int = 1) -> int:
        """Get count of available bars (O(1) operation).

        Args:
            symbol: Stock symbol
            interval: Bar interval in minutes

        Returns:
            Number of bars available
        """
        symbol = symbol.upper()
        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return 0
            return symbol_data.get_bar_count(interval)

    async def get_latest_bars_multi(
        self, symbols: List[str], interval: int = 1
    ) -> Dict[str, Optional[BarData]]:
        """Get latest bars for multiple symbols in one call (batch operation).

        More efficient than calling get_latest_bar multiple times.

        Args:
            symbols: List of stock symbols
            interval: Bar interval in minutes

        Returns:
            Dictionary mapping symbol to latest bar
        """
        result = {}
        async with self._lock:
            for symbol in symbols:
                symbol = symbol.upper()
                symbol_data = self._symbols.get(symbol)
                if symbol_data:
                    result[symbol] = symbol_data.get_latest_bar(interval)
                else:
                    result[symbol] = None
        return result

    async def get_bars(
        self, symbol: str, interval: int = 1, start: Optional[datetime] = None, end: Optional[datetime] = None
    ) -> List[BarData]:
        """Get bars for a symbol.

        Args:
            symbol: Stock symbol
            interval: Bar interval in minutes (1, 5, 15, etc.)
            start: Optional start time filter
            end: Optional end time filter

        Returns:
            List of bars matching criteria
        """
        symbol = symbol.upper()

        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return []

            # Get bars based on interval
            if interval == 1:
                bars = symbol_data.bars_1m
            else:
                bars = symbol_data.bars_derived.get(interval, [])

            # Apply time filters if specified
            if start is not None or end is not None:
                filtered = []
                for bar in bars:
                    if start and bar.timestamp < start:
                        continue
                    if end and bar.timestamp > end:
                        continue
                    filtered.append(bar)
                return filtered

            return bars.copy()

    async def get_session_metrics(self, symbol: str) -> Dict[str, any]:
        """Get current session metrics for a symbol.

        Args:
            symbol: Stock symbol

        Returns:
            Dictionary with session metrics
        """
        symbol = symbol.upper()

        async with self._lock:
            symbol_data = self._symbols.get(symbol)
            if symbol_data is None:
                return {}

            return {
                "symbol": symbol,
                "session_volume": symbol_data.session_volume,
                "session_high": symbol_data.session_high,
                "session_low": symbol_data.session_low,
                "last_update": symbol_data.last_update,
                "bar_quality": symbol_data.bar_quality,
                "bar_count": len(symbol_data.bars_1m),
            }

    async def start_new_session(self, session_date: date) -> None:
        """Start a new trading session.

        Clears all session-specific data but keeps configuration.

        Args:
            session_date: Date of the new session
        """
        async with self._lock:
            self.current_session_date = session_date
            self.session_ended = False

            # Reset all symbol data
            for symbol_data in self._symbols.values():
                symbol_data.bars_1m.clear()
                symbol_data.bars_derived.clear()
                symbol_data.quotes.clear()
                symbol_data.ticks.clear()
                symbol_data.reset_session_metrics()

            logger.info(f"Started new session for date: {session_date}")

    async def end_session(self) -> None:
        """Mark current session as ended."""
        async with self._lock:
            self.session_ended = True
            logger.info(f"Session ended for date: {self.current_session_date}")

    async def clear_all(self) -> None:
        """Clear all session data (for testing/reset)."""
        async with self._lock:
            self._symbols.clear()
            self._active_symbols.clear()
            self.current_session_date = None
            self.session_ended = False
            logger.info("All session data cleared")

    def get_active_symbols(self) -> Set[str]:
        """Get set of active symbols (thread-safe read)."""
        return self._active_symbols.copy()


# Global singleton instance
_session_data_instance: Optional[SessionData] = None


def get_session_data() -> SessionData:
    """Get or create the global SessionData singleton instance.

    Returns:
        The singleton SessionData instance
    """
    global _session_data_instance
    if _session_data_instance is None:
        _session_data_instance = SessionData()
        logger.info("SessionData singleton instance created")
    return _session_data_instance


def reset_session_data() -> None:
    """Reset the global SessionData singleton (useful for testing)."""
    global _session_data_instance
    _session_data_instance = None
    logger.info("SessionData singleton instance reset")
