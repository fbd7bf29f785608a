"""The same operations on sessiondata, NautilusTrader's `Cache` and a pandas DataFrame store, in one run.

What a backtest feed does per bar, on one symbol with 10,000 1-minute bars already stored (bar objects
built beforehand, outside the timing, in each library's own type):

* **append**: store one more bar (ours `add_bar`; Nautilus `Cache.add_bar`; pandas: the naive store of
  ``plot_figures.py``, one `pd.concat` per bar);
* **latest**: read the newest bar (ours `get_latest_bar`; Nautilus `Cache.bar`; pandas ``iloc[-1]``);
* **last 50**: the newest 50 bars (ours `get_last_n_bars(50)`, oldest first; Nautilus
  ``Cache.bars(bar_type)[:50]``, newest first; pandas ``tail(50)``, a DataFrame);
* **last 390 closes**: the newest 390 closes as a numpy array (ours `to_numpy`; Nautilus: its bars'
  ``close.as_double()``; pandas: the column's last 390 values).

No targets: the ratios are reported to show where each library stands (ours is the denominator). The
libraries do different amounts of work: ours validates every bar, derives 5m/15m bars for readers, keeps
metrics and publishes an immutable snapshot per write under a lock, so readers on other threads never
lock; Nautilus' `Cache` is a single-threaded engine's cache (Cython, no lock); the pandas store copies its
frame on every append. NautilusTrader (``pip install nautilus_trader``) and pandas are optional: their
benchmarks skip when they are not installed.

Run: ``.venv/bin/python -m pytest benchmarks/bench_compare.py -p no:cacheprovider --benchmark-only``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from memory_per_bar import session_bars
from ratios import Ratio, Results
from sessiondata import Bar, SessionData, to_numpy

STORED = 10_000
APPENDS = 200  # bars appended per timed round
SYMBOL = "SPY"
OPERATIONS = ("append", "latest", "last 50", "last 390 closes")
RATIOS: tuple[Ratio, ...] = tuple(
    Ratio(f"{op}: {other} / sessiondata", f"{other}.{op}", f"sessiondata.{op}")
    for op in OPERATIONS
    for other in ("nautilus", "pandas")
)


@pytest.fixture(scope="module", autouse=True)
def _declare_ratios(results: Results) -> None:
    results.expect(*RATIOS)


@functools.cache
def _bars() -> list[Bar]:
    return list(session_bars(STORED + 40 * APPENDS))


class _Ours:
    def __init__(self) -> None:
        self.store = SessionData()
        self.store.add_bars_batch(SYMBOL, _bars()[:STORED])
        self.pending = iter(_bars()[STORED:])

    def append(self, bars: list[Any]) -> None:
        add = self.store.add_bar
        for bar in bars:
            add(SYMBOL, bar)

    def latest(self) -> Any:
        return self.store.get_latest_bar(SYMBOL)

    def last_50(self) -> Any:
        return self.store.get_last_n_bars(SYMBOL, 50)

    def last_390_closes(self) -> Any:
        return to_numpy(self.store.get_symbol_data(SYMBOL), "close", n=390)


class _Nautilus:
    def __init__(self) -> None:
        cache_mod = pytest.importorskip("nautilus_trader.cache.cache")
        config = pytest.importorskip("nautilus_trader.config")
        data = pytest.importorskip("nautilus_trader.model.data")
        objects = pytest.importorskip("nautilus_trader.model.objects")
        self.np = pytest.importorskip("numpy")
        self.bar_type = data.BarType.from_str(f"{SYMBOL}.XNAS-1-MINUTE-LAST-EXTERNAL")
        price, quantity = objects.Price, objects.Quantity

        def convert(b: Bar) -> Any:
            ns = int(b.timestamp.timestamp() * 1_000_000_000)
            prices = (price(v, 2) for v in (b.open, b.high, b.low, b.close))
            return data.Bar(self.bar_type, *prices, quantity(b.volume, 0), ns, ns)

        self.cache = cache_mod.Cache(config=config.CacheConfig(bar_capacity=STORED + 40 * APPENDS))
        converted = [convert(b) for b in _bars()]
        for bar in converted[:STORED]:
            self.cache.add_bar(bar)
        self.pending = iter(converted[STORED:])

    def append(self, bars: list[Any]) -> None:
        add = self.cache.add_bar
        for bar in bars:
            add(bar)

    def latest(self) -> Any:
        return self.cache.bar(self.bar_type)

    def last_50(self) -> Any:
        return self.cache.bars(self.bar_type)[:50]

    def last_390_closes(self) -> Any:
        return self.np.array([b.close.as_double() for b in self.cache.bars(self.bar_type)[:390]])


class _Pandas:
    def __init__(self) -> None:
        pytest.importorskip("pandas")
        from plot_figures import NaivePandasStore

        self.store = NaivePandasStore()
        self.store.add_bars_batch(SYMBOL, _bars()[:STORED])
        self.pending = iter(_bars()[STORED:])

    def append(self, bars: list[Any]) -> None:
        for bar in bars:
            self.store.add_bar(SYMBOL, bar)

    def latest(self) -> Any:
        return self.store.get_last_n_bars(SYMBOL, 1).iloc[-1]

    def last_50(self) -> Any:
        return self.store.get_last_n_bars(SYMBOL, 50)

    def last_390_closes(self) -> Any:
        return self.store.get_last_n_bars(SYMBOL, 390)["close"].to_numpy()


LIBRARIES: dict[str, Callable[[], Any]] = {"sessiondata": _Ours, "nautilus": _Nautilus, "pandas": _Pandas}


@pytest.mark.benchmark(group="append one bar, 10,000 stored")
@pytest.mark.parametrize("library", list(LIBRARIES))
def test_append(benchmark: BenchmarkFixture, results: Results, library: str) -> None:
    lib = LIBRARIES[library]()
    appends = 20 if library == "pandas" else APPENDS  # each pandas append copies the frame

    def setup() -> tuple[tuple[list[Any]], dict[str, Any]]:
        return ([next(lib.pending) for _ in range(appends)],), {}

    benchmark.pedantic(lib.append, setup=setup, rounds=30)
    results.record(f"{library}.append", benchmark, ops=appends)


@pytest.mark.benchmark(group="reads, 10,000 stored")
@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("operation", ["latest", "last 50", "last 390 closes"])
def test_read(benchmark: BenchmarkFixture, results: Results, library: str, operation: str) -> None:
    lib = LIBRARIES[library]()
    got = benchmark(getattr(lib, operation.replace(" ", "_")))
    if operation != "latest":
        assert len(got) == (50 if operation == "last 50" else 390)
    results.record(f"{library}.{operation}", benchmark)
