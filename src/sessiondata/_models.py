"""Market-data records (`Bar`, `Tick`, `Quote`), their validation, and the library's exceptions.

Records are frozen, slotted `attrs` classes: equal by value, hashable, and safe to share between threads
because nothing can change them after construction. Construction validates every field and raises
`InvalidDataError` naming the field and the offending value, so an impossible record never exists.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime
from typing import Any, Union

import attrs

__all__ = [
    "Bar",
    "InvalidDataError",
    "MarketData",
    "Provenance",
    "Quote",
    "SessionDataError",
    "Tick",
]


class SessionDataError(Exception):
    """Base class of every exception this library raises on purpose."""


class InvalidDataError(SessionDataError, ValueError):
    """A record or a write that cannot be true of market data (NaN price, ``high < low``, ...).

    Subclasses `ValueError`, so ``except ValueError`` keeps working for callers that do not know this
    library. The message names the field and the value.
    """


class Provenance(enum.Enum):
    """Where a stored 1-minute bar came from; kept beside the bar, never inside it."""

    STREAMED = "streamed"
    """Delivered by a stream (the coordinator, or a direct ``add_bar``)."""
    GAP_FILLED = "gap_filled"
    """Fetched from a repository to fill a missing minute (the upkeep thread)."""
    CORRECTION = "correction"
    """Replaced a bar that was already stored with the same timestamp."""


_INF = math.inf


def _symbol(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidDataError(f"symbol must be a str, got {value!r}")
    upper = value.strip().upper()
    if not upper:
        raise InvalidDataError(f"symbol must not be empty, got {value!r}")
    return upper


def _check_timestamp(kind: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise InvalidDataError(f"{kind}.timestamp must be a datetime, got {value!r}")


def _check_price(kind: str, field: str, value: object) -> None:
    # `type(...) is float` first: the common case must cost one comparison.
    if type(value) is float or (type(value) is int):
        if 0 < value < _INF:  # false for NaN, inf, <= 0
            return
        raise InvalidDataError(
            f"{kind}.{field} must be a finite price > 0, got {value!r}",
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 < value < _INF:
            return
        raise InvalidDataError(f"{kind}.{field} must be a finite price > 0, got {value!r}")
    raise InvalidDataError(f"{kind}.{field} must be a number, got {value!r}")


def _check_amount(kind: str, field: str, value: object) -> None:
    if type(value) is int or type(value) is float:
        if 0 <= value < _INF:
            return
        raise InvalidDataError(f"{kind}.{field} must be finite and >= 0, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 <= value < _INF:
            return
        raise InvalidDataError(f"{kind}.{field} must be finite and >= 0, got {value!r}")
    raise InvalidDataError(f"{kind}.{field} must be a number, got {value!r}")


@attrs.frozen(slots=True, repr=True, cache_hash=False)
class Bar:
    """One OHLCV bar. ``timestamp`` is the **start** of the minute(s) it covers.

    A bar is known only at ``timestamp + interval``; a backtest never delivers it earlier.

    Raises `InvalidDataError` for an empty symbol, a timestamp that is not a `datetime`, a NaN, infinite or
    non-positive price, a negative or non-finite volume, ``high < low``, or ``open``/``close`` outside
    ``[low, high]``. Construction is O(1); instances are immutable and may be shared between threads.
    """

    symbol: str = attrs.field(converter=_symbol)
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __attrs_post_init__(self) -> None:
        _check_timestamp("Bar", self.timestamp)
        _check_price("Bar", "open", self.open)
        _check_price("Bar", "high", self.high)
        _check_price("Bar", "low", self.low)
        _check_price("Bar", "close", self.close)
        _check_amount("Bar", "volume", self.volume)
        low, high = self.low, self.high
        if high < low:
            raise InvalidDataError(f"Bar.high={high!r} is below Bar.low={low!r}")
        if not low <= self.open <= high:
            raise InvalidDataError(f"Bar.open={self.open!r} is outside [low={low!r}, high={high!r}]")
        if not low <= self.close <= high:
            raise InvalidDataError(f"Bar.close={self.close!r} is outside [low={low!r}, high={high!r}]")


@attrs.frozen(slots=True)
class Tick:
    """One trade print. Zero-size ticks are real (e.g. corrections) and accepted.

    Raises `InvalidDataError` for an empty symbol, a non-`datetime` timestamp, a NaN, infinite or
    non-positive price, or a negative or non-finite size.
    """

    symbol: str = attrs.field(converter=_symbol)
    timestamp: datetime
    price: float
    size: float

    def __attrs_post_init__(self) -> None:
        _check_timestamp("Tick", self.timestamp)
        _check_price("Tick", "price", self.price)
        _check_amount("Tick", "size", self.size)


@attrs.frozen(slots=True)
class Quote:
    """One top-of-book quote. Crossed quotes (``bid > ask``) are real and accepted.

    Raises `InvalidDataError` for an empty symbol, a non-`datetime` timestamp, a NaN, infinite or
    non-positive bid or ask, or a negative or non-finite size.
    """

    symbol: str = attrs.field(converter=_symbol)
    timestamp: datetime
    bid: float
    ask: float
    bid_size: float
    ask_size: float

    def __attrs_post_init__(self) -> None:
        _check_timestamp("Quote", self.timestamp)
        _check_price("Quote", "bid", self.bid)
        _check_price("Quote", "ask", self.ask)
        _check_amount("Quote", "bid_size", self.bid_size)
        _check_amount("Quote", "ask_size", self.ask_size)


MarketData = Union[Bar, Tick, Quote]  # noqa: UP007 - a runtime alias must work on 3.10
"""Any record the store and the coordinator carry."""


def check_record(kind: type[Any], value: object, *, symbol: str) -> None:
    """Raise `InvalidDataError` unless ``value`` is a ``kind`` record for ``symbol`` (already upper-case)."""
    if type(value) is not kind and not isinstance(value, kind):
        raise InvalidDataError(
            f"expected a {kind.__name__} for {symbol}, got {type(value).__name__}: {value!r}"
        )
    if value.symbol != symbol:  # type: ignore[attr-defined]
        raise InvalidDataError(
            f"{kind.__name__}.symbol={value.symbol!r} does not match the symbol written to, "  # type: ignore[attr-defined]
            f"{symbol!r}"
        )
