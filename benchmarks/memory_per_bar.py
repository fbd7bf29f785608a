"""Memory per stored 1-minute bar, measured with `tracemalloc` (issue 2, "Speed and memory").

Run it as a script (from the repository root)::

    .venv/bin/python benchmarks/memory_per_bar.py                 # 1,000,000 bars, both configurations
    .venv/bin/python benchmarks/memory_per_bar.py --bars 100000 --json out.json

What it compares, each measured the same way (bytes tracemalloc sees allocated and still alive):

* **the bars themselves**: ``N`` `sessiondata.Bar` objects with their own ``datetime``, four ``float`` and one
  ``int`` (as a CSV reader or a feed would create them; the symbol string is shared), not counting the list
  that holds them;
* **the store's total**: the same bars after they were added to a `SessionData` (one ``add_bars_batch`` per
  390-bar session), i.e. the bars plus everything the store keeps beside them (chunked series, snapshots,
  derived bars and their state), still not counting the generator's list.

The ratio store/bars is the figure the issue aims at (<= 1.2x). It is reported for ``derived_intervals=()``
(the 1-minute series alone) and twice for the default ``(5, 15)``: read (a store that derives as bars
arrive, ``derivation="eager"``, as one whose derived bars are read after every write would be: it holds
them, extra `Bar` objects, about 0.27 per 1-minute bar, counted in the store's total) and never read (a
lazy store: the derived bars and bar quality are owed, see `sessiondata.core.derived`, and nothing is
held for them but a small record per symbol). Before 2026-12-07 (evening) the read case was a lazy store
read once, in its first session, which held only that session's derived bars.

`session_bars` (the realistic bar generator) is also used by ``bench_store.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tracemalloc
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sessiondata import Bar, SessionData

SESSION_MINUTES = 390
_OPEN = timedelta(hours=9, minutes=30)


def session_bars(
    n: int | None = None, *, symbol: str = "SPY", first_day: date = date(2024, 1, 2), seed: int = 7
) -> Iterator[Bar]:
    """``n`` (or, with ``None``, endless) realistic 1-minute bars in time order, 390 per regular session.

    Sessions are consecutive weekdays from ``first_day`` (the store's default calendar has no weekend
    sessions), 09:30 to 15:59 naive exchange-local time. Prices follow a seeded random walk; each
    bar has its own ``datetime``, four distinct ``float`` objects and an ``int`` volume above the small-int
    cache, as bars parsed from a feed would. Deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    day = datetime(first_day.year, first_day.month, first_day.day)
    price = 100.0
    produced = 0
    while n is None or produced < n:
        session_open = day + _OPEN
        for minute in range(SESSION_MINUTES):
            if n is not None and produced >= n:
                return
            ts = session_open + timedelta(minutes=minute)
            open_ = round(price, 2)
            close = round(price * (1.0 + rng.uniform(-1e-3, 1e-3)), 2)
            high = round(max(open_, close) + rng.choice((0.0, 0.01, 0.02)), 2)
            low = round(min(open_, close) - rng.choice((0.0, 0.01, 0.02)), 2)
            yield Bar(symbol, ts, open_, high, low, close, rng.randint(1_000, 250_000))
            price = close
            produced += 1
        day += timedelta(days=3 if day.weekday() == 4 else 1)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure(n_bars: int, derived_intervals: Sequence[int], *, read: bool = True) -> dict[str, Any]:
    """Bytes per bar for ``n_bars`` bars alone and inside a store with ``derived_intervals``.

    ``read``: someone reads the derived bars after every write, so the store derives them as bars arrive
    (``derivation="eager"``) and holds them; otherwise nobody does, and a lazy store owes them (see
    `sessiondata.core.derived`). Starts and stops `tracemalloc` itself (it must not
    already be tracing). O(n_bars); allocates about 1 KB per bar while it runs.
    """
    if tracemalloc.is_tracing():
        raise RuntimeError("measure() needs tracemalloc to be off: it starts its own trace")
    gc.collect()
    tracemalloc.start()
    try:
        base = _traced()
        bars = list(session_bars(n_bars))
        holder = sys.getsizeof(bars)  # the list is the generator's, not the bars' or the store's
        bars_bytes = _traced() - base - holder

        tracemalloc.reset_peak()
        # A store whose derived bars are read after every write derives as bars arrive (the documented
        # choice); a lazy store read now and then holds what it settled, between the two figures.
        derivation = "eager" if read else "lazy"
        store = SessionData(derived_intervals=tuple(derived_intervals), derivation=derivation)
        for i in range(0, n_bars, SESSION_MINUTES):
            store.add_bars_batch("SPY", bars[i : i + SESSION_MINUTES])
        store_bytes = _traced() - base - holder
        peak_bytes = tracemalloc.get_traced_memory()[1] - base - holder
        stored = store.get_bar_count("SPY")
    finally:
        tracemalloc.stop()
    # Counted after the trace: counting is a read, and a read builds the derived bars of an unread store.
    derived_count = sum(store.get_bar_count("SPY", k) for k in store.derived_intervals) if read else 0
    if stored != n_bars:
        raise AssertionError(f"the store holds {stored} bars, expected {n_bars}")
    del store, bars
    return {
        "bars": n_bars,
        "derived_intervals": list(derived_intervals),
        "derived_read": read,
        "derived_bars_stored": derived_count,
        "bar_bytes_per_bar": bars_bytes / n_bars,
        "store_bytes_per_bar": store_bytes / n_bars,
        "store_overhead_bytes_per_bar": (store_bytes - bars_bytes) / n_bars,
        "peak_bytes_per_bar_while_adding": peak_bytes / n_bars,
        "ratio_store_to_bars": store_bytes / bars_bytes,
    }


def _sizes() -> dict[str, int]:
    """`sys.getsizeof` of one bar and its parts, to explain the per-bar figure."""
    bar = next(session_bars(1))
    return {
        "Bar": sys.getsizeof(bar),
        "datetime": sys.getsizeof(bar.timestamp),
        "float": sys.getsizeof(bar.open),
        "int volume": sys.getsizeof(bar.volume),
    }


def _label(result: dict[str, Any]) -> str:
    intervals = tuple(result["derived_intervals"])
    if not intervals:
        return "()"
    return f"{intervals} {'read' if result['derived_read'] else 'never read'}"


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table (and write JSON with ``--json``). Returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars to store (default 1,000,000)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.bars < 1:
        parser.error(f"--bars must be >= 1, got {args.bars}")

    configurations = (((), True), ((5, 15), True), ((5, 15), False))
    results = [measure(args.bars, derived, read=read) for derived, read in configurations]
    target = 1.2
    print(
        f"memory per stored 1-minute bar, {args.bars:,} bars (tracemalloc, Python {sys.version.split()[0]})"
    )
    print("  one bar's parts (sys.getsizeof): " + ", ".join(f"{k} {v} B" for k, v in _sizes().items()))
    header = f"{'derived_intervals':<24}{'bars alone':>12}{'in store':>12}{'overhead':>11}{'peak':>10}"
    print(header + f"{'store/bars':>12}  target <= {target}x")
    for r in results:
        verdict = "met" if r["ratio_store_to_bars"] <= target else "MISSED"
        print(
            f"{_label(r):<24}{r['bar_bytes_per_bar']:>10.1f} B"
            f"{r['store_bytes_per_bar']:>10.1f} B"
            f"{r['store_overhead_bytes_per_bar']:>9.1f} B{r['peak_bytes_per_bar_while_adding']:>8.1f} B"
            f"{r['ratio_store_to_bars']:>11.3f}x  {verdict}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"python": sys.version, "sizes": _sizes(), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
