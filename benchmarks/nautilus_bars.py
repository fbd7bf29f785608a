"""NautilusTrader's `BacktestEngine` fed the same 1-minute bars (for ``bench_main_job.py``; optional).

One XNAS equity per symbol, one ``BarType`` ``{SYMBOL}.XNAS-1-MINUTE-LAST-EXTERNAL`` per symbol, `Bar`
objects built directly (prices and volume as NautilusTrader ``Price``/``Quantity``; ``ts_event`` the bar's
end, when it is known, as sessiondata replays it). No strategy: the engine's own replay of the bars through
its data engine, cache and simulated exchange is what is timed. Building the engine is setup (untimed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar as NBar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from sessiondata import Bar

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MINUTE = timedelta(minutes=1)


def _ns(ts: datetime) -> int:
    delta = ts + _MINUTE - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def engine_with_bars(streams: Mapping[str, list[Bar]]) -> Any:
    """A ready `BacktestEngine` holding every bar of ``streams`` (its ``run()`` replays them)."""
    engine = BacktestEngine(
        config=BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True))
    )
    venue = Venue("XNAS")
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USD)],
        default_leverage=Decimal(1),
    )
    for symbol, bars in streams.items():
        instrument = TestInstrumentProvider.equity(symbol=symbol, venue="XNAS")
        engine.add_instrument(instrument)
        bar_type = BarType.from_str(f"{symbol}.XNAS-1-MINUTE-LAST-EXTERNAL")
        data = [
            NBar(
                bar_type,
                Price(b.open, 2),
                Price(b.high, 2),
                Price(b.low, 2),
                Price(b.close, 2),
                Quantity(b.volume, 0),
                _ns(b.timestamp),
                _ns(b.timestamp),
            )
            for b in bars
        ]
        engine.add_data(data)
    return engine
