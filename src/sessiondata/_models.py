"""Market-data records (`Bar`, `Tick`, `Quote`), their validation, and the library's exceptions.

Records are frozen, slotted `attrs` classes: equal by value, hashable, and safe to share between threads
because nothing can change them after construction. Construction validates every field and raises
`InvalidDataError` naming the field and the offending value, so an impossible record never exists.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Union, cast

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
# Exact types that take the one-comparison fast path (bool is excluded: it is an int, but not a quantity).
_FAST_NUMBERS = frozenset({float, int})


def check_symbol(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidDataError(f"symbol must be a str, got {value!r}")
    upper = value.strip().upper()
    if not upper:
        raise InvalidDataError(f"symbol must not be empty, got {value!r}")
    # Interned: a million bars of one symbol share one string (52 bytes a bar otherwise), and the store's
    # "is this bar for that symbol" check becomes an identity test.
    return sys.intern(upper)


# Timestamps are shifted by UTC offsets, session windows and days (to the exchange's zone, to a bar's known
# time, to the next session), which overflows `datetime` within a day or two of `datetime.min`/`max`. No
# market data lives there, so the first and last years are refused up front, before anything is stored.
_YEAR_MIN = 2
_YEAR_MAX = 9998


def check_timestamp(kind: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise InvalidDataError(f"{kind}.timestamp must be a datetime, got {value!r}")
    if not _YEAR_MIN <= value.year <= _YEAR_MAX:
        raise InvalidDataError(
            f"{kind}.timestamp must lie in the years {_YEAR_MIN}-{_YEAR_MAX} (the first and last years of "
            f"datetime overflow session arithmetic), got {value!r}"
        )


def check_price(kind: str, field: str, value: object) -> None:
    # `type(...) is float` first: the common case must cost one comparison.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 < value < _INF:
            return
        raise InvalidDataError(f"{kind}.{field} must be a finite price > 0, got {value!r}")
    raise InvalidDataError(f"{kind}.{field} must be a number, got {value!r}")


def check_amount(kind: str, field: str, value: object) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 <= value < _INF:
            return
        raise InvalidDataError(f"{kind}.{field} must be finite and >= 0, got {value!r}")
    raise InvalidDataError(f"{kind}.{field} must be a number, got {value!r}")


@attrs.frozen(slots=True, repr=True, cache_hash=False)
class Bar:
    """One OHLCV bar. ``timestamp`` is the **start** of the minute(s) it covers.

    A bar is known only at ``timestamp + interval``; a backtest never delivers it earlier.

    Raises `InvalidDataError` for an empty symbol, a timestamp that is not a `datetime` (or lies in the first
    or last year `datetime` can hold), a NaN, infinite or non-positive price, a negative or non-finite
    volume, ``high < low``, or ``open``/``close`` outside ``[low, high]``. Construction is O(1); instances
    are immutable and may be shared between threads.

    Attributes:
        symbol: The instrument, upper-cased on construction.
        timestamp: The start of the minute(s) the bar covers; naive (exchange-local) or timezone-aware,
            as given.
        open: The first trade price in the bar.
        high: The highest trade price in the bar.
        low: The lowest trade price in the bar.
        close: The last trade price in the bar.
        volume: Shares (or units) traded in the bar: an `int`, or a `float` for fractional units.
    """

    symbol: str = attrs.field(converter=check_symbol)
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float

    def __attrs_post_init__(self) -> None:
        o, h, lo, c, v = self.open, self.high, self.low, self.close, self.volume
        # One expression for the common valid case (~5x cheaper than checking field by field); NaN fails
        # every comparison, so it always falls through to the field-by-field checks that name the culprit.
        if (
            type(o) in _FAST_NUMBERS
            and type(h) in _FAST_NUMBERS
            and type(lo) in _FAST_NUMBERS
            and type(c) in _FAST_NUMBERS
            and type(v) in _FAST_NUMBERS
            and isinstance(self.timestamp, datetime)
            and _YEAR_MIN <= self.timestamp.year <= _YEAR_MAX
            and 0 < lo <= o <= h < _INF
            and lo <= c <= h
            and 0 <= v < _INF
        ):
            return
        check_timestamp("Bar", self.timestamp)
        check_price("Bar", "open", o)
        check_price("Bar", "high", h)
        check_price("Bar", "low", lo)
        check_price("Bar", "close", c)
        check_amount("Bar", "volume", v)
        if h < lo:
            raise InvalidDataError(f"Bar.high={h!r} is below Bar.low={lo!r}")
        if not lo <= o <= h:
            raise InvalidDataError(f"Bar.open={o!r} is outside [low={lo!r}, high={h!r}]")
        if not lo <= c <= h:  # pragma: no branch - the fast path accepted every other combination
            raise InvalidDataError(f"Bar.close={c!r} is outside [low={lo!r}, high={h!r}]")


@attrs.frozen(slots=True)
class Tick:
    """One trade print. Zero-size ticks are real (e.g. corrections) and accepted.

    Raises `InvalidDataError` for an empty symbol, a non-`datetime` timestamp, a NaN, infinite or
    non-positive price, or a negative or non-finite size.

    Attributes:
        symbol: The instrument, upper-cased on construction.
        timestamp: When the trade printed; naive or timezone-aware, as given.
        price: The trade price.
        size: The trade size (0 is allowed).
    """

    symbol: str = attrs.field(converter=check_symbol)
    timestamp: datetime
    price: float
    size: float

    def __attrs_post_init__(self) -> None:
        check_timestamp("Tick", self.timestamp)
        check_price("Tick", "price", self.price)
        check_amount("Tick", "size", self.size)


@attrs.frozen(slots=True)
class Quote:
    """One top-of-book quote. Crossed quotes (``bid > ask``) are real and accepted.

    Raises `InvalidDataError` for an empty symbol, a non-`datetime` timestamp, a NaN, infinite or
    non-positive bid or ask, or a negative or non-finite size.

    Attributes:
        symbol: The instrument, upper-cased on construction.
        timestamp: When the quote was published; naive or timezone-aware, as given.
        bid: The best bid price.
        ask: The best ask price (may be below the bid: crossed quotes are real).
        bid_size: The size at the bid.
        ask_size: The size at the ask.
    """

    symbol: str = attrs.field(converter=check_symbol)
    timestamp: datetime
    bid: float
    ask: float
    bid_size: float
    ask_size: float

    def __attrs_post_init__(self) -> None:
        check_timestamp("Quote", self.timestamp)
        check_price("Quote", "bid", self.bid)
        check_price("Quote", "ask", self.ask)
        check_amount("Quote", "bid_size", self.bid_size)
        check_amount("Quote", "ask_size", self.ask_size)


class _BarDraft:
    """`trusted_bar`: a `Bar` built without validation, for values that are valid by construction (an
    aggregate of valid bars, with an upper-case symbol) or already checked against every rule of `Bar` (the
    SQLite repository's rows, which its table's constraint checked). Never use it on unchecked outside
    input.

    How: this class has `Bar`'s slots in `Bar`'s order (the same memory layout) and no frozen
    ``__setattr__``, so its ``__init__`` fills them with plain attribute stores, then makes the object a
    `Bar` by assigning ``__class__`` (which CPython allows between classes of one layout). The result is an
    ordinary `Bar` (``type(b) is Bar``, frozen, equal and hashing as any other). About 0.2 us against 0.35
    for setting each slot through `Bar`'s descriptors and 0.9 for ``Bar(...)``: a replay builds one per bar
    it reads. Python 3.10 and 3.11 refuse the assignment (their layout check does not count the
    ``__weakref__`` slot), and there `trusted_bar` sets the slots through the descriptors instead.
    """

    __slots__ = Bar.__slots__

    def __init__(
        self,
        symbol: str,
        timestamp: datetime,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
    ) -> None:
        self.symbol = symbol
        self.timestamp = timestamp
        self.open = open_
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.__class__ = Bar  # type: ignore[assignment]


_BAR_SETTERS = tuple(
    Bar.__dict__[f].__set__ for f in ("symbol", "timestamp", "open", "high", "low", "close", "volume")
)
_new_object = object.__new__


def _trusted_bar_by_descriptors(
    symbol: str, timestamp: datetime, open_: float, high: float, low: float, close: float, volume: float
) -> Bar:
    """`trusted_bar` where CPython refuses the ``__class__`` assignment (before 3.12 its layout check does not
    count a ``__weakref__`` slot, which `Bar` has): each slot set through `Bar`'s own slot descriptor."""
    b: Bar = _new_object(Bar)
    s_sym, s_ts, s_open, s_high, s_low, s_close, s_vol = _BAR_SETTERS
    s_sym(b, symbol)
    s_ts(b, timestamp)
    s_open(b, open_)
    s_high(b, high)
    s_low(b, low)
    s_close(b, close)
    s_vol(b, volume)
    return b


def _class_assignment_works() -> bool:
    try:
        probe: object = _BarDraft("X", datetime(2000, 1, 1), 1.0, 1.0, 1.0, 1.0, 0)
    except TypeError:  # pragma: no cover - "object layout differs": Python 3.10 and 3.11
        return False
    return type(probe) is Bar


trusted_bar: Callable[[str, datetime, float, float, float, float, float], Bar] = (
    cast("Callable[[str, datetime, float, float, float, float, float], Bar]", _BarDraft)
    if _class_assignment_works()
    else _trusted_bar_by_descriptors
)


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
