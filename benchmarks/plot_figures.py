"""Regenerate the documentation's scaling figure: read and write cost against series length, 10^2..10^6 bars.

Three stores hold one symbol's 1-minute bars (`memory_per_bar.session_bars`, naive timestamps, in time
order), pre-filled to each size N, and are timed on the two operations a backtest repeats most:

* **write**: ``add_bar`` of the next bar in time order, per bar (blocks of consecutive calls);
* **read**: ``get_last_n_bars(symbol, 50)``, per call (blocks of ``READ_BLOCK`` calls).

The stores: `sessiondata.SessionData` (default derived 5m/15m bars, and without derived bars); the seed
plan's asyncio store (``seed_baseline.py``, unchanged), driven by a synchronous caller with
``loop.run_until_complete`` on one reused loop, as the benchmarks do, and for writes also awaited inside a
running loop (its intrinsic cost); and a naive pandas store (`NaivePandasStore`: one DataFrame per symbol,
``pd.concat`` per write, ``tail(n)`` per read), what a quick pandas implementation looks like.

Each point is the median over ``--repeats`` timed blocks. Absolute times depend on the machine and its
load (the figure is a picture of how cost grows with N, not a target; the targets are ratios, see
``benchmarks/README.md``). Writes grow the store by at most ``repeats * block`` bars during a size's
measurement, which is negligible against N except at N = 100.

Writes ``docs/img/scaling.png`` and ``docs/img/scaling.txt`` (a Markdown table of the same figures, included
by ``docs/performance.md``), and the raw figures as JSON to ``--json``. About 20 seconds on 2 cores; needs
matplotlib and pandas (``pip install -e '.[docs,pandas]'``). Run from the repository root::

    .venv/bin/python benchmarks/plot_figures.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import seed_baseline
from memory_per_bar import session_bars
from sessiondata import Bar, SessionData

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "SPY"
SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
LAST_N = 50
READ_BLOCK = 20


class NaivePandasStore:
    """The obvious pandas store: a DataFrame per symbol, grown with ``pd.concat`` on every bar.

    Every write copies the whole frame (O(n)); a read of the last n rows is a cheap slice but returns a
    DataFrame view, not bar objects. Not thread-safe (no lock), like most such code.
    """

    _COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")

    def __init__(self) -> None:
        import pandas as pd

        self._pd = pd
        self._frames: dict[str, Any] = {}

    def add_bars_batch(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Append many bars with one concat (only used to pre-fill)."""
        frame = self._pd.DataFrame(
            {c: [getattr(b, c) for b in bars] for c in self._COLUMNS}, columns=list(self._COLUMNS)
        )
        old = self._frames.get(symbol)
        self._frames[symbol] = frame if old is None else self._pd.concat([old, frame], ignore_index=True)

    def add_bar(self, symbol: str, bar: Bar) -> None:
        """Append one bar: a one-row frame concatenated to the symbol's frame (copies it)."""
        row = self._pd.DataFrame([[getattr(bar, c) for c in self._COLUMNS]], columns=list(self._COLUMNS))
        old = self._frames.get(symbol)
        self._frames[symbol] = row if old is None else self._pd.concat([old, row], ignore_index=True)

    def get_last_n_bars(self, symbol: str, n: int) -> Any:
        """The last ``n`` rows, oldest first (a DataFrame)."""
        return self._frames[symbol].tail(n)


def _median_per_op(run: Callable[[], None], ops: int, repeats: int) -> float:
    """Median seconds per operation over ``repeats`` calls of ``run`` (each doing ``ops`` operations)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) / ops)
    return statistics.median(times)


def _writer(
    add: Callable[[str, Bar], object], bars: Sequence[Bar], start: int, block: int
) -> Callable[[], None]:
    """A block of ``block`` in-order ``add`` calls, each call of the block continuing where the last ended."""
    position = [start]

    def run() -> None:
        i = position[0]
        for bar in bars[i : i + block]:
            add(SYMBOL, bar)
        position[0] = i + block

    return run


def _reader(read: Callable[[], object]) -> Callable[[], None]:
    """A block of ``READ_BLOCK`` calls of ``read`` (timing one call alone would mostly time the timer)."""

    def run() -> None:
        for _ in range(READ_BLOCK):
            read()

    return run


def measure(sizes: Sequence[int], repeats: int, reads: int) -> dict[str, dict[str, dict[int, float]]]:
    """Seconds per operation: ``{"write"|"read": {store label: {N: seconds}}}``."""
    block = {"ours": 200, "seed": 200, "pandas": 5}
    total = max(sizes) + repeats * max(block.values())
    print(f"building {total:,} bars ...", file=sys.stderr)
    bars = list(session_bars(total))
    loop = asyncio.new_event_loop()
    ruc = loop.run_until_complete
    out: dict[str, dict[str, dict[int, float]]] = {"write": {}, "read": {}}

    def put(kind: str, label: str, n: int, seconds: float) -> None:
        out[kind].setdefault(label, {})[n] = seconds
        print(f"  {kind:5} {label:34} N={n:>9,}: {seconds * 1e6:10.3f} µs", file=sys.stderr)

    def time_store(
        label: str, n: int, add: Callable[[str, Bar], object], read: Callable[[], object] | None, size: int
    ) -> None:
        gc.collect()
        if read is not None:
            put("read", label, n, _median_per_op(_reader(read), READ_BLOCK, reads))
        put("write", label, n, _median_per_op(_writer(add, bars, n, size), size, repeats))

    async def add_awaited(store: Any, first: int, count: int) -> None:
        for bar in bars[first : first + count]:
            await store.add_bar(SYMBOL, bar)

    try:
        for n in sizes:
            print(f"N = {n:,}", file=sys.stderr)
            for label, derived in (("sessiondata", (5, 15)), ("sessiondata, no derived bars", ())):
                store = SessionData(derived_intervals=derived)
                store.add_bars_batch(SYMBOL, bars[:n])
                time_store(
                    label, n, store.add_bar, partial(store.get_last_n_bars, SYMBOL, LAST_N), block["ours"]
                )
                del store

            seed = seed_baseline.SessionData()
            ruc(seed.add_bars_batch(SYMBOL, bars[:n]))
            time_store(
                "seed (run_until_complete)",
                n,
                lambda sym, bar, s=seed: ruc(s.add_bar(sym, bar)),
                lambda s=seed: ruc(s.get_last_n_bars(SYMBOL, LAST_N)),
                block["seed"],
            )
            del seed

            # The seed's intrinsic write cost: a block of awaited calls inside one running loop.
            seed = seed_baseline.SessionData()
            ruc(seed.add_bars_batch(SYMBOL, bars[:n]))
            done = [n]

            def awaited_block(s: Any = seed, done: list[int] = done) -> None:
                ruc(add_awaited(s, done[0], block["seed"]))
                done[0] += block["seed"]

            gc.collect()
            put("write", "seed (awaited)", n, _median_per_op(awaited_block, block["seed"], repeats))
            del seed

            frame_store = NaivePandasStore()
            frame_store.add_bars_batch(SYMBOL, bars[:n])
            read = partial(frame_store.get_last_n_bars, SYMBOL, LAST_N)
            time_store("naive pandas store", n, frame_store.add_bar, read, block["pandas"])
            del frame_store
    finally:
        loop.close()
    return out


_STYLE = {
    "sessiondata": {"color": "tab:blue", "marker": "o"},
    "sessiondata, no derived bars": {"color": "tab:blue", "marker": "o", "linestyle": "--", "alpha": 0.6},
    "seed (run_until_complete)": {"color": "tab:orange", "marker": "s"},
    "seed (awaited)": {"color": "tab:orange", "marker": "s", "linestyle": "--", "alpha": 0.6},
    "naive pandas store": {"color": "tab:green", "marker": "^"},
}


def plot(figures: dict[str, dict[str, dict[int, float]]], path: Path, subtitle: str) -> None:
    """Two log-log panels (write, read): microseconds per operation against bars stored."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One panel above the other, 6.2 x 8.4 in at 110 dpi = 682 px wide: the documentation's text column is
    # 688 px, and a wider image is scaled down to it, text and all (side by side, 1,210 px, the labels were
    # 5-6 px tall on the page).
    fig, axes = plt.subplots(2, 1, figsize=(6.2, 8.4), constrained_layout=True)
    titles = {
        "write": "write: add_bar in time order (per bar)",
        "read": f"read: get_last_n_bars(n={LAST_N}) (per call)",
    }
    for ax, kind in zip(axes, ("write", "read"), strict=True):
        for label, points in figures[kind].items():
            xs = sorted(points)
            ax.plot(xs, [points[x] * 1e6 for x in xs], label=label, **_STYLE.get(label, {}))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bars already stored (one symbol)")
        ax.set_ylabel("µs per operation (median)")
        ax.set_title(titles[kind])
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"Cost against series length. {subtitle}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.2f} µs" if us < 100 else f"{us:,.0f} µs"


def table(figures: dict[str, dict[str, dict[int, float]]], sizes: Sequence[int]) -> str:
    """The figures as Markdown tables, one per operation."""
    lines: list[str] = []
    for kind, title in (("write", "`add_bar`, per bar"), ("read", f"`get_last_n_bars({LAST_N})`, per call")):
        lines.append(f"| {title} | " + " | ".join(f"{n:,}" for n in sizes) + " |")
        lines.append("|---|" + "---:|" * len(sizes))
        for label, points in figures[kind].items():
            lines.append(f"| {label} | " + " | ".join(_fmt(points[n]) for n in sizes) + " |")
        lines.append("")
    return "\n".join(lines)


def from_table(text: str) -> dict[str, dict[str, dict[int, float]]]:
    """The figures back from `table`'s Markdown (to redraw the figure without measuring again)."""
    figures: dict[str, dict[str, dict[int, float]]] = {}
    kinds = iter(("write", "read"))
    sizes: list[int] = []
    rows: dict[str, dict[int, float]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= set("-:"):
            continue
        if cells[0].startswith("`"):
            rows = figures.setdefault(next(kinds), {})
            sizes = [int(c.replace(",", "")) for c in cells[1:]]
            continue
        values = [float(c.removesuffix(" µs").replace(",", "")) / 1e6 for c in cells[1:]]
        rows[cells[0]] = dict(zip(sizes, values, strict=True))
    if set(figures) != {"write", "read"}:
        raise ValueError("not a table written by plot_figures.py: it needs a write and a read table")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, then write the figure, its table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="comma-separated N")
    parser.add_argument("--repeats", type=int, default=7, help="timed write blocks per point (default 7)")
    parser.add_argument("--reads", type=int, default=31, help="timed blocks of reads per point (default 31)")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "scaling.png")
    parser.add_argument("--table", type=Path, default=ROOT / "docs" / "img" / "scaling.txt")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.json")
    parser.add_argument(
        "--redraw",
        metavar="SUBTITLE",
        help="measure nothing: redraw the figure from --table, with this subtitle (say when it was measured)",
    )
    args = parser.parse_args(argv)
    if args.redraw is not None:
        plot(from_table(args.table.read_text(encoding="utf-8")), args.png, args.redraw)
        print(f"redrew {args.png} from {args.table}", file=sys.stderr)
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(","))
    figures = measure(sizes, args.repeats, args.reads)
    subtitle = f"Python {platform.python_version()}, {platform.system()}, {time.strftime('%Y-%m-%d')}"
    plot(figures, args.png, subtitle)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(table(figures, sizes), encoding="utf-8")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    record = {"python": sys.version, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "figures": figures}
    args.json.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"wrote {args.png}, {args.table} and {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
