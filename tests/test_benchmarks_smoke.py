"""Keeps the benchmark baseline and the memory script runnable, and the baseline honest.

``benchmarks/seed_baseline.py`` (the seed plan's asyncio store) is what the speed ratios are measured
against: if it stopped answering like the store on the same input, those ratios would compare different
work. ``benchmarks/memory_per_bar.py`` is run on a few bars. No timing is measured or asserted here.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiondata import SessionData

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load benchmarks/{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


seed_baseline = _load("seed_baseline")
memory_per_bar = _load("memory_per_bar")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _both(loop: asyncio.AbstractEventLoop, n: int, seed: int) -> tuple[SessionData, Any, list[Any]]:
    bars = list(memory_per_bar.session_bars(n, seed=seed))
    ours = SessionData()
    baseline = seed_baseline.SessionData()
    half = n // 2
    ours.add_bars_batch("SPY", bars[:half])
    for bar in bars[half:]:
        ours.add_bar("spy", bar)
    loop.run_until_complete(baseline.add_bars_batch("SPY", bars[:half]))
    for bar in bars[half:]:
        loop.run_until_complete(baseline.add_bar("spy", bar))
    return ours, baseline, bars


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 1_200), k=st.integers(-2, 80), seed=st.integers(0, 2**16))
def test_seed_baseline_answers_like_the_store(n: int, k: int, seed: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        ours, baseline, bars = _both(loop, n, seed)
        ruc = loop.run_until_complete
        assert ruc(baseline.get_latest_bar("SPY")) is ours.get_latest_bar("SPY") is bars[-1]
        assert ruc(baseline.get_bar_count("SPY")) == ours.get_bar_count("SPY") == n
        expected_last = bars[-k:] if k > 0 else []
        if k > 0:
            assert ruc(baseline.get_last_n_bars("SPY", k)) == ours.get_last_n_bars("SPY", k) == expected_last
        else:
            # For n <= 0 the seed slices `[-n:]` (all bars for n == 0); the contract says empty, so only the
            # store is held to it here.
            assert ours.get_last_n_bars("SPY", k) == []
        since = bars[len(bars) // 3].timestamp
        assert ruc(baseline.get_bars_since("SPY", since)) == ours.get_bars_since("SPY", since)
        theirs = ruc(baseline.get_session_metrics("SPY"))
        mine = ours.get_session_metrics("SPY")
        for key in ("symbol", "session_volume", "session_high", "session_low", "last_update", "bar_count"):
            assert theirs[key] == mine[key], key
        assert ruc(baseline.get_latest_bar("QQQ")) is None
        assert ours.get_latest_bar("QQQ") is None
    finally:
        loop.close()


def test_seed_baseline_singleton_and_lifecycle(loop: asyncio.AbstractEventLoop) -> None:
    seed_baseline.reset_session_data()
    first = seed_baseline.get_session_data()
    assert seed_baseline.get_session_data() is first
    _, baseline, _ = _both(loop, 10, seed=1)
    loop.run_until_complete(baseline.start_new_session(date(2024, 2, 1)))
    assert loop.run_until_complete(baseline.get_bar_count("SPY")) == 0
    assert loop.run_until_complete(baseline.get_latest_bar("SPY")) is None
    seed_baseline.reset_session_data()
    assert seed_baseline.get_session_data() is not first
    seed_baseline.reset_session_data()


def test_session_bars_are_regular_minutes_in_time_order() -> None:
    bars = list(memory_per_bar.session_bars(800))
    assert len(bars) == 800
    stamps = [b.timestamp for b in bars]
    assert stamps == sorted(set(stamps))
    per_day = memory_per_bar.SESSION_MINUTES
    assert stamps[0].time().isoformat() == "09:30:00"
    assert stamps[per_day - 1].time().isoformat() == "15:59:00"
    assert stamps[per_day].date() > stamps[per_day - 1].date()
    assert list(memory_per_bar.session_bars(50, seed=3)) == list(memory_per_bar.session_bars(50, seed=3))
    assert len({id(b.open) for b in bars[:50]}) == 50, "each bar owns its float objects"


def test_memory_script_measures_a_small_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = memory_per_bar.measure(780, ())
    assert result["bars"] == 780
    assert result["derived_bars_stored"] == 0
    assert result["bar_bytes_per_bar"] > 0
    assert result["store_bytes_per_bar"] >= result["bar_bytes_per_bar"]
    out = tmp_path / "memory.json"
    assert memory_per_bar.main(["--bars", "780", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "store/bars" in printed
    assert "(5, 15) read" in printed
    assert "(5, 15) never read" in printed
    assert out.read_text(encoding="utf-8").count('"ratio_store_to_bars"') == 3
    read = memory_per_bar.measure(780, (5, 15))
    assert read["derived_bars_stored"] == 780 // 5 + 780 // 15
    unread = memory_per_bar.measure(780, (5, 15), read=False)
    assert unread["store_bytes_per_bar"] < read["store_bytes_per_bar"]  # a log, not derived bars
    with pytest.raises(SystemExit):
        memory_per_bar.main(["--bars", "0"])


plot_figures = _load("plot_figures")


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


_microseconds = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None)
@given(
    write=st.lists(_microseconds, min_size=3, max_size=3),
    read=st.lists(_microseconds, min_size=3, max_size=3),
)
def test_the_figure_table_reads_back(write: list[float], read: list[float]) -> None:
    sizes = (100, 1_000, 10_000)
    figures = {
        "write": {"sessiondata": {n: v / 1e6 for n, v in zip(sizes, write, strict=True)}},
        "read": {"naive pandas store": {n: v / 1e6 for n, v in zip(sizes, read, strict=True)}},
    }
    back = plot_figures.from_table(plot_figures.table(figures, sizes))
    assert back.keys() == figures.keys()
    for kind, rows in figures.items():
        assert back[kind].keys() == rows.keys()
        for label, points in rows.items():
            # The table rounds to 0.01 µs below 100 µs, to 1 µs above.
            assert back[kind][label] == pytest.approx(points, rel=0.01, abs=0.006e-6)


def test_a_table_without_both_operations_is_refused() -> None:
    with pytest.raises(ValueError, match="write and a read"):
        plot_figures.from_table("| `add_bar`, per bar | 100 |\n|---|---:|\n| sessiondata | 1.00 µs |\n")


def test_the_redrawn_figure_fits_the_documentation_column(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the docs extra is not installed")
    table, png = tmp_path / "scaling.txt", tmp_path / "scaling.png"
    figures = {kind: {"sessiondata": {100: 1e-6, 1_000: 2e-6}} for kind in ("write", "read")}
    table.write_text(plot_figures.table(figures, (100, 1_000)), encoding="utf-8")
    assert plot_figures.main(["--redraw", "test", "--table", str(table), "--png", str(png)]) == 0
    width, height = _png_size(png)
    assert width <= 688 < height  # Material's text column at 1280 px: wider is scaled down, labels too
